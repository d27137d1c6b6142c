"""Incident replay and report on a risk lab run whose story is known (``flash_crash``).

Spot starts falling at 00:05 venue time (t = 300 s) and longs are liquidated from about 00:05:49.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from perpx.cli import app
from perpx.engine.engine import Engine
from perpx.engine.state import state_hash as hash_of
from perpx.journal.journal import scan
from perpx.journal.store import JOURNAL_FILE, read_config, recover
from perpx.ops.incident import parse_time_ns, timeline
from perpx.sim.runner.run import run_scenario

runner = CliRunner()


@pytest.fixture(scope="module")
def crash(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("flash_crash")
    run_scenario("scenarios/flash_crash.toml", 1, out, write_outputs=False)
    return out / "journal"


def hash_at(data: Path, seq: int) -> str:
    engine = Engine(read_config(data))
    for record in scan(data / JOURNAL_FILE).records[:seq]:
        engine.apply(record.command)
    return hash_of(engine)


@pytest.mark.parametrize("command", [["replay"], ["incident", "replay"]])
def test_replay_until_seq_rebuilds_the_venue_as_it_was_then(
    crash: Path, tmp_path: Path, command: list[str]
) -> None:
    # Arrange
    out = tmp_path / "moment"

    # Act: perpx replay --data DIR --until-seq N --out SNAPSHOT (the spelling), or incident replay
    done = runner.invoke(app, [*command, "--data", str(crash), "--until-seq", "4000", "--out", str(out)])
    explained = runner.invoke(app, ["explain", "--data", str(out), "--account", "1"])

    # Assert: the copy is the journal's state at record 4000, and the read-only tools work on it
    assert done.exit_code == 0, done.output
    _, report = recover(out, read_config(out))
    assert report.last_seq == 4000
    assert report.snapshot_seq == 4000
    assert report.state_hash == hash_at(crash, 4000)
    assert report.state_hash in done.output
    assert explained.exit_code == 0, explained.output


def test_replay_until_time_stops_where_venue_time_passes_it(crash: Path, tmp_path: Path) -> None:
    # Arrange
    records = scan(crash / JOURNAL_FILE).records
    moment_ns = parse_time_ns("2026-01-01T00:06:00Z")
    # venue time passes the moment at the first record stamped after it (later records stamped
    # earlier, a spot quote's own time, arrived after the moment)
    expected = next(r.seq for r in records if r.command.ts_ns > moment_ns) - 1

    # Act
    done = runner.invoke(app, ["replay", "--data", str(crash), "--until-time",
                               "2026-01-01T00:06:00Z", "--out", str(tmp_path / "six")])  # fmt: skip

    # Assert
    assert done.exit_code == 0, done.output
    assert f"record        {expected}" in done.output
    assert recover(tmp_path / "six", read_config(crash))[1].last_seq == expected


def test_replay_of_a_moment_without_out_or_with_two_directories_is_refused(crash: Path) -> None:
    # Act
    no_out = runner.invoke(app, ["replay", "--data", str(crash), "--until-seq", "5"])
    twice = runner.invoke(app, ["replay", str(crash), "--data", str(crash)])
    neither = runner.invoke(app, ["replay"])

    # Assert
    assert no_out.exit_code == twice.exit_code == neither.exit_code == 2
    assert "give --out" in no_out.output
    assert "give the data directory once" in twice.output and "give the data directory once" in neither.output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--until-seq", "0"], "outside the journal's records"),
        (["--until-seq", "99999999"], "outside the journal's records"),
        (["--until-time", "1999-01-01"], "the journal starts later"),
        (["--until-time", "yesterday"], "is not a time"),
        ([], "exactly one of --until-seq and --until-time"),
    ],
)
def test_replay_with_a_bad_moment_is_refused_and_writes_nothing(
    crash: Path, tmp_path: Path, args: list[str], says: str
) -> None:
    # Act
    done = runner.invoke(
        app, ["incident", "replay", "--data", str(crash), "--out", str(tmp_path / "x"), *args]
    )

    # Assert
    assert done.exit_code == 2
    assert says in done.output.replace("\n", " ")
    assert not (tmp_path / "x").exists()


def test_report_shows_the_crash_liquidations_and_the_spike_alert(crash: Path, tmp_path: Path) -> None:
    # Arrange
    out = tmp_path / "incident.html"

    # Act
    done = runner.invoke(app, ["incident", "report", "--data", str(crash), "--from", "2026-01-01T00:04:00Z",
                               "--to", "2026-01-01T00:12:00Z", "--out", str(out)])  # fmt: skip
    found = timeline(crash, parse_time_ns("2026-01-01T00:04:00Z"), parse_time_ns("2026-01-01T00:12:00Z"))

    # Assert
    assert done.exit_code == 0, done.output
    page = out.read_text()
    liquidations = [e for e in found.entries if e.kind == "liquidation"]
    assert liquidations and all(e.ts_ns >= parse_time_ns("2026-01-01T00:05:00Z") for e in liquidations)
    alerts = [e.text for e in found.alerts()]
    assert any(text.startswith("PerpxLiquidationSpike") for text in alerts)
    assert not any(text.startswith("PerpxInvariantViolation") for text in alerts)
    assert "PerpxLiquidationSpike" in page
    assert page.count("<tr") == 3 + len(found.alerts()) + len(found.commands) + len(found.entries)


def test_report_before_the_crash_has_no_alert(crash: Path) -> None:
    # Act
    found = timeline(crash, parse_time_ns("2026-01-01T00:00:00Z"), parse_time_ns("2026-01-01T00:04:59Z"))

    # Assert
    assert found.entries
    assert found.alerts() == []
    assert not [e for e in found.entries if e.kind == "liquidation"]
