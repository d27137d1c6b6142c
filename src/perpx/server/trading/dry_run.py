"""``POST /fapi/v1/order/test``: check an order as ``/fapi/v1/order`` would, and place nothing.

Binance runs a test order through its checks without sending it to the matching engine and
answers ``{}``; a bad order gets the code the order route would answer, and that includes the
margin check: an order the account cannot afford is ``-2019`` (Margin is insufficient) on the test
route as on the order route. perpx checks, in this order, what it can check without placing:

1. the signature, key scope and the parameters, with the order route's own parser
   (:mod:`perpx.server.trading.new_order`: ``-1102``, ``-1116``, ``-1111``, ``-4014``, ``-4061``...);
   a conditional type is ``-4120``;
2. against the engine's state, read between batches: the market's mode, the order filters
   (quantity bounds, price bounds and bands, minimum notional, open-order count, a client id in
   use), then the risk checks of placement: a reduce-only order must face a position
   (``-2022``); otherwise the margin check (order margin plus open loss against the available
   balance, and the position cap at the leverage: ``-2019``, ``-2027``) and the open-interest
   cap, each with the code the engine's refusal would carry.

Not checked: what only the book at the moment of placing decides (a post-only order that would
take, a fill-or-kill that cannot fill, a MARKET order beyond the take bound, the bankruptcy
check), since the book may change before a real order arrives. Nothing is journaled or counted
against the account's order-rate limits; the request weighs 1 against the IP's budget.
``computeCommissionRates`` is not supported (ignored).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from perpx.engine import formulas
from perpx.engine.accounts import Position
from perpx.engine.codes import RejectCode
from perpx.engine.commands import ConditionalType, OrderType, PlaceOrder
from perpx.engine.engine import Engine
from perpx.engine.placing import margin_refusal, open_interest_refusal, order_filters
from perpx.engine.values import RATE_SCALE, Side
from perpx.server.trading.new_order import algo_type_refused, order_head, plain_command
from perpx.server.trading.params import auth, refusal, spec_of

router = APIRouter(tags=["trading (signed)"])


def engine_refusal_of(engine: Engine, command: PlaceOrder) -> tuple[RejectCode, str] | None:
    """The engine's first refusal of ``command`` by mode, filters, reduce-only, margin and open interest.

    Reads the state only: a market the account has no position in is checked against a fresh
    position at the market's default leverage, as placement would create, but nothing is stored.
    """
    account = engine.accounts.get(command.account_id)
    spec = engine.specs.get(command.market)
    if account is None:
        return RejectCode.UNKNOWN_ACCOUNT, f"account {command.account_id} does not exist"
    if spec is None:
        return RejectCode.BAD_SYMBOL, f"market {command.market} is not listed on this venue"
    refused = engine.mode_refusal(command.market, command.reduce_only)
    if refused is not None:
        return refused
    mark = engine.marks.get(command.market)
    if mark is None:
        return RejectCode.MARKET_CLOSED, f"market {command.market} has no mark price yet"
    refused = order_filters(engine, command, account, spec, mark)
    if refused is not None:
        return refused
    position = account.positions.get(command.market) or Position(
        account.account_id, command.market, spec.default_leverage
    )
    side = command.side
    if command.reduce_only:
        if position.qty_lots == 0 or (position.qty_lots > 0) == (side is Side.BUY):
            return RejectCode.REDUCE_ONLY_REJECTED, "a reduce-only order must be opposite to an open position"
        return None
    book_side = engine.books[command.market].opposite(side)
    if command.order_type is OrderType.MARKET:
        # as placement prices a MARKET order: at the take bound, its open loss at the best counter price
        bound = max(
            1,
            formulas.price_band_ticks(
                mark, RATE_SCALE + side * spec.market_take_bound_e8, round_up=side is Side.SELL
            ),
        )
        best = book_side.best_price()
        price, loss_price = bound, mark if best is None or (best - bound) * side > 0 else best
    else:
        assert command.price_ticks is not None
        price = loss_price = command.price_ticks
    refused, _room = margin_refusal(
        engine, account, position, spec, side, price, command.qty_lots, 0, 0, loss_price
    )
    if refused is not None:
        return refused
    return open_interest_refusal(engine, spec, position, side, command.qty_lots)


@router.post("/fapi/v1/order/test")
async def check_order(request: Request) -> dict[str, Any]:
    """Check a new order as ``POST /fapi/v1/order`` would (parameters, filters, margin), place nothing: ``{}``."""
    ctx, account_id, params = await auth(request, "trade")
    values = params.values
    spec = spec_of(ctx, values)
    side, kind, _respond = order_head(values)
    if kind in ConditionalType.__members__:
        raise algo_type_refused(kind)
    command = plain_command(spec, account_id, side, kind, values)
    found = await ctx.seq.query(lambda engine: engine_refusal_of(engine, command))
    if found is not None:
        raise refusal(*found)
    return {}
