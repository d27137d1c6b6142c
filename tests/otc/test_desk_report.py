"""The desk report: its P&L lines sum to the desk's change in equity exactly, each line as defined."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from perpx.engine import formulas
from perpx.engine.commands import BookBlockTrade
from perpx.engine.engine import Engine
from perpx.engine.values import AccountId, MarketId
from perpx.execution.inprocess import EngineVenue
from perpx.otc.config import HedgeMode
from perpx.otc.errors import OtcError
from perpx.otc.hedging import Hedger
from perpx.otc.pricing import QuoteSide
from perpx.otc.report import DeskReport, decompose, equity_atoms, kpis, write_report
from tests.engine.helpers import BTC
from tests.otc.kit import DeskKit, desk_kit


def _day(kit: DeskKit) -> None:
    """Block trades both ways, mark moves, a hedge worked on the book, a deposit to the desk."""
    v = kit.v
    venue = EngineVenue(v.sequencer, v.names["desk"], lambda: v.now_ns)
    hedger = Hedger(venue, kit.desk.store, dict(kit.desk.config.markets))
    kit.accept(kit.request(side=QuoteSide.BUY, qty="1.5").quote_id)
    v.mark(BTC, "30010")
    kit.accept(kit.request(client="other", side=QuoteSide.SELL, qty="0.5").quote_id, client="other")
    v.mark(BTC, "29990")
    hedger.review(v.engine, BTC, "after two trades")
    for _ in range(90):
        v.advance(1)
        hedger.step_due(v.now_ns)
    v.deposit("desk", "500")
    kit.accept(kit.request(side=QuoteSide.SELL, qty="0.7").quote_id)
    v.mark(BTC, "30004")


def test_pnl_lines_and_flows_sum_to_the_desks_change_in_equity_exactly() -> None:
    kit = desk_kit(hedge=HedgeMode.IMMEDIATE)
    desk = AccountId(kit.v.names["desk"])
    start = len(kit.commands)
    before = equity_atoms(kit.v.engine, desk)

    _day(kit)

    ledger, _ = decompose(kit.v.config, kit.commands, desk, from_ns=kit.commands[start].ts_ns)
    assert ledger.equity_start_atoms == before
    assert ledger.equity_end_atoms == equity_atoms(kit.v.engine, desk)
    assert ledger.pnl_atoms + ledger.flows_atoms == ledger.equity_end_atoms - ledger.equity_start_atoms
    assert ledger.flows_atoms == 500 * 10**8
    assert ledger.total("inventory_pnl") != 0 and ledger.total("hedging_cost") != 0
    assert ledger.total("other") == 0


def test_spread_capture_is_the_block_trades_value_at_the_mark_less_its_price() -> None:
    kit = desk_kit()
    desk = AccountId(kit.v.names["desk"])

    _day(kit)

    ledger, _ = decompose(kit.v.config, kit.commands, desk)
    expected = 0
    check = Engine(kit.v.config)
    for command in kit.commands:
        check.apply(command)
        if isinstance(command, BookBlockTrade):
            spec = check.specs[MarketId(BTC)]
            mark = check.marks[MarketId(BTC)]
            desk_sign = -int(command.side)
            expected += desk_sign * (
                formulas.notional_atoms(mark, command.qty_lots, spec.contract_atoms)
                - formulas.notional_atoms(command.price_ticks, command.qty_lots, spec.contract_atoms)
            )
    assert ledger.total("spread_capture") == expected > 0


def test_report_files_and_kpis(tmp_path: Path) -> None:
    kit = desk_kit(hedge=HedgeMode.IMMEDIATE)
    desk = AccountId(kit.v.names["desk"])
    _day(kit)
    ledger, engine = decompose(kit.v.config, kit.commands, desk)
    figures = kpis(kit.desk.store, ledger, engine, None, None)

    summary = write_report(DeskReport(ledger, figures, engine.config.settlement.atom), tmp_path)

    assert summary["reconciles"] is True
    assert figures["rfq_count"] == 3 and figures["trades"] == 3 and figures["hit_ratio"] == 1.0
    assert [h["side"] for h in figures["hedges"]] == ["BUY"]
    assert figures["hedges"][0]["filled_qty"] == figures["hedges"][0]["qty"]
    assert set(figures["by_client"]) == {str(kit.v.names["client"]), str(kit.v.names["other"])}
    frame = pl.read_parquet(tmp_path / "pnl.parquet")
    assert frame["atoms"].sum() == ledger.pnl_atoms
    prom = (tmp_path / "desk.prom").read_text()
    assert "perpx_otc_hit_ratio 1.0" in prom and 'perpx_otc_pnl{line="spread_capture"}' in prom
    assert "desk report" in (tmp_path / "report.html").read_text()


def test_refusals_of_one_kind_count_together_whatever_their_numbers() -> None:
    kit = desk_kit()
    for qty in ("0.001", "0.002"):
        with pytest.raises(OtcError):
            kit.request(qty=qty)
    ledger, engine = decompose(kit.v.config, kit.commands, AccountId(kit.v.names["desk"]))

    figures = kpis(kit.desk.store, ledger, engine, None, None)

    assert figures["refusals_by_reason"] == {
        "the request is N of notional at the index; the desk quotes N to N": 2
    }
