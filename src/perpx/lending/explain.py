"""``perpx lending explain``: the margin calls and liquidations of one account's loans, for a person.

The journal is replayed read-only (``journal.store.recover``); every ``LoanMarginCalled`` and
``LoanLiquidated`` of the account is printed with its inputs (index, LTV, thresholds), the
formulas of ``engine/lending/formulas.py`` with their values, and each close-factor step.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from perpx.engine.commands import Command
from perpx.engine.config import VenueConfig
from perpx.engine.events import Event, LoanLiquidated, LoanMarginCalled, Outcome
from perpx.engine.values import format_units
from perpx.journal.store import read_config, recover

E8 = Decimal("0.00000001")


def _pct(e8: int) -> str:
    return f"{format_units(e8 * 100, E8)}%"


def _when(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def explain_event(config: VenueConfig, seq: int, event: LoanMarginCalled | LoanLiquidated) -> list[str]:
    """The lines that explain one event (journal record ``seq``)."""
    loan_atom = config.assets[event.loan_asset].atom
    coll_atom = config.assets[event.collateral_asset].atom
    price_atom = config.settlement.atom
    coin, coll = event.loan_asset, event.collateral_asset
    price = format_units(event.index_atoms, price_atom)
    if isinstance(event, LoanMarginCalled):
        return [
            f"record {seq}  {_when(event.ts_ns)}  MARGIN CALL of loan {event.loan_id} ({coin} against {coll})",
            f"  {coll} index {price}; LTV = debt / (collateral x index) = {_pct(event.ltv_e8)}",
            f"  at or above the margin-call LTV {_pct(event.margin_call_ltv_e8)};"
            f" liquidation starts at {_pct(event.liquidation_ltv_e8)}: add collateral or repay",
        ]
    lines = [
        f"record {seq}  {_when(event.ts_ns)}  LIQUIDATION of loan {event.loan_id} ({coin} against {coll})",
        f"  {coll} index {price}; LTV {_pct(event.ltv_before_e8)} >= liquidation LTV {_pct(event.liquidation_ltv_e8)}",
        f"  each step repays ceil(debt x close factor {_pct(event.close_factor_e8)}) and sells collateral worth"
        f" repaid x (1 + penalty {_pct(event.penalty_e8)}) at the index, rounded up, to the lender"
        f" (account {event.lender_id}), until the LTV is under the margin-call level",
    ]
    for number, step in enumerate(event.steps, 1):
        after = "no collateral left" if step.ltv_after_e8 < 0 else f"LTV after {_pct(step.ltv_after_e8)}"
        lines.append(
            f"  step {number}: repaid {format_units(step.debt_repaid_atoms, loan_atom)} {coin},"
            f" sold {format_units(step.collateral_seized_atoms, coll_atom)} {coll}; {after}"
        )
    lines.append(
        f"  total: repaid {format_units(event.debt_repaid_atoms, loan_atom)} {coin}, sold"
        f" {format_units(event.collateral_seized_atoms, coll_atom)} {coll}; left: debt"
        f" {format_units(event.debt_atoms, loan_atom)} {coin}, collateral {format_units(event.collateral_atoms, coll_atom)} {coll}"
    )
    if event.bad_debt_atoms:
        lines.append(
            f"  the collateral could not cover the debt: {format_units(event.bad_debt_atoms, loan_atom)} {coin}"
            " written off as the lender's bad debt"
        )
    if event.closed:
        lines.append(
            f"  the loan is closed; {format_units(event.collateral_returned_atoms, coll_atom)} {coll} returned to the borrower"
        )
    return lines


def explain_account(data: Path, account_id: int) -> list[str]:
    """Every explanation of ``account_id``'s loans in ``data``'s journal, in order (empty: none).

    Raises
    ------
    perpx.journal.store.RecoveryError
        As ``perpx replay`` does, for a directory it cannot read.
    """
    config = read_config(data)
    lines: list[str] = []

    def observe(seq: int, _command: Command, events: Outcome) -> None:
        for event in events:
            if _is_loan_event(event) and int(getattr(event, "account_id", -1)) == account_id:
                assert isinstance(event, LoanMarginCalled | LoanLiquidated)
                lines.extend(explain_event(config, seq, event))

    recover(data, config, use_snapshots=False, observe=observe)
    return lines


def _is_loan_event(event: Event) -> bool:
    return isinstance(event, LoanMarginCalled | LoanLiquidated)
