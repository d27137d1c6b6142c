"""Hedging venues outside perpx: a policy's ``venue`` reached through ccxt (the execution engine's ccxt venue).

A symbol's ``[otc.markets.X] venue`` names where its hedges run:

* absent or ``""``: perpx's own book (:class:`~perpx.execution.inprocess.EngineVenue`);
* ``"ccxt:<id>"``: any exchange ccxt knows (``ccxt:binanceusdm``, ``ccxt:bybit``, ...);
* ``"http://host:port"`` or ``"https://..."``: another perpx venue, through ccxt's unmodified
  ``binanceusdm`` with its URLs pointed there.

The desk's API key and secret for the outside venue are never in the config: they come from the
environment, ``PERPX_OTC_HEDGE_API_KEY`` and ``PERPX_OTC_HEDGE_API_SECRET``. The desk's position
there counts in its delta (:class:`OutsideVenue.position_qty`), so a hedge filled outside is not
hedged again on the next review.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import ccxt

from perpx.execution.ccxt_venue import CcxtVenue

KEY_ENV = "PERPX_OTC_HEDGE_API_KEY"
SECRET_ENV = "PERPX_OTC_HEDGE_API_SECRET"
_PERPX_APIS = (
    ("fapiPublic", "/fapi/v1"),
    ("fapiPublicV2", "/fapi/v2"),
    ("fapiPublicV3", "/fapi/v3"),
    ("fapiPrivate", "/fapi/v1"),
    ("fapiPrivateV2", "/fapi/v2"),
    ("fapiPrivateV3", "/fapi/v3"),
    ("fapiData", "/futures/data"),
)


class OutsideVenueError(ValueError):
    """A ``venue`` that names no exchange ccxt knows, or credentials that are missing."""


def is_outside(name: str) -> bool:
    """True when ``name`` (a policy's ``venue``) is not perpx's own book."""
    return bool(name)


def check_venue_name(name: str, where: str) -> str | None:
    """Why ``name`` cannot be a hedging venue, or ``None`` (config checks: no network, no keys)."""
    if not name or name.startswith(("http://", "https://")):
        return None
    if name.startswith("ccxt:"):
        exchange = name.removeprefix("ccxt:")
        if exchange in ccxt.exchanges:
            return None
        return f"{where}: ccxt knows no exchange {exchange!r} (ccxt.exchanges lists them)"
    return f'{where} must be "ccxt:<exchange id>" or a perpx URL (http://host:port), not {name!r}'


def exchange_for(name: str, key: str, secret: str) -> Any:
    """The ccxt exchange object a ``venue`` names, with the desk's credentials (not yet loaded)."""
    options = {"fetchCurrencies": False, "fetchOpenOrders": {"warnWithoutSymbol": False}}
    if name.startswith(("http://", "https://")):
        exchange = ccxt.binanceusdm(
            {"apiKey": key, "secret": secret, "enableRateLimit": False, "options": options}
        )
        base = name.rstrip("/")
        exchange.urls["api"] = {api: base + path for api, path in _PERPX_APIS}
        return exchange
    error = check_venue_name(name, "venue")
    if error is not None:
        raise OutsideVenueError(error)
    return getattr(ccxt, name.removeprefix("ccxt:"))(
        {"apiKey": key, "secret": secret, "enableRateLimit": True}
    )


class OutsideVenue(CcxtVenue):
    """The execution engine's ccxt venue, plus the desk's position there (for its delta)."""

    def position_qty(self, market: str) -> Decimal:
        """The desk's signed position in ``market`` on this venue, in base units (0 without one)."""
        symbol = self._symbol(market)
        total = Decimal(0)
        for row in self._call("fetch_positions", [symbol]):
            if row.get("symbol") != symbol:
                continue
            contracts = Decimal(str(row.get("contracts") or 0)) * Decimal(str(row.get("contractSize") or 1))
            total += -contracts if row.get("side") == "short" else contracts
        return total


def open_outside(name: str, env: Mapping[str, str] | None = None) -> OutsideVenue:
    """Connect to the venue ``name`` with the credentials of ``env`` (default: the process's environment).

    Raises
    ------
    OutsideVenueError
        If the name is not a venue, or the credentials are not set.
    """
    values = os.environ if env is None else env
    key, secret = values.get(KEY_ENV, ""), values.get(SECRET_ENV, "")
    if not key or not secret:
        raise OutsideVenueError(
            f"hedging on {name} needs the desk's credentials in {KEY_ENV} and {SECRET_ENV}"
        )
    return OutsideVenue(exchange_for(name, key, secret))
