"""Public market data: Binance USDS-M ``/fapi/v1`` routes that need no key."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request

from perpx.server.rest import public

router = APIRouter(tags=["market data"])


@router.get("/fapi/v1/ping")
async def ping(request: Request) -> dict[str, Any]:
    """Connectivity check."""
    await public(request)
    return {}


@router.get("/fapi/v1/time")
async def server_time(request: Request) -> dict[str, Any]:
    """The server's wall-clock time in ms (signing windows use it; venue time may be manual)."""
    await public(request)
    return {"serverTime": time.time_ns() // 1_000_000}
