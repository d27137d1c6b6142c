"""The pre-trade estimate's inputs from a running venue's public REST (``perpx tca estimate --venue``).

Any venue that answers Binance USDS-M's public market data routes will do (perpx's own server is
one); nothing is signed and nothing is written:

* ``GET /fapi/v1/klines?interval=1m&limit=1441``: the last day of one-minute candles (close and
  base volume); one still forming at the venue's time (``GET /fapi/v1/time``) is dropped;
* ``GET /fapi/v1/aggTrades?limit=1000``: the most recent trades, each saying whether the buyer was
  the maker. They give the **tape-inferred quotes** (:func:`perpx.tca.benchmarks.quotes_from_tape`)
  and the **taker orders** the impact coefficient is fitted on: Binance aggregates the fills of one
  taker order at one price into one aggTrade, and an order that walked several levels leaves
  consecutive aggTrades with the same time and side, grouped here into one order (two takers on
  the same side in the same millisecond are counted as one);
* ``GET /fapi/v1/depth?limit=5``: the book now, the last quote (the spread the order would meet).

Every request has a timeout; an unreachable venue, an error answer (its ``code`` and ``msg``) or an
answer of the wrong shape is an :class:`~perpx.tca.inputs.InputError` naming the route.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from perpx.tca.benchmarks import quotes_from_tape
from perpx.tca.inputs import InputError, Quote, Side
from perpx.tca.venue import Candle, TakerOrder

TIMEOUT_S = 10.0
KLINES_LIMIT = 1441
"""A day of one-minute candles plus the one still forming."""
TRADES_LIMIT = 1000
"""Binance's largest aggTrades page: the calibration sample."""


@dataclass(frozen=True, slots=True)
class VenueData:
    """What the estimate needs, read from the venue."""

    candles: list[Candle]
    quotes: list[Quote]
    orders: list[TakerOrder]
    trades: int


def get(base_url: str, path: str, params: dict[str, str | int]) -> Any:
    """``GET base_url + path`` with ``params``, decoded JSON; failures as :class:`InputError`."""
    url = f"{base_url.rstrip('/')}{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        raise InputError(f"{path}: the venue answered {exc.code}: {_error_text(exc)}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise InputError(f"--venue {base_url}: cannot reach it ({reason})") from None
    except ValueError:
        raise InputError(f"{path}: the venue's answer is not JSON") from None


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read())
        return f"{body['code']} {body['msg']}"
    except (ValueError, KeyError, TypeError, OSError):
        return str(exc.reason)


def check_url(base_url: str) -> str:
    """``base_url`` if it is an http(s) address, else an :class:`InputError`."""
    parsed = urllib.parse.urlparse(base_url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InputError(f"--venue must be an http(s) URL such as http://127.0.0.1:8000, was {base_url!r}")
    return base_url


def _decimal(route: str, value: object) -> Decimal:
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise InputError(f"{route}: not a number in the answer: {value!r}") from None
    if not number.is_finite() or number < 0:
        raise InputError(f"{route}: not a price or quantity in the answer: {value!r}")
    return number


def server_time_ms(base_url: str) -> int:
    """The venue's clock (``GET /fapi/v1/time``), which may not be this machine's."""
    body = get(base_url, "/fapi/v1/time", {})
    try:
        return int(body["serverTime"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"/fapi/v1/time: no serverTime in the answer ({exc})") from None


def read_candles(base_url: str, symbol: str, now_ms: int) -> list[Candle]:
    """The one-minute candles of the last day that closed before ``now_ms`` (the forming one dropped)."""
    rows = get(base_url, "/fapi/v1/klines", {"symbol": symbol, "interval": "1m", "limit": KLINES_LIMIT})
    if not isinstance(rows, list):
        raise InputError("/fapi/v1/klines: the answer is not a list of candles")
    try:
        return [
            Candle(int(r[0]), _decimal("/fapi/v1/klines", r[4]), _decimal("/fapi/v1/klines", r[5]))
            for r in rows
            if int(r[6]) < now_ms
        ]
    except (IndexError, TypeError, ValueError) as exc:
        raise InputError(f"/fapi/v1/klines: a candle of the wrong shape ({exc})") from None


def read_tape(
    base_url: str, symbol: str
) -> tuple[list[tuple[int, Decimal, Decimal, bool]], list[TakerOrder]]:
    """The recent aggTrades ``(time_ms, price, qty, buyer_maker)``, oldest first, and their taker orders."""
    rows = get(base_url, "/fapi/v1/aggTrades", {"symbol": symbol, "limit": TRADES_LIMIT})
    if not isinstance(rows, list):
        raise InputError("/fapi/v1/aggTrades: the answer is not a list of trades")
    try:
        prints = sorted(
            (
                (
                    int(r["T"]),
                    _decimal("/fapi/v1/aggTrades", r["p"]),
                    _decimal("/fapi/v1/aggTrades", r["q"]),
                    bool(r["m"]),
                    int(r["a"]),
                )
                for r in rows
            ),
            key=lambda p: p[4],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"/fapi/v1/aggTrades: a trade of the wrong shape ({exc})") from None
    return [p[:4] for p in prints], taker_orders(prints)


def taker_orders(prints: list[tuple[int, Decimal, Decimal, bool, int]]) -> list[TakerOrder]:
    """Consecutive aggTrades with one time and one side, as one taker order each (module docstring)."""
    orders: list[TakerOrder] = []
    group: list[tuple[int, Decimal, Decimal, bool, int]] = []
    for row in [*prints, None]:
        if group and (row is None or (row[0], row[3]) != (group[0][0], group[0][3])):
            qty = sum((g[2] for g in group), Decimal(0))
            if qty > 0:
                value = sum((g[1] * g[2] for g in group), Decimal(0))
                # the buyer was the maker: the taker sold
                side = Side.SELL if group[0][3] else Side.BUY
                orders.append(TakerOrder(side, qty, value / qty, group[0][0]))
            group = []
        if row is not None:
            group.append(row)
    return orders


def read_book(base_url: str, symbol: str) -> tuple[Quote | None, int | None]:
    """The touch now (``None`` if a side is empty or the book is crossed) and the answer's time.

    The time is the venue's own (``T`` or ``E``): on a venue whose clock is not the wall clock (a
    perpx server with ``clock = "manual"``) it is the one its candles are stamped with.
    """
    body = get(base_url, "/fapi/v1/depth", {"symbol": symbol, "limit": 5})
    try:
        stamp = body.get("T") or body.get("E")
        venue_ms = None if stamp is None else int(stamp)
        bids, asks = body["bids"], body["asks"]
        if not bids or not asks:
            return None, venue_ms
        bid, ask = _decimal("/fapi/v1/depth", bids[0][0]), _decimal("/fapi/v1/depth", asks[0][0])
    except (AttributeError, KeyError, IndexError, TypeError, ValueError) as exc:
        raise InputError(f"/fapi/v1/depth: a book of the wrong shape ({exc})") from None
    return (Quote(venue_ms or 0, bid, ask) if bid < ask else None), venue_ms


def venue_data(base_url: str, symbol: str) -> VenueData:
    """Candles, quotes (the tape's and the book's now) and taker orders of ``symbol`` at ``base_url``."""
    check_url(base_url)
    now, venue_ms = read_book(base_url, symbol)
    now_ms = max(server_time_ms(base_url), venue_ms or 0)
    candles = read_candles(base_url, symbol, now_ms)
    prints, orders = read_tape(base_url, symbol)
    quotes = quotes_from_tape([(t, p, m) for t, p, _, m in prints])
    if now is not None:
        after = quotes[-1].time_ms + 1 if quotes else 0
        quotes.append(Quote(max(now.time_ms, now_ms, after), now.bid, now.ask))
    return VenueData(candles, quotes, orders, len(prints))
