"""The ASGI applications: the public one and the admin one, Binance-shaped errors, start and stop.

Each adapter module exposes ``router`` (its routes) and may expose
``on_start(ctx)`` / ``on_stop(ctx)``; the read models and streams are built
together, in dependency order, by :func:`build_components`
(:class:`perpx.server.components.Components`). :func:`create_app` is the public listener (Binance REST and
WebSocket, ``/health``, ``/ready``); :func:`create_admin_app` is the admin
listener (``/admin/v1``, ``/health``, ``/ready``). They share one venue (one
sequencer), and neither serves the other's routes: ``/admin/v1`` on the public
port is a plain 404. Both turn every :class:`ApiError` (and any validation
failure) into ``{"code", "msg"}`` with its HTTP status.

:func:`start_venue` and :func:`stop_venue` start and stop the sequencer and the
modules once, whatever serves the apps: ``perpx serve`` calls them around its two
listeners; the public app's lifespan calls them when it is run on its own (tests).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import ModuleType

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from perpx import console
from perpx.mcp import http as mcp_http
from perpx.ops import proposal_routes
from perpx.server import (
    admin,
    agents,
    algos,
    health,
    lending,
    limits,
    metrics,
    openapi,
    otc_routes,
    public,
    streams,
    trading,
    userstream,
)
from perpx.server.components import Components
from perpx.server.context import ServerContext
from perpx.server.errors import ApiError
from perpx.server.trading import order_route
from perpx.server.wsapi import api as wsapi

log = logging.getLogger("perpx.server")

PUBLIC_MODULES: tuple[ModuleType, ...] = (
    limits,
    public,
    trading,
    userstream,
    streams,
    lending,
    algos,
    otc_routes,
    wsapi,
)
"""Modules whose routes the public listener serves."""
MODULES: tuple[ModuleType, ...] = (*PUBLIC_MODULES, admin, health, metrics, proposal_routes, mcp_http)
"""Every module: components, start and stop (in this order; stopped in reverse)."""


def build_components(ctx: ServerContext) -> Components:
    """The venue's read models and streams (:meth:`perpx.server.components.Components.build`)."""
    return Components.build(ctx)


async def start_venue(ctx: ServerContext) -> None:
    """Start the sequencer's pipeline on the running loop, then every module's ``on_start``."""
    ctx.seq.start(asyncio.get_running_loop())
    for module in MODULES:
        start = getattr(module, "on_start", None)
        if start is not None:
            await start(ctx)
    if ctx.components.fix is not None:
        await ctx.components.fix.start()
    ctx.serving = True


async def stop_venue(ctx: ServerContext) -> None:
    """Every module's ``on_stop`` (in reverse), then drain the sequencer, snapshot and close.

    Raises whatever closing raised (a snapshot that cannot be written, say), after closing the rest.
    """
    ctx.serving = False
    try:
        if ctx.built is not None and ctx.built.fix is not None:
            await ctx.built.fix.stop()
        for module in reversed(MODULES):
            stop = getattr(module, "on_stop", None)
            if stop is not None:
                await stop(ctx)
    finally:
        try:
            if ctx.sequencer is not None:
                await ctx.sequencer.shutdown()
        finally:
            ctx.close()


def create_app(ctx: ServerContext) -> FastAPI:
    """The public listener's app for an opened venue (see :func:`perpx.server.context.open_venue`).

    Its lifespan starts and stops the venue, for running it on its own (``TestClient``);
    ``perpx serve`` runs it with the lifespan off and starts the venue itself.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await start_venue(ctx)
        try:
            yield
        finally:
            await stop_venue(ctx)

    app = FastAPI(
        title="perpx",
        summary="A perpetual-futures venue: Binance USDS-M compatible REST and WebSocket.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # openapi.install serves /docs and /redoc from the package's files
        redoc_url=None,
    )
    app.state.ctx = ctx
    app.add_middleware(limits.UsedWeightMiddleware)
    agents.install(app, ctx)
    _answer_errors(app)
    for module in PUBLIC_MODULES:
        app.include_router(module.router)
    app.include_router(health.router)
    app.include_router(agents.router)
    order_route.install(app)
    mcp_http.install(app, ctx)
    metrics.attach_public(app, ctx)
    console.mount_trading(app)
    openapi.install(app)
    return app


def create_admin_app(ctx: ServerContext) -> FastAPI:
    """The admin listener's app: ``/admin/v1`` and the health routes, on the same venue as the public app.

    It has no lifespan: it never starts or stops the venue.
    """
    app = FastAPI(
        title="perpx admin",
        summary="The perpx admin API: accounts, transfers, prices, clock, market modes and parameters.",
        version="0.1.0",
    )
    app.state.ctx = ctx
    _answer_errors(app)
    app.include_router(admin.router)
    app.include_router(lending.admin_router)
    app.include_router(agents.admin_router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    proposal_routes.attach(app)
    console.mount_operator(app)
    return app


def _answer_errors(app: FastAPI) -> None:
    """Turn every refusal, unknown route and unexpected exception into ``{"code", "msg"}``."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "request"
        return JSONResponse(
            {"code": -1102, "msg": f"Parameter '{where}' was malformed: {first.get('msg', 'invalid')}."},
            status_code=400,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return JSONResponse(
                {"code": -5000, "msg": f"Path {request.url.path} could not be found."}, status_code=404
            )
        if exc.status_code == 405:
            return JSONResponse(
                {"code": -1000, "msg": f"Method {request.method} is not allowed on {request.url.path}."},
                status_code=405,
            )
        return JSONResponse({"code": -1000, "msg": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {
                "code": -1000,
                "msg": f"An unknown error occurred while processing the request ({type(exc).__name__}).",
            },
            status_code=500,
        )
