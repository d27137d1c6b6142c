"""The lending stage: asset indexes, secured loans, per-minute interest, margin calls, liquidation.

Commands
--------
``SubmitAssetQuote`` feeds an asset's index (the market index code, ``pricing/index.py``, with
the asset's ``[assets.X.index]`` policy, staleness and quorum); ``BorrowLoan``, ``RepayLoan`` and
``AdjustLoanCollateral`` are the borrower's. A refusal is a ``CommandRejected`` with a code and
the state unchanged.

Money
-----
A loan moves the loan asset from the lender's account (``[lending] lender_account``) to the
borrower's, and the collateral from the borrower's account into the loan; repayments go to the
lender; liquidation moves collateral from the loan to the lender. No money is created: the
conservation invariant counts loan collateral with the accounts' balances. The lender never
lends what it does not have (its withdrawable balance, for the settlement asset).

Time
----
Interest accrues at each whole minute of venue time (epoch-aligned), before the command that
crosses it: each loan's debt grows by ``formulas.minute_interest_atoms`` at the annual rate of
its asset's curve at the utilisation of that minute (rounded up, compounding). A loan opened
inside a minute pays that minute at its end. Replaying the same commands gives the same interest
to the atom.

Margin calls and liquidation
----------------------------
After interest, a quote, or a loan command, every loan is checked at the current indexes (never
on a stale one: no index below quorum, no check). At the margin-call LTV the borrower gets one
``LoanMarginCalled`` per crossing; at the liquidation LTV the loan is liquidated in close-factor
steps (``formulas.close_amount_atoms``), each selling collateral worth the repaid debt plus the
penalty to the lender at the index, until the LTV is under the margin-call level (at or above an
LTV of ``1 / (1 + penalty)`` a step repays the whole debt: a partial one would raise the LTV); what the
collateral cannot cover is the lender's bad debt (``bad_debt_atoms``), reported in the event.
An index that moves only because a source aged out is seen at the next minute boundary.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from perpx.engine.codes import RejectCode
from perpx.engine.collateral import asset_index_atoms
from perpx.engine.commands import (
    AdjustLoanCollateral,
    BorrowLoan,
    Command,
    LtvDirection,
    RepayLoan,
    SubmitAssetQuote,
)
from perpx.engine.events import (
    AssetIndexUpdated,
    LoanBorrowed,
    LoanCollateralAdjusted,
    LoanInterestAccrued,
    LoanLiquidated,
    LoanLiquidationStep,
    LoanMarginCalled,
    LoanRepaid,
)
from perpx.engine.lending import formulas
from perpx.engine.lending.config import CollateralSpec, LendingSpec
from perpx.engine.lending.loans import Loan
from perpx.engine.pricing.index import SourceQuote
from perpx.engine.values import RATE_SCALE, AccountId, AssetId, format_units

if TYPE_CHECKING:
    from perpx.engine.core import Core

LoanKey = tuple[AccountId, AssetId, AssetId]


class Lending:
    """Asset indexes and the loan book; inert (no loans, no quotes) on a venue without ``[lending]``."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.spec: LendingSpec | None = core.config.lending
        self.quotes: dict[AssetId, dict[str, SourceQuote]] = core.asset_quotes
        """The core's asset quotes (Multi-Assets Mode values collateral on the same index)."""
        self.loans: dict[int, Loan] = {}
        """Open loans by id; ids rise, so iteration is in opening order in every process."""
        self.by_key: dict[LoanKey, int] = {}
        self.next_loan_id = 1
        self.accrued_to_ns = 0
        """The last whole minute whose interest is in the debts (derived from the clock: not state)."""
        self.bad_debt_atoms: dict[AssetId, int] = {}
        self.interest_income_atoms: dict[AssetId, int] = {}
        """Interest the lender has received (repaid, or recovered by a liquidation), by loan asset."""
        self.dirty = False

    def handlers(self) -> dict[type, Callable[[Any], None]]:
        """The engine commands this stage handles."""
        return {
            SubmitAssetQuote: self._submit_quote,
            BorrowLoan: self._borrow,
            RepayLoan: self._repay,
            AdjustLoanCollateral: self._adjust,
        }

    # ------------------------------------------------------------------ queries

    def index_atoms(self, asset: AssetId) -> int | None:
        """The asset's price (settlement atoms per whole unit) now, or ``None`` if stale or unpriced."""
        return asset_index_atoms(self.core, asset)

    def stale_assets(self) -> list[AssetId]:
        """Assets with an index that is below quorum now: no new loans, no liquidation (alert on this)."""
        return [
            asset
            for asset, spec in sorted(self.core.config.assets.items())
            if spec.index is not None and self.index_atoms(asset) is None
        ]

    def loan_of(self, account_id: AccountId, loan_asset: AssetId, collateral_asset: AssetId) -> Loan | None:
        loan_id = self.by_key.get((account_id, loan_asset, collateral_asset))
        return None if loan_id is None else self.loans[loan_id]

    def ltv_e8(self, loan: Loan) -> int | None:
        """The loan's LTV now (rounded up), or ``None`` while an index it needs is stale."""
        p = self.index_atoms(loan.collateral_asset)
        q = self.index_atoms(loan.loan_asset)
        if p is None or q is None:
            return None
        return formulas.ltv_e8(
            loan.debt_atoms,
            q,
            self._decimals(loan.loan_asset),
            loan.collateral_atoms,
            p,
            self._decimals(loan.collateral_asset),
        )

    def lender_available_atoms(self, asset: AssetId) -> int:
        """What the lender can lend of ``asset`` now: its withdrawable balance for the settlement asset."""
        if self.spec is None:
            return 0
        lender = AccountId(self.spec.lender_account)
        account = self.core.accounts.get(lender)
        if account is None:
            return 0
        if asset == self.core.asset:
            return max(self.core.risk(lender).withdrawable_atoms, 0)
        return max(account.balance(asset), 0)

    def collateral_held(self) -> dict[AssetId, int]:
        """Collateral held by open loans, per asset (the conservation invariant counts it)."""
        held: dict[AssetId, int] = {}
        for loan in self.loans.values():
            held[loan.collateral_asset] = held.get(loan.collateral_asset, 0) + loan.collateral_atoms
        return held

    def _moved(self, account_id: AccountId, *assets: AssetId) -> None:
        """Balances of ``assets`` moved: Multi-Assets Mode revalues the account's collateral."""
        for asset in assets:
            self.core.multi_assets.asset_moved(account_id, asset)

    def _removal_refusal(
        self, account_id: AccountId, asset: AssetId, amount_atoms: int
    ) -> tuple[RejectCode, str] | None:
        """Multi-Assets Mode: posting collateral into a loan must keep the account's margin (as a withdrawal)."""
        return self.core.multi_assets.removal_refusal(self.core.accounts[account_id], asset, amount_atoms)

    def _decimals(self, asset: AssetId) -> int:
        return self.core.config.assets[asset].decimals

    def _amount(self, asset: AssetId, atoms: int) -> str:
        spec = self.core.config.assets[asset]
        return f"{format_units(atoms, spec.atom)} {asset}"

    def _free_atoms(self, account_id: AccountId, asset: AssetId) -> int:
        if asset == self.core.asset:
            return self.core.risk(account_id).withdrawable_atoms
        return self.core.accounts[account_id].balance(asset)

    # ------------------------------------------------------------------ time

    def catch_up(self, now_ns: int) -> None:
        """Accrue every whole minute of interest up to ``now_ns`` (before the command at ``now_ns``)."""
        minute = formulas.NS_PER_MINUTE
        boundary = now_ns // minute * minute
        if not self.loans or self.spec is None:
            self.accrued_to_ns = boundary
            return
        minutes = (boundary - self.accrued_to_ns) // minute
        if minutes <= 0:
            return
        self.accrued_to_ns = boundary
        self.dirty = True
        for asset, terms in self.spec.loanable.items():
            loans = [loan for loan in self.loans.values() if loan.loan_asset == asset]
            if not loans:
                continue
            available = self.lender_available_atoms(asset)
            borrowed = sum(loan.debt_atoms for loan in loans)
            total = 0
            rate = 0
            for _ in range(minutes):
                rate = formulas.annual_rate_e8(terms, formulas.utilisation_e8(borrowed, available))
                for loan in loans:
                    interest = formulas.minute_interest_atoms(loan.debt_atoms, rate)
                    loan.interest_atoms += interest
                    total += interest
                    borrowed += interest
            self.core.emit(
                LoanInterestAccrued(
                    ts_ns=boundary,
                    loan_asset=asset,
                    minutes=minutes,
                    interest_atoms=total,
                    annual_rate_e8=rate,
                )
            )

    def check(self) -> None:
        """Margin calls and liquidations due at the current indexes (only after something changed)."""
        if not self.dirty:
            return
        self.dirty = False
        spec = self.spec
        if spec is None:
            return
        prices: dict[AssetId, int | None] = {}
        for loan in list(self.loans.values()):
            for asset in (loan.loan_asset, loan.collateral_asset):
                if asset not in prices:
                    prices[asset] = self.index_atoms(asset)
            p = prices[loan.collateral_asset]
            q = prices[loan.loan_asset]
            if p is None or q is None:
                continue  # never on a stale price
            terms = spec.collateral[loan.collateral_asset]
            if self._reaches(loan, q, p, terms.liquidation_ltv_e8):
                self._liquidate(loan, terms, q, p)
            elif self._reaches(loan, q, p, terms.margin_call_ltv_e8):
                if not loan.margin_called:
                    loan.margin_called = True
                    self.core.emit(
                        LoanMarginCalled(
                            ts_ns=self.core.now_ns,
                            loan_id=loan.loan_id,
                            account_id=loan.account_id,
                            loan_asset=loan.loan_asset,
                            collateral_asset=loan.collateral_asset,
                            ltv_e8=self._ltv(loan, q, p),
                            margin_call_ltv_e8=terms.margin_call_ltv_e8,
                            liquidation_ltv_e8=terms.liquidation_ltv_e8,
                            index_atoms=p,
                        )
                    )
            else:
                loan.margin_called = False

    def _reaches(self, loan: Loan, q: int, p: int, ltv_e8: int) -> bool:
        return formulas.ltv_reaches(
            loan.debt_atoms,
            q,
            self._decimals(loan.loan_asset),
            loan.collateral_atoms,
            p,
            self._decimals(loan.collateral_asset),
            ltv_e8,
        )

    def _ltv(self, loan: Loan, q: int, p: int) -> int:
        return formulas.ltv_e8(
            loan.debt_atoms,
            q,
            self._decimals(loan.loan_asset),
            loan.collateral_atoms,
            p,
            self._decimals(loan.collateral_asset),
        )

    def _liquidate(self, loan: Loan, terms: CollateralSpec, q: int, p: int) -> None:
        core = self.core
        assert self.spec is not None
        lender_id = AccountId(self.spec.lender_account)
        ld, cd = self._decimals(loan.loan_asset), self._decimals(loan.collateral_asset)
        ltv_before = self._ltv(loan, q, p)
        steps: list[LoanLiquidationStep] = []
        repaid_total = seized_total = 0
        while (
            loan.debt_atoms > 0
            and loan.collateral_atoms > 0
            and self._reaches(loan, q, p, terms.margin_call_ltv_e8)
        ):
            close_factor = terms.close_factor_e8
            if formulas.penalty_outweighs_repayment(
                loan.debt_atoms, q, ld, loan.collateral_atoms, p, cd, terms.liquidation_penalty_e8
            ):
                close_factor = RATE_SCALE  # a partial step would raise the LTV: close it all at once
            repay = formulas.close_amount_atoms(loan.debt_atoms, close_factor)
            seized = formulas.seized_collateral_atoms(repay, q, ld, p, cd, terms.liquidation_penalty_e8)
            if seized > loan.collateral_atoms:  # the rest of the collateral cannot cover this step
                seized = loan.collateral_atoms
                covered = formulas.debt_covered_atoms(seized, p, cd, q, ld, terms.liquidation_penalty_e8)
                repay = min(covered, loan.debt_atoms)
            interest, _ = loan.pay_down(repay)
            loan.collateral_atoms -= seized
            self.interest_income_atoms[loan.loan_asset] = (
                self.interest_income_atoms.get(loan.loan_asset, 0) + interest
            )
            repaid_total += repay
            seized_total += seized
            steps.append(
                LoanLiquidationStep(
                    debt_repaid_atoms=repay,
                    collateral_seized_atoms=seized,
                    ltv_after_e8=self._ltv(loan, q, p),
                )
            )
        core.accounts[lender_id].credit_transfer(loan.collateral_asset, seized_total)
        core.multi_assets.asset_moved(lender_id, loan.collateral_asset)
        bad_debt = 0
        returned = 0
        if loan.collateral_atoms == 0 and loan.debt_atoms > 0:
            bad_debt = loan.debt_atoms
            loan.pay_down(bad_debt)
            self.bad_debt_atoms[loan.loan_asset] = self.bad_debt_atoms.get(loan.loan_asset, 0) + bad_debt
        closed = loan.debt_atoms == 0
        if closed:
            returned = loan.collateral_atoms
            core.accounts[loan.account_id].credit_transfer(loan.collateral_asset, returned)
            core.multi_assets.asset_moved(loan.account_id, loan.collateral_asset)
            loan.collateral_atoms = 0
            self._close(loan)
        else:
            loan.margin_called = False
        core.margin_changed(lender_id)
        core.margin_changed(loan.account_id)
        core.emit(
            LoanLiquidated(
                ts_ns=core.now_ns,
                loan_id=loan.loan_id,
                account_id=loan.account_id,
                lender_id=lender_id,
                loan_asset=loan.loan_asset,
                collateral_asset=loan.collateral_asset,
                index_atoms=p,
                ltv_before_e8=ltv_before,
                liquidation_ltv_e8=terms.liquidation_ltv_e8,
                close_factor_e8=terms.close_factor_e8,
                penalty_e8=terms.liquidation_penalty_e8,
                steps=tuple(steps),
                debt_repaid_atoms=repaid_total,
                collateral_seized_atoms=seized_total,
                bad_debt_atoms=bad_debt,
                collateral_returned_atoms=returned,
                debt_atoms=loan.debt_atoms,
                collateral_atoms=loan.collateral_atoms,
                closed=closed,
            )
        )

    def _close(self, loan: Loan) -> None:
        del self.loans[loan.loan_id]
        del self.by_key[(loan.account_id, loan.loan_asset, loan.collateral_asset)]

    # ------------------------------------------------------------------ commands

    def _reject(self, cmd: Command, account_id: AccountId | None, code: RejectCode, message: str) -> None:
        self.core.reject_command(cmd, account_id, code, message)

    def _submit_quote(self, cmd: SubmitAssetQuote) -> None:
        spec = self.core.config.assets.get(cmd.asset)
        if spec is None:
            self._reject(
                cmd, None, RejectCode.UNKNOWN_ASSET, f"asset {cmd.asset} is not listed on this venue"
            )
            return
        if spec.index is None:
            self._reject(
                cmd,
                None,
                RejectCode.UNKNOWN_SOURCE,
                f"asset {cmd.asset} has no [assets.{cmd.asset}.index] table",
            )
            return
        if cmd.source not in spec.index.weights:
            self._reject(
                cmd,
                None,
                RejectCode.UNKNOWN_SOURCE,
                f"{cmd.source!r} is not an index source of {cmd.asset}; its sources are"
                f" {', '.join(spec.index.weights)}",
            )
            return
        if cmd.price_atoms <= 0:
            self._reject(
                cmd, None, RejectCode.PRICE_NOT_POSITIVE, "a spot quote's price must be greater than zero"
            )
            return
        quotes = self.quotes.setdefault(cmd.asset, {})
        previous = quotes.get(cmd.source)
        if previous is not None and previous.ts_ns > cmd.ts_ns:
            self._reject(
                cmd,
                None,
                RejectCode.QUOTE_OUT_OF_ORDER,
                f"{cmd.source} already quoted {cmd.asset} at a later time ({previous.ts_ns} ns);"
                " send a source's quotes in time order",
            )
            return
        quotes[cmd.source] = SourceQuote(cmd.price_atoms, cmd.ts_ns)
        self.dirty = True
        self.core.multi_assets.index_moved(cmd.asset)
        index = self.index_atoms(cmd.asset)
        fresh = sum(1 for q in quotes.values() if self.core.now_ns - q.ts_ns <= spec.index.stale_after_ns)
        self.core.emit(
            AssetIndexUpdated(ts_ns=self.core.now_ns, asset=cmd.asset, index_atoms=index, sources_used=fresh)
        )

    def _pair_refusal(
        self, account_id: AccountId, loan_asset: AssetId, collateral_asset: AssetId
    ) -> tuple[RejectCode, str] | None:
        spec = self.spec
        if spec is None:
            return (
                RejectCode.LENDING_NOT_CONFIGURED,
                "this venue has no [lending] table, so it makes no loans",
            )
        if account_id not in self.core.accounts:
            return RejectCode.UNKNOWN_ACCOUNT, f"account {account_id} does not exist"
        if loan_asset not in spec.loanable:
            return (
                RejectCode.NOT_LOANABLE,
                f"{loan_asset} cannot be borrowed here; loanable: {', '.join(spec.loanable)}",
            )
        if collateral_asset not in spec.collateral:
            return (
                RejectCode.NOT_COLLATERAL,
                f"{collateral_asset} is not accepted as collateral; collateral: {', '.join(spec.collateral)}",
            )
        return None

    def _stale_refusal(self, *assets: AssetId) -> tuple[RejectCode, str] | None:
        for asset in assets:
            if self.index_atoms(asset) is None:
                return (
                    RejectCode.COLLATERAL_INDEX_STALE,
                    f"the {asset} index is stale or below its quorum of sources; try again when it is fresh",
                )
        return None

    def _borrow(self, cmd: BorrowLoan) -> None:
        refusal = self._pair_refusal(cmd.account_id, cmd.loan_asset, cmd.collateral_asset)
        if refusal is None and cmd.account_id == AccountId(self.spec.lender_account if self.spec else 0):
            refusal = RejectCode.LENDER_CANNOT_BORROW, "the lender's own account cannot borrow from itself"
        if refusal is None and cmd.loan_atoms is None and cmd.collateral_atoms is None:
            refusal = (
                RejectCode.LOAN_AMOUNT_CHOICE,
                "give loanAmount, collateralAmount, or both (a custom LTV)",
            )
        if refusal is None and (
            (cmd.loan_atoms or 0) < 0
            or (cmd.collateral_atoms or 0) < 0
            or not (cmd.loan_atoms or cmd.collateral_atoms)
        ):
            refusal = RejectCode.AMOUNT_NOT_POSITIVE, "the amount must be greater than zero"
        if refusal is None:
            refusal = self._stale_refusal(cmd.collateral_asset, cmd.loan_asset)
        if refusal is not None:
            self._reject(cmd, cmd.account_id, *refusal)
            return
        assert self.spec is not None
        terms = self.spec.collateral[cmd.collateral_asset]
        p = self.index_atoms(cmd.collateral_asset)
        q = self.index_atoms(cmd.loan_asset)
        assert p is not None and q is not None
        ld, cd = self._decimals(cmd.loan_asset), self._decimals(cmd.collateral_asset)
        if cmd.loan_atoms is not None and cmd.collateral_atoms is not None:
            loan_atoms, collateral = cmd.loan_atoms, cmd.collateral_atoms  # a custom LTV, checked below
        elif cmd.loan_atoms is not None:
            loan_atoms = cmd.loan_atoms
            collateral = formulas.collateral_for_loan_atoms(loan_atoms, q, ld, p, cd, terms.initial_ltv_e8)
        else:
            assert cmd.collateral_atoms is not None
            collateral = cmd.collateral_atoms
            loan_atoms = formulas.loan_for_collateral_atoms(collateral, p, cd, q, ld, terms.initial_ltv_e8)
            if loan_atoms <= 0:
                self._reject(
                    cmd,
                    cmd.account_id,
                    RejectCode.LOAN_TOO_SMALL,
                    "that collateral is worth less than one atom of loan",
                )
                return
        existing = self.loan_of(cmd.account_id, cmd.loan_asset, cmd.collateral_asset)
        debt = loan_atoms + (existing.debt_atoms if existing else 0)
        total_collateral = collateral + (existing.collateral_atoms if existing else 0)
        lender_id = AccountId(self.spec.lender_account)
        cap = self.core.config.assets[cmd.collateral_asset].max_collateral_atoms
        posted = sum(
            loan.collateral_atoms
            for loan in self.loans.values()
            if loan.account_id == cmd.account_id and loan.collateral_asset == cmd.collateral_asset
        )
        if formulas.ltv_exceeds(debt, q, ld, total_collateral, p, cd, terms.initial_ltv_e8):
            self._reject(
                cmd,
                cmd.account_id,
                RejectCode.LOAN_ABOVE_INITIAL_LTV,
                f"the loan's LTV would be {formulas.ltv_e8(debt, q, ld, total_collateral, p, cd) / 10**6:.2f}%,"
                f" above the initial LTV {terms.initial_ltv_e8 / 10**6:.2f}%; post more collateral or borrow less",
            )
            return
        if collateral > self._free_atoms(cmd.account_id, cmd.collateral_asset):
            self._reject(
                cmd,
                cmd.account_id,
                RejectCode.BALANCE_INSUFFICIENT,
                f"the loan needs {self._amount(cmd.collateral_asset, collateral)} of collateral; the account has"
                f" {self._amount(cmd.collateral_asset, max(self._free_atoms(cmd.account_id, cmd.collateral_asset), 0))} free",
            )
            return
        removal = self._removal_refusal(cmd.account_id, cmd.collateral_asset, collateral)
        if removal is not None:
            self._reject(cmd, cmd.account_id, *removal)
            return
        if cap is not None and posted + collateral > cap:
            self._reject(
                cmd,
                cmd.account_id,
                RejectCode.COLLATERAL_ABOVE_MAX,
                f"an account may post at most {self._amount(cmd.collateral_asset, cap)} as collateral;"
                f" {self._amount(cmd.collateral_asset, posted)} is posted",
            )
            return
        if lender_id not in self.core.accounts or loan_atoms > self.lender_available_atoms(cmd.loan_asset):
            self._reject(
                cmd,
                cmd.account_id,
                RejectCode.LENDER_INSUFFICIENT,
                f"the lender has {self._amount(cmd.loan_asset, self.lender_available_atoms(cmd.loan_asset))} to lend;"
                f" {self._amount(cmd.loan_asset, loan_atoms)} was asked",
            )
            return
        loan = existing
        if loan is None:
            loan = Loan(
                self.next_loan_id, cmd.account_id, cmd.loan_asset, cmd.collateral_asset, self.core.now_ns
            )
            self.next_loan_id += 1
            self.loans[loan.loan_id] = loan
            self.by_key[(cmd.account_id, cmd.loan_asset, cmd.collateral_asset)] = loan.loan_id
        accounts = self.core.accounts
        accounts[cmd.account_id].credit_transfer(cmd.collateral_asset, -collateral)
        loan.collateral_atoms += collateral
        accounts[lender_id].credit_transfer(cmd.loan_asset, -loan_atoms)
        accounts[cmd.account_id].credit_transfer(cmd.loan_asset, loan_atoms)
        self._moved(cmd.account_id, cmd.collateral_asset, cmd.loan_asset)
        self._moved(lender_id, cmd.loan_asset)
        loan.principal_atoms += loan_atoms
        self.core.margin_changed(cmd.account_id)
        self.core.margin_changed(lender_id)
        self.dirty = True
        self.core.emit(
            LoanBorrowed(
                ts_ns=self.core.now_ns,
                loan_id=loan.loan_id,
                account_id=cmd.account_id,
                lender_id=lender_id,
                loan_asset=cmd.loan_asset,
                collateral_asset=cmd.collateral_asset,
                loan_atoms=loan_atoms,
                collateral_atoms=collateral,
                debt_atoms=loan.debt_atoms,
                total_collateral_atoms=loan.collateral_atoms,
                ltv_e8=self._ltv(loan, q, p),
            )
        )

    def _find(self, cmd: RepayLoan | AdjustLoanCollateral) -> Loan | None:
        refusal = self._pair_refusal(cmd.account_id, cmd.loan_asset, cmd.collateral_asset)
        loan = None
        if refusal is None:
            loan = self.loan_of(cmd.account_id, cmd.loan_asset, cmd.collateral_asset)
            if loan is None:
                refusal = (
                    RejectCode.LOAN_NOT_FOUND,
                    f"account {cmd.account_id} has no open {cmd.loan_asset} loan against {cmd.collateral_asset}",
                )
        if refusal is not None:
            self._reject(cmd, cmd.account_id, *refusal)
        return loan

    def _repay(self, cmd: RepayLoan) -> None:
        loan = self._find(cmd)
        if loan is None:
            return
        debt_before = loan.debt_atoms
        amount = debt_before if cmd.full_repayment else cmd.repay_atoms
        refusal: tuple[RejectCode, str] | None = None
        if amount <= 0:
            refusal = (
                RejectCode.AMOUNT_NOT_POSITIVE,
                "repayAmount must be greater than zero (or send fullRepayment)",
            )
        elif amount > debt_before:
            refusal = (
                RejectCode.REPAY_ABOVE_DEBT,
                f"the debt is {self._amount(loan.loan_asset, debt_before)}; repay at most that, or send fullRepayment",
            )
        elif amount > self._free_atoms(cmd.account_id, loan.loan_asset):
            refusal = (
                RejectCode.BALANCE_INSUFFICIENT,
                f"the account has {self._amount(loan.loan_asset, max(self._free_atoms(cmd.account_id, loan.loan_asset), 0))}"
                f" free to repay {self._amount(loan.loan_asset, amount)}",
            )
        if refusal is not None:
            self._reject(cmd, cmd.account_id, *refusal)
            return
        assert self.spec is not None
        lender_id = AccountId(self.spec.lender_account)
        accounts = self.core.accounts
        accounts[cmd.account_id].credit_transfer(loan.loan_asset, -amount)
        accounts[lender_id].credit_transfer(loan.loan_asset, amount)
        interest, principal = loan.pay_down(amount)
        self.interest_income_atoms[loan.loan_asset] = (
            self.interest_income_atoms.get(loan.loan_asset, 0) + interest
        )
        closed = loan.debt_atoms == 0
        if closed:
            returned = loan.collateral_atoms
        elif cmd.collateral_return:
            returned = formulas.returned_collateral_atoms(loan.collateral_atoms, amount, debt_before)
        else:
            returned = 0
        loan.collateral_atoms -= returned
        accounts[cmd.account_id].credit_transfer(loan.collateral_asset, returned)
        self._moved(cmd.account_id, loan.collateral_asset, loan.loan_asset)
        self._moved(lender_id, loan.loan_asset)
        if closed:
            self._close(loan)
        self.core.margin_changed(cmd.account_id)
        self.core.margin_changed(lender_id)
        self.dirty = True
        self.core.emit(
            LoanRepaid(
                ts_ns=self.core.now_ns,
                loan_id=loan.loan_id,
                account_id=cmd.account_id,
                loan_asset=loan.loan_asset,
                collateral_asset=loan.collateral_asset,
                repaid_atoms=amount,
                interest_repaid_atoms=interest,
                principal_repaid_atoms=principal,
                collateral_returned_atoms=returned,
                debt_atoms=loan.debt_atoms,
                collateral_atoms=loan.collateral_atoms,
                closed=closed,
            )
        )

    def _adjust(self, cmd: AdjustLoanCollateral) -> None:
        loan = self._find(cmd)
        if loan is None:
            return
        assert self.spec is not None
        terms = self.spec.collateral[loan.collateral_asset]
        refusal: tuple[RejectCode, str] | None = None
        reduce = cmd.direction is LtvDirection.REDUCED
        if cmd.amount_atoms <= 0:
            refusal = RejectCode.AMOUNT_NOT_POSITIVE, "adjustmentAmount must be greater than zero"
        elif reduce:
            refusal = self._stale_refusal(loan.collateral_asset, loan.loan_asset)
            if refusal is None and cmd.amount_atoms >= loan.collateral_atoms:
                refusal = (
                    RejectCode.LOAN_ABOVE_INITIAL_LTV,
                    f"the loan holds {self._amount(loan.collateral_asset, loan.collateral_atoms)}; to take it all"
                    " back, repay the loan in full",
                )
        elif cmd.amount_atoms > self._free_atoms(cmd.account_id, loan.collateral_asset):
            refusal = (
                RejectCode.BALANCE_INSUFFICIENT,
                f"the account has {self._amount(loan.collateral_asset, max(self._free_atoms(cmd.account_id, loan.collateral_asset), 0))} free",
            )
        elif (
            removal := self._removal_refusal(cmd.account_id, loan.collateral_asset, cmd.amount_atoms)
        ) is not None:
            refusal = removal
        else:
            cap = self.core.config.assets[loan.collateral_asset].max_collateral_atoms
            posted = sum(
                other.collateral_atoms
                for other in self.loans.values()
                if other.account_id == cmd.account_id and other.collateral_asset == loan.collateral_asset
            )
            if cap is not None and posted + cmd.amount_atoms > cap:
                refusal = (
                    RejectCode.COLLATERAL_ABOVE_MAX,
                    f"an account may post at most {self._amount(loan.collateral_asset, cap)} as collateral",
                )
        p = self.index_atoms(loan.collateral_asset)
        q = self.index_atoms(loan.loan_asset)
        if refusal is None and reduce:
            assert p is not None and q is not None
            after = loan.collateral_atoms - cmd.amount_atoms
            ld, cd = self._decimals(loan.loan_asset), self._decimals(loan.collateral_asset)
            if formulas.ltv_exceeds(loan.debt_atoms, q, ld, after, p, cd, terms.initial_ltv_e8):
                refusal = (
                    RejectCode.LOAN_ABOVE_INITIAL_LTV,
                    f"taking that collateral back would lift the LTV above the initial LTV"
                    f" {terms.initial_ltv_e8 / 10**6:.2f}%",
                )
        if refusal is not None:
            self._reject(cmd, cmd.account_id, *refusal)
            return
        before = -1 if p is None or q is None else self._ltv(loan, q, p)
        delta = -cmd.amount_atoms if reduce else cmd.amount_atoms
        self.core.accounts[cmd.account_id].credit_transfer(loan.collateral_asset, -delta)
        self._moved(cmd.account_id, loan.collateral_asset)
        loan.collateral_atoms += delta
        self.core.margin_changed(cmd.account_id)
        self.dirty = True
        self.core.emit(
            LoanCollateralAdjusted(
                ts_ns=self.core.now_ns,
                loan_id=loan.loan_id,
                account_id=cmd.account_id,
                loan_asset=loan.loan_asset,
                collateral_asset=loan.collateral_asset,
                direction=cmd.direction,
                amount_atoms=cmd.amount_atoms,
                collateral_atoms=loan.collateral_atoms,
                ltv_before_e8=before,
                ltv_after_e8=-1 if p is None or q is None else self._ltv(loan, q, p),
            )
        )

    # ------------------------------------------------------------------ snapshot

    def to_data(self) -> dict[str, Any] | None:
        """The stage's state as canonical plain data, or ``None`` when it holds nothing (old hashes stay)."""
        if not (
            self.loans
            or self.quotes
            or self.bad_debt_atoms
            or self.interest_income_atoms
            or self.next_loan_id > 1
        ):
            return None
        return {
            "next_loan_id": self.next_loan_id,
            "loans": [self.loans[loan_id].to_row() for loan_id in sorted(self.loans)],
            "quotes": [
                [asset, [[source, q.price_ticks, q.ts_ns] for source, q in sorted(quotes.items())]]
                for asset, quotes in sorted(self.quotes.items())
            ],
            "bad_debt": sorted(self.bad_debt_atoms.items()),
            "interest_income": sorted(self.interest_income_atoms.items()),
        }

    def load(self, data: dict[str, Any] | None, now_ns: int) -> None:
        """Restore from :meth:`to_data` (``None``: nothing held) at venue time ``now_ns``."""
        self.accrued_to_ns = now_ns // formulas.NS_PER_MINUTE * formulas.NS_PER_MINUTE
        if data is None:
            return
        self.next_loan_id = int(data["next_loan_id"])
        for row in data["loans"]:
            loan = Loan.from_row(row)
            self.loans[loan.loan_id] = loan
            self.by_key[(loan.account_id, loan.loan_asset, loan.collateral_asset)] = loan.loan_id
        for asset, rows in data["quotes"]:
            self.quotes[AssetId(asset)] = {str(s): SourceQuote(int(p), int(t)) for s, p, t in rows}
        self.bad_debt_atoms = {AssetId(a): int(v) for a, v in data["bad_debt"]}
        self.interest_income_atoms = {AssetId(a): int(v) for a, v in data["interest_income"]}
