"""``POST /fapi/v1/order/test``: check an order as ``/fapi/v1/order`` would, and place nothing.

Binance validates the parameters and the signature and answers ``{}``; a bad order gets the code
the order route would answer. perpx checks, in this order, what it can check without placing:

1. the signature, key scope and the parameters (the same parsers as the order route: ``-1102``,
   ``-1116``, ``-1111``, ``-4014``, ``-4023``, ``-4061``...); a conditional type is ``-4120``;
2. the market's order filters against the engine's state, read between batches (quantity bounds,
   price bounds and bands, minimum notional, open-order count, a client id in use), with the
   codes the engine's refusal would carry.

Margin is not checked, and nothing is journaled or counted against the account's order-rate limits;
the request weighs 1 against the IP's budget. ``computeCommissionRates`` is not supported (ignored).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request

from perpx.engine.codes import RejectCode
from perpx.engine.commands import ConditionalType, OrderType, PlaceOrder, TimeInForce
from perpx.engine.config import MarketSpec
from perpx.engine.engine import Engine
from perpx.engine.placing import order_filters
from perpx.engine.values import AccountId, ClientOrderId
from perpx.server import wire
from perpx.server.errors import ApiError, mandatory
from perpx.server.trading.params import (
    auth,
    client_id_of,
    lots,
    one_way,
    order_type_of,
    refusal,
    side_of,
    spec_of,
    stp_of,
    ticks,
    tif_of,
    unsupported,
)

router = APIRouter(tags=["trading (signed)"])


def algo_type_refused(kind: str) -> ApiError:
    """Binance's answer to a conditional type on the order route (``-4120``)."""
    return ApiError(
        400,
        -4120,
        f"Order type not supported for this endpoint. Please use the Algo Order API endpoints instead:"
        f" send {kind} to POST /fapi/v1/algoOrder (algoType=CONDITIONAL, triggerPrice).",
    )


def checked_command(spec: MarketSpec, values: Mapping[str, str], account_id: AccountId) -> PlaceOrder:
    """The ``PlaceOrder`` the order route would submit for these parameters (``ts_ns`` 0).

    Raises the order route's :class:`ApiError` for a parameter it would refuse.
    """
    side = side_of(values)
    kind = order_type_of(values)
    if kind in ConditionalType.__members__:
        raise algo_type_refused(kind)
    one_way(values)
    unsupported(values)
    wire.enum_param(values, "newOrderRespType", ("ACK", "RESULT"), "ACK")
    client_id = client_id_of(values, "newClientOrderId")
    order_type = OrderType(kind)
    qty = lots(spec, values, "quantity")
    if qty is None:
        raise mandatory("quantity")
    price = ticks(spec, values, "price")
    tif = tif_of(values)
    if order_type is OrderType.LIMIT and price is None:
        raise mandatory("price")
    if order_type is OrderType.MARKET:
        if price is not None:
            raise ApiError(400, -1106, "Parameter 'price' sent when not required.")
        if values.get("timeInForce") == "GTX":
            raise ApiError(400, -1116, "Invalid timeInForce: a MARKET order cannot be post-only (GTX).")
        tif = TimeInForce.GTC
    return PlaceOrder(
        ts_ns=0,
        account_id=account_id,
        market=spec.market,
        side=side,
        order_type=order_type,
        qty_lots=qty,
        price_ticks=price,
        tif=tif,
        reduce_only=wire.bool_param(values, "reduceOnly"),
        client_order_id=None if client_id is None else ClientOrderId(client_id),
        stp=stp_of(values),
    )


def filter_refusal(engine: Engine, command: PlaceOrder) -> tuple[RejectCode, str] | None:
    """The engine's first refusal of ``command`` by mode and order filters, or ``None`` (no state change)."""
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
    return order_filters(engine, command, account, spec, mark)


@router.post("/fapi/v1/order/test")
async def check_order(request: Request) -> dict[str, Any]:
    """Check a new order as ``POST /fapi/v1/order`` would (parameters, filters), place nothing: ``{}``."""
    ctx, account_id, params = await auth(request, "trade")
    values = params.values
    command = checked_command(spec_of(ctx, values), values, account_id)
    found = await ctx.seq.query(lambda engine: filter_refusal(engine, command))
    if found is not None:
        raise refusal(*found)
    return {}
