"""VWAP: follow the venue's own 24/7 hour-of-week volume profile, re-normalised every slice.

Crypto trades around the clock, so the profile is not an equity U-curve: it is the mean volume
of each hour of the week (168 buckets, UTC, Monday 00:00 first) in the venue's own candles over
the ``lookback_weeks`` before the start. Hours with no history take the mean of the hours that
have some; with no history at all the profile is flat (and VWAP is TWAP), which the decision
notes say.

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


def hour_of_week(ts_ns: int) -> int:
    """0..167: the UTC hour of the week of ``ts_ns``, Monday 00:00 first."""
    return (ts_ns // HOUR_NS + EPOCH_MONDAY_OFFSET_H) % WEEK_HOURS


def hour_of_week_profile(candles: Sequence[Candle]) -> tuple[tuple[float, ...], int]:
    """Mean volume per hour of the week from ``candles``, and how many hours had data.

    Hours without data get the mean of the hours with data; no data at all gives a flat profile.
    """
    totals = [0.0] * WEEK_HOURS
    seen: list[set[int]] = [set() for _ in range(WEEK_HOURS)]
    for candle in candles:
        how = hour_of_week(candle.open_ns)
        totals[how] += candle.volume_lots
        seen[how].add(candle.open_ns // HOUR_NS)
    means = [totals[h] / len(seen[h]) if seen[h] else None for h in range(WEEK_HOURS)]
    known = [m for m in means if m is not None]
    fill = sum(known) / len(known) if known and sum(known) > 0 else 1.0
    profile = tuple(m if m is not None and m > 0 else fill for m in means)
    return profile, len(known)


@dataclass(frozen=True, slots=True)
class VwapCurve:
    """The window's slices and the volume profile they follow."""

    bounds: tuple[int, ...]
    profile: tuple[float, ...]
    hours_known: int

    def cumulative(self, t_ns: int) -> float:
        """Expected volume from the window's start to ``t_ns`` (profile units)."""
        total, t, start = 0.0, self.bounds[0], self.bounds[0]
        end = min(t_ns, self.bounds[-1])
        t = start
        while t < end:
            hour_end = (t // HOUR_NS + 1) * HOUR_NS
            step = min(hour_end, end) - t
            total += self.profile[hour_of_week(t)] * step / HOUR_NS
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
        return "VWAP" if self.hours_known else "VWAP (no volume history: flat profile)"


def vwap(bound: BoundParent, venue: Venue, lookback_weeks: int = 4) -> ScheduleFollower:
    """The VWAP strategy for ``bound``, its profile from ``venue``'s candles before the start."""
    assert bound.end_ns is not None, "VWAP needs a window"
    since = bound.start_ns - lookback_weeks * WEEK_HOURS * HOUR_NS
    candles = venue.candles(bound.parent.market, 3600, since, bound.start_ns)
    profile, known = hour_of_week_profile(candles)
    n = slice_count(bound, bound.parent.slice_interval_s or DEFAULT_SLICE_S)
    period = (bound.end_ns - bound.start_ns) // n
    bounds = (*(bound.start_ns + k * period for k in range(n)), bound.end_ns)
    return ScheduleFollower(VwapCurve(bounds, profile, known))
