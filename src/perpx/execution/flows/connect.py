"""Reach a venue for ``perpx algo run``: a perpx server by its URL, or any exchange by its ccxt id.

A URL (``http://host:port``) gets ccxt's unmodified ``binanceusdm`` with its endpoints pointed at
the server (the setup ``docs/api.md`` gives for any ccxt client); anything else must be a ccxt
exchange id (``binanceusdm``, ``bybit``, ...). The result is the port's
:class:`~perpx.execution.ccxt_venue.CcxtVenue`.
"""

from __future__ import annotations

from typing import Any

import ccxt

from perpx.execution.ccxt_venue import CcxtVenue

_PERPX_PATHS = (
    ("fapiPublic", "/fapi/v1"),
    ("fapiPublicV2", "/fapi/v2"),
    ("fapiPublicV3", "/fapi/v3"),
    ("fapiPrivate", "/fapi/v1"),
    ("fapiPrivateV2", "/fapi/v2"),
    ("fapiPrivateV3", "/fapi/v3"),
    ("fapiData", "/futures/data"),
)


def exchange_for(venue: str, key: str | None, secret: str | None) -> Any:
    """The ccxt exchange object for ``venue`` (a URL or a ccxt id). Raises ``ValueError`` for an unknown id."""
    credentials = {"apiKey": key or "", "secret": secret or "", "enableRateLimit": True}
    if venue.startswith(("http://", "https://")):
        base = venue.rstrip("/")
        exchange = ccxt.binanceusdm(
            {
                **credentials,
                "enableRateLimit": False,
                "options": {"fetchCurrencies": False, "fetchOpenOrders": {"warnWithoutSymbol": False}},
            }
        )
        exchange.urls["api"] = {name: base + path for name, path in _PERPX_PATHS}
        return exchange
    if venue not in ccxt.exchanges:
        raise ValueError(
            f"unknown venue {venue!r}: give a perpx URL (http://host:port) or a ccxt exchange id"
        )
    return getattr(ccxt, venue)(credentials)


def connect(venue: str, key: str | None, secret: str | None) -> CcxtVenue:
    """The port over ``venue``; loads its markets (so a wrong URL or key fails here, before any order)."""
    return CcxtVenue(exchange_for(venue, key, secret))
