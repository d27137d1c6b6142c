"""Placing an order: validate, risk, accept, then match (``mechanics.md`` 15, 12, 29).

The stages of ``docs/architecture.md`` section 2, in the order the code runs them. The first
refusal wins and produces one ``OrderRejected``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from perpx.engine import formulas
from perpx.engine.accounts import (
    Account,
    Position,
    position_change,
)
from perpx.engine.book import Order, OrderBook
from perpx.engine.codes import RejectCode
from perpx.engine.commands import (
    MarginMode,
    OrderType,
    PlaceOrder,
    StpMode,
    TimeInForce,
)
from perpx.engine.config import (
    MarketSpec,
)
from perpx.engine.events import (
    OrderAccepted,
)
from perpx.engine.margin import (
    cross_available_atoms,
)
from perpx.engine.matching import execute, solvent, solvent_after
from perpx.engine.values import (
    RATE_SCALE,
    AccountId,
    MarketId,
    OrderId,
    Side,
    format_units,
)

if TYPE_CHECKING:
    from perpx.engine.core import Core

# Enum members as module constants: one global read each (mypyc: C constants), not an enum lookup.
_BUY: Final = Side.BUY
_SELL: Final = Side.SELL
_ISOLATED: Final = MarginMode.ISOLATED
_CROSS: Final = MarginMode.CROSS
_MARKET: Final = OrderType.MARKET
_GTX: Final = TimeInForce.GTX
_FOK: Final = TimeInForce.FOK
_STP_NONE: Final = StpMode.NONE
_EXPIRE_MAKER: Final = StpMode.EXPIRE_MAKER


def price_filter(
    core: Core, spec: MarketSpec, side: Side, price_ticks: int, mark: int
) -> tuple[RejectCode, str] | None:
    if price_ticks <= 0:
        return RejectCode.PRICE_NOT_POSITIVE, "price must be greater than zero"
    if price_ticks % spec.tick_step_ticks:
        return (
            RejectCode.PRICE_NOT_TICK,
            f"Price not increased by tick size: the price must be a multiple of {spec.filter_tick_size:f}",
        )
    if price_ticks < spec.min_price_ticks:
        return (
            RejectCode.PRICE_BELOW_MIN,
            f"price is below the minimum of {core.price_text(spec, spec.min_price_ticks)}",
        )
    if price_ticks > spec.max_price_ticks:
        return (
            RejectCode.PRICE_ABOVE_MAX,
            f"price is above the maximum of {core.price_text(spec, spec.max_price_ticks)}",
        )
    if side is _BUY:
        ceiling = formulas.price_band_ticks(mark, spec.percent_price_up_e8, round_up=False)
        if price_ticks > ceiling:
            return (
                RejectCode.PERCENT_PRICE,
                f"a buy price can't be higher than {core.price_text(spec, ceiling)} (mark x percent_price_up)",
            )
    else:
        floor = formulas.price_band_ticks(mark, spec.percent_price_down_e8, round_up=True)
        if price_ticks < floor:
            return (
                RejectCode.PERCENT_PRICE,
                f"a sell price can't be lower than {core.price_text(spec, floor)} (mark x percent_price_down)",
            )
    return None


def place(core: Core, cmd: PlaceOrder) -> None:
    # the command's fields, read once (compiled: each read of a command field is a generic attribute lookup)
    market = cmd.market
    side = cmd.side
    tif = cmd.tif
    reduce_only = cmd.reduce_only
    order_type = cmd.order_type
    ordered_lots = cmd.qty_lots
    # 1. validate
    found = core.lookup(cmd)
    if found is None:
        return
    account, spec = found
    refusal = core.mode_refusal(market, reduce_only)
    if refusal is not None:
        core.reject_order(cmd, *refusal)
        return
    mark = core.marks.get(market)
    if mark is None:
        core.reject_order(cmd, RejectCode.MARKET_CLOSED, f"market {market} has no mark price yet")
        return
    refusal = order_filters(core, cmd, account, spec, mark)
    if refusal is not None:
        core.reject_order(cmd, *refusal)
        return
    position = core.position_record(account, market)
    is_market = order_type is _MARKET
    if is_market:
        bound = formulas.price_band_ticks(
            mark, RATE_SCALE + side * spec.market_take_bound_e8, round_up=side is _SELL
        )
        price_ticks = max(bound, 1)
    else:
        limit_ticks = cmd.price_ticks
        assert limit_ticks is not None
        price_ticks = limit_ticks
    qty_lots = ordered_lots
    is_covered = False

    # 2. risk
    if reduce_only:
        if position.qty_lots == 0 or (position.qty_lots > 0) == (side is _BUY):
            core.reject_order(
                cmd,
                RejectCode.REDUCE_ONLY_REJECTED,
                "a reduce-only order must be opposite to an open position",
            )
            return
        qty_lots = min(qty_lots, abs(position.qty_lots))
    else:
        loss_price = price_ticks
        if is_market:
            best = core.books[market].opposite(side).best_price()
            loss_price = mark if best is None or (best - price_ticks) * side > 0 else best
        refusal, room = margin_refusal(
            core, account, position, spec, side, price_ticks, qty_lots, 0, 0, loss_price
        )
        if refusal is None:
            refusal = open_interest_refusal(core, spec, position, side, qty_lots)
        if refusal is not None:
            core.reject_order(cmd, *refusal)
            return
        if room is not None and not is_market and position.margin_mode is _CROSS:
            # the cross margin balance is at least the available balance the margin check computed
            # (room + what the order needs); when that covers the order's worst loss against the
            # mark with the dearest fee rate, the bankruptcy check below has nothing to find
            contract = spec.contract_atoms
            notional = formulas.mul(price_ticks * qty_lots, contract)
            gain = formulas.mul(qty_lots * mark, contract) - notional
            worst = (gain if side is _BUY else -gain) - formulas.ceil_div(
                formulas.mul(notional, core.max_fee_rate_e8), RATE_SCALE
            )
            if room >= 0 and room + worst >= 0:
                is_covered = True
    if not is_market and not is_covered:
        refusal = bankruptcy_refusal(core, account, position, spec, side, price_ticks, qty_lots, tif)
        if refusal is not None:
            core.reject_order(cmd, *refusal)
            return
    book = core.books[market]
    if is_market:
        best = book.opposite(side).best_price()
        if best is not None and (best - price_ticks) * side > 0:
            core.reject_order(
                cmd,
                RejectCode.MARKET_TAKE_BOUND,
                f"the best counter price {core.price_text(spec, best)} is beyond the market take bound"
                f" {core.price_text(spec, price_ticks)} (mark +/- market_take_bound); nothing can fill",
            )
            return
    if tif is _GTX and not is_market:
        best = book.opposite(side).best_price()
        if best is not None and (best - price_ticks) * side <= 0:
            core.reject_order(
                cmd,
                RejectCode.POST_ONLY_WOULD_TAKE,
                "the post-only order would trade at once, so it was rejected",
            )
            return
    if tif is _FOK and fillable_lots(core, book, cmd, price_ticks, qty_lots) < qty_lots:
        core.reject_order(
            cmd, RejectCode.FOK_NOT_FILLABLE, "the fill-or-kill order could not be filled in full at once"
        )
        return

    # 3. accept
    order = Order(
        OrderId(core.next_order_id),
        cmd.account_id,
        market,
        side,
        order_type,
        tif,
        price_ticks,
        ordered_lots,
        reduce_only,
        cmd.client_order_id,
        cmd.stp,
        core.now_ns,
    )
    core.next_order_id += 1
    core.emit(
        OrderAccepted(
            ts_ns=core.now_ns,
            order_id=order.order_id,
            account_id=order.account_id,
            market=order.market,
            side=order.side,
            order_type=order.order_type,
            tif=order.tif,
            price_ticks=None if is_market else price_ticks,
            qty_lots=order.qty_lots,
            reduce_only=order.reduce_only,
            client_order_id=order.client_order_id,
            stp=order.stp,
        )
    )
    if qty_lots < order.qty_lots:
        core.trim(order, qty_lots, "REDUCE_ONLY_TRIM")

    # 4. match, settling each trade; 5. rest or expire; 6. post-trade
    execute(core, order, book, spec, position)


def open_interest_refusal(
    core: Core, spec: MarketSpec, position: Position, side: Side, qty_lots: int
) -> tuple[RejectCode, str] | None:
    """Refuse an order whose opening part could lift open interest over the market's cap."""
    cap = spec.risk.max_open_interest_lots
    if cap is None:
        return None
    held = position.qty_lots
    closing = min(
        qty_lots,
        -held if side is _BUY and held < 0 else held if side is _SELL and held > 0 else 0,
    )
    opening = qty_lots - closing
    current = core.open_interest_lots[spec.market]
    if opening and current + opening > cap:
        return (
            RejectCode.OPEN_INTEREST_CAP,
            f"open interest in {spec.market} is {format_units(current, spec.lot_size)} of a cap of"
            f" {format_units(cap, spec.lot_size)}; this order could open {format_units(opening, spec.lot_size)} more",
        )
    return None


def closes_remainder(account: Account, cmd: PlaceOrder) -> bool:
    """Is ``cmd`` a reduce-only order for exactly the whole position (exempt from the step filter)?

    A position opened before the lot filter was made coarser may be off the new step; closing it
    whole is always allowed, so no holder is left with a remainder no order can close.
    """
    if not cmd.reduce_only:
        return False
    position = account.positions.get(cmd.market)
    return position is not None and cmd.qty_lots == abs(position.qty_lots)


def order_filters(
    core: Core, cmd: PlaceOrder, account: Account, spec: MarketSpec, mark: int
) -> tuple[RejectCode, str] | None:
    qty = cmd.qty_lots
    is_market = cmd.order_type is _MARKET
    price_ticks = cmd.price_ticks
    client_order_id = cmd.client_order_id
    if qty <= 0:
        return RejectCode.QTY_NOT_POSITIVE, "quantity must be greater than zero"
    if qty % spec.lot_step_lots and not closes_remainder(account, cmd):
        return (
            RejectCode.QTY_NOT_STEP,
            f"Quantity not increased by step size: the quantity must be a multiple of {spec.filter_lot_size:f}"
            " (or, reduce-only, the whole position)",
        )
    if qty < spec.min_qty_lots:
        return (
            RejectCode.PRICE_FILTER,
            f"Filter failure: LOT_SIZE (quantity below min_qty {spec.min_qty_lots} lots)",
        )
    limit = spec.market_max_qty_lots if is_market else spec.max_qty_lots
    if qty > limit:
        kind = "market_max_qty" if is_market else "max_qty"
        return RejectCode.QTY_ABOVE_MAX, f"quantity is greater than {kind} ({limit} lots)"
    if is_market:
        if price_ticks is not None:
            return RejectCode.BAD_PARAMETER, "a MARKET order takes no price"
        if cmd.tif is _GTX:
            return RejectCode.BAD_PARAMETER, "a MARKET order cannot be post-only"
        reference = mark
    else:
        if price_ticks is None:
            return RejectCode.BAD_PARAMETER, "a LIMIT order needs a price"
        refusal = price_filter(core, spec, cmd.side, price_ticks, mark)
        if refusal is not None:
            return refusal
        reference = price_ticks
    if not cmd.reduce_only:
        notional = formulas.notional_atoms(reference, qty, spec.contract_atoms)
        if notional < spec.min_notional_atoms:
            return (
                RejectCode.MIN_NOTIONAL,
                f"Order's notional must be no smaller than {core.money(spec.min_notional_atoms)}"
                " (unless you choose reduce only)",
            )
    position = account.positions.get(cmd.market)
    if position is not None and len(position.open_orders) >= spec.max_open_orders:
        return (
            RejectCode.MAX_OPEN_ORDERS,
            f"reached the limit of {spec.max_open_orders} open orders in this market",
        )
    if client_order_id is not None:
        if not client_order_id or len(client_order_id) > 36:
            return RejectCode.BAD_PARAMETER, "client order id must be 1 to 36 characters"
        if client_order_id in account.client_orders:
            return (
                RejectCode.DUPLICATE_CLIENT_ORDER_ID,
                f"client order id {client_order_id} is already used by an open order",
            )
    return None


def margin_refusal(
    core: Core,
    account: Account,
    position: Position,
    spec: MarketSpec,
    side: Side,
    price_ticks: int,
    add_lots: int,
    removed_lots: int,
    removed_price_ticks: int = 0,
    loss_price_ticks: int | None = None,
) -> tuple[tuple[RejectCode, str] | None, int | None]:
    """Check the cost of ``position`` if ``add_lots`` at ``price_ticks`` were added.

    Returns the refusal, if any, and what the cross available balance has left after the order
    when it had to be computed (``None`` otherwise): the bankruptcy check needs no more when that
    covers the order's worst loss against the mark.

    ``removed_lots`` at ``removed_price_ticks`` leave the same side first (an amend). The cost
    is the increase of the position's order margin plus the order's *open loss* (Binance):
    the part of ``add_lots`` that opens exposure, times how far ``loss_price_ticks`` (the limit
    price; for a MARKET order the best counter price) is worse than the mark
    (``formulas.open_loss_atoms``, ``mechanics.md`` 12.3).
    """
    contract = spec.contract_atoms
    sign = 1 if side is _BUY else -1
    before = position.order_margin_atoms
    mark = core.marks[spec.market]
    after, worst_notional = position.margin_after(
        side,
        add_lots - removed_lots,
        formulas.mul(price_ticks * add_lots - removed_price_ticks * removed_lots, contract),
        mark,
        contract,
    )
    cap = spec.max_notional_at_leverage(position.leverage)
    if worst_notional > cap:
        return (
            RejectCode.MAX_POSITION_AT_LEVERAGE,
            f"position and open orders would reach {core.money(worst_notional)} of notional;"
            f" the maximum at {position.leverage}x is {core.money(cap)}",
        ), None
    held = position.qty_lots
    closing = min(add_lots, -held if sign > 0 and held < 0 else held if sign < 0 and held > 0 else 0)
    open_loss = formulas.open_loss_atoms(
        side,
        add_lots - closing,
        price_ticks if loss_price_ticks is None else loss_price_ticks,
        mark,
        contract,
    )
    needed = after - before + open_loss
    if needed > 0:
        available = cross_available_atoms(account, core.asset, core.specs, core.marks, core.indexes)
        stale = core.multi_assets.stale_shortfall_atoms(account) if account.collateral_atoms else 0
        if stale and available >= needed > available - stale:
            return (
                RejectCode.COLLATERAL_STALE_FOR_RISK,
                f"Margin is insufficient while the {', '.join(core.multi_assets.stale_held(account))} index is"
                f" stale: that collateral ({core.money(stale)}) counts at zero for new orders until it is fresh",
            ), None
        available -= stale
        if needed > available:
            loss = f" (with {core.money(open_loss)} of open loss against the mark)" if open_loss else ""
            return (
                RejectCode.MARGIN_INSUFFICIENT,
                f"Margin is insufficient: the order needs {core.money(needed)}{loss},"
                f" {core.money(max(available, 0))} is available",
            ), None
        return None, available - needed
    return None, None


def fillable_lots(core: Core, book: OrderBook, cmd: PlaceOrder, limit_ticks: int, want_lots: int) -> int:
    """Lots the order could take at once, honouring its limit, core-trade prevention and the fill guard.

    The sweep is followed as matching would run it: a resting reduce-only order shrinks or
    expires as the fills before it shrink its owner's position, a maker the fill guard would
    expire is passed over, and the taker stops where the guard would stop it (section 29 of
    ``mechanics.md``). Positions are followed through the sweep with the same pure
    :func:`~perpx.engine.accounts.position_change` the fills apply; fee rates are those before
    the sweep (a tier reached inside it lowers later fees, never raises them).
    """
    total = 0
    spec = core.specs[cmd.market]
    contract = spec.contract_atoms
    taker_account = core.accounts[cmd.account_id]
    taker_rate = core.fee_rates(taker_account).taker_e8
    sim: dict[AccountId, _Swept] = {}  # positions as the sweep so far would leave them
    for maker in book.opposite(cmd.side).orders():
        if (maker.price_ticks - limit_ticks) * cmd.side > 0:
            break
        if maker.account_id == cmd.account_id and cmd.stp is not _STP_NONE:
            if cmd.stp is _EXPIRE_MAKER:
                continue
            break
        maker_state = swept(core, sim, maker.account_id, cmd.market)
        take = min(maker.leaves_lots, want_lots - total)
        if maker.reduce_only:
            take = min(take, max(-maker.side * maker_state.qty_lots, 0))
        if not take:
            continue
        notional = formulas.notional_atoms(maker.price_ticks, take, contract)
        maker_account = core.accounts[maker.account_id]
        maker_fee = max(0, formulas.fee_atoms(notional, core.fee_rates(maker_account).maker_e8))
        maker_after = maker_state.then(maker.side, take, notional, maker_fee)
        if maker.account_id != cmd.account_id:
            if not swept_solvent(core, maker_account, cmd.market, spec, maker_after):
                continue  # matching would expire this maker and go on
            taker_state = swept(core, sim, cmd.account_id, cmd.market)
        else:
            taker_state = maker_after  # a core-trade: both legs on the one position
        taker_fee = max(0, formulas.fee_atoms(notional, taker_rate))
        taker_after = taker_state.then(cmd.side, take, notional, taker_fee)
        if not swept_solvent(core, taker_account, cmd.market, spec, taker_after):
            break  # matching would stop the taker at this level
        sim[maker.account_id] = maker_after
        sim[cmd.account_id] = taker_after
        total += take
        if total >= want_lots:
            break
    return total


def swept(core: Core, sim: dict[AccountId, _Swept], account_id: AccountId, market: MarketId) -> _Swept:
    state = sim.get(account_id)
    if state is None:
        state = _Swept.of(core.position_record(core.accounts[account_id], market))
    return state


def swept_solvent(core: Core, account: Account, market: MarketId, spec: MarketSpec, state: _Swept) -> bool:
    position = core.position_record(account, market)
    return solvent(
        core,
        account,
        position,
        spec,
        state.qty_lots,
        state.cost_atoms,
        state.isolated_margin_atoms,
        state.wallet_atoms,
        state.released_atoms,
    )


def bankruptcy_refusal(
    core: Core,
    account: Account,
    position: Position,
    spec: MarketSpec,
    side: Side,
    price_ticks: int,
    lots: int,
    tif: TimeInForce,
) -> tuple[RejectCode, str] | None:
    """Refuse a limit price beyond the owner's bankruptcy price for ``lots`` (placement and amendment).

    The fee counted is the taker's (a post-only order's: the maker's), the one a fill at once pays.
    """
    contract = spec.contract_atoms
    rates = core.fee_rates(account)
    fee_rate_e8 = rates.maker_e8 if tif is _GTX else rates.taker_e8
    notional = formulas.notional_atoms(price_ticks, lots, contract)
    fee = formulas.fee_atoms(notional, fee_rate_e8)
    if solvent_after(core, account, position, spec, side, lots, notional, fee if fee > 0 else 0):
        return None  # the usual case: no bisection, no closure

    def fits(ticks: int) -> bool:
        notional = formulas.notional_atoms(ticks, lots, contract)
        fee = max(0, formulas.fee_atoms(notional, fee_rate_e8))
        return solvent_after(core, account, position, spec, side, lots, notional, fee)

    # the worst price that still keeps the owner solvent: buying, the highest; selling, the lowest
    if side is _BUY:
        low, high = spec.min_price_ticks - 1, price_ticks - 1
        while low < high:
            middle = (low + high + 1) // 2
            if fits(middle):
                low = middle
            else:
                high = middle - 1
        found = low >= spec.min_price_ticks
    else:
        low, high = price_ticks + 1, spec.max_price_ticks + 1
        while low < high:
            middle = (low + high) // 2
            if fits(middle):
                high = middle
            else:
                low = middle + 1
        found = low <= spec.max_price_ticks
        high = low
    scope = "isolated position" if position.is_isolated else "account"
    where = (
        f"the bankruptcy price for {format_units(lots, spec.lot_size)} is {core.price_text(spec, low if side is _BUY else high)}"
        if found
        else f"no price keeps the {scope} solvent for {format_units(lots, spec.lot_size)}"
    )
    return (
        RejectCode.BEYOND_BANKRUPTCY,
        f"filling this order at {core.price_text(spec, price_ticks)} would take the {scope}'s margin balance"
        f" below zero; {where}: use a better price or a smaller quantity",
    )


class _Swept:
    """A position as a sweep being planned would leave it (FOK): figures, cross-wallet change, worst release."""

    __slots__ = (
        "cost_atoms",
        "isolated",
        "isolated_margin_atoms",
        "leverage",
        "qty_lots",
        "released_atoms",
        "wallet_atoms",
    )

    def __init__(
        self,
        qty_lots: int,
        cost_atoms: int,
        isolated_margin_atoms: int,
        isolated: bool,
        leverage: int,
        wallet_atoms: int,
        released_atoms: int,
    ) -> None:
        self.qty_lots = qty_lots
        self.cost_atoms = cost_atoms
        self.isolated_margin_atoms = isolated_margin_atoms
        self.isolated = isolated
        self.leverage = leverage
        self.wallet_atoms = wallet_atoms
        self.released_atoms = released_atoms

    @staticmethod
    def of(position: Position) -> _Swept:
        return _Swept(
            position.qty_lots,
            position.cost_atoms,
            position.isolated_margin_atoms,
            position.margin_mode is _ISOLATED,
            position.leverage,
            0,
            0,
        )

    def then(self, side: Side, lots: int, value_atoms: int, fee_atoms: int) -> _Swept:
        """The state after one more fill, as :func:`~perpx.engine.accounts.position_change` computes it."""
        change = position_change(
            self.qty_lots,
            self.cost_atoms,
            self.isolated_margin_atoms,
            self.isolated,
            self.leverage,
            side,
            lots,
            value_atoms,
            fee_atoms,
        )
        return _Swept(
            change.qty_lots,
            change.cost_atoms,
            change.isolated_margin_atoms,
            self.isolated,
            self.leverage,
            self.wallet_atoms + change.wallet_atoms,
            min(self.released_atoms, change.released_atoms),
        )
