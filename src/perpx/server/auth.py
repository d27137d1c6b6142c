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
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Mapping

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
