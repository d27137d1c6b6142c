"""Self-trade prevention: the incoming (taker) order's mode decides what happens at its own order.

Book in for the matrix (asks, in priority order)::

    B   another account, 1 @ 30000   (first in the queue)
    OWN the taker's own, 1 @ 30000
    C   another account, 1 @ 30100

The taker buys 3 up to 30100. Fees: 30000 USDT -> taker 15, maker 6 USDT;
30100 USDT -> taker 15.05, maker 6.02 USDT.
"""

from __future__ import annotations

from typing import Any

import pytest

from perpx.engine.codes import RejectCode
from perpx.engine.events import ExpireReason

from .helpers import BTC, book, next_id, rest, summary, table, venue

ACCEPTED = ("accepted", "T", "3")
FILL_B = [
    ("filled", "T", "30000", "1", "taker", 1_500_000_000, 0),
    ("filled", "B", "30000", "1", "maker", 600_000_000, 0),
]
FILL_C = [
    ("filled", "T", "30100", "1", "taker", 1_505_000_000, 0),
    ("filled", "C", "30100", "1", "maker", 602_000_000, 0),
]

STP_MATRIX: list[tuple[str, list[tuple[Any, ...]], str, str]] = [
    (
        # NONE: the account trades with itself (both sides of that trade are its own fills)
        "NONE",
        [
            ACCEPTED,
            *FILL_B,
            ("filled", "T", "30000", "1", "taker", 1_500_000_000, 0),
            ("filled", "OWN", "30000", "1", "maker", 600_000_000, 0),
            *FILL_C,
        ],
        "| bid | price | ask |",
        "2",  # bought 3, sold 1 to itself
    ),
    (
        # EXPIRE_TAKER: the taker stops at its own order; the resting order stays
        "EXPIRE_TAKER",
        [ACCEPTED, *FILL_B, ("expired", "T", "2", ExpireReason.STP_TAKER)],
        """
        | bid | price | ask |
        |     | 30100 | 1   |
        |     | 30000 | 1   |
        """,
        "1",
    ),
    (
        # EXPIRE_MAKER: the own order expires and matching goes on; the remainder rests
        "EXPIRE_MAKER",
        [ACCEPTED, *FILL_B, ("expired", "OWN", "1", ExpireReason.STP_MAKER), *FILL_C],
        """
        | bid | price | ask |
        | 1   | 30100 |     |
        """,
        "2",
    ),
    (
        # EXPIRE_BOTH: both orders expire at the first meeting
        "EXPIRE_BOTH",
        [
            ACCEPTED,
            *FILL_B,
            ("expired", "OWN", "1", ExpireReason.STP_MAKER),
            ("expired", "T", "2", ExpireReason.STP_TAKER),
        ],
        """
        | bid | price | ask |
        |     | 30100 | 1   |
        """,
        "1",
    ),
]


@pytest.mark.parametrize(
    ("mode", "events_out", "book_out", "position_out"), STP_MATRIX, ids=[r[0] for r in STP_MATRIX]
)
def test_self_trade_prevention_mode_of_the_taker(
    mode: str, events_out: list[tuple[Any, ...]], book_out: str, position_out: str
) -> None:
    # Arrange
    v = venue("a", "b", "c")
    b = rest(v, "b", "SELL", "1", "30000")
    own = rest(v, "a", "SELL", "1", "30000")
    c = rest(v, "c", "SELL", "1", "30100")
    taker = next_id(v)

    # Act
    events = v.place("a", BTC, "BUY", "3", "30100", stp=mode)

    # Assert
    assert summary(v, events, {b: "B", own: "OWN", c: "C", taker: "T"}) == events_out
    assert book(v) == table(book_out)
    assert v.position("a", BTC) == int(position_out)


def test_a_self_trade_charges_both_fees_to_the_same_account() -> None:
    # Arrange
    v = venue("a")
    rest(v, "a", "SELL", "1", "30000")

    # Act
    v.place("a", BTC, "BUY", "1", "30000", stp="NONE")

    # Assert: flat again, but paid taker 15 + maker 6 USDT on 30000 USDT
    assert v.position("a", BTC) == 0
    assert v.balance("a") == 100000 - 15 - 6
    assert book(v) == table("| bid | price | ask |")


@pytest.mark.parametrize("mode", ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"])
def test_prevention_applies_only_between_orders_of_the_same_account(mode: str) -> None:
    # Arrange
    v = venue("m", "t")
    maker = rest(v, "m", "SELL", "1", "30000", stp=mode)
    taker = next_id(v)

    # Act
    events = v.place("t", BTC, "BUY", "1", "30000", stp=mode)

    # Assert
    assert summary(v, events, {maker: "M", taker: "T"}) == [
        ("accepted", "T", "1"),
        ("filled", "T", "30000", "1", "taker", 1_500_000_000, 0),
        ("filled", "M", "30000", "1", "maker", 600_000_000, 0),
    ]


def test_the_resting_order_mode_does_not_protect_it_from_its_own_taker() -> None:
    # Arrange: the maker asked for EXPIRE_BOTH, the taker for NONE
    v = venue("a")
    maker = rest(v, "a", "SELL", "1", "30000", stp="EXPIRE_BOTH")
    taker = next_id(v)

    # Act
    events = v.place("a", BTC, "BUY", "1", "30000", stp="NONE")

    # Assert: the taker's mode decides, so they trade
    assert summary(v, events, {maker: "M", taker: "T"}) == [
        ("accepted", "T", "1"),
        ("filled", "T", "30000", "1", "taker", 1_500_000_000, 0),
        ("filled", "M", "30000", "1", "maker", 600_000_000, 0),
    ]


@pytest.mark.parametrize(
    ("mode", "outcome"),
    [
        ("NONE", "filled"),
        ("EXPIRE_TAKER", "rejected"),
        ("EXPIRE_BOTH", "rejected"),
        ("EXPIRE_MAKER", "filled"),
    ],
)
def test_fok_counts_liquidity_as_self_trade_prevention_would_leave_it(mode: str, outcome: str) -> None:
    # Arrange: own ask first, then another account's 1 @ 30000
    v = venue("a", "b")
    own = rest(v, "a", "SELL", "1", "30000")
    other = rest(v, "b", "SELL", "1", "30000")
    taker = next_id(v)

    # Act: FOK for 1
    events = v.place("a", BTC, "BUY", "1", "30000", tif="FOK", stp=mode)

    # Assert: EXPIRE_TAKER/BOTH stop at the own order (nothing fillable);
    # EXPIRE_MAKER skips it; NONE fills against it
    out = summary(v, events, {own: "OWN", other: "OTHER", taker: "T"})
    if outcome == "rejected":
        assert out == [("rejected", RejectCode.FOK_NOT_FILLABLE)]
        assert book(v) == table(
            """
            | bid | price | ask |
            |     | 30000 | 2   |
            """
        )
    elif mode == "NONE":
        assert out == [
            ("accepted", "T", "1"),
            ("filled", "T", "30000", "1", "taker", 1_500_000_000, 0),
            ("filled", "OWN", "30000", "1", "maker", 600_000_000, 0),
        ]
    else:
        assert out == [
            ("accepted", "T", "1"),
            ("expired", "OWN", "1", ExpireReason.STP_MAKER),
            ("filled", "T", "30000", "1", "taker", 1_500_000_000, 0),
            ("filled", "OTHER", "30000", "1", "maker", 600_000_000, 0),
        ]
        assert book(v) == table("| bid | price | ask |")


def test_expire_maker_releases_the_expired_order_margin() -> None:
    # Arrange: an own bid reserves 30000 / 20 = 1500 USDT of order margin
    v = venue("a")
    rest(v, "a", "BUY", "1", "30000")
    position = v.engine.position(v.names["a"], v.spec(BTC).market)
    assert position.order_margin_atoms == 1500 * 10**8

    # Act: an own sell with EXPIRE_MAKER meets it; nothing else on the book
    events = v.place("a", BTC, "SELL", "1", "30000", stp="EXPIRE_MAKER")

    # Assert: the bid expired and the sell rests in its place, as an ask reserving 1500 USDT
    assert [row[0] for row in summary(v, events)] == ["accepted", "expired"]
    assert book(v) == table(
        """
        | bid | price | ask |
        |     | 30000 | 1   |
        """
    )
    assert position.order_margin_atoms == 1500 * 10**8
