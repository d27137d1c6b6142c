"""The ``marketdata`` read model: public trades, aggregate trades, klines, the 24h ticker, funding history."""

from __future__ import annotations

from pathlib import Path

import pytest

from perpx.engine.commands import AdvanceClock, TimeInForce
from perpx.engine.events import FundingSettled, Outcome
from perpx.engine.values import NS_PER_MS, AccountId, MarketId, Side
from perpx.server.marketdata.candles import DAY_MS, MINUTE_MS, Candle, interval_next, interval_open
from perpx.server.marketdata.trades import TradeStore, public_trades
from perpx.server.sequencer import Applied
from tests.server.marketfeed import BTC, T0_MS, MarketFeed

SECOND_MS = 1000


def feed_with_traders(tmp_path: Path) -> tuple[MarketFeed, AccountId, AccountId]:
    feed = MarketFeed(tmp_path)
    feed.mark(600_000)  # 60000.0 at tick 0.1
    maker = feed.account("maker")
    taker = feed.account("taker")
    return feed, maker, taker


def ohlcv(candle: Candle) -> tuple[int, int, int, int, int, int, int]:
    return (
        candle.open_ms,
        candle.open_ticks,
        candle.high_ticks,
        candle.low_ticks,
        candle.close_ticks,
        candle.volume_lots,
        candle.count,
    )


def test_taker_sweeping_two_makers_at_one_price_is_one_aggregate_trade(tmp_path: Path) -> None:
    # Arrange
    feed, maker, taker = feed_with_traders(tmp_path)
    feed.apply(
        feed.order(maker, Side.SELL, 600_000, 2),
        feed.order(maker, Side.SELL, 600_000, 3),
        feed.order(maker, Side.SELL, 600_010, 4),
    )

    # Act
    [applied] = feed.apply(feed.order(taker, Side.BUY, 600_010, 9, TimeInForce.IOC))
    trades, aggs = public_trades(applied)

    # Assert
    assert [(t.price_ticks, t.qty_lots, t.buyer_maker) for t in trades] == [
        (600_000, 2, False),
        (600_000, 3, False),
        (600_010, 4, False),
    ]
    first = trades[0].trade_id
    assert [(a.agg_id, a.last_id, a.price_ticks, a.qty_lots) for a in aggs] == [
        (first, first + 1, 600_000, 5),
        (first + 2, first + 2, 600_010, 4),
    ]


def test_trades_are_stored_with_the_takers_side(tmp_path: Path) -> None:
    # Arrange
    feed, maker, taker = feed_with_traders(tmp_path)

    # Act
    feed.trade(maker, taker, Side.BUY, 600_000, 2, T0_MS + 1_000)
    feed.trade(maker, taker, Side.SELL, 599_990, 3, T0_MS + 2_000)

    # Assert
    rows = feed.store.recent_trades(BTC, 10)
    assert [(t.price_ticks, t.qty_lots, t.buyer_maker, t.ts_ms) for t in rows] == [
        (600_000, 2, False, T0_MS + 1_000),
        (599_990, 3, True, T0_MS + 2_000),
    ]
    assert feed.store.recent_trades(BTC, 1)[0].trade_id == rows[-1].trade_id
    assert feed.store.recent_trades(BTC, 10, from_id=rows[1].trade_id) == rows[1:]


def test_agg_trades_select_by_id_by_time_or_latest(tmp_path: Path) -> None:
    # Arrange
    feed, maker, taker = feed_with_traders(tmp_path)
    for i in range(5):
        feed.trade(maker, taker, Side.BUY, 600_000 + i, 2, T0_MS + i * 10_000)
    store = feed.store

    # Act
    latest = store.agg_trades(BTC, 2)
    from_second = store.agg_trades(BTC, 2, from_id=latest[0].agg_id - 2)
    by_time = store.agg_trades(BTC, 10, start_ms=T0_MS + 15_000, end_ms=T0_MS + 35_000)
    before = store.agg_trades(BTC, 10, end_ms=T0_MS + 10_000)

    # Assert
    assert [a.price_ticks for a in latest] == [600_003, 600_004]
    assert [a.price_ticks for a in from_second] == [600_001, 600_002]
    assert [a.price_ticks for a in by_time] == [600_002, 600_003]
    assert [a.price_ticks for a in before] == [600_000, 600_001]


def test_klines_aggregate_trades_across_interval_boundaries_and_fill_gaps(tmp_path: Path) -> None:
    # Arrange: two trades in minute 0, one in minute 1 (2 lots: 0.002 BTC clears the 100 USDT minimum), none in minutes 2-3, one in minute 4
    feed, maker, taker = feed_with_traders(tmp_path)
    feed.trade(maker, taker, Side.BUY, 600_000, 2, T0_MS + 10 * SECOND_MS)
    feed.trade(maker, taker, Side.SELL, 601_000, 3, T0_MS + 50 * SECOND_MS)
    feed.trade(maker, taker, Side.BUY, 599_000, 2, T0_MS + 70 * SECOND_MS)
    feed.trade(maker, taker, Side.SELL, 600_500, 4, T0_MS + 250 * SECOND_MS)
    now = T0_MS + 250 * SECOND_MS

    # Act
    one = feed.store.klines(BTC, "1m", 10, start_ms=T0_MS, now_ms=now)
    three = feed.store.klines(BTC, "3m", 10, now_ms=now)
    five = feed.store.klines(BTC, "5m", 10, now_ms=now)

    # Assert
    m = MINUTE_MS
    assert [ohlcv(c) for c in one] == [
        (T0_MS, 600_000, 601_000, 600_000, 601_000, 5, 2),
        (T0_MS + m, 599_000, 599_000, 599_000, 599_000, 2, 1),
        (T0_MS + 2 * m, 599_000, 599_000, 599_000, 599_000, 0, 0),
        (T0_MS + 3 * m, 599_000, 599_000, 599_000, 599_000, 0, 0),
        (T0_MS + 4 * m, 600_500, 600_500, 600_500, 600_500, 4, 1),
    ]
    assert one[0].close_ms == T0_MS + m - 1
    assert (one[0].buy_lots, one[0].quote_units) == (2, 600_000 * 2 + 601_000 * 3)
    assert [ohlcv(c) for c in three] == [
        (T0_MS, 600_000, 601_000, 599_000, 599_000, 7, 3),
        (T0_MS + 3 * m, 600_500, 600_500, 600_500, 600_500, 4, 1),
    ]
    assert [ohlcv(c) for c in five] == [(T0_MS, 600_000, 601_000, 599_000, 600_500, 11, 4)]


def test_klines_limit_start_and_end_select_a_window(tmp_path: Path) -> None:
    # Arrange: one trade a minute for ten minutes
    feed, maker, taker = feed_with_traders(tmp_path)
    for i in range(10):
        feed.trade(maker, taker, Side.BUY, 600_000 + i, 2, T0_MS + i * MINUTE_MS + 1)
    now = T0_MS + 9 * MINUTE_MS + 5

    # Act
    latest = feed.store.klines(BTC, "1m", 3, now_ms=now)
    from_start = feed.store.klines(BTC, "1m", 2, start_ms=T0_MS + 4 * MINUTE_MS + 1, now_ms=now)
    until_end = feed.store.klines(BTC, "1m", 2, end_ms=T0_MS + 2 * MINUTE_MS, now_ms=now)

    # Assert: a start inside a minute begins at the next whole kline, as Binance does
    assert [c.open_ticks for c in latest] == [600_007, 600_008, 600_009]
    assert [c.open_ms for c in from_start] == [T0_MS + 5 * MINUTE_MS, T0_MS + 6 * MINUTE_MS]
    assert [c.open_ticks for c in until_end] == [600_001, 600_002]


def test_klines_of_a_market_without_trades_are_empty(tmp_path: Path) -> None:
    # Arrange
    feed, _maker, _taker = feed_with_traders(tmp_path)

    # Act
    rows = feed.store.klines(BTC, "1h", 10)

    # Assert
    assert rows == []


@pytest.mark.parametrize(
    ("interval", "ts_ms", "open_ms", "next_ms"),
    [
        ("1m", T0_MS + 61_000, T0_MS + 60_000, T0_MS + 120_000),
        ("4h", T0_MS, 1_699_992_000_000, 1_700_006_400_000),  # 20:00 UTC, then 00:00
        ("1w", 1_700_000_000_000, 1_699_833_600_000, 1_700_438_400_000),  # Mon 13 Nov 2023, Mon 20 Nov
        ("1M", 1_700_000_000_000, 1_698_796_800_000, 1_701_388_800_000),  # 1 Nov 2023, 1 Dec 2023
        ("1M", 1_703_980_800_000, 1_701_388_800_000, 1_704_067_200_000),  # Dec 31 -> 1 Dec, 1 Jan 2024
    ],
)
def test_interval_open_aligns_like_binance(interval: str, ts_ms: int, open_ms: int, next_ms: int) -> None:
    # Arrange, Act
    opened = interval_open(interval, ts_ms)

    # Assert
    assert opened == open_ms
    assert interval_next(interval, opened) == next_ms


def test_ticker_covers_the_last_24_hours_only(tmp_path: Path) -> None:
    # Arrange: one trade a day ago and more today
    feed, maker, taker = feed_with_traders(tmp_path)
    feed.trade(maker, taker, Side.BUY, 590_000, 5, T0_MS)
    later = T0_MS + DAY_MS + 2 * MINUTE_MS
    feed.trade(maker, taker, Side.BUY, 600_000, 2, later)
    feed.trade(maker, taker, Side.SELL, 610_000, 3, later + 1_000)

    # Act
    ticker = feed.store.ticker(BTC, now_ms=later + 2_000)

    # Assert
    assert (ticker.open_ticks, ticker.high_ticks, ticker.low_ticks, ticker.last_ticks) == (
        600_000,
        610_000,
        600_000,
        610_000,
    )
    assert (ticker.volume_lots, ticker.count, ticker.last_lots) == (5, 2, 3)
    assert ticker.quote_units == 600_000 * 2 + 610_000 * 3
    assert ticker.last_id - ticker.first_id == 1


def test_ticker_without_recent_trades_shows_the_last_price_and_no_volume(tmp_path: Path) -> None:
    # Arrange
    feed, maker, taker = feed_with_traders(tmp_path)
    feed.trade(maker, taker, Side.BUY, 590_000, 5, T0_MS)

    # Act
    ticker = feed.store.ticker(BTC, now_ms=T0_MS + 2 * DAY_MS)

    # Assert
    assert (ticker.open_ticks, ticker.last_ticks, ticker.volume_lots, ticker.count) == (
        590_000,
        590_000,
        0,
        0,
    )


def test_funding_settlements_become_the_rate_history(tmp_path: Path) -> None:
    # Arrange
    store = TradeStore(tmp_path / "market.sqlite")
    hour = 3_600_000

    def settled(seq: int, at_ms: int, rate_e8: int) -> Applied:
        event = FundingSettled(
            ts_ns=at_ms * NS_PER_MS,
            market=BTC,
            funding_time_ns=at_ms * NS_PER_MS,
            rate_e8=rate_e8,
            average_premium_e8=0,
            premium_samples=1,
            mark_ticks=600_000,
            positions=0,
            paid_atoms=0,
            received_atoms=0,
            residue_atoms=0,
            next_funding_ns=(at_ms + 8 * hour) * NS_PER_MS,
        )
        return Applied(seq, AdvanceClock(ts_ns=at_ms * NS_PER_MS), Outcome.of([event]))

    # Act
    store.on_applied([settled(1, T0_MS, 10_000), settled(2, T0_MS + 8 * hour, -5_000)])
    store.on_applied([settled(3, T0_MS + 16 * hour, 2_000)])

    # Assert
    assert [(r.funding_ms, r.rate_e8) for r in store.funding_history(BTC, 2)] == [
        (T0_MS + 8 * hour, -5_000),
        (T0_MS + 16 * hour, 2_000),
    ]
    assert [r.rate_e8 for r in store.funding_history(None, 10, start_ms=T0_MS + 1)] == [-5_000, 2_000]
    assert store.funding_history(MarketId("ETHUSDT"), 10) == []
    store.close()


def test_reopened_store_keeps_trades_and_candles_and_ignores_replayed_batches(tmp_path: Path) -> None:
    # Arrange
    feed, maker, taker = feed_with_traders(tmp_path)
    feed.trade(maker, taker, Side.BUY, 600_000, 2, T0_MS + 1_000)
    feed.trade(maker, taker, Side.SELL, 601_000, 3, T0_MS + 2_000)
    before = feed.store.klines(BTC, "1m", 10, now_ms=T0_MS + 3_000)
    last_seq = feed.last_seq
    feed.store.close()

    # Act: reopen, then see an already-stored batch again (start-up replays from resume_seq)
    reopened = TradeStore(tmp_path / "market.sqlite")
    reopened.on_applied(feed.batches[-1])

    # Assert
    assert reopened.resume_seq() == last_seq
    assert reopened.klines(BTC, "1m", 10, now_ms=T0_MS + 3_000) == before
    assert before[0].volume_lots == 5
    assert [t.qty_lots for t in reopened.recent_trades(BTC, 10)] == [2, 3]
    reopened.close()


def test_store_position_moves_without_trades_only_every_so_often(tmp_path: Path) -> None:
    # Arrange
    feed = MarketFeed(tmp_path)

    # Act: a batch without trades moves resume_seq in memory; close writes it
    feed.apply(AdvanceClock(ts_ns=(T0_MS + 5) * NS_PER_MS))
    seen = feed.store.resume_seq()
    feed.store.close()
    reopened = TradeStore(tmp_path / "market.sqlite")

    # Assert
    assert seen == feed.last_seq
    assert reopened.resume_seq() == feed.last_seq
    assert reopened.now_ms == T0_MS + 5
    reopened.close()
