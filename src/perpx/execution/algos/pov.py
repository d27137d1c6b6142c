"""POV: trade a target share of the market's volume, within a band, with an "I would" price.

Participation counts our own fills: with ``V`` the tape volume since the start (ours included)
and ``F`` our filled quantity, the realised rate is ``F / V`` and the target fill is
``Q*(V) = rho V`` (section 4.2 of the reference). At each wake-up, in this order:

1. **would price**: when the far touch is at or better than ``would_price``, take the remainder
   there, whatever the rate ("I would buy all I can at this price");
2. **above the band** (``F/V > pov_max``): cancel working children and pause;
3. **below the band** (``F/V < pov_min``): take enough to get back to ``pov_min``,
   ``rho_min / (1 - rho_min) x (V - F) - F`` lots, crossing up to ``take_through_bps``;
4. otherwise keep one passive child for the deficit ``Q* - F - working`` (at least ``min_clip``,
   at most ``max_clip``), re-pegged when the near touch moves away from it.

With no ``pov_min``/``pov_max`` the band is the target itself plus or minus a fifth. POV has no
guaranteed finish: with an end time the runner applies ``end_behavior``; without one it runs
until the quantity is done.
"""

from __future__ import annotations

from dataclasses import dataclass

from perpx.execution.algos.pricing import passive_price_ticks, would_take
from perpx.execution.model import BPS, ParentSide
from perpx.execution.strategy import CancelChild, Decision, Intent, PlaceChild, Snapshot
from perpx.execution.venue import TimeInForce

DEFAULT_BAND_BPS = 2_000
"""Without explicit bounds the band is the target +/- 20% of itself."""


@dataclass(frozen=True, slots=True)
class Pov:
    """The POV strategy (module docstring); rates in bps."""

    target_bps: int
    min_bps: int
    max_bps: int

    @classmethod
    def for_parent(cls, target_bps: int, min_bps: int | None, max_bps: int | None) -> Pov:
        slack = target_bps * DEFAULT_BAND_BPS // BPS
        return cls(
            target_bps,
            min_bps if min_bps is not None else max(1, target_bps - slack),
            max_bps if max_bps is not None else min(BPS - 1, target_bps + slack),
        )

    def decide(self, snapshot: Snapshot) -> Decision:
        bound = snapshot.bound
        parent = bound.parent
        side = parent.side
        volume, filled = snapshot.market_volume_lots, snapshot.filled_lots
        rate_bps = filled * BPS // volume if volume else 0
        target = self.target_bps * volume // BPS
        note = f"participation {rate_bps} bps of {volume} lots (band {self.min_bps}-{self.max_bps})"
        left = snapshot.remaining_lots
        take = would_take(snapshot)
        if take is not None:
            return Decision((take,), note=note, schedule_lots=target)
        if volume and rate_bps > self.max_bps:
            cancels = tuple(
                CancelChild(
                    c.client_order_id, f"participation {rate_bps} bps above max {self.max_bps}: pause"
                )
                for c in snapshot.working
            )
            return Decision(cancels, note=note + ": paused", schedule_lots=target)
        intents: list[Intent] = []
        if volume and rate_bps < self.min_bps and not parent.post_only:
            other = volume - filled
            need = -(-self.min_bps * other // (BPS - self.min_bps)) - filled - snapshot.working_lots
            if need > 0:
                intents.append(
                    PlaceChild(
                        need,
                        None,
                        TimeInForce.IOC,
                        f"participation {rate_bps} bps below min {self.min_bps}: take {need} lots",
                    )
                )
                return Decision(tuple(intents), note=note, schedule_lots=target)
        passive = passive_price_ticks(side, snapshot.book, parent.passiveness_bps or 1)
        near = snapshot.book.touch(side)
        for child in snapshot.working:
            away = (
                near is not None
                and child.price_ticks is not None
                and (child.price_ticks < near if side is ParentSide.BUY else child.price_ticks > near)
            )
            if away:
                intents.append(CancelChild(child.client_order_id, f"touch moved to {near}: re-peg"))
        working = snapshot.working_lots - sum(
            c.working_lots
            for c in snapshot.working
            if any(isinstance(i, CancelChild) and i.client_order_id == c.client_order_id for i in intents)
        )
        deficit = min(left + snapshot.working_lots - working, target - filled - working)
        if deficit > 0 and deficit >= bound.min_clip_lots and passive is not None:
            intents.append(
                PlaceChild(
                    deficit,
                    passive,
                    TimeInForce.GTC,
                    f"target {target} lots, filled {filled}, working {working}: rest {deficit}",
                )
            )
        return Decision(tuple(intents), note=note, schedule_lots=target)
