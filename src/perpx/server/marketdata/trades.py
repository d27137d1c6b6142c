"""Public trades, aggregate trades and funding history, and the ``marketdata`` component that stores them.

See :mod:`perpx.server.marketdata` for what the component keeps and how it resumes after a crash.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from perpx.engine.events import FundingSettled, OrderFilled
from perpx.engine.values import NS_PER_MS, MarketId, OrderId, Side
from perpx.server.marketdata import price_candles
from perpx.server.marketdata.candles import UPSERT_CANDLE, Candle, Ticker, candle_rows, klines, ticker
from perpx.server.marketdata.price_candles import PriceCandle, PriceSample, price_klines, price_samples
from perpx.server.sequencer import Applied

META_EVERY = 1000
"""Records the store may lag behind without trades before it writes its position anyway."""


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


class TradeStore:
    """The ``marketdata`` component: public trades, candles and funding history (see the module doc).

    Written only in the sequencer's pipeline; read from any thread (each reading thread gets its own
    connection; SQLite's WAL lets readers see the last committed batch while the writer goes on).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # the journal is the durable record: this model is rebuilt from it after a crash
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.executescript(_SCHEMA)
        self._db.executescript(price_candles.SCHEMA)
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
        prices: list[PriceSample] = []
        last_seq = self._last_seq
        for applied in batch:
            if applied.seq <= last_seq:
                continue
            self._now_ns = max(self._now_ns, applied.command.ts_ns)
            batch_trades, batch_aggs = public_trades(applied)
            trades += batch_trades
            aggs += batch_aggs
            prices += price_samples(applied)
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
        if not trades and not funding and not prices and self._last_seq - self._written_seq < META_EVERY:
            return
        self._write(trades, aggs, funding, prices)

    def close(self) -> None:
        if self._written_seq != self._last_seq:
            self._write([], [], [], [])
        with self._lock:
            for reader in self._readers:
                reader.close()
            self._readers.clear()
        self._db.close()

    def _write(
        self,
        trades: list[Trade],
        aggs: list[AggTrade],
        funding: list[FundingRecord],
        prices: list[PriceSample],
    ) -> None:
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
                db.executemany(UPSERT_CANDLE, candle_rows(trades))
            if funding:
                db.executemany(
                    "INSERT OR REPLACE INTO funding VALUES (?,?,?,?)",
                    [(f.market, f.funding_ms, f.rate_e8, f.mark_ticks) for f in funding],
                )
            if prices:
                db.executemany(price_candles.UPSERT, price_candles.candle_rows(prices))
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
        """Binance's ``klines`` selection (:func:`perpx.server.marketdata.candles.klines`), up to now."""
        now = self.now_ms if now_ms is None else now_ms
        return klines(self._reader(), market, interval, limit, start_ms, end_ms, now)

    def price_klines(
        self,
        market: str,
        kind: str,
        interval: str,
        limit: int,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[PriceCandle]:
        """Mark, index or premium klines (:func:`perpx.server.marketdata.price_candles.price_klines`)."""
        return price_klines(self._reader(), market, kind, interval, limit, start_ms, end_ms, self.now_ms)

    def ticker(self, market: str, now_ms: int | None = None) -> Ticker:
        """Rolling 24-hour statistics (:func:`perpx.server.marketdata.candles.ticker`) and the last trade."""
        now = self.now_ms if now_ms is None else now_ms
        return ticker(self._reader(), market, now, self.last_trade(market))

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
