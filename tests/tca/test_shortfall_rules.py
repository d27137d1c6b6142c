"""The Perold decomposition against hand-computed tables (docs/tca.md uses the first row).

Every row: ``Q = 10``, ``P_d = 100``; the buys arrive at ``P_a = 101``, the sells at ``99``, so the
sells are the buys mirrored around 100 and cost the same. Fees are positive when paid, negative
for a rebate. Expected values are worked by hand in the comments.
"""

from __future__ import annotations

from decimal import Decimal as D  # noqa: N817 (the tables read better)

import pytest

from perpx.tca.analysis import analyse
from perpx.tca.inputs import Fill, ParentOrder, Quote, Side
from perpx.tca.shortfall import decompose


def _buy(end: str | None = None) -> ParentOrder:
    return ParentOrder(Side.BUY, D(10), D(100), D(101), None if end is None else D(end))


def _sell(end: str | None = None) -> ParentOrder:
    return ParentOrder(Side.SELL, D(10), D(100), D(99), None if end is None else D(end))


IS_FIELDS = [
    "is_total",
    "is_delay",
    "is_execution",
    "is_spread_impact",
    "is_timing",
    "is_opportunity",
    "is_fees",
]

# (name, order, fills (time, price, qty, fee), mids at the fills,
#  is_total, is_delay, is_execution, is_spread_impact, is_timing, is_opportunity, is_fees, i.e.
#  shortfall, delay, execution, spread_impact, timing, opportunity, fees)
RULES = [
    (
        # value 4*102 + 6*103 = 1026; IS = 1026 - 10*100 + 1 = 27
        # delay 10*(101-100) = 10; execution 1026 - 10*101 = 16
        # spread+impact 4*0.5 + 6*0.5 = 5; timing 4*(101.5-101) + 6*(102.5-101) = 11
        "buy_filled_paying_fees",
        _buy(),
        [(1000, "102", "4", "0.4"), (2000, "103", "6", "0.6")],
        ["101.5", "102.5"],
        "27",
        "10",
        "16",
        "5",
        "11",
        "0",
        "1",
    ),
    (
        # the same fills as maker with a rebate of 0.02 per unit: fees -0.2, IS 26 - 0.2 = 25.8
        "buy_filled_with_rebates",
        _buy(),
        [(1000, "102", "4", "-0.08"), (2000, "103", "6", "-0.12")],
        ["101.5", "102.5"],
        "25.8",
        "10",
        "16",
        "5",
        "11",
        "0",
        "-0.2",
    ),
    (
        # the buy mirrored around 100: value 4*98 + 6*97 = 974; IS = -(974 - 1000) + 1 = 27
        # delay -10*(99-100) = 10; execution -(974 - 990) = 16
        # spread+impact -(4*(98-98.5) + 6*(97-97.5)) = 5; timing -(4*(-0.5) + 6*(-1.5)) = 11
        "sell_filled_paying_fees",
        _sell(),
        [(1000, "98", "4", "0.4"), (2000, "97", "6", "0.6")],
        ["98.5", "97.5"],
        "27",
        "10",
        "16",
        "5",
        "11",
        "0",
        "1",
    ),
    (
        "sell_filled_with_rebates",
        _sell(),
        [(1000, "98", "4", "-0.08"), (2000, "97", "6", "-0.12")],
        ["98.5", "97.5"],
        "25.8",
        "10",
        "16",
        "5",
        "11",
        "0",
        "-0.2",
    ),
    (
        # 4 of 10 filled at 102, the rest valued at P_c = 105:
        # IS = (408 - 400) + 6*(105 - 100) + 0.4 = 38.4; delay 4*1 = 4; execution 408 - 404 = 4
        # spread+impact 4*(102 - 101.5) = 2; timing 4*(101.5 - 101) = 2; opportunity 30
        "buy_partly_filled_pays_opportunity_cost_from_decision_price",
        _buy("105"),
        [(1000, "102", "4", "0.4")],
        ["101.5"],
        "38.4",
        "4",
        "4",
        "2",
        "2",
        "30",
        "0.4",
    ),
    (
        # 4 of 10 sold at 98 with a rebate of 0.08, the rest valued at P_c = 95:
        # IS = -(392 - 400) + (-1)*6*(95 - 100) - 0.08 = 37.92; delay 4; execution 4; opportunity 30
        "sell_partly_filled_with_rebate_pays_opportunity_cost",
        _sell("95"),
        [(1000, "98", "4", "-0.08")],
        ["98.5"],
        "37.92",
        "4",
        "4",
        "2",
        "2",
        "30",
        "-0.08",
    ),
    (
        # the partial buy as maker with a rebate: IS = 8 + 30 - 0.08 = 37.92
        "buy_partly_filled_with_rebate_pays_opportunity_cost",
        _buy("105"),
        [(1000, "102", "4", "-0.08")],
        ["101.5"],
        "37.92",
        "4",
        "4",
        "2",
        "2",
        "30",
        "-0.08",
    ),
    (
        # the partial sell paying a fee: IS = 8 + 30 + 0.4 = 38.4, the buy's numbers
        "sell_partly_filled_paying_fees_pays_opportunity_cost",
        _sell("95"),
        [(1000, "98", "4", "0.4")],
        ["98.5"],
        "38.4",
        "4",
        "4",
        "2",
        "2",
        "30",
        "0.4",
    ),
    (
        # the price came back below P_d: the unfilled half of a buy is a gain, -5*(100-98) = -10
        "buy_partly_filled_gains_when_the_price_falls_below_decision",
        _buy("98"),
        [(1000, "101", "5", "0")],
        ["101"],
        "-5",
        "5",
        "0",
        "0",
        "0",
        "-10",
        "0",
    ),
]


@pytest.mark.parametrize(
    (
        "order",
        "fills",
        "mids",
        "shortfall",
        "delay",
        "execution",
        "spread_impact",
        "timing",
        "opportunity",
        "fees",
    ),
    [row[1:] for row in RULES],
    ids=[row[0] for row in RULES],
)
def test_perold_rule(
    order: ParentOrder,
    fills: list[tuple[int, str, str, str]],
    mids: list[str],
    shortfall: str,
    delay: str,
    execution: str,
    spread_impact: str,
    timing: str,
    opportunity: str,
    fees: str,
) -> None:
    # Arrange: a locked quote at each fill's mid
    parsed = [Fill(t, D(p), D(q), D(f)) for t, p, q, f in fills]
    quotes = [Quote(f.time_ms, D(m), D(m)) for f, m in zip(parsed, mids, strict=True)]
    # Act
    result = decompose(order, parsed, order.end_price, [D(m) for m in mids])
    summary = analyse(order, parsed, (), quotes).summary()
    # Assert: tca.json's fixed names carry the same exact values
    assert [summary[name] for name in IS_FIELDS] == [
        shortfall,
        delay,
        execution,
        spread_impact,
        timing,
        opportunity,
        fees,
    ]
    assert all(summary["identity_check"].values())
    # and the Decimals themselves: exact equality, no tolerance
    assert result.shortfall == D(shortfall)
    assert result.delay == D(delay)
    assert result.execution == D(execution)
    assert result.spread_impact == D(spread_impact)
    assert result.timing == D(timing)
    assert result.opportunity == D(opportunity)
    assert result.fees == D(fees)
    assert result.delay + result.execution + result.opportunity + result.fees == result.shortfall
    assert result.spread_impact + result.timing == result.execution


def test_decomposition_identity_holds_exactly_with_awkward_decimals() -> None:
    # Arrange: prices and fees with many digits, and mids from quotes that do not divide evenly
    order = ParentOrder(Side.SELL, D("3.333"), D("61234.57"), D("61230.13"), D("61190.01"))
    fills = [
        Fill(10, D("61229.9"), D("1.111"), D("0.0680289")),
        Fill(20, D("61222.3"), D("0.777"), D("-0.0047571")),
    ]
    quotes = [Quote(0, D("61229.7"), D("61230.1")), Quote(15, D("61221.9"), D("61222.4"))]
    # Act
    analysis = analyse(order, fills, (), quotes)
    sf = analysis.shortfall
    # Assert
    assert sf.delay + sf.execution + sf.opportunity + sf.fees == sf.shortfall
    assert sf.spread_impact is not None and sf.timing is not None
    assert sf.spread_impact + sf.timing == sf.execution
    summary = analysis.summary()
    assert all(summary["identity_check"].values())
    parts = ["is_delay", "is_execution", "is_opportunity", "is_fees"]
    assert sum(D(summary[name]) for name in parts) == D(summary["is_total"])


def test_arrival_slippage_is_signed_cost_in_bps_of_arrival_with_and_without_fees() -> None:
    # Arrange: the first rule row; p_bar = 102.6, P_a = 101, fees 1 on F*P_a = 1010
    fills = [Fill(1000, D(102), D(4), D("0.4")), Fill(2000, D(103), D(6), D("0.6"))]
    # Act
    summary = analyse(_buy(), fills).summary()
    # Assert: 1.6/101 * 1e4 = 158.41584...; + 1/1010 * 1e4 = 9.90099...
    assert summary["arrival_slippage_bps"] == "158.4158"
    assert summary["arrival_slippage_with_fees_bps"] == "168.3168"
    assert summary["is_bps"] == "270.0000"
    assert summary["fee_bps"] == "9.7466"  # 1 / 1026 * 1e4


def test_unfilled_order_without_an_end_price_is_refused() -> None:
    with pytest.raises(ValueError, match="end price"):
        decompose(_buy(), [Fill(1, D(101), D(1))], None, [None])


def test_missing_mid_leaves_spread_and_timing_unknown_but_execution_known() -> None:
    result = decompose(_buy(), [Fill(1, D(101), D(10))], None, [None])
    assert result.execution == 0 and result.spread_impact is None and result.timing is None


def test_arrival_slippage_of_a_sell_with_rebates_keeps_cost_positive_and_the_rebate_lowers_it() -> None:
    # Arrange: the mirrored sell as maker: p_bar = (392 + 582) / 10 = 97.4, P_a = 99, fees -0.2
    fills = [Fill(1000, D(98), D(4), D("-0.08"), maker=True), Fill(2000, D(97), D(6), D("-0.12"), maker=True)]
    # Act
    summary = analyse(_sell(), fills).summary()
    # Assert: -(97.4 - 99)/99 = 161.6162 bps; the rebate -0.2/990 = -2.0202 bps
    assert summary["arrival_slippage_bps"] == "161.6162"
    assert summary["arrival_slippage_with_fees_bps"] == "159.5960"
    assert summary["fee_bps"] == "-2.0534"  # -0.2 / 974
    assert summary["maker_share"] == "1.0000" and summary["is_fees"] == "-0.2"
    assert summary["is_total"] == "25.8"  # the rebate table row
