"""Clopper-Pearson bounds (the numbers a committee would check by hand) and which way pass/fail reads."""

from __future__ import annotations

import pytest

from perpx.sim.result import RunResult
from perpx.sim.sweep.bounds import seeds_needed, share_lower_bound, share_upper_bound
from perpx.sim.sweep.metrics import metric_value


def test_six_of_six_seeds_support_only_a_61_percent_share() -> None:
    # the review's case: 6/6 seeds; the failure rate's 95% upper bound is about 39%
    assert share_lower_bound(6, 6) == pytest.approx(0.05 ** (1 / 6))
    assert 1 - share_lower_bound(6, 6) == pytest.approx(0.393, abs=5e-4)


def test_299_seeds_all_meeting_it_are_the_fewest_that_support_99_percent() -> None:
    assert seeds_needed(0.99) == 299
    assert share_lower_bound(299, 299) >= 0.99 > share_lower_bound(298, 298)


def test_bounds_bracket_the_observed_share_and_are_trivial_at_the_edges() -> None:
    assert share_lower_bound(0, 10) == 0.0 and share_upper_bound(10, 10) == 1.0
    low, high = share_lower_bound(990, 1000), share_upper_bound(990, 1000)
    assert low < 0.99 < high and low == pytest.approx(0.9831, abs=1e-4)
    assert share_upper_bound(0, 10) == pytest.approx(1 - 0.05 ** (1 / 10))


@pytest.mark.parametrize(("met", "seeds"), [(-1, 5), (6, 5), (0, 0)])
def test_a_count_outside_its_seeds_is_refused(met: int, seeds: int) -> None:
    with pytest.raises(ValueError, match="met <= seeds"):
        share_lower_bound(met, seeds)


def test_no_number_of_seeds_supports_a_share_of_one() -> None:
    with pytest.raises(ValueError, match="100%"):
        seeds_needed(1.0)


def test_mechanism_held_reads_the_rules_not_the_scenarios_story() -> None:
    # Arrange: a large fund that was not drained fails the story's claim, the rules all held
    story = {"name": "the insurance fund is drained", "expr": "insurance_fund_min < 5000", "passed": False}
    rule = {"name": "no_account_below_zero", "expr": "no_account_below_zero", "passed": True}
    held = RunResult("cascade", 1, {"assertions": [story, rule], "invariant_violations": 0})
    broken = RunResult("cascade", 1, {"assertions": [rule], "invariant_violations": 2})
    # Act, Assert
    assert metric_value(held, "passed") is False and metric_value(held, "mechanism_held") is True
    assert metric_value(broken, "mechanism_held") is False
