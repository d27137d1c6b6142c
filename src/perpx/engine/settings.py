"""Per-market settings of an account: leverage, margin mode, isolated margin."""

from __future__ import annotations

from typing import TYPE_CHECKING

from perpx.engine.codes import RejectCode
from perpx.engine.commands import (
    AdjustIsolatedMargin,
    MarginMode,
    SetLeverage,
    SetMarginMode,
)
from perpx.engine.events import (
    IsolatedMarginAdjusted,
    LeverageChanged,
    MarginModeChanged,
)
from perpx.engine.margin import (
    position_risk,
)

if TYPE_CHECKING:
    from perpx.engine.core import Core


def set_leverage(core: Core, cmd: SetLeverage) -> None:
    found = core.lookup(cmd)
    if found is None:
        return
    account, spec = found
    if not 1 <= cmd.leverage <= spec.max_leverage:
        core.reject_command(
            cmd,
            cmd.account_id,
            RejectCode.LEVERAGE_INVALID,
            f"Leverage {cmd.leverage} is not valid: use 1 to {spec.max_leverage}",
        )
        return
    position = core.position_record(account, cmd.market)
    cap = spec.max_notional_at_leverage(cmd.leverage)
    worst = position.worst_case_notional(core.marks.get(cmd.market, 0), spec.contract_atoms)
    if worst > cap:
        core.reject_command(
            cmd,
            cmd.account_id,
            RejectCode.MAX_POSITION_AT_LEVERAGE,
            f"position and open orders ({core.money(worst)}) exceed the maximum of {core.money(cap)} at {cmd.leverage}x",
        )
        return
    old = position.leverage
    position.leverage = cmd.leverage
    order_margin_before = position.order_margin_atoms
    position.order_margin_atoms = position.required_order_margin()
    if cmd.leverage < old:
        if position.is_isolated and position.qty_lots:
            risk = position_risk(position, spec, core.marks[cmd.market])
            short = risk.initial_margin_atoms - position.isolated_margin_atoms
            if short > 0:
                position.leverage = old
                position.order_margin_atoms = order_margin_before
                core.reject_command(
                    cmd,
                    cmd.account_id,
                    RejectCode.MARGIN_INSUFFICIENT,
                    f"isolated margin is {core.money(short)} short of the initial margin at {cmd.leverage}x;"
                    " add isolated margin first",
                )
                return
        if core.risk(account.account_id).available_atoms < 0:
            position.leverage = old
            position.order_margin_atoms = order_margin_before
            core.reject_command(
                cmd,
                cmd.account_id,
                RejectCode.MARGIN_INSUFFICIENT,
                f"Margin is insufficient for {cmd.leverage}x: the available balance would fall below zero",
            )
            return
    core.emit(
        LeverageChanged(
            ts_ns=core.now_ns,
            account_id=account.account_id,
            market=cmd.market,
            leverage=cmd.leverage,
            max_notional_atoms=cap,
        )
    )


def set_margin_mode(core: Core, cmd: SetMarginMode) -> None:
    found = core.lookup(cmd)
    if found is None:
        return
    account, _spec = found
    position = core.position_record(account, cmd.market)
    if position.margin_mode is cmd.mode:
        core.reject_command(
            cmd, cmd.account_id, RejectCode.MARGIN_TYPE_UNCHANGED, "No need to change margin type."
        )
        return
    if cmd.mode is MarginMode.ISOLATED and core.multi_assets.is_enabled(account.account_id):
        core.reject_command(
            cmd,
            cmd.account_id,
            RejectCode.ISOLATED_IN_MULTI_ASSETS,
            "Unable to adjust to isolated-margin mode under the Multi-Assets mode.",
        )
        return
    if position.open_orders:
        core.reject_command(
            cmd,
            cmd.account_id,
            RejectCode.MARGIN_TYPE_OPEN_ORDERS,
            "Margin type cannot be changed if there exists open orders.",
        )
        return
    if position.qty_lots:
        core.reject_command(
            cmd,
            cmd.account_id,
            RejectCode.MARGIN_TYPE_POSITION,
            "Margin type cannot be changed if there exists position.",
        )
        return
    if position.isolated_margin_atoms:
        account.credit(core.asset, position.isolated_margin_atoms)
        position.isolated_margin_atoms = 0
    position.margin_mode = cmd.mode
    core.emit(
        MarginModeChanged(ts_ns=core.now_ns, account_id=account.account_id, market=cmd.market, mode=cmd.mode)
    )


def adjust_isolated_margin(core: Core, cmd: AdjustIsolatedMargin) -> None:
    found = core.lookup(cmd)
    if found is None:
        return
    account, spec = found
    position = account.positions.get(cmd.market)
    if position is None or not position.is_isolated:
        core.reject_command(
            cmd,
            cmd.account_id,
            RejectCode.ISOLATED_MARGIN_CROSS,
            "the position is not in isolated margin mode",
        )
        return
    if position.qty_lots == 0:
        core.reject_command(
            cmd,
            cmd.account_id,
            RejectCode.ISOLATED_MARGIN_NO_POSITION,
            "isolated margin can only be adjusted on an open position",
        )
        return
    if cmd.delta_atoms == 0:
        core.reject_command(
            cmd, cmd.account_id, RejectCode.AMOUNT_NOT_POSITIVE, "the amount must not be zero"
        )
        return
    if cmd.delta_atoms > 0:
        available = core.risk(account.account_id).available_atoms
        if cmd.delta_atoms > available:
            core.reject_command(
                cmd,
                cmd.account_id,
                RejectCode.MARGIN_INSUFFICIENT,
                f"the cross wallet has {core.money(max(available, 0))} available",
            )
            return
    else:
        risk = position_risk(position, spec, core.marks[cmd.market])
        removable = (
            position.isolated_margin_atoms + min(0, risk.unrealized_pnl_atoms) - risk.initial_margin_atoms
        )
        if -cmd.delta_atoms > removable:
            core.reject_command(
                cmd,
                cmd.account_id,
                RejectCode.MARGIN_INSUFFICIENT,
                f"at most {core.money(max(removable, 0))} can be removed while keeping initial margin",
            )
            return
    account.credit(core.asset, -cmd.delta_atoms)
    position.isolated_margin_atoms += cmd.delta_atoms
    core.margin_changed(account.account_id)
    core.emit(
        IsolatedMarginAdjusted(
            ts_ns=core.now_ns,
            account_id=account.account_id,
            market=cmd.market,
            delta_atoms=cmd.delta_atoms,
            isolated_margin_atoms=position.isolated_margin_atoms,
        )
    )
