"""One WebSocket API connection's requests: read, charge, authenticate, run the method, answer.

Every request, in this order (the order REST checks the same things in):

1. read the frame (:func:`perpx.server.wsapi.frames.read_request`); a frame that cannot be read
   is still charged one request weight, so a flood of bad frames meets the IP limit;
2. charge the method's weight to the connection's IP (``-1003``, as REST: 429, then 418 banned);
3. refuse an unknown method (``-9601``) or a parameter the method does not read (``-1104``);
4. authenticate: ``apiKey`` (``-1102`` missing, ``-2014`` malformed, ``-2015`` unknown, no
   scope, an address outside the key's allow-list, the insurance fund's account), the
   ``timestamp`` window (``-1021``, ``-1131``), the signature (``-1022``);
5. count a new order against the account's order-rate limits (``-1015``);
6. run the method (:mod:`perpx.server.wsapi.methods`): its refusals are REST's codes and texts.

Any refusal is answered ``{"id", "status", "error": {"code", "msg"}}`` with the REST route's
HTTP status; an unexpected exception is answered ``-1000`` (and logged) and the connection goes
on. ``rateLimits`` (request weight, and order counts after an order) is in every answer to a
request that was read, unless the request sent ``returnRateLimits=false``.

Session authentication (``session.logon``) is Ed25519-only at Binance; perpx issues HMAC keys
only, so a logon is refused with Binance's ``-4056`` and every request is signed on its own.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from collections.abc import Mapping
from contextlib import nullcontext
from typing import Any

from perpx.engine.liquidation import INSURANCE_ACCOUNT
from perpx.engine.values import AccountId
from perpx.server.auth import check_window, lookup_key
from perpx.server.context import ServerContext
from perpx.server.errors import ApiError, bad_key, bad_signature, mandatory
from perpx.server.keys import ApiKey
from perpx.server.wsapi.frames import (
    UNKNOWN_METHOD,
    FrameError,
    Request,
    answer_frame,
    error_frame,
    frame_refused,
    read_request,
    signature_payloads,
)
from perpx.server.wsapi.methods import METHODS, Method

log = logging.getLogger("perpx.wsapi")

HMAC_LOGON_REFUSED = -4056
"""Binance's answer to ``session.logon`` with an HMAC key (INVALID_API_KEY_TYPE)."""
SESSION_METHODS = ("session.logon", "session.status", "session.logout")
SESSION_WEIGHT = 2
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


class Session:
    """The requests of one connection from ``ip`` to the venue ``ctx``, answered one at a time in order.

    ``connected_ms`` is the wall-clock time the connection was accepted (``session.status``).
    """

    def __init__(self, ctx: ServerContext, ip: str, connected_ms: int) -> None:
        self.ctx = ctx
        self.ip = ip
        self.connected_ms = connected_ms

    async def answer(self, text: str) -> dict[str, Any]:
        """The answer frame to one request frame; never raises for anything the frame holds."""
        limits = self.ctx.components.limits
        try:
            request = read_request(text)
        except FrameError as exc:
            try:
                limits.charge_ip(self.ip, 1)
            except ApiError as limited:
                return error_frame(exc.request_id, limited)
            return error_frame(exc.request_id, exc.error)
        report = request.params.get("returnRateLimits") != "false"
        counts: tuple[int, int] | None = None
        try:
            method = METHODS.get(request.method)
            weight = SESSION_WEIGHT if request.method in SESSION_METHODS else (method.weight if method else 1)
            limits.charge_ip(self.ip, weight)
            if method is None:
                return answer_frame(request.id, await self._session(request), self._rate_limits(report, None))
            timer = self.ctx.components.metrics.order_ack_timer("ws") if method.ack_timed else nullcontext()
            with timer:
                account_id = self._authenticate(request, method)
                if method.new_orders:
                    counts = limits.count_account_orders(account_id, method.new_orders)
                result = await method.handler(self.ctx, account_id, request.params)
        except ApiError as exc:
            return error_frame(request.id, exc, self._rate_limits(report, counts))
        except Exception as exc:
            log.exception("wsapi: %s failed", request.method)
            error = ApiError(
                500, -1000, f"An unknown error occurred while processing the request ({type(exc).__name__})."
            )
            return error_frame(request.id, error, self._rate_limits(report, counts))
        return answer_frame(request.id, result, self._rate_limits(report, counts))

    def refuse_binary(self) -> dict[str, Any]:
        """The answer to a binary frame (``-9600``), charged one request weight as any unread frame."""
        error = frame_refused("send each request as one JSON text frame, not binary")
        try:
            self.ctx.components.limits.charge_ip(self.ip, 1)
        except ApiError as limited:
            error = limited
        return error_frame(None, error)

    # ------------------------------------------------------------------ authentication

    def _authenticate(self, request: Request, method: Method) -> AccountId:
        params = request.params
        unread = sorted(set(params) - method.names)
        if unread:
            shown = ", ".join(repr(name[:32]) for name in unread[:5])
            raise ApiError(400, -1104, f"Parameter(s) {shown} are not read by {request.method}; remove them.")
        key = self._key(params, method.scope)
        if method.security == "signed":
            verify(key, params, time.time_ns() // 1_000_000)
        return key.account_id

    def _key(self, params: Mapping[str, str], scope: str) -> ApiKey:
        api_key = params.get("apiKey")
        if not api_key:
            raise mandatory("apiKey")
        key = lookup_key(self.ctx.keys, {"x-mbx-apikey": api_key}, self.ip, scope)
        if key.account_id == INSURANCE_ACCOUNT:
            raise bad_key()
        return key

    # ------------------------------------------------------------------ session.*

    async def _session(self, request: Request) -> dict[str, Any]:
        if request.method not in SESSION_METHODS:
            raise ApiError(
                400,
                UNKNOWN_METHOD,
                f"Unknown method {request.method!r}; the methods are {', '.join(sorted((*METHODS, *SESSION_METHODS)))}.",
            )
        if request.method == "session.logon":
            self._key(request.params, "read")
            raise ApiError(
                400,
                HMAC_LOGON_REFUSED,
                "HMAC_SHA256 API key is not supported: session.logon takes Ed25519 keys; sign each request"
                " with apiKey, timestamp and signature instead.",
            )
        return {
            "apiKey": None,
            "authorizedSince": None,
            "connectedSince": self.connected_ms,
            "returnRateLimits": True,
            "serverTime": time.time_ns() // 1_000_000,
        }

    # ------------------------------------------------------------------ rateLimits

    def _rate_limits(self, report: bool, counts: tuple[int, int] | None) -> list[dict[str, Any]] | None:
        if not report:
            return None
        limits = self.ctx.components.limits
        rows = [_limit("REQUEST_WEIGHT", "MINUTE", limits.limits.weight_1m, limits.used_weight(self.ip))]
        if counts is not None:
            rows.append(_limit("ORDERS", "SECOND", limits.limits.orders_10s, counts[0], 10))
            rows.append(_limit("ORDERS", "MINUTE", limits.limits.orders_1m, counts[1]))
        return rows


def verify(key: ApiKey, params: Mapping[str, str], wall_ms: int) -> None:
    """Check a signed request's ``timestamp`` window and its ``signature`` (:mod:`perpx.server.wsapi.frames`).

    Raises
    ------
    ApiError
        The REST codes: ``-1102`` for a missing or malformed timestamp or signature, ``-1131`` for
        a recvWindow over 60,000 ms, ``-1021`` outside the window, ``-1022`` for a wrong signature.
    """
    check_window(params, wall_ms)
    signature = params.get("signature")
    if not signature:
        raise mandatory("signature")
    if not _HEX64.fullmatch(signature):
        raise bad_signature()
    given = signature.lower().encode("ascii")
    matches = [
        hmac.compare_digest(
            hmac.new(key.secret.encode(), payload, hashlib.sha256).hexdigest().encode(), given
        )
        for payload in signature_payloads(params)
    ]
    if not any(matches):
        raise bad_signature()


def _limit(kind: str, interval: str, limit: int, count: int, interval_num: int = 1) -> dict[str, Any]:
    return {
        "rateLimitType": kind,
        "interval": interval,
        "intervalNum": interval_num,
        "limit": limit,
        "count": count,
    }
