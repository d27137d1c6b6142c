"""A sweep's results file: rows written as runs finish, and a resume that runs only what is missing."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from perpx.sim.sweep import SweepError, Value, load_sweep, run_sweep
from perpx.sim.sweep.resume import RESULTS_FILE

from .test_sweep import CALLS, fake_run_cell, fake_validate, write_sweep


def sweep_once(tmp_path: Path, seeds: int, resume: bool) -> list[tuple[dict[str, Value], int]]:
    spec = load_sweep(write_sweep(tmp_path))
    spec = dataclasses.replace(spec, seeds=tuple(range(1, seeds + 1)))
    CALLS.clear()
    outcome = run_sweep(
        spec, tmp_path / "out", workers=1, run_cell=fake_run_cell, validate_cell=fake_validate, resume=resume
    )
    assert len(outcome.rows) == 6 * seeds  # the table always holds every cell x seed
    return list(CALLS)


def test_every_finished_run_is_in_the_results_file_after_its_header(tmp_path: Path) -> None:
    sweep_once(tmp_path, 2, resume=False)
    lines = (tmp_path / "out" / RESULTS_FILE).read_text().splitlines()
    header, rows = json.loads(lines[0]), [json.loads(line) for line in lines[1:]]
    assert header["name"] == "fake-grid" and len(header["sweep"]) == 64
    assert sorted((r["cell"], r["seed"]) for r in rows) == [(c, s) for c in range(6) for s in (1, 2)]


def test_a_resume_runs_only_the_missing_seeds_and_gives_the_same_table(tmp_path: Path) -> None:
    assert len(sweep_once(tmp_path, 2, resume=False)) == 12
    assert sweep_once(tmp_path, 2, resume=True) == []  # nothing left to run
    added = sweep_once(tmp_path, 4, resume=True)
    assert sorted(seed for _, seed in added) == [3] * 6 + [4] * 6
    fresh = tmp_path / "fresh"
    spec = dataclasses.replace(load_sweep(write_sweep(fresh)), seeds=(1, 2, 3, 4))
    whole = run_sweep(spec, fresh / "out", workers=1, run_cell=fake_run_cell, validate_cell=fake_validate)
    resumed = (tmp_path / "out" / "results.csv").read_text()
    assert resumed == (fresh / "out" / "results.csv").read_text() and len(whole.rows) == 24


def test_a_half_written_last_line_is_run_again(tmp_path: Path) -> None:
    sweep_once(tmp_path, 1, resume=False)
    path = tmp_path / "out" / RESULTS_FILE
    text = path.read_text()
    path.write_text(text[: text.rindex("\n", 0, len(text) - 1) + 1] + '{"cell": 5, "se')
    assert len(sweep_once(tmp_path, 1, resume=True)) == 1
    assert all(json.loads(line) for line in path.read_text().splitlines()[:-1] if line.endswith("}"))


def test_the_results_file_of_another_sweep_is_refused_not_mixed_in(tmp_path: Path) -> None:
    sweep_once(tmp_path, 1, resume=False)
    other = write_sweep(tmp_path).read_text().replace('"0.02"]', '"0.03"]')
    (tmp_path / "sweep.toml").write_text(other)
    spec = load_sweep(tmp_path / "sweep.toml")
    with pytest.raises(SweepError, match="another sweep"):
        run_sweep(
            spec,
            tmp_path / "out",
            workers=1,
            run_cell=fake_run_cell,
            validate_cell=fake_validate,
            resume=True,
        )
