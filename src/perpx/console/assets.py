"""Serving the built pages: ``/`` is the page, ``/console/...`` its scripts and styles.

The assets are public on both listeners (they hold no secret): the trading screen asks for an API key
and secret, the operator console for the admin token, and keeps them in the browser's session
storage; every request the pages make is checked by the venue like any other client's.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent / "static"
"""The built front end (``web/`` -> ``npm run build``)."""

ASSETS_PATH = "/console"
"""Where the scripts, styles and images are served on both listeners."""

_NO_BUILD = (
    "The web console is not built: run `npm ci && npm run build` in web/ (a released package ships it built)."
)


def _page(name: str) -> Response:
    """The page ``name`` of the build, or a 503 that says how to build it (a source checkout without it)."""
    path = STATIC_DIR / name
    if not path.is_file():
        return JSONResponse({"code": -1000, "msg": _NO_BUILD}, status_code=503)
    return FileResponse(path, media_type="text/html", headers={"Cache-Control": "no-cache"})


def _mount(app: FastAPI, page: str) -> None:
    async def index() -> Response:
        return _page(page)

    app.add_api_route("/", index, methods=["GET"], include_in_schema=False)
    app.mount(ASSETS_PATH, StaticFiles(directory=STATIC_DIR, check_dir=False), name="console")


def mount_trading(app: FastAPI) -> None:
    """The trading screen at ``/`` of the public listener."""
    _mount(app, "trading.html")


def mount_operator(app: FastAPI) -> None:
    """The operator console at ``/`` of the admin listener, and its admin read routes (token required)."""
    from perpx.console import explained, risk, risklab

    for module in (risk, explained, risklab):
        app.include_router(module.router)
    _mount(app, "operator.html")
