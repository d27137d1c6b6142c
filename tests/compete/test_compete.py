"""Competitions: the example participants on a seeded scenario, reproducible, with their report; the
live leaderboard of competitor accounts."""

from __future__ import annotations

import asyncio
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from perpx.cli import app as cli
from perpx.compete.config import CompetitionError, load_competition
from perpx.compete.runner import run_competition

from ..server.inprocess import in_process_venue

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples/competition/competition.toml"


def short_copy(tmp_path: Path, steps: int = 20, seed: int = 7, name: str = "short.toml") -> Path:
    """The example competition, shorter, written beside the example participants' copies."""
    text = (
        EXAMPLE.read_text().replace("steps = 120", f"steps = {steps}").replace("seed = 7", f"seed = {seed}")
    )
    text = text.replace('"../../scenarios/calm_day.toml"', json.dumps(str(REPO / "scenarios/calm_day.toml")))
    text = text.replace('"momentum.py:', json.dumps(str(EXAMPLE.parent / "momentum.py"))[:-1] + ":")
    text = text.replace('"mcp_reverter.py:', json.dumps(str(EXAMPLE.parent / "mcp_reverter.py"))[:-1] + ":")
    path = tmp_path / name
    path.write_text(text)
    return path


def test_same_seed_gives_the_same_leaderboard_and_curves(tmp_path: Path) -> None:
    comp = load_competition(short_copy(tmp_path))

    first = asyncio.run(run_competition(comp, tmp_path / "a"))
    second = asyncio.run(run_competition(comp, tmp_path / "b"))
    other_seed = load_competition(short_copy(tmp_path, steps=3, seed=8, name="s8.toml"))
    other = asyncio.run(run_competition(other_seed, tmp_path / "c"))

    assert first.as_json() == second.as_json()
    assert other.marks != first.marks[:3]
    assert {s.name for s in first.leaderboard} == {"momentum", "reverter-mcp"}
    assert all(len(curve) == 20 for curve in first.curves.values())
    momentum = next(s for s in first.leaderboard if s.name == "momentum")
    assert momentum.trades > 0 and momentum.volume != "0" and momentum.fees != "0"


def test_compete_command_writes_leaderboard_curves_and_report(tmp_path: Path) -> None:
    out = tmp_path / "out"

    result = CliRunner().invoke(cli, ["compete", str(short_copy(tmp_path, steps=15)), "--out", str(out)])

    assert result.exit_code == 0, result.output
    board = json.loads((out / "leaderboard.json").read_text())
    assert [row["name"] for row in board["leaderboard"]] and board["seed"] == 7
    header = (out / "leaderboard.csv").read_text().splitlines()[0].split(",")
    assert {
        "pnl",
        "return_pct",
        "sharpe",
        "max_drawdown_pct",
        "volume",
        "fees",
        "liquidations",
        "limit_refusals",
    } <= set(header)
    assert (out / "equity.csv").read_text().count("\n") == 16
    report = (out / "report.html").read_text()
    assert "momentum" in report
    assert not re.search(r"<script[^>]*\bsrc\s*=\s*[\"']?\s*(https?:)?//", report, re.IGNORECASE)
    assert "Plotly.newPlot" in report and len(report) > 1_000_000  # plotly's own bundle, inline


def test_orders_over_the_shared_limits_are_counted_as_refusals(tmp_path: Path) -> None:
    path = short_copy(tmp_path, steps=10)
    path.write_text(path.read_text().replace('maxOrderNotional = "3000"', 'maxOrderNotional = "100"'))

    result = asyncio.run(run_competition(load_competition(path), tmp_path / "venue"))

    momentum = next(s for s in result.leaderboard if s.name == "momentum")
    assert momentum.limit_refusals > 0 and momentum.trades == 0
    assert result.errors["momentum"] == []


def test_competition_file_with_an_unknown_limit_is_refused(tmp_path: Path) -> None:
    path = short_copy(tmp_path)
    path.write_text(path.read_text().replace("maxOrderNotional", "maxLeverage"))

    with pytest.raises(CompetitionError, match="maxLeverage"):
        load_competition(path)


def test_live_leaderboard_lists_competitor_accounts_by_pnl(tmp_path: Path) -> None:
    with in_process_venue(tmp_path / "data") as venue:
        venue.mark("BTCUSDT", "60000")
        for name, competitor in (("alice", True), ("bob", True), ("carol", False)):
            owner = venue.trader(name)
            created = venue.admin(
                "POST",
                "/agents",
                {
                    "accountId": owner.account_id,
                    "name": name,
                    "scopes": ["read", "trade"],
                    "competitor": competitor,
                },
            )
            assert created.status_code == 200, created.text

        board = venue.client.get("/perpx/v1/leaderboard").json()

    assert [row["name"] for row in board] == ["alice", "bob"]
    assert [Decimal(row["pnl"]) for row in board] == [0, 0]
    assert [Decimal(row["equity"]) for row in board] == [100000, 100000]
