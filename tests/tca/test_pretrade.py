"""The pre-trade estimate beside the realised cost: in the execution backtest's report, and the
pieces that build it (the realised figure, aggTrades grouped into taker orders)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from perpx.execution.backtest import backtest
from perpx.execution.model import decode_parent
from perpx.tca.estimate import PRIOR_IMPACT_Y
from perpx.tca.inputs import Fill, Side
from perpx.tca.pretrade import realised_cost_bps
from perpx.tca.rest import taker_orders

ROOT = Path(__file__).resolve().parents[2]
CALM = ROOT / "scenarios" / "calm_day.toml"


def _parent(side: str) -> object:
    return decode_parent(
        {
            "algo": "twap",
            "market": "BTCUSDT",
            "side": side,
            "client_algo_id": f"pre-{side}",
            "qty": "1",
            "duration_s": 120,
            "slice_interval_s": 20,
            "passiveness_bps": 0,
        }
    )


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_a_backtest_report_puts_the_estimate_beside_the_realised_cost(tmp_path: Path, side: str) -> None:
    # Act
    result = backtest(_parent(side), CALM, seed=4, warmup_s=300, out_dir=tmp_path)  # type: ignore[arg-type]
    # Assert
    pre = json.loads((tmp_path / "backtest.json").read_text())["figures"]["pre_trade"]
    assert pre == result.figures["pre_trade"]
    assert pre["available"] is True
    assert pre["impact_y"] == PRIOR_IMPACT_Y and pre["impact_fit_n"] == 0
    assert pre["duration_s"] == 120
    assert pre["realized_cost_bps"] == pytest.approx(float(result.tca["arrival_slippage_bps"]), abs=1e-4)
    assert pre["predicted_cost_bps"] == pytest.approx(pre["half_spread_bps"] + pre["impact_bps"], abs=1e-3)
    assert pre["half_spread_bps"] > 0 and pre["predicted_std_bps"] > 0


def test_a_backtest_without_three_minutes_of_history_says_why_there_is_no_estimate() -> None:
    result = backtest(_parent("buy"), CALM, seed=4, warmup_s=120)  # type: ignore[arg-type]
    pre = result.figures["pre_trade"]
    assert pre["available"] is False
    assert "volatility needs at least 3 one-minute candles" in pre["why"]


@pytest.mark.parametrize(
    ("side", "prices", "expected_bps"),
    [
        (Side.BUY, ("101", "103"), 220.0),  # p_bar 102.2 over arrival 100
        (Side.SELL, ("99", "97"), 220.0),  # p_bar 97.8: sold below arrival, a cost
        (Side.SELL, ("101", "103"), -220.0),  # sold above arrival, a gain
    ],
)
def test_realised_cost_is_the_arrival_slippage_without_fees(
    side: Side, prices: tuple[str, str], expected_bps: float
) -> None:
    fills = [
        Fill(1, Decimal(prices[0]), Decimal(2), Decimal("0.5"), False, 1),
        Fill(2, Decimal(prices[1]), Decimal(3), Decimal("0.5"), False, 2),
    ]
    assert realised_cost_bps(side, Decimal(100), fills) == pytest.approx(expected_bps)


def test_realised_cost_of_nothing_filled_is_unknown() -> None:
    assert realised_cost_bps(Side.BUY, Decimal(100), []) is None


def test_agg_trades_of_one_time_and_side_are_one_taker_order() -> None:
    # (time, price, qty, buyer_maker, aggregate id): a buy walking two levels at t=1, a sell at t=1,
    # a buy at t=2
    prints = [
        (1, Decimal("100"), Decimal("1"), False, 1),
        (1, Decimal("101"), Decimal("3"), False, 2),
        (1, Decimal("99"), Decimal("2"), True, 3),
        (2, Decimal("100"), Decimal("1"), False, 4),
    ]
    orders = taker_orders(prints)
    assert [(o.side, o.qty, o.avg_price, o.first_ms) for o in orders] == [
        (Side.BUY, Decimal(4), Decimal("100.75"), 1),
        (Side.SELL, Decimal(2), Decimal(99), 1),
        (Side.BUY, Decimal(1), Decimal(100), 2),
    ]
