"""The insurance fund: venue money that absorbs liquidation losses, and an account that holds positions.

Design
------
* **Cash** is ``engine.insurance_atoms[settlement asset]``, the ledger line that conservation
  already counts (``wallets + isolated - cost + fees + insurance = net deposits``). Clearance fees
  and funding residues are paid into it; deficits are paid out of it.
* **Positions** the fund takes over live in a venue-owned account, :data:`INSURANCE_ACCOUNT`
  (id 0, never created by a command). Its positions are ordinary positions: they count in open
  interest (long = short stays exact), pay and receive funding, and can be *worked out* later by
  orders sent from account 0 (reduce-only orders need no margin). Realised PnL of those positions
  lands in account 0's wallet, so the fund's equity is ``cash + account 0 wallet + its unrealised PnL``.
* The fund is never liquidated and never an ADL counterparty. It **accepts** a takeover as far as
  its equity on the mark stays at or above zero; what it cannot accept is auto-deleveraged. If its
  equity later falls below zero (its positions moved against it), its largest position is
  auto-deleveraged at the fund's own bankruptcy price (:mod:`.stage`).

Seeding the fund is a ``Deposit`` to account 0 (it lands in account 0's wallet, part of the fund's
equity).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from perpx.engine import formulas
from perpx.engine.accounts import Account
from perpx.engine.events import InsuranceFundChanged
from perpx.engine.values import AccountId, MarketId

if TYPE_CHECKING:
    from perpx.engine.core import Core

INSURANCE_ACCOUNT: Final = AccountId(0)
INSURANCE_NAME = "insurance-fund"


def ensure_fund_account(engine: Core) -> Account:
    """Account 0, created with the engine (a snapshot leaves it out while it holds nothing)."""
    account = engine.accounts.get(INSURANCE_ACCOUNT)
    if account is None:
        account = engine.accounts[INSURANCE_ACCOUNT] = Account(INSURANCE_ACCOUNT, INSURANCE_NAME)
    return account


def fund_cash(engine: Core) -> int:
    """The fund's cash: the insurance ledger line (account 0's wallet is part of its equity, not cash)."""
    return engine.insurance_atoms.get(engine.asset, 0)


def fund_equity(engine: Core) -> int:
    """Cash + account 0's wallet + unrealised PnL of every fund position on the marks."""
    account = engine.accounts[INSURANCE_ACCOUNT]
    equity = fund_cash(engine) + account.balance(engine.asset)
    for market, position in account.positions.items():
        if position.qty_lots:
            equity += formulas.unrealized_pnl_atoms(
                position.qty_lots,
                position.cost_atoms,
                engine.marks[market],
                engine.specs[market].contract_atoms,
            )
    return equity


def move_cash(
    engine: Core,
    account: Account,
    market: MarketId | None,
    amount_atoms: int,
    reason: str,
    from_isolated: bool,
) -> None:
    """Move ``amount_atoms`` from ``account`` into the fund (negative: out of the fund into the account).

    ``from_isolated`` takes it from (or gives it to) the isolated margin of ``market`` instead of
    the cross wallet. Emits :class:`InsuranceFundChanged`.
    """
    if amount_atoms == 0:
        return
    asset = engine.asset
    if from_isolated:
        assert market is not None
        account.positions[market].isolated_margin_atoms -= amount_atoms
    else:
        account.credit(asset, -amount_atoms)
    engine.insurance_atoms[asset] = engine.insurance_atoms.get(asset, 0) + amount_atoms
    engine.margin_changed(account.account_id)
    engine.emit(
        InsuranceFundChanged(
            ts_ns=engine.now_ns,
            account_id=account.account_id,
            market=market,
            reason=reason,
            amount_atoms=amount_atoms,
            fund_cash_atoms=engine.insurance_atoms[asset],
        )
    )
