"""The collateral-crash scenario and the lending report built from its data directory."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from typer.testing import CliRunner

from perpx.cli import app
from perpx.engine.values import AssetId, format_units
from perpx.journal.store import read_config, recover
from perpx.lending.book import read_book
from perpx.lending.crash import CrashParams, run_crash
from perpx.lending.report import write_report

SMALL = CrashParams(loans=40)


def test_crash_liquidates_to_below_the_liquidation_ltv_without_bad_debt(tmp_path: Path) -> None:
    # Act: 40 loans at 30..78%, BTC 50,000 -> 35,000 in ten minutes, quotes every 10 s
    summary = run_crash(tmp_path / "data", SMALL)
    # Assert: every loan that reached 91% (78% x 50,000 / 91% = 42,857) was liquidated as it crossed
    engine, _ = recover(tmp_path / "data", read_config(tmp_path / "data"))
    assert engine.config.lending is not None
    terms = engine.config.lending.collateral[AssetId("BTC")]
    assert summary.loans_opened == 40
    assert summary.liquidations > 0 and summary.bad_debt_atoms == 0
    for loan in engine.lending.loans.values():
        ltv = engine.lending.ltv_e8(loan)
        assert ltv is not None and ltv < terms.liquidation_ltv_e8


def test_stale_index_during_the_drop_holds_liquidations_and_leaves_bad_debt(tmp_path: Path) -> None:
    # Act: okx is silent for the whole fall: from 30 s on the index is below its quorum
    summary = run_crash(tmp_path / "data", CrashParams(loans=40, okx_silent=(0, 600)))
    # Assert: no liquidation while stale, then the loans beyond 100% leave bad debt
    during = [
        liquidations for elapsed, _price, liquidations, _over in summary.timeline if 40 <= elapsed < 600
    ]
    assert during and during[0] == during[-1]
    assert summary.bad_debt_atoms > 0 and summary.loans_closed_by_liquidation > 0


def test_report_shows_the_book_the_engine_holds(tmp_path: Path) -> None:
    # Arrange
    run_crash(tmp_path / "data", SMALL)
    engine, _ = recover(tmp_path / "data", read_config(tmp_path / "data"))
    # Act
    json_path, html_path = write_report(read_book(tmp_path / "data"), tmp_path / "out")
    # Assert
    data = json.loads(json_path.read_text())
    debt = sum(loan.debt_atoms for loan in engine.lending.loans.values())
    assert data["openLoans"] == len(engine.lending.loans)
    assert data["outstanding"]["USDT"]["debt"] == format_units(debt, Decimal("0.00000001"))
    assert sum(data["ltvDistribution"].values()) == data["openLoans"]
    assert data["liquidations"]["count"] == len(data["liquidations"]["rows"]) > 0
    assert "Loan book of demo" in html_path.read_text()


def test_explain_lists_each_liquidation_step_and_the_bad_debt(tmp_path: Path) -> None:
    # Arrange: the stale-index crash leaves bad debt on the riskiest loans (the last borrowers)
    run_crash(tmp_path / "data", CrashParams(loans=10, okx_silent=(0, 600)))
    # Act
    result = CliRunner().invoke(
        app, ["lending", "explain", "--data", str(tmp_path / "data"), "--account", "11"]
    )
    # Assert
    assert result.exit_code == 0, result.output
    assert "LIQUIDATION of loan 10 (USDT against BTC)" in result.output
    assert "step 1: repaid" in result.output
    assert "written off as the lender's bad debt" in result.output


def test_report_cli_on_a_missing_directory_exits_2_with_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["lending", "report", "--data", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "error:" in result.output


def test_crash_cli_refuses_a_directory_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    result = CliRunner().invoke(app, ["lending", "crash", "--data", str(tmp_path)])
    assert result.exit_code == 2
    assert "not empty" in result.output
