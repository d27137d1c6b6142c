"""The desk report when the desk is also the venue's lender: RFQ trades, loans with interest, a liquidation.

The P&L lines plus capital flows still sum to the desk's change in equity exactly (equity now holds
the loan receivables and the collateral the desk was sold, at the index), and each lending line is
held to its definition computed independently from the engine's events.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from perpx.engine.commands import BorrowLoan, Deposit, SubmitAssetQuote
from perpx.engine.events import LoanInterestAccrued, LoanLiquidated
from perpx.engine.lending import formulas
from perpx.engine.values import AccountId, AssetId, TxId
from perpx.otc.config import HedgeMode
from perpx.otc.pricing import QuoteSide
from perpx.otc.report import DeskReport, decompose, equity_atoms, kpis, write_report
from tests.otc.kit import DeskKit, desk_kit

BTC_ASSET = AssetId("BTC")
USDT = AssetId("USDT")
E8 = 10**8


def _price(kit: DeskKit, usdt: int) -> list[object]:
    events: list[object] = []
    for source in ("binance", "okx"):
        command = SubmitAssetQuote(ts_ns=kit.v.tick(), asset=BTC_ASSET, source=source, price_atoms=usdt * E8)
        events.extend(kit.v.apply(command))
    return events


def _lending_day(kit: DeskKit) -> None:
    """Two block trades, a 39,000 USDT loan against 1 BTC accruing interest, a fall to 42,800 then 30,000."""
    v = kit.v
    v.account("borrower", deposit=None)
    v.apply(
        Deposit(
            ts_ns=v.tick(),
            account_id=v.names["borrower"],
            asset=BTC_ASSET,
            amount_atoms=E8,
            tx_id=TxId("btc-1"),
        )
    )
    _price(kit, 50_000)
    v.apply(
        BorrowLoan(
            ts_ns=v.tick(),
            account_id=v.names["borrower"],
            loan_asset=USDT,
            collateral_asset=BTC_ASSET,
            loan_atoms=39_000 * E8,
            collateral_atoms=E8,
        )
    )
    kit.accept(kit.request(side=QuoteSide.BUY, qty="1.5").quote_id)
    v.advance(300)  # five minutes of interest
    v.mark("BTCUSDT", "30010")
    kit.accept(kit.request(client="other", side=QuoteSide.SELL, qty="0.5").quote_id, client="other")
    _price(kit, 42_800)  # a liquidation in steps, no bad debt
    v.advance(120)
    _price(kit, 30_000)  # the rest of the collateral cannot cover the debt: bad debt
    _price(kit, 31_000)  # the BTC the desk was sold is revalued


def test_pnl_sums_to_the_lenders_change_in_equity_exactly_with_trades_interest_and_a_liquidation() -> None:
    kit = desk_kit(hedge=HedgeMode.WAREHOUSE, lender=True)
    desk = AccountId(kit.v.names["desk"])
    start = len(kit.commands)

    _lending_day(kit)

    ledger, engine = decompose(kit.v.config, kit.commands, desk, from_ns=kit.commands[start].ts_ns)
    assert ledger.pnl_atoms + ledger.flows_atoms == ledger.equity_end_atoms - ledger.equity_start_atoms
    held_btc = engine.accounts[desk].balance(BTC_ASSET)
    assert held_btc > 0  # the collateral the liquidations sold the desk, in its equity at 31,000
    assert ledger.equity_end_atoms == equity_atoms(engine, desk) + formulas.value_atoms(
        held_btc, 31_000 * E8, 8
    )
    assert ledger.total("other") == 0
    assert ledger.total("spread_capture") > 0
    assert ledger.total("interest_income") > 0
    assert ledger.total("liquidation_penalties") > 0
    assert ledger.total("bad_debt") < 0
    assert ledger.liquidations == 2


def test_each_lending_line_is_its_definition_from_the_engines_events() -> None:
    kit = desk_kit(hedge=HedgeMode.WAREHOUSE, lender=True)
    desk = AccountId(kit.v.names["desk"])
    events: list[object] = []
    kit.v.sequencer.add_listener(lambda batch: events.extend(e for a in batch for e in a.events))

    _lending_day(kit)

    ledger, _ = decompose(kit.v.config, kit.commands, desk)
    accrued = sum(e.interest_atoms for e in events if isinstance(e, LoanInterestAccrued))
    liquidations = [e for e in events if isinstance(e, LoanLiquidated)]
    penalties = sum(
        formulas.value_atoms(e.collateral_seized_atoms, e.index_atoms, 8) - e.debt_repaid_atoms
        for e in liquidations
    )
    assert ledger.total("interest_income") == accrued > 0
    assert ledger.total("bad_debt") == -sum(e.bad_debt_atoms for e in liquidations) < 0
    assert abs(ledger.total("liquidation_penalties") - penalties) <= len(liquidations)  # rounding, atoms


def test_report_shows_the_loan_book_by_client_and_its_kpis(tmp_path: Path) -> None:
    kit = desk_kit(hedge=HedgeMode.WAREHOUSE, lender=True)
    desk = AccountId(kit.v.names["desk"])
    _lending_day(kit)
    ledger, engine = decompose(kit.v.config, kit.commands, desk)
    figures = kpis(kit.desk.store, ledger, engine, None, None)

    summary = write_report(DeskReport(ledger, figures, engine.config.settlement.atom), tmp_path)

    borrower = str(kit.v.names["borrower"])
    assert summary["reconciles"] is True
    assert set(summary["pnl_by"]["client"][borrower]) == {
        "bad_debt",
        "interest_income",
        "liquidation_penalties",
    }
    assert summary["lending"]["interest_income"] == figures["lending"]["interest_income"] != "0"
    lending = figures["lending"]
    assert lending["status"] == "lender" and lending["open_loans"] == 0 and lending["loan_book_size"] == "0"
    assert lending["liquidations"] == 2
    prom = (tmp_path / "desk.prom").read_text()
    assert "perpx_otc_interest_income" in prom and 'perpx_otc_pnl{line="bad_debt"}' in prom


def test_open_loan_book_kpis_are_its_debt_utilisation_and_debt_weighted_ltv() -> None:
    kit = desk_kit(hedge=HedgeMode.WAREHOUSE, lender=True)
    v = kit.v
    v.account("borrower", deposit=None)
    v.apply(
        Deposit(
            ts_ns=v.tick(), account_id=v.names["borrower"], asset=BTC_ASSET, amount_atoms=E8, tx_id=TxId("b")
        )
    )
    _price(kit, 50_000)
    v.apply(
        BorrowLoan(
            ts_ns=v.tick(),
            account_id=v.names["borrower"],
            loan_asset=USDT,
            collateral_asset=BTC_ASSET,
            loan_atoms=25_000 * E8,
            collateral_atoms=E8,
        )
    )
    ledger, engine = decompose(v.config, kit.commands, AccountId(v.names["desk"]))

    lending = kpis(kit.desk.store, ledger, engine, None, None)["lending"]

    available = engine.lending.lender_available_atoms(USDT)
    assert lending["open_loans"] == 1 and lending["loan_book_size"] == "25000"
    assert lending["average_ltv"] == "0.5000"
    assert lending["utilisation"] == str(Decimal(formulas.utilisation_e8(25_000 * E8, available)) / E8)


def test_a_desk_that_is_not_the_lender_reports_no_loan_book() -> None:
    kit = desk_kit()
    ledger, engine = decompose(kit.v.config, kit.commands, AccountId(kit.v.names["desk"]))

    lending = kpis(kit.desk.store, ledger, engine, None, None)["lending"]

    assert lending["status"] == "absent" and "no [lending] table" in lending["note"]
