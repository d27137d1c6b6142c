"""The ASGI application: routes from every adapter module, Binance-shaped errors, start and stop.

Each adapter module exposes ``router`` (its routes) and may expose
``components(ctx) -> dict[str, Component]`` (its read models and streams).
:func:`build_components` gathers the components; :func:`create_app` mounts the
routers, turns every :class:`ApiError` (and any validation failure) into
``{"code", "msg"}`` with its HTTP status, and starts the sequencer on startup.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import ModuleType
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from perpx.server import admin, limits, public, streams, trading, userstream
from perpx.server.context import ServerContext
from perpx.server.errors import ApiError

log = logging.getLogger("perpx.server")

MODULES: tuple[ModuleType, ...] = (limits, public, trading, userstream, streams, admin)


def build_components(ctx: ServerContext) -> dict[str, Any]:
    """Every module's components, in module order (the sequencer feeds them in this order)."""
    out: dict[str, Any] = {}
    for module in MODULES:
        make = getattr(module, "components", None)
        if make is not None:
            out.update(make(ctx))
    return out


def create_app(ctx: ServerContext) -> FastAPI:
    """The FastAPI app for an opened venue (see :func:`perpx.server.context.open_venue`)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        import asyncio

        ctx.seq.start(asyncio.get_running_loop())
        for module in MODULES:
            start = getattr(module, "on_start", None)
            if start is not None:
                await start(ctx)
        try:
            yield
        finally:
            for module in reversed(MODULES):
                stop = getattr(module, "on_stop", None)
                if stop is not None:
                    await stop(ctx)
            ctx.close()

    app = FastAPI(
        title="perpx",
        summary="A perpetual-futures venue: Binance USDS-M compatible REST and WebSocket, plus the perpx admin API.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    app.add_middleware(limits.UsedWeightMiddleware)

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

    for module in MODULES:
        app.include_router(module.router)
    return app
