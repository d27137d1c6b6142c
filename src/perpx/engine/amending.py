"""Cancelling and amending resting orders (Binance modify-order semantics)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from perpx.engine.codes import RejectCode
from perpx.engine.commands import (
    AmendOrder,
    CancelAllOrders,
    CancelOrder,
    TimeInForce,
)
from perpx.engine.events import (
    OrderAmended,
)
from perpx.engine.matching import execute
from perpx.engine.placing import bankruptcy_refusal, margin_refusal, price_filter

if TYPE_CHECKING:
    from perpx.engine.core import Core

# Enum members as module constants: one global read each (mypyc: C constants), not an enum lookup.
_GTX: Final = TimeInForce.GTX


def cancel(core: Core, cmd: CancelOrder) -> None:
    found = core.lookup(cmd)
    if found is None:
        return
    account, _spec = found
    order_id = cmd.order_id
    client_order_id = cmd.client_order_id
    if order_id is None and client_order_id is None:
        core.reject_command(
            cmd, cmd.account_id, RejectCode.BAD_PARAMETER, "give an order id or a client order id"
        )
        return
    order = core.find_order(account, cmd.market, order_id, client_order_id)
    if order is None:
        core.reject_command(
            cmd,
            cmd.account_id,
            RejectCode.UNKNOWN_ORDER,
            "Unknown order sent: no such open order in this market",
        )
        return
    core.cancel_order(order)
    core.post_trade()


def cancel_all(core: Core, cmd: CancelAllOrders) -> None:
    found = core.lookup(cmd)
    if found is None:
        return
    account, _spec = found
    position = account.positions.get(cmd.market)
    if position is None:
        return
    for _, order in sorted(position.open_orders.items()):
        core.cancel_order(order)
    core.post_trade()


def amend(core: Core, cmd: AmendOrder) -> None:
    found = core.lookup(cmd)
    if found is None:
        return
    account, spec = found
    order_for_mode = core.find_order(account, cmd.market, cmd.order_id, cmd.client_order_id)
    refusal = core.mode_refusal(cmd.market, order_for_mode is not None and order_for_mode.reduce_only)
    if refusal is not None:
        core.reject_order(cmd, refusal[0], refusal[1], cmd.order_id)
        return
    order = core.find_order(account, cmd.market, cmd.order_id, cmd.client_order_id)
    if order is None:
        core.reject_order(
            cmd, RejectCode.ORDER_NOT_FOUND, "Order does not exist: no such open order", cmd.order_id
        )
        return
    mark = core.marks[cmd.market]
    new_price = cmd.price_ticks
    new_qty = cmd.qty_lots
    position = account.positions[cmd.market]
    if order.reduce_only:
        # as at placement: a reduce-only order never exceeds the position it closes
        new_qty = min(new_qty, order.filled_lots + abs(position.qty_lots))
    if new_price == order.price_ticks and new_qty == order.qty_lots:
        core.reject_order(
            cmd, RejectCode.AMEND_NOTHING, "No need to modify the order: nothing changed", order.order_id
        )
        return
    refusal = price_filter(core, spec, order.side, new_price, mark)
    if refusal is None:
        if new_qty <= order.filled_lots:
            refusal = (
                RejectCode.AMEND_BELOW_FILLED,
                f"new quantity must exceed the {order.filled_lots} lots already filled",
            )
        elif new_qty % spec.lot_step_lots and not order.reduce_only:
            refusal = (
                RejectCode.QTY_NOT_STEP,
                f"Quantity not increased by step size: the quantity must be a multiple of {spec.filter_lot_size:f}",
            )
        elif new_qty > spec.max_qty_lots:
            refusal = (
                RejectCode.QTY_ABOVE_MAX,
                f"quantity is greater than max_qty ({spec.max_qty_lots} lots)",
            )
        elif new_qty < spec.min_qty_lots:
            refusal = RejectCode.PRICE_FILTER, "Filter failure: LOT_SIZE (quantity below min_qty)"
        elif not order.reduce_only and new_price * new_qty * spec.contract_atoms < spec.min_notional_atoms:
            refusal = (
                RejectCode.MIN_NOTIONAL,
                f"Order's notional must be no smaller than {core.money(spec.min_notional_atoms)}",
            )
    book = core.books[cmd.market]
    crosses = False
    if refusal is None:
        best = book.opposite(order.side).best_price()
        crosses = best is not None and (best - new_price) * order.side <= 0
        if crosses and order.tif is _GTX:
            refusal = RejectCode.POST_ONLY_WOULD_TAKE, "the amended post-only order would trade at once"
    new_leaves = new_qty - order.filled_lots
    if refusal is None and not order.reduce_only:
        refusal, _room = margin_refusal(
            core,
            account,
            position,
            spec,
            order.side,
            new_price,
            new_leaves,
            order.leaves_lots,
            order.price_ticks,
        )
    if refusal is None:
        refusal = bankruptcy_refusal(
            core, account, position, spec, order.side, new_price, new_leaves, order.tif
        )
    if refusal is not None:
        core.reject_order(cmd, refusal[0], refusal[1], order.order_id)
        return
    keep_priority = new_price == order.price_ticks and new_qty < order.qty_lots
    if keep_priority:
        if not order.reduce_only:
            position.add_exposure(order, new_qty - order.qty_lots, spec.contract_atoms)
        order.qty_lots = new_qty
    else:
        core.unbook(order, book)
        order.price_ticks = new_price
        order.qty_lots = new_qty
    core.emit(
        OrderAmended(
            ts_ns=core.now_ns,
            order_id=order.order_id,
            account_id=order.account_id,
            market=order.market,
            price_ticks=new_price,
            qty_lots=new_qty,
            leaves_lots=order.leaves_lots,
            priority_kept=keep_priority,
            reason="CLIENT",
        )
    )
    core.touch(position)
    if keep_priority:
        core.trim_reduce_only(position)
        core.post_trade()
        return
    if crosses:
        execute(core, order, book, spec, position)
    else:
        core.book_order(order, book)
        core.trim_reduce_only(position)
        core.post_trade()
