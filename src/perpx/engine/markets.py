"""Market-wide commands: manual marks, modes (settlement), live parameters, the clock."""

from __future__ import annotations

from typing import TYPE_CHECKING

from perpx.engine import formulas, params
from perpx.engine.accounts import (
    apply_position_change,
)
from perpx.engine.codes import RejectCode
from perpx.engine.commands import (
    AdvanceClock,
    MarketMode,
    SetMarketMode,
    SetMarkPrice,
    UpdateMarketParams,
)
from perpx.engine.config import (
    ConfigError,
    MarketSpec,
    market_params,
    with_market_params,
)
from perpx.engine.events import (
    ClockAdvanced,
    MarkClamped,
    MarketModeChanged,
    MarketParamsChanged,
    MarkPriceSet,
    ParamChange,
    PositionSettled,
    SettlementLossShared,
)
from perpx.engine.liquidation.insurance import INSURANCE_ACCOUNT, fund_equity, move_cash
from perpx.engine.pricing.mark import clamp_to_index_band
from perpx.engine.values import (
    AccountId,
    MarketId,
    Side,
)

if TYPE_CHECKING:
    from perpx.engine.engine import Engine


def set_mark_price(core: Engine, cmd: SetMarkPrice) -> None:
    spec = core.specs.get(cmd.market)
    if spec is None:
        core.reject_command(
            cmd, None, RejectCode.BAD_SYMBOL, f"market {cmd.market} is not listed on this venue"
        )
        return
    if cmd.mark_ticks <= 0 or cmd.index_ticks <= 0:
        core.reject_command(
            cmd, None, RejectCode.PRICE_NOT_POSITIVE, "index and mark prices must be positive"
        )
        return
    if core.pricing.priced(cmd.market):
        core.reject_command(
            cmd,
            None,
            RejectCode.MARK_FROM_INDEX,
            f"market {cmd.market} takes its mark from its index sources; send SubmitSpotQuote instead",
        )
        return
    band = spec.risk.mark_index_band_e8
    mark_ticks = clamp_to_index_band(cmd.mark_ticks, cmd.index_ticks, band)
    core.set_mark(cmd.market, cmd.index_ticks, mark_ticks)
    core.emit(
        MarkPriceSet(ts_ns=core.now_ns, market=cmd.market, index_ticks=cmd.index_ticks, mark_ticks=mark_ticks)
    )
    if mark_ticks != cmd.mark_ticks:
        core.emit(
            MarkClamped(
                ts_ns=core.now_ns,
                market=cmd.market,
                as_of_ns=core.now_ns,
                index_ticks=cmd.index_ticks,
                raw_mark_ticks=cmd.mark_ticks,
                mark_ticks=mark_ticks,
                band_e8=band,
            )
        )


def set_market_mode(core: Engine, cmd: SetMarketMode) -> None:
    spec = core.specs.get(cmd.market)
    if spec is None:
        core.reject_command(
            cmd, None, RejectCode.BAD_SYMBOL, f"market {cmd.market} is not listed on this venue"
        )
        return
    previous = core.modes[cmd.market]
    if previous is MarketMode.SETTLED:
        core.reject_command(
            cmd, None, RejectCode.MARKET_SETTLED, f"market {cmd.market} is settled; its mode is final"
        )
        return
    if cmd.mode is MarketMode.SETTLED:
        price = cmd.settle_price_ticks
        if price is None or not spec.min_price_ticks <= price <= spec.max_price_ticks:
            core.reject_command(
                cmd, None, RejectCode.BAD_PARAMETER, "settling a market needs a valid settle_price_ticks"
            )
            return
        settle_market(core, cmd.market, spec, price)
    elif cmd.settle_price_ticks is not None:
        core.reject_command(
            cmd, None, RejectCode.BAD_PARAMETER, "settle_price_ticks goes only with mode SETTLED"
        )
        return
    core.modes[cmd.market] = cmd.mode
    core.emit(MarketModeChanged(ts_ns=core.now_ns, market=cmd.market, mode=cmd.mode, previous=previous))
    if previous is MarketMode.HALTED:
        core.price_moved(cmd.market)  # trading resumes: paused liquidations there are due again


def update_market_params(core: Engine, cmd: UpdateMarketParams) -> None:
    spec = core.specs.get(cmd.market)
    if spec is None:
        core.reject_command(
            cmd, None, RejectCode.BAD_SYMBOL, f"market {cmd.market} is not listed on this venue"
        )
        return
    if core.modes[cmd.market] is MarketMode.SETTLED:
        core.reject_command(
            cmd,
            None,
            RejectCode.MARKET_SETTLED,
            f"market {cmd.market} is settled; it has no live parameters",
        )
        return
    if not cmd.params:
        core.reject_command(cmd, None, RejectCode.BAD_PARAMETER, "no parameter to change was given")
        return
    atom = core.config.settlement.atom
    try:
        changed = with_market_params(spec, atom, cmd.params)
    except ConfigError as exc:
        core.reject_command(cmd, None, RejectCode.BAD_PARAMETER, str(exc))
        return
    old, new = market_params(spec, atom), market_params(changed, atom)
    core.specs[cmd.market] = changed
    kept = params.overrides(core.config.markets[cmd.market], changed, atom)  # with non-live ones
    if kept:
        core.param_overrides[cmd.market] = kept
    else:
        core.param_overrides.pop(cmd.market, None)
    core.emit(
        MarketParamsChanged(
            ts_ns=core.now_ns,
            market=cmd.market,
            changes=tuple(ParamChange(param=n, old=old[n], new=new[n]) for n in sorted(cmd.params)),
            operator=cmd.operator,
        )
    )


def settle_market(core: Engine, market: MarketId, spec: MarketSpec, price_ticks: int) -> None:
    """Cancel every order and close every position at ``price_ticks``, without fees.

    Long and short open interest are equal, so the realised PnL of all
    positions sums to minus their total cost: conservation holds exactly.
    A settlement price beyond an account's bankruptcy price leaves it below
    zero: :meth:`_share_settlement_deficits` pays that back.
    """
    core.triggers.expire_market(market)
    book = core.books[market]
    for side in (book.bids, book.asks):
        for order in list(side.orders()):
            core.cancel_order(order)
    contract = spec.contract_atoms
    profits: dict[AccountId, int] = {}
    for account_id in sorted(core.accounts):
        account = core.accounts[account_id]
        position = account.positions.get(market)
        if position is None or position.qty_lots == 0:
            continue
        qty = position.qty_lots
        closing_side = Side.SELL if qty > 0 else Side.BUY
        value = formulas.notional_atoms(price_ticks, abs(qty), contract)
        realized, oi_delta = apply_position_change(
            account, position, core.asset, closing_side, abs(qty), value
        )
        core.open_interest_lots[market] += oi_delta
        core.margin_changed(account_id)
        if realized > 0 and account_id != INSURANCE_ACCOUNT:
            profits[account_id] = realized
        core.emit(
            PositionSettled(
                ts_ns=core.now_ns,
                account_id=account_id,
                market=market,
                qty_lots=qty,
                price_ticks=price_ticks,
                realized_pnl_atoms=realized,
            )
        )
    core.post_trade()
    share_settlement_deficits(core, market, profits)


def share_settlement_deficits(core: Engine, market: MarketId, profits: dict[AccountId, int]) -> None:
    """Pay back every account a settlement left below zero: the fund first, the winners after.

    An account holding nothing with a negative wallet is covered by the insurance fund as far as
    the fund's equity goes (``DEFICIT_COVER``); the rest is taken from the accounts that realised
    a profit in this settlement, pro rata to that profit (largest remainder, ties by account id)
    and never more than it, as auto-deleveraging takes a shortfall from the winning side
    (``SettlementLossShared``). The fund never pays beyond its equity.
    """
    deficits: dict[AccountId, int] = {}
    for account_id in sorted(core.accounts):
        if account_id == INSURANCE_ACCOUNT:
            continue
        account = core.accounts[account_id]
        wallet = account.balance(core.asset)
        if core.multi_assets.holds_collateral(account):
            continue  # Multi-Assets Mode: a debt backed by collateral, not a deficit
        if wallet < 0 and all(
            not p.qty_lots and not p.isolated_margin_atoms for p in account.positions.values()
        ):
            covered = min(-wallet, max(0, fund_equity(core)))
            move_cash(core, account, market, -covered, "DEFICIT_COVER", False)
            if covered < -wallet:
                deficits[account_id] = -wallet - covered
    if not deficits or not profits:
        return
    pool = sum(profits.values())
    total = min(sum(deficits.values()), pool)
    shares = {account_id: total * profit // pool for account_id, profit in profits.items()}
    short = total - sum(shares.values())
    by_remainder = sorted(profits, key=lambda a: (-(total * profits[a] % pool), a))
    for account_id in by_remainder[:short]:
        shares[account_id] += 1
    for account_id, share in shares.items():
        if share:
            core.accounts[account_id].credit(core.asset, -share)
            core.margin_changed(account_id)
            core.emit(
                SettlementLossShared(
                    ts_ns=core.now_ns, market=market, account_id=account_id, amount_atoms=-share
                )
            )
    for account_id, deficit in deficits.items():
        paid = min(deficit, total)
        total -= paid
        if paid:
            core.accounts[account_id].credit(core.asset, paid)
            core.emit(
                SettlementLossShared(
                    ts_ns=core.now_ns, market=market, account_id=account_id, amount_atoms=paid
                )
            )


def advance_clock(core: Engine, cmd: AdvanceClock) -> None:
    core.emit(ClockAdvanced(ts_ns=core.now_ns))
