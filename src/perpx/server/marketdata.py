"""Public market data read models: trade history and candles in SQLite, the book's update sequence in memory.

Two components, fed by the sequencer after every journaled batch:

``marketdata`` (:class:`TradeStore`, persistent, ``DATA/market.sqlite``)
    One row per public trade (the taker's ``OrderFilled`` gives price, size and
    which side was the maker), aggregate trades (consecutive fills of one taker
    order at one price, as Binance aggregates them; the aggregate's id is its
    first trade id), candles at three base resolutions (1m, 1h, 1d: every
    Binance interval is a union of one of them) and the funding-rate history
    (``FundingSettled``). A batch's rows and the last journal record applied
    are written in one transaction, so after a crash the store resumes exactly
    where it stopped (start-up replays the journal after ``resume_seq``).

``depth`` (:class:`DepthTracker`, in memory)
    The order book's update sequence for depth streams. ``book_update_id[m]``
    is the journal record of the last batch that changed market ``m``'s book
    (it starts at the journal's last record, so it never goes back across a
    restart); REST depth answers it as ``lastUpdateId`` from the same read as
    the levels. For each batch that changed a book it keeps the diff: the
    levels whose total changed, with their new absolute size, ``U``/``u`` the
    first and last record of the batch that touched the market, ``pu`` the
    previous diff's ``u``.

Cost of reads
-------------
Every query is a range scan on a primary key or index that starts at the
requested market and time (or id), so its cost grows with the window asked
for, never with the whole history: klines read at most ``limit`` intervals of
base candles, the 24h ticker at most 1,440 one-minute candles.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from perpx.engine.book import BookSide
from perpx.engine.config import VenueConfig
from perpx.engine.engine import Engine
from perpx.engine.events import (
    FundingSettled,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
)
from perpx.engine.values import NS_PER_MS, MarketId, OrderId, Side
from perpx.server.sequencer import Applied

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

META_EVERY = 1000
"""Records the store may lag behind without trades before it writes its position anyway."""


# ---------------------------------------------------------------------------------------------- rows


@dataclass(frozen=True, slots=True)
class Trade:
    """One public trade, as the taker's fill reported it."""

    market: MarketId
    trade_id: int
    ts_ms: int
    price_ticks: int
    qty_lots: int
    buyer_maker: bool


@dataclass(frozen=True, slots=True)
class AggTrade:
    """Consecutive fills of one taker order at one price; ``agg_id`` is the first trade's id."""

    market: MarketId
    agg_id: int
    last_id: int
    ts_ms: int
    price_ticks: int
    qty_lots: int
    buyer_maker: bool


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


@dataclass(frozen=True, slots=True)
class FundingRecord:
    market: MarketId
    funding_ms: int
    rate_e8: int
    mark_ticks: int | None


def public_trades(applied: Applied) -> tuple[list[Trade], list[AggTrade]]:
    """The trades of one command (from the takers' fills) and their aggregates."""
    trades: list[Trade] = []
    aggs: list[AggTrade] = []
    agg_order: OrderId | None = None
    for event in applied.events:
        if not isinstance(event, OrderFilled) or event.is_maker:
            continue
        ts_ms = event.ts_ns // NS_PER_MS
        buyer_maker = event.side is Side.SELL
        trade = Trade(event.market, event.trade_id, ts_ms, event.price_ticks, event.qty_lots, buyer_maker)
        trades.append(trade)
        last = aggs[-1] if aggs else None
        if (
            last is not None
            and agg_order == event.order_id
            and last.price_ticks == event.price_ticks
            and last.last_id == event.trade_id - 1
        ):
            aggs[-1] = AggTrade(
                last.market,
                last.agg_id,
                event.trade_id,
                last.ts_ms,
                last.price_ticks,
                last.qty_lots + event.qty_lots,
                buyer_maker,
            )
        else:
            aggs.append(
                AggTrade(
                    event.market,
                    event.trade_id,
                    event.trade_id,
                    ts_ms,
                    event.price_ticks,
                    event.qty_lots,
                    buyer_maker,
                )
            )
            agg_order = event.order_id
    return trades, aggs


# ---------------------------------------------------------------------------------------------- intervals


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


# ---------------------------------------------------------------------------------------------- trade store

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS trades (
    market TEXT NOT NULL, id INTEGER NOT NULL, ts_ms INTEGER NOT NULL,
    price_ticks INTEGER NOT NULL, qty_lots INTEGER NOT NULL, buyer_maker INTEGER NOT NULL,
    PRIMARY KEY (market, id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS trades_by_time ON trades (market, ts_ms);
CREATE TABLE IF NOT EXISTS agg_trades (
    market TEXT NOT NULL, id INTEGER NOT NULL, last_id INTEGER NOT NULL, ts_ms INTEGER NOT NULL,
    price_ticks INTEGER NOT NULL, qty_lots INTEGER NOT NULL, buyer_maker INTEGER NOT NULL,
    PRIMARY KEY (market, id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS agg_trades_by_time ON agg_trades (market, ts_ms);
CREATE TABLE IF NOT EXISTS candles (
    market TEXT NOT NULL, res_ms INTEGER NOT NULL, open_ms INTEGER NOT NULL,
    open_ticks INTEGER NOT NULL, high_ticks INTEGER NOT NULL, low_ticks INTEGER NOT NULL,
    close_ticks INTEGER NOT NULL, close_lots INTEGER NOT NULL,
    volume_lots INTEGER NOT NULL, quote_units INTEGER NOT NULL, count INTEGER NOT NULL,
    buy_lots INTEGER NOT NULL, buy_quote_units INTEGER NOT NULL,
    first_id INTEGER NOT NULL, last_id INTEGER NOT NULL,
    PRIMARY KEY (market, res_ms, open_ms)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS funding (
    market TEXT NOT NULL, funding_ms INTEGER NOT NULL, rate_e8 INTEGER NOT NULL, mark_ticks INTEGER,
    PRIMARY KEY (market, funding_ms)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS funding_by_time ON funding (funding_ms);
"""

_UPSERT_CANDLE = """
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

_CANDLE_COLUMNS = (
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


class TradeStore:
    """The ``marketdata`` component: public trades, candles and funding history (see the module doc).

    Written only on the sequencer thread; read from any thread (each reading thread gets its own
    connection; SQLite's WAL lets readers see the last committed batch while the writer goes on).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # the journal is the durable record: this model is rebuilt from it after a crash
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.executescript(_SCHEMA)
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        self._last_seq: int = meta.get("last_seq", 0)
        self._written_seq = self._last_seq
        self._now_ns: int = meta.get("now_ns", 0)
        self.first_ms: int | None = meta.get("first_ms")
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ component

    def resume_seq(self) -> int | None:
        return self._last_seq

    @property
    def now_ms(self) -> int:
        """Venue time of the last command the store saw, in ms."""
        return self._now_ns // NS_PER_MS

    def on_applied(self, batch: list[Applied]) -> None:
        trades: list[Trade] = []
        aggs: list[AggTrade] = []
        funding: list[FundingRecord] = []
        last_seq = self._last_seq
        for applied in batch:
            if applied.seq <= last_seq:
                continue
            self._now_ns = max(self._now_ns, applied.command.ts_ns)
            batch_trades, batch_aggs = public_trades(applied)
            trades += batch_trades
            aggs += batch_aggs
            for event in applied.events:
                if isinstance(event, FundingSettled):
                    funding.append(
                        FundingRecord(
                            event.market, event.funding_time_ns // NS_PER_MS, event.rate_e8, event.mark_ticks
                        )
                    )
        if batch[-1].seq <= last_seq:
            return
        self._last_seq = batch[-1].seq
        if self.first_ms is None:
            self.first_ms = batch[0].command.ts_ns // NS_PER_MS
        if not trades and not funding and self._last_seq - self._written_seq < META_EVERY:
            return
        self._write(trades, aggs, funding)

    def close(self) -> None:
        if self._written_seq != self._last_seq:
            self._write([], [], [])
        with self._lock:
            for reader in self._readers:
                reader.close()
            self._readers.clear()
        self._db.close()

    def _write(self, trades: list[Trade], aggs: list[AggTrade], funding: list[FundingRecord]) -> None:
        db = self._db
        db.execute("BEGIN")
        try:
            if trades:
                db.executemany(
                    "INSERT OR IGNORE INTO trades VALUES (?,?,?,?,?,?)",
                    [
                        (t.market, t.trade_id, t.ts_ms, t.price_ticks, t.qty_lots, int(t.buyer_maker))
                        for t in trades
                    ],
                )
                db.executemany(
                    "INSERT OR REPLACE INTO agg_trades VALUES (?,?,?,?,?,?,?)",
                    [
                        (
                            a.market,
                            a.agg_id,
                            a.last_id,
                            a.ts_ms,
                            a.price_ticks,
                            a.qty_lots,
                            int(a.buyer_maker),
                        )
                        for a in aggs
                    ],
                )
                db.executemany(_UPSERT_CANDLE, _candle_rows(trades))
            if funding:
                db.executemany(
                    "INSERT OR REPLACE INTO funding VALUES (?,?,?,?)",
                    [(f.market, f.funding_ms, f.rate_e8, f.mark_ticks) for f in funding],
                )
            meta = [("last_seq", self._last_seq), ("now_ns", self._now_ns)]
            if self.first_ms is not None:
                meta.append(("first_ms", self.first_ms))
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._written_seq = self._last_seq

    # ------------------------------------------------------------------ reads (any thread)

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, check_same_thread=False)
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
            with self._lock:
                self._readers.append(conn)
        return conn

    def recent_trades(self, market: str, limit: int, from_id: int | None = None) -> list[Trade]:
        """The last ``limit`` trades (or the first ``limit`` from ``from_id`` on), oldest first."""
        if from_id is None:
            rows = (
                self._reader()
                .execute(
                    "SELECT id, ts_ms, price_ticks, qty_lots, buyer_maker FROM trades"
                    " WHERE market = ? ORDER BY id DESC LIMIT ?",
                    (market, limit),
                )
                .fetchall()
            )
            rows.reverse()
        else:
            rows = (
                self._reader()
                .execute(
                    "SELECT id, ts_ms, price_ticks, qty_lots, buyer_maker FROM trades"
                    " WHERE market = ? AND id >= ? ORDER BY id LIMIT ?",
                    (market, from_id, limit),
                )
                .fetchall()
            )
        return [Trade(MarketId(market), r[0], r[1], r[2], r[3], bool(r[4])) for r in rows]

    def last_trade(self, market: str) -> Trade | None:
        trades = self.recent_trades(market, 1)
        return trades[0] if trades else None

    def agg_trades(
        self,
        market: str,
        limit: int,
        from_id: int | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[AggTrade]:
        """Binance's ``aggTrades`` selection, oldest first.

        ``from_id``: aggregates from that id on (within the time bounds if given); a start time:
        from it on; only an end time, or nothing: the last ``limit`` (up to the end time).
        """
        columns = "id, last_id, ts_ms, price_ticks, qty_lots, buyer_maker"
        where = ["market = ?"]
        args: list[object] = [market]
        if from_id is not None:
            where.append("id >= ?")
            args.append(from_id)
        if start_ms is not None:
            where.append("ts_ms >= ?")
            args.append(start_ms)
        if end_ms is not None:
            where.append("ts_ms <= ?")
            args.append(end_ms)
        newest_first = from_id is None and start_ms is None
        if from_id is not None:
            order = "id"
        elif start_ms is not None:
            order = "ts_ms, id"
        else:
            order = "ts_ms DESC, id DESC"
        rows = (
            self._reader()
            .execute(
                f"SELECT {columns} FROM agg_trades WHERE {' AND '.join(where)} ORDER BY {order} LIMIT ?",
                (*args, limit),
            )
            .fetchall()
        )
        if newest_first:
            rows.reverse()
        return [AggTrade(MarketId(market), r[0], r[1], r[2], r[3], r[4], bool(r[5])) for r in rows]

    def klines(
        self,
        market: str,
        interval: str,
        limit: int,
        start_ms: int | None = None,
        end_ms: int | None = None,
        now_ms: int | None = None,
    ) -> list[Candle]:
        """Binance's ``klines`` selection, oldest first, from the first trade to now.

        Intervals without trades are filled with the previous close and zero volume, as Binance does.
        With a start time: the first ``limit`` klines opening at or after it; otherwise the last
        ``limit`` opening at or before the end time (default now).
        """
        now = self.now_ms if now_ms is None else now_ms
        res = base_resolution(interval)
        db = self._reader()
        first = db.execute(
            "SELECT open_ms FROM candles WHERE market = ? AND res_ms = ? ORDER BY open_ms LIMIT 1",
            (market, res),
        ).fetchone()
        last = db.execute(
            "SELECT open_ms FROM candles WHERE market = ? AND res_ms = ? ORDER BY open_ms DESC LIMIT 1",
            (market, res),
        ).fetchone()
        if first is None or last is None:
            return []
        lowest = interval_open(interval, first[0])
        highest = interval_open(interval, max(now, last[0]))
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
        if not opens:
            return []
        range_end = interval_next(interval, opens[-1])
        rows = db.execute(
            f"SELECT {_CANDLE_COLUMNS} FROM candles WHERE market = ? AND res_ms = ?"
            " AND open_ms >= ? AND open_ms < ? ORDER BY open_ms",
            (market, res, opens[0], range_end),
        ).fetchall()
        before = db.execute(
            "SELECT close_ticks FROM candles WHERE market = ? AND res_ms = ? AND open_ms < ?"
            " ORDER BY open_ms DESC LIMIT 1",
            (market, res, opens[0]),
        ).fetchone()
        return _merge(interval, opens, rows, None if before is None else before[0])

    def ticker(self, market: str, now_ms: int | None = None) -> Ticker:
        """Rolling 24-hour statistics: the last 1,440 one-minute candles, and the last trade."""
        now = self.now_ms if now_ms is None else now_ms
        window_open = interval_open("1m", now) - DAY_MS + MINUTE_MS
        db = self._reader()
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
        last = self.last_trade(market)
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

    def funding_history(
        self, market: str | None, limit: int, start_ms: int | None = None, end_ms: int | None = None
    ) -> list[FundingRecord]:
        """Settled funding rates, oldest first: from ``start_ms`` on, else the last ``limit``."""
        where: list[str] = []
        args: list[object] = []
        if market is not None:
            where.append("market = ?")
            args.append(market)
        if start_ms is not None:
            where.append("funding_ms >= ?")
            args.append(start_ms)
        if end_ms is not None:
            where.append("funding_ms <= ?")
            args.append(end_ms)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        order = "funding_ms, market" if start_ms is not None else "funding_ms DESC, market DESC"
        rows = (
            self._reader()
            .execute(
                f"SELECT market, funding_ms, rate_e8, mark_ticks FROM funding {clause} ORDER BY {order} LIMIT ?",
                (*args, limit),
            )
            .fetchall()
        )
        if start_ms is None:
            rows.reverse()
        return [FundingRecord(MarketId(r[0]), r[1], r[2], r[3]) for r in rows]


def _candle_rows(trades: Iterable[Trade]) -> list[tuple[object, ...]]:
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


def _merge(
    interval: str, opens: list[int], rows: list[tuple[int, ...]], close_before: int | None
) -> list[Candle]:
    """Sum base candles (sorted by open time) into the klines opening at ``opens``; fill the gaps."""
    out: list[Candle] = []
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
            candle = Candle(
                open_ms=open_ms,
                close_ms=next_open - 1,
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
            previous_close = candle.close_ticks
        elif previous_close is not None:
            p = previous_close
            candle = Candle(open_ms, next_open - 1, p, p, p, p, 0, 0, 0, 0, 0, -1, -1)
        else:
            continue
        out.append(candle)
    return out


# ---------------------------------------------------------------------------------------------- depth


@dataclass(frozen=True, slots=True)
class DepthDiff:
    """The levels of one market a batch changed: ``(price_ticks, total_lots)``, 0 removes a level."""

    market: MarketId
    first_seq: int
    last_seq: int
    previous_seq: int
    ts_ns: int
    bids: list[tuple[int, int]]
    asks: list[tuple[int, int]]


@dataclass(frozen=True, slots=True)
class BookTop:
    """Best bid and ask (``None`` when a side is empty) after update ``update_id``."""

    market: MarketId
    update_id: int
    ts_ns: int
    bid: tuple[int, int] | None
    ask: tuple[int, int] | None


@dataclass(frozen=True, slots=True)
class DepthSnapshot:
    """A book read in one piece: its levels, best first, and the update id they include."""

    market: MarketId
    update_id: int
    now_ns: int
    bids: list[tuple[int, int]]
    asks: list[tuple[int, int]]


def _level_lots(side: BookSide, price: int) -> int:
    level = side.levels.get(price)
    return 0 if level is None else sum(order.leaves_lots for order in level.values())


class DepthTracker:
    """The ``depth`` component: book update ids and per-batch level diffs (see the module doc).

    It runs on the sequencer thread only (``on_applied`` and inside ``seq.query``), so it may read the
    engine's books directly. ``engine_of`` gives the running engine; ``last_seq_of`` the journal's
    last record (the starting update id of every market).
    """

    def __init__(
        self, config: VenueConfig, engine_of: Callable[[], Engine], last_seq_of: Callable[[], int]
    ) -> None:
        self.markets = tuple(config.markets)
        self._engine_of = engine_of
        self._last_seq_of = last_seq_of
        self._ready = False
        self.book_update_id: dict[MarketId, int] = {}
        self.last_bounds: dict[MarketId, tuple[int, int, int]] = {}
        """``(U, u, pu)`` of each market's latest diff (partial-depth events carry them)."""
        self._orders: dict[OrderId, tuple[MarketId, Side, int]] = {}
        self._shadow: dict[MarketId, tuple[dict[int, int], dict[int, int]]] = {}
        self._tops: dict[MarketId, tuple[tuple[int, int] | None, tuple[int, int] | None]] = {}
        self.last_diffs: list[DepthDiff] = []
        self.last_tops: list[BookTop] = []
        self.last_batch_seq = 0

    def resume_seq(self) -> int | None:
        return None

    def close(self) -> None:
        pass

    def _ensure(self, engine: Engine, last_seq: int) -> None:
        if self._ready:
            return
        self._ready = True
        for market in self.markets:
            book = engine.books[market]
            self._shadow[market] = (dict(book.bids.depth()), dict(book.asks.depth()))
            self._tops[market] = (_best(book.bids), _best(book.asks))
            self.book_update_id[market] = last_seq
        for order_id, order in engine.orders.items():
            self._orders[order_id] = (order.market, order.side, order.price_ticks)

    def snapshot(self, engine: Engine, market: MarketId, limit: int | None) -> DepthSnapshot:
        """The book of ``market`` now and its ``lastUpdateId`` (call on the sequencer thread)."""
        self._ensure(engine, self._last_seq_of())
        book = engine.books[market]
        return DepthSnapshot(
            market, self.book_update_id[market], engine.now_ns, book.bids.depth(limit), book.asks.depth(limit)
        )

    def top(self, engine: Engine, market: MarketId) -> BookTop:
        """Best bid and ask of ``market`` now (call on the sequencer thread)."""
        self._ensure(engine, self._last_seq_of())
        bid, ask = self._tops[market]
        return BookTop(market, self.book_update_id[market], engine.now_ns, bid, ask)

    def on_applied(self, batch: list[Applied]) -> None:
        self.last_diffs = []
        self.last_tops = []
        self.last_batch_seq = batch[-1].seq
        engine = self._engine_of()
        if not self._ready:
            self._ensure(engine, batch[-1].seq)
            return
        touched: dict[MarketId, dict[tuple[Side, int], None]] = {}
        seqs: dict[MarketId, list[int]] = {}
        orders = self._orders

        def touch(market: MarketId, side: Side, price: int, seq: int) -> None:
            touched.setdefault(market, {})[(side, price)] = None
            bounds = seqs.get(market)
            if bounds is None:
                seqs[market] = [seq, seq]
            else:
                bounds[1] = seq

        for applied in batch:
            seq = applied.seq
            for event in applied.events:
                if isinstance(event, OrderFilled):
                    if event.is_maker:
                        touch(event.market, event.side, event.price_ticks, seq)
                    if event.leaves_lots == 0:
                        orders.pop(event.order_id, None)
                elif isinstance(event, OrderAccepted):
                    if event.price_ticks is not None:
                        orders[event.order_id] = (event.market, event.side, event.price_ticks)
                        touch(event.market, event.side, event.price_ticks, seq)
                elif isinstance(event, OrderCanceled | OrderExpired):
                    found = orders.pop(event.order_id, None)
                    if found is not None:
                        touch(*found, seq)
                elif isinstance(event, OrderAmended):
                    found = orders.get(event.order_id)
                    if found is not None:
                        market, side, old_price = found
                        touch(market, side, old_price, seq)
                        orders[event.order_id] = (market, side, event.price_ticks)
                        touch(market, side, event.price_ticks, seq)
        ts_ns = batch[-1].command.ts_ns
        for market, levels in touched.items():
            book = engine.books[market]
            shadow_bids, shadow_asks = self._shadow[market]
            bids: list[tuple[int, int]] = []
            asks: list[tuple[int, int]] = []
            for side, price in levels:
                if side is Side.BUY:
                    shadow, book_side, out = shadow_bids, book.bids, bids
                else:
                    shadow, book_side, out = shadow_asks, book.asks, asks
                lots = _level_lots(book_side, price)
                if shadow.get(price, 0) == lots:
                    continue
                if lots:
                    shadow[price] = lots
                else:
                    del shadow[price]
                out.append((price, lots))
            if not bids and not asks:
                continue
            bids.sort(reverse=True)
            asks.sort()
            first, last = seqs[market]
            previous = self.book_update_id[market]
            self.book_update_id[market] = last
            self.last_bounds[market] = (first, last, previous)
            self.last_diffs.append(DepthDiff(market, first, last, previous, ts_ns, bids, asks))
            top = (_best(book.bids), _best(book.asks))
            if top != self._tops[market]:
                self._tops[market] = top
                self.last_tops.append(BookTop(market, last, ts_ns, top[0], top[1]))


def _best(side: BookSide) -> tuple[int, int] | None:
    price = side.best_price()
    return None if price is None else (price, _level_lots(side, price))
