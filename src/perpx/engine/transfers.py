"""Accounts, deposits and withdrawals: idempotent by ``tx_id``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from perpx.engine.accounts import (
    Account,
)
from perpx.engine.codes import RejectCode
from perpx.engine.commands import (
    CreateAccount,
    Deposit,
    Withdraw,
)
from perpx.engine.events import (
    AccountCreated,
    DepositApplied,
    TransferRejected,
    WithdrawalApplied,
)
from perpx.engine.values import (
    AccountId,
)

if TYPE_CHECKING:
    from perpx.engine.core import Core


def create_account(core: Core, cmd: CreateAccount) -> None:
    account_id = AccountId(core.next_account_id)
    core.next_account_id += 1
    core.accounts[account_id] = Account(account_id, cmd.name)
    core.emit(AccountCreated(ts_ns=core.now_ns, account_id=account_id, name=cmd.name))


def transfer_refusal(core: Core, cmd: Deposit | Withdraw) -> tuple[RejectCode, str] | None:
    if cmd.account_id not in core.accounts:
        return RejectCode.UNKNOWN_ACCOUNT, f"account {cmd.account_id} does not exist"
    if cmd.asset not in core.config.assets:
        return RejectCode.UNKNOWN_ASSET, f"asset {cmd.asset} is not listed on this venue"
    if cmd.amount_atoms <= 0:
        return RejectCode.AMOUNT_NOT_POSITIVE, "amount must be greater than zero"
    if not cmd.tx_id:
        return RejectCode.BAD_PARAMETER, "a transfer needs a non-empty tx_id"
    if cmd.tx_id in core.tx_ids:
        return RejectCode.DUPLICATE_TX, f"tx_id {cmd.tx_id} was already applied; nothing changed"
    return None


def reject_transfer(core: Core, cmd: Deposit | Withdraw, code: RejectCode, message: str) -> None:
    core.emit(
        TransferRejected(
            ts_ns=core.now_ns,
            account_id=cmd.account_id,
            asset=cmd.asset,
            amount_atoms=cmd.amount_atoms,
            tx_id=cmd.tx_id,
            code=code,
            message=message,
        )
    )


def deposit(core: Core, cmd: Deposit) -> None:
    refusal = transfer_refusal(core, cmd)
    if refusal is not None:
        reject_transfer(core, cmd, *refusal)
        return
    core.tx_ids[cmd.tx_id] = cmd.account_id
    balance = core.accounts[cmd.account_id].credit_transfer(cmd.asset, cmd.amount_atoms)
    core.margin_changed(cmd.account_id)
    core.multi_assets.asset_moved(cmd.account_id, cmd.asset)
    core.deposits_atoms[cmd.asset] = core.deposits_atoms.get(cmd.asset, 0) + cmd.amount_atoms
    core.emit(
        DepositApplied(
            ts_ns=core.now_ns,
            account_id=cmd.account_id,
            asset=cmd.asset,
            amount_atoms=cmd.amount_atoms,
            tx_id=cmd.tx_id,
            balance_atoms=balance,
        )
    )


def withdraw(core: Core, cmd: Withdraw) -> None:
    refusal = transfer_refusal(core, cmd)
    if refusal is not None:
        reject_transfer(core, cmd, *refusal)
        return
    account = core.accounts[cmd.account_id]
    stale = 0
    if cmd.asset == core.asset:
        risk = core.risk(cmd.account_id)
        free = risk.withdrawable_atoms
        stale = core.multi_assets.stale_shortfall_atoms(account)
        if stale:  # Multi-Assets Mode: collateral on a stale index counts at zero for new risk
            free = max(0, min(risk.wallet_atoms, risk.free_atoms - stale))
    else:
        free = account.balance(cmd.asset)
    if cmd.amount_atoms > free:
        if stale and cmd.amount_atoms <= risk.withdrawable_atoms:
            code, message = (
                RejectCode.COLLATERAL_STALE_FOR_RISK,
                f"withdrawable balance is {core.money(free)} while the"
                f" {', '.join(core.multi_assets.stale_held(account))} index is stale (that collateral counts"
                " at zero); try again when it is fresh",
            )
        elif cmd.asset == core.asset:
            code, message = (
                RejectCode.BALANCE_INSUFFICIENT,
                f"withdrawable balance is {core.money(free)}; unrealised profit and margin in use cannot be withdrawn",
            )
        else:
            code, message = RejectCode.BALANCE_INSUFFICIENT, f"the account holds {free} atoms of {cmd.asset}"
        reject_transfer(core, cmd, code, message)
        return
    removal = core.multi_assets.removal_refusal(account, cmd.asset, cmd.amount_atoms)
    if removal is not None:
        reject_transfer(core, cmd, *removal)
        return
    core.tx_ids[cmd.tx_id] = cmd.account_id
    balance = account.credit_transfer(cmd.asset, -cmd.amount_atoms)
    core.margin_changed(cmd.account_id)
    core.multi_assets.asset_moved(cmd.account_id, cmd.asset)
    core.withdrawals_atoms[cmd.asset] = core.withdrawals_atoms.get(cmd.asset, 0) + cmd.amount_atoms
    core.emit(
        WithdrawalApplied(
            ts_ns=core.now_ns,
            account_id=cmd.account_id,
            asset=cmd.asset,
            amount_atoms=cmd.amount_atoms,
            tx_id=cmd.tx_id,
            balance_atoms=balance,
        )
    )
