"""TWAP: equal slices of the window, optionally randomised in size and time, with catch-up.

Parameters (of :class:`~perpx.execution.model.ParentOrder`): the window (``start_ns`` and
``end_ns`` or ``duration_s``), ``slice_interval_s`` (default 60 s), ``randomize_size_bps`` and
``randomize_time_bps``, ``passiveness_bps``, and the clip sizes.

* The number of slices ``n`` is ``window / slice_interval``, reduced until every slice is at
  least the market's minimum lot, its minimum notional at the arrival price and ``min_clip``
  (a parent too small for two slices goes as one, as NautilusTrader's TWAP does).
* Slice ``i`` has weight ``w_i = 1 + r_i x randomize_size`` (``r_i`` in ``[-1, 1]`` from the
  seeded :class:`~perpx.execution.strategy.Jitter`), so the planned sizes sum to the quantity;
  inner boundaries move by up to ``randomize_time`` of a slice (at most 49%, so they stay in order).
* Catch-up: slice ``k`` asks for ``w_k / sum_{i>=k} w_i`` of what is left (:mod:`.schedule`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from perpx.execution.algos.schedule import ScheduleFollower
from perpx.execution.model import BPS
from perpx.execution.rules import min_child_lots
from perpx.execution.strategy import BoundParent, Jitter, Snapshot

DEFAULT_SLICE_S = 60
MAX_TIME_JITTER = Decimal("0.49")


def slice_count(bound: BoundParent, slice_s: int) -> int:
    """How many slices the window gets: by time, then fewer while a slice would be too small."""
    assert bound.end_ns is not None
    by_time = max(1, (bound.end_ns - bound.start_ns) // (slice_s * 1_000_000_000))
    return max(1, min(by_time, bound.qty_lots // min_child_lots(bound)))


@dataclass(frozen=True, slots=True)
class TwapCurve:
    """Slice boundaries and weights of one TWAP parent (deterministic from the seed)."""

    bounds: tuple[int, ...]
    weights: tuple[Decimal, ...]

    @classmethod
    def plan(cls, bound: BoundParent, jitter: Jitter) -> TwapCurve:
        parent = bound.parent
        assert bound.end_ns is not None, "TWAP needs a window"
        slice_s = parent.slice_interval_s or DEFAULT_SLICE_S
        n = slice_count(bound, slice_s)
        period = (bound.end_ns - bound.start_ns) // n
        size_spread = Decimal(parent.randomize_size_bps) / BPS
        time_spread = min(Decimal(parent.randomize_time_bps) / BPS, MAX_TIME_JITTER)
        weights = tuple(1 + jitter.uniform(i, "size") * size_spread for i in range(n))
        inner = tuple(
            bound.start_ns + k * period + int(jitter.uniform(k, "time") * time_spread * period)
            for k in range(1, n)
        )
        return cls((bound.start_ns, *inner, bound.end_ns), weights)

    def boundaries_ns(self, snapshot: Snapshot) -> tuple[int, ...]:
        return self.bounds

    def share(self, snapshot: Snapshot, k: int) -> float:
        return float(self.weights[k] / sum(self.weights[k:]))

    def label(self) -> str:
        return "TWAP"


def twap(bound: BoundParent, seed: int) -> ScheduleFollower:
    """The TWAP strategy for ``bound``."""
    return ScheduleFollower(TwapCurve.plan(bound, Jitter(seed, bound.parent.client_algo_id)))
