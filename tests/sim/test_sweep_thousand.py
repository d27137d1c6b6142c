"""A thousand runs of the cascade on a local Ray, with bounds in answers.json (opt-in: long).

Run with ``pytest -m stress tests/sim/test_sweep_thousand.py`` (or ``PERPX_STRESS=1``); about
twenty-five minutes on two cores. The same sweep from the command line::

    perpx sweep sweeps/cascade_seeds.toml --out runs/cascade-seeds --executor ray --workers 2
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from perpx.sim.sweep import load_sweep, run_sweep
from perpx.sim.sweep.resume import RESULTS_FILE

SWEEPS = Path(__file__).resolve().parents[2] / "sweeps"


@pytest.mark.stress
def test_a_thousand_cascade_runs_on_ray_answer_with_clopper_pearson_bounds(tmp_path: Path) -> None:
    # Arrange
    pytest.importorskip("ray")
    spec = load_sweep(SWEEPS / "cascade_seeds.toml")
    spec = dataclasses.replace(spec, seeds=tuple(range(1, 501)))
    # Act
    outcome = run_sweep(spec, tmp_path, executor="ray", workers=2)
    # Assert: every run finished, each row is in the results file, every answer states its bound
    assert len(outcome.rows) == 1_000 and outcome.errors == 0
    assert len((tmp_path / RESULTS_FILE).read_text().splitlines()) == 1 + 1_000
    answers = json.loads((tmp_path / "answers.json").read_text())
    for question in answers:
        for item in question["answers"]:
            assert item["seeds"] == 500 and 0 <= item["share_low"] <= 1
            assert item["supported"] == (item["value"] is not None and item["share_low"] >= question["share"])
    assert all(row["mechanism_held"] for row in outcome.rows)
