"""Binance's futures algo API (``/sapi/v1/algo/futures``) and perpx's parent-order route.

Routes (all signed; weight 1)
-----------------------------
=======================================================  ===========================================
``POST /sapi/v1/algo/futures/newOrderTwap``              TWAP over ``duration`` (300..86400 s)
``POST /sapi/v1/algo/futures/newOrderVp``                volume participation at ``urgency``
``DELETE /sapi/v1/algo/futures/order``                   cancel a working algo (``algoId``)
``GET /sapi/v1/algo/futures/openOrders``                 working algos
``GET /sapi/v1/algo/futures/historicalOrders``           ended algos (``symbol``, ``side``, window, pages)
``GET /sapi/v1/algo/futures/subOrders``                  an algo's children (``algoId``, pages)
``POST /perpx/v1/algo``                                  perpx: any parent order (``parent``: the
                                                         :class:`~perpx.execution.model.ParentOrder`
                                                         document as JSON): POV, IS, VWAP, scaled,
                                                         iceberg, or a TWAP with every knob
=======================================================  ===========================================

How Binance's parameters become a parent order
----------------------------------------------
* TWAP: ``algo=twap``, ``duration_s=duration``, children take liquidity (IOC at the far touch,
  never past ``limitPrice``), one slice a minute with catch-up; at the window's end the remainder is
  taken (``complete_aggressive``), and a parent still short a minute later expires, saying why.
* VP: ``algo=pov`` at a participation of 5% / 10% / 20% of the market's volume for urgency
  LOW / MEDIUM / HIGH, children take liquidity; it works until filled, for at most 24 h.
* Notional at the arrival price: TWAP 1,000..1,000,000 and VP 10,000..1,000,000 of the quote asset
  (``-20204``); at most 30 open TWAP and 10 open VP algos per account (``-20198``).

* TWAP: one minute's share must be an order the market takes: ``quantity * 60 / duration`` above
  the minimum quantity (Binance's documented rule; ``-20195``) and at most the largest order
  (``-20194``). Binance's VP has no duration and no such rule; neither has a notional analogue.

Codes: Binance's generic ones for malformed parameters (``-1102``, ``-1100``, ``-1111``,
``-4014``, ``-4023``, ``-4061``), its algo codes for algo rules, with its messages as the error
code list gives them (developers.binance.com, "Error Codes", section "20xxx - Futures/Spot Algo"):
``-20124`` "Invalid algo id or it has been completed.", ``-20130`` "Invalid data sent for a
parameter.", ``-20121`` "Invalid symbol.", ``-20132`` "The client algo id is duplicated.", ``-20194`` "Duration is too short to
execute all required quantity.", ``-20195`` "The total size is too small.", ``-20198`` "Reach the
max open orders allowed.", ``-20204`` "The notional of USD is less or more than the limit." (each
message followed by perpx's detail); and perpx's ``-9501`` (the market cannot take a parent now: no
price yet) and ``-9502`` (a ``parent`` document that does not validate, every field error listed).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request

from perpx.agents.guard import OrderIntent
from perpx.engine.commands import OrderType
from perpx.engine.config import MarketSpec
from perpx.engine.values import AccountId, Side
from perpx.execution.model import (
    MAX_CLIENT_ALGO_ID_CHARS,
    EndBehavior,
    ParentOrder,
    ParentOrderError,
    ParentSide,
    decode_parent,
)
from perpx.execution.model import (
    Algo as AlgoKind,
)
from perpx.server import wire
from perpx.server.algos.guard import admit_parent
from perpx.server.algos.registry import AlgoStatus
from perpx.server.algos.service import (
    SERVICE_UNAVAILABLE,
    Admission,
    Algo,
    AlgoRefused,
    AlgoService,
    algo_service,
)
from perpx.server.algos.wire import algo_json, sub_orders_json
from perpx.server.context import ServerContext
from perpx.server.errors import ApiError, mandatory, service_unavailable
from perpx.server.trading.params import auth, one_way, spec_of

router = APIRouter(tags=["algo service (signed)"])

MIN_DURATION_S = 300
MAX_DURATION_S = 86_400
VP_LIFE_S = 86_400
"""A VP parent works for at most a day; what is left then expires."""
URGENCY_POV_BPS = {"LOW": 500, "MEDIUM": 1_000, "HIGH": 2_000}
"""VP urgency as a participation of the market's volume (bps)."""
TWAP_ADMISSION = Admission(Decimal(1_000), Decimal(1_000_000), 30)
VP_ADMISSION = Admission(Decimal(10_000), Decimal(1_000_000), 10)
PERPX_ADMISSION = Admission(Decimal(0), Decimal(1_000_000_000), 30)
"""``/perpx/v1/algo``: any notional the market's filters accept, 30 open parents per algorithm."""
MAX_PAGE_SIZE = 100

INVALID_SYMBOL = -20121
"""Binance: "Invalid symbol." (the algo service's own code; the order routes answer ``-1121``)."""
INVALID_ALGO = -20124
"""Binance: "Invalid algo id or it has been completed."."""
INVALID_PARAMETER = -20130
"""Binance: "Invalid data sent for a parameter."."""
DURATION_TOO_SHORT = -20194
"""Binance: "Duration is too short to execute all required quantity."."""
SIZE_TOO_SMALL = -20195
"""Binance: "The total size is too small."."""
CANNOT_WORK = -9501
BAD_DOCUMENT = -9502


def service_of(ctx: ServerContext) -> AlgoService:
    service = algo_service(ctx)
    if service is None:
        raise service_unavailable("the algo service is not running")
    return service


def _ok(algo: Algo) -> dict[str, Any]:
    return {
        "algoId": algo.algo_id,
        "clientAlgoId": algo.created.parent.client_algo_id,
        "success": True,
        "code": 0,
        "msg": "OK",
    }


def _client_algo_id(values: Mapping[str, str]) -> str | None:
    text = values.get("clientAlgoId")
    if text is None or text == "":
        return None
    if len(text) > MAX_CLIENT_ALGO_ID_CHARS or not all(
        c.isascii() and (c.isalnum() or c in "-_") for c in text
    ):
        raise ApiError(
            400,
            INVALID_PARAMETER,
            f"Invalid data sent for a parameter: clientAlgoId must be 1 to {MAX_CLIENT_ALGO_ID_CHARS} "
            "letters, digits, '-' or '_'.",
        )
    if text.startswith("perpx-"):
        raise ApiError(
            400,
            INVALID_PARAMETER,
            "Invalid data sent for a parameter: the clientAlgoId prefix perpx- is reserved.",
        )
    return text


def _spec(ctx: ServerContext, values: Mapping[str, str]) -> MarketSpec:
    try:
        return spec_of(ctx, values)
    except ApiError as exc:
        if exc.code == -1121:
            raise ApiError(400, INVALID_SYMBOL, "Invalid symbol.") from None
        raise


def _side(values: Mapping[str, str]) -> ParentSide:
    return ParentSide.BUY if wire.enum_param(values, "side", ("BUY", "SELL")) == "BUY" else ParentSide.SELL


def _quantity(spec: MarketSpec, values: Mapping[str, str]) -> tuple[Decimal, int]:
    qty = wire.decimal_param(values, "quantity")
    assert qty is not None
    lots = wire.to_lots(spec, qty, "quantity")
    if lots < spec.min_qty_lots:
        raise ApiError(
            400,
            SIZE_TOO_SMALL,
            f"The total size is too small: quantity {qty} is below the market's minimum {spec.min_qty_lots * spec.lot_size}.",
        )
    return qty, lots


def _limit(spec: MarketSpec, values: Mapping[str, str]) -> tuple[Decimal | None, int | None]:
    price = wire.decimal_param(values, "limitPrice", optional=True)
    if price is None:
        return None, None
    ticks = wire.to_ticks(spec, price, "limitPrice")
    if ticks <= 0:
        raise ApiError(
            400, INVALID_PARAMETER, "Invalid data sent for a parameter: limitPrice must be positive."
        )
    return price, ticks


def _check_minute_slice(spec: MarketSpec, qty_lots: int, duration_s: int, market_children: bool) -> None:
    """Binance's TWAP rule ``quantity * 60 / duration > minQty``, and its upper analogue.

    One minute's share of the parent must be a valid order: strictly above the market's minimum
    quantity (Binance's newOrderTwap documentation; it names no code, perpx answers ``-20195``), and
    at most the largest order a child may be (``-20194``: the duration is too short for the
    quantity). Exact in lots: ``qty_lots * 60`` against ``bound * duration``.
    """
    if qty_lots * 60 <= spec.min_qty_lots * duration_s:
        raise ApiError(
            400,
            SIZE_TOO_SMALL,
            f"The total size is too small: quantity * 60 / duration must be greater than the market's "
            f"minimum quantity {spec.min_qty_lots * spec.lot_size}; send more quantity or a shorter duration.",
        )
    max_lots = spec.market_max_qty_lots if market_children else spec.max_qty_lots
    if qty_lots * 60 > max_lots * duration_s:
        raise ApiError(
            400,
            DURATION_TOO_SHORT,
            f"Duration is too short to execute all required quantity: one minute's share, quantity * 60 / "
            f"duration, is above the largest order {max_lots * spec.lot_size}; send a longer duration.",
        )


async def _start(
    request: Request,
    ctx: ServerContext,
    account_id: AccountId,
    spec: MarketSpec,
    parent: ParentOrder,
    algo_type: str,
    urgency: str | None,
    admission: Admission,
) -> dict[str, Any]:
    service = service_of(ctx)
    lots = wire.to_lots(spec, parent.qty, "quantity") if parent.qty is not None else 0
    limit_ticks = (
        None if parent.limit_price is None else wire.to_ticks(spec, parent.limit_price, "limitPrice")
    )
    side = Side.BUY if parent.side is ParentSide.BUY else Side.SELL
    intent = OrderIntent(
        parent.market,
        side,
        OrderType.MARKET if limit_ticks is None else OrderType.LIMIT,
        lots,
        limit_ticks,
        parent.reduce_only,
    )
    lock = await admit_parent(ctx, service, account_id, spec, intent)
    try:
        algo = await ctx.seq.query(
            lambda _engine: _create(service, account_id, algo_type, urgency, parent, admission)
        )
    finally:
        if lock is not None:
            lock.release()
    return _ok(algo)


def _refusal(exc: AlgoRefused) -> ApiError:
    """An algo refusal as the client sees it; a journal that cannot take the request is a 503."""
    if exc.code == SERVICE_UNAVAILABLE:
        return service_unavailable(exc.msg)
    return ApiError(400, exc.code, exc.msg)


def _cancel(service: AlgoService, account_id: AccountId, algo_id: int) -> Algo | None:
    try:
        return service.request_cancel(int(account_id), algo_id)
    except AlgoRefused as exc:
        raise _refusal(exc) from None


def _create(
    service: AlgoService,
    account_id: AccountId,
    algo_type: str,
    urgency: str | None,
    parent: ParentOrder,
    admission: Admission,
) -> Algo:
    try:
        return service.create(int(account_id), algo_type, urgency, parent, admission)
    except AlgoRefused as exc:
        raise _refusal(exc) from None
    except ParentOrderError as exc:
        if any(e.field in ("qty", "notional") for e in exc.errors):
            raise ApiError(400, SIZE_TOO_SMALL, f"The total size is too small: {exc}.") from None
        raise ApiError(400, CANNOT_WORK, f"The algo cannot be worked now: {exc}.") from None


@router.post("/sapi/v1/algo/futures/newOrderTwap")
async def new_order_twap(request: Request) -> dict[str, Any]:
    """Start a TWAP: ``symbol``, ``side``, ``quantity``, ``duration`` (300..86400 s), optional
    ``clientAlgoId``, ``reduceOnly``, ``limitPrice``; answers ``{algoId, clientAlgoId, success, code, msg}``."""
    ctx, account_id, params = await auth(request, "trade")
    values = params.values
    spec = _spec(ctx, values)
    side = _side(values)
    one_way(values)
    qty, _ = _quantity(spec, values)
    duration = wire.int_param(values, "duration")
    if not MIN_DURATION_S <= duration <= MAX_DURATION_S:
        raise ApiError(
            400,
            INVALID_PARAMETER,
            f"Invalid data sent for a parameter: duration {duration} s is outside {MIN_DURATION_S}..{MAX_DURATION_S}.",
        )
    limit_price, _ = _limit(spec, values)
    _check_minute_slice(spec, wire.to_lots(spec, qty, "quantity"), duration, limit_price is None)
    reduce_only = wire.bool_param(values, "reduceOnly")
    client_algo_id = _client_algo_id(values)
    parent = ParentOrder(
        algo=AlgoKind.TWAP,
        market=str(spec.market),
        side=side,
        client_algo_id=client_algo_id or "",
        qty=qty,
        limit_price=limit_price,
        duration_s=duration,
        end_behavior=EndBehavior.COMPLETE_AGGRESSIVE,
        passiveness_bps=0,
        reduce_only=reduce_only,
        tags={"api": "sapi"},
    )
    return await _start(request, ctx, account_id, spec, parent, "TWAP", None, TWAP_ADMISSION)


@router.post("/sapi/v1/algo/futures/newOrderVp")
async def new_order_vp(request: Request) -> dict[str, Any]:
    """Start a volume-participation algo: ``symbol``, ``side``, ``quantity``, ``urgency``
    (LOW/MEDIUM/HIGH), optional ``clientAlgoId``, ``reduceOnly``, ``limitPrice``."""
    ctx, account_id, params = await auth(request, "trade")
    values = params.values
    spec = _spec(ctx, values)
    side = _side(values)
    one_way(values)
    qty, _ = _quantity(spec, values)
    urgency = wire.enum_param(values, "urgency", tuple(URGENCY_POV_BPS))
    limit_price, _ = _limit(spec, values)
    reduce_only = wire.bool_param(values, "reduceOnly")
    client_algo_id = _client_algo_id(values)
    parent = ParentOrder(
        algo=AlgoKind.POV,
        market=str(spec.market),
        side=side,
        client_algo_id=client_algo_id or "",
        qty=qty,
        limit_price=limit_price,
        duration_s=VP_LIFE_S,
        pov_target_bps=URGENCY_POV_BPS[urgency],
        passiveness_bps=0,
        reduce_only=reduce_only,
        tags={"api": "sapi"},
    )
    return await _start(request, ctx, account_id, spec, parent, "VP", urgency, VP_ADMISSION)


@router.post("/perpx/v1/algo")
async def new_parent(request: Request) -> dict[str, Any]:
    """perpx: start any parent order; ``parent`` is the ParentOrder document as JSON (docs/execution.md)."""
    ctx, account_id, params = await auth(request, "trade")
    raw = params.values.get("parent")
    if not raw:
        raise mandatory("parent")
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):
        raise ApiError(400, BAD_DOCUMENT, "Parameter 'parent' is not JSON.") from None
    if not isinstance(document, dict):
        raise ApiError(400, BAD_DOCUMENT, "Parameter 'parent' must be a JSON object (a ParentOrder).")
    try:
        parent = decode_parent(document)
    except ParentOrderError as exc:
        raise ApiError(400, BAD_DOCUMENT, f"The parent order is not valid: {exc}.") from None
    if parent.client_algo_id.startswith("perpx-"):
        raise ApiError(
            400,
            INVALID_PARAMETER,
            "Invalid data sent for a parameter: the clientAlgoId prefix perpx- is reserved.",
        )
    spec = ctx.specs.get(parent.market)
    if spec is None:
        raise ApiError(400, INVALID_SYMBOL, "Invalid symbol.")
    if parent.qty is not None:
        wire.to_lots(spec, parent.qty, "quantity")
    return await _start(
        request,
        ctx,
        account_id,
        spec,
        parent,
        parent.algo.value.upper(),
        parent.urgency.value.upper(),
        PERPX_ADMISSION,
    )


@router.delete("/sapi/v1/algo/futures/order")
async def cancel_algo(request: Request) -> dict[str, Any]:
    """Cancel a working algo by ``algoId``: its working children are cancelled on the next turn."""
    ctx, account_id, params = await auth(request, "trade")
    algo_id = wire.id_param(params.values, "algoId")
    if algo_id is None:
        raise mandatory("algoId")
    service = service_of(ctx)
    algo = await ctx.seq.query(lambda _engine: _cancel(service, account_id, algo_id))
    if algo is None:
        raise ApiError(400, INVALID_ALGO, "Invalid algo id or it has been completed.")
    return {"algoId": algo.algo_id, "success": True, "code": 0, "msg": "OK"}


@router.get("/sapi/v1/algo/futures/openOrders")
async def open_orders(request: Request) -> dict[str, Any]:
    """The account's working algos, oldest first."""
    ctx, account_id, _params = await auth(request, "read")
    service = service_of(ctx)

    def read(_engine: object) -> list[dict[str, Any]]:
        return [
            algo_json(service, a, ctx.specs[a.created.parent.market], ctx.atom)
            for a in service.of_account(int(account_id))
            if a.status is AlgoStatus.WORKING
        ]

    orders = await ctx.seq.query(read)
    return {"total": len(orders), "orders": orders}


@router.get("/sapi/v1/algo/futures/historicalOrders")
async def historical_orders(request: Request) -> dict[str, Any]:
    """The account's ended algos: ``symbol``, ``side``, ``startTime``/``endTime`` (on ``bookTime``),
    ``page`` and ``pageSize`` (1..100, default 100); newest first."""
    ctx, account_id, params = await auth(request, "read")
    values = params.values
    symbol = str(_spec(ctx, values).market) if values.get("symbol") else None
    side = wire.enum_param(values, "side", ("BUY", "SELL"), "") if values.get("side") else None
    start_ms = wire.time_param(values, "startTime")
    end_ms = wire.time_param(values, "endTime")
    page = wire.int_param(values, "page", default=1, lo=1, hi=1_000_000)
    page_size = wire.int_param(values, "pageSize", default=MAX_PAGE_SIZE, lo=1, hi=MAX_PAGE_SIZE)
    service = service_of(ctx)

    def read(_engine: object) -> dict[str, Any]:
        ended = [
            a
            for a in service.of_account(int(account_id))
            if a.status is not AlgoStatus.WORKING
            and (symbol is None or a.created.parent.market == symbol)
            and (side is None or a.created.parent.side.value.upper() == side)
            and (start_ms is None or a.created.book_ms >= start_ms)
            and (end_ms is None or a.created.book_ms <= end_ms)
        ]
        ended.sort(key=lambda a: a.algo_id, reverse=True)
        chosen = ended[(page - 1) * page_size : page * page_size]
        return {
            "total": len(ended),
            "orders": [algo_json(service, a, ctx.specs[a.created.parent.market], ctx.atom) for a in chosen],
        }

    return await ctx.seq.query(read)


@router.get("/sapi/v1/algo/futures/subOrders")
async def sub_orders(request: Request) -> dict[str, Any]:
    """An algo's children (``algoId``; ``page``, ``pageSize`` 1..100): each an ordinary order of the account."""
    ctx, account_id, params = await auth(request, "read")
    values = params.values
    algo_id = wire.id_param(values, "algoId")
    if algo_id is None:
        raise mandatory("algoId")
    page = wire.int_param(values, "page", default=1, lo=1, hi=1_000_000)
    page_size = wire.int_param(values, "pageSize", default=MAX_PAGE_SIZE, lo=1, hi=MAX_PAGE_SIZE)
    service = service_of(ctx)
    algo = service.algos.get(algo_id)
    if algo is None or algo.created.account_id != int(account_id):
        raise ApiError(400, INVALID_ALGO, "Invalid algo id or it has been completed.")
    spec = ctx.specs[algo.created.parent.market]
    asset = str(ctx.config.settlement_asset)
    return await ctx.seq.query(
        lambda _engine: sub_orders_json(service, algo, spec, ctx.atom, asset, page, page_size)
    )
