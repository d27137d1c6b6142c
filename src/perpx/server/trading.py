"""Signed trading and account routes: Binance USDS-M ``/fapi`` paths, fields and codes.

Every handler authenticates with :func:`perpx.server.rest.signed`, parses the
wire's decimals exactly (:mod:`perpx.server.wire`), and then either submits
one engine command through the sequencer (and answers from its events and the
read model, which the sequencer updated before answering: read-your-writes) or
runs one query on the sequencer thread. Handlers never touch the engine
directly.

What perpx does not support, and says so
----------------------------------------
* Hedge mode: ``positionSide`` LONG/SHORT is ``-4061``; ``dualSidePosition=true``
  is refused. Every position is one-way (``BOTH``).
* ``priceMatch`` other than NONE, ``timeInForce=GTD`` and ``goodTillDate``: ``-1116`` / ``-1102``
  with a message saying so.
* Multi-assets margin: ``multiAssetsMargin`` is always false.

Client ids: an order placed without ``newClientOrderId`` shows ``perpx-<orderId>``;
a conditional order without ``clientAlgoId`` shows ``perpx-algo-<algoId>``. Both
prefixes and ``autoclose-`` (liquidation orders) are reserved (``-4015``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

from fastapi import APIRouter, Request

from perpx.engine.accounts import VOLUME_WINDOW_DAYS, Account
from perpx.engine.codes import RejectCode
from perpx.engine.commands import (
    AdjustIsolatedMargin,
    AmendOrder,
    CancelAllConditionalOrders,
    CancelAllOrders,
    CancelConditionalOrder,
    CancelOrder,
    ConditionalType,
    MarginMode,
    OrderType,
    PlaceConditionalOrder,
    PlaceOrder,
    SetLeverage,
    SetMarginMode,
    StpMode,
    TimeInForce,
    WorkingType,
)
from perpx.engine.config import FeeTier, MarketSpec
from perpx.engine.engine import Engine
from perpx.engine.events import (
    CommandRejected,
    ConditionalOrderAccepted,
    ConditionalOrderCanceled,
    ConditionalOrderRejected,
    Event,
    IsolatedMarginAdjusted,
    LeverageChanged,
    MarginModeChanged,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderRejected,
)
from perpx.engine.liquidation import INSURANCE_ACCOUNT
from perpx.engine.margin import position_risk
from perpx.engine.values import (
    NS_PER_DAY,
    RATE_SCALE,
    AccountId,
    AlgoId,
    ClientAlgoId,
    ClientOrderId,
    MarketId,
    OrderId,
    Side,
)
from perpx.server import wire
from perpx.server.context import ServerContext
from perpx.server.errors import (
    ApiError,
    bad_key,
    bad_param,
    engine_refusal,
    mandatory,
    service_unavailable,
    unknown_order,
)
from perpx.server.orders_wire import (
    AlgoRecord,
    OrderRecord,
    algo_as_order_json,
    algo_json,
    income_json,
    order_json,
    plain,
    trade_json,
)
from perpx.server.readmodel import MAX_ROWS, ReadModel, algo_record, apply_to_order, placed_order
from perpx.server.rest import Params, count_orders, ctx_of, signed
from perpx.server.sequencer import Applied

router = APIRouter(tags=["trading (signed)"])

MAX_BATCH_ORDERS = 5
MAX_BATCH_CANCELS = 10
RESERVED_CLIENT_PREFIXES = ("perpx-", "autoclose-")
ORDER_TYPES = ("LIMIT", "MARKET", *(t.value for t in ConditionalType))
STP_MODES = tuple(m.value for m in StpMode)
CANCEL_ALL_DONE = {"code": 200, "msg": "The operation of cancel all open order is done."}
_PRICE_PLACES = Decimal(10) ** -8
_PERCENT_E8 = Decimal(100) / RATE_SCALE
"""One ``_e8`` unit of a rate written in percent (``callbackRate``)."""


def components(ctx: ServerContext) -> dict[str, Any]:
    """The trading read model (orders, trades, income in ``DATA/readmodel.sqlite``)."""
    return {"readmodel": ReadModel(ctx)}


# ---------------------------------------------------------------------- plumbing


def readmodel_of(ctx: ServerContext) -> ReadModel:
    """The read model, if it is serving; ``503`` once it stopped (a restart catches it up)."""
    model: ReadModel = ctx.component("readmodel")
    if model.failure is not None:
        raise service_unavailable(
            f"the read model stopped ({model.failure}); restart the venue to recover it"
        )
    return model


async def _auth(request: Request, scope: str, weight: int = 1) -> tuple[ServerContext, AccountId, Params]:
    """Authenticate; the insurance fund's account is never reachable through a key."""
    key, params = await signed(request, scope, weight)
    if key.account_id == INSURANCE_ACCOUNT:
        raise bad_key()
    return ctx_of(request), key.account_id, params


def _spec(ctx: ServerContext, values: Mapping[str, str]) -> MarketSpec:
    return wire.market_param(values, ctx.specs)


def _optional_symbol(ctx: ServerContext, values: Mapping[str, str]) -> str | None:
    if not values.get("symbol"):
        return None
    return str(_spec(ctx, values).market)


def _refusal(code: RejectCode, message: str) -> ApiError:
    """An engine refusal; filter failures keep their own text (ccxt reads ``LOT_SIZE`` from it)."""
    if message.startswith("Filter failure"):
        return ApiError(400, int(code), message)
    if code is RejectCode.UNKNOWN_ORDER:
        return ApiError(400, -2011, "Unknown order sent.")
    return engine_refusal(code, message)


def _unknown_order_sent() -> ApiError:
    return ApiError(400, -2011, "Unknown order sent.")


def _no_answer(what: str) -> ApiError:
    return ApiError(500, -1000, f"An unknown error occurred: the engine answered the {what} with no result.")


def _lots(spec: MarketSpec, values: Mapping[str, str], name: str) -> int | None:
    value = wire.decimal_param(values, name, optional=True)
    return None if value is None else wire.to_lots(spec, value, name)


def _ticks(spec: MarketSpec, values: Mapping[str, str], name: str) -> int | None:
    value = wire.decimal_param(values, name, optional=True)
    return None if value is None else wire.to_ticks(spec, value, name)


def _limit(values: Mapping[str, str], default: int, hi: int = MAX_ROWS) -> int:
    return wire.int_param(values, "limit", default=default, lo=1, hi=hi)


def _client_id(values: Mapping[str, str], name: str) -> str | None:
    client_id = wire.client_id_param(values, name)
    if client_id is not None and client_id.startswith(RESERVED_CLIENT_PREFIXES):
        raise ApiError(
            400,
            -4015,
            f"Client order id is not valid: the prefixes {', '.join(RESERVED_CLIENT_PREFIXES)} are reserved by the venue.",
        )
    return client_id


def _side(values: Mapping[str, str]) -> Side:
    return Side.BUY if wire.enum_param(values, "side", ("BUY", "SELL")) == "BUY" else Side.SELL


def _one_way(values: Mapping[str, str]) -> None:
    position_side = values.get("positionSide")
    if position_side and position_side != "BOTH":
        raise ApiError(
            400,
            -4061,
            "Order's position side does not match user's setting. perpx runs one-way mode only:"
            " send positionSide BOTH (or omit it).",
        )


def _unsupported(values: Mapping[str, str]) -> None:
    match = values.get("priceMatch")
    if match and match != "NONE":
        raise ApiError(400, -1102, "Parameter 'priceMatch' is not supported on perpx: send a price.")
    if values.get("goodTillDate"):
        raise ApiError(
            400, -1102, "Parameter 'goodTillDate' is not supported on perpx (no GTD time in force)."
        )


def _tif(values: Mapping[str, str]) -> TimeInForce:
    text = values.get("timeInForce") or "GTC"
    if text == "GTD":
        raise ApiError(
            400, -1116, "Invalid timeInForce: GTD is not supported on perpx; use GTC, IOC, FOK or GTX."
        )
    if text not in TimeInForce.__members__:
        raise ApiError(400, -1116, f"Invalid timeInForce {text!r}; use GTC, IOC, FOK or GTX.")
    return TimeInForce(text)


def _working_type(values: Mapping[str, str]) -> WorkingType:
    return WorkingType(
        wire.enum_param(values, "workingType", ("MARK_PRICE", "CONTRACT_PRICE"), "CONTRACT_PRICE")
    )


def _stp(values: Mapping[str, str]) -> StpMode:
    return StpMode(wire.enum_param(values, "selfTradePreventionMode", STP_MODES, StpMode.EXPIRE_MAKER.value))


def _callback_rate_e8(values: Mapping[str, str]) -> int | None:
    """Binance's ``callbackRate`` is a percent (``"1"`` = 1%)."""
    rate = wire.decimal_param(values, "callbackRate", optional=True)
    if rate is None:
        return None
    return wire.to_units(
        rate,
        _PERCENT_E8,
        "callbackRate",
        lambda: bad_param("callbackRate", f"{rate} has more decimals than the venue keeps"),
    )


def _order_type(values: Mapping[str, str]) -> str:
    text = wire.required(values, "type")
    if text not in ORDER_TYPES:
        raise ApiError(400, -1116, f"Invalid orderType {text!r}.")
    return text


def _order_ref(values: Mapping[str, str]) -> tuple[int | None, str | None]:
    order_id = wire.id_param(values, "orderId")
    client_id = values.get("origClientOrderId") or None
    if order_id is None and client_id is None:
        raise ApiError(
            400, -1102, "Param 'orderId' or 'origClientOrderId' must be sent, but both were empty/null!"
        )
    return order_id, client_id


def _ms(ts_ns: int) -> int:
    return wire.ms(ts_ns)


# ---------------------------------------------------------------------- the command's own answer

REFUSALS = (OrderRejected, ConditionalOrderRejected, CommandRejected)
"""The events a handler answers a command with when it refuses it."""

E = TypeVar("E", bound=Event)


def refused(applied: Applied) -> None:
    """Raise the command's refusal, if its handler refused it.

    A handler's first own event is its answer: an acceptance (or nothing, for a cancel-all that
    found nothing) or one of :data:`REFUSALS`. Events before it (work that was due) and after it
    (triggers, liquidations) belong to other commands' orders and are never read as the answer.
    """
    own = applied.events.own
    if own and isinstance(own[0], REFUSALS):
        raise _refusal(own[0].code, own[0].message)


def answer(applied: Applied, accepted: type[E], what: str) -> E:
    """The command's acceptance event (its first own event); a refusal is raised as its ``ApiError``."""
    refused(applied)
    own = applied.events.own
    if own and isinstance(own[0], accepted):
        return own[0]
    raise _no_answer(what)


def order_after(applied: Applied, record: OrderRecord, contract_atoms: int) -> OrderRecord:
    """``record`` as the command left it: its own events and its consequences folded in.

    The read model folds the same events the same way (:func:`perpx.server.readmodel.apply_to_order`),
    so the answer equals what a query sent after it returns, without reading SQLite back.
    """
    events = applied.events
    return apply_to_order(record, events[events.own_start :], contract_atoms)


# ---------------------------------------------------------------------- new orders


async def _place(ctx: ServerContext, account_id: AccountId, values: Mapping[str, str]) -> dict[str, Any]:
    """Parse and place one order (plain or conditional); answer Binance's order object."""
    spec = _spec(ctx, values)
    side = _side(values)
    kind = _order_type(values)
    _one_way(values)
    _unsupported(values)
    respond = wire.enum_param(values, "newOrderRespType", ("ACK", "RESULT"), "ACK")
    if kind in ConditionalType.__members__:
        command = _conditional_command(spec, account_id, side, ConditionalType(kind), values, "stopPrice")
        algo = await _submit_conditional(ctx, command)
        return algo_as_order_json(algo, spec)
    client_id = _client_id(values, "newClientOrderId")
    order_type = OrderType(kind)
    qty = _lots(spec, values, "quantity")
    if qty is None:
        raise mandatory("quantity")
    price = _ticks(spec, values, "price")
    tif = _tif(values)
    if order_type is OrderType.LIMIT and price is None:
        raise mandatory("price")
    if order_type is OrderType.MARKET:
        if price is not None:
            raise ApiError(400, -1106, "Parameter 'price' sent when not required.")
        if values.get("timeInForce") == "GTX":
            raise ApiError(400, -1116, "Invalid timeInForce: a MARKET order cannot be post-only (GTX).")
        tif = TimeInForce.GTC
    reduce_only = wire.bool_param(values, "reduceOnly")
    stp = _stp(values)
    market = spec.market
    applied = await ctx.seq.submit(
        lambda ts: PlaceOrder(
            ts_ns=ts,
            account_id=account_id,
            market=market,
            side=side,
            order_type=order_type,
            qty_lots=qty,
            price_ticks=price,
            tif=tif,
            reduce_only=reduce_only,
            client_order_id=None if client_id is None else ClientOrderId(client_id),
            stp=stp,
        )
    )
    record = placed_order(answer(applied, OrderAccepted, "order"))
    if respond == "RESULT":
        record = order_after(applied, record, spec.contract_atoms)
    return order_json(record, spec, ctx.atom)


def _conditional_command(
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
    client_id = _client_id(values, client_name)
    tif = _tif(values)
    return PlaceConditionalOrder(
        ts_ns=0,
        account_id=account_id,
        market=spec.market,
        side=side,
        order_type=kind,
        qty_lots=_lots(spec, values, "quantity"),
        trigger_price_ticks=_ticks(spec, values, trigger_name),
        price_ticks=_ticks(spec, values, "price"),
        tif=tif,
        working_type=_working_type(values),
        reduce_only=wire.bool_param(values, "reduceOnly"),
        close_position=wire.bool_param(values, "closePosition"),
        price_protect=wire.bool_param(values, "priceProtect"),
        activation_price_ticks=_ticks(spec, values, activation_name),
        callback_rate_e8=_callback_rate_e8(values),
        client_algo_id=None if client_id is None else ClientAlgoId(client_id),
        stp=_stp(values),
    )


async def _submit_conditional(ctx: ServerContext, command: PlaceConditionalOrder) -> AlgoRecord:
    import msgspec

    applied = await ctx.seq.submit(lambda ts: msgspec.structs.replace(command, ts_ns=ts))
    return algo_record(answer(applied, ConditionalOrderAccepted, "conditional order"))


@router.post("/fapi/v1/order")
async def new_order(request: Request) -> dict[str, Any]:
    """Place an order (LIMIT, MARKET; STOP/TAKE_PROFIT/..._MARKET/TRAILING_STOP_MARKET with ``stopPrice``
    are placed as conditional orders and answered order-shaped, ``orderId`` = the algo id)."""
    ctx, account_id, params = await _auth(request, "trade")
    count_orders(request, account_id, 1)
    return await _place(ctx, account_id, params.values)


@router.post("/fapi/v1/batchOrders")
async def new_batch_orders(request: Request) -> list[dict[str, Any]]:
    """Place up to 5 orders; each element of the answer is an order object or ``{"code", "msg"}``."""
    ctx, account_id, params = await _auth(request, "trade", 5)
    items = _batch_items(params.values, "batchOrders", MAX_BATCH_ORDERS)
    count_orders(request, account_id, len(items))
    return await _each(items, lambda item: _place(ctx, account_id, item))


@router.put("/fapi/v1/batchOrders")
async def modify_batch_orders(request: Request) -> list[dict[str, Any]]:
    """Modify up to 5 orders; per-item results as for ``POST``."""
    ctx, account_id, params = await _auth(request, "trade", 5)
    items = _batch_items(params.values, "batchOrders", MAX_BATCH_ORDERS)
    return await _each(items, lambda item: _modify(ctx, account_id, item))


@router.delete("/fapi/v1/batchOrders")
async def cancel_batch_orders(request: Request) -> list[dict[str, Any]]:
    """Cancel up to 10 orders by ``orderIdList`` or ``origClientOrderIdList`` (JSON lists)."""
    ctx, account_id, params = await _auth(request, "trade")
    spec = _spec(ctx, params.values)
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
    return await _each(items, lambda item: _cancel(ctx, account_id, item))


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
    order_id, client_id = _order_ref(values)
    record = readmodel_of(ctx).order(account_id, str(spec.market), order_id, client_id)
    return record if record is not None and record.is_open else None


async def _modify(ctx: ServerContext, account_id: AccountId, values: Mapping[str, str]) -> dict[str, Any]:
    spec = _spec(ctx, values)
    side = wire.enum_param(values, "side", ("BUY", "SELL"))
    _unsupported(values)
    qty = _lots(spec, values, "quantity")
    price = _ticks(spec, values, "price")
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
    order_id = OrderId(record.order_id)
    market = spec.market
    applied = await ctx.seq.submit(
        lambda ts: AmendOrder(
            ts_ns=ts, account_id=account_id, market=market, price_ticks=price, qty_lots=qty, order_id=order_id
        )
    )
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
    ctx, account_id, params = await _auth(request, "trade")
    return await _modify(ctx, account_id, params.values)


async def _cancel(ctx: ServerContext, account_id: AccountId, values: Mapping[str, str]) -> dict[str, Any]:
    spec = _spec(ctx, values)
    record = _resolve_open(ctx, account_id, spec, values)
    if record is None:
        raise _unknown_order_sent()
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
    model: ReadModel = ctx.component("readmodel")
    if model.failure is None:
        now = model.order(record.account_id, record.symbol, order_id=record.order_id)
        if now is not None:
            return now
    return order_after(applied, record, spec.contract_atoms)


@router.delete("/fapi/v1/order")
async def cancel_order(request: Request) -> dict[str, Any]:
    """Cancel an open order by ``orderId`` or ``origClientOrderId``; answers it with status CANCELED."""
    ctx, account_id, params = await _auth(request, "trade")
    return await _cancel(ctx, account_id, params.values)


@router.get("/fapi/v1/order")
async def query_order(request: Request) -> dict[str, Any]:
    """Any order of the account (open or closed) by ``orderId`` or ``origClientOrderId``."""
    ctx, account_id, params = await _auth(request, "read")
    spec = _spec(ctx, params.values)
    order_id, client_id = _order_ref(params.values)
    record = readmodel_of(ctx).order(account_id, str(spec.market), order_id, client_id)
    if record is None:
        raise unknown_order()
    return order_json(record, spec, ctx.atom)


@router.get("/fapi/v1/openOrder")
async def query_open_order(request: Request) -> dict[str, Any]:
    """One open order; a closed or unknown one is ``-2013``."""
    ctx, account_id, params = await _auth(request, "read")
    spec = _spec(ctx, params.values)
    record = _resolve_open(ctx, account_id, spec, params.values)
    if record is None:
        raise unknown_order()
    return order_json(record, spec, ctx.atom)


@router.delete("/fapi/v1/allOpenOrders")
async def cancel_all_orders(request: Request) -> dict[str, Any]:
    """Cancel every open order of the account in ``symbol`` (conditional orders: ``algoOpenOrders``)."""
    ctx, account_id, params = await _auth(request, "trade")
    market = _spec(ctx, params.values).market
    applied = await ctx.seq.submit(lambda ts: CancelAllOrders(ts_ns=ts, account_id=account_id, market=market))
    refused(applied)
    return dict(CANCEL_ALL_DONE)


@router.get("/fapi/v1/openOrders")
async def open_orders(request: Request) -> list[dict[str, Any]]:
    """Open orders of the account, in ``symbol`` or all (weight 1 with a symbol, 40 without)."""
    weight = 1 if request.query_params.get("symbol") else 40
    ctx, account_id, params = await _auth(request, "read", weight)
    symbol = _optional_symbol(ctx, params.values)
    specs = ctx.specs
    records = readmodel_of(ctx).open_orders(account_id, symbol)
    return [order_json(r, specs[r.symbol], ctx.atom) for r in records]


@router.get("/fapi/v1/allOrders")
async def all_orders(request: Request) -> list[dict[str, Any]]:
    """Orders of the account in ``symbol``, open and closed, oldest first (``orderId`` = from that id)."""
    ctx, account_id, params = await _auth(request, "read", 5)
    values = params.values
    spec = _spec(ctx, values)
    records = readmodel_of(ctx).all_orders(
        account_id,
        str(spec.market),
        wire.id_param(values, "orderId"),
        wire.time_param(values, "startTime"),
        wire.time_param(values, "endTime"),
        _limit(values, 500),
    )
    return [order_json(r, spec, ctx.atom) for r in records]


@router.get("/fapi/v1/userTrades")
async def user_trades(request: Request) -> list[dict[str, Any]]:
    """The account's fills in ``symbol`` (required), oldest first; ``fromId``, ``orderId``, time window."""
    ctx, account_id, params = await _auth(request, "read", 5)
    values = params.values
    spec = _spec(ctx, values)
    records = readmodel_of(ctx).trades(
        account_id,
        str(spec.market),
        wire.id_param(values, "fromId"),
        wire.time_param(values, "startTime"),
        wire.time_param(values, "endTime"),
        _limit(values, 500),
        wire.id_param(values, "orderId"),
    )
    asset = str(ctx.config.settlement_asset)
    return [trade_json(r, spec, ctx.atom, asset) for r in records]


# ---------------------------------------------------------------------- account and positions


def fee_tier(engine: Engine, account: Account) -> tuple[int, FeeTier]:
    """The account's fee tier by its 30-day volume (computed without touching the engine's state)."""
    oldest = engine.now_ns // NS_PER_DAY - (VOLUME_WINDOW_DAYS - 1)
    volume = sum(v for day, v in account.volume_days.items() if day >= oldest)
    index, chosen = 0, engine.fee_tiers[0]
    for i, tier in enumerate(engine.fee_tiers):
        if volume < tier.min_30d_volume_atoms:
            break
        index, chosen = i, tier
    return index, chosen


def entry_price(cost_atoms: int, qty_lots: int, spec: MarketSpec, atom: Decimal) -> str:
    """Average entry price of a position: ``|cost| / |qty|`` (8 decimals, half-even; ``"0"`` when flat)."""
    if qty_lots == 0:
        return "0"
    value = (Decimal(abs(cost_atoms)) * atom) / (Decimal(abs(qty_lots)) * spec.lot_size)
    return plain(value.quantize(_PRICE_PLACES))


def break_even_price(entry: str, qty_lots: int, taker_e8: int) -> str:
    """The price at which closing at the taker rate, after opening at it, makes zero PnL.

    Long: ``entry x (1 + t) / (1 - t)``; short: ``entry x (1 - t) / (1 + t)`` (``t`` the account's
    current taker rate; both fees counted at the taker rate, as Binance's break-even does).
    """
    if qty_lots == 0:
        return "0"
    taker = Decimal(taker_e8) / RATE_SCALE
    price = Decimal(entry)
    value = price * (1 + taker) / (1 - taker) if qty_lots > 0 else price * (1 - taker) / (1 + taker)
    return plain(value.quantize(_PRICE_PLACES))


def _rate(rate_e8: int) -> str:
    return plain(Decimal(rate_e8) / RATE_SCALE)


class _AccountView:
    """An account's figures in wire strings, computed on the sequencer thread (see :func:`_view`)."""

    def __init__(self, ctx: ServerContext, engine: Engine, account_id: AccountId) -> None:
        self.ctx = ctx
        self.atom = ctx.atom
        self.asset = str(engine.asset)
        model = readmodel_of(ctx)
        account = engine.accounts.get(account_id)
        if account is None:
            raise bad_key()
        risk = engine.risk(account_id)
        self.tier_index, tier = fee_tier(engine, account)
        self.account_update_ms = model.update_ms(account_id)
        self.positions: list[dict[str, Any]] = []
        total_upnl = total_im = total_mm = 0
        for market in sorted(engine.specs):
            spec = engine.specs[market]
            position = account.positions.get(market)
            mark = engine.marks.get(market, 0)
            qty = position.qty_lots if position is not None else 0
            if position is None:
                figures = None
            else:
                figures = position_risk(position, spec, mark)
                total_upnl += figures.unrealized_pnl_atoms
                total_im += figures.initial_margin_atoms if qty else 0
                total_mm += figures.maintenance_margin_atoms
            leverage = position.leverage if position is not None else spec.default_leverage
            cost = position.cost_atoms if position is not None else 0
            entry = entry_price(cost, qty, spec, self.atom)
            break_even = break_even_price(entry, qty, tier.taker_e8)
            liquidation = engine.liquidation.liquidation_price(account_id, market) if qty else None
            upnl = figures.unrealized_pnl_atoms if figures is not None and qty else 0
            isolated_wallet = position.isolated_margin_atoms if position is not None else 0
            isolated = position is not None and position.is_isolated
            notional = (figures.notional_atoms if figures is not None else 0) * (1 if qty >= 0 else -1)
            position_im = figures.initial_margin_atoms if figures is not None and qty else 0
            order_im = position.order_margin_atoms if position is not None else 0
            self.positions.append(
                {
                    "symbol": str(market),
                    "qty": qty,
                    "open_orders": bool(position is not None and position.open_orders),
                    "positionAmt": wire.qty(spec, qty),
                    "entryPrice": entry,
                    "breakEvenPrice": break_even,
                    "markPrice": wire.price(spec, mark),
                    "unRealizedProfit": self.money(upnl),
                    "liquidationPrice": wire.price(spec, liquidation),
                    "leverage": str(leverage),
                    "maxNotionalValue": self.money(spec.max_notional_at_leverage(leverage)),
                    "marginType": "isolated" if isolated else "cross",
                    "isolated": isolated,
                    "isolatedMargin": self.money(isolated_wallet + upnl if isolated else 0),
                    "isolatedWallet": self.money(isolated_wallet),
                    "notional": self.money(notional),
                    "initialMargin": self.money(position_im + order_im),
                    "positionInitialMargin": self.money(position_im),
                    "openOrderInitialMargin": self.money(order_im),
                    "maintMargin": self.money(figures.maintenance_margin_atoms if figures is not None else 0),
                    "bidNotional": self.money(position.buy_notional_atoms if position is not None else 0),
                    "askNotional": self.money(position.sell_notional_atoms if position is not None else 0),
                    "adl": engine.liquidation.adl_quantile(account_id, market) if qty else 0,
                    "updateTime": model.update_ms(account_id, str(market)),
                }
            )
        wallet = risk.wallet_atoms + risk.isolated_margin_atoms
        self.totals = {
            "totalInitialMargin": self.money(total_im + risk.order_margin_atoms),
            "totalMaintMargin": self.money(total_mm),
            "totalWalletBalance": self.money(wallet),
            "totalUnrealizedProfit": self.money(total_upnl),
            "totalMarginBalance": self.money(wallet + total_upnl),
            "totalPositionInitialMargin": self.money(total_im),
            "totalOpenOrderInitialMargin": self.money(risk.order_margin_atoms),
            "totalCrossWalletBalance": self.money(risk.wallet_atoms),
            "totalCrossUnPnl": self.money(risk.cross_unrealized_pnl_atoms),
            "availableBalance": self.money(risk.available_atoms),
            "maxWithdrawAmount": self.money(risk.withdrawable_atoms),
        }
        self.assets: list[dict[str, Any]] = [
            {
                "asset": self.asset,
                "walletBalance": self.totals["totalWalletBalance"],
                "unrealizedProfit": self.totals["totalUnrealizedProfit"],
                "marginBalance": self.totals["totalMarginBalance"],
                "maintMargin": self.totals["totalMaintMargin"],
                "initialMargin": self.totals["totalInitialMargin"],
                "positionInitialMargin": self.totals["totalPositionInitialMargin"],
                "openOrderInitialMargin": self.totals["totalOpenOrderInitialMargin"],
                "crossWalletBalance": self.totals["totalCrossWalletBalance"],
                "crossUnPnl": self.totals["totalCrossUnPnl"],
                "availableBalance": self.totals["availableBalance"],
                "maxWithdrawAmount": self.totals["maxWithdrawAmount"],
                "marginAvailable": True,
                "updateTime": self.account_update_ms,
            }
        ]
        for asset in sorted(engine.config.assets):
            if asset == engine.asset:
                continue
            balance = self.money(account.balance(asset))
            self.assets.append(
                {
                    "asset": str(asset),
                    "walletBalance": balance,
                    "unrealizedProfit": "0",
                    "marginBalance": balance,
                    "maintMargin": "0",
                    "initialMargin": "0",
                    "positionInitialMargin": "0",
                    "openOrderInitialMargin": "0",
                    "crossWalletBalance": balance,
                    "crossUnPnl": "0",
                    "availableBalance": balance,
                    "maxWithdrawAmount": balance,
                    "marginAvailable": False,
                    "updateTime": self.account_update_ms if account.balance(asset) else 0,
                }
            )

    def money(self, atoms: int) -> str:
        return wire.money(atoms, self.atom)


async def _view(request: Request, weight: int = 5) -> tuple[ServerContext, Params, _AccountView]:
    ctx, account_id, params = await _auth(request, "read", weight)
    view = await ctx.seq.query(lambda engine: _AccountView(ctx, engine, account_id))
    return ctx, params, view


_V3_ACCOUNT_POSITION = (
    "symbol",
    "positionAmt",
    "isolatedMargin",
    "notional",
    "isolatedWallet",
    "initialMargin",
    "maintMargin",
    "updateTime",
)


def _pick(row: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: row[name] for name in names}


@router.get("/fapi/v3/account")
async def account_v3(request: Request) -> dict[str, Any]:
    """Totals, assets and the open positions of the account (the balance ccxt's fetch_balance reads)."""
    _ctx, _params, view = await _view(request)
    positions = []
    for row in view.positions:
        if row["qty"]:
            out = _pick(row, _V3_ACCOUNT_POSITION)
            positions.append({**out, "unrealizedProfit": row["unRealizedProfit"], "positionSide": "BOTH"})
    return {**view.totals, "assets": view.assets, "positions": positions}


@router.get("/fapi/v2/account")
async def account_v2(request: Request) -> dict[str, Any]:
    """As v3 plus the account flags, fee tier, and a row for every market."""
    _ctx, _params, view = await _view(request)
    positions = [
        {
            "symbol": row["symbol"],
            "initialMargin": row["initialMargin"],
            "maintMargin": row["maintMargin"],
            "unrealizedProfit": row["unRealizedProfit"],
            "positionInitialMargin": row["positionInitialMargin"],
            "openOrderInitialMargin": row["openOrderInitialMargin"],
            "leverage": row["leverage"],
            "isolated": row["isolated"],
            "entryPrice": row["entryPrice"],
            "breakEvenPrice": row["breakEvenPrice"],
            "maxNotional": row["maxNotionalValue"],
            "bidNotional": row["bidNotional"],
            "askNotional": row["askNotional"],
            "positionSide": "BOTH",
            "positionAmt": row["positionAmt"],
            "isolatedWallet": row["isolatedWallet"],
            "notional": row["notional"],
            "updateTime": row["updateTime"],
        }
        for row in view.positions
    ]
    return {
        "feeTier": view.tier_index,
        "feeBurn": False,
        "canTrade": True,
        "canDeposit": True,
        "canWithdraw": True,
        "updateTime": 0,
        "multiAssetsMargin": False,
        "tradeGroupId": -1,
        **view.totals,
        "assets": view.assets,
        "positions": positions,
    }


def _balances(view: _AccountView) -> list[dict[str, Any]]:
    return [
        {
            "accountAlias": "perpx",
            "asset": asset["asset"],
            "balance": asset["walletBalance"],
            "crossWalletBalance": asset["crossWalletBalance"],
            "crossUnPnl": asset["crossUnPnl"],
            "availableBalance": asset["availableBalance"],
            "maxWithdrawAmount": asset["maxWithdrawAmount"],
            "marginAvailable": asset["marginAvailable"],
            "updateTime": asset["updateTime"],
        }
        for asset in view.assets
    ]


@router.get("/fapi/v2/balance")
async def balance_v2(request: Request) -> list[dict[str, Any]]:
    """The account's balance per asset."""
    _ctx, _params, view = await _view(request)
    return _balances(view)


@router.get("/fapi/v3/balance")
async def balance_v3(request: Request) -> list[dict[str, Any]]:
    """The account's balance per asset (same figures as v2)."""
    _ctx, _params, view = await _view(request)
    return _balances(view)


_V3_POSITION = (
    "symbol",
    "positionAmt",
    "entryPrice",
    "breakEvenPrice",
    "markPrice",
    "unRealizedProfit",
    "liquidationPrice",
    "isolatedMargin",
    "notional",
    "isolatedWallet",
    "initialMargin",
    "maintMargin",
    "positionInitialMargin",
    "openOrderInitialMargin",
    "adl",
    "bidNotional",
    "askNotional",
    "updateTime",
)
_V2_POSITION = (
    "symbol",
    "positionAmt",
    "entryPrice",
    "breakEvenPrice",
    "markPrice",
    "unRealizedProfit",
    "liquidationPrice",
    "leverage",
    "maxNotionalValue",
    "marginType",
    "isolatedMargin",
    "notional",
    "isolatedWallet",
    "updateTime",
)


def _position_rows(ctx: ServerContext, params: Params, view: _AccountView) -> list[dict[str, Any]]:
    symbol = _optional_symbol(ctx, params.values)
    return [row for row in view.positions if symbol is None or row["symbol"] == symbol]


@router.get("/fapi/v3/positionRisk")
async def position_risk_v3(request: Request) -> list[dict[str, Any]]:
    """A row per market where the account has a position or open orders (Binance v3); shorts have
    negative ``positionAmt`` and ``notional``; ``liquidationPrice`` ``"0"`` when there is none."""
    ctx, params, view = await _view(request)
    return [
        {
            **_pick(row, _V3_POSITION),
            "positionSide": "BOTH",
            "marginAsset": view.asset,
            "leverage": row["leverage"],
            "marginType": row["marginType"],
        }
        for row in _position_rows(ctx, params, view)
        if row["qty"] or row["open_orders"]
    ]


@router.get("/fapi/v2/positionRisk")
async def position_risk_v2(request: Request) -> list[dict[str, Any]]:
    """A row per market (flat ones too, as Binance v2 in one-way mode)."""
    ctx, params, view = await _view(request)
    return [
        {**_pick(row, _V2_POSITION), "isAutoAddMargin": "false", "positionSide": "BOTH"}
        for row in _position_rows(ctx, params, view)
    ]


@router.get("/fapi/v1/adlQuantile")
async def adl_quantile(request: Request) -> list[dict[str, Any]]:
    """ADL lights (1..5, 5 = first in line) of the account's open positions."""
    ctx, params, view = await _view(request)
    out = []
    for row in _position_rows(ctx, params, view):
        if not row["qty"]:
            continue
        quantile = row["adl"]
        out.append(
            {
                "symbol": row["symbol"],
                "adlQuantile": {
                    "LONG": quantile if row["qty"] > 0 else 0,
                    "SHORT": quantile if row["qty"] < 0 else 0,
                    "BOTH": quantile,
                },
            }
        )
    return out


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _brackets(spec: MarketSpec, atom: Decimal) -> dict[str, Any]:
    return {
        "symbol": str(spec.market),
        "notionalCoef": 1.0,
        "brackets": [
            {
                "bracket": b.tier,
                "initialLeverage": b.max_leverage,
                "notionalCap": _number(Decimal(b.cap_atoms) * atom),
                "notionalFloor": _number(Decimal(b.floor_atoms) * atom),
                "maintMarginRatio": float(Decimal(b.mmr_e8) / RATE_SCALE),
                "cum": float(Decimal(b.cum_atoms) * atom),
            }
            for b in spec.brackets
        ],
    }


@router.get("/fapi/v1/leverageBracket")
async def leverage_bracket(request: Request) -> Any:
    """Leverage brackets: a list of every market, or one object when ``symbol`` is given (as Binance)."""
    ctx, _account_id, params = await _auth(request, "read")
    if params.values.get("symbol"):
        return _brackets(_spec(ctx, params.values), ctx.atom)
    return [_brackets(ctx.specs[symbol], ctx.atom) for symbol in sorted(ctx.specs)]


@router.get("/fapi/v1/commissionRate")
async def commission_rate(request: Request) -> dict[str, Any]:
    """The account's maker and taker rates (its fee tier by 30-day volume)."""
    ctx, account_id, params = await _auth(request, "read", 20)
    spec = _spec(ctx, params.values)

    def rates(engine: Engine) -> tuple[int, int]:
        account = engine.accounts.get(account_id)
        if account is None:
            raise bad_key()
        tier = fee_tier(engine, account)[1]
        return tier.maker_e8, tier.taker_e8

    maker, taker = await ctx.seq.query(rates)
    return {
        "symbol": str(spec.market),
        "makerCommissionRate": _rate(maker),
        "takerCommissionRate": _rate(taker),
    }


# ---------------------------------------------------------------------- settings


@router.post("/fapi/v1/leverage")
async def change_leverage(request: Request) -> dict[str, Any]:
    """Set the account's leverage in ``symbol`` (``-4028`` outside 1..the market's maximum)."""
    ctx, account_id, params = await _auth(request, "trade")
    spec = _spec(ctx, params.values)
    leverage = wire.int_param(params.values, "leverage", lo=-(10**6), hi=10**6)
    market = spec.market
    applied = await ctx.seq.submit(
        lambda ts: SetLeverage(ts_ns=ts, account_id=account_id, market=market, leverage=leverage)
    )
    changed = answer(applied, LeverageChanged, "leverage change")
    return {
        "leverage": changed.leverage,
        "maxNotionalValue": wire.money(changed.max_notional_atoms, ctx.atom),
        "symbol": str(market),
    }


@router.post("/fapi/v1/marginType")
async def change_margin_type(request: Request) -> dict[str, Any]:
    """ISOLATED or CROSSED; ``-4046`` "No need to change margin type." when it already is."""
    ctx, account_id, params = await _auth(request, "trade")
    spec = _spec(ctx, params.values)
    text = wire.enum_param(params.values, "marginType", ("ISOLATED", "CROSSED", "CROSS"))
    mode = MarginMode.ISOLATED if text == "ISOLATED" else MarginMode.CROSS
    market = spec.market
    applied = await ctx.seq.submit(
        lambda ts: SetMarginMode(ts_ns=ts, account_id=account_id, market=market, mode=mode)
    )
    answer(applied, MarginModeChanged, "margin type change")
    return {"code": 200, "msg": "success"}


@router.post("/fapi/v1/positionMargin")
async def position_margin(request: Request) -> dict[str, Any]:
    """Add (``type=1``) or remove (``type=2``) isolated margin of ``symbol``'s position."""
    ctx, account_id, params = await _auth(request, "trade")
    values = params.values
    spec = _spec(ctx, values)
    _one_way(values)
    amount = wire.decimal_param(values, "amount")
    assert amount is not None
    kind = wire.int_param(values, "type", lo=1, hi=2)
    units = wire.to_atoms(amount, ctx.atom, "amount")
    delta = units if kind == 1 else -units
    market = spec.market
    applied = await ctx.seq.submit(
        lambda ts: AdjustIsolatedMargin(ts_ns=ts, account_id=account_id, market=market, delta_atoms=delta)
    )
    answer(applied, IsolatedMarginAdjusted, "position margin change")
    return {
        "amount": float(amount),
        "code": 200,
        "msg": "Successfully modify position margin.",
        "type": kind,
    }


@router.get("/fapi/v1/positionMargin/history")
async def position_margin_history(request: Request) -> list[dict[str, Any]]:
    """Isolated margin changes of ``symbol``, newest first (``type``, ``startTime``, ``endTime``, ``limit``)."""
    ctx, account_id, params = await _auth(request, "read")
    values = params.values
    spec = _spec(ctx, values)
    kind = wire.optional_int(values, "type", lo=1, hi=2)
    rows = readmodel_of(ctx).margin_changes(
        account_id,
        str(spec.market),
        kind,
        wire.time_param(values, "startTime"),
        wire.time_param(values, "endTime"),
        _limit(values, 500),
    )
    return [
        {
            "symbol": symbol,
            "type": row_type,
            "deltaType": "USER_ADJUST",
            "amount": wire.money(amount, ctx.atom),
            "asset": str(ctx.config.settlement_asset),
            "time": time_ms,
            "positionSide": "BOTH",
        }
        for symbol, row_type, amount, time_ms in rows
    ]


@router.get("/fapi/v1/positionSide/dual")
async def position_side(request: Request) -> dict[str, Any]:
    """Always one-way mode: ``{"dualSidePosition": false}``."""
    await _auth(request, "read", 30)
    return {"dualSidePosition": False}


@router.post("/fapi/v1/positionSide/dual")
async def change_position_side(request: Request) -> dict[str, Any]:
    """Hedge mode is not supported: ``true`` is refused, ``false`` needs no change (``-4059``)."""
    _ctx, _account_id, params = await _auth(request, "trade")
    if wire.bool_param(params.values, "dualSidePosition"):
        raise ApiError(
            400, -4061, "Hedge mode (dualSidePosition=true) is not supported on perpx: positions are one-way."
        )
    raise ApiError(400, -4059, "No need to change position side.")


@router.get("/fapi/v1/multiAssetsMargin")
async def multi_assets_margin(request: Request) -> dict[str, Any]:
    """Always single-asset margin: ``{"multiAssetsMargin": false}``."""
    await _auth(request, "read", 30)
    return {"multiAssetsMargin": False}


@router.post("/fapi/v1/multiAssetsMargin")
async def change_multi_assets_margin(request: Request) -> dict[str, Any]:
    """Multi-assets margin is not supported: ``true`` is refused, ``false`` needs no change (``-4171``)."""
    _ctx, _account_id, params = await _auth(request, "trade")
    if wire.bool_param(params.values, "multiAssetsMargin"):
        raise ApiError(
            400, -4170, "Multi-assets margin is not supported on perpx: margin is the settlement asset only."
        )
    raise ApiError(400, -4171, "Multi-Assets mode is already set.")


# ---------------------------------------------------------------------- conditional (algo) orders


@router.post("/fapi/v1/algoOrder")
async def new_algo_order(request: Request) -> dict[str, Any]:
    """Place a conditional order (``algoType=CONDITIONAL``): STOP, STOP_MARKET, TAKE_PROFIT,
    TAKE_PROFIT_MARKET or TRAILING_STOP_MARKET, with ``triggerPrice`` (trailing: ``callbackRate``
    percent and optional ``activatePrice``)."""
    ctx, account_id, params = await _auth(request, "trade")
    values = params.values
    algo_type = values.get("algoType") or "CONDITIONAL"
    if algo_type != "CONDITIONAL":
        raise bad_param("algoType", f"{algo_type!r} is not supported; perpx has CONDITIONAL algo orders only")
    count_orders(request, account_id, 1)
    spec = _spec(ctx, values)
    side = _side(values)
    kind = wire.required(values, "type")
    if kind not in ConditionalType.__members__:
        raise ApiError(400, -1116, f"Invalid orderType {kind!r} for a conditional order.")
    _one_way(values)
    _unsupported(values)
    command = _conditional_command(spec, account_id, side, ConditionalType(kind), values, "triggerPrice")
    record = await _submit_conditional(ctx, command)
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
    ctx, account_id, params = await _auth(request, "read")
    algo_id, client_id = _algo_ref(params.values)
    record = readmodel_of(ctx).algo(account_id, algo_id, client_id)
    if record is None:
        raise unknown_order()
    return algo_json(record, ctx.specs[record.symbol])


@router.delete("/fapi/v1/algoOrder")
async def cancel_algo_order(request: Request) -> dict[str, Any]:
    """Cancel an untriggered conditional order; unknown or finished is ``-2011``."""
    ctx, account_id, params = await _auth(request, "trade")
    algo_id, client_id = _algo_ref(params.values)
    record = readmodel_of(ctx).algo(account_id, algo_id, client_id)
    if record is None or not record.is_open:
        raise _unknown_order_sent()
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
    ctx, account_id, params = await _auth(request, "trade")
    market = _spec(ctx, params.values).market
    applied = await ctx.seq.submit(
        lambda ts: CancelAllConditionalOrders(ts_ns=ts, account_id=account_id, market=market)
    )
    refused(applied)
    return dict(CANCEL_ALL_DONE)


@router.get("/fapi/v1/openAlgoOrders")
async def open_algo_orders(request: Request) -> list[dict[str, Any]]:
    """Untriggered conditional orders, in ``symbol`` or all."""
    weight = 1 if request.query_params.get("symbol") else 40
    ctx, account_id, params = await _auth(request, "read", weight)
    symbol = _optional_symbol(ctx, params.values)
    specs = ctx.specs
    return [algo_json(r, specs[r.symbol]) for r in readmodel_of(ctx).open_algos(account_id, symbol)]


@router.get("/fapi/v1/allAlgoOrders")
async def all_algo_orders(request: Request) -> list[dict[str, Any]]:
    """Conditional orders of ``symbol`` in any status, oldest first (``algoId`` = from that id)."""
    ctx, account_id, params = await _auth(request, "read", 5)
    values = params.values
    spec = _spec(ctx, values)
    records = readmodel_of(ctx).all_algos(
        account_id,
        str(spec.market),
        wire.id_param(values, "algoId"),
        wire.time_param(values, "startTime"),
        wire.time_param(values, "endTime"),
        _limit(values, 500),
    )
    return [algo_json(r, spec) for r in records]


# ---------------------------------------------------------------------- income

INCOME_TYPES = ("TRANSFER", "REALIZED_PNL", "FUNDING_FEE", "COMMISSION", "INSURANCE_CLEAR")


@router.get("/fapi/v1/income")
async def income(request: Request) -> list[dict[str, Any]]:
    """Wallet changes and why: TRANSFER, REALIZED_PNL, FUNDING_FEE, COMMISSION, INSURANCE_CLEAR."""
    ctx, account_id, params = await _auth(request, "read", 30)
    values = params.values
    income_type = values.get("incomeType") or None
    if income_type is not None and income_type not in INCOME_TYPES:
        income_type = "__none__"  # Binance answers an empty list for types this venue never pays
    records = readmodel_of(ctx).income(
        account_id,
        _optional_symbol(ctx, values),
        income_type,
        wire.time_param(values, "startTime"),
        wire.time_param(values, "endTime"),
        _limit(values, 100),
    )
    return [income_json(r, ctx.atom) for r in records]
