"""Order filters, each with its reject code (Binance USDS-M exchangeInfo filters).

Demo BTCUSDT: tick 0.1, lot 0.001, max_qty 1000, market_max_qty 120,
min_notional 100 USDT, percent price 1.05 / 0.95 of the mark, 200 open orders.
Ticks and lots are integers in commands, so a price off the tick cannot reach
the engine: the harness refuses to build it (``ValueError``).
"""

from __future__ import annotations

import pytest

from perpx.engine.codes import RejectCode
from perpx.engine.commands import OrderType, PlaceOrder, SetLeverage
from perpx.engine.values import AccountId, MarketId, Side
from perpx.testkit import Venue

from .helpers import BTC, config_with, kinds, rest, summary, venue


@pytest.mark.parametrize(
    ("side", "qty", "price", "code"),
    [
        ("BUY", "0", "30000", RejectCode.QTY_NOT_POSITIVE),
        ("BUY", "-1", "30000", RejectCode.QTY_NOT_POSITIVE),
        ("BUY", "1000.001", "30000", RejectCode.QTY_ABOVE_MAX),
        ("BUY", "120.001", None, RejectCode.QTY_ABOVE_MAX),  # MARKET: market_max_qty 120
        ("BUY", "0.003", "30000", RejectCode.MIN_NOTIONAL),  # 0.003 x 30000 = 90 < 100 USDT
        ("SELL", "0.003", None, RejectCode.MIN_NOTIONAL),  # market: at the mark, 90 < 100 USDT
        ("BUY", "1", "0", RejectCode.PRICE_NOT_POSITIVE),
        ("SELL", "1", "-5", RejectCode.PRICE_NOT_POSITIVE),
        ("BUY", "1", "31500.1", RejectCode.PERCENT_PRICE),  # above 30000 x 1.05 = 31500
        ("SELL", "1", "28499.9", RejectCode.PERCENT_PRICE),  # below 30000 x 0.95 = 28500
        ("SELL", "0.001", "1000000000.1", RejectCode.PRICE_ABOVE_MAX),  # max_price 1e9
    ],
    ids=[
        "qty-zero",
        "qty-negative",
        "qty-above-max",
        "market-qty-above-market-max",
        "limit-min-notional",
        "market-min-notional",
        "price-zero",
        "price-negative",
        "buy-above-band",
        "sell-below-band",
        "price-above-max",
    ],
)
def test_an_order_failing_a_filter_is_rejected_with_its_code(
    side: str, qty: str, price: str | None, code: RejectCode
) -> None:
    # Arrange
    v = venue("a", deposit="10000000")
    before = v.hash()

    # Act
    events = v.place("a", BTC, side, qty, price)

    # Assert
    assert summary(v, events) == [("rejected", code)]
    assert v.hash() == before


@pytest.mark.parametrize(
    ("side", "qty", "price"),
    [
        ("BUY", "1000", "30000"),  # exactly max_qty (needs the leverage that allows 30M below)
        ("BUY", "120.001", "29000"),  # a LIMIT may exceed market_max_qty
        ("BUY", "0.004", "25000"),  # 0.004 x 25000 = 100 USDT: exactly min notional
        ("BUY", "1", "31500"),  # exactly the band ceiling
        ("SELL", "1", "28500"),  # exactly the band floor
        ("BUY", "1", "15000"),  # the band is one-sided: no floor for buys
        ("SELL", "1", "90000"),  # and no ceiling for sells
        ("BUY", "120", None),  # exactly market_max_qty
    ],
)
def test_an_order_on_the_edge_of_every_filter_is_accepted(side: str, qty: str, price: str | None) -> None:
    # Arrange: a rich account at 1x can hold 20M USDT of notional (last bracket cap)
    v = venue("a", deposit="100000000")
    v.apply(_leverage(v, 1))
    if qty == "1000":
        v.mark(BTC, "20000")  # 1000 x 20000 = 20M: the cap at 1x
        price = "20000"

    # Act
    events = v.place("a", BTC, side, qty, price)

    # Assert
    assert kinds(events)[0] == "OrderAccepted"


@pytest.mark.parametrize(
    ("side", "price", "accepted"),
    [
        ("BUY", "31500.3", True),
        ("BUY", "31500.4", False),
        ("SELL", "28500.3", True),
        ("SELL", "28500.2", False),
    ],
)
def test_the_percent_price_band_is_rounded_inward_to_the_tick(side: str, price: str, accepted: bool) -> None:
    # Arrange: mark 30000.3 (300003 ticks)
    # BUY ceiling  300003 x 1.05 = 315003.15 ticks -> rounded down to 31500.3
    # SELL floor   300003 x 0.95 = 285002.85 ticks -> rounded up   to 28500.3
    v = venue("a", mark="30000.3")

    # Act
    events = v.place("a", BTC, side, "0.01", price)

    # Assert
    if accepted:
        assert kinds(events) == ["OrderAccepted"]
    else:
        assert summary(v, events) == [("rejected", RejectCode.PERCENT_PRICE)]


def test_qty_below_min_qty_is_a_lot_size_filter_failure() -> None:
    # Arrange: min_qty 0.01
    v = venue("a", config=config_with({"min_qty": "0.01"}))

    # Act
    below = v.place("a", BTC, "BUY", "0.009", "29000")
    at = v.place("a", BTC, "BUY", "0.01", "29000")

    # Assert (0.01 x 29000 = 290 USDT, above min notional)
    assert summary(v, below) == [("rejected", RejectCode.PRICE_FILTER)]
    assert kinds(at) == ["OrderAccepted"]


@pytest.mark.parametrize(("side", "price"), [("BUY", "99.9"), ("SELL", "99.9")])
def test_a_price_below_min_price_is_rejected(side: str, price: str) -> None:
    # Arrange: min_price 100; mark 100 so the band does not decide first
    v = venue("a", config=config_with({"min_price": "100", "min_notional": "1"}), mark="100")

    # Act
    events = v.place("a", BTC, side, "1", price)

    # Assert
    assert summary(v, events) == [("rejected", RejectCode.PRICE_BELOW_MIN)]


def test_the_open_order_limit_counts_per_market() -> None:
    # Arrange: max_open_orders 3, three resting already
    v = venue("a", config=config_with({"max_open_orders": 3}))
    v.mark("ETHUSDT", "2000")
    for price in ("29000", "29100", "29200"):
        rest(v, "a", "BUY", "0.01", price)

    # Act
    fourth = v.place("a", BTC, "BUY", "0.01", "29300")
    other_market = v.place("a", "ETHUSDT", "BUY", "1", "2000")

    # Assert
    assert summary(v, fourth) == [("rejected", RejectCode.MAX_OPEN_ORDERS)]
    assert kinds(other_market) == ["OrderAccepted"]


def test_the_open_order_limit_frees_a_slot_when_an_order_leaves() -> None:
    # Arrange
    v = venue("a", config=config_with({"max_open_orders": 2}))
    first = rest(v, "a", "BUY", "0.01", "29000")
    rest(v, "a", "BUY", "0.01", "29100")
    assert summary(v, v.place("a", BTC, "BUY", "0.01", "29200")) == [("rejected", RejectCode.MAX_OPEN_ORDERS)]

    # Act
    v.cancel("a", BTC, first)
    events = v.place("a", BTC, "BUY", "0.01", "29200")

    # Assert
    assert kinds(events) == ["OrderAccepted"]


def test_no_order_is_accepted_before_the_market_has_a_mark_price() -> None:
    # Arrange
    v = venue("a", mark=None)

    # Act
    events = v.place("a", BTC, "BUY", "1", "30000")

    # Assert
    assert summary(v, events) == [("rejected", RejectCode.MARKET_CLOSED)]


def test_an_order_in_an_unlisted_market_is_rejected() -> None:
    # Arrange
    v = venue("a")

    # Act
    events = v.apply(_place(v, v.names["a"], market="DOGEUSDT"))

    # Assert
    assert summary(v, events) == [("rejected", RejectCode.BAD_SYMBOL)]


def test_an_order_from_an_unknown_account_is_rejected() -> None:
    # Arrange
    v = venue("a")

    # Act
    events = v.apply(_place(v, AccountId(99)))

    # Assert
    assert summary(v, events) == [("rejected", RejectCode.UNKNOWN_ACCOUNT)]


@pytest.mark.parametrize(
    ("order_type", "price_ticks"),
    [(OrderType.LIMIT, None), (OrderType.MARKET, 300_000)],
    ids=["limit-without-price", "market-with-price"],
)
def test_an_order_type_with_the_wrong_price_field_is_a_bad_parameter(
    order_type: OrderType, price_ticks: int | None
) -> None:
    # Arrange
    v = venue("a")

    # Act
    events = v.apply(_place(v, v.names["a"], order_type=order_type, price_ticks=price_ticks))

    # Assert
    assert summary(v, events) == [("rejected", RejectCode.BAD_PARAMETER)]


@pytest.mark.parametrize(("price", "qty"), [("30000.05", "1"), ("30000", "0.0005")])
def test_a_price_off_the_tick_or_a_quantity_off_the_lot_cannot_be_built(price: str, qty: str) -> None:
    # Arrange
    v = venue("a")

    # Act / Assert: the edge refuses to turn it into ticks or lots
    with pytest.raises(ValueError, match="not a multiple"):
        v.place("a", BTC, "BUY", qty, price)


def _place(
    v: Venue,
    account_id: AccountId,
    market: str = BTC,
    order_type: OrderType = OrderType.LIMIT,
    price_ticks: int | None = 300_000,
) -> PlaceOrder:
    return PlaceOrder(
        ts_ns=v.tick(),
        account_id=account_id,
        market=MarketId(market),
        side=Side.BUY,
        order_type=order_type,
        qty_lots=1000,
        price_ticks=price_ticks,
    )


def _leverage(v: Venue, leverage: int) -> SetLeverage:
    return SetLeverage(ts_ns=v.tick(), account_id=v.names["a"], market=MarketId(BTC), leverage=leverage)
