"""Connect ccxt to a perpx venue in one line: ``connect(url, key, secret)``.

ccxt's ``binanceusdm`` talks to Binance's hosts; pointing it at perpx means replacing every URL
of its ``api`` map and reading Binance's linear error codes as exact matches. These functions do
that once, for the sync client (:func:`connect`) and the asyncio/WebSocket one
(:func:`connect_pro`)::

    from perpx.client import connect
    exchange = connect("http://127.0.0.1:8000", key, secret)
    exchange.create_order("BTCUSDT", "limit", "buy", 0.01, 60000)

The venue serves Binance's paths on one host: ``/fapi/v1``, ``/fapi/v2``, ``/fapi/v3``,
``/futures/data`` over HTTP and ``/ws`` (market streams), ``/private/ws`` (user data) and
``/ws-fapi/v1`` (the WebSocket API: ccxt.pro's ``create_order_ws``, ``cancel_order_ws``,
``fetch_balance_ws``...) over WebSocket. ccxt is an optional dependency of perpx (``pip install ccxt``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

__all__ = ["api_urls", "connect", "connect_pro", "ws_api_url", "ws_url"]

DEFAULT_OPTIONS: dict[str, Any] = {
    "fetchCurrencies": False,  # perpx has no spot/margin wallet endpoints (sapi)
    "fetchOpenOrders": {"warnWithoutSymbol": False},
}


def api_urls(url: str) -> dict[str, str]:
    """ccxt's ``urls["api"]`` entries for a venue at ``url`` (``http[s]://host:port``)."""
    base = _base(url)
    return {
        "fapiPublic": base + "/fapi/v1",
        "fapiPublicV2": base + "/fapi/v2",
        "fapiPublicV3": base + "/fapi/v3",
        "fapiPrivate": base + "/fapi/v1",
        "fapiPrivateV2": base + "/fapi/v2",
        "fapiPrivateV3": base + "/fapi/v3",
        "fapiData": base + "/futures/data",
    }


def ws_url(url: str) -> str:
    """The venue's WebSocket base (``ws[s]://host:port/ws``) for an HTTP ``url``."""
    base = _base(url)
    scheme = "wss" if base.startswith("https://") else "ws"
    return f"{scheme}://{base.split('://', 1)[1]}/ws"


def ws_api_url(url: str) -> str:
    """The venue's WebSocket API (``ws[s]://host:port/ws-fapi/v1``) for an HTTP ``url``."""
    return ws_url(url).removesuffix("/ws") + "/ws-fapi/v1"


def connect(url: str, key: str | None = None, secret: str | None = None, **options: Any) -> Any:
    """A ccxt ``binanceusdm`` (sync) configured for the perpx venue at ``url``.

    ``options`` are added to ccxt's ``options`` (``defaultType``, ``recvWindow``...).
    """
    import ccxt

    return _configure(ccxt.binanceusdm, url, key, secret, options)


def connect_pro(url: str, key: str | None = None, secret: str | None = None, **options: Any) -> Any:
    """A ccxt.pro ``binanceusdm`` (asyncio, REST and WebSocket) configured for the venue at ``url``.

    Close it with ``await exchange.close()``.
    """
    import ccxt.pro

    exchange = _configure(ccxt.pro.binanceusdm, url, key, secret, options)
    exchange.urls["api"]["ws"] = {"linear": ws_url(url), "ws-api": {"linear": ws_api_url(url)}}
    return exchange


def _base(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{url!r} is not an http(s)://host[:port] address of a perpx venue")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def _configure(factory: Any, url: str, key: str | None, secret: str | None, options: dict[str, Any]) -> Any:
    settings: dict[str, Any] = {"enableRateLimit": False, "options": {**DEFAULT_OPTIONS, **options}}
    if key is not None:
        settings["apiKey"] = key
    if secret is not None:
        settings["secret"] = secret
    exchange = factory(settings)
    exchange.urls["api"] = {**exchange.urls["api"], **api_urls(url)}
    exchange.exceptions["exact"] = {**exchange.exceptions["exact"], **exchange.exceptions["linear"]["exact"]}
    return exchange
