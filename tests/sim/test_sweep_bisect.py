"""Bisection refines a threshold between two grid values with the same seeds."""

from __future__ import annotations

from pathlib import Path

from perpx.sim.sweep import load_sweep, run_sweep
from perpx.sim.sweep.bisect import midpoint
from perpx.sim.sweep.outputs import format_refined

from .test_sweep import MMR, fake_run_cell, fake_validate, write_sweep


def test_bisection_narrows_the_grid_interval_to_the_threshold_the_seeds_show(tmp_path: Path) -> None:
    # Arrange: bad debt is max(0, seed x 60 - fund) at mmr 0.01 (x30 at 0.02), seeds 1..4
    spec = load_sweep(write_sweep(tmp_path))
    # Act
    outcome = run_sweep(
        spec, None, workers=1, run_cell=fake_run_cell, validate_cell=fake_validate, bisect_steps=3
    )
    # Assert: 99% of 4 seeds means all 4: a fund of 240 at 0.01 and of 120 at 0.02
    strict = outcome.refined[spec.questions[0].name]
    by_mmr = {r.given[MMR]: r for r in strict}
    assert (by_mmr["0.01"].failing, by_mmr["0.01"].meeting) == (237, 250)
    assert [p.value for p in by_mmr["0.01"].probes] == [250, 225, 237]
    assert (by_mmr["0.02"].failing, by_mmr["0.02"].meeting) == (112, 125)
    assert all(p.seeds == 4 for r in strict for p in r.probes)
    lines = format_refined(outcome.refined)
    assert any("between 237 (not met) and 250 (met) after 3 step(s)" in line for line in lines)


def test_midpoint_of_integers_decimals_and_text_and_none_when_adjacent() -> None:
    assert midpoint(100, 200) == 150 and midpoint(100, 101) is None
    assert midpoint(0.5, 1.0) == 0.75
    assert midpoint("0.01", "0.02") == "0.015"
    assert midpoint(True, False) is None
