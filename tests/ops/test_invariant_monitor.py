"""The invariant monitor's schedule keeps the checks within 1% of a core."""

from __future__ import annotations

import pytest

from perpx.ops.invariant_monitor import CPU_BUDGET, FLOOR_S, next_interval_s


@pytest.mark.parametrize("cost_s", [0.0, 0.0001, 0.01, 0.02, 0.5, 2.0, 30.0])
def test_checks_take_at_most_the_budget_of_a_core(cost_s: float) -> None:
    # Act
    interval = next_interval_s(cost_s)

    # Assert
    assert interval >= FLOOR_S
    assert cost_s / (cost_s + interval) <= CPU_BUDGET + 1e-12


def test_a_slow_check_is_spaced_by_its_cost() -> None:
    # 20 ms of checking is followed by 1.98 s of rest; 2 s by 198 s; 1 ms by the 1 s floor
    assert next_interval_s(0.02) == pytest.approx(1.98)
    assert next_interval_s(2.0) == pytest.approx(198.0)
    assert next_interval_s(0.001) == FLOOR_S


def test_a_budget_outside_zero_one_is_refused() -> None:
    with pytest.raises(ValueError, match="budget"):
        next_interval_s(0.1, budget=1.5)
