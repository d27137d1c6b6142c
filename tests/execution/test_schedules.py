"""The schedule curves without a market: VWAP's hour-of-week profile, TWAP's randomised plan, the rules."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from perpx.execution.algos.twap import TwapCurve
from perpx.execution.algos.vwap import (
    HOUR_NS,
    MINUTE_NS,
    MINUTE_OF_HOUR,
    VwapCurve,
    grid_profile,
    hour_of_week,
    hour_of_week_profile,
)
from perpx.execution.model import ParentOrder, ParentSide, decode_parent
from perpx.execution.rules import Allowed, enforce
from perpx.execution.strategy import BoundParent, Jitter, PlaceChild
from perpx.execution.venue import BookLevel, BookSnapshot, Candle, MarketFilters, TimeInForce

MONDAY = 1_767_571_200_000_000_000  # 2026-01-05T00:00:00Z, a Monday
FILTERS = MarketFilters(
    market="BTCUSDT",
    tick_size=Decimal("0.1"),
    lot_size=Decimal("0.001"),
    min_qty_lots=1,
    max_qty_lots=1_000_000,
    min_notional=Decimal(100),
)


def _bound(
    parent: ParentOrder, qty_lots: int = 1000, start: int = MONDAY, end: int | None = MONDAY + 3600 * 10**9
) -> BoundParent:
    return BoundParent(parent, FILTERS, qty_lots, start, end, 600_000, None, None, None, 0)


def _candle(open_ns: int, volume: int) -> Candle:
    return Candle(
        open_ns=open_ns,
        close_ns=open_ns + HOUR_NS,
        volume_lots=volume,
        open_ticks=1,
        high_ticks=1,
        low_ticks=1,
        close_ticks=1,
    )


def test_hour_of_week_counts_from_monday_midnight_utc() -> None:
    assert hour_of_week(MONDAY) == 0
    assert hour_of_week(MONDAY + 25 * HOUR_NS) == 25
    assert hour_of_week(MONDAY - HOUR_NS) == 167


def test_profile_averages_each_hour_over_weeks_and_fills_gaps_with_the_mean() -> None:
    week = 168 * HOUR_NS
    candles = [_candle(MONDAY, 100), _candle(MONDAY + week, 300), _candle(MONDAY + HOUR_NS, 50)]

    profile, known = hour_of_week_profile(candles)

    assert known == 2
    assert profile[0] == 200 and profile[1] == 50
    assert profile[2] == 125  # the mean of the known hours


def test_vwap_shares_follow_the_profile_and_renormalise_over_the_rest() -> None:
    profile = tuple([1.0] * 168)
    profile = (3.0, 1.0, *profile[2:])
    curve = VwapCurve((MONDAY, MONDAY + HOUR_NS, MONDAY + 2 * HOUR_NS), profile, 168)
    snapshot = None  # the curve reads no snapshot

    first = curve.share(snapshot, 0)  # type: ignore[arg-type]
    last = curve.share(snapshot, 1)  # type: ignore[arg-type]

    assert first == 0.75  # three quarters of the window's expected volume is in its first hour
    assert last == 1.0


@settings(max_examples=100, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    size_bps=st.integers(0, 9999),
    time_bps=st.integers(0, 10000),
    slices=st.integers(1, 30),
)
def test_twap_plan_boundaries_rise_and_weights_are_positive(
    seed: int, size_bps: int, time_bps: int, slices: int
) -> None:
    parent = decode_parent(
        {
            "algo": "twap",
            "market": "BTCUSDT",
            "side": "buy",
            "client_algo_id": "t",
            "qty": "1",
            "duration_s": 60 * slices,
            "slice_interval_s": 60,
            "randomize_size_bps": size_bps,
            "randomize_time_bps": time_bps,
        }
    )
    bound = _bound(parent, end=MONDAY + 60 * slices * 10**9)

    plan = TwapCurve.plan(bound, Jitter(seed, "t"))

    assert len(plan.bounds) == slices + 1
    assert all(a < b for a, b in zip(plan.bounds, plan.bounds[1:], strict=False))
    assert all(w > 0 for w in plan.weights)
    assert plan == TwapCurve.plan(bound, Jitter(seed, "t"))


@settings(max_examples=300, deadline=None)
@given(
    side=st.sampled_from(ParentSide),
    limit=st.one_of(st.none(), st.integers(599_900, 600_100)),
    clip=st.one_of(st.none(), st.integers(1, 500)),
    post_only=st.booleans(),
    reduce_only=st.booleans(),
    remaining=st.integers(0, 2000),
    qty=st.integers(1, 5000),
    price=st.one_of(st.none(), st.integers(599_000, 601_000)),
    tif=st.sampled_from(TimeInForce),
)
def test_enforce_never_lets_a_child_break_a_parent_rule(
    side: ParentSide,
    limit: int | None,
    clip: int | None,
    post_only: bool,
    reduce_only: bool,
    remaining: int,
    qty: int,
    price: int | None,
    tif: TimeInForce,
) -> None:
    parent = decode_parent(
        {
            "algo": "twap",
            "market": "BTCUSDT",
            "side": side.value,
            "client_algo_id": "r",
            "qty": "5",
            "duration_s": 60,
            "post_only": post_only,
            "reduce_only": reduce_only,
        }
    )
    bound = BoundParent(parent, FILTERS, 5000, MONDAY, None, 600_000, limit, None, clip, 0)
    book = BookSnapshot(
        market="BTCUSDT", ts_ns=MONDAY, bids=(BookLevel(599_995, 10),), asks=(BookLevel(600_005, 10),)
    )

    verdict = enforce(bound, remaining, PlaceChild(qty, price, tif, "test"), book)

    if isinstance(verdict, Allowed):
        assert 0 < verdict.qty_lots <= remaining
        assert clip is None or verdict.qty_lots <= clip
        assert verdict.reduce_only == reduce_only
        if limit is not None:
            assert verdict.price_ticks <= limit if side is ParentSide.BUY else verdict.price_ticks >= limit
        if post_only:
            assert verdict.tif is TimeInForce.POST_ONLY
        assert FILTERS.notional(verdict.qty_lots, verdict.price_ticks) >= FILTERS.min_notional


def test_a_window_under_an_hour_follows_the_minute_of_hour_profile() -> None:
    hour = MONDAY + 5 * HOUR_NS
    # three hours of minute candles: minutes 0-9 of each hour trade three times the rest
    candles = [
        _candle(hour - h * HOUR_NS + m * MINUTE_NS, 3 if m < 10 else 1)
        for h in range(1, 4)
        for m in range(60)
    ]
    profile, known = grid_profile(candles, MINUTE_OF_HOUR)
    curve = VwapCurve((hour, hour + 10 * MINUTE_NS, hour + 20 * MINUTE_NS), profile, known, MINUTE_OF_HOUR)

    first = curve.share(None, 0)  # type: ignore[arg-type]

    assert known == 60 and profile[0] == 3 and profile[10] == 1
    assert first == 0.75  # the busy first ten minutes hold three quarters of the window's volume
    assert curve.label() == "VWAP (minute-of-hour profile)"
