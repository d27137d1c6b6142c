"""Implementation shortfall: the Almgren-Chriss schedule, re-solved on what is left each slice.

At the start of slice ``k`` the strategy solves :func:`~perpx.execution.almgren_chriss.optimal_schedule`
for the remaining quantity over the remaining time in the remaining ``n - k`` slices and trades
its first period, ``n_1 / X`` of what is left (:mod:`.schedule` turns that share into lots, with
catch-up and passiveness). Risk aversion comes from ``risk_aversion`` when the parent gives it,
else from ``urgency``: the number of trade half-lives ``kappa T`` the window should hold
(LOW 0.5, MEDIUM 2, HIGH 5), turned into ``lambda = kappa_tilde^2 eta_tilde / sigma^2``.

The model's inputs (:class:`ImpactModel`) are in ticks, lots and seconds: ``sigma`` from the
venue's minute candles before the start, ``epsilon`` half the spread plus the taker fee, ``eta``
half the spread per lot-per-second of top-of-book depth. They are rough; what matters for the
schedule is their ratio through ``lambda``, and the urgency mapping makes that explicit.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from perpx.execution.algos.schedule import ScheduleFollower
from perpx.execution.algos.twap import DEFAULT_SLICE_S, slice_count
from perpx.execution.almgren_chriss import AcParams, ScheduleError, optimal_schedule
from perpx.execution.model import Urgency
from perpx.execution.strategy import BoundParent, Snapshot
from perpx.execution.venue import Venue

NS_PER_S = 1_000_000_000
URGENCY_KAPPA_T = {Urgency.LOW: 0.5, Urgency.MEDIUM: 2.0, Urgency.HIGH: 5.0}
"""Trade half-lives per window for each urgency: LOW is nearly a straight line, HIGH front-loads."""


@dataclass(frozen=True, slots=True)
class ImpactModel:
    """Almgren-Chriss inputs in market units: ticks, lots, seconds."""

    sigma: float
    """Price volatility, ticks per sqrt(second)."""
    eta: float
    """Temporary impact, ticks per (lot per second)."""
    gamma: float
    epsilon: float
    """Fixed cost per lot, ticks (half spread plus fee)."""

    @classmethod
    def estimate(cls, venue: Venue, bound: BoundParent, lookback_s: int = 3600) -> ImpactModel:
        """Rough inputs from the venue's minute candles and book before the start."""
        market = bound.parent.market
        candles = venue.candles(market, 60, bound.start_ns - lookback_s * NS_PER_S, bound.start_ns)
        closes = [c.close_ticks for c in candles if c.volume_lots > 0]
        diffs = [b - a for a, b in itertools.pairwise(closes)]
        if len(diffs) >= 2:
            mean = sum(diffs) / len(diffs)
            sigma = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1) / 60)
        else:
            sigma = bound.arrival_ticks * 0.5 / math.sqrt(365 * 86400)  # 50% a year, as a fallback
        book = venue.book(market)
        bid, ask = book.touch_pair()
        half_spread = (ask - bid) / 2 if bid is not None and ask is not None else 1.0
        fee_ticks = float(bound.filters.taker_fee_bps) / 10_000 * bound.arrival_ticks
        depth = sum(level.qty_lots for level in (*book.bids[:5], *book.asks[:5])) / 2 or 1
        eta = max(half_spread, 1.0) / depth
        return cls(sigma=max(sigma, 1e-9), eta=eta, gamma=0.0, epsilon=half_spread + fee_ticks)

    def risk_aversion(self, urgency: Urgency, horizon_s: float, steps: int) -> float:
        """``lambda`` giving ``kappa T = URGENCY_KAPPA_T[urgency]`` for this window."""
        kappa_tilde = URGENCY_KAPPA_T[urgency] / horizon_s
        eta_tilde = self.eta - self.gamma * horizon_s / steps / 2
        return kappa_tilde**2 * eta_tilde / self.sigma**2


@dataclass(frozen=True, slots=True)
class ShortfallCurve:
    """Equal slices; each slice's share from the schedule re-solved at its start."""

    bounds: tuple[int, ...]
    model: ImpactModel
    risk_aversion: float

    def boundaries_ns(self, snapshot: Snapshot) -> tuple[int, ...]:
        return self.bounds

    def share(self, snapshot: Snapshot, k: int) -> float:
        steps = len(self.bounds) - 1 - k
        if steps <= 1:
            return 1.0
        horizon_s = (self.bounds[-1] - self.bounds[k]) / NS_PER_S
        params = AcParams(
            qty=1.0,
            horizon=horizon_s,
            steps=steps,
            sigma=self.model.sigma,
            eta=self.model.eta,
            gamma=self.model.gamma,
            epsilon=self.model.epsilon,
            risk_aversion=self.risk_aversion,
        )
        try:
            return optimal_schedule(params).trades[0]
        except ScheduleError:
            return 1.0  # so risk-averse the schedule is one block: trade it all now

    def label(self) -> str:
        return "IS"


def shortfall(bound: BoundParent, venue: Venue, model: ImpactModel | None = None) -> ScheduleFollower:
    """The IS strategy for ``bound``; ``model`` estimated from ``venue`` when not given."""
    assert bound.end_ns is not None, "IS needs a window"
    model = model or ImpactModel.estimate(venue, bound)
    n = slice_count(bound, bound.parent.slice_interval_s or DEFAULT_SLICE_S)
    horizon_s = (bound.end_ns - bound.start_ns) / NS_PER_S
    parent = bound.parent
    lam = (
        parent.risk_aversion
        if parent.risk_aversion is not None
        else model.risk_aversion(parent.urgency, horizon_s, n)
    )
    period = (bound.end_ns - bound.start_ns) // n
    bounds = (*(bound.start_ns + k * period for k in range(n)), bound.end_ns)
    return ScheduleFollower(ShortfallCurve(bounds, model, lam))
