"""Money safety through the Binance-compatible REST API: the review's reproductions as a client sees them.

The same holes as ``tests/engine/test_money_safety.py``, sent as signed requests: the close beyond
bankruptcy (refused with ``-9010`` and the bankruptcy price in the message), the market order that
stops at it, the open loss of a buy far above the mark, the bounded mark an operator cannot push
past the band, and Binance's default self-trade prevention. The insurance fund is read back after
each: it never pays.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from .harness import Trader
from .inprocess import InProcessVenue, in_process_venue

BTC = "BTCUSDT"


@pytest.fixture
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessVenue]:
    with in_process_venue(tmp_path_factory.mktemp("money") / "data") as venue:
        venue.mark(BTC, "30000")
        yield venue


def limit(side: str, qty: str, price: str, **extra: Any) -> dict[str, Any]:
    return {
        "symbol": BTC,
        "side": side,
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": qty,
        "price": price,
        "newOrderRespType": "RESULT",
        **extra,
    }


def fund_equity(venue: InProcessVenue) -> Decimal:
    answer = venue.admin("GET", "/insurance?limit=0")
    assert answer.status_code == 200, answer.text
    return Decimal(answer.json()["equity"])


def ring(venue: InProcessVenue) -> tuple[Trader, Trader]:
    """``a`` (500 USDT, 125x) long 1.6 at 30,000; its partner ``b`` bids 1.6 at 28,500."""
    mm = venue.trader("mm")
    a = venue.trader("a", deposit="500")
    b = venue.trader("b")
    venue.ok("POST", "/fapi/v1/leverage", a, {"symbol": BTC, "leverage": 125})
    venue.ok("POST", "/fapi/v1/order", mm, limit("SELL", "1.6", "30000"))
    assert venue.ok("POST", "/fapi/v1/order", a, limit("BUY", "1.6", "30000"))["status"] == "FILLED"
    venue.ok("POST", "/fapi/v1/order", b, limit("BUY", "1.6", "28500"))
    return a, b


def test_a_close_beyond_bankruptcy_is_refused_with_the_bankruptcy_price(venue: InProcessVenue) -> None:
    # Arrange
    a, _b = ring(venue)
    before = fund_equity(venue)

    # Act
    status, code, msg = venue.refused("POST", "/fapi/v1/order", a, limit("SELL", "1.6", "28500"))

    # Assert
    assert (status, code) == (400, -9010)
    assert "bankruptcy price for 1.6 is 29717.4" in msg
    assert fund_equity(venue) == before


def test_a_market_close_stops_at_the_bankruptcy_price_and_expires_the_rest(venue: InProcessVenue) -> None:
    # Arrange
    a, _b = ring(venue)
    before = fund_equity(venue)

    # Act
    order = venue.ok(
        "POST",
        "/fapi/v1/order",
        a,
        {"symbol": BTC, "side": "SELL", "type": "MARKET", "quantity": "1.6", "newOrderRespType": "RESULT"},
    )

    # Assert: 0.314 filled at 28,500, the rest expired; the fund paid nothing
    assert order["status"] == "EXPIRED" and order["executedQty"] == "0.314"
    assert fund_equity(venue) >= before
    balances = venue.ok("GET", "/fapi/v2/balance", a)
    assert Decimal(next(row for row in balances if row["asset"] == "USDT")["balance"]) >= 0


def test_a_buy_far_above_the_mark_is_refused_for_its_open_loss(venue: InProcessVenue) -> None:
    # Arrange
    s = venue.trader("s")
    a = venue.trader("a", deposit="2000")
    venue.ok("POST", "/fapi/v1/leverage", a, {"symbol": BTC, "leverage": 125})
    venue.ok("POST", "/fapi/v1/order", s, limit("SELL", "1.5", "31500"))

    # Act
    status, code, msg = venue.refused("POST", "/fapi/v1/order", a, limit("BUY", "1.5", "31500"))

    # Assert
    assert (status, code) == (400, -2019)
    assert "2250 USDT of open loss" in msg


def test_an_operator_mark_beyond_the_band_is_held_at_its_edge(venue: InProcessVenue) -> None:
    # Act: a manual mark 10% above its index
    answer = venue.admin("POST", "/marks", {"symbol": BTC, "markPrice": "33000", "indexPrice": "30000"})

    # Assert: held at index x 1.03; the public premium index shows the same
    assert answer.status_code == 200, answer.text
    assert answer.json()["markPrice"] == "30900"
    premium = venue.client.get(f"/fapi/v1/premiumIndex?symbol={BTC}").json()
    assert premium["markPrice"] == "30900" and premium["indexPrice"] == "30000"


def test_an_order_without_a_self_trade_mode_gets_binances_default(venue: InProcessVenue) -> None:
    # Arrange
    a = venue.trader("a")
    venue.ok("POST", "/fapi/v1/order", a, limit("SELL", "0.01", "30000"))

    # Act: a crosses its own ask without saying how to prevent a self-trade
    order = venue.ok("POST", "/fapi/v1/order", a, limit("BUY", "0.01", "30000"))

    # Assert: EXPIRE_MAKER: the resting ask expired, no trade with itself, the bid rests
    assert order["selfTradePreventionMode"] == "EXPIRE_MAKER"
    assert order["status"] == "NEW" and order["executedQty"] == "0"
