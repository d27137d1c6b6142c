"""Binance request signing: API key, HMAC-SHA256 over the raw parameters, timestamp window, scopes.

The signature is checked against the bytes as received (query string, then
body, with ``&signature=...`` cut out), never re-encoded or sorted, with a
constant-time comparison. Signing windows use wall-clock time even when the
venue clock is manual: a client's timestamp is real time. Secrets never appear
in an error message or a log line.

=====================================  ======  ======  ==============================
refusal                                HTTP    code    checked by
=====================================  ======  ======  ==============================
no or malformed ``X-MBX-APIKEY``       401     -2014   :func:`lookup_key`
unknown key, missing scope, wrong IP   401     -2015   :func:`lookup_key`
no or malformed timestamp/signature    400     -1102   :func:`check_window`, :func:`verify_signed`
``recvWindow`` over 60,000 ms          400     -1131   :func:`check_window`
timestamp outside the window           400     -1021   :func:`check_window`
signature does not match               400     -1022   :func:`verify_signed`
=====================================  ======  ======  ==============================

The admin token is checked by :class:`AdminGuard`: in constant time (both sides hashed first, so
not even the length leaks), and with a lockout per client address against guessing (see its
docstring for the rule).

The client address is the socket's peer unless ``perpx serve --forwarded-allow-ips`` names the
proxy it came through; only then does ``X-Forwarded-For`` count (uvicorn rewrites the address
before any of this code sees it). An IPv4 client of a dual-stack (``::``) listener arrives as
``::ffff:a.b.c.d`` and is matched against IPv4 allow-lists as ``a.b.c.d``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import re
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from perpx.server.errors import ApiError, bad_key, bad_signature, mandatory, timestamp_outside_window
from perpx.server.keys import ApiKey, KeyStore

DEFAULT_RECV_WINDOW_MS = 5_000
MAX_RECV_WINDOW_MS = 60_000
FUTURE_TOLERANCE_MS = 1_000
_SIGNATURE = re.compile(rb"(^|&)signature=([^&]*)")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_MILLIS = re.compile(r"[0-9]{1,15}")
_KEY_SHAPE = re.compile(r"[A-Za-z0-9]{1,128}")


def split_signature(raw: bytes) -> tuple[bytes, str | None]:
    """``raw`` without its ``signature`` parameter, and the signature (``None`` if absent)."""
    match = _SIGNATURE.search(raw)
    if match is None:
        return raw, None
    start, end = match.span()
    rest = raw[:start] + raw[end:]
    if match.group(1) == b"" and rest.startswith(b"&"):
        rest = rest[1:]
    return rest, match.group(2).decode("ascii", "replace")


def lookup_key(keys: KeyStore, headers: Mapping[str, str], client_ip: str | None, scope: str) -> ApiKey:
    """The key named by ``X-MBX-APIKEY``, if it exists, has ``scope`` and allows ``client_ip``.

    Raises
    ------
    ApiError
        401 ``-2014`` for a missing or malformed key, 401 ``-2015`` for an unknown key, a key
        without ``scope``, or a request from outside the key's IP allow-list.
    """
    api_key = headers.get("x-mbx-apikey")
    if not api_key:
        raise ApiError(401, -2014, "API-key format invalid. (no X-MBX-APIKEY header was sent)")
    if not _KEY_SHAPE.fullmatch(api_key):
        raise ApiError(401, -2014, "API-key format invalid.")
    key = keys.get(api_key)
    if key is None:
        raise bad_key()
    if not key.allows(scope):
        raise ApiError(
            401,
            -2015,
            f"Invalid API-key, IP, or permissions for action. (the key lacks the '{scope}' permission)",
        )
    if key.ips and not _ip_allowed(client_ip, key.ips):
        raise ApiError(
            401,
            -2015,
            f"Invalid API-key, IP, or permissions for action. (requests from {client_ip} are not allowed for this key)",
        )
    return key


def _ip_allowed(client_ip: str | None, allowed: tuple[str, ...]) -> bool:
    if client_ip is None:
        return False
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for entry in allowed:
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def verify_signed(
    key: ApiKey,
    raw_query: bytes,
    raw_body: bytes,
    params: Mapping[str, str],
    wall_ms: int,
) -> None:
    """Check timestamp, recvWindow and signature of a signed request (Binance's rules).

    Accepted when ``timestamp < now + 1000`` and ``now - timestamp <= recvWindow``;
    ``recvWindow`` defaults to 5,000 ms and may not exceed 60,000. The signature is the hex
    HMAC-SHA256 of the raw query string followed by the raw body, without ``signature=``;
    it is compared in constant time, case-insensitively.

    Raises
    ------
    ApiError
        400 ``-1102`` for a missing or malformed timestamp, recvWindow or signature,
        400 ``-1131`` for a recvWindow over 60,000 ms, 400 ``-1021`` outside the window,
        400 ``-1022`` for a signature that does not match.
    """
    check_window(params, wall_ms)
    query_rest, query_sig = split_signature(raw_query)
    body_rest, body_sig = split_signature(raw_body)
    signature = query_sig if query_sig is not None else body_sig
    if not signature:
        raise mandatory("signature")
    if not _HEX64.fullmatch(signature):
        raise bad_signature()
    payload = query_rest + body_rest
    expected = hmac.new(key.secret.encode(), payload, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.lower().encode("ascii")):
        raise bad_signature()


def check_window(params: Mapping[str, str], wall_ms: int) -> None:
    """Check ``timestamp`` and ``recvWindow`` against ``wall_ms`` (see :func:`verify_signed`).

    Handlers may call it again just before the command is sequenced (inside the command
    builder), as Binance re-checks the window before the matching engine: a request that
    waited in a queue past its window is then refused with ``-1021`` instead of executed late.
    """
    timestamp_text = params.get("timestamp")
    if not timestamp_text:
        raise mandatory("timestamp")
    if not _MILLIS.fullmatch(timestamp_text):
        raise ApiError(
            400, -1102, f"Parameter 'timestamp' was malformed: {timestamp_text[:32]!r} is not milliseconds."
        )
    window_text = params.get("recvWindow") or str(DEFAULT_RECV_WINDOW_MS)
    if not _MILLIS.fullmatch(window_text):
        raise ApiError(
            400, -1102, f"Parameter 'recvWindow' was malformed: {window_text[:32]!r} is not milliseconds."
        )
    window = int(window_text)
    if window > MAX_RECV_WINDOW_MS or window <= 0:
        raise ApiError(
            400,
            -1131,
            f"recvWindow must be 1..{MAX_RECV_WINDOW_MS} ms; it was {window}.",
        )
    timestamp = int(timestamp_text)
    if not (timestamp < wall_ms + FUTURE_TOLERANCE_MS and wall_ms - timestamp <= window):
        raise timestamp_outside_window()


# ---------------------------------------------------------------------------------------------- admin token

log = logging.getLogger("perpx.auth")


@dataclass(frozen=True, slots=True)
class Lockout:
    """How many wrong admin tokens a client address may send, and how long it is locked out after.

    ``max_failures`` wrong tokens within ``window_s`` lock the address out for ``first_ban_s``;
    each further lockout doubles, up to ``max_ban_s``; ``reset_s`` after the end of the last
    lockout the doubling starts again from ``first_ban_s``. ``max_tracked`` bounds the memory a
    flood of distinct addresses can take: over it, addresses with nothing in play are forgotten
    first, then the oldest of those not locked out.
    """

    max_failures: int = 5
    window_s: float = 60.0
    first_ban_s: float = 60.0
    max_ban_s: float = 3_600.0
    reset_s: float = 86_400.0
    max_tracked: int = 10_000


class _Guessing:
    __slots__ = ("banned_until", "bans", "failures")

    def __init__(self) -> None:
        self.failures: deque[float] = deque()
        self.banned_until = -math.inf
        self.bans = 0


class AdminGuard:
    """Checks ``X-PERPX-ADMIN`` and locks out client addresses that keep sending wrong tokens.

    =============================================  ======  =======  ===================================
    request                                        HTTP    code     counted
    =============================================  ======  =======  ===================================
    admin API disabled (no token configured)       403     -9201    no
    from an address that is locked out             429     -9204    no (the token is not even compared),
                                                                    ``Retry-After``: seconds left
    no ``X-PERPX-ADMIN`` header, or an empty one   401     -9202    no (it guesses nothing)
    a wrong token                                  401     -9202    yes; the ``max_failures``-th within
                                                                    ``window_s`` is answered 429 -9204
                                                                    and starts a lockout
    the right token                                passes           no; it does not end a lockout early
    =============================================  ======  =======  ===================================

    Why a right token does not lift a lockout: the address is what is locked out, and an attacker
    may share it (a NAT, a proxy, another user of the same host). Why a missing token is not
    counted: a client without the header (a browser opening ``/docs``) is not guessing.

    Parameters
    ----------
    lockout
        The rule; see :class:`Lockout`.
    monotonic
        Seconds on a monotonic clock; injectable for tests.
    """

    def __init__(
        self, lockout: Lockout | None = None, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.lockout = lockout if lockout is not None else Lockout()
        self.monotonic = monotonic
        self._clients: dict[str, _Guessing] = {}

    def check(self, expected: str | None, given: str | None, client: str) -> None:
        """Pass if ``given`` is the admin token ``expected`` and ``client`` is not locked out.

        Raises
        ------
        ApiError
            403 ``-9201`` when the admin API is disabled, 429 ``-9204`` (with ``Retry-After``) while
            ``client`` is locked out or on the wrong token that locks it out, 401 ``-9202`` on a
            missing or wrong token.
        """
        if expected is None:
            raise ApiError(
                403, -9201, "The admin API is disabled: set PERPX_ADMIN_TOKEN or [venue] admin_token."
            )
        now = self.monotonic()
        state = self._clients.get(client)
        if state is not None and state.banned_until > now:
            raise self._locked_out(client, state.banned_until - now)
        if not given:
            raise ApiError(401, -9202, "Missing X-PERPX-ADMIN token.")
        if tokens_match(given, expected):
            return
        if state is None:
            state = self._track(client, now)
        rule = self.lockout
        while state.failures and now - state.failures[0] >= rule.window_s:
            state.failures.popleft()
        state.failures.append(now)
        if len(state.failures) < rule.max_failures:
            raise ApiError(
                401,
                -9202,
                f"Wrong X-PERPX-ADMIN token ({len(state.failures)} of {rule.max_failures} wrong tokens"
                f" within {rule.window_s:.0f} s lock this address out).",
            )
        if now - state.banned_until > rule.reset_s:
            state.bans = 0
        ban_s = min(rule.max_ban_s, rule.first_ban_s * 2**state.bans)
        state.bans += 1
        state.banned_until = now + ban_s
        state.failures.clear()
        log.warning("admin: %s locked out for %.0f s after %d wrong tokens", client, ban_s, rule.max_failures)
        raise self._locked_out(client, ban_s)

    def locked_out_for(self, client: str) -> float:
        """Seconds ``client`` stays locked out (0 when it is not)."""
        state = self._clients.get(client)
        return 0.0 if state is None else max(0.0, state.banned_until - self.monotonic())

    def _track(self, client: str, now: float) -> _Guessing:
        rule = self.lockout
        if len(self._clients) >= rule.max_tracked:
            self._clients = {
                c: s
                for c, s in self._clients.items()
                if s.banned_until > now
                or now - s.banned_until <= rule.reset_s
                or (s.failures and now - s.failures[-1] < rule.window_s)
            }
            # a flood of distinct addresses all still in play: forget a quarter, the oldest of those
            # not locked out first (a stable sort keeps the insertion order within each group)
            excess = len(self._clients) - rule.max_tracked * 3 // 4
            if excess > 0:
                locked_last = sorted(self._clients, key=lambda c: self._clients[c].banned_until > now)
                for forgotten in locked_last[:excess]:
                    del self._clients[forgotten]
        state = self._clients[client] = _Guessing()
        return state

    @staticmethod
    def _locked_out(client: str, remaining_s: float) -> ApiError:
        retry = max(1, math.ceil(remaining_s))
        return ApiError(
            429,
            -9204,
            f"Too many wrong X-PERPX-ADMIN tokens from {client}; locked out for {retry} s.",
            headers={"Retry-After": str(retry)},
        )


def tokens_match(given: str, expected: str) -> bool:
    """``given == expected`` in time independent of both (SHA-256 first, so the length does not leak)."""
    return hmac.compare_digest(
        hashlib.sha256(given.encode()).digest(), hashlib.sha256(expected.encode()).digest()
    )
