"""perpx's flow routes: a strategy document's flow, run by the venue (:mod:`.flows`).

Routes (all signed; weight 1)
-----------------------------
=======================================  ==========================================================
``POST /perpx/v1/flow``                  ``document``: a strategy document as JSON (the schema of
                                         ``perpx algo validate``), optional ``clientFlowId``;
                                         answers ``{flowId, clientFlowId, success, code, msg}``
``GET /perpx/v1/flow``                   ``flowId``: one flow with its nodes; without it, every
                                         flow of the account, newest first
``DELETE /perpx/v1/flow``                ``flowId``: cancel a working flow (every node not ended)
=======================================  ==========================================================

Codes (perpx's range -9590..-9599), each with a message a person can act on:
``-9590`` the document does not check (every problem listed with its path, as ``perpx algo
validate`` prints them); ``-9591`` a market the document names is not listed here (its path);
``-9592`` an order's quantity or price is off the market's lot or tick grid (its path);
``-9593`` no working flow of yours has that ``flowId``; ``-9594`` too many working flows;
``-9595`` a ``clientFlowId`` that is malformed, reserved or already used.

The agent guard applies to every order and algo node as to a parent of ``POST /perpx/v1/algo``
(the ``algo`` scope, the symbols, the limits on the node's full quantity), when the flow is sent.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request

from perpx.agents.guard import OrderIntent
from perpx.engine.commands import OrderType
from perpx.engine.values import NS_PER_MS, AccountId, Side
from perpx.execution.document.model import NodeType, StrategyDocument
from perpx.execution.document.validate import DocumentInvalid, decode_document
from perpx.execution.ids import child_id
from perpx.execution.model import MAX_CLIENT_ALGO_ID_CHARS, ParentSide
from perpx.server import wire
from perpx.server.algos.flows import SERVICE_UNAVAILABLE, Flow, FlowRefused, FlowService, flow_service
from perpx.server.algos.guard import admit_parent
from perpx.server.algos.routes import service_of
from perpx.server.context import ServerContext
from perpx.server.errors import ApiError, mandatory, service_unavailable
from perpx.server.trading.params import auth

router = APIRouter(tags=["flow service (signed)"])

BAD_FLOW_DOCUMENT = -9590
FLOW_UNKNOWN_MARKET = -9591
FLOW_OFF_GRID = -9592
UNKNOWN_FLOW = -9593
BAD_CLIENT_FLOW_ID = -9595
_SENT = ("working", "filled", "canceled")


def flows_of(ctx: ServerContext) -> FlowService:
    service = flow_service(ctx)
    if service is None:
        raise service_unavailable("the flow service is not running")
    return service


def _document(raw: str | None) -> tuple[dict[str, Any], StrategyDocument]:
    if not raw:
        raise mandatory("document")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise ApiError(400, BAD_FLOW_DOCUMENT, "Parameter 'document' is not JSON.") from None
    if not isinstance(data, dict):
        raise ApiError(
            400, BAD_FLOW_DOCUMENT, "Parameter 'document' must be a JSON object (a strategy document)."
        )
    try:
        document = decode_document(data)
    except DocumentInvalid as exc:
        listed = "; ".join(str(error) for error in exc.errors)
        raise ApiError(400, BAD_FLOW_DOCUMENT, f"The strategy document is not valid: {listed}.") from None
    for i, parent in enumerate(data.get("parents", [])):
        if str(parent.get("client_algo_id", "")).startswith("perpx-"):
            raise ApiError(
                400, BAD_FLOW_DOCUMENT, f"parents[{i}].client_algo_id: the prefix perpx- is reserved."
            )
    return data, document


def _on_grid(value: Decimal, unit: Decimal) -> bool:
    return value % unit == 0


def _check_markets(ctx: ServerContext, document: StrategyDocument) -> list[tuple[str, OrderIntent]]:
    """Every market named must be listed, every order on its grid; returns each trading node's intent."""
    intents: list[tuple[str, OrderIntent]] = []
    for i, node in enumerate(document.flow.nodes):
        where = f"flow.nodes[{i}]"
        for field, trigger in (("trigger", node.trigger), ("when", node.when)):
            if trigger is not None and trigger.market is not None and trigger.market not in ctx.specs:
                raise ApiError(
                    400, FLOW_UNKNOWN_MARKET, f"{where}.{field}.market: {trigger.market} is not listed here."
                )
        if node.order is not None:
            order = node.order
            spec = ctx.specs.get(order.market)
            if spec is None:
                raise ApiError(
                    400, FLOW_UNKNOWN_MARKET, f"{where}.order.market: {order.market} is not listed here."
                )
            if not _on_grid(order.qty, spec.lot_size):
                raise ApiError(
                    400,
                    FLOW_OFF_GRID,
                    f"{where}.order.qty: {order.qty} is not a multiple of {spec.lot_size}.",
                )
            for name, price in (("price", order.price), ("stop_price", order.stop_price)):
                if price is not None and not _on_grid(price, spec.tick_size):
                    raise ApiError(
                        400,
                        FLOW_OFF_GRID,
                        f"{where}.order.{name}: {price} is not a multiple of {spec.tick_size}.",
                    )
            limit = None if order.price is None else int(order.price / spec.tick_size)
            intents.append(
                (
                    order.market,
                    OrderIntent(
                        order.market,
                        Side.BUY if order.side is ParentSide.BUY else Side.SELL,
                        OrderType.MARKET if limit is None else OrderType.LIMIT,
                        int(order.qty / spec.lot_size),
                        limit,
                        order.reduce_only,
                    ),
                )
            )
        if node.type is NodeType.ALGO and node.parent is not None:
            parent = document.parents[node.parent]
            spec = ctx.specs.get(parent.market)
            if spec is None:
                raise ApiError(
                    400,
                    FLOW_UNKNOWN_MARKET,
                    f"{where}.parent: its market {parent.market} is not listed here.",
                )
            lots = 0 if parent.qty is None else int(parent.qty / spec.lot_size)
            limit = None if parent.limit_price is None else int(parent.limit_price / spec.tick_size)
            intents.append(
                (
                    parent.market,
                    OrderIntent(
                        parent.market,
                        Side.BUY if parent.side is ParentSide.BUY else Side.SELL,
                        OrderType.MARKET if limit is None else OrderType.LIMIT,
                        lots,
                        limit,
                        parent.reduce_only,
                    ),
                )
            )
    return intents


def _client_flow_id(text: str | None, document: StrategyDocument) -> str | None:
    if text is None or text == "":
        return None
    if len(text) > MAX_CLIENT_ALGO_ID_CHARS or not all(
        c.isascii() and (c.isalnum() or c in "-_") for c in text
    ):
        raise ApiError(
            400,
            BAD_CLIENT_FLOW_ID,
            f"clientFlowId must be 1 to {MAX_CLIENT_ALGO_ID_CHARS} letters, digits, '-' or '_'.",
        )
    if text.startswith("perpx-"):
        raise ApiError(400, BAD_CLIENT_FLOW_ID, "clientFlowId: the prefix perpx- is reserved.")
    if any(p.client_algo_id == text for p in document.parents.values()):
        raise ApiError(
            400, BAD_CLIENT_FLOW_ID, "clientFlowId must differ from its parents' client_algo_id (child ids)."
        )
    return text


def _refused(exc: FlowRefused) -> ApiError:
    if exc.code == SERVICE_UNAVAILABLE:
        return service_unavailable(exc.msg)
    return ApiError(400, exc.code, exc.msg)


def _create(
    service: FlowService, account_id: AccountId, client_flow_id: str | None, data: dict[str, Any]
) -> Flow:
    try:
        return service.create(int(account_id), client_flow_id, data)
    except FlowRefused as exc:
        raise _refused(exc) from None


@router.post("/perpx/v1/flow")
async def new_flow(request: Request) -> dict[str, Any]:
    """Start a strategy document's flow on the venue: ``document`` (JSON), optional ``clientFlowId``."""
    ctx, account_id, params = await auth(request, "trade")
    data, document = _document(params.values.get("document"))
    client_flow_id = _client_flow_id(params.values.get("clientFlowId"), document)
    intents = _check_markets(ctx, document)
    service = flows_of(ctx)
    algos = service_of(ctx)
    for market, intent in intents:
        lock = await admit_parent(ctx, algos, account_id, ctx.specs[market], intent)
        if lock is not None:
            lock.release()
    flow = await ctx.seq.query(lambda _engine: _create(service, account_id, client_flow_id, data))
    return {
        "flowId": flow.flow_id,
        "clientFlowId": flow.row.client_flow_id,
        "success": True,
        "code": 0,
        "msg": "OK",
    }


def _mine(service: FlowService, account_id: AccountId, flow_id: int) -> Flow:
    flow = service.flows.get(flow_id)
    if flow is None or flow.account_id != int(account_id):
        raise ApiError(400, UNKNOWN_FLOW, f"No flow of yours has flowId {flow_id}.")
    return flow


@router.get("/perpx/v1/flow")
async def get_flow(request: Request) -> dict[str, Any]:
    """One flow (``flowId``) with its nodes, or every flow of the account, newest first."""
    ctx, account_id, params = await auth(request, "read")
    flow_id = wire.id_param(params.values, "flowId")
    service = flows_of(ctx)
    if flow_id is not None:
        flow = _mine(service, account_id, flow_id)
        return await ctx.seq.query(lambda _engine: flow_json(service, flow))

    def read(_engine: object) -> dict[str, Any]:
        flows = sorted(service.of_account(int(account_id)), key=lambda f: f.flow_id, reverse=True)
        return {"total": len(flows), "flows": [flow_json(service, f) for f in flows]}

    return await ctx.seq.query(read)


@router.delete("/perpx/v1/flow")
async def cancel_flow(request: Request) -> dict[str, Any]:
    """Cancel a working flow (``flowId``): every node not yet ended is cancelled on the next turn."""
    ctx, account_id, params = await auth(request, "trade")
    flow_id = wire.id_param(params.values, "flowId")
    if flow_id is None:
        raise mandatory("flowId")
    service = flows_of(ctx)
    flow = await ctx.seq.query(lambda _engine: service.request_cancel(int(account_id), flow_id))
    if flow is None:
        raise ApiError(400, UNKNOWN_FLOW, f"No working flow of yours has flowId {flow_id}.")
    return {"flowId": flow.flow_id, "success": True, "code": 0, "msg": "OK"}


def flow_json(service: FlowService, flow: Flow) -> dict[str, Any]:
    """The flow object: its status and why (the engine's row), and each node's status, reason, order or algo."""
    row = flow.row
    states: dict[str, tuple[str, str, str | None, str]] = {}
    if flow.runner is not None:
        for name, state in flow.runner.nodes.items():
            states[name] = (
                state.status.value,
                state.reason,
                state.client_order_id,
                _decimal(state.filled_qty),
            )
    else:  # an ended flow (or one that could not be resumed): the engine's node lines
        for line in row.nodes:
            states[str(line[1])] = (str(line[2]), str(line[3]), None, "")
    nodes: list[dict[str, Any]] = []
    document = flow.decoded()
    algo_ids = {a.created.parent.client_algo_id: a.algo_id for a in service.algos.of_account(flow.account_id)}
    for index, node in enumerate(document.flow.nodes if document is not None else ()):
        status, reason, client_order_id, executed = states.get(node.id, ("pending", "", None, "0"))
        if client_order_id is None and node.order is not None and status in _SENT:
            client_order_id = child_id(row.client_flow_id, index)  # an ended flow read after a restart
        item: dict[str, Any] = {
            "id": node.id,
            "type": node.type.value,
            "status": status,
            "reason": reason,
            "executedQty": executed,
        }
        if node.order is not None:
            item["symbol"] = node.order.market
            item["clientOrderId"] = client_order_id
        if node.parent is not None and document is not None:
            client_algo_id = document.parents[node.parent].client_algo_id
            item["clientAlgoId"] = client_algo_id
            item["algoId"] = algo_ids.get(client_algo_id)
        nodes.append(item)
    return {
        "flowId": flow.flow_id,
        "clientFlowId": row.client_flow_id,
        "name": row.name,
        "status": row.status.value,
        "reason": row.reason,
        "bookTime": row.created_ns // NS_PER_MS,
        "endTime": flow.end_ms,
        "nodes": nodes,
    }


def _decimal(value: Decimal) -> str:
    """``0.080`` as ``0.08``, ``100`` as ``100`` (never an exponent)."""
    return f"{value.normalize():f}" if value else "0"
