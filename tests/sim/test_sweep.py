"""Parameter sweeps: grid expansion, executors, aggregation, questions, outputs and bad files.

Most tests use a fake runner whose outcome is a known function of the overrides and the seed:
a crash leaves a shortfall of ``seed x 60`` (``seed x 30`` when the maintenance margin rate is
the stricter 0.02), and the insurance fund covers it up to its size; the rest is bad debt.

==========  ======================  ======================  ====================
mmr / fund  100                     200                     300
==========  ======================  ======================  ====================
0.01        bad debt in seeds 2-4   bad debt in seed 4      none
0.02        bad debt in seed 4      none                    none
==========  ======================  ======================  ====================
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from perpx.cli import app
from perpx.sim.result import RunResult
from perpx.sim.sweep import (
    SweepError,
    SweepOutcome,
    SweepSpec,
    Value,
    format_answers,
    heatmap_figures,
    load_sweep,
    metric_value,
    run_sweep,
    short_names,
)

FUND = "insurance.fund"
MMR = "config.markets.BTCUSDT.brackets.0.mmr"
KNOWN_PATHS = {FUND, MMR, "config.markets.BTCUSDT.liquidation_fee"}
SWEEP = f"""
name = "fake-grid"
scenario = "scenario.toml"
seeds = 4
metrics = ["bad_debt", "liquidations", "insurance_fund_min", "passed"]

[grid]
"{MMR}" = ["0.01", "0.02"]
"{FUND}" = [100, 200, 300]

[[questions]]
minimise = "{FUND}"
where = {{ metric = "bad_debt", op = "==", value = 0 }}
share = 0.99

[[questions]]
name = "smallest fund with no bad debt in 3 of 4 seeds"
minimise = "{FUND}"
where = {{ metric = "bad_debt", op = "==", value = 0 }}
share = 0.75

[[questions]]
name = "smallest fund with a thousand liquidations"
minimise = "{FUND}"
where = {{ metric = "liquidations", op = ">=", value = 1000 }}
"""
CALLS: list[tuple[dict[str, Value], int]] = []


def fake_run_cell(scenario: Path, overrides: Mapping[str, Value], seed: int) -> RunResult:
    """The table in the module docstring, as a run result."""
    CALLS.append((dict(overrides), seed))
    fund = float(overrides.get(FUND, 0))
    shortfall = seed * (30 if overrides.get(MMR) == "0.02" else 60)
    bad_debt = max(0.0, shortfall - fund)
    summary = {
        "bad_debt": bad_debt,
        "liquidations": seed * 10,
        "insurance_fund_min": str(max(0.0, fund - shortfall)),
        "assertions": [
            {"name": "no-bad-debt", "expr": "", "passed": bad_debt == 0, "value": 0, "detail": ""}
        ],
    }
    return RunResult(scenario=scenario.stem, seed=seed, summary=summary)


def crashing_run_cell(scenario: Path, overrides: Mapping[str, Value], seed: int) -> RunResult:
    """The fake runner, except that seed 3 of the smallest fund raises."""
    if overrides.get(FUND) == 100 and seed == 3:
        raise RuntimeError("invariant broken")
    return fake_run_cell(scenario, overrides, seed)


def fake_validate(scenario: Path, overrides: Mapping[str, Value]) -> None:
    """Refuses override paths the fake scenario does not have, as the real loader does."""
    for path in overrides:
        if path not in KNOWN_PATHS:
            raise ValueError(f"override {path!r} does not exist")


def write_sweep(tmp_path: Path, text: str = SWEEP) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "scenario.toml").write_text('name = "fake"\n')
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    return path


def run_fake(tmp_path: Path, **kwargs: object) -> SweepOutcome:
    spec = load_sweep(write_sweep(tmp_path))
    return run_sweep(
        spec,
        kwargs.pop("out_dir", tmp_path / "out"),  # type: ignore[arg-type]
        run_cell=kwargs.pop("run_cell", fake_run_cell),  # type: ignore[arg-type]
        validate_cell=fake_validate,
        **kwargs,  # type: ignore[arg-type]
    )


def test_grid_expands_in_file_order_last_axis_fastest_with_seeds_innermost(tmp_path: Path) -> None:
    # Arrange
    spec = load_sweep(write_sweep(tmp_path))
    # Act
    cells = spec.cells()
    tasks = spec.tasks()
    # Assert
    assert len(cells) == 6 and len(tasks) == 24
    assert [(c[MMR], c[FUND]) for c in cells] == [
        ("0.01", 100),
        ("0.01", 200),
        ("0.01", 300),
        ("0.02", 100),
        ("0.02", 200),
        ("0.02", 300),
    ]
    assert [(t.cell, t.seed) for t in tasks[:5]] == [(0, 1), (0, 2), (0, 3), (0, 4), (1, 1)]
    assert [t.index for t in tasks] == list(range(24))


def test_seed_list_and_nested_grid_tables_are_accepted(tmp_path: Path) -> None:
    # Arrange
    text = SWEEP.replace("seeds = 4", "seeds = [11, 5]").replace(
        f'"{MMR}" = ["0.01", "0.02"]', '[grid.config.markets.BTCUSDT]\nliquidation_fee = ["0.01"]'
    )
    text = text.replace(f'"{FUND}" = [100, 200, 300]', "").replace(
        "[[questions]]", "[grid.insurance]\nfund = [100, 200, 300]\n\n[[questions]]", 1
    )
    # Act
    spec = load_sweep(write_sweep(tmp_path, text))
    # Assert
    assert spec.seeds == (11, 5)
    assert list(spec.axes) == ["config.markets.BTCUSDT.liquidation_fee", FUND]


def test_every_run_receives_its_cells_overrides_and_seed(tmp_path: Path) -> None:
    # Arrange
    CALLS.clear()
    # Act
    outcome = run_fake(tmp_path, workers=1, out_dir=None)
    # Assert
    assert len(CALLS) == 24
    assert CALLS[0] == ({MMR: "0.01", FUND: 100}, 1)
    assert CALLS[-1] == ({MMR: "0.02", FUND: 300}, 4)
    assert sorted((c[MMR], c[FUND], s) for c, s in CALLS) == sorted(
        (r[MMR], r[FUND], r["seed"]) for r in outcome.rows
    )


def test_aggregate_gives_the_probability_of_bad_debt_and_the_metric_range_per_cell(tmp_path: Path) -> None:
    # Arrange, Act
    outcome = run_fake(tmp_path, workers=1, out_dir=None)
    # Assert
    by_cell = {(c[MMR], c[FUND]): c for c in outcome.cells}
    assert by_cell["0.01", 100]["p_bad_debt"] == 0.75
    assert by_cell["0.01", 200]["p_bad_debt"] == 0.25
    assert by_cell["0.01", 300]["p_bad_debt"] == 0.0
    assert by_cell["0.02", 100]["p_bad_debt"] == 0.25
    assert by_cell["0.01", 100]["bad_debt_max"] == 140.0  # seed 4: 240 - 100
    assert by_cell["0.01", 100]["bad_debt_mean"] == (0 + 20 + 80 + 140) / 4
    assert by_cell["0.01", 100]["p_passed"] == 0.25
    assert by_cell["0.01", 100]["insurance_fund_min_min"] == 0.0
    assert by_cell["0.02", 300]["insurance_fund_min_max"] == 270.0  # from the decimal string "270.0"
    assert all(c["seeds"] == 4 and c["errors"] == 0 for c in outcome.cells)


def test_question_picks_the_smallest_value_meeting_the_share_or_says_none(tmp_path: Path) -> None:
    # Arrange, Act
    outcome = run_fake(tmp_path, workers=1, out_dir=None)
    # Assert
    strict, lenient, impossible = (items for _, items in outcome.answers)
    assert [(a.given[MMR], a.value) for a in strict] == [("0.01", 300), ("0.02", 200)]
    assert [(a.given[MMR], a.value) for a in lenient] == [("0.01", 200), ("0.02", 100)]
    assert [a.value for a in impossible] == [None, None]
    assert all(a.holds_beyond for a in strict)
    lines = format_answers(outcome.answers)
    assert lines[0] == f"smallest {FUND} with bad_debt == 0 in >= 99% of seeds"
    # 4 of 4 seeds cannot support 99%: the line says so, with the bound, the seeds that would, and the grid
    assert lines[1] == (
        "  mmr = 0.01: NOT SUPPORTED at 99%: observed 300 (4/4 seeds; 95% lower bound on the share 47.3%);"
        " 299 seeds, all meeting it, would support 99%; threshold between 200 (did not qualify) and 300"
    )
    assert not any(a.supported for a in strict) and strict[0].previous == 200
    assert lines[-1].endswith(": none (best 0/4 seeds at 100; 95% lower bound on the share 0.0%)")


def test_an_answer_its_seeds_support_is_stated_as_a_claim(tmp_path: Path) -> None:
    # Arrange: "in at least half the seeds"; 4 of 4 seeds give a 95% lower bound of 47.3%, 3 of 4 less
    text = SWEEP.split("[[questions]]", maxsplit=1)[0] + (
        f'[[questions]]\nminimise = "{FUND}"\nwhere = {{ metric = "bad_debt", op = "==", value = 0 }}\n'
        "share = 0.4\n"
    )
    spec = load_sweep(write_sweep(tmp_path, text))
    # Act
    outcome = run_sweep(spec, None, workers=1, run_cell=fake_run_cell, validate_cell=fake_validate)
    # Assert: 0.01 meets 40% at 200 (3/4) but only 300 (4/4) has a bound over 40%: 200 is observed, not supported
    first = outcome.answers[0][1][0]
    assert (first.value, first.met, first.seeds, first.supported) == (200, 3, 4, False)
    assert round(first.share_low, 3) == 0.249 and first.seeds_needed == 4
    line = format_answers(outcome.answers)[1]
    assert "NOT SUPPORTED at 40%" in line and "threshold between 100 (did not qualify) and 200" in line


def test_maximise_picks_the_largest_value_meeting_the_share(tmp_path: Path) -> None:
    # Arrange
    text = SWEEP.split("[[questions]]", maxsplit=1)[0] + (
        f'[[questions]]\nmaximise = "{FUND}"\nwhere = {{ metric = "bad_debt", op = ">", value = 0 }}\nshare = 0.5\n'
    )
    spec = load_sweep(write_sweep(tmp_path, text))
    # Act
    outcome = run_sweep(spec, None, workers=1, run_cell=fake_run_cell, validate_cell=fake_validate)
    # Assert: with mmr 0.01 a fund of 100 leaves bad debt in 3 of 4 seeds, 200 in only 1
    assert [a.value for a in outcome.answers[0][1]] == [100, None]


def test_parallel_local_executor_gives_the_same_tables_as_serial(tmp_path: Path) -> None:
    # Arrange
    serial = run_fake(tmp_path / "a", workers=1, out_dir=tmp_path / "serial")
    # Act
    parallel = run_fake(tmp_path / "b", workers=2, out_dir=tmp_path / "parallel")
    # Assert
    assert parallel.workers == 2
    assert parallel.rows == serial.rows
    for name in ("results.csv", "aggregate.csv", "answers.json"):
        assert (tmp_path / "parallel" / name).read_bytes() == (tmp_path / "serial" / name).read_bytes()


def test_ray_executor_gives_the_same_table_as_the_local_one(tmp_path: Path) -> None:
    # Arrange: Ray's local_mode is gone (2.x raises), so a one-CPU local cluster stands in
    pytest.importorskip("ray")
    local = run_fake(tmp_path / "a", workers=1, out_dir=None)
    # Act
    on_ray = run_fake(tmp_path / "b", executor="ray", workers=1, out_dir=None)
    # Assert
    assert on_ray.executor == "ray"
    assert on_ray.rows == local.rows


def test_outputs_hold_one_row_per_run_and_per_cell_with_typed_columns(tmp_path: Path) -> None:
    # Arrange, Act
    outcome = run_fake(tmp_path, workers=1)
    # Assert
    out = tmp_path / "out"
    results = pl.read_parquet(out / "results.parquet")
    assert results.height == 24
    assert results.columns == [
        "cell",
        MMR,
        FUND,
        "seed",
        "bad_debt",
        "liquidations",
        "insurance_fund_min",
        "passed",
        "error",
    ]
    assert results.schema[FUND] == pl.Int64 and results.schema["passed"] == pl.Boolean
    assert pl.read_csv(out / "results.csv").height == 24
    cells = pl.read_parquet(out / "aggregate.parquet")
    assert cells.height == 6 and cells["p_bad_debt"].to_list() == [0.75, 0.25, 0.0, 0.25, 0.0, 0.0]
    answers = json.loads((out / "answers.json").read_text())
    assert [a["value"] for a in answers[0]["answers"]] == [300, 200]
    assert (out / "heatmap_p_bad_debt.png").read_bytes().startswith(b"\x89PNG")
    page = (out / "heatmaps.html").read_text()
    assert not re.search(r"<script[^>]*\bsrc\s*=", page)
    assert "share of seeds with bad_debt != 0" in page
    assert json.loads((out / "sweep.json").read_text())["runs"] == 24
    assert set(outcome.files) >= {out / "results.csv", out / "results.parquet", out / "answers.json"}


def test_a_run_that_raises_is_recorded_and_counts_against_its_cell(tmp_path: Path) -> None:
    # Arrange, Act
    outcome = run_fake(tmp_path, workers=1, out_dir=None, run_cell=crashing_run_cell)
    # Assert
    assert outcome.errors == 2  # seed 3 of fund 100, under both rates
    failed = [r for r in outcome.rows if r["error"]]
    assert failed[0]["error"] == "RuntimeError: invariant broken" and failed[0]["bad_debt"] is None
    cell = next(c for c in outcome.cells if c[MMR] == "0.02" and c[FUND] == 100)
    assert cell["errors"] == 1 and cell["p_bad_debt"] == pytest.approx(1 / 3)
    lenient = outcome.answers[1][1]
    assert lenient[1].value == 200  # 100 met the share in 2 of 3 finished seeds, the crash counts as unmet


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("seeds = 4", "seeds = 0"), "'seeds' must be at least 1"),
        (("seeds = 4", "seeds = [1, 1]"), "repeats a seed"),
        (
            ('"bad_debt", "liquidations"', '"bad_debt", "liquidation_count"'),
            "unknown metric 'liquidation_count'",
        ),
        (("[100, 200, 300]", "[]"), f"grid axis '{FUND}' must be a non-empty list"),
        (("[100, 200, 300]", "[100, 100]"), "repeats a value"),
        (('scenario = "scenario.toml"', 'scenario = "missing.toml"'), "does not exist"),
        (
            ('minimise = "insurance.fund"', 'minimise = "insurance.size"'),
            "'insurance.size' is not a grid axis",
        ),
        (
            ('op = "==", value = 0 }\nshare = 0.99', 'op = "~", value = 0 }\nshare = 0.99'),
            "op must be one of",
        ),
        (("share = 0.75", "share = 1.5"), "'share' must be a number in (0, 1]"),
        (
            ('metric = "bad_debt", op = "=="', 'metric = "adl_events", op = "=="'),
            "not in the sweep's metrics",
        ),
        (('name = "fake-grid"', 'name = "fake-grid"\nscenarios = "x"'), "unknown keys ['scenarios']"),
        (("[grid]", "grid ="), "is not valid TOML"),
    ],
)
def test_a_bad_sweep_file_is_refused_with_a_message_naming_the_mistake(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    # Arrange
    text = SWEEP.replace(*change, 1)
    assert text != SWEEP
    # Act, Assert
    with pytest.raises(SweepError, match=re.escape(message)):
        load_sweep(write_sweep(tmp_path, text))


def test_an_unknown_override_path_is_refused_before_any_run(tmp_path: Path) -> None:
    # Arrange
    CALLS.clear()
    spec = load_sweep(
        write_sweep(tmp_path, SWEEP.replace(f'"{MMR}"', '"config.markets.BTCUSDT.brackets.0.mrr"'))
    )
    # Act, Assert
    with pytest.raises(
        SweepError, match=r"cell 0 \(config\.markets\.BTCUSDT\.brackets\.0\.mrr = 0\.01.*does not exist"
    ):
        run_sweep(spec, tmp_path / "out", workers=1, run_cell=fake_run_cell, validate_cell=fake_validate)
    assert CALLS == []
    assert not (tmp_path / "out").exists()


def test_an_unknown_executor_and_zero_workers_are_refused(tmp_path: Path) -> None:
    # Arrange
    spec: SweepSpec = load_sweep(write_sweep(tmp_path))
    # Act, Assert
    with pytest.raises(SweepError, match="unknown executor 'dask'"):
        run_sweep(spec, None, executor="dask", run_cell=fake_run_cell, validate_cell=fake_validate)
    with pytest.raises(SweepError, match="workers must be at least 1"):
        run_sweep(spec, None, workers=0, run_cell=fake_run_cell, validate_cell=fake_validate)


SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
REAL_SWEEP = f"""
scenario = "{SCENARIOS / "liquidation_cascade.toml"}"
seeds = [1, 2]
metrics = ["liquidations", "insurance_fund_start", "bad_debt", "summary:trades", "passed"]

[grid]
"run.duration_s" = [60]
"insurance.fund" = [5000, 20000]
"""


def test_a_small_sweep_runs_the_real_simulator_in_two_processes(tmp_path: Path) -> None:
    # Arrange: one simulated minute of the cascade scenario (agents open positions, nothing crashes yet)
    path = tmp_path / "real.toml"
    path.write_text(REAL_SWEEP)
    spec = load_sweep(path)
    # Act
    outcome = run_sweep(spec, tmp_path / "out", workers=2)
    # Assert
    assert outcome.errors == 0
    assert [(r["insurance.fund"], r["seed"]) for r in outcome.rows] == [
        (5000, 1),
        (5000, 2),
        (20000, 1),
        (20000, 2),
    ]
    assert [r["insurance_fund_start"] for r in outcome.rows] == [5000.0, 5000.0, 20000.0, 20000.0]
    assert all(r["summary:trades"] > 0 for r in outcome.rows)
    assert pl.read_parquet(tmp_path / "out" / "results.parquet").height == 4


def test_the_real_scenario_refuses_an_unknown_override_path_before_any_run(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "typo.toml"
    path.write_text(REAL_SWEEP.replace('"insurance.fund"', '"insurance.fnud"'))
    spec = load_sweep(path)
    # Act, Assert
    with pytest.raises(SweepError, match=r"insurance\.fnud.*does not exist"):
        run_sweep(spec, tmp_path / "out", workers=1)
    assert not (tmp_path / "out").exists()


def test_cli_sweep_prints_the_answers_and_exits_2_on_a_bad_file_without_a_traceback(tmp_path: Path) -> None:
    # Arrange
    good = tmp_path / "good.toml"
    good.write_text(
        REAL_SWEEP.replace("[1, 2]", "[1]")
        + '\n[[questions]]\nminimise = "insurance.fund"\nwhere = { metric = "bad_debt", op = "==", value = 0 }\n'
    )
    bad = tmp_path / "bad.toml"
    bad.write_text(REAL_SWEEP.replace('"liquidations"', '"liquidation"'))
    runner = CliRunner()
    # Act
    ran = runner.invoke(app, ["sweep", str(good), "--out", str(tmp_path / "out"), "--workers", "1"])
    refused = runner.invoke(app, ["sweep", str(bad), "--out", str(tmp_path / "out2")])
    wrong_executor = runner.invoke(
        app, ["sweep", str(good), "--out", str(tmp_path / "out3"), "--executor", "dask"]
    )
    # Assert
    assert ran.exit_code == 0, ran.output
    assert "smallest insurance.fund with bad_debt == 0 in >= 100% of seeds" in ran.output
    assert "  duration_s = 60: NOT SUPPORTED at 100%: observed 5000 (1/1 seeds;" in ran.output
    assert (tmp_path / "out" / "answers.json").exists()
    assert refused.exit_code == 2 and "unknown metric 'liquidation'" in refused.output
    assert wrong_executor.exit_code == 2 and "unknown executor 'dask'" in wrong_executor.output
    assert "Traceback" not in refused.output + wrong_executor.output


def test_heatmaps_draw_one_panel_per_value_of_an_axis_off_the_map(tmp_path: Path) -> None:
    # Arrange: the fee comes first in the file, so it is y; the fund (last) is x; the rate is off the map
    text = SWEEP.replace(
        "[grid]", '[grid]\n"config.markets.BTCUSDT.liquidation_fee" = ["0.005", "0.01", "0.02"]'
    )
    spec = load_sweep(write_sweep(tmp_path, text))
    outcome = run_sweep(spec, None, workers=1, run_cell=fake_run_cell, validate_cell=fake_validate)
    # Act
    (figure,) = heatmap_figures(spec, outcome.cells)
    # Assert: one panel per rate, z[y][x] taken from the aggregate
    assert (figure.x_label, figure.y_label) == (FUND, "config.markets.BTCUSDT.liquidation_fee")
    assert [p.title for p in figure.panels] == ["mmr = 0.01", "mmr = 0.02"]
    assert figure.x_values == ["100", "200", "300"]
    assert figure.panels[0].z[0] == [0.75, 0.25, 0.0]
    assert figure.z_range == (0.0, 1.0) and figure.as_percent


def test_short_names_keep_axes_apart_and_never_start_at_a_list_index() -> None:
    # Arrange
    axes = [FUND, MMR, "config.markets.BTCUSDT.liquidation_fee", "config.markets.ETHUSDT.liquidation_fee"]
    # Act
    names = short_names(axes)
    # Assert
    assert list(names.values()) == ["fund", "mmr", "BTCUSDT.liquidation_fee", "ETHUSDT.liquidation_fee"]
    assert short_names(
        ["config.markets.BTCUSDT.brackets.0.mmr", "config.markets.BTCUSDT.brackets.1.mmr"]
    ) == {
        "config.markets.BTCUSDT.brackets.0.mmr": "brackets.0.mmr",
        "config.markets.BTCUSDT.brackets.1.mmr": "brackets.1.mmr",
    }


def test_metric_value_reads_assertions_counts_and_other_summary_fields() -> None:
    # Arrange
    result = fake_run_cell(Path("x.toml"), {FUND: 100, MMR: "0.01"}, 4)
    CALLS.clear()
    # Act, Assert
    assert metric_value(result, "assertion:no-bad-debt") is False
    assert metric_value(result, "assertions_failed") == 1.0
    assert metric_value(result, "summary:liquidations") == 40.0
    assert metric_value(result, "insurance_fund_min") == 0.0
    with pytest.raises(KeyError, match="no assertion named 'fund-floor'"):
        metric_value(result, "assertion:fund-floor")
    with pytest.raises(KeyError, match="summary has no field 'trades'"):
        metric_value(result, "summary:trades")
