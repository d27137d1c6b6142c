"""Candles (klines) and the 24-hour ticker: Binance's intervals, and base candles summed into them.

Trades are summed into base candles at three resolutions (1m, 1h, 1d) as they are stored
(:func:`candle_rows`); every Binance interval is a union of one of them (:func:`base_resolution`), so a
kline query reads at most ``limit`` intervals of base candles and fills the intervals without trades
with the previous close (:func:`merge`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from perpx.engine.values import MarketId

if TYPE_CHECKING:
    from perpx.server.marketdata.trades import Trade

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
WEEK_OFFSET_MS = 4 * DAY_MS
"""Weeks open on Monday 00:00 UTC; the epoch was a Thursday."""
BASE_RESOLUTIONS_MS = (MINUTE_MS, HOUR_MS, DAY_MS)

INTERVALS: dict[str, int] = {
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": HOUR_MS,
    "2h": 2 * HOUR_MS,
    "4h": 4 * HOUR_MS,
    "6h": 6 * HOUR_MS,
    "8h": 8 * HOUR_MS,
    "12h": 12 * HOUR_MS,
    "1d": DAY_MS,
    "3d": 3 * DAY_MS,
    "1w": WEEK_MS,
    "1M": 31 * DAY_MS,
}
"""Binance's kline intervals and their (nominal, for ``1M`` longest) length in ms."""


@dataclass(frozen=True, slots=True)
class Candle:
    """One kline. Volumes are lots; quote volumes are ``ticks x lots`` units (``tick_size x lot_size``).

    ``first_id``/``last_id`` are ``-1`` and ``count`` 0 for an interval without trades (its prices are
    the previous close).
    """

    open_ms: int
    close_ms: int
    open_ticks: int
    high_ticks: int
    low_ticks: int
    close_ticks: int
    volume_lots: int
    quote_units: int
    count: int
    buy_lots: int
    buy_quote_units: int
    first_id: int
    last_id: int


@dataclass(frozen=True, slots=True)
class Ticker:
    """Rolling 24-hour statistics of a market (one-minute granularity) and its last trade."""

    market: MarketId
    open_ms: int
    close_ms: int
    open_ticks: int
    high_ticks: int
    low_ticks: int
    last_ticks: int
    last_lots: int
    volume_lots: int
    quote_units: int
    first_id: int
    last_id: int
    count: int


def interval_open(interval: str, ts_ms: int) -> int:
    """Open time of the ``interval`` kline holding ``ts_ms`` (UTC; weeks from Monday, calendar months)."""
    if interval == "1M":
        day = datetime.fromtimestamp(ts_ms // 1000, tz=UTC)
        return int(datetime(day.year, day.month, 1, tzinfo=UTC).timestamp()) * 1000
    if interval == "1w":
        return ts_ms - (ts_ms - WEEK_OFFSET_MS) % WEEK_MS
    size = INTERVALS[interval]
    return ts_ms - ts_ms % size


def interval_next(interval: str, open_ms: int) -> int:
    """Open time of the kline after the one opening at ``open_ms``."""
    if interval == "1M":
        day = datetime.fromtimestamp(open_ms // 1000, tz=UTC)
        year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
        return int(datetime(year, month, 1, tzinfo=UTC).timestamp()) * 1000
    return open_ms + INTERVALS[interval]


def interval_previous(interval: str, open_ms: int) -> int:
    """Open time of the kline before the one opening at ``open_ms``."""
    if interval == "1M":
        return interval_open("1M", open_ms - 1)
    return open_ms - INTERVALS[interval]


def base_resolution(interval: str) -> int:
    """The stored candle resolution every ``interval`` kline is a union of."""
    size = INTERVALS[interval]
    if size < HOUR_MS:
        return MINUTE_MS
    if size < DAY_MS:
        return HOUR_MS
    return DAY_MS


UPSERT_CANDLE = """
INSERT INTO candles VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
ON CONFLICT (market, res_ms, open_ms) DO UPDATE SET
    high_ticks = max(high_ticks, excluded.high_ticks),
    low_ticks = min(low_ticks, excluded.low_ticks),
    close_ticks = excluded.close_ticks,
    close_lots = excluded.close_lots,
    volume_lots = volume_lots + excluded.volume_lots,
    quote_units = quote_units + excluded.quote_units,
    count = count + excluded.count,
    buy_lots = buy_lots + excluded.buy_lots,
    buy_quote_units = buy_quote_units + excluded.buy_quote_units,
    last_id = excluded.last_id
"""

CANDLE_COLUMNS = (
    "open_ms, open_ticks, high_ticks, low_ticks, close_ticks, volume_lots, quote_units, count,"
    " buy_lots, buy_quote_units, first_id, last_id"
)


class _CandleDraft:
    """A base candle being summed from one batch's trades before its upsert."""

    __slots__ = (
        "buy_lots",
        "buy_quote",
        "close",
        "close_lots",
        "count",
        "first_id",
        "high",
        "last_id",
        "low",
        "open",
        "quote",
        "volume",
    )

    def __init__(self, trade: Trade) -> None:
        self.open = self.high = self.low = self.close = trade.price_ticks
        self.close_lots = 0
        self.volume = self.quote = self.buy_lots = self.buy_quote = self.count = 0
        self.first_id = self.last_id = trade.trade_id
        self.add(trade)

    def add(self, trade: Trade) -> None:
        price, lots = trade.price_ticks, trade.qty_lots
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.close = price
        self.close_lots = lots
        self.volume += lots
        self.quote += price * lots
        self.count += 1
        self.last_id = trade.trade_id
        if not trade.buyer_maker:
            self.buy_lots += lots
            self.buy_quote += price * lots


def candle_rows(trades: Iterable[Trade]) -> list[tuple[object, ...]]:
    drafts: dict[tuple[str, int, int], _CandleDraft] = {}
    for trade in trades:
        for res in BASE_RESOLUTIONS_MS:
            key = (trade.market, res, trade.ts_ms - trade.ts_ms % res)
            draft = drafts.get(key)
            if draft is None:
                drafts[key] = _CandleDraft(trade)
            else:
                draft.add(trade)
    return [
        (
            market,
            res,
            open_ms,
            d.open,
            d.high,
            d.low,
            d.close,
            d.close_lots,
            d.volume,
            d.quote,
            d.count,
            d.buy_lots,
            d.buy_quote,
            d.first_id,
            d.last_id,
        )
        for (market, res, open_ms), d in drafts.items()
    ]


def kline_opens(
    interval: str,
    first_open_ms: int,
    last_open_ms: int,
    now: int,
    limit: int,
    start_ms: int | None,
    end_ms: int | None,
) -> list[int]:
    """Open times of Binance's kline selection, oldest first, between the first stored base candle and now.

    ``first_open_ms``/``last_open_ms`` are the first and last base candle's open times. With a
    start time: the first ``limit`` klines opening at or after it; otherwise the last ``limit``
    opening at or before the end time (default now). Trade, mark, index and premium klines all
    select this way.
    """
    lowest = interval_open(interval, first_open_ms)
    highest = interval_open(interval, max(now, last_open_ms))
    if end_ms is not None:
        highest = min(highest, interval_open(interval, end_ms))
    opens: list[int] = []
    if start_ms is not None:
        at = interval_open(interval, start_ms)
        if at < start_ms:
            at = interval_next(interval, at)
        at = max(at, lowest)
        while at <= highest and len(opens) < limit:
            opens.append(at)
            at = interval_next(interval, at)
    else:
        at = highest
        while at >= lowest and len(opens) < limit:
            opens.append(at)
            at = interval_previous(interval, at)
        opens.reverse()
    return opens


K = TypeVar("K")


def sum_into_klines(
    interval: str,
    opens: list[int],
    rows: Sequence[tuple[int, ...]],
    close_before: int | None,
    summed: Callable[[int, int, list[tuple[int, ...]]], K],
    repeated: Callable[[int, int, int], K],
    close_of: Callable[[K], int],
) -> list[K]:
    """Sum base candles (sorted by open time, ``row[0]`` the open) into the klines opening at ``opens``.

    ``summed(open_ms, close_ms, rows)`` builds a kline from the base rows in it; an interval with
    none repeats the previous close (``repeated(open_ms, close_ms, close)``), as Binance does; one
    before any close is left out. ``close_of`` reads a kline's close for the next gap.
    """
    out: list[K] = []
    index = 0
    previous_close = close_before
    for open_ms in opens:
        next_open = interval_next(interval, open_ms)
        group: list[tuple[int, ...]] = []
        while index < len(rows) and rows[index][0] < next_open:
            if rows[index][0] >= open_ms:
                group.append(rows[index])
            index += 1
        if group:
            kline = summed(open_ms, next_open - 1, group)
            previous_close = close_of(kline)
        elif previous_close is not None:
            kline = repeated(open_ms, next_open - 1, previous_close)
        else:
            continue
        out.append(kline)
    return out


def _summed_candle(open_ms: int, close_ms: int, group: list[tuple[int, ...]]) -> Candle:
    return Candle(
        open_ms=open_ms,
        close_ms=close_ms,
        open_ticks=group[0][1],
        high_ticks=max(r[2] for r in group),
        low_ticks=min(r[3] for r in group),
        close_ticks=group[-1][4],
        volume_lots=sum(r[5] for r in group),
        quote_units=sum(r[6] for r in group),
        count=sum(r[7] for r in group),
        buy_lots=sum(r[8] for r in group),
        buy_quote_units=sum(r[9] for r in group),
        first_id=group[0][10],
        last_id=group[-1][11],
    )


def _repeated_candle(open_ms: int, close_ms: int, p: int) -> Candle:
    return Candle(open_ms, close_ms, p, p, p, p, 0, 0, 0, 0, 0, -1, -1)


def merge(
    interval: str, opens: list[int], rows: Sequence[tuple[int, ...]], close_before: int | None
) -> list[Candle]:
    """Sum base trade candles into the klines opening at ``opens``; fill the gaps with the previous close."""
    return sum_into_klines(
        interval, opens, rows, close_before, _summed_candle, _repeated_candle, lambda c: c.close_ticks
    )


def klines(
    db: sqlite3.Connection,
    market: str,
    interval: str,
    limit: int,
    start_ms: int | None,
    end_ms: int | None,
    now: int,
) -> list[Candle]:
    """Binance's ``klines`` selection (:func:`kline_opens`), oldest first, from the first trade to now.

    Intervals without trades are filled with the previous close and zero volume, as Binance does.
    """
    res = base_resolution(interval)
    bounds = db.execute(
        "SELECT min(open_ms), max(open_ms) FROM candles WHERE market = ? AND res_ms = ?", (market, res)
    ).fetchone()
    if bounds is None or bounds[0] is None:
        return []
    opens = kline_opens(interval, bounds[0], bounds[1], now, limit, start_ms, end_ms)
    if not opens:
        return []
    rows = db.execute(
        f"SELECT {CANDLE_COLUMNS} FROM candles WHERE market = ? AND res_ms = ?"
        " AND open_ms >= ? AND open_ms < ? ORDER BY open_ms",
        (market, res, opens[0], interval_next(interval, opens[-1])),
    ).fetchall()
    before = db.execute(
        "SELECT close_ticks FROM candles WHERE market = ? AND res_ms = ? AND open_ms < ?"
        " ORDER BY open_ms DESC LIMIT 1",
        (market, res, opens[0]),
    ).fetchone()
    return merge(interval, opens, rows, None if before is None else before[0])


def ticker(db: sqlite3.Connection, market: str, now: int, last: Trade | None) -> Ticker:
    """Rolling 24-hour statistics ending at ``now``: the last 1,440 one-minute candles, and ``last``,
    the market's last trade."""
    window_open = interval_open("1m", now) - DAY_MS + MINUTE_MS
    summary = db.execute(
        "SELECT max(high_ticks), min(low_ticks), sum(volume_lots), sum(quote_units), sum(count),"
        " min(first_id), max(last_id) FROM candles WHERE market = ? AND res_ms = ? AND open_ms >= ?",
        (market, MINUTE_MS, window_open),
    ).fetchone()
    opening = db.execute(
        "SELECT open_ticks FROM candles WHERE market = ? AND res_ms = ? AND open_ms >= ?"
        " ORDER BY open_ms LIMIT 1",
        (market, MINUTE_MS, window_open),
    ).fetchone()
    last_ticks = 0 if last is None else last.price_ticks
    name = MarketId(market)
    if opening is None or summary[0] is None:
        return Ticker(
            name, now - DAY_MS, now, last_ticks, last_ticks, last_ticks, last_ticks, 0, 0, 0, -1, -1, 0
        )
    assert last is not None
    return Ticker(
        market=name,
        open_ms=now - DAY_MS,
        close_ms=now,
        open_ticks=opening[0],
        high_ticks=summary[0],
        low_ticks=summary[1],
        last_ticks=last.price_ticks,
        last_lots=last.qty_lots,
        volume_lots=summary[2],
        quote_units=summary[3],
        first_id=summary[5],
        last_id=summary[6],
        count=summary[4],
    )
