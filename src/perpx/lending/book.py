"""The loan book of a venue's data directory, as the lending report shows it.

:func:`read_book` replays the journal read-only (``journal.store.recover``, the ``perpx replay``
path) and keeps, besides the engine's end state (open loans, interest income, bad debt), what
happened on the way: borrows, repayments, margin calls and liquidations with their penalties.
Amounts are integer atoms; the report formats them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from perpx.engine.commands import Command
from perpx.engine.engine import Engine
from perpx.engine.events import Event, LoanBorrowed, LoanLiquidated, LoanMarginCalled, LoanRepaid, Outcome
from perpx.engine.lending import formulas
from perpx.engine.values import RATE_SCALE, format_units
from perpx.journal.store import read_config, recover

LTV_BUCKETS_E8 = (50_000_000, 78_000_000, 85_000_000, 91_000_000)
"""Upper bounds of the LTV distribution's buckets (the last bucket is at or above 91%)."""


@dataclass
class Liquidation:
    """One loan liquidation as the report lists it."""

    ts_ns: int
    loan_id: int
    account_id: int
    collateral_asset: str
    loan_asset: str
    index_atoms: int
    ltv_before_e8: int
    steps: int
    debt_repaid_atoms: int
    collateral_seized_atoms: int
    penalty_value_atoms: int
    """Settlement-asset value at the index of the penalty part of the collateral seized:
    ``seized x penalty / (1 + penalty)``, rounded down."""
    bad_debt_atoms: int


@dataclass
class LoanBook:
    """Everything the lending report shows, in atoms."""

    venue: str
    settlement: str
    now_ns: int
    decimals: dict[str, int]
    open_loans: int = 0
    outstanding: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per loan asset: ``principal``, ``interest`` (unpaid), ``debt``, ``loans``."""
    collateral: dict[str, int] = field(default_factory=dict)
    ltv_buckets: dict[str, int] = field(default_factory=dict)
    interest_income: dict[str, int] = field(default_factory=dict)
    bad_debt: dict[str, int] = field(default_factory=dict)
    borrowed: dict[str, int] = field(default_factory=dict)
    repaid: dict[str, int] = field(default_factory=dict)
    margin_calls: int = 0
    liquidations: list[Liquidation] = field(default_factory=list)
    stale_assets: list[str] = field(default_factory=list)

    def observe(self, events: Iterable[Event]) -> None:
        """Fold one command's events into the history figures."""
        for event in events:
            if isinstance(event, LoanBorrowed):
                key = str(event.loan_asset)
                self.borrowed[key] = self.borrowed.get(key, 0) + event.loan_atoms
            elif isinstance(event, LoanRepaid):
                key = str(event.loan_asset)
                self.repaid[key] = self.repaid.get(key, 0) + event.repaid_atoms
            elif isinstance(event, LoanMarginCalled):
                self.margin_calls += 1
            elif isinstance(event, LoanLiquidated):
                self.liquidations.append(_liquidation(self.decimals[str(event.collateral_asset)], event))

    def close(self, engine: Engine) -> None:
        """Take the end state: open loans, their LTVs, income and bad debt."""
        lending = engine.lending
        self.now_ns = engine.now_ns
        buckets = {label: 0 for label in _bucket_labels()}
        for loan in lending.loans.values():
            self.open_loans += 1
            row = self.outstanding.setdefault(
                str(loan.loan_asset), {"principal": 0, "interest": 0, "debt": 0, "loans": 0}
            )
            row["principal"] += loan.principal_atoms
            row["interest"] += loan.interest_atoms
            row["debt"] += loan.debt_atoms
            row["loans"] += 1
            self.collateral[str(loan.collateral_asset)] = (
                self.collateral.get(str(loan.collateral_asset), 0) + loan.collateral_atoms
            )
            buckets[_bucket(lending.ltv_e8(loan))] += 1
        self.ltv_buckets = buckets
        self.interest_income = {str(k): v for k, v in sorted(lending.interest_income_atoms.items())}
        self.bad_debt = {str(k): v for k, v in sorted(lending.bad_debt_atoms.items())}
        self.stale_assets = [str(a) for a in lending.stale_assets()]

    def amount(self, asset: str, atoms: int) -> str:
        return format_units(atoms, _atom(self.decimals[asset]))

    def to_json(self) -> dict[str, Any]:
        """The book as JSON-ready data: amounts as decimal strings of their asset, LTVs as shares."""
        money = self.amount
        settle = self.settlement
        return {
            "venue": self.venue,
            "venueTimeNs": self.now_ns,
            "openLoans": self.open_loans,
            "outstanding": {
                asset: {k: (v if k == "loans" else money(asset, v)) for k, v in row.items()}
                for asset, row in sorted(self.outstanding.items())
            },
            "collateral": {asset: money(asset, v) for asset, v in sorted(self.collateral.items())},
            "ltvDistribution": self.ltv_buckets,
            "borrowed": {asset: money(asset, v) for asset, v in sorted(self.borrowed.items())},
            "repaid": {asset: money(asset, v) for asset, v in sorted(self.repaid.items())},
            "interestIncome": {asset: money(asset, v) for asset, v in self.interest_income.items()},
            "marginCalls": self.margin_calls,
            "liquidations": {
                "count": len(self.liquidations),
                "penaltyValue": money(settle, sum(x.penalty_value_atoms for x in self.liquidations)),
                "rows": [
                    {
                        "timeNs": x.ts_ns,
                        "loanId": x.loan_id,
                        "accountId": x.account_id,
                        "indexPrice": money(settle, x.index_atoms),
                        "ltvBefore": format_units(x.ltv_before_e8, _atom(8)),
                        "steps": x.steps,
                        "debtRepaid": money(x.loan_asset, x.debt_repaid_atoms),
                        "collateralSeized": money(x.collateral_asset, x.collateral_seized_atoms),
                        "penaltyValue": money(settle, x.penalty_value_atoms),
                        "badDebt": money(x.loan_asset, x.bad_debt_atoms),
                    }
                    for x in self.liquidations
                ],
            },
            "badDebt": {asset: money(asset, v) for asset, v in self.bad_debt.items()},
            "staleCollateralIndexes": self.stale_assets,
        }


def _atom(decimals: int) -> Decimal:
    return Decimal(1).scaleb(-decimals)


def _bucket_labels() -> list[str]:
    labels = []
    low = 0
    for high in LTV_BUCKETS_E8:
        labels.append(f"{low * 100 // RATE_SCALE}-{high * 100 // RATE_SCALE}%")
        low = high
    labels.append(f">={low * 100 // RATE_SCALE}%")
    labels.append("stale index")
    return labels


def _bucket(ltv_e8: int | None) -> str:
    labels = _bucket_labels()
    if ltv_e8 is None:
        return labels[-1]
    for index, high in enumerate(LTV_BUCKETS_E8):
        if ltv_e8 < high:
            return labels[index]
    return labels[len(LTV_BUCKETS_E8)]


def _liquidation(collateral_decimals: int, event: LoanLiquidated) -> Liquidation:
    seized_value = formulas.value_atoms(event.collateral_seized_atoms, event.index_atoms, collateral_decimals)
    return Liquidation(
        ts_ns=event.ts_ns,
        loan_id=event.loan_id,
        account_id=int(event.account_id),
        collateral_asset=str(event.collateral_asset),
        loan_asset=str(event.loan_asset),
        index_atoms=event.index_atoms,
        ltv_before_e8=event.ltv_before_e8,
        steps=len(event.steps),
        debt_repaid_atoms=event.debt_repaid_atoms,
        collateral_seized_atoms=event.collateral_seized_atoms,
        penalty_value_atoms=seized_value * event.penalty_e8 // (RATE_SCALE + event.penalty_e8),
        bad_debt_atoms=event.bad_debt_atoms,
    )


def read_book(data: Path) -> LoanBook:
    """The loan book of data directory ``data``, by a read-only replay of its journal from the start.

    Raises
    ------
    perpx.journal.store.RecoveryError
        As ``perpx replay`` does, for a directory it cannot read.
    """
    config = read_config(data)
    book = LoanBook(
        venue=config.name,
        settlement=str(config.settlement_asset),
        now_ns=0,
        decimals={str(asset): spec.decimals for asset, spec in config.assets.items()},
    )

    def observe(_seq: int, _command: Command, events: Outcome) -> None:
        book.observe(events)

    engine, _report = recover(data, config, use_snapshots=False, observe=observe)
    book.close(engine)
    return book
