"""Properties of the TCA arithmetic over generated orders (Hypothesis).

* a sell mirrored from a buy (every price ``p`` becomes ``2 P_a - p``) costs exactly the same:
  every ``is_*`` money term, arrival slippage with and without fees, spread capture;
* scaling every price and fee by ``k`` scales money by ``k`` and leaves every bps metric and
  ratio of tca.json unchanged;
* fills at the mid pay no spread: ``is_spread_impact``, spread capture and effective spread are 0;
* the Perold identity holds exactly for any input: ``is_delay + is_execution + is_opportunity +
  is_fees == is_total`` and ``is_spread_impact + is_timing == is_execution``, as Decimals and as
  tca.json's strings read back.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from perpx.tca.analysis import Analysis, analyse
from perpx.tca.inputs import Fill, ParentOrder, Quote, Side, Trade

CENT = Decimal("0.01")

prices = st.integers(8_000, 12_000).map(lambda n: n * CENT)
quantities = st.integers(1, 5_000).map(lambda n: n * Decimal("0.001"))
fees = st.integers(-500, 1_000).map(lambda n: n * Decimal("0.0001"))
half_spreads = st.integers(0, 50).map(lambda n: n * CENT)


Case = tuple[ParentOrder, list[Fill], list[Quote], list[Trade]]


@st.composite
def buys(draw: st.DrawFn) -> Case:
    """A buy with 1-6 fills, one quote per fill (at its time), the order's reference prices and a
    tape holding each fill (own = 1) and another market trade at its time (own = 0)."""
    count = draw(st.integers(1, 6))
    fills = []
    quotes = []
    trades = []
    for index in range(count):
        time_ms = 1_000 * (index + 1)
        price = draw(prices)
        mid = draw(prices)
        half = draw(half_spreads)
        fill = Fill(time_ms, price, draw(quantities), draw(fees), maker=draw(st.booleans()))
        fills.append(fill)
        quotes.append(Quote(time_ms, mid - half, mid + half))
        trades.append(Trade(time_ms, fill.price, fill.qty, own=True))
        trades.append(Trade(time_ms, draw(prices), draw(quantities), own=False))
    filled = sum((f.qty for f in fills), Decimal(0))
    extra = draw(st.integers(0, 3_000)) * Decimal("0.001")
    order = ParentOrder(Side.BUY, filled + extra, draw(prices), draw(prices), draw(prices))
    quotes.append(Quote(400_000, quotes[-1].bid, quotes[-1].ask))  # the data reach past 300 s
    return order, fills, quotes, trades


MONEY = ["is_total", "is_delay", "is_execution", "is_spread_impact", "is_timing", "is_opportunity", "is_fees"]
SCALE_FREE = [
    "fill_rate",
    "arrival_slippage_bps",
    "arrival_slippage_with_fees_bps",
    "is_bps",
    "vwap_slippage_bps",
    "vwap_ex_own_slippage_bps",
    "participation",
    "maker_share",
    "fee_bps",
    "markout_bps",
    "spread_capture",
    "effective_spread_bps",
    *(f"{name}_bps" for name in MONEY[1:]),
    "realized_spread_bps",
    "price_impact_bps",
    "reversion_bps",
]
"""tca.json's bps metrics and ratios: unchanged when every price is scaled."""


def _money(analysis: Analysis) -> list[Decimal | None]:
    sf = analysis.shortfall
    return [sf.shortfall, sf.delay, sf.execution, sf.spread_impact, sf.timing, sf.opportunity, sf.fees]


def _mirror(order: ParentOrder, fills: list[Fill], quotes: list[Quote], trades: list[Trade]) -> Any:
    def m(p: Decimal) -> Decimal:
        return 2 * order.arrival_price - p

    assert order.end_price is not None
    sell = ParentOrder(Side.SELL, order.qty, m(order.decision_price), order.arrival_price, m(order.end_price))
    return (
        sell,
        [Fill(f.time_ms, m(f.price), f.qty, f.fee, f.maker) for f in fills],
        [Quote(q.time_ms, m(q.ask), m(q.bid)) for q in quotes],
        [Trade(t.time_ms, m(t.price), t.qty, own=t.own) for t in trades],
    )


@settings(max_examples=150, deadline=None)
@given(buys())
def test_a_sell_mirrored_from_a_buy_costs_the_same(case: Case) -> None:
    # Arrange
    order, fills, quotes, trades = case
    sell, sell_fills, sell_quotes, sell_trades = _mirror(order, fills, quotes, trades)
    # Act
    buy_result = analyse(order, fills, trades, quotes)
    sell_result = analyse(sell, sell_fills, sell_trades, sell_quotes)
    # Assert: money exactly, arrival slippage (same P_a), spread capture and the ratios to the last digit
    assert _money(buy_result) == _money(sell_result)
    buy_summary, sell_summary = buy_result.summary(), sell_result.summary()
    same = [*MONEY, "arrival_slippage_bps", "arrival_slippage_with_fees_bps", "spread_capture"]
    same += ["fill_rate", "participation", "maker_share"]
    assert {k: buy_summary[k] for k in same} == {k: sell_summary[k] for k in same}
    assert [s.capture for s in buy_result.spreads] == [s.capture for s in sell_result.spreads]


@settings(max_examples=150, deadline=None)
@given(buys(), st.sampled_from([Decimal(2), Decimal(10), Decimal("0.25"), Decimal(3), Decimal("1.7")]))
def test_scaling_every_price_leaves_bps_metrics_unchanged(case: Case, k: Decimal) -> None:
    # Arrange
    order, fills, quotes, trades = case
    assert order.end_price is not None
    scaled = ParentOrder(
        order.side, order.qty, k * order.decision_price, k * order.arrival_price, k * order.end_price
    )
    scaled_fills = [Fill(f.time_ms, k * f.price, f.qty, k * f.fee, f.maker) for f in fills]
    scaled_quotes = [Quote(q.time_ms, k * q.bid, k * q.ask) for q in quotes]
    scaled_trades = [Trade(t.time_ms, k * t.price, t.qty, own=t.own) for t in trades]
    # Act
    base = analyse(order, fills, trades, quotes)
    result = analyse(scaled, scaled_fills, scaled_trades, scaled_quotes)
    # Assert
    base_summary, scaled_summary = base.summary(), result.summary()
    assert {k: base_summary[k] for k in SCALE_FREE} == {k: scaled_summary[k] for k in SCALE_FREE}
    assert [None if v is None else k * v for v in _money(base)] == _money(result)


@settings(max_examples=150, deadline=None)
@given(buys(), st.sampled_from([Side.BUY, Side.SELL]))
def test_fills_at_the_mid_pay_no_spread(case: Case, side: Side) -> None:
    # Arrange: every fill at the mid of the quote in force
    order, fills, quotes, _ = case
    order = ParentOrder(side, order.qty, order.decision_price, order.arrival_price, order.end_price)
    at_mid = [Fill(f.time_ms, q.mid, f.qty, f.fee, f.maker) for f, q in zip(fills, quotes, strict=False)]
    # Act
    result = analyse(order, at_mid, (), quotes)
    summary = result.summary()
    # Assert
    assert result.shortfall.spread_impact == 0 and summary["is_spread_impact"] == "0"
    assert result.shortfall.timing == result.shortfall.execution
    assert all(s.effective_bps == 0 for s in result.spreads) and summary["effective_spread_bps"] == "0.0000"
    assert all(s.capture in (0, None) for s in result.spreads)
    assert summary["spread_capture"] in ("0.0000", None)


@settings(max_examples=200, deadline=None)
@given(buys(), st.sampled_from([Side.BUY, Side.SELL]))
def test_perold_identity_holds_exactly_for_any_order(case: Case, side: Side) -> None:
    order, fills, quotes, trades = case
    order = ParentOrder(side, order.qty, order.decision_price, order.arrival_price, order.end_price)
    analysis = analyse(order, fills, trades, quotes)
    sf = analysis.shortfall
    assert sf.delay + sf.execution + sf.opportunity + sf.fees == sf.shortfall
    assert sf.spread_impact is not None and sf.timing is not None
    assert sf.spread_impact + sf.timing == sf.execution
    summary = analysis.summary()
    parts = [Decimal(summary[name]) for name in MONEY]
    assert parts[1] + parts[2] + parts[5] + parts[6] == parts[0] and parts[3] + parts[4] == parts[2]
    assert all(summary["identity_check"].values())
