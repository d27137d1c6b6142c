"""Market modes (normal, reduce-only, halted, settled) and the open-interest cap."""

from __future__ import annotations

import pytest

from perpx.engine.codes import RejectCode
from perpx.engine.commands import MarketMode, SetMarketMode
from perpx.engine.events import Event, MarketModeChanged, PositionSettled
from perpx.engine.values import MarketId
from perpx.testkit import Venue

from .helpers import BTC, book, config_with, rest, table, venue


def set_mode(v: Venue, mode: MarketMode, settle_price: str | None = None) -> list[Event]:
    return v.apply(
        SetMarketMode(
            ts_ns=v.tick(),
            market=MarketId(BTC),
            mode=mode,
            settle_price_ticks=None if settle_price is None else v.ticks(BTC, settle_price),
        )
    )


def codes(events: list[Event]) -> list[object]:
    return [getattr(e, "code", None) for e in events]


def long_and_short(v: Venue, qty: str = "1", price: str = "30000") -> None:
    rest(v, "short", "SELL", qty, price)
    v.place("long", BTC, "BUY", qty, price)


def test_reduce_only_mode_rejects_orders_that_could_open_and_accepts_reduce_only() -> None:
    # Arrange
    v = venue("long", "short")
    long_and_short(v)
    set_mode(v, MarketMode.REDUCE_ONLY)
    # Act
    opening = v.place("long", BTC, "BUY", "0.1", "29000")
    closing = v.place("long", BTC, "SELL", "0.1", "31000", reduce_only=True)
    # Assert
    assert codes(opening) == [RejectCode.MARKET_REDUCE_ONLY]
    assert type(closing[0]).__name__ == "OrderAccepted"


def test_halted_market_accepts_cancels_only() -> None:
    # Arrange
    v = venue("a")
    order_id = rest(v, "a", "BUY", "0.1", "29000")
    set_mode(v, MarketMode.HALTED)
    # Act
    placed = v.place("a", BTC, "BUY", "0.1", "29000")
    amended = v.amend("a", BTC, order_id, "29100", "0.1")
    canceled = v.cancel("a", BTC, order_id)
    # Assert
    assert codes(placed) == [RejectCode.MARKET_CLOSED]
    assert codes(amended) == [RejectCode.MARKET_CLOSED]
    assert type(canceled[0]).__name__ == "OrderCanceled"


def test_halt_then_normal_reopens_the_market() -> None:
    v = venue("a")
    set_mode(v, MarketMode.HALTED)
    events = set_mode(v, MarketMode.NORMAL)
    assert events == [
        MarketModeChanged(
            ts_ns=v.engine.now_ns, market=MarketId(BTC), mode=MarketMode.NORMAL, previous=MarketMode.HALTED
        )
    ]
    assert type(v.place("a", BTC, "BUY", "0.1", "29000")[0]).__name__ == "OrderAccepted"


def test_settling_closes_every_position_at_the_price_without_fees_and_cancels_orders() -> None:
    # Arrange: long 1 @ 30000 vs short 1 @ 30000; a resting bid
    v = venue("long", "short")
    long_and_short(v)
    rest(v, "long", "BUY", "0.1", "29000")
    long_before, short_before = v.balance("long"), v.balance("short")
    # Act: delist at 31000
    events = set_mode(v, MarketMode.SETTLED, "31000")
    # Assert: long +1000, short -1000, no fee; book empty; OI 0; final
    settled = {e.account_id: e.realized_pnl_atoms for e in events if isinstance(e, PositionSettled)}
    assert settled == {v.names["long"]: v.atoms("1000"), v.names["short"]: -v.atoms("1000")}
    assert v.balance("long") - long_before == 1000
    assert v.balance("short") - short_before == -1000
    assert book(v) == table("| bid | price | ask |")
    assert v.engine.open_interest_lots[MarketId(BTC)] == 0
    assert codes(set_mode(v, MarketMode.NORMAL)) == [RejectCode.MARKET_SETTLED]
    assert codes(v.place("long", BTC, "BUY", "0.1", "29000")) == [RejectCode.MARKET_SETTLED]


def test_settling_without_a_price_is_rejected_and_changes_nothing() -> None:
    v = venue("long", "short")
    long_and_short(v)
    before = v.hash()
    assert codes(set_mode(v, MarketMode.SETTLED)) == [RejectCode.BAD_PARAMETER]
    assert v.hash() == before


@pytest.mark.parametrize(
    ("qty", "outcome"),
    [
        ("1", "OrderAccepted"),  # open interest 1 + 1 = 2 <= cap 2
        ("1.001", "OrderRejected"),  # 2.001 > 2
    ],
)
def test_open_interest_cap_refuses_orders_that_could_open_beyond_it(qty: str, outcome: str) -> None:
    # Arrange: cap 2 BTC; open interest already 1
    v = venue("long", "short", "c", config=config_with(market={"max_open_interest": "2"}))
    long_and_short(v)
    # Act
    events = v.place("c", BTC, "BUY", qty, "29000")
    # Assert
    assert type(events[0]).__name__ == outcome
    if outcome == "OrderRejected":
        assert codes(events) == [RejectCode.OPEN_INTEREST_CAP]


def test_open_interest_cap_never_blocks_an_order_that_closes() -> None:
    v = venue("long", "short", config=config_with(market={"max_open_interest": "1"}))
    long_and_short(v)
    assert type(v.place("long", BTC, "SELL", "1", "31000")[0]).__name__ == "OrderAccepted"
