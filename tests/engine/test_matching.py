"""Matching: price-time priority, trades at the maker's price, LIMIT and MARKET orders.

Fees in this file are the demo venue's base tier: maker 0.02%, taker 0.05%.
1 USDT = 10**8 atoms, so a 30,000 USDT fill costs the taker 15 USDT = 1_500_000_000
atoms and the maker 6 USDT = 600_000_000 atoms.
"""

from __future__ import annotations

import pytest

from perpx.engine.codes import RejectCode
from perpx.engine.commands import AdvanceClock
from perpx.engine.events import ExpireReason

from .helpers import BTC, book, next_id, rest, summary, table, venue


def test_orders_at_the_same_price_fill_first_in_first_out() -> None:
    # Arrange: two asks at 30000, a's first
    v = venue("a", "b", "c")
    first = rest(v, "a", "SELL", "1", "30000")
    second = rest(v, "b", "SELL", "1", "30000")
    taker = next_id(v)

    # Act
    events = v.place("c", BTC, "BUY", "1.5", "30000")

    # Assert: a's whole order, then half of b's
    # 1 x 30000 = 30000 USDT: taker 15 USDT, maker 6 USDT
    # 0.5 x 30000 = 15000 USDT: taker 7.5 USDT, maker 3 USDT
    assert summary(v, events, {first: "A", second: "B", taker: "T"}) == [
        ("accepted", "T", "1.5"),
        ("filled", "T", "30000", "1", "taker", 1_500_000_000, 0),
        ("filled", "A", "30000", "1", "maker", 600_000_000, 0),
        ("filled", "T", "30000", "0.5", "taker", 750_000_000, 0),
        ("filled", "B", "30000", "0.5", "maker", 300_000_000, 0),
    ]
    assert book(v) == table(
        """
        | bid | price | ask |
        |     | 30000 | 0.5 |
        """
    )


@pytest.mark.parametrize(
    ("maker_side", "worse", "better", "taker_side", "taker_price", "book_out"),
    [
        (
            "SELL",
            "30100",
            "30000",
            "BUY",
            "30100",
            """
            | bid | price | ask |
            |     | 30100 | 1   |
            """,
        ),
        (
            "BUY",
            "29900",
            "30000",
            "SELL",
            "29900",
            """
            | bid | price | ask |
            | 1   | 29900 |     |
            """,
        ),
    ],
    ids=["asks", "bids"],
)
def test_a_better_price_fills_before_an_earlier_worse_price(
    maker_side: str, worse: str, better: str, taker_side: str, taker_price: str, book_out: str
) -> None:
    # Arrange: the worse price arrives first
    v = venue("a", "b", "c")
    rest(v, "a", maker_side, "1", worse)
    best = rest(v, "b", maker_side, "1", better)
    taker = next_id(v)

    # Act
    events = v.place("c", BTC, taker_side, "1", taker_price)

    # Assert: the later, better order trades, at its own price 30000
    assert summary(v, events, {best: "BEST", taker: "T"}) == [
        ("accepted", "T", "1"),
        ("filled", "T", "30000", "1", "taker", 1_500_000_000, 0),
        ("filled", "BEST", "30000", "1", "maker", 600_000_000, 0),
    ]
    assert book(v) == table(book_out)


def test_a_large_order_walks_the_levels_and_rests_its_remainder() -> None:
    # Arrange
    v = venue("a", "b", "c", "t")
    a = rest(v, "a", "SELL", "1", "30000")
    b = rest(v, "b", "SELL", "2", "30100")
    c = rest(v, "c", "SELL", "3", "30200")
    taker = next_id(v)
    assert book(v) == table(
        """
        | bid | price | ask |
        |     | 30200 | 3   |
        |     | 30100 | 2   |
        |     | 30000 | 1   |
        """
    )

    # Act
    events = v.place("t", BTC, "BUY", "7", "30200")

    # Assert: each level at its own price; the last 1 rests as the new best bid
    # 1 x 30000 = 30000  -> taker 15     USDT, maker  6    USDT
    # 2 x 30100 = 60200  -> taker 30.1   USDT, maker 12.04 USDT
    # 3 x 30200 = 90600  -> taker 45.3   USDT, maker 18.12 USDT
    assert summary(v, events, {a: "A", b: "B", c: "C", taker: "T"}) == [
        ("accepted", "T", "7"),
        ("filled", "T", "30000", "1", "taker", 1_500_000_000, 0),
        ("filled", "A", "30000", "1", "maker", 600_000_000, 0),
        ("filled", "T", "30100", "2", "taker", 3_010_000_000, 0),
        ("filled", "B", "30100", "2", "maker", 1_204_000_000, 0),
        ("filled", "T", "30200", "3", "taker", 4_530_000_000, 0),
        ("filled", "C", "30200", "3", "maker", 1_812_000_000, 0),
    ]
    assert book(v) == table(
        """
        | bid | price | ask |
        | 1   | 30200 |     |
        """
    )
    assert v.position("t", BTC) == 6


@pytest.mark.parametrize(
    ("maker_side", "taker_side", "taker_price"),
    [("SELL", "BUY", "31000"), ("BUY", "SELL", "29000")],
    ids=["buyer-takes", "seller-takes"],
)
def test_a_trade_prints_at_the_maker_price_not_the_taker_limit(
    maker_side: str, taker_side: str, taker_price: str
) -> None:
    # Arrange
    v = venue("m", "t")
    maker = rest(v, "m", maker_side, "1", "30000")
    taker = next_id(v)

    # Act
    events = v.place("t", BTC, taker_side, "1", taker_price)

    # Assert: the taker gets the improvement; fees are on 30000, not on its limit
    assert summary(v, events, {maker: "M", taker: "T"}) == [
        ("accepted", "T", "1"),
        ("filled", "T", "30000", "1", "taker", 1_500_000_000, 0),
        ("filled", "M", "30000", "1", "maker", 600_000_000, 0),
    ]
    assert book(v) == table("| bid | price | ask |")


def test_a_limit_order_that_does_not_cross_rests_at_its_price() -> None:
    # Arrange
    v = venue("a", "b")
    rest(v, "a", "SELL", "1", "30000")

    # Act
    events = v.place("b", BTC, "BUY", "2", "29999.9")

    # Assert
    assert [e[0] for e in summary(v, events)] == ["accepted"]
    assert book(v) == table(
        """
        | bid | price   | ask |
        |     | 30000   | 1   |
        | 2   | 29999.9 |     |
        """
    )


@pytest.mark.parametrize(
    ("side", "levels", "book_out", "fills_out"),
    [
        (
            # mark 30000: a market buy may pay at most 30000 x 1.05 = 31500
            "BUY",
            [("SELL", "30000"), ("SELL", "31500"), ("SELL", "31500.1")],
            """
            | bid | price   | ask |
            |     | 31500.1 | 1   |
            """,
            # taker 0.05%: 30000 -> 15 USDT, 31500 -> 15.75 USDT
            [("30000", 1_500_000_000), ("31500", 1_575_000_000)],
        ),
        (
            # a market sell may receive no less than 30000 x 0.95 = 28500
            "SELL",
            [("BUY", "30000"), ("BUY", "28500"), ("BUY", "28499.9")],
            """
            | bid | price   | ask |
            | 1   | 28499.9 |     |
            """,
            # taker 0.05%: 30000 -> 15 USDT, 28500 -> 14.25 USDT
            [("30000", 1_500_000_000), ("28500", 1_425_000_000)],
        ),
    ],
    ids=["buy", "sell"],
)
def test_a_market_order_stops_at_the_take_bound_and_expires_the_rest(
    side: str, levels: list[tuple[str, str]], book_out: str, fills_out: list[tuple[str, int]]
) -> None:
    # Arrange: one lot per level, the last one just beyond the bound
    v = venue("m", "t")
    for maker_side, price in levels:
        rest(v, "m", maker_side, "1", price)
    taker = next_id(v)

    # Act
    events = v.place("t", BTC, side, "3")

    # Assert
    out = summary(v, events, {taker: "T"})
    assert out[0] == ("accepted", "T", "3")
    taker_fills = [(row[2], row[5]) for row in out if row[0] == "filled" and row[1] == "T"]
    assert taker_fills == fills_out
    assert out[-1] == ("expired", "T", "1", ExpireReason.MARKET_TAKE_BOUND)
    assert book(v) == table(book_out)


def test_a_market_order_with_every_price_beyond_the_bound_is_rejected() -> None:
    # Arrange: the only ask is above 31500 (mark 30000 x 1.05)
    v = venue("m", "t")
    rest(v, "m", "SELL", "1", "31600")
    before = v.hash()

    # Act
    events = v.place("t", BTC, "BUY", "1")

    # Assert: Binance -4131, nothing accepted, nothing changed
    assert [(type(e).__name__, getattr(e, "code", None)) for e in events] == [
        ("OrderRejected", RejectCode.MARKET_TAKE_BOUND)
    ]
    assert v.hash() == before
    assert book(v) == table(
        """
        | bid | price | ask |
        |     | 31600 | 1   |
        """
    )


def test_a_market_order_into_an_empty_book_expires_for_no_liquidity() -> None:
    # Arrange
    v = venue("t")
    taker = next_id(v)

    # Act
    events = v.place("t", BTC, "SELL", "1")

    # Assert
    assert summary(v, events, {taker: "T"}) == [
        ("accepted", "T", "1"),
        ("expired", "T", "1", ExpireReason.NO_LIQUIDITY),
    ]
    assert book(v) == table("| bid | price | ask |")
    assert v.position("t", BTC) == 0


def test_a_market_order_larger_than_the_book_takes_everything_then_expires_for_no_liquidity() -> None:
    # Arrange
    v = venue("m", "t")
    maker = rest(v, "m", "BUY", "1", "30000")
    taker = next_id(v)

    # Act
    events = v.place("t", BTC, "SELL", "2.5")

    # Assert
    assert summary(v, events, {maker: "M", taker: "T"}) == [
        ("accepted", "T", "2.5"),
        ("filled", "T", "30000", "1", "taker", 1_500_000_000, 0),
        ("filled", "M", "30000", "1", "maker", 600_000_000, 0),
        ("expired", "T", "1.5", ExpireReason.NO_LIQUIDITY),
    ]
    assert book(v) == table("| bid | price | ask |")
    assert v.position("t", BTC) == -1
    assert v.position("m", BTC) == 1


def test_a_market_order_never_rests_and_a_limit_order_does() -> None:
    # Arrange
    v = venue("m", "t")
    rest(v, "m", "SELL", "1", "30000")

    # Act
    market = v.place("t", BTC, "BUY", "2")
    limit = v.place("t", BTC, "BUY", "1", "29000")

    # Assert: the market remainder expired; only the limit order rests
    assert summary(v, market)[-1][0] == "expired"
    assert [e[0] for e in summary(v, limit)] == ["accepted"]
    assert book(v) == table(
        """
        | bid | price | ask |
        | 1   | 29000 |     |
        """
    )


def test_both_sides_of_a_trade_move_positions_and_wallets_by_the_trade() -> None:
    # Arrange
    v = venue("m", "t")
    rest(v, "m", "SELL", "2", "30000")

    # Act
    v.place("t", BTC, "BUY", "2", "30000")

    # Assert: 2 x 30000 = 60000 USDT; taker pays 30 USDT, maker 12 USDT, nothing else moves yet
    assert v.position("t", BTC) == 2
    assert v.position("m", BTC) == -2
    assert v.balance("t") == 100000 - 30
    assert v.balance("m") == 100000 - 12
    assert v.engine.fees_atoms[v.config.settlement_asset] == (30 + 12) * 10**8


def test_advance_clock_backwards_is_rejected_and_time_stays() -> None:
    # Arrange
    v = venue("m", "t")
    now = v.engine.now_ns
    # Act
    events = v.apply(AdvanceClock(ts_ns=now - 1))
    # Assert
    assert [getattr(e, "code", None) for e in events] == [RejectCode.CLOCK_BACKWARDS]
    assert v.engine.now_ns == now
