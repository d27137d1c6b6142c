"""Time in force: GTC rests, IOC takes and expires, FOK fills in full or not at all, GTX only makes.

Book in for the matrix: one ask of 1 BTC at 30000 (order ``M``). The taker
``T`` buys 1 at 30000 (crosses in full), 2 at 30000 (crosses in part) or 1 at
29900 (does not cross). Fees on 1 x 30000 = 30000 USDT: taker 0.05% = 15 USDT,
maker 0.02% = 6 USDT.
"""

from __future__ import annotations

from typing import Any

import pytest

from perpx.engine.codes import RejectCode
from perpx.engine.events import ExpireReason
from perpx.testkit import accepted_id

from .helpers import BTC, book, next_id, rest, summary, table, venue

TAKER_FILL = ("filled", "T", "30000", "1", "taker", 1_500_000_000, 0)
MAKER_FILL = ("filled", "M", "30000", "1", "maker", 600_000_000, 0)

EMPTY = "| bid | price | ask |"
ASK_ONLY = """
    | bid | price | ask |
    |     | 30000 | 1   |
"""
BID_30000 = """
    | bid | price | ask |
    | 1   | 30000 |     |
"""
BOTH = """
    | bid | price | ask |
    |     | 30000 | 1   |
    | 1   | 29900 |     |
"""

FULL = ("1", "30000")
PART = ("2", "30000")
NONE = ("1", "29900")

MATRIX: list[tuple[str, tuple[str, str], list[tuple[Any, ...]], str]] = [
    ("GTC", FULL, [("accepted", "T", "1"), TAKER_FILL, MAKER_FILL], EMPTY),
    ("GTC", PART, [("accepted", "T", "2"), TAKER_FILL, MAKER_FILL], BID_30000),
    ("GTC", NONE, [("accepted", "T", "1")], BOTH),
    ("IOC", FULL, [("accepted", "T", "1"), TAKER_FILL, MAKER_FILL], EMPTY),
    (
        "IOC",
        PART,
        [("accepted", "T", "2"), TAKER_FILL, MAKER_FILL, ("expired", "T", "1", ExpireReason.IOC_REMAINDER)],
        EMPTY,
    ),
    ("IOC", NONE, [("accepted", "T", "1"), ("expired", "T", "1", ExpireReason.IOC_REMAINDER)], ASK_ONLY),
    ("FOK", FULL, [("accepted", "T", "1"), TAKER_FILL, MAKER_FILL], EMPTY),
    ("FOK", PART, [("rejected", RejectCode.FOK_NOT_FILLABLE)], ASK_ONLY),
    ("FOK", NONE, [("rejected", RejectCode.FOK_NOT_FILLABLE)], ASK_ONLY),
    ("GTX", FULL, [("rejected", RejectCode.POST_ONLY_WOULD_TAKE)], ASK_ONLY),
    ("GTX", PART, [("rejected", RejectCode.POST_ONLY_WOULD_TAKE)], ASK_ONLY),
    ("GTX", NONE, [("accepted", "T", "1")], BOTH),
]


@pytest.mark.parametrize(
    ("tif", "order", "events_out", "book_out"),
    MATRIX,
    ids=[f"{tif}-{name}" for tif in ("GTC", "IOC", "FOK", "GTX") for name in ("full", "part", "none")],
)
def test_time_in_force_against_a_crossing_and_a_non_crossing_book(
    tif: str, order: tuple[str, str], events_out: list[tuple[Any, ...]], book_out: str
) -> None:
    # Arrange
    v = venue("m", "t")
    maker = rest(v, "m", "SELL", "1", "30000")
    taker = next_id(v)
    qty, price = order

    # Act
    events = v.place("t", BTC, "BUY", qty, price, tif=tif)

    # Assert
    assert summary(v, events, {maker: "M", taker: "T"}) == events_out
    assert book(v) == table(book_out)


@pytest.mark.parametrize(
    ("tif", "code"),
    [("FOK", RejectCode.FOK_NOT_FILLABLE), ("GTX", RejectCode.POST_ONLY_WOULD_TAKE)],
)
def test_a_refused_fok_or_gtx_order_leaves_the_whole_state_unchanged(tif: str, code: RejectCode) -> None:
    # Arrange: a bid of 1 at 30000; a sell of 2 at 30000 can neither fill in full nor make
    v = venue("m", "t")
    rest(v, "m", "BUY", "1", "30000")
    before = v.hash()

    # Act
    events = v.place("t", BTC, "SELL", "2", "30000", tif=tif)

    # Assert
    assert summary(v, events) == [("rejected", code)]
    assert v.hash() == before
    assert book(v) == table(
        """
        | bid | price | ask |
        | 1   | 30000 |     |
        """
    )


def test_fok_fills_across_levels_when_the_whole_quantity_is_within_its_limit() -> None:
    # Arrange
    v = venue("a", "b", "t")
    a = rest(v, "a", "SELL", "1", "30000")
    b = rest(v, "b", "SELL", "1", "30100")
    taker = next_id(v)

    # Act
    events = v.place("t", BTC, "BUY", "2", "30100", tif="FOK")

    # Assert: 30100 x 1: taker 15.05 USDT, maker 6.02 USDT
    assert summary(v, events, {a: "A", b: "B", taker: "T"}) == [
        ("accepted", "T", "2"),
        ("filled", "T", "30000", "1", "taker", 1_500_000_000, 0),
        ("filled", "A", "30000", "1", "maker", 600_000_000, 0),
        ("filled", "T", "30100", "1", "taker", 1_505_000_000, 0),
        ("filled", "B", "30100", "1", "maker", 602_000_000, 0),
    ]
    assert book(v) == table(EMPTY)


def test_fok_counts_only_the_liquidity_inside_its_limit() -> None:
    # Arrange: 2 BTC offered, but only 1 at or below 30000
    v = venue("a", "b", "t")
    rest(v, "a", "SELL", "1", "30000")
    rest(v, "b", "SELL", "1", "30100")

    # Act
    events = v.place("t", BTC, "BUY", "2", "30000", tif="FOK")

    # Assert
    assert summary(v, events) == [("rejected", RejectCode.FOK_NOT_FILLABLE)]
    assert book(v) == table(
        """
        | bid | price | ask |
        |     | 30100 | 1   |
        |     | 30000 | 1   |
        """
    )


def test_a_market_fok_order_is_rejected_when_the_take_bound_leaves_too_little() -> None:
    # Arrange: mark 30000, a market buy may pay at most 31500; the second lot is at 31600
    v = venue("a", "t")
    rest(v, "a", "SELL", "1", "30000")
    rest(v, "a", "SELL", "1", "31600")

    # Act
    events = v.place("t", BTC, "BUY", "2", tif="FOK")

    # Assert
    assert summary(v, events) == [("rejected", RejectCode.FOK_NOT_FILLABLE)]
    assert v.position("t", BTC) == 0


@pytest.mark.parametrize(
    ("side", "price", "outcome"),
    [
        ("BUY", "29999.9", "accepted"),
        ("BUY", "30000", "rejected"),
        ("SELL", "30000.1", "accepted"),
        ("SELL", "30000", "rejected"),
    ],
)
def test_gtx_is_rejected_when_it_would_touch_the_opposite_best_price(
    side: str, price: str, outcome: str
) -> None:
    # Arrange: another account's order at 30000 on the opposite side
    v = venue("m", "t")
    if side == "BUY":
        rest(v, "m", "SELL", "1", "30000")
    else:
        rest(v, "m", "BUY", "1", "30000")

    # Act
    events = v.place("t", BTC, side, "1", price, tif="GTX")

    # Assert
    if outcome == "rejected":
        assert summary(v, events) == [("rejected", RejectCode.POST_ONLY_WOULD_TAKE)]
        assert len(v.engine.orders) == 1
    else:
        assert summary(v, events) == [("accepted", next_id(v) - 1, "1")]
        assert v.engine.orders[accepted_id(events)].price_ticks == v.ticks(BTC, price)


def test_gtx_into_an_empty_book_rests() -> None:
    # Arrange
    v = venue("t")

    # Act
    events = v.place("t", BTC, "SELL", "1", "30000", tif="GTX")

    # Assert
    assert [row[0] for row in summary(v, events)] == ["accepted"]
    assert book(v) == table(ASK_ONLY)


def test_a_market_order_cannot_be_post_only() -> None:
    # Arrange
    v = venue("t")

    # Act
    events = v.place("t", BTC, "BUY", "1", tif="GTX")

    # Assert
    assert summary(v, events) == [("rejected", RejectCode.BAD_PARAMETER)]


def test_an_ioc_remainder_never_rests_even_after_a_partial_fill_at_a_better_price() -> None:
    # Arrange
    v = venue("m", "t")
    maker = rest(v, "m", "BUY", "0.5", "30100")
    taker = next_id(v)

    # Act
    events = v.place("t", BTC, "SELL", "1", "30000", tif="IOC")

    # Assert: 0.5 x 30100 = 15050 USDT: taker 7.525 USDT, maker 3.01 USDT
    assert summary(v, events, {maker: "M", taker: "T"}) == [
        ("accepted", "T", "1"),
        ("filled", "T", "30100", "0.5", "taker", 752_500_000, 0),
        ("filled", "M", "30100", "0.5", "maker", 301_000_000, 0),
        ("expired", "T", "0.5", ExpireReason.IOC_REMAINDER),
    ]
    assert book(v) == table(EMPTY)
