"""``perpx tca calibrate``: the statistics on hand-made outcomes, the drawn orders, the command.

The bigger run is opt-in (``pytest -m stress tests/tca/test_calibration.py``): 40 orders.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from perpx.cli import app
from perpx.tca.calibration import Outcome, Plan, draw_orders, statistics
from perpx.tca.inputs import InputError

T_975_DF3 = 3.182446305284263
"""Student's t, 97.5% quantile, 3 degrees of freedom (tables)."""


def _outcome(index: int, x: float, realised: float | None, *, half: float = 1.0, y: float = 1.0) -> Outcome:
    return Outcome(
        index=index,
        seed=index,
        side="buy",
        qty="1",
        duration_s=60,
        fill_rate=1.0 if realised is not None else 0.0,
        predicted_bps=half + y * x,
        std_bps=1.0,
        half_spread_bps=half,
        impact_bps=y * x,
        impact_x_bps=x,
        participation=0.1,
        realised_bps=realised,
    )


def test_statistics_of_orders_that_cost_half_the_predicted_impact() -> None:
    # Arrange: half spread 1 bp, x = 1..4 bps, predicted 1 + x, realised 1 + x / 2 (so Y = 0.5);
    # a fifth order filled nothing and is left out
    outcomes = [_outcome(i, x, 1 + x / 2) for i, x in enumerate((1.0, 2.0, 3.0, 4.0))]
    outcomes.append(_outcome(4, 2.0, None))
    # Act
    summary = statistics(outcomes, Plan(orders=5))
    # Assert: d = realised - predicted = -x / 2 = -0.5, -1, -1.5, -2
    sem = math.sqrt(sum((d + 1.25) ** 2 for d in (-0.5, -1, -1.5, -2)) / 3) / 2
    assert (summary["orders"], summary["filled_orders"]) == (5, 4)
    assert summary["bias_mean_bps"] == -1.25 and summary["bias_median_bps"] == -1.25
    assert summary["bias_mean_ci95_bps"] == [
        round(-1.25 - T_975_DF3 * sem, 4),
        round(-1.25 + T_975_DF3 * sem, 4),
    ]
    low, high = summary["bias_median_ci95_bps"]
    assert -2 <= low <= -1.25 <= high <= -0.5
    assert summary["slope"] == 0.5 and summary["intercept_bps"] == 0.5 and summary["r2"] == 1.0
    assert summary["impact_y_fitted"] == 0.5 and summary["bias_mean_bps_with_fitted_y"] == 0.0
    assert summary["within_one_std"] == 0.5  # |d| <= 1 std for the first two


def test_statistics_of_identical_misses_and_predictions_have_no_spread_and_no_slope() -> None:
    outcomes = [_outcome(i, 2.0, 2.5) for i in range(4)]
    summary = statistics(outcomes, Plan(orders=4))
    assert summary["bias_mean_ci95_bps"] == [-0.5, -0.5] and summary["bias_median_ci95_bps"] == [-0.5, -0.5]
    assert summary["slope"] is None and summary["r2"] is None


def test_statistics_need_three_orders_that_filled() -> None:
    outcomes = [_outcome(0, 1.0, 2.0), _outcome(1, 2.0, 3.0), _outcome(2, 3.0, None)]
    with pytest.raises(InputError, match="only 2 of 3 orders filled anything"):
        statistics(outcomes, Plan(orders=3))


def test_drawn_orders_are_the_same_for_a_seed_and_stay_in_their_ranges() -> None:
    plan = Plan(orders=40, seed=7, qty_min=Decimal("0.2"), qty_max=Decimal("3"), duration_max_s=200)
    first, second = draw_orders(plan), draw_orders(plan)
    assert first == second
    assert all(Decimal("0.2") <= o.qty <= Decimal("3") for o in first)
    assert all(60 <= o.duration_s <= 200 for o in first)
    assert [o.side for o in first[:4]] == ["buy", "sell", "buy", "sell"]
    assert len({o.seed for o in first}) == 40
    assert draw_orders(Plan(orders=40, seed=8)) != first


def test_calibrate_runs_simulated_orders_and_writes_json_csv_and_html(tmp_path: Path) -> None:
    # Act
    result = CliRunner().invoke(
        app,
        [
            *("tca", "calibrate", "--orders", "3", "--out", str(tmp_path), "--warmup-s", "300"),
            *("--duration-min-s", "60", "--duration-max-s", "90", "--qty-max", "1"),
        ],
    )
    # Assert
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "calibration.json").read_text())
    summary, orders = document["summary"], document["orders"]
    assert len(orders) == 3 and summary["orders"] == 3
    assert all(
        o["predicted_bps"] == pytest.approx(o["half_spread_bps"] + o["impact_bps"], abs=2e-4) for o in orders
    )
    filled = [o for o in orders if o["realised_bps"] is not None]
    mean = sum(o["realised_bps"] - o["predicted_bps"] for o in filled) / len(filled)
    assert summary["bias_mean_bps"] == round(mean, 4)
    assert len((tmp_path / "orders.csv").read_text().splitlines()) == 4
    page = (tmp_path / "calibration.html").read_text()
    assert "realised against predicted" in page and "plotly" in page.lower()
    assert "bias (realised - predicted): mean" in result.output


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--orders", "0"], "--orders must be at least 1"),
        (["--algo", "vwapp"], "--algo must be one of twap, vwap, pov, is, was 'vwapp'"),
        (["--qty-min", "5", "--qty-max", "1"], "need 0 < --qty-min <= --qty-max"),
        (["--impact-y", "-1"], "--impact-y must be a positive number"),
        (["--warmup-s", "60"], "--warmup-s must be at least 240"),
        (["--scenario", "/nonexistent.toml"], "--scenario: /nonexistent.toml does not exist"),
    ],
)
def test_calibrate_refuses_a_plan_that_cannot_run_in_one_line(
    tmp_path: Path, options: list[str], message: str
) -> None:
    result = CliRunner().invoke(app, ["tca", "calibrate", *options, "--out", str(tmp_path)])
    assert result.exit_code == 2 and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.stress
@pytest.mark.timeout(900)  # about 3 minutes alone on 2 cores; longer under load
def test_forty_orders_give_an_estimate_whose_std_is_about_right(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["tca", "calibrate", "--orders", "40", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "calibration.json").read_text())["summary"]
    assert summary["filled_orders"] >= 36
    low, high = summary["bias_mean_ci95_bps"]
    assert low <= summary["bias_mean_bps"] <= high
    assert 0.5 <= summary["within_one_std"] <= 0.9  # 68% if the timing-risk std is right
    assert abs(summary["bias_mean_bps_with_fitted_y"]) < abs(summary["bias_mean_bps"])
