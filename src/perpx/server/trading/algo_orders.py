"""Conditional (algo) orders: ``/fapi/v1/algoOrder`` and friends, and their engine command."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from fastapi import APIRouter, Request

from perpx.engine.commands import (
    CancelAllConditionalOrders,
    CancelConditionalOrder,
    ConditionalType,
    PlaceConditionalOrder,
)
from perpx.engine.config import MarketSpec
from perpx.engine.events import ConditionalOrderAccepted, ConditionalOrderCanceled
from perpx.engine.values import AccountId, AlgoId, ClientAlgoId, MarketId, Side
from perpx.server import wire
from perpx.server.context import ServerContext
from perpx.server.errors import ApiError, bad_param, unknown_order
from perpx.server.orders_wire import AlgoRecord, algo_json
from perpx.server.readmodel import algo_record
from perpx.server.rest import count_orders
from perpx.server.trading.params import (
    CANCEL_ALL_DONE,
    answer,
    auth,
    callback_rate_e8,
    client_id_of,
    lots,
    one_way,
    optional_symbol,
    readmodel_of,
    refused,
    row_limit,
    side_of,
    spec_of,
    stp_of,
    ticks,
    tif_of,
    unknown_order_sent,
    unsupported,
    working_type_of,
)

router = APIRouter(tags=["trading (signed)"])


def conditional_command(
    spec: MarketSpec,
    account_id: AccountId,
    side: Side,
    kind: ConditionalType,
    values: Mapping[str, str],
    trigger_name: str,
) -> PlaceConditionalOrder:
    """A conditional order's command (its ``ts_ns`` is replaced when the sequencer stamps it)."""
    client_name = "clientAlgoId" if trigger_name == "triggerPrice" else "newClientOrderId"
    activation_name = "activatePrice" if trigger_name == "triggerPrice" else "activationPrice"
    client_id = client_id_of(values, client_name)
    tif = tif_of(values)
    return PlaceConditionalOrder(
        ts_ns=0,
        account_id=account_id,
        market=spec.market,
        side=side,
        order_type=kind,
        qty_lots=lots(spec, values, "quantity"),
        trigger_price_ticks=ticks(spec, values, trigger_name),
        price_ticks=ticks(spec, values, "price"),
        tif=tif,
        working_type=working_type_of(values),
        reduce_only=wire.bool_param(values, "reduceOnly"),
        close_position=wire.bool_param(values, "closePosition"),
        price_protect=wire.bool_param(values, "priceProtect"),
        activation_price_ticks=ticks(spec, values, activation_name),
        callback_rate_e8=callback_rate_e8(values),
        client_algo_id=None if client_id is None else ClientAlgoId(client_id),
        stp=stp_of(values),
    )


async def submit_conditional(ctx: ServerContext, command: PlaceConditionalOrder) -> AlgoRecord:
    """Place ``command`` (stamped with the sequencer's time) and answer the conditional order it
    created, from its acceptance event."""
    applied = await ctx.seq.submit(lambda ts: msgspec.structs.replace(command, ts_ns=ts))
    return algo_record(answer(applied, ConditionalOrderAccepted, "conditional order"))


# ---------------------------------------------------------------------- routes


@router.post("/fapi/v1/algoOrder")
async def new_algo_order(request: Request) -> dict[str, Any]:
    """Place a conditional order (``algoType=CONDITIONAL``): STOP, STOP_MARKET, TAKE_PROFIT,
    TAKE_PROFIT_MARKET or TRAILING_STOP_MARKET, with ``triggerPrice`` (trailing: ``callbackRate``
    percent and optional ``activatePrice``)."""
    ctx, account_id, params = await auth(request, "trade")
    values = params.values
    algo_type = values.get("algoType") or "CONDITIONAL"
    if algo_type != "CONDITIONAL":
        raise bad_param("algoType", f"{algo_type!r} is not supported; perpx has CONDITIONAL algo orders only")
    count_orders(request, account_id, 1)
    spec = spec_of(ctx, values)
    side = side_of(values)
    kind = wire.required(values, "type")
    if kind not in ConditionalType.__members__:
        raise ApiError(400, -1116, f"Invalid orderType {kind!r} for a conditional order.")
    one_way(values)
    unsupported(values)
    command = conditional_command(spec, account_id, side, ConditionalType(kind), values, "triggerPrice")
    record = await submit_conditional(ctx, command)
    return algo_json(record, spec)


def _algo_ref(values: Mapping[str, str]) -> tuple[int | None, str | None]:
    algo_id = wire.id_param(values, "algoId")
    client_id = values.get("clientAlgoId") or None
    if algo_id is None and client_id is None:
        raise ApiError(400, -1102, "Param 'algoId' or 'clientAlgoId' must be sent, but both were empty/null!")
    return algo_id, client_id


@router.get("/fapi/v1/algoOrder")
async def query_algo_order(request: Request) -> dict[str, Any]:
    """A conditional order (any status) by ``algoId`` or ``clientAlgoId``; unknown is ``-2013``."""
    ctx, account_id, params = await auth(request, "read")
    algo_id, client_id = _algo_ref(params.values)
    record = readmodel_of(ctx).algo(account_id, algo_id, client_id)
    if record is None:
        raise unknown_order()
    return algo_json(record, ctx.specs[record.symbol])


@router.delete("/fapi/v1/algoOrder")
async def cancel_algo_order(request: Request) -> dict[str, Any]:
    """Cancel an untriggered conditional order; unknown or finished is ``-2011``."""
    ctx, account_id, params = await auth(request, "trade")
    algo_id, client_id = _algo_ref(params.values)
    record = readmodel_of(ctx).algo(account_id, algo_id, client_id)
    if record is None or not record.is_open:
        raise unknown_order_sent()
    target = AlgoId(record.algo_id)
    market = MarketId(record.symbol)
    applied = await ctx.seq.submit(
        lambda ts: CancelConditionalOrder(ts_ns=ts, account_id=account_id, market=market, algo_id=target)
    )
    answer(applied, ConditionalOrderCanceled, "conditional order cancel")
    return {
        "algoId": record.algo_id,
        "clientAlgoId": record.client_algo_id,
        "code": "200",
        "msg": "success",
    }


@router.delete("/fapi/v1/algoOpenOrders")
async def cancel_all_algo_orders(request: Request) -> dict[str, Any]:
    """Cancel every untriggered conditional order of the account in ``symbol``."""
    ctx, account_id, params = await auth(request, "trade")
    market = spec_of(ctx, params.values).market
    applied = await ctx.seq.submit(
        lambda ts: CancelAllConditionalOrders(ts_ns=ts, account_id=account_id, market=market)
    )
    refused(applied)
    return dict(CANCEL_ALL_DONE)


@router.get("/fapi/v1/openAlgoOrders")
async def open_algo_orders(request: Request) -> list[dict[str, Any]]:
    """Untriggered conditional orders, in ``symbol`` or all."""
    weight = 1 if request.query_params.get("symbol") else 40
    ctx, account_id, params = await auth(request, "read", weight)
    symbol = optional_symbol(ctx, params.values)
    specs = ctx.specs
    return [algo_json(r, specs[r.symbol]) for r in readmodel_of(ctx).open_algos(account_id, symbol)]


@router.get("/fapi/v1/allAlgoOrders")
async def all_algo_orders(request: Request) -> list[dict[str, Any]]:
    """Conditional orders of ``symbol`` in any status, oldest first (``algoId`` = from that id)."""
    ctx, account_id, params = await auth(request, "read", 5)
    values = params.values
    spec = spec_of(ctx, values)
    records = readmodel_of(ctx).all_algos(
        account_id,
        str(spec.market),
        wire.id_param(values, "algoId"),
        wire.time_param(values, "startTime"),
        wire.time_param(values, "endTime"),
        row_limit(values, 500),
    )
    return [algo_json(r, spec) for r in records]
