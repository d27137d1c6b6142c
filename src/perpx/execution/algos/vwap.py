"""VWAP: follow the venue's own 24/7 hour-of-week volume profile, re-normalised every slice.

Crypto trades around the clock, so the profile is not an equity U-curve: it is the mean volume
of each hour of the week (168 buckets, UTC, Monday 00:00 first) in the venue's own candles over
the ``lookback_weeks`` before the start. Hours with no history take the mean of the hours that
have some; with no history at all the profile is flat (and VWAP is TWAP), which the decision
notes say.

Short windows
-------------
A window shorter than an hour lies within one or two hour-of-week buckets, where the profile is
flat. There VWAP follows the venue's intraday shape at a finer grid instead: the mean volume of
each minute of the hour (60 buckets, minute 0 at the top of the hour) in the venue's own
one-minute candles over the ``SHORT_LOOKBACK_H`` hours before the start. Crypto volume has such a
shape (bursts at the top of the hour, around candle closes and funding), and it is learnt from a
few hours of history, so it works in short runs and backtests too. Minutes without data take the
mean of those with data; no history at all is flat, as above.

Within the window, ``F(t)`` is the profile's cumulative volume from the start (piecewise
constant density per bucket) over the window's total. Slice ``k`` asks for
``(F(t_{k+1}) - F(t_k)) / (1 - F(t_k))`` of what is left (:mod:`.schedule`): the remaining
curve is re-normalised over the remaining quantity at every slice, so falling behind (or ahead)
is spread over the rest of the window by its expected volume (dynamic VWAP, the default).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from perpx.execution.algos.schedule import ScheduleFollower
from perpx.execution.algos.twap import DEFAULT_SLICE_S, slice_count
from perpx.execution.strategy import BoundParent, Snapshot
from perpx.execution.venue import Candle, Venue

NS_PER_S = 1_000_000_000
HOUR_NS = 3600 * NS_PER_S
WEEK_HOURS = 168
EPOCH_MONDAY_OFFSET_H = 72
"""1970-01-01 was a Thursday: hour 0 of the epoch is hour 72 of its week (Monday 00:00 = 0)."""
MINUTE_NS = 60 * NS_PER_S
HOUR_MINUTES = 60
SHORT_WINDOW_NS = HOUR_NS
"""A window shorter than this follows the minute-of-hour profile."""
SHORT_LOOKBACK_H = 24
"""Hours of one-minute candles the minute-of-hour profile is learnt from."""


@dataclass(frozen=True, slots=True)
class Grid:
    """A cyclic bucket grid: ``count`` buckets of ``bucket_ns``; bucket 0 starts ``offset`` buckets
    after a multiple of the cycle from the epoch (hour of week: 1 h x 168, offset 72; minute of
    hour: 1 min x 60, offset 0)."""

    bucket_ns: int
    count: int
    offset: int
    name: str

    def bucket(self, ts_ns: int) -> int:
        return (ts_ns // self.bucket_ns + self.offset) % self.count


HOUR_OF_WEEK = Grid(HOUR_NS, WEEK_HOURS, EPOCH_MONDAY_OFFSET_H, "hour-of-week")
MINUTE_OF_HOUR = Grid(MINUTE_NS, HOUR_MINUTES, 0, "minute-of-hour")


def hour_of_week(ts_ns: int) -> int:
    """0..167: the UTC hour of the week of ``ts_ns``, Monday 00:00 first."""
    return HOUR_OF_WEEK.bucket(ts_ns)


def grid_profile(candles: Sequence[Candle], grid: Grid) -> tuple[tuple[float, ...], int]:
    """Mean volume per bucket of ``grid`` from ``candles`` (one per bucket), and how many buckets had data.

    Buckets without data get the mean of the buckets with data; no data at all gives a flat profile.
    """
    totals = [0.0] * grid.count
    seen: list[set[int]] = [set() for _ in range(grid.count)]
    for candle in candles:
        at = grid.bucket(candle.open_ns)
        totals[at] += candle.volume_lots
        seen[at].add(candle.open_ns // grid.bucket_ns)
    means = [totals[b] / len(seen[b]) if seen[b] else None for b in range(grid.count)]
    known = [m for m in means if m is not None]
    fill = sum(known) / len(known) if known and sum(known) > 0 else 1.0
    profile = tuple(m if m is not None and m > 0 else fill for m in means)
    return profile, len(known)


def hour_of_week_profile(candles: Sequence[Candle]) -> tuple[tuple[float, ...], int]:
    """Mean volume per hour of the week from hourly ``candles``, and how many hours had data."""
    return grid_profile(candles, HOUR_OF_WEEK)


@dataclass(frozen=True, slots=True)
class VwapCurve:
    """The window's slices and the volume profile they follow."""

    bounds: tuple[int, ...]
    profile: tuple[float, ...]
    hours_known: int
    """Buckets of the profile that had data (hours, or minutes on the minute-of-hour grid)."""
    grid: Grid = HOUR_OF_WEEK

    def cumulative(self, t_ns: int) -> float:
        """Expected volume from the window's start to ``t_ns`` (profile units)."""
        bucket_ns = self.grid.bucket_ns
        total = 0.0
        end = min(t_ns, self.bounds[-1])
        t = self.bounds[0]
        while t < end:
            bucket_end = (t // bucket_ns + 1) * bucket_ns
            step = min(bucket_end, end) - t
            total += self.profile[self.grid.bucket(t)] * step / bucket_ns
            t += step
        return total

    def boundaries_ns(self, snapshot: Snapshot) -> tuple[int, ...]:
        return self.bounds

    def share(self, snapshot: Snapshot, k: int) -> float:
        whole = self.cumulative(self.bounds[-1])
        done = self.cumulative(self.bounds[k])
        if k + 1 >= len(self.bounds) - 1 or whole - done <= 0:
            return 1.0
        return (self.cumulative(self.bounds[k + 1]) - done) / (whole - done)

    def label(self) -> str:
        if not self.hours_known:
            return "VWAP (no volume history: flat profile)"
        return "VWAP" if self.grid is HOUR_OF_WEEK else f"VWAP ({self.grid.name} profile)"


def vwap(bound: BoundParent, venue: Venue, lookback_weeks: int = 4) -> ScheduleFollower:
    """The VWAP strategy for ``bound``, its profile from ``venue``'s candles before the start.

    A window of an hour or more follows the hour-of-week profile (hourly candles over
    ``lookback_weeks``); a shorter one the minute-of-hour profile (minute candles over
    ``SHORT_LOOKBACK_H`` hours).
    """
    assert bound.end_ns is not None, "VWAP needs a window"
    if bound.end_ns - bound.start_ns < SHORT_WINDOW_NS:
        grid = MINUTE_OF_HOUR
        since = bound.start_ns - SHORT_LOOKBACK_H * HOUR_NS
    else:
        grid = HOUR_OF_WEEK
        since = bound.start_ns - lookback_weeks * WEEK_HOURS * HOUR_NS
    candles = venue.candles(bound.parent.market, grid.bucket_ns // NS_PER_S, since, bound.start_ns)
    profile, known = grid_profile(candles, grid)
    n = slice_count(bound, bound.parent.slice_interval_s or DEFAULT_SLICE_S)
    period = (bound.end_ns - bound.start_ns) // n
    bounds = (*(bound.start_ns + k * period for k in range(n)), bound.end_ns)
    return ScheduleFollower(VwapCurve(bounds, profile, known, grid))
