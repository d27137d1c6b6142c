"""A short simulated desk day: RFQs over a risk-lab market, hedges on the book, a report that reconciles."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from perpx.cli import app
from perpx.otc.simday import DayPlan, run_day
from perpx.otc.store import OtcStore

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "calm_day.toml"


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("desk-day") / "day"
    plan = DayPlan(scenario=SCENARIO, seed=3, hours=0.1, rfq_interval_s=6.0, hedge="immediate")
    return out, run_day(plan, out)


def test_simulated_day_books_trades_hedges_them_and_reconciles(day: tuple[Path, dict[str, Any]]) -> None:
    out, summary = day

    assert summary["reconciles"] is True
    kpis = summary["kpis"]
    assert kpis["rfq_count"] > 20 and kpis["trades"] > 0
    finished = [h for h in kpis["hedges"] if h["filled_qty"] == h["qty"]]
    assert finished and all(h["slippage_bps"] is not None for h in finished)
    total = sum(Decimal(v) for v in summary["pnl"].values())
    assert total == Decimal(summary["pnl_total"])
    assert total + Decimal(summary["capital_flows"]) == Decimal(summary["equity_change"])
    store = OtcStore.in_dir(out)
    try:
        assert sum(1 for q in store.quotes() if q.state == "FILLED") == kpis["trades"]
    finally:
        store.close()


def test_desk_report_command_rebuilds_the_same_figures_from_the_data(
    day: tuple[Path, dict[str, Any]],
) -> None:
    out, summary = day

    result = CliRunner().invoke(app, ["desk", "report", "--data", str(out), "--out", str(out / "again")])

    assert result.exit_code == 0, result.output
    again = json.loads((out / "again" / "report.json").read_text())
    assert again["pnl"] == summary["pnl"] and again["kpis"]["trades"] == summary["kpis"]["trades"]


def test_desk_report_on_a_directory_without_a_journal_fails_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["desk", "report", "--data", str(tmp_path)])

    assert result.exit_code == 2 and "journal.log" in result.output


def test_desk_report_with_a_bad_window_fails_in_one_line(day: tuple[Path, dict[str, Any]]) -> None:
    out, _ = day

    result = CliRunner().invoke(app, ["desk", "report", "--data", str(out), "--from", "yesterday"])

    assert result.exit_code == 2 and "--from" in result.output


def test_a_day_with_a_loan_book_reports_its_interest_and_still_reconciles(tmp_path: Path) -> None:
    plan = DayPlan(scenario=SCENARIO, seed=3, hours=0.05, rfq_interval_s=6.0, hedge="immediate", loans=3)

    summary = run_day(plan, tmp_path / "day")

    lending = summary["kpis"]["lending"]
    assert summary["reconciles"] is True
    assert lending["status"] == "lender" and lending["open_loans"] == 3
    assert Decimal(summary["pnl"]["interest_income"]) > 0
    assert Decimal(lending["interest_income"]) == Decimal(summary["pnl"]["interest_income"])
    assert 0 < Decimal(lending["average_ltv"]) < Decimal("0.78")
