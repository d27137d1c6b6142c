"""``POST`` and ``DELETE /fapi/v1/order`` on a lean path: a plain Starlette route, answered with msgspec.

Order entry is the one route whose latency clients measure. A FastAPI route spends, per request,
a dependency solve, a response-model validation of the returned dict and ``jsonable_encoder`` on
it before ``json.dumps``; none of it checks anything this route does not check itself. This route
runs the same handlers (:func:`perpx.server.trading.orders.new_order`,
:func:`~perpx.server.trading.orders.cancel_order`) and encodes their answer with msgspec.

What stays the same, because only the routing and the encoding change:

* it is matched before FastAPI's routes (:func:`install`), inside the same app, so every
  middleware (``X-MBX-USED-WEIGHT-1M``, the order-count headers) and every exception handler
  (``{"code", "msg"}`` with its status) apply to it exactly as before;
* the other methods of the path (``GET``, ``PUT``) do not match it and fall through to FastAPI;
* FastAPI's declarations of the two methods stay, as the ``/docs`` description of the route.

The answer is built from the command's own events (no read-model query on the placing path).

Conditional types (STOP, STOP_MARKET, TAKE_PROFIT, TAKE_PROFIT_MARKET, TRAILING_STOP_MARKET) are
refused here with ``-4120``, as Binance refuses them since its algo-order migration: they are placed
on ``/fapi/v1/algoOrder`` and named by their ``algoId`` on the algo routes only. The caller is
authenticated first, so an unsigned request still gets its authentication error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from perpx.engine.commands import ConditionalType
from perpx.server.rest import params_of
from perpx.server.trading.new_order import algo_type_refused
from perpx.server.trading.orders import cancel_order, new_order
from perpx.server.trading.params import auth

ORDER_PATH = "/fapi/v1/order"

_encode = msgspec.json.Encoder().encode
_HANDLERS: dict[str, Callable[[Request], Awaitable[dict[str, Any]]]] = {
    "POST": new_order,
    "DELETE": cancel_order,
}


class JsonBytes(Response):
    """A JSON answer already encoded (``application/json``, as FastAPI's ``JSONResponse`` sends)."""

    media_type = "application/json"


async def order_endpoint(request: Request) -> Response:
    """Place or cancel one order; a refusal raises its ``ApiError`` for the app's handler."""
    if request.method == "POST":
        kind = (await params_of(request)).get("type") or ""
        if kind in ConditionalType.__members__:
            await auth(request, "trade")
            raise algo_type_refused(kind)
    with request.app.state.ctx.components.metrics.order_ack_timer("rest"):
        answer = await _HANDLERS[request.method](request)
    return JsonBytes(_encode(answer))


def install(app: FastAPI) -> None:
    """Put the lean route in front of every route of ``app`` (call after the routers are included)."""
    app.router.routes.insert(0, Route(ORDER_PATH, order_endpoint, methods=list(_HANDLERS)))
