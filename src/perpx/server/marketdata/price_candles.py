"""Mark, index and premium candles: Binance's ``markPriceKlines``, ``indexPriceKlines`` and
``premiumIndexKlines``.

Every mark and index the pricing engine sets (``MarkPriceUpdated``, ``MarkPriceSet``,
``IndexUpdated``) is a sample; samples are summed into base candles at the trade candles'
resolutions (1m, 1h, 1d: :func:`perpx.server.marketdata.candles.base_resolution`) as they are
stored, so a query reads at most ``limit`` intervals of base candles. An interval without a sample
repeats the previous close with a count of 0, as trade klines do.

Kinds and units
---------------
=========  =====================================================================================
``mark``   the mark price, in ticks
``index``  the index price, in ticks
``premium``  ``(mark - index) / index`` in units of 1e-8, rounded toward minus infinity (floor
           division): the mark's premium over the index. Binance's premium index samples impact
           bid/ask prices; perpx's mark already folds its premium samples in, and this is the
           series a funding-basis backtest reads. ``docs/api.md`` lists it as a difference.
=========  =====================================================================================
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from perpx.engine.events import IndexUpdated, MarkPriceSet, MarkPriceUpdated
from perpx.engine.values import NS_PER_MS, RATE_SCALE, MarketId
from perpx.server.marketdata.candles import (
    BASE_RESOLUTIONS_MS,
    base_resolution,
    interval_next,
    kline_opens,
    sum_into_klines,
)
from perpx.server.sequencer import Applied

KINDS = ("mark", "index", "premium")

SCHEMA = """
CREATE TABLE IF NOT EXISTS price_candles (
    market TEXT NOT NULL, kind TEXT NOT NULL, res_ms INTEGER NOT NULL, open_ms INTEGER NOT NULL,
    open_value INTEGER NOT NULL, high_value INTEGER NOT NULL, low_value INTEGER NOT NULL,
    close_value INTEGER NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (market, kind, res_ms, open_ms)) WITHOUT ROWID;
"""

UPSERT = """
INSERT INTO price_candles VALUES (?,?,?,?,?,?,?,?,?)
ON CONFLICT (market, kind, res_ms, open_ms) DO UPDATE SET
    high_value = max(high_value, excluded.high_value),
    low_value = min(low_value, excluded.low_value),
    close_value = excluded.close_value,
    count = count + excluded.count
"""


@dataclass(frozen=True, slots=True)
class PriceSample:
    """One value of a market's mark, index or premium at ``ts_ms``."""

    market: MarketId
    kind: str
    ts_ms: int
    value: int


@dataclass(frozen=True, slots=True)
class PriceCandle:
    """One price kline; ``count`` is the samples in it (0: an interval without samples)."""

    open_ms: int
    close_ms: int
    open_value: int
    high_value: int
    low_value: int
    close_value: int
    count: int


def premium_e8(mark_ticks: int, index_ticks: int) -> int:
    """``(mark - index) / index`` in 1e-8 units, rounded toward minus infinity; 0 without an index."""
    if index_ticks <= 0:
        return 0
    return (mark_ticks - index_ticks) * RATE_SCALE // index_ticks


def price_samples(applied: Applied) -> list[PriceSample]:
    """The mark, index and premium samples of one command's events."""
    samples: list[PriceSample] = []
    for event in applied.events:
        if isinstance(event, MarkPriceUpdated | MarkPriceSet):
            ts_ms = event.ts_ns // NS_PER_MS
            samples += [
                PriceSample(event.market, "mark", ts_ms, event.mark_ticks),
                PriceSample(event.market, "index", ts_ms, event.index_ticks),
                PriceSample(event.market, "premium", ts_ms, premium_e8(event.mark_ticks, event.index_ticks)),
            ]
        elif isinstance(event, IndexUpdated):
            samples.append(PriceSample(event.market, "index", event.ts_ns // NS_PER_MS, event.index_ticks))
    return samples


def candle_rows(samples: Iterable[PriceSample]) -> list[tuple[object, ...]]:
    """Upsert rows (:data:`UPSERT`) of the base candles ``samples`` fall in, in sample order."""
    drafts: dict[tuple[str, str, int, int], list[int]] = {}
    for sample in samples:
        for res in BASE_RESOLUTIONS_MS:
            key = (sample.market, sample.kind, res, sample.ts_ms - sample.ts_ms % res)
            draft = drafts.get(key)
            if draft is None:
                drafts[key] = [sample.value, sample.value, sample.value, sample.value, 1]
            else:
                draft[1] = max(draft[1], sample.value)
                draft[2] = min(draft[2], sample.value)
                draft[3] = sample.value
                draft[4] += 1
    return [(*key, *draft) for key, draft in drafts.items()]


def price_klines(
    db: sqlite3.Connection,
    market: str,
    kind: str,
    interval: str,
    limit: int,
    start_ms: int | None,
    end_ms: int | None,
    now: int,
) -> list[PriceCandle]:
    """Binance's kline selection of one price series (:func:`.candles.kline_opens`), oldest first,
    from its first sample to now; an interval without a sample repeats the previous close."""
    res = base_resolution(interval)
    bounds = db.execute(
        "SELECT min(open_ms), max(open_ms) FROM price_candles WHERE market = ? AND kind = ? AND res_ms = ?",
        (market, kind, res),
    ).fetchone()
    if bounds is None or bounds[0] is None:
        return []
    opens = kline_opens(interval, bounds[0], bounds[1], now, limit, start_ms, end_ms)
    if not opens:
        return []
    rows = db.execute(
        "SELECT open_ms, open_value, high_value, low_value, close_value, count FROM price_candles"
        " WHERE market = ? AND kind = ? AND res_ms = ? AND open_ms >= ? AND open_ms < ? ORDER BY open_ms",
        (market, kind, res, opens[0], interval_next(interval, opens[-1])),
    ).fetchall()
    before = db.execute(
        "SELECT close_value FROM price_candles WHERE market = ? AND kind = ? AND res_ms = ? AND open_ms < ?"
        " ORDER BY open_ms DESC LIMIT 1",
        (market, kind, res, opens[0]),
    ).fetchone()
    return sum_into_klines(
        interval,
        opens,
        rows,
        None if before is None else before[0],
        _summed,
        _repeated,
        lambda candle: candle.close_value,
    )


def _summed(open_ms: int, close_ms: int, group: list[tuple[int, ...]]) -> PriceCandle:
    return PriceCandle(
        open_ms,
        close_ms,
        group[0][1],
        max(r[2] for r in group),
        min(r[3] for r in group),
        group[-1][4],
        sum(r[5] for r in group),
    )


def _repeated(open_ms: int, close_ms: int, close: int) -> PriceCandle:
    return PriceCandle(open_ms, close_ms, close, close, close, close, 0)
