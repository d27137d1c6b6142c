"""Matching, the fill guard and settlement: price-time priority at the maker's price.

Each trade settles both sides at once (position, realised PnL, fee, fee account, volume);
no voluntary fill takes an owner below zero margin balance (``mechanics.md`` 29).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from perpx.engine import formulas
from perpx.engine.accounts import (
    Account,
    Position,
    apply_position_change,
    position_change,
    preview_position_change,
)
from perpx.engine.book import Order, OrderBook
from perpx.engine.commands import (
    MarginMode,
    OrderType,
    StpMode,
    TimeInForce,
)
from perpx.engine.config import (
    MarketSpec,
)
from perpx.engine.events import (
    ExpireReason,
    OrderExpired,
    OrderFilled,
)
from perpx.engine.margin import (
    cross_margin_balance_atoms,
    isolated_margin_balance_atoms,
)
from perpx.engine.values import (
    RATE_SCALE,
    Side,
    TradeId,
)

if TYPE_CHECKING:
    from perpx.engine.core import Core

# Enum members as module constants: one global read each (mypyc: C constants), not an enum lookup.
_ISOLATED: Final = MarginMode.ISOLATED
_BUY: Final = Side.BUY
_MARKET: Final = OrderType.MARKET
_LIMIT: Final = OrderType.LIMIT
_GTC: Final = TimeInForce.GTC
_GTX: Final = TimeInForce.GTX
_STP_NONE: Final = StpMode.NONE
_EXPIRE_MAKER: Final = StpMode.EXPIRE_MAKER
_EXPIRE_TAKER: Final = StpMode.EXPIRE_TAKER
_EXPIRE_BOTH: Final = StpMode.EXPIRE_BOTH


def execute(core: Core, taker: Order, book: OrderBook, spec: MarketSpec, taker_position: Position) -> None:
    """Match ``taker`` (4), then rest or expire its remainder (5), then post-trade (6)."""
    core.touch(taker_position)
    opposite = book.opposite(taker.side)
    side_sign = int(taker.side)
    limit = taker.price_ticks
    expired: ExpireReason | None = None
    crossed_any = False
    while taker.leaves_lots > 0:
        maker = opposite.head()
        if maker is None:
            break
        if (maker.price_ticks - limit) * side_sign > 0:
            crossed_any = True
            break
        if maker.account_id == taker.account_id and taker.stp is not _STP_NONE:
            stp = taker.stp
            if stp is _EXPIRE_MAKER or stp is _EXPIRE_BOTH:
                core.expire_order(maker, book, ExpireReason.STP_MAKER)
            if stp is _EXPIRE_TAKER or stp is _EXPIRE_BOTH:
                expired = ExpireReason.STP_TAKER
                break
            continue
        if not match_one(core, taker, maker, book, spec):
            expired = ExpireReason.BANKRUPTCY
            break

    # 5. rest or expire
    leaves = taker.leaves_lots
    if leaves > 0:
        if expired is None and taker.order_type is _LIMIT and (taker.tif is _GTC or taker.tif is _GTX):
            core.book_order(taker, book)
            if taker.reduce_only:
                core.trim_reduce_only(taker_position)
        else:
            if expired is None:
                if taker.order_type is _MARKET:
                    expired = ExpireReason.MARKET_TAKE_BOUND if crossed_any else ExpireReason.NO_LIQUIDITY
                else:
                    expired = ExpireReason.IOC_REMAINDER
            core.emit(
                OrderExpired(
                    ts_ns=core.now_ns,
                    order_id=taker.order_id,
                    account_id=taker.account_id,
                    market=taker.market,
                    leaves_lots=leaves,
                    reason=expired,
                )
            )
    # 6. post-trade
    core.post_trade()


def match_one(core: Core, taker: Order, maker: Order, book: OrderBook, spec: MarketSpec) -> bool:
    """Trade ``taker`` against the head ``maker`` as far as both owners stay solvent; False stops the taker.

    No voluntary fill lowers a scope's margin balance below zero. A maker whose fill would is
    expired (``BANKRUPTCY``) and matching goes on; a taker fills the most lots it can at this
    price and stops there. A liquidation order (fee-free) is exempt as a taker: its limit is
    its bankruptcy price already. The fee tiers of both sides are those before the trade.
    """
    qty = min(taker.leaves_lots, maker.leaves_lots)
    price = maker.price_ticks
    contract = spec.contract_atoms
    taker_account = core.accounts[taker.account_id]
    maker_account = core.accounts[maker.account_id]
    taker_position = taker_account.positions[taker.market]
    maker_position = maker_account.positions[maker.market]
    liquidating = taker.fee_free
    taker_rate = 0 if liquidating else core.fee_rates(taker_account).taker_e8
    maker_rate = core.fee_rates(maker_account).maker_e8
    if maker_position is taker_position:
        lots = self_trade_lots(
            core, taker_account, taker_position, spec, taker.side, qty, price, taker_rate, maker_rate
        )
        if lots:
            trade(core, taker, maker, book, spec, lots, price, taker_rate, maker_rate)
        return lots == qty
    notional = formulas.notional_atoms(price, qty, contract)
    maker_fee = max(0, formulas.fee_atoms(notional, maker_rate))
    if not solvent_after(core, maker_account, maker_position, spec, maker.side, qty, notional, maker_fee):
        core.expire_order(maker, book, ExpireReason.BANKRUPTCY)
        return True
    lots = qty
    if not liquidating:
        lots = solvent_lots(core, taker_account, taker_position, spec, taker.side, qty, price, taker_rate)
        if 0 < lots < qty:
            smaller = formulas.notional_atoms(price, lots, contract)
            fee = max(0, formulas.fee_atoms(smaller, maker_rate))
            if not solvent_after(core, maker_account, maker_position, spec, maker.side, lots, smaller, fee):
                core.expire_order(maker, book, ExpireReason.BANKRUPTCY)
                return False
    if lots:
        trade(core, taker, maker, book, spec, lots, price, taker_rate, maker_rate)
    return lots == qty


def solvent_after(
    core: Core,
    account: Account,
    position: Position,
    spec: MarketSpec,
    side: Side,
    lots: int,
    value_atoms: int,
    fee_atoms: int,
) -> bool:
    """Whether trading ``lots`` for ``value_atoms`` and ``fee_atoms`` keeps ``position``'s scopes solvent.

    A cross fill changes its scope's margin balance by exactly ``side x (lots x mark x contract -
    value) - fee`` (the realised part and the uPnL part of a close add up to that, whatever the
    split), so it needs no preview; an isolated fill moves margin between scopes and is previewed.
    """
    if position.margin_mode is not _ISOLATED:
        mark = core.marks[position.market]
        gain = formulas.mul(lots * mark, spec.contract_atoms) - value_atoms
        delta = (gain if side is _BUY else -gain) - fee_atoms
        return (
            delta >= 0 or cross_margin_balance_atoms(account, core.asset, core.specs, core.marks) + delta >= 0
        )
    change = preview_position_change(position, side, lots, value_atoms, fee_atoms)
    return solvent(
        core,
        account,
        position,
        spec,
        change.qty_lots,
        change.cost_atoms,
        change.isolated_margin_atoms,
        change.wallet_atoms,
        change.released_atoms,
    )


def solvent(
    core: Core,
    account: Account,
    position: Position,
    spec: MarketSpec,
    qty_after: int,
    cost_after: int,
    isolated_after: int,
    wallet_delta: int,
    released_atoms: int,
) -> bool:
    """Whether ``position`` becoming ``(qty_after, cost_after, isolated_after)`` and the cross
    wallet moving by ``wallet_delta`` (fees included) leaves every scope it touches at a margin
    balance of zero or more, or no lower than before (``mechanics.md`` 29).

    An isolated close that would release a negative amount (its loss beyond the position's own
    margin, taken from the cross wallet) is never solvent: isolated means the loss stops there.

    The margin balance itself (a sum over the account's positions) is only computed when the
    change lowers it: a fill better than the mark by more than its fee needs no sum at all.
    """
    mark = core.marks[position.market]
    upnl_delta = formulas.mul(formulas.mul(qty_after - position.qty_lots, mark), spec.contract_atoms) - (
        cost_after - position.cost_atoms
    )
    if position.margin_mode is _ISOLATED:
        if released_atoms < 0:
            return False
        own = isolated_after - position.isolated_margin_atoms + upnl_delta
        if own < 0 and isolated_margin_balance_atoms(position, spec, mark) + own < 0:
            return False
        if wallet_delta < 0:
            return cross_margin_balance_atoms(account, core.asset, core.specs, core.marks) + wallet_delta >= 0
        return True
    delta = wallet_delta + upnl_delta
    return delta >= 0 or cross_margin_balance_atoms(account, core.asset, core.specs, core.marks) + delta >= 0


def solvent_lots(
    core: Core,
    account: Account,
    position: Position,
    spec: MarketSpec,
    side: Side,
    want_lots: int,
    price_ticks: int,
    fee_rate_e8: int,
) -> int:
    """The most of ``want_lots`` that can trade at ``price_ticks`` keeping ``position``'s scopes solvent."""
    contract = spec.contract_atoms

    def fits(lots: int) -> bool:
        notional = formulas.notional_atoms(price_ticks, lots, contract)
        fee = max(0, formulas.fee_atoms(notional, fee_rate_e8))
        return solvent_after(core, account, position, spec, side, lots, notional, fee)

    if fits(want_lots):
        return want_lots
    low, high = 0, want_lots - 1  # the answer lies in [low, high]; 0 always qualifies
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


def self_trade_lots(
    core: Core,
    account: Account,
    position: Position,
    spec: MarketSpec,
    taker_side: Side,
    want_lots: int,
    price_ticks: int,
    taker_rate_e8: int,
    maker_rate_e8: int,
) -> int:
    """The most of ``want_lots`` an account can trade with itself (STP ``NONE``) and stay solvent.

    Both legs change the same position, one after the other: the taker's, then the maker's.
    """
    contract = spec.contract_atoms
    isolated = position.margin_mode is _ISOLATED

    def fits(lots: int) -> bool:
        notional = formulas.notional_atoms(price_ticks, lots, contract)
        first = preview_position_change(
            position, taker_side, lots, notional, max(0, formulas.fee_atoms(notional, taker_rate_e8))
        )
        second = position_change(
            first.qty_lots,
            first.cost_atoms,
            first.isolated_margin_atoms,
            isolated,
            position.leverage,
            Side(-taker_side),
            lots,
            notional,
            max(0, formulas.fee_atoms(notional, maker_rate_e8)),
        )
        return solvent(
            core,
            account,
            position,
            spec,
            second.qty_lots,
            second.cost_atoms,
            second.isolated_margin_atoms,
            first.wallet_atoms + second.wallet_atoms,
            min(first.released_atoms, second.released_atoms, 0),
        )

    if fits(want_lots):
        return want_lots
    low, high = 0, want_lots - 1
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


def trade(
    core: Core,
    taker: Order,
    maker: Order,
    book: OrderBook,
    spec: MarketSpec,
    qty: int,
    price: int,
    taker_rate_e8: int,
    maker_rate_e8: int,
) -> None:
    """Settle one trade of ``qty`` at the maker's ``price``: both orders, both positions, fees.

    A core-trade (STP ``NONE``) moves no price: it never sets the last-trade input of the mark.
    """
    self_trade = maker.account_id == taker.account_id
    if not self_trade and core.last_trade_ticks.get(maker.market) != price:
        core.last_trade_ticks[maker.market] = price
        core.price_moved(maker.market)
    trade_id = TradeId(core.next_trade_id)
    core.next_trade_id += 1
    maker.filled_lots += qty
    taker.filled_lots += qty
    maker_account = core.accounts[maker.account_id]
    maker_position = maker_account.positions[maker.market]
    if not maker.reduce_only:
        maker_position.add_exposure(maker, -qty, spec.contract_atoms)
    if maker.leaves_lots == 0:
        book.side(maker.side).remove(maker)
        core.forget_order(maker, maker_position)
    taker_account = core.accounts[taker.account_id]
    taker_position = taker_account.positions[taker.market]
    notional = formulas.notional_atoms(price, qty, spec.contract_atoms)
    core.emit(
        settle(
            core,
            taker_account,
            taker_position,
            taker,
            qty,
            price,
            notional,
            trade_id,
            False,
            taker_rate_e8,
            True,
            spec,
        )
    )
    core.emit(
        settle(
            core,
            maker_account,
            maker_position,
            maker,
            qty,
            price,
            notional,
            trade_id,
            True,
            maker_rate_e8,
            not self_trade,
            spec,
        )
    )
    core.touch(maker_position)
    # a fill may shrink a position below a resting reduce-only order of the same account
    core.trim_reduce_only(maker_position)
    if taker_position is not maker_position:
        core.trim_reduce_only(taker_position)


def settle(
    core: Core,
    account: Account,
    position: Position,
    order: Order,
    qty: int,
    price: int,
    notional: int,
    trade_id: TradeId,
    is_maker: bool,
    rate_e8: int,
    counts_volume: bool,
    spec: MarketSpec,
) -> OrderFilled:
    """One side of a trade: position, realised PnL, fee (from the isolated margin of an isolated
    position), fee account, 30-day volume (once per trade for a core-trade).

    A maker rebate is paid only as far as the fee account holds it: the fee account never
    goes below zero (it collected the taker's fee of the same trade first).

    An account with a known headroom (``Core.headroom_atoms``) has it moved by
    :func:`headroom_change_atoms`, or dropped by a fill of an isolated position.
    """
    asset = core.asset
    fee = formulas.fee_atoms(notional, rate_e8)
    if fee < 0:
        fee = -min(-fee, max(0, core.fees_atoms.get(asset, 0)))
    account_id = account.account_id
    core.risk_dirty[account_id] = None
    side = order.side
    headroom = core.headroom_atoms.get(account_id)
    if headroom is None:
        realized, oi_delta = apply_position_change(account, position, asset, side, qty, notional, fee)
    elif position.margin_mode is _ISOLATED:
        del core.headroom_atoms[account_id]
        realized, oi_delta = apply_position_change(account, position, asset, side, qty, notional, fee)
    else:
        qty_before = position.qty_lots
        cost_before = position.cost_atoms
        wallet_before = account.balances.get(asset, 0)
        realized, oi_delta = apply_position_change(account, position, asset, side, qty, notional, fee)
        core.headroom_atoms[account_id] = headroom + headroom_change_atoms(
            core, position, spec, qty_before, cost_before, account.balances.get(asset, 0) - wallet_before
        )
    if oi_delta:
        core.open_interest_lots[position.market] += oi_delta
    core.fees_atoms[asset] = core.fees_atoms.get(asset, 0) + fee
    if counts_volume:
        account.record_volume(core.now_ns, notional)
    return OrderFilled(
        ts_ns=core.now_ns,
        trade_id=trade_id,
        order_id=order.order_id,
        account_id=order.account_id,
        market=order.market,
        side=side,
        price_ticks=price,
        qty_lots=qty,
        leaves_lots=order.leaves_lots,
        is_maker=is_maker,
        fee_atoms=fee,
        realized_pnl_atoms=realized,
        position_lots=position.qty_lots,
    )


def headroom_change_atoms(
    core: Core, position: Position, spec: MarketSpec, qty_before: int, cost_before: int, wallet_delta: int
) -> int:
    """How far a cross fill may have moved its account's safety headroom: a lower bound, in atoms.

    The cross scope's slack (``liquidation/watch.py``) is ``(10**8 - 1) x margin balance - sum of
    maintenance bounds``. The fill changed the margin balance by exactly ``wallet_delta`` plus the
    change of the position's unrealised PnL at the mark (both are computed, not assumed). The
    position's maintenance bound (:func:`formulas.maintenance_bound_e8`) never falls with the
    notional and rises by at most ``max mmr`` per atom of it, plus ``10**8`` when the position
    opens from flat (a flat position has no bound; a position of any size at least ``10**8``). So
    the slack moved by at least ``(10**8 - 1) x (balance change - spend)`` with
    ``spend = ceil(bound rise / (10**8 - 1))``, and ``headroom + this`` is still a lower bound.
    """
    unit = formulas.mul(core.marks[position.market], spec.contract_atoms)
    qty = position.qty_lots
    balance_change = wallet_delta + formulas.mul(qty - qty_before, unit) - (position.cost_atoms - cost_before)
    grown = (qty if qty > 0 else -qty) - (qty_before if qty_before > 0 else -qty_before)
    if grown <= 0:
        return balance_change
    rise_e8 = formulas.mul(formulas.mul(grown, unit), spec.brackets[-1].mmr_e8)
    if qty_before == 0:
        rise_e8 += RATE_SCALE
    return balance_change - (rise_e8 + RATE_SCALE - 2) // (RATE_SCALE - 1)
