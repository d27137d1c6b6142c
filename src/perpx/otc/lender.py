"""The desk as the venue's lender: what its loan book and non-settlement assets are worth, command by command.

When the desk account is also ``[lending] lender_account``, its equity holds two more things than a
trading account's: the **receivables** (each open loan's debt, principal and unpaid interest, a
claim on the borrower) and the **assets** it holds besides the settlement asset (the collateral a
liquidation sold it). Both are valued at their asset's index (``Lending.index_atoms``), in settlement
atoms, rounded down (``perpx.engine.lending.formulas.value_atoms``). An index that is stale keeps
the last value seen (:class:`Prices`), so a source ageing out is not a P&L event.

:func:`lending_lines` splits one command's change of these into the report's lending lines, per
loan (the client is the borrower):

=====================  =============================================================================
line                   computed as
=====================  =============================================================================
interest income        a loan's debt change not explained by the command's events: ``debt_after -
                       debt_before - borrowed + repaid + liquidated + written off``, valued at the
                       loan asset's index (interest accrues per minute into the debt)
bad debt               minus the debt a liquidation wrote off (``LoanLiquidated.bad_debt_atoms``)
liquidation penalties  a liquidation's collateral sold to the desk, valued at the index, less the
                       debt it repaid (``seized x index - repaid``: the penalty, and rounding)
revaluation            the receivables and assets held into the command, revalued at the index the
                       command left (the report's inventory P&L, with the asset as its symbol)
=====================  =============================================================================

A borrow or a repayment moves money between the wallet and the receivables: no P&L.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from perpx.engine.engine import Engine
from perpx.engine.events import Event, LoanBorrowed, LoanLiquidated, LoanRepaid
from perpx.engine.lending import formulas
from perpx.engine.values import RATE_SCALE, AccountId, AssetId


@dataclass(frozen=True, slots=True)
class Receivable:
    """One open loan the desk lent: its borrower, loan asset and debt in the loan asset's atoms."""

    borrower: int
    loan_asset: AssetId
    collateral_asset: AssetId
    debt_atoms: int
    collateral_atoms: int


@dataclass
class Prices:
    """Each asset's index in settlement atoms per whole unit; a stale index keeps its last value."""

    last: dict[AssetId, int] = field(default_factory=dict)

    def read(self, engine: Engine, assets: Iterable[AssetId]) -> dict[AssetId, int]:
        """The prices of ``assets`` now (0 for an asset never priced)."""
        out: dict[AssetId, int] = {}
        for asset in assets:
            price = engine.lending.index_atoms(asset)
            if price is not None:
                self.last[asset] = price
            out[asset] = self.last.get(asset, 0)
        return out


def is_lender(engine: Engine, desk: AccountId) -> bool:
    """True when the venue lends and the desk's account is its lender."""
    spec = engine.config.lending
    return spec is not None and spec.lender_account == int(desk)


def receivables(engine: Engine, desk: AccountId) -> dict[int, Receivable]:
    """The desk's open loans by loan id (empty unless the desk is the lender)."""
    if not is_lender(engine, desk):
        return {}
    return {
        loan_id: Receivable(
            int(loan.account_id),
            loan.loan_asset,
            loan.collateral_asset,
            loan.debt_atoms,
            loan.collateral_atoms,
        )
        for loan_id, loan in engine.lending.loans.items()
    }


def holdings(engine: Engine, desk: AccountId) -> dict[AssetId, int]:
    """The desk's balances of assets other than the settlement asset (atoms, non-zero only)."""
    account = engine.accounts.get(desk)
    if account is None:
        return {}
    return {a: v for a, v in sorted(account.balances.items()) if a != engine.asset and v}


def value(engine: Engine, asset: AssetId, atoms: int, prices: dict[AssetId, int]) -> int:
    """``atoms`` of ``asset`` in settlement atoms at ``prices`` (the settlement asset is itself)."""
    if asset == engine.asset:
        return atoms
    return formulas.value_atoms(atoms, prices.get(asset, 0), engine.config.assets[asset].decimals)


def assets_of(loans: dict[int, Receivable], held: dict[AssetId, int]) -> list[AssetId]:
    """Every asset ``loans`` and ``held`` need a price for, sorted."""
    names = set(held)
    for loan in loans.values():
        names.add(loan.loan_asset)
        names.add(loan.collateral_asset)
    return sorted(names)


def book_value_atoms(
    engine: Engine, loans: dict[int, Receivable], held: dict[AssetId, int], prices: dict[AssetId, int]
) -> int:
    """The receivables plus the held assets, in settlement atoms."""
    total = sum(value(engine, loan.loan_asset, loan.debt_atoms, prices) for loan in loans.values())
    return total + sum(value(engine, asset, atoms, prices) for asset, atoms in held.items())


@dataclass(frozen=True, slots=True)
class LendingLine:
    """One line of one command: ``line`` for ``client`` (a borrower, or empty) and ``symbol``."""

    symbol: str
    client: str
    line: str
    atoms: int


@dataclass
class LenderState:
    """The desk's receivables, held assets and their prices before a command."""

    loans: dict[int, Receivable]
    held: dict[AssetId, int]
    prices: dict[AssetId, int]


def lending_lines(
    engine: Engine, desk: AccountId, before: LenderState, after: LenderState, events: Iterable[Event]
) -> tuple[list[LendingLine], bool]:
    """The command's lending lines (module docstring), and whether a liquidation of the desk's loans happened.

    Liquidation penalties here are the explicit ``seized x index - repaid``; the report adds the
    command's rounding remainder to the last one.
    """
    lines: list[LendingLine] = []
    moved: dict[int, int] = {}
    liquidated = False
    for event in events:
        if isinstance(event, LoanBorrowed) and event.lender_id == desk:
            moved[event.loan_id] = moved.get(event.loan_id, 0) + event.loan_atoms
        elif isinstance(event, LoanRepaid) and event.loan_id in before.loans:
            moved[event.loan_id] = moved.get(event.loan_id, 0) - event.repaid_atoms
        elif isinstance(event, LoanLiquidated) and event.lender_id == desk:
            liquidated = True
            moved[event.loan_id] = (
                moved.get(event.loan_id, 0) - event.debt_repaid_atoms - event.bad_debt_atoms
            )
            client = str(int(event.account_id))
            symbol = str(event.loan_asset)
            seized = value(engine, event.collateral_asset, event.collateral_seized_atoms, after.prices)
            repaid = value(engine, event.loan_asset, event.debt_repaid_atoms, after.prices)
            lines.append(LendingLine(symbol, client, "liquidation_penalties", seized - repaid))
            bad = value(engine, event.loan_asset, event.bad_debt_atoms, after.prices)
            lines.append(LendingLine(symbol, client, "bad_debt", -bad))
    for loan_id in sorted(set(before.loans) | set(after.loans)):
        then = before.loans.get(loan_id)
        now = after.loans.get(loan_id)
        loan = now or then
        assert loan is not None
        interest = (now.debt_atoms if now else 0) - (then.debt_atoms if then else 0) - moved.get(loan_id, 0)
        if interest:
            amount = value(engine, loan.loan_asset, interest, after.prices)
            lines.append(LendingLine(str(loan.loan_asset), str(loan.borrower), "interest_income", amount))
    for loan in before.loans.values():
        change = value(engine, loan.loan_asset, loan.debt_atoms, after.prices) - value(
            engine, loan.loan_asset, loan.debt_atoms, before.prices
        )
        if change:
            lines.append(LendingLine(str(loan.loan_asset), "", "inventory_pnl", change))
    for asset, atoms in before.held.items():
        change = value(engine, asset, atoms, after.prices) - value(engine, asset, atoms, before.prices)
        if change:
            lines.append(LendingLine(str(asset), "", "inventory_pnl", change))
    return lines, liquidated


def state(engine: Engine, desk: AccountId, prices: Prices, also: LenderState | None = None) -> LenderState:
    """The desk's receivables, held assets and their prices now (also those of ``also``'s assets)."""
    loans = receivables(engine, desk)
    held = holdings(engine, desk)
    names = assets_of(loans, held)
    if also is not None:
        names = sorted({*names, *assets_of(also.loans, also.held)})
    return LenderState(loans, held, prices.read(engine, names))


@dataclass(frozen=True, slots=True)
class BookFigures:
    """The loan book's KPIs now, in settlement units (the admin listener's ``perpx_otc_loan_*`` gauges).

    ``interest_income`` is the interest the lender earned so far: repaid (``Lending.interest_income_atoms``)
    plus accrued and still owed; interest written off with bad debt is not income.
    """

    open_loans: int
    book_size: Decimal
    utilisation: Decimal
    average_ltv: Decimal | None
    interest_income: Decimal
    bad_debt: Decimal


def book_figures(engine: Engine, desk: AccountId) -> BookFigures | None:
    """The KPIs of the desk's loan book now, or ``None`` when the desk is not the lender."""
    if not is_lender(engine, desk):
        return None
    atom = engine.config.settlement.atom
    loans = receivables(engine, desk)
    prices = Prices().read(engine, assets_of(loans, {}))
    debt = sum(value(engine, r.loan_asset, r.debt_atoms, prices) for r in loans.values())
    collateral = sum(value(engine, r.collateral_asset, r.collateral_atoms, prices) for r in loans.values())
    owed = sum(
        loan.interest_atoms for loan in engine.lending.loans.values() if loan.loan_asset == engine.asset
    )
    settle_debt = sum(r.debt_atoms for r in loans.values() if r.loan_asset == engine.asset)
    available = engine.lending.lender_available_atoms(engine.asset)
    return BookFigures(
        open_loans=len(loans),
        book_size=debt * atom,
        utilisation=Decimal(formulas.utilisation_e8(settle_debt, available)) / RATE_SCALE,
        average_ltv=Decimal(debt) / collateral if collateral else None,
        interest_income=(engine.lending.interest_income_atoms.get(engine.asset, 0) + owed) * atom,
        bad_debt=engine.lending.bad_debt_atoms.get(engine.asset, 0) * atom,
    )
