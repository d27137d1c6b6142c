"""Child order ids: derived, never drawn, so a restarted runner finds every child it sent.

``child_id(client_algo_id, n)`` is ``{prefix}-c{n}``; the prefix is the ``client_algo_id``
itself when short enough, or its first 19 characters, ':' (never in a client_algo_id) and a hash of the whole id, so that the
result fits Binance's 36-character ``newClientOrderId`` (``^[.A-Z:/a-z0-9_-]{1,36}$``) and two
different parents never share a prefix.
"""

from __future__ import annotations

import hashlib

MAX_CLIENT_ORDER_ID_CHARS = 36
_PREFIX_CHARS = 28


def algo_prefix(client_algo_id: str) -> str:
    """The part of every child id that names its parent."""
    if len(client_algo_id) <= _PREFIX_CHARS:
        return client_algo_id
    digest = hashlib.blake2b(client_algo_id.encode(), digest_size=4).hexdigest()
    return f"{client_algo_id[:19]}:{digest}"


def child_id(client_algo_id: str, index: int) -> str:
    """The client order id of child ``index`` (0-based) of parent ``client_algo_id``."""
    if index < 0 or index > 9_999_999:
        raise ValueError(f"child index must be 0..9999999, was {index}")
    return f"{algo_prefix(client_algo_id)}-c{index}"


def parse_child_id(client_order_id: str) -> tuple[str, int] | None:
    """``(prefix, index)`` of a child id, or ``None`` when the id is not a child id."""
    prefix, sep, tail = client_order_id.rpartition("-c")
    if not sep or not tail.isdigit() or not prefix:
        return None
    return prefix, int(tail)
