"""Orders: place, modify, cancel (one, a batch, all), query, list, and the account's fills.

Conditional types (STOP, TAKE_PROFIT, their ``_MARKET`` forms, TRAILING_STOP_MARKET) sent to
``/fapi/v1/order`` or as an item of ``/fapi/v1/batchOrders`` are refused with ``-4120``, as Binance
refuses them since its algo-order migration: they are placed on ``/fapi/v1/algoOrder`` and named
by their ``algoId`` on the algo routes only. So no REST answer ever shows an algo id as an
``orderId``: algo ids and order ids are separate counters, and each route names only its own kind.
(The FIX gateway still places its stop order types through :func:`place_order`.)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
from fastapi import APIRouter, Request

from perpx.agents.guard import TYPE_REFUSED, OrderIntent, agent_guard
from perpx.engine.codes import RejectCode
from perpx.engine.commands import (
    AmendOrder,
    CancelAllOrders,
    CancelOrder,
    ConditionalType,
    PlaceOrder,
)
from perpx.engine.config import MarketSpec
from perpx.engine.events import OrderAccepted, OrderAmended, OrderCanceled, OrderRejected
from perpx.engine.values import AccountId, OrderId
from perpx.server import wire
from perpx.server.context import ServerContext
from perpx.server.errors import ApiError, bad_param, mandatory, unknown_order
from perpx.server.orders_wire import OrderRecord, algo_as_order_json, order_json, trade_json
from perpx.server.readmodel import placed_order
from perpx.server.rest import count_orders
from perpx.server.sequencer import Applied
from perpx.server.trading.algo_orders import conditional_command, submit_conditional
from perpx.server.trading.new_order import algo_type_refused, order_head, plain_command
from perpx.server.trading.params import (
    CANCEL_ALL_DONE,
    MAX_BATCH_CANCELS,
    MAX_BATCH_ORDERS,
    answer,
    auth,
    lots,
    optional_symbol,
    order_after,
    order_ref,
    readmodel_of,
    refused,
    row_limit,
    spec_of,
    ticks,
    unknown_order_sent,
    unsupported,
)

router = APIRouter(tags=["trading (signed)"])


# ---------------------------------------------------------------------- new orders


async def place_order(ctx: ServerContext, account_id: AccountId, values: Mapping[str, str]) -> dict[str, Any]:
    """Parse and place one order (plain or conditional) from REST parameters; answer Binance's order object.

    Every order interface goes through here (REST, batch orders, the FIX gateway), so the same
    filters refuse the same orders with the same codes and texts (:class:`ApiError`).
    """
    spec = spec_of(ctx, values)
    side, kind, respond = order_head(values)
    guard = agent_guard(ctx)
    if kind in ConditionalType.__members__:
        if guard.agent_of(account_id) is not None:
            raise ApiError(
                400,
                TYPE_REFUSED,
                f"Agents place LIMIT and MARKET orders only; {kind} is not available to agents.",
            )
        command = conditional_command(spec, account_id, side, ConditionalType(kind), values, "stopPrice")
        algo = await submit_conditional(ctx, command)
        return algo_as_order_json(algo, spec)
    order = plain_command(spec, account_id, side, kind, values)
    intent = OrderIntent(
        str(spec.market), side, order.order_type, order.qty_lots, order.price_ticks, order.reduce_only
    )
    reservation = await guard.admit(account_id, spec, intent, values)

    def build(ts_ns: int) -> PlaceOrder:
        guard.refuse_if_killed(account_id)  # in the pipeline: a kill since admission still holds
        return msgspec.structs.replace(order, ts_ns=ts_ns)

    try:
        applied = await ctx.seq.submit(build)
    except BaseException:
        guard.release(reservation, sequenced=False)
        raise
    guard.release(reservation, sequenced=any(isinstance(e, OrderAccepted) for e in applied.events.own))
    record = placed_order(answer(applied, OrderAccepted, "order"))
    if respond == "RESULT":
        record = order_after(applied, record, spec.contract_atoms)
    return order_json(record, spec, ctx.atom)


async def place_plain_order(
    ctx: ServerContext, account_id: AccountId, values: Mapping[str, str]
) -> dict[str, Any]:
    """:func:`place_order` for the REST routes: a conditional type is ``-4120`` (the algo routes place it)."""
    kind = values.get("type") or ""
    if kind in ConditionalType.__members__:
        raise algo_type_refused(kind)
    return await place_order(ctx, account_id, values)


@router.post("/fapi/v1/order")
async def new_order(request: Request) -> dict[str, Any]:
    """Place a LIMIT or MARKET order; a conditional type is ``-4120`` (``POST /fapi/v1/algoOrder``)."""
    ctx, account_id, params = await auth(request, "trade")
    count_orders(request, account_id, 1)
    return await place_plain_order(ctx, account_id, params.values)


@router.post("/fapi/v1/batchOrders")
async def new_batch_orders(request: Request) -> list[dict[str, Any]]:
    """Place up to 5 orders; each element of the answer is an order object or ``{"code", "msg"}``
    (a conditional item is ``-4120``, as on ``/fapi/v1/order``)."""
    ctx, account_id, params = await auth(request, "trade", 5)
    items = _batch_items(params.values, "batchOrders", MAX_BATCH_ORDERS)
    count_orders(request, account_id, len(items))
    return await _each(items, lambda item: place_plain_order(ctx, account_id, item))


@router.put("/fapi/v1/batchOrders")
async def modify_batch_orders(request: Request) -> list[dict[str, Any]]:
    """Modify up to 5 orders; per-item results as for ``POST``."""
    ctx, account_id, params = await auth(request, "trade", 5)
    items = _batch_items(params.values, "batchOrders", MAX_BATCH_ORDERS)
    return await _each(items, lambda item: amend_order(ctx, account_id, item))


@router.delete("/fapi/v1/batchOrders")
async def cancel_batch_orders(request: Request) -> list[dict[str, Any]]:
    """Cancel up to 10 orders by ``orderIdList`` or ``origClientOrderIdList`` (JSON lists)."""
    ctx, account_id, params = await auth(request, "trade")
    spec = spec_of(ctx, params.values)
    items: list[dict[str, str]] = []
    for name, key in (("orderIdList", "orderId"), ("origClientOrderIdList", "origClientOrderId")):
        raw = params.values.get(name)
        if not raw:
            continue
        try:
            refs = json.loads(raw)
        except (ValueError, RecursionError):
            raise bad_param(name, "it is not a JSON list") from None
        if not isinstance(refs, list) or len(refs) > MAX_BATCH_CANCELS:
            raise bad_param(name, f"it must be a JSON list of at most {MAX_BATCH_CANCELS} items")
        items += [{"symbol": str(spec.market), key: str(ref)} for ref in refs]
    if not items:
        raise mandatory("orderIdList")
    if len(items) > MAX_BATCH_CANCELS:
        raise bad_param("orderIdList", f"at most {MAX_BATCH_CANCELS} orders can be cancelled at once")
    return await _each(items, lambda item: cancel_one(ctx, account_id, item))


def _batch_items(values: Mapping[str, str], name: str, most: int) -> list[dict[str, str]]:
    raw = wire.required(values, name)
    try:
        items = json.loads(raw)
    except (ValueError, RecursionError):
        raise bad_param(name, "it is not a JSON list") from None
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise bad_param(name, "it must be a non-empty JSON list of objects")
    if len(items) > most:
        raise ApiError(
            400, -1102, f"Parameter '{name}' holds {len(items)} orders; at most {most} are allowed."
        )
    return [{str(k): _param_text(v) for k, v in item.items()} for item in items]


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def _each(items: list[dict[str, str]], handle: Callable[[dict[str, str]], Any]) -> list[dict[str, Any]]:
    """Run ``handle`` on every item in order (one sequencer batch); a refusal becomes that item's answer."""

    async def one(item: dict[str, str]) -> dict[str, Any]:
        try:
            result: dict[str, Any] = await handle(item)
            return result
        except ApiError as exc:
            if exc.status >= 500:
                raise
            return exc.body()

    return list(await asyncio.gather(*(one(item) for item in items)))


# ---------------------------------------------------------------------- modify, cancel, query


def _resolve_open(
    ctx: ServerContext, account_id: AccountId, spec: MarketSpec, values: Mapping[str, str]
) -> OrderRecord | None:
    order_id, client_id = order_ref(values)
    record = readmodel_of(ctx).order(account_id, str(spec.market), order_id, client_id)
    return record if record is not None and record.is_open else None


async def amend_order(ctx: ServerContext, account_id: AccountId, values: Mapping[str, str]) -> dict[str, Any]:
    """Change an open LIMIT order's price and quantity from REST parameters (REST, batches, FIX)."""
    spec = spec_of(ctx, values)
    side = wire.enum_param(values, "side", ("BUY", "SELL"))
    unsupported(values)
    qty = lots(spec, values, "quantity")
    price = ticks(spec, values, "price")
    if qty is None:
        raise mandatory("quantity")
    if price is None:
        raise mandatory("price")
    record = _resolve_open(ctx, account_id, spec, values)
    if record is None:
        raise unknown_order()
    if record.side != side:
        raise ApiError(400, -1102, f"Parameter 'side' was {side}; the order is a {record.side} order.")
    if record.type != "LIMIT":
        raise ApiError(400, -1116, "Only LIMIT orders can be modified.")
    guard = agent_guard(ctx)
    await guard.admit_amend(account_id, spec, record.side, qty, price)
    order_id = OrderId(record.order_id)
    market = spec.market

    def build(ts_ns: int) -> AmendOrder:
        guard.refuse_if_killed(account_id, "amend_order")  # in the pipeline, as for a new order
        return AmendOrder(
            ts_ns=ts_ns,
            account_id=account_id,
            market=market,
            price_ticks=price,
            qty_lots=qty,
            order_id=order_id,
        )

    applied = await ctx.seq.submit(build)
    own = applied.events.own
    if own and isinstance(own[0], OrderRejected) and own[0].code is RejectCode.ORDER_NOT_FOUND:
        raise unknown_order()
    answer(applied, OrderAmended, "amend")
    return order_json(_order_now(ctx, applied, record, spec), spec, ctx.atom)


@router.put("/fapi/v1/order")
async def modify_order(request: Request) -> dict[str, Any]:
    """Change a LIMIT order's price and quantity (``orderId`` or ``origClientOrderId``, ``side``,
    ``quantity``, ``price``); it keeps its queue place only when the price is unchanged and the
    quantity decreases."""
    ctx, account_id, params = await auth(request, "trade")
    return await amend_order(ctx, account_id, params.values)


async def cancel_one(ctx: ServerContext, account_id: AccountId, values: Mapping[str, str]) -> dict[str, Any]:
    """Cancel one open order named by REST parameters (REST, batches, FIX); answer it as canceled."""
    spec = spec_of(ctx, values)
    record = _resolve_open(ctx, account_id, spec, values)
    if record is None:
        raise unknown_order_sent()
    order_id = OrderId(record.order_id)
    market = spec.market
    applied = await ctx.seq.submit(
        lambda ts: CancelOrder(ts_ns=ts, account_id=account_id, market=market, order_id=order_id)
    )
    answer(applied, OrderCanceled, "cancel")
    return order_json(_order_now(ctx, applied, record, spec), spec, ctx.atom)


def _order_now(ctx: ServerContext, applied: Applied, record: OrderRecord, spec: MarketSpec) -> OrderRecord:
    """An open order after the command that changed it: as the read model holds it now.

    ``record`` was read before the command was queued, and other commands may have filled the
    order since, so the read model's row is the answer; if the read model stopped, ``record`` with
    this command's events folded in.
    """
    model = ctx.components.readmodel
    if model.failure is None:
        now = model.order(record.account_id, record.symbol, order_id=record.order_id)
        if now is not None:
            return now
    return order_after(applied, record, spec.contract_atoms)


@router.delete("/fapi/v1/order")
async def cancel_order(request: Request) -> dict[str, Any]:
    """Cancel an open order by ``orderId`` or ``origClientOrderId``; answers it with status CANCELED."""
    ctx, account_id, params = await auth(request, "trade")
    return await cancel_one(ctx, account_id, params.values)


@router.get("/fapi/v1/order")
async def query_order(request: Request) -> dict[str, Any]:
    """Any order of the account (open or closed) by ``orderId`` or ``origClientOrderId``."""
    ctx, account_id, params = await auth(request, "read")
    return order_status(ctx, account_id, params.values)


def order_status(ctx: ServerContext, account_id: AccountId, values: Mapping[str, str]) -> dict[str, Any]:
    """Any order of the account named by REST parameters, open or closed (REST, the WebSocket API)."""
    spec = spec_of(ctx, values)
    order_id, client_id = order_ref(values)
    record = readmodel_of(ctx).order(account_id, str(spec.market), order_id, client_id)
    if record is None:
        raise unknown_order()
    return order_json(record, spec, ctx.atom)


@router.get("/fapi/v1/openOrder")
async def query_open_order(request: Request) -> dict[str, Any]:
    """One open order; a closed or unknown one is ``-2013``."""
    ctx, account_id, params = await auth(request, "read")
    spec = spec_of(ctx, params.values)
    record = _resolve_open(ctx, account_id, spec, params.values)
    if record is None:
        raise unknown_order()
    return order_json(record, spec, ctx.atom)


@router.delete("/fapi/v1/allOpenOrders")
async def cancel_all_orders(request: Request) -> dict[str, Any]:
    """Cancel every open order of the account in ``symbol`` (conditional orders: ``algoOpenOrders``)."""
    ctx, account_id, params = await auth(request, "trade")
    market = spec_of(ctx, params.values).market
    applied = await ctx.seq.submit(lambda ts: CancelAllOrders(ts_ns=ts, account_id=account_id, market=market))
    refused(applied)
    return dict(CANCEL_ALL_DONE)


@router.get("/fapi/v1/openOrders")
async def open_orders(request: Request) -> list[dict[str, Any]]:
    """Open orders of the account, in ``symbol`` or all (weight 1 with a symbol, 40 without)."""
    weight = 1 if request.query_params.get("symbol") else 40
    ctx, account_id, params = await auth(request, "read", weight)
    symbol = optional_symbol(ctx, params.values)
    specs = ctx.specs
    records = readmodel_of(ctx).open_orders(account_id, symbol)
    return [order_json(r, specs[r.symbol], ctx.atom) for r in records]


@router.get("/fapi/v1/allOrders")
async def all_orders(request: Request) -> list[dict[str, Any]]:
    """Orders of the account in ``symbol``, open and closed, oldest first (``orderId`` = from that id)."""
    ctx, account_id, params = await auth(request, "read", 5)
    values = params.values
    spec = spec_of(ctx, values)
    records = readmodel_of(ctx).all_orders(
        account_id,
        str(spec.market),
        wire.id_param(values, "orderId"),
        wire.time_param(values, "startTime"),
        wire.time_param(values, "endTime"),
        row_limit(values, 500),
    )
    return [order_json(r, spec, ctx.atom) for r in records]


@router.get("/fapi/v1/userTrades")
async def user_trades(request: Request) -> list[dict[str, Any]]:
    """The account's fills in ``symbol`` (required), oldest first; ``fromId``, ``orderId``, time window."""
    ctx, account_id, params = await auth(request, "read", 5)
    values = params.values
    spec = spec_of(ctx, values)
    records = readmodel_of(ctx).trades(
        account_id,
        str(spec.market),
        wire.id_param(values, "fromId"),
        wire.time_param(values, "startTime"),
        wire.time_param(values, "endTime"),
        row_limit(values, 500),
        wire.id_param(values, "orderId"),
    )
    asset = str(ctx.config.settlement_asset)
    return [trade_json(r, spec, ctx.atom, asset) for r in records]
