"""Properties of the TCA arithmetic over generated orders (Hypothesis).

* a sell mirrored from a buy (every price ``p`` becomes ``2 P_a - p``) costs exactly the same;
* scaling every price and fee by ``k`` scales money by ``k`` and leaves every bps metric unchanged;
* fills at the mid pay no spread: spread + impact, spread capture and effective spread are zero;
* the Perold identity holds exactly for any input.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from perpx.tca.analysis import Analysis, analyse
from perpx.tca.inputs import Fill, ParentOrder, Quote, Side

CENT = Decimal("0.01")

prices = st.integers(8_000, 12_000).map(lambda n: n * CENT)
quantities = st.integers(1, 5_000).map(lambda n: n * Decimal("0.001"))
fees = st.integers(-500, 1_000).map(lambda n: n * Decimal("0.0001"))
half_spreads = st.integers(0, 50).map(lambda n: n * CENT)


@st.composite
def buys(draw: st.DrawFn) -> tuple[ParentOrder, list[Fill], list[Quote]]:
    """A buy with 1-6 fills, one quote per fill (at its time) and the order's reference prices."""
    count = draw(st.integers(1, 6))
    fills = []
    quotes = []
    for index in range(count):
        time_ms = 1_000 * (index + 1)
        price = draw(prices)
        mid = draw(prices)
        half = draw(half_spreads)
        fills.append(Fill(time_ms, price, draw(quantities), draw(fees), maker=draw(st.booleans())))
        quotes.append(Quote(time_ms, mid - half, mid + half))
    filled = sum((f.qty for f in fills), Decimal(0))
    extra = draw(st.integers(0, 3_000)) * Decimal("0.001")
    order = ParentOrder(Side.BUY, filled + extra, draw(prices), draw(prices), draw(prices))
    quotes.append(Quote(100_000, quotes[-1].bid, quotes[-1].ask))  # the data reach past the last fill
    return order, fills, quotes


def _money(analysis: Analysis) -> list[Decimal | None]:
    sf = analysis.shortfall
    return [sf.shortfall, sf.delay, sf.execution, sf.spread_impact, sf.timing, sf.opportunity, sf.fees]


def _mirror(order: ParentOrder, fills: list[Fill], quotes: list[Quote]) -> Any:
    def m(p: Decimal) -> Decimal:
        return 2 * order.arrival_price - p

    assert order.end_price is not None
    sell = ParentOrder(Side.SELL, order.qty, m(order.decision_price), order.arrival_price, m(order.end_price))
    return (
        sell,
        [Fill(f.time_ms, m(f.price), f.qty, f.fee, f.maker) for f in fills],
        [Quote(q.time_ms, m(q.ask), m(q.bid)) for q in quotes],
    )


@settings(max_examples=150, deadline=None)
@given(buys())
def test_a_sell_mirrored_from_a_buy_costs_the_same(case: tuple[ParentOrder, list[Fill], list[Quote]]) -> None:
    # Arrange
    order, fills, quotes = case
    sell, sell_fills, sell_quotes = _mirror(order, fills, quotes)
    # Act
    buy_result = analyse(order, fills, (), quotes)
    sell_result = analyse(sell, sell_fills, (), sell_quotes)
    # Assert: money exactly, arrival slippage (same P_a) and spread capture to the last digit
    assert _money(buy_result) == _money(sell_result)
    buy_summary, sell_summary = buy_result.summary(), sell_result.summary()
    assert buy_summary["arrival"] == sell_summary["arrival"]
    assert buy_summary["spread"]["spread_capture"] == sell_summary["spread"]["spread_capture"]
    assert [s.capture for s in buy_result.spreads] == [s.capture for s in sell_result.spreads]


def _bps_fields(summary: dict[str, Any]) -> dict[str, Any]:
    return {
        "arrival": summary["arrival"],
        "shortfall": {k: v for k, v in summary["shortfall"].items() if k.endswith("_bps")},
        "fee_bps": summary["fills"]["fee_bps"],
        "spread": {k: v for k, v in summary["spread"].items() if k != "mid_source"},
        "markouts": summary["markouts_bps"],
        "reversion": summary["reversion_bps"],
    }


@settings(max_examples=150, deadline=None)
@given(buys(), st.sampled_from([Decimal(2), Decimal(10), Decimal("0.25"), Decimal(3), Decimal("1.7")]))
def test_scaling_every_price_leaves_bps_metrics_unchanged(
    case: tuple[ParentOrder, list[Fill], list[Quote]], k: Decimal
) -> None:
    # Arrange
    order, fills, quotes = case
    assert order.end_price is not None
    scaled = ParentOrder(
        order.side, order.qty, k * order.decision_price, k * order.arrival_price, k * order.end_price
    )
    scaled_fills = [Fill(f.time_ms, k * f.price, f.qty, k * f.fee, f.maker) for f in fills]
    scaled_quotes = [Quote(q.time_ms, k * q.bid, k * q.ask) for q in quotes]
    # Act
    base = analyse(order, fills, (), quotes)
    result = analyse(scaled, scaled_fills, (), scaled_quotes)
    # Assert
    assert _bps_fields(base.summary()) == _bps_fields(result.summary())
    assert [None if v is None else k * v for v in _money(base)] == _money(result)


@settings(max_examples=150, deadline=None)
@given(buys(), st.sampled_from([Side.BUY, Side.SELL]))
def test_fills_at_the_mid_pay_no_spread(
    case: tuple[ParentOrder, list[Fill], list[Quote]], side: Side
) -> None:
    # Arrange: every fill at the mid of the quote in force
    order, fills, quotes = case
    order = ParentOrder(side, order.qty, order.decision_price, order.arrival_price, order.end_price)
    at_mid = [Fill(f.time_ms, q.mid, f.qty, f.fee, f.maker) for f, q in zip(fills, quotes, strict=False)]
    # Act
    result = analyse(order, at_mid, (), quotes)
    # Assert
    assert result.shortfall.spread_impact == 0
    assert result.shortfall.timing == result.shortfall.execution
    assert all(s.effective_bps == 0 for s in result.spreads)
    assert all(s.capture in (0, None) for s in result.spreads)


@settings(max_examples=200, deadline=None)
@given(buys(), st.sampled_from([Side.BUY, Side.SELL]))
def test_perold_identity_holds_exactly_for_any_order(
    case: tuple[ParentOrder, list[Fill], list[Quote]], side: Side
) -> None:
    order, fills, quotes = case
    order = ParentOrder(side, order.qty, order.decision_price, order.arrival_price, order.end_price)
    sf = analyse(order, fills, (), quotes).shortfall
    assert sf.delay + sf.execution + sf.opportunity + sf.fees == sf.shortfall
    assert sf.spread_impact is not None and sf.timing is not None
    assert sf.spread_impact + sf.timing == sf.execution
