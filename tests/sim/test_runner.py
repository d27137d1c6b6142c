"""The runner: deterministic in any process, a replayable journal, the outputs, the CLI's exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from perpx.cli import app
from perpx.engine.commands import SubmitSpotQuote
from perpx.journal.store import read_config, recover
from perpx.sim.result import MARKET_SERIES, VENUE_SERIES
from perpx.sim.runner import START_NS, SUMMARY_FIELDS, RunError, Simulation, load_result, run_scenario
from perpx.sim.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
CALM = ROOT / "scenarios" / "calm_day.toml"
STALE = ROOT / "scenarios" / "stale_and_outlier_source.toml"
SHORT = {"run.duration_s": 240}

PROGRAM = """
import json, sys
from perpx.sim.runner import run_scenario
r = run_scenario(sys.argv[1], 11, None, overrides={"run.duration_s": 240})
print(json.dumps([r.summary["state_hash"], r.summary["commands"], r.summary["events"]]))
"""


def test_the_same_seed_gives_the_same_events_and_hash_in_two_processes() -> None:
    # Arrange, Act: two fresh interpreters with different string hashing
    outputs = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, "-c", PROGRAM, str(CALM)], capture_output=True, text=True, env=env, check=True
        )
        outputs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    # Assert
    assert outputs[0] == outputs[1]
    assert outputs[0][1] > 1000
    assert run_scenario(CALM, 12, None, overrides=SHORT).summary["state_hash"] != outputs[0][0]


def test_a_run_writes_a_summary_series_and_a_journal_that_replays_to_its_hash(tmp_path: Path) -> None:
    # Act
    result = run_scenario(CALM, 3, tmp_path, overrides=SHORT)
    # Assert: the summary has every field the issue names
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(SUMMARY_FIELDS) <= set(summary)
    assert summary["state_hash"] == result.summary["state_hash"] and summary["seed"] == 3
    # the journal replays to the same state, and equals the in-memory run of the same seed
    journal = tmp_path / "journal"
    _, report = recover(journal, read_config(journal), use_snapshots=False)
    assert report.state_hash == summary["state_hash"] and report.replayed == summary["commands"]
    assert run_scenario(CALM, 3, None, overrides=SHORT).summary["state_hash"] == summary["state_hash"]
    # series: every column, equal lengths, one row per sample (0, 10, ..., 240 s, then the end)
    btc = result.series["BTCUSDT"]
    assert set(MARKET_SERIES) <= set(btc) and set(VENUE_SERIES) <= set(result.venue_series)
    assert {len(column) for column in btc.values()} == {len(result.venue_series["t_s"])} == {26}
    loaded = load_result(tmp_path)
    assert loaded.summary == summary and loaded.series["BTCUSDT"]["mark"][1:] == btc["mark"][1:]


def test_a_second_run_into_the_same_directory_is_refused(tmp_path: Path) -> None:
    run_scenario(CALM, 1, tmp_path, overrides={"run.duration_s": 20}, write_outputs=False)
    with pytest.raises(RunError, match="already holds a run"):
        run_scenario(CALM, 1, tmp_path, overrides={"run.duration_s": 20})


def test_a_stale_source_sends_nothing_in_its_window_and_the_outlier_sends_1000x() -> None:
    # Arrange: record every spot quote of the run
    scenario = load_scenario(STALE, {"run.duration_s": 800})
    sim = Simulation(scenario, 1)
    quotes: list[SubmitSpotQuote] = []
    submit = sim.submit

    def recording(command: object) -> object:
        if isinstance(command, SubmitSpotQuote):
            quotes.append(command)
        return submit(command)  # type: ignore[arg-type]

    sim.submit = recording  # type: ignore[method-assign, assignment]
    # Act
    sim.setup()
    sim.run()
    # Assert

    def at(q: SubmitSpotQuote) -> float:
        return (q.ts_ns - START_NS) / 1e9

    okx = [at(q) for q in quotes if q.source == "okx"]
    assert okx and not [t for t in okx if 300 <= t < 900] and max(okx) < 300
    coinbase = {at(q): q.price_ticks for q in quotes if q.source == "coinbase"}
    inside = [p for t, p in coinbase.items() if 400 <= t < 700]
    outside = [p for t, p in coinbase.items() if t < 400]
    assert min(inside) > 500 * max(outside)


def _cli_scenario(tmp_path: Path, assertion: str) -> Path:
    text = CALM.read_text().replace(
        'config_file = "venue.toml"', f'config_file = "{ROOT / "scenarios" / "venue.toml"}"'
    )
    text = text.replace("duration_s = 7200", "duration_s = 60") + assertion
    # a minute sees no hourly settlement
    hourly = '[[assertions]]\nname = "funding settles every hour"\nmetric = "funding_settlements"\nop = ">="\nvalue = 2\n'
    assert hourly in text
    text = text.replace(hourly, "")
    path = tmp_path / "scenario.toml"
    path.write_text(text)
    return path


def test_cli_simulate_exits_zero_when_every_assertion_holds(tmp_path: Path) -> None:
    path = _cli_scenario(tmp_path, "")
    result = CliRunner().invoke(app, ["simulate", str(path), "--out", str(tmp_path / "out"), "--seed", "4"])
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output and "FAIL" not in result.output
    assert (tmp_path / "out" / "journal" / "journal.log").exists()


def test_cli_simulate_exits_one_and_names_a_failed_assertion(tmp_path: Path) -> None:
    path = _cli_scenario(
        tmp_path, '\n[[assertions]]\nname = "impossible"\nmetric = "liquidations"\nop = ">="\nvalue = 1000\n'
    )
    result = CliRunner().invoke(app, ["simulate", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "FAIL impossible" in result.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name = [", "not valid TOML"),
        ('config_file = "nowhere.toml"', "nowhere.toml"),
        ('config_file = "{venue}"\n[[agents]]\nkind = "alien"\n', "agent kind"),
    ],
)
def test_cli_simulate_with_a_bad_scenario_exits_two_without_a_traceback(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text.replace("{venue}", str(ROOT / "scenarios" / "venue.toml")))
    result = CliRunner().invoke(app, ["simulate", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_cli_simulate_lists_the_shipped_scenarios_with_their_descriptions() -> None:
    result = CliRunner().invoke(app, ["simulate", "--list", "--scenarios", str(ROOT / "scenarios")])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    names = [line.split()[0] for line in lines]
    assert "funding_squeeze" in names and "flash_crash" in names and "venue" not in names
    assert all(len(line.split(maxsplit=1)) == 2 for line in lines)  # each with its description


def test_cli_simulate_applies_overrides(tmp_path: Path) -> None:
    path = _cli_scenario(tmp_path, "")
    result = CliRunner().invoke(
        app,
        ["simulate", str(path), "--out", str(tmp_path / "out"), "--override", "run.duration_s=30"],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["sim_seconds"] == 30


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("nope", "give key=value"),
        ("nowhere.fund=1", "'nowhere' does not exist"),
        ("run.duration_s=abc", "run.duration_s"),
    ],
)
def test_cli_simulate_refuses_a_bad_override_in_one_line(tmp_path: Path, override: str, message: str) -> None:
    path = _cli_scenario(tmp_path, "")
    result = CliRunner().invoke(
        app, ["simulate", str(path), "--out", str(tmp_path / "out"), "--override", override]
    )
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_simulate_no_report_writes_the_summary_but_no_html_and_a_report_explains_the_largest(
    tmp_path: Path,
) -> None:
    # Arrange
    scenario = ROOT / "scenarios" / "drills" / "drill_2020_03_12_liquidity_void.toml"
    runner = CliRunner()
    # Act
    plain = runner.invoke(app, ["simulate", str(scenario), "--out", str(tmp_path / "plain"), "--no-report"])
    drawn = run_scenario(scenario, 1, tmp_path / "drawn")
    # Assert
    assert plain.exit_code == 0, plain.output
    assert (tmp_path / "plain" / "summary.json").exists() and not (
        tmp_path / "plain" / "report.html"
    ).exists()
    explained = sorted((tmp_path / "drawn").glob("explain_*.txt"))
    assert len(explained) == 3 and drawn.summary["liquidations"] >= 3
    page = (tmp_path / "drawn" / "report.html").read_text(encoding="utf-8")
    assert "The largest liquidations, explained" in page and "liquidation order #" in page
