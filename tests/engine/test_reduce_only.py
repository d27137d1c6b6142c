"""Reduce-only orders: they may only shrink a position, never open or flip one.

Rules (Binance USDS-M, one-way mode): rejected (-2022) when flat or on the
position's own side; trimmed to the position's size; a resting reduce-only
order shrinks or expires when the position shrinks, closes or flips; exempt
from the min-notional filter; needs no initial margin.
"""

from __future__ import annotations

import pytest

from perpx.engine.codes import RejectCode
from perpx.engine.events import ExpireReason
from perpx.testkit import Venue

from .helpers import BTC, book, next_id, rest, summary, table, venue


def long_one(v: Venue, name: str = "a") -> None:
    """Give ``name`` a long of 1 BTC at 30000 (as maker) against account ``cp``."""
    rest(v, name, "BUY", "1", "30000")
    v.place("cp", BTC, "SELL", "1", "30000")


@pytest.mark.parametrize("side", ["BUY", "SELL"])
def test_a_reduce_only_order_is_rejected_when_flat(side: str) -> None:
    # Arrange
    v = venue("a")
    before = v.hash()

    # Act
    events = v.place("a", BTC, side, "1", "30000", reduce_only=True)

    # Assert
    assert summary(v, events) == [("rejected", RejectCode.REDUCE_ONLY_REJECTED)]
    assert v.hash() == before


@pytest.mark.parametrize("order_type", ["LIMIT", "MARKET"])
def test_a_reduce_only_order_on_the_side_of_the_position_is_rejected(order_type: str) -> None:
    # Arrange
    v = venue("a", "cp")
    long_one(v)

    # Act: a buy would increase the long
    price = "29000" if order_type == "LIMIT" else None
    events = v.place("a", BTC, "BUY", "1", price, reduce_only=True)

    # Assert
    assert summary(v, events) == [("rejected", RejectCode.REDUCE_ONLY_REJECTED)]
    assert v.position("a", BTC) == 1


def test_a_reduce_only_order_larger_than_the_position_is_trimmed_to_it() -> None:
    # Arrange
    v = venue("a", "cp")
    long_one(v)
    order = next_id(v)

    # Act
    events = v.place("a", BTC, "SELL", "3", "31000", reduce_only=True)

    # Assert: accepted for 3, trimmed at once to the 1 held; it keeps its (new) queue place
    assert summary(v, events, {order: "RO"}) == [
        ("accepted", "RO", "3"),
        ("amended", "RO", "31000", "1", "1", True, "REDUCE_ONLY_TRIM"),
    ]
    assert book(v) == table(
        """
        | bid | price | ask |
        |     | 31000 | 1   |
        """
    )


def test_a_reduce_only_market_order_closes_the_position_and_no_more() -> None:
    # Arrange: long 1 at 30000; bids 2 @ 30000 available
    v = venue("a", "cp", "bidder")
    long_one(v)
    bid = rest(v, "bidder", "BUY", "2", "30000")
    order = next_id(v)

    # Act
    events = v.place("a", BTC, "SELL", "5", reduce_only=True)

    # Assert: trimmed to 1 (a market sell's limit is its take bound 30000 x 0.95 = 28500),
    # which fills at 30000; closing at entry realises 0 PnL
    # fees on 1 x 30000: taker 15 USDT, maker 6 USDT
    assert summary(v, events, {order: "RO", bid: "BID"}) == [
        ("accepted", "RO", "5"),
        ("amended", "RO", "28500", "1", "1", True, "REDUCE_ONLY_TRIM"),
        ("filled", "RO", "30000", "1", "taker", 1_500_000_000, 0),
        ("filled", "BID", "30000", "1", "maker", 600_000_000, 0),
    ]
    assert v.position("a", BTC) == 0
    assert book(v) == table(
        """
        | bid | price | ask |
        | 1   | 30000 |     |
        """
    )


def test_a_reduce_only_order_closing_at_a_profit_realises_it() -> None:
    # Arrange: long 1 at 30000, then the market moves to 31000
    v = venue("a", "cp", "bidder")
    long_one(v)
    v.mark(BTC, "31000")
    bid = rest(v, "bidder", "BUY", "1", "31000")
    order = next_id(v)

    # Act
    events = v.place("a", BTC, "SELL", "1", "31000", reduce_only=True)

    # Assert: PnL = 1 x (31000 - 30000) = 1000 USDT; taker fee 31000 x 0.05% = 15.5 USDT
    assert summary(v, events, {order: "RO", bid: "BID"}) == [
        ("accepted", "RO", "1"),
        ("filled", "RO", "31000", "1", "taker", 1_550_000_000, 1000 * 10**8),
        ("filled", "BID", "31000", "1", "maker", 620_000_000, 0),
    ]


def test_a_resting_reduce_only_order_shrinks_with_the_position() -> None:
    # Arrange: long 2 with a reduce-only sell of 2 resting at 31000
    v = venue("a", "cp", "bidder")
    rest(v, "a", "BUY", "2", "30000")
    v.place("cp", BTC, "SELL", "2", "30000")
    ro = rest(v, "a", "SELL", "2", "31000", reduce_only=True)
    bid = rest(v, "bidder", "BUY", "1.5", "30000")
    closer = next_id(v)

    # Act: an ordinary sell of 1.5 closes most of the long
    events = v.place("a", BTC, "SELL", "1.5", "30000")

    # Assert: the reduce-only order is trimmed to the 0.5 left, in place
    # 1.5 x 30000 = 45000 USDT: taker 22.5 USDT, maker 9 USDT
    assert summary(v, events, {ro: "RO", bid: "BID", closer: "T"}) == [
        ("accepted", "T", "1.5"),
        ("filled", "T", "30000", "1.5", "taker", 2_250_000_000, 0),
        ("filled", "BID", "30000", "1.5", "maker", 900_000_000, 0),
        ("amended", "RO", "31000", "0.5", "0.5", True, "REDUCE_ONLY_TRIM"),
    ]
    assert book(v) == table(
        """
        | bid | price | ask |
        |     | 31000 | 0.5 |
        """
    )


@pytest.mark.parametrize(
    ("sell_qty", "position_out"),
    [("1", "0"), ("2", "-1")],
    ids=["position-closes", "position-flips"],
)
def test_a_resting_reduce_only_order_expires_when_the_position_closes_or_flips(
    sell_qty: str, position_out: str
) -> None:
    # Arrange: long 1 with a reduce-only sell of 1 resting at 31000
    v = venue("a", "cp", "bidder")
    long_one(v)
    ro = rest(v, "a", "SELL", "1", "31000", reduce_only=True)
    rest(v, "bidder", "BUY", "2", "30000")

    # Act
    events = v.place("a", BTC, "SELL", sell_qty, "30000")

    # Assert
    assert summary(v, events, {ro: "RO"})[-1] == ("expired", "RO", "1", ExpireReason.REDUCE_ONLY)
    assert ro not in v.engine.orders
    assert v.position("a", BTC) == int(position_out)


def test_a_resting_reduce_only_order_shrinks_when_its_owner_is_filled_as_maker_elsewhere() -> None:
    # Arrange: long 2; reduce-only sell 2 @ 31000 and an ordinary sell 1 @ 30500
    v = venue("a", "cp", "t")
    rest(v, "a", "BUY", "2", "30000")
    v.place("cp", BTC, "SELL", "2", "30000")
    plain = rest(v, "a", "SELL", "1", "30500")
    ro = rest(v, "a", "SELL", "2", "31000", reduce_only=True)
    taker = next_id(v)

    # Act: someone lifts the 30500 offer
    events = v.place("t", BTC, "BUY", "1", "30500")

    # Assert: a realises 1 x (30500 - 30000) = 500 USDT and its reduce-only order shrinks to 1
    # 30500 USDT: taker 15.25 USDT, maker 6.1 USDT
    assert summary(v, events, {plain: "P", ro: "RO", taker: "T"}) == [
        ("accepted", "T", "1"),
        ("filled", "T", "30500", "1", "taker", 1_525_000_000, 0),
        ("filled", "P", "30500", "1", "maker", 610_000_000, 500 * 10**8),
        ("amended", "RO", "31000", "1", "1", True, "REDUCE_ONLY_TRIM"),
    ]


def test_a_reduce_only_order_is_exempt_from_min_notional() -> None:
    # Arrange: min notional is 100 USDT; 0.001 x 30000 = 30 USDT
    v = venue("a", "cp")
    long_one(v)

    # Act
    plain = v.place("a", BTC, "SELL", "0.001", "30000")
    reduce = v.place("a", BTC, "SELL", "0.001", "30000", reduce_only=True)

    # Assert
    assert summary(v, plain) == [("rejected", RejectCode.MIN_NOTIONAL)]
    assert [row[0] for row in summary(v, reduce)] == ["accepted"]


def test_a_reduce_only_order_needs_no_margin() -> None:
    # Arrange: 1600 USDT, long 1 at 30000 as taker at 20x
    # wallet 1600 - 15 (taker fee) = 1585; IM 30000 / 20 = 1500; available 85 USDT
    v = venue("a", "cp", deposit="1600")
    v.deposit("cp", "100000")
    rest(v, "cp", "SELL", "1", "30000")
    v.place("a", BTC, "BUY", "1", "30000")
    assert v.engine.risk(v.names["a"]).available_atoms == 85 * 10**8

    # Act
    # an ordinary sell of 2 @ 31000 would open a 1 BTC short: IM = 31000 x 1 / 20 = 1550 > 85
    plain = v.place("a", BTC, "SELL", "2", "31000")
    reduce = v.place("a", BTC, "SELL", "2", "31000", reduce_only=True)

    # Assert
    assert summary(v, plain) == [("rejected", RejectCode.MARGIN_INSUFFICIENT)]
    assert [row[0] for row in summary(v, reduce)] == ["accepted", "amended"]
    assert v.engine.position(v.names["a"], v.spec(BTC).market).order_margin_atoms == 0
    assert v.engine.risk(v.names["a"]).available_atoms == 85 * 10**8


def test_an_amended_reduce_only_order_that_crosses_cannot_flip_the_position() -> None:
    # Arrange: long 1; reduce-only sell 1 resting at 31000; a bid of 5 @ 29900
    v = venue("a", "cp", "bidder")
    long_one(v)
    ro = rest(v, "a", "SELL", "1", "31000", reduce_only=True)
    bid = rest(v, "bidder", "BUY", "5", "29900")

    # Act: amend it to cross the bid with 3 BTC
    events = v.amend("a", BTC, ro, "29900", "3")

    # Assert: it sells only the 1 BTC held; PnL 1 x (29900 - 30000) = -100 USDT
    # 29900 USDT: taker 14.95 USDT, maker 5.98 USDT
    assert summary(v, events, {ro: "RO", bid: "BID"}) == [
        ("amended", "RO", "29900", "1", "1", False, "CLIENT"),
        ("filled", "RO", "29900", "1", "taker", 1_495_000_000, -100 * 10**8),
        ("filled", "BID", "29900", "1", "maker", 598_000_000, 0),
    ]
    assert v.position("a", BTC) == 0
    assert book(v) == table(
        """
        | bid | price | ask |
        | 4   | 29900 |     |
        """
    )


def test_a_reduce_only_fok_order_is_judged_on_its_trimmed_quantity() -> None:
    # Arrange: long 1; the book bids exactly 1 @ 30000
    v = venue("a", "cp", "bidder")
    long_one(v)
    bid = rest(v, "bidder", "BUY", "1", "30000")
    order = next_id(v)

    # Act: FOK reduce-only for 2, which is trimmed to the 1 held
    events = v.place("a", BTC, "SELL", "2", "30000", tif="FOK", reduce_only=True)

    # Assert: the trimmed 1 can fill in full, so it does
    assert summary(v, events, {order: "RO", bid: "BID"}) == [
        ("accepted", "RO", "2"),
        ("amended", "RO", "30000", "1", "1", True, "REDUCE_ONLY_TRIM"),
        ("filled", "RO", "30000", "1", "taker", 1_500_000_000, 0),
        ("filled", "BID", "30000", "1", "maker", 600_000_000, 0),
    ]
    assert v.position("a", BTC) == 0


@pytest.mark.parametrize(
    ("long_qty", "outcome"),
    [("1", "rejected"), ("2", "filled")],
    ids=["second-offer-would-expire", "both-offers-stay-valid"],
)
def test_fok_counts_a_reduce_only_offer_only_as_far_as_the_fills_before_it_leave_it(
    long_qty: str, outcome: str
) -> None:
    # Arrange: m is long; it offers 1 @ 30000 and 1 @ 30100, both reduce-only.
    # Long 1: once the first offer fills, m is flat and the second one expires.
    v = venue("m", "cp", "t")
    rest(v, "m", "BUY", long_qty, "30000")
    v.place("cp", BTC, "SELL", long_qty, "30000")
    first = rest(v, "m", "SELL", "1", "30000", reduce_only=True)
    second = rest(v, "m", "SELL", "1", "30100", reduce_only=True)
    before = v.hash()
    taker = next_id(v)

    # Act
    events = v.place("t", BTC, "BUY", "2", "30100", tif="FOK")

    # Assert: all or nothing
    if outcome == "rejected":
        assert summary(v, events) == [("rejected", RejectCode.FOK_NOT_FILLABLE)]
        assert v.hash() == before
    else:
        # 30000 -> taker 15, maker 6 USDT; 30100 -> taker 15.05, maker 6.02 USDT
        assert summary(v, events, {first: "RO1", second: "RO2", taker: "T"}) == [
            ("accepted", "T", "2"),
            ("filled", "T", "30000", "1", "taker", 1_500_000_000, 0),
            ("filled", "RO1", "30000", "1", "maker", 600_000_000, 0),
            ("filled", "T", "30100", "1", "taker", 1_505_000_000, 0),
            ("filled", "RO2", "30100", "1", "maker", 602_000_000, 100 * 10**8),
        ]
        assert v.position("m", BTC) == 0


def test_amending_a_reduce_only_order_to_more_than_the_position_is_a_no_op_that_keeps_priority() -> None:
    # Arrange: long 0.5; a reduce-only sell 0.5 @ 31000 rests ahead of another 0.2 ask at 31000
    v = venue("a", "b", "c")
    rest(v, "b", "SELL", "0.5", "30000")
    v.place("a", BTC, "BUY", "0.5", "30000")
    ro = rest(v, "a", "SELL", "0.5", "31000", reduce_only=True)
    rest(v, "c", "SELL", "0.2", "31000")

    # Act: 0.8 is capped back to the position, 0.5: nothing changes
    events = v.amend("a", BTC, ro, "31000", "0.8")

    # Assert: -5027, and the reduce-only order is still first in its level
    assert [getattr(e, "code", None) for e in events] == [RejectCode.AMEND_NOTHING]
    level = v.engine.books[v.spec(BTC).market].asks.levels[v.ticks(BTC, "31000")]
    assert next(iter(level)) == ro
