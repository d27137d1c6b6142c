"""The loan record: one per (borrower, loan asset, collateral asset), as Binance's flexible loans."""

from __future__ import annotations

from typing import Any

from perpx.engine.values import AccountId, AssetId


class Loan:
    """An open secured loan.

    Invariants
    ----------
    ``principal_atoms >= 0``, ``interest_atoms >= 0``, ``collateral_atoms >= 0`` and the debt
    (principal + unpaid interest) is positive while the loan is open. The collateral is held by
    the loan, not by any account: conservation counts it per asset.
    """

    __slots__ = (
        "account_id",
        "collateral_asset",
        "collateral_atoms",
        "interest_atoms",
        "loan_asset",
        "loan_id",
        "margin_called",
        "opened_ns",
        "principal_atoms",
    )

    def __init__(
        self,
        loan_id: int,
        account_id: AccountId,
        loan_asset: AssetId,
        collateral_asset: AssetId,
        opened_ns: int,
    ) -> None:
        self.loan_id = loan_id
        self.account_id = account_id
        self.loan_asset = loan_asset
        self.collateral_asset = collateral_asset
        self.opened_ns = opened_ns
        self.principal_atoms = 0
        self.interest_atoms = 0
        """Interest accrued and not yet repaid; it compounds (the next minute's interest is on the debt)."""
        self.collateral_atoms = 0
        self.margin_called = False
        """True from a margin call until the LTV is back under the margin-call level (one call per crossing)."""

    @property
    def debt_atoms(self) -> int:
        return self.principal_atoms + self.interest_atoms

    def pay_down(self, amount_atoms: int) -> tuple[int, int]:
        """Reduce the debt by ``amount_atoms`` (at most the debt), interest first; ``(interest, principal)``."""
        interest = min(amount_atoms, self.interest_atoms)
        principal = amount_atoms - interest
        self.interest_atoms -= interest
        self.principal_atoms -= principal
        return interest, principal

    def to_row(self) -> list[Any]:
        return [
            self.loan_id,
            self.account_id,
            self.loan_asset,
            self.collateral_asset,
            self.opened_ns,
            self.principal_atoms,
            self.interest_atoms,
            self.collateral_atoms,
            self.margin_called,
        ]

    @staticmethod
    def from_row(row: list[Any]) -> Loan:
        loan = Loan(int(row[0]), AccountId(row[1]), AssetId(row[2]), AssetId(row[3]), int(row[4]))
        loan.principal_atoms, loan.interest_atoms, loan.collateral_atoms = (
            int(row[5]),
            int(row[6]),
            int(row[7]),
        )
        loan.margin_called = bool(row[8])
        return loan
