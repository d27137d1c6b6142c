"""Interval VWAP with and without own fills, the mid, spread capture, markouts: rules by hand."""

from __future__ import annotations

from decimal import Decimal as D  # noqa: N817 (the tables read better)

import pytest

from perpx.tca.analysis import analyse
from perpx.tca.benchmarks import QuoteBook, interval_vwap, quotes_from_tape
from perpx.tca.inputs import Fill, ParentOrder, Quote, Side, Trade
from perpx.tca.markouts import fill_markout, reversion
from perpx.tca.spread import fill_spread

OWN = [Fill(1000, D(102), D(4)), Fill(2000, D(103), D(6))]
TAPE = [
    Trade(500, D(99), D(3)),
    Trade(1000, D(102), D(4)),
    Trade(1500, D(100), D(10)),
    Trade(2000, D(103), D(6)),
    Trade(2500, D(101), D(5)),
]


def test_interval_vwap_includes_own_fills_and_ex_own_takes_them_out() -> None:
    # Act: [1000, 2000] holds 4@102 + 10@100 + 6@103 = 2026 over 20
    result = interval_vwap(TAPE, OWN, 1000, 2000)
    # Assert
    assert result.vwap == D("101.3")
    assert result.vwap_ex_own == D(100)
    assert result.market_qty == 20 and result.own_qty == 10 and result.participation == D("0.5")


def test_own_fills_inside_vwap_are_taken_out_by_trade_id_when_both_sides_have_ids() -> None:
    # Arrange: an outside print at the same price and size as an own fill must stay
    tape = [Trade(t.time_ms, t.price, t.qty, n) for n, t in enumerate(TAPE, start=1)]
    tape.append(Trade(1800, D(102), D(4), 99))
    own = [Fill(1000, D(102), D(4), trade_id=2), Fill(2000, D(103), D(6), trade_id=4)]
    # Act
    result = interval_vwap(tape, own, 1000, 2000)
    # Assert: ex own = (1000 + 408) / 14
    assert result.vwap_ex_own is not None
    assert result.vwap_ex_own.quantize(D("1e-20")) == (D(1408) / D(14)).quantize(D("1e-20"))


def _flagged(own_at: set[int]) -> list[Trade]:
    """TAPE with TRADES.csv's ``own`` column: 1 for the prints at the times in ``own_at``."""
    return [Trade(t.time_ms, t.price, t.qty, own=t.time_ms in own_at) for t in TAPE]


def _mirrored(trades: list[Trade]) -> list[Trade]:
    return [Trade(t.time_ms, 200 - t.price, t.qty, own=t.own) for t in trades]


# (name, side, own fills (time, price, qty), tape with its own flags, [T0, T1],
#  interval_vwap, interval_vwap_ex_own, vwap_slippage_bps, vwap_ex_own_slippage_bps, participation)
VWAP_RULES = [
    (
        # [1000, 2000]: 4@102 + 10@100 + 6@103 = 2026 / 20 = 101.3; ex own 1000 / 10 = 100
        # p_bar 102.6: 1.3/101.3 = 128.3317 bps; 2.6/100 = 260 bps; participation 10/20
        "buy_own_fills_inside_vwap",
        Side.BUY,
        [(1000, "102", "4"), (2000, "103", "6")],
        _flagged({1000, 2000}),
        (1000, 2000),
        "101.3",
        "100",
        "128.3317",
        "260.0000",
        "0.5000",
    ),
    (
        # the buy mirrored around 100: VWAP 98.7, ex own 100, p_bar 97.4; a sell's cost is
        # -(97.4 - 98.7)/98.7 = 131.7123 bps and -(97.4 - 100)/100 = 260 bps
        "sell_own_fills_inside_vwap",
        Side.SELL,
        [(1000, "98", "4"), (2000, "97", "6")],
        _mirrored(_flagged({1000, 2000})),
        (1000, 2000),
        "98.7",
        "100",
        "131.7123",
        "260.0000",
        "0.5000",
    ),
    (
        # the whole tape [500, 2500]: (297 + 408 + 1000 + 618 + 505) / 28 = 101; ex own
        # (297 + 1000 + 505) / 18 = 100.111...; p_bar 102.6 over 101 = 158.4158 bps
        "buy_over_a_longer_life",
        Side.BUY,
        [(1000, "102", "4"), (2000, "103", "6")],
        _flagged({1000, 2000}),
        (500, 2500),
        "101",
        "100.111111111111",
        "158.4158",
        "248.6127",
        "0.3571",
    ),
    (
        # a buy that bought below the market: VWAP slippage is negative (a gain);
        # (100 - 101.3)/101.3 and, ex own, (100 - 102.6)/102.6 with 102.6 = (408 + 618)/10
        "buy_that_beat_the_vwap",
        Side.BUY,
        [(1500, "100", "10")],
        _flagged({1500}),
        (1000, 2000),
        "101.3",
        "102.6",
        "-128.3317",
        "-253.4113",
        "0.5000",
    ),
]


@pytest.mark.parametrize(
    ("side", "own", "tape", "life", "vwap", "ex_own", "slippage", "ex_own_slippage", "participation"),
    [row[1:] for row in VWAP_RULES],
    ids=[row[0] for row in VWAP_RULES],
)
def test_interval_vwap_rule(
    side: Side,
    own: list[tuple[int, str, str]],
    tape: list[Trade],
    life: tuple[int, int],
    vwap: str,
    ex_own: str,
    slippage: str,
    ex_own_slippage: str,
    participation: str,
) -> None:
    # Arrange
    fills = [Fill(t, D(p), D(q)) for t, p, q in own]
    order = ParentOrder(side, D(10), D(100), D(100), None, life[0], life[1])
    # Act
    summary = analyse(order, fills, tape).summary()
    # Assert
    assert summary["interval_vwap"] == vwap and summary["interval_vwap_ex_own"] == ex_own
    assert summary["vwap_slippage_bps"] == slippage
    assert summary["vwap_ex_own_slippage_bps"] == ex_own_slippage
    assert summary["participation"] == participation


def test_the_own_flag_decides_what_ex_own_leaves_out() -> None:
    # Arrange: an outside print at the same time, price and size as an own fill must stay
    tape = [*_flagged({1000, 2000}), Trade(1000, D(102), D(4), own=False)]
    # Act
    result = interval_vwap(tape, OWN, 1000, 2000)
    # Assert: ex own = (1000 + 408) / 14, with 24 traded in all
    assert result.vwap_ex_own is not None and result.market_qty == 24
    assert result.vwap_ex_own.quantize(D("1e-20")) == (D(1408) / D(14)).quantize(D("1e-20"))


def test_a_tape_smaller_than_the_own_fills_is_refused() -> None:
    with pytest.raises(ValueError, match="whole tape"):
        interval_vwap([Trade(1000, D(102), D(1))], OWN, 1000, 2000)


def test_mid_is_the_last_quote_at_or_before_the_time() -> None:
    book = QuoteBook([Quote(1000, D(99), D(101)), Quote(2000, D(100), D(104))])
    assert book.mid_at(999) is None
    assert book.mid_at(1000) == D(100) and book.mid_at(1999) == D(100) and book.mid_at(2000) == D(102)
    assert book.mid_known_at(2001) is None


QUOTE = [Quote(0, D(101), D(102)), Quote(1000, D(102), D(103))]


@pytest.mark.parametrize(
    ("side", "price", "capture", "effective_bps"),
    [
        (Side.BUY, "101", "1", "-98.5222"),  # passive at our own touch (the bid)
        (Side.BUY, "101.5", "0", "0.0000"),  # at the mid
        (Side.BUY, "102", "-1", "98.5222"),  # crossed at the far touch (the ask)
        (Side.BUY, "102.5", "-2", "197.0443"),  # walked the book
        (Side.SELL, "102", "1", "-98.5222"),  # passive at the ask
        (Side.SELL, "101", "-1", "98.5222"),  # crossed at the bid
    ],
)
def test_spread_capture_rule(side: Side, price: str, capture: str, effective_bps: str) -> None:
    # Act: mid 101.5, half spread 0.5; ES = 2 s (p - m) / m
    spread = fill_spread(side.sign, Fill(500, D(price), D(1)), QuoteBook(QUOTE))
    # Assert
    assert spread.capture == D(capture)
    assert spread.effective_bps is not None
    assert spread.effective_bps.quantize(D("0.0001")) == D(effective_bps)


def test_effective_spread_is_realized_spread_plus_price_impact() -> None:
    # Act: a buy at the ask 102 at 500 ms; one second later the mid is 102.5
    spread = fill_spread(1, Fill(500, D(102), D(1)), QuoteBook([*QUOTE, Quote(5000, D(102), D(103))]))
    # Assert: ES 2*0.5/101.5, RS 2*(102-102.5)/101.5, PI 2*(102.5-101.5)/101.5
    realized, impact = spread.realized_bps[1000], spread.impact_bps[1000]
    assert realized is not None and impact is not None and spread.effective_bps is not None
    assert abs(realized + impact - spread.effective_bps) < D(
        "1e-20"
    )  # the test subtracts in a 28-digit context
    assert impact.quantize(D("0.0001")) == D("197.0443")


def test_markout_is_positive_when_the_price_moves_our_way() -> None:
    book = QuoteBook([*QUOTE, Quote(5000, D(102), D(103))])
    # a buy at 101 marked one second later at mid 102.5: +1.5/101 = +148.5149 bps
    buy = fill_markout(1, Fill(0, D(101), D(1)), book, 1000)
    sell = fill_markout(-1, Fill(0, D(101), D(1)), book, 1000)
    assert buy is not None and sell is not None
    assert buy.quantize(D("0.0001")) == D("148.5149") and sell.copy_negate() == buy
    assert fill_markout(1, Fill(0, D(101), D(1)), book, 10_000) is None  # the quotes end at 5000


def test_reversion_is_positive_when_the_price_comes_back_after_the_order() -> None:
    # Arrange: a buy ends at 1000 with the mid at 102.5, which falls back to 101.5 by 5 s
    book = QuoteBook([*QUOTE, Quote(4000, D(101), D(102)), Quote(6000, D(101), D(102))])
    order = ParentOrder(Side.BUY, D(1), D(100), D(100))
    # Act
    value = reversion(order, book, 1000, 5000)
    # Assert: (102.5 - 101.5) / 100 = 100 bps
    assert value == D(100)


def test_quotes_inferred_from_the_tape_take_effect_after_the_print_and_skip_crossed_pairs() -> None:
    # Arrange: (time, price, buyer_maker): a sell taker prints the bid, a buy taker the ask
    tape = [(100, D(99), True), (200, D(101), False), (300, D(102), True), (400, D(103), False)]
    # Act
    quotes = quotes_from_tape(tape)
    # Assert: (99, 101) from 201; (102, 101) is crossed and skipped; (102, 103) from 401
    assert quotes == [Quote(201, D(99), D(101)), Quote(401, D(102), D(103))]
