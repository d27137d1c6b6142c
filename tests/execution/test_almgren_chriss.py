"""The Almgren-Chriss schedule against its closed forms and against direct sums of its trades."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from perpx.cli import app
from perpx.execution.almgren_chriss import AcParams, ScheduleError, cost_of_trades, optimal_schedule

# the paper's example: 1e6 shares over 5 days in 5 steps (section 4 of Almgren-Chriss 2000)
PAPER = AcParams(
    qty=1e6, horizon=5, steps=5, sigma=0.95, eta=2.5e-6, gamma=2.5e-7, epsilon=0.0625, risk_aversion=1e-6
)


def test_schedule_holdings_start_at_qty_and_end_at_zero() -> None:
    schedule = optimal_schedule(PAPER)

    assert schedule.holdings[0] == PAPER.qty
    assert schedule.holdings[-1] == 0.0
    assert len(schedule.holdings) == PAPER.steps + 1
    assert math.isclose(sum(schedule.trades), PAPER.qty, rel_tol=1e-12)


def test_kappa_solves_the_discrete_cosh_equation() -> None:
    schedule = optimal_schedule(PAPER)
    kappa_tilde_sq = PAPER.risk_aversion * PAPER.sigma**2 / PAPER.eta_tilde

    lhs = 2 / PAPER.tau**2 * (math.cosh(schedule.kappa * PAPER.tau) - 1)

    assert math.isclose(lhs, kappa_tilde_sq, rel_tol=1e-12)


def test_trades_match_the_closed_form_sinh_cosh_expression() -> None:
    schedule = optimal_schedule(PAPER)
    k, tau, t_end, x0 = schedule.kappa, PAPER.tau, PAPER.horizon, PAPER.qty

    expected = [
        x0 * 2 * math.sinh(k * tau / 2) * math.cosh(k * (t_end - (j - 0.5) * tau)) / math.sinh(k * t_end)
        for j in range(1, PAPER.steps + 1)
    ]

    assert schedule.trades == pytest.approx(expected, rel=1e-9)


@settings(max_examples=200, deadline=None)
@given(
    qty=st.floats(1, 1e7),
    steps=st.integers(1, 60),
    sigma=st.floats(0, 5),
    eta=st.floats(1e-6, 1e-2),
    epsilon=st.floats(0, 1),
    risk_aversion=st.floats(0, 1e-4),
)
def test_closed_form_cost_and_variance_equal_the_direct_sums(
    qty: float, steps: int, sigma: float, eta: float, epsilon: float, risk_aversion: float
) -> None:
    params = AcParams(qty, 10.0, steps, sigma, eta, eta / 100, epsilon, risk_aversion)
    try:
        schedule = optimal_schedule(params)
    except ScheduleError:
        return  # kappa*T overflow is refused with a message, tested separately

    expected, variance = cost_of_trades(params, schedule.trades)

    assert math.isclose(schedule.expected_cost, expected, rel_tol=1e-7, abs_tol=1e-6 * qty)
    assert math.isclose(schedule.variance, variance, rel_tol=1e-7, abs_tol=1e-9 * qty**2 * (sigma**2 + 1e-12))


def test_zero_risk_aversion_is_the_straight_line() -> None:
    params = AcParams(100.0, 10.0, 4, 1.0, 0.01, 0.0, 0.0, 0.0)

    schedule = optimal_schedule(params)

    assert schedule.kappa == 0.0
    assert schedule.trades == pytest.approx([25.0] * 4)


def test_optimal_schedule_beats_its_neighbours_on_the_objective() -> None:
    schedule = optimal_schedule(PAPER)
    lam = PAPER.risk_aversion
    best = schedule.expected_cost + lam * schedule.variance
    for k in range(PAPER.steps - 1):
        for shift in (-1000.0, 1000.0):
            trades = list(schedule.trades)
            trades[k] += shift
            trades[k + 1] -= shift

            e, v = cost_of_trades(PAPER, tuple(trades))

            assert e + lam * v > best


def test_negative_eta_tilde_is_refused_with_a_message() -> None:
    params = AcParams(100.0, 10.0, 1, 1.0, 0.01, 1.0, 0.0, 0.0)

    with pytest.raises(ScheduleError, match="eta - gamma"):
        optimal_schedule(params)


def test_cli_schedule_is_prints_the_papers_notation_as_json() -> None:
    result = CliRunner().invoke(
        app,
        [
            "algo",
            "schedule",
            "is",
            "--qty",
            "1e6",
            "--horizon",
            "5",
            "--steps",
            "5",
            "--sigma",
            "0.95",
            "--eta",
            "2.5e-6",
            "--gamma",
            "2.5e-7",
            "--epsilon",
            "0.0625",
            "--risk-aversion",
            "1e-6",
            "--json",
        ],
    )

    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert set(out) == {"kappa", "holdings", "trades", "expected_cost", "variance"}
    assert out["holdings"][0] == 1e6 and out["holdings"][-1] == 0
    assert len(out["trades"]) == 5
    assert out["kappa"] == pytest.approx(optimal_schedule(PAPER).kappa)


def test_cli_schedule_is_with_bad_steps_exits_2_naming_the_option() -> None:
    result = CliRunner().invoke(
        app,
        [
            "algo",
            "schedule",
            "is",
            "--qty",
            "10",
            "--horizon",
            "5",
            "--steps",
            "0",
            "--sigma",
            "1",
            "--eta",
            "1",
            "--json",
        ],
    )

    assert result.exit_code == 2
    assert "steps" in result.output
