"""Rate limits as Binance applies them: request weight per IP, new orders per account, and IP bans.

Rules
-----
============================  ===========================================================
limit                         what happens
============================  ===========================================================
request weight per IP         every REST response carries ``X-MBX-USED-WEIGHT-1M``; a
(per minute, fixed window)    request that takes the minute over the limit gets HTTP 429
                              ``-1003`` with ``Retry-After`` (seconds to the next minute)
keep sending while limited    after ``ban_after`` refusals in one minute the IP is banned:
                              HTTP 418 ``-1003`` with ``Retry-After``; bans last 2 minutes,
                              doubling with each ban, up to 3 days; a day without a ban
                              resets the escalation
new orders per account        ``X-MBX-ORDER-COUNT-10S`` / ``-1M`` on order responses; an
(10 s and 1 min windows)      order over either limit gets HTTP 429 ``-1015`` and is not
                              counted
============================  ===========================================================

Windows are fixed (they reset at whole minutes and 10 s of a monotonic clock), so each request
costs O(1): a few dict lookups and integer compares. A client that waits ``Retry-After`` after a
429 always finds a fresh window and is never banned.

Limits come from the environment (``PERPX_RATE_LIMIT_WEIGHT_1M``, ``PERPX_ORDER_LIMIT_10S``,
``PERPX_ORDER_LIMIT_1M``, ``PERPX_RATE_LIMIT_BAN_AFTER``), else from ``[server]`` in the venue
config (``rate_limit_weight_1m``, ``order_limit_10s``, ``order_limit_1m``, ``ban_after``), else
Binance's USDS-M defaults (2,400 weight/min, 300 orders/10 s, 1,200 orders/min).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from perpx.server.context import ServerContext
from perpx.server.errors import ApiError

router = APIRouter()
log = logging.getLogger("perpx.limits")

WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
ORDER_10S_HEADER = "X-MBX-ORDER-COUNT-10S"
ORDER_1M_HEADER = "X-MBX-ORDER-COUNT-1M"
FIRST_BAN_S = 120.0
MAX_BAN_S = 3 * 86_400.0
BAN_RESET_S = 86_400.0
"""A day between the end of one ban and the next resets the escalation to the first (2-minute) ban."""
MAX_TRACKED = 50_000
"""Tracked IPs and accounts before stale entries are swept (keeps memory bounded under a flood)."""


@dataclass(frozen=True, slots=True)
class Limits:
    """The configured limits; see the module docstring for where each comes from."""

    weight_1m: int = 2_400
    orders_10s: int = 300
    orders_1m: int = 1_200
    ban_after: int = 10
    """429 refusals an IP may receive in one minute before the next request bans it."""


_ENV = {
    "weight_1m": "PERPX_RATE_LIMIT_WEIGHT_1M",
    "orders_10s": "PERPX_ORDER_LIMIT_10S",
    "orders_1m": "PERPX_ORDER_LIMIT_1M",
    "ban_after": "PERPX_RATE_LIMIT_BAN_AFTER",
}
_CONFIG = {
    "weight_1m": "rate_limit_weight_1m",
    "orders_10s": "order_limit_10s",
    "orders_1m": "order_limit_1m",
    "ban_after": "ban_after",
}


def limits_from(raw_config: Mapping[str, Any], env: Mapping[str, str]) -> Limits:
    """The limits from ``env`` first, then the config's ``[server]`` table, then the defaults.

    Raises
    ------
    ValueError
        If a value is not a positive integer (naming the variable or key).
    """
    server = raw_config.get("server", {})
    values: dict[str, int] = {}
    for name, variable in _ENV.items():
        text = env.get(variable)
        if text:
            if not text.isascii() or not text.isdigit() or int(text) < 1:
                raise ValueError(f"{variable} was {text!r}; use a positive integer")
            values[name] = int(text)
        elif isinstance(server, Mapping) and _CONFIG[name] in server:
            value = server[_CONFIG[name]]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"server.{_CONFIG[name]} was {value!r}; use a positive integer")
            values[name] = value
    return Limits(**values)


class _Ip:
    __slots__ = ("ban_level", "banned_until", "refused", "used", "window")

    def __init__(self) -> None:
        self.window = -1
        self.used = 0
        self.refused = 0
        self.banned_until = 0.0
        self.ban_level = 0


class _Orders:
    __slots__ = ("minute", "minute_count", "ten", "ten_count")

    def __init__(self) -> None:
        self.ten = -1
        self.ten_count = 0
        self.minute = -1
        self.minute_count = 0


class RateLimiter:
    """Per-IP weight and per-account order counters (component ``limits``).

    Parameters
    ----------
    limits
        The limits to enforce.
    monotonic
        Seconds on a monotonic clock (windows and bans); injectable for tests.
    wall
        Seconds since the epoch, only to tell a banned client until when (``IP banned until``).
    """

    def __init__(
        self,
        limits: Limits,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.limits = limits
        self.monotonic = monotonic
        self.wall = wall
        self._ips: dict[str, _Ip] = {}
        self._orders: dict[int, _Orders] = {}
        self.refused: dict[str, int] = {"weight": 0, "banned": 0, "orders": 0}
        """Refusals since start, by kind (``perpx_rate_limited_total``): 429 -1003, 418 -1003, 429 -1015."""

    # ------------------------------------------------------------------ component protocol

    def resume_seq(self) -> int | None:
        return None

    def on_applied(self, batch: list[Any]) -> None:
        return None

    def close(self) -> None:
        return None

    # ------------------------------------------------------------------ weight per IP

    def charge(self, request: Request, weight: int) -> None:
        """Count ``weight`` for the request's IP; raise 429 or 418 when over the limit."""
        self.charge_ip(request.client.host if request.client is not None else "", weight)

    def charge_ip(self, ip: str, weight: int) -> None:
        """Count ``weight`` for ``ip``.

        Raises
        ------
        ApiError
            418 ``-1003`` while ``ip`` is banned; 429 ``-1003`` when the minute's weight would
            exceed the limit (the weight is still counted, as Binance does).
        """
        now = self.monotonic()
        state = self._ip(ip, now)
        if state.banned_until > now:
            self.refused["banned"] += 1
            raise self._banned(state, now)
        state.used += weight
        if state.used <= self.limits.weight_1m:
            return
        state.refused += 1
        if state.refused > self.limits.ban_after:
            if now - state.banned_until > BAN_RESET_S:
                state.ban_level = 0
            state.banned_until = now + min(MAX_BAN_S, FIRST_BAN_S * 2**state.ban_level)
            state.ban_level += 1
            log.warning(
                "IP %s banned for %.0f s after %d refused requests",
                ip,
                state.banned_until - now,
                state.refused,
            )
            self.refused["banned"] += 1
            raise self._banned(state, now)
        retry = max(1, math.ceil((state.window + 1) * 60 - now))
        self.refused["weight"] += 1
        raise ApiError(
            429,
            -1003,
            f"Too many requests; current limit is {self.limits.weight_1m} requests per minute.",
            headers={"Retry-After": str(retry)},
        )

    def used_weight(self, ip: str) -> int:
        """The weight ``ip`` has used in the current minute."""
        state = self._ips.get(ip)
        if state is None or state.window != int(self.monotonic() // 60):
            return 0
        return state.used

    def _ip(self, ip: str, now: float) -> _Ip:
        state = self._ips.get(ip)
        if state is None:
            if len(self._ips) >= MAX_TRACKED:
                self._sweep_ips(now)
            state = self._ips[ip] = _Ip()
        window = int(now // 60)
        if state.window != window:
            state.window, state.used, state.refused = window, 0, 0
        return state

    def _banned(self, state: _Ip, now: float) -> ApiError:
        remaining = state.banned_until - now
        until_ms = int((self.wall() + remaining) * 1000)
        return ApiError(
            418,
            -1003,
            f"Way too many requests; IP banned until {until_ms}.",
            headers={"Retry-After": str(max(1, math.ceil(remaining)))},
        )

    def _sweep_ips(self, now: float) -> None:
        window = int(now // 60)
        self._ips = {
            ip: s for ip, s in self._ips.items() if s.window == window or now - s.banned_until <= BAN_RESET_S
        }

    # ------------------------------------------------------------------ new orders per account

    def count_orders(self, request: Request, account_id: int, n: int = 1) -> None:
        """Count ``n`` new orders of ``account_id``; the counts go out as ``X-MBX-ORDER-COUNT-*``."""
        ten, minute = self.count_account_orders(account_id, n)
        request.scope.setdefault("state", {})["perpx_order_counts"] = (ten, minute)

    def count_account_orders(self, account_id: int, n: int = 1) -> tuple[int, int]:
        """Count ``n`` new orders; return the 10 s and 1 min counts after.

        Raises
        ------
        ApiError
            429 ``-1015`` if either window would go over its limit (nothing is counted then).
        """
        now = self.monotonic()
        state = self._orders.get(account_id)
        if state is None:
            if len(self._orders) >= MAX_TRACKED:
                self._orders = {a: s for a, s in self._orders.items() if s.minute == int(now // 60)}
            state = self._orders[account_id] = _Orders()
        ten, minute = int(now // 10), int(now // 60)
        if state.ten != ten:
            state.ten, state.ten_count = ten, 0
        if state.minute != minute:
            state.minute, state.minute_count = minute, 0
        limits = self.limits
        if state.ten_count + n > limits.orders_10s:
            self.refused["orders"] += 1
            raise _too_many_orders(limits.orders_10s, "TEN_SECONDS", (ten + 1) * 10 - now)
        if state.minute_count + n > limits.orders_1m:
            self.refused["orders"] += 1
            raise _too_many_orders(limits.orders_1m, "MINUTE", (minute + 1) * 60 - now)
        state.ten_count += n
        state.minute_count += n
        return state.ten_count, state.minute_count


def _too_many_orders(limit: int, interval: str, retry_s: float) -> ApiError:
    return ApiError(
        429,
        -1015,
        f"Too many new orders; current limit is {limit} orders per {interval}.",
        headers={"Retry-After": str(max(1, math.ceil(retry_s)))},
    )


class UsedWeightMiddleware:
    """Adds ``X-MBX-USED-WEIGHT-1M`` (and the order counts, when counted) to every HTTP response.

    A pure ASGI middleware: it touches only the response start message, so streaming
    responses and WebSocket connections pass through unchanged.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ctx: ServerContext = scope["app"].state.ctx
        limiter = ctx.components.limits
        client = scope.get("client")
        ip = client[0] if client else ""

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start" and limiter is not None:
                headers = list(message.get("headers", []))
                headers.append((WEIGHT_HEADER.lower().encode(), str(limiter.used_weight(ip)).encode()))
                counts = scope.get("state", {}).get("perpx_order_counts")
                if counts is not None:
                    headers.append((ORDER_10S_HEADER.lower().encode(), str(counts[0]).encode()))
                    headers.append((ORDER_1M_HEADER.lower().encode(), str(counts[1]).encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
