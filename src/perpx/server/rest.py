"""Request plumbing shared by every route: parameters as Binance sends them, signing, weights.

Binance reads parameters from the query string and from an
``application/x-www-form-urlencoded`` body alike; the signature covers the raw
bytes of both. :func:`params_of` returns both the parsed parameters (first
value wins, unknown names kept and ignored by handlers) and the raw bytes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import parse_qsl

from fastapi import Request

from perpx.server.auth import lookup_key, verify_signed
from perpx.server.context import ServerContext
from perpx.server.errors import ApiError
from perpx.server.keys import ApiKey

MAX_BODY_BYTES = 64 * 1024
MAX_QUERY_BYTES = 16 * 1024


@dataclass(frozen=True, slots=True)
class Params:
    """A request's parameters: ``values`` by name, and the raw bytes the signature covers."""

    values: dict[str, str]
    raw_query: bytes
    raw_body: bytes

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.values.get(name, default)


def ctx_of(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.ctx
    return ctx


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client is not None else None


async def params_of(request: Request) -> Params:
    """Parse query string and form body; oversized or undecodable input is refused with a code."""
    cached: Params | None = getattr(request.state, "params", None)
    if cached is not None:
        return cached
    raw_query: bytes = request.scope.get("query_string", b"")
    if len(raw_query) > MAX_QUERY_BYTES:
        raise ApiError(
            400, -1104, f"The query string is {len(raw_query)} bytes; at most {MAX_QUERY_BYTES} are allowed."
        )
    raw_body = b""
    if request.method in ("POST", "PUT", "DELETE"):
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise ApiError(
                413, -1104, f"The request body is {declared} bytes; at most {MAX_BODY_BYTES} are allowed."
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise ApiError(413, -1104, f"The request body is over {MAX_BODY_BYTES} bytes.")
            chunks.append(chunk)
        raw_body = b"".join(chunks)
    if raw_body and not _is_form(request, raw_body):
        raise ApiError(
            400,
            -1102,
            "The request body must be application/x-www-form-urlencoded;"
            f" it was sent as {request.headers.get('content-type', '')[:64]!r}.",
        )
    values: dict[str, str] = {}
    try:
        for raw in (raw_query, raw_body):
            for name, value in parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False):
                if name in values:
                    raise ApiError(400, -1101, f"Duplicate values for a parameter detected: '{name[:64]}'.")
                values[name] = value
    except UnicodeDecodeError:
        raise ApiError(
            400, -1100, "Illegal characters found in a parameter: the request is not UTF-8."
        ) from None
    params = Params(values, raw_query, raw_body)
    request.state.params = params
    return params


def _is_form(request: Request, raw_body: bytes) -> bool:
    if not raw_body:
        return False
    content_type = request.headers.get("content-type", "")
    return content_type.startswith("application/x-www-form-urlencoded") or not content_type


def charge(request: Request, weight: int) -> None:
    """Count ``weight`` against the caller's per-IP budget (429/418 when over; see limits.py)."""
    ctx_of(request).components.limits.charge(request, weight)


def count_orders(request: Request, account_id: int, orders: int = 1) -> None:
    """Count new orders against the account's order-rate limits (-1015 when over; see limits.py)."""
    ctx_of(request).components.limits.count_orders(request, account_id, orders)


async def public(request: Request, weight: int = 1) -> Params:
    """A public endpoint's parameters, after charging its weight."""
    charge(request, weight)
    return await params_of(request)


async def signed(request: Request, scope: str, weight: int = 1) -> tuple[ApiKey, Params]:
    """Authenticate a signed request (key, scope, IP, timestamp window, HMAC); return key and params."""
    charge(request, weight)
    params = await params_of(request)
    ctx = ctx_of(request)
    key = lookup_key(ctx.keys, request.headers, client_ip(request), scope)
    verify_signed(key, params.raw_query, params.raw_body, params.values, time.time_ns() // 1_000_000)
    return key, params


async def keyed(request: Request, scope: str = "read", weight: int = 1) -> tuple[ApiKey, Params]:
    """A request carrying only ``X-MBX-APIKEY`` (listenKey endpoints): no timestamp, no signature."""
    charge(request, weight)
    params = await params_of(request)
    key = lookup_key(ctx_of(request).keys, request.headers, client_ip(request), scope)
    return key, params
