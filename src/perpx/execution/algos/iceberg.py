"""Iceberg: one child at a time shows ``display_qty``; a fresh one replaces it when it fills.

* Each refill's size is ``display_qty x (1 + r x display_jitter)`` (``r`` in ``[-1, 1]`` from
  the seeded jitter, indexed by the child count), at most the remainder; so the visible size
  does not betray the iceberg by repeating exactly.
* Price: ``limit_price`` when given (a classic resting iceberg); with ``repeg_ticks`` it instead
  joins the near touch (never past the limit) and is re-pegged when the touch moves that many
  ticks away from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from perpx.execution.model import BPS, ParentSide
from perpx.execution.strategy import CancelChild, Decision, Jitter, PlaceChild, Snapshot
from perpx.execution.venue import TimeInForce


@dataclass(frozen=True, slots=True)
class Iceberg:
    """The iceberg strategy (module docstring)."""

    display_lots: int
    jitter: Jitter

    def _price(self, snapshot: Snapshot) -> int | None:
        bound = snapshot.bound
        near = snapshot.book.touch(bound.parent.side)
        if bound.parent.repeg_ticks is None and bound.limit_ticks is not None:
            return bound.limit_ticks
        return near if near is not None else bound.limit_ticks

    def decide(self, snapshot: Snapshot) -> Decision:
        bound = snapshot.bound
        parent = bound.parent
        price = self._price(snapshot)
        if snapshot.working:
            child = snapshot.working[0]
            repeg = parent.repeg_ticks
            if repeg is not None and price is not None and child.price_ticks is not None:
                away = (
                    price - child.price_ticks if parent.side is ParentSide.BUY else child.price_ticks - price
                )
                if away >= repeg:
                    return Decision(
                        (CancelChild(child.client_order_id, f"touch moved {away} ticks away: re-peg"),),
                        wake_ns=snapshot.now_ns + 1,
                    )
            return Decision(note=f"showing {child.working_lots} lots at {child.price_ticks}")
        if snapshot.remaining_lots <= 0 or price is None:
            return Decision(note="nothing to show")
        spread = Decimal(parent.display_jitter_bps) / BPS
        size = int(self.display_lots * (1 + self.jitter.uniform(snapshot.children_sent, "display") * spread))
        size = max(1, min(size, snapshot.remaining_lots))
        tif = TimeInForce.POST_ONLY if parent.post_only else TimeInForce.GTC
        return Decision(
            (
                PlaceChild(
                    size,
                    price,
                    tif,
                    f"iceberg refill {snapshot.children_sent + 1}: show {size} lots at {price}",
                ),
            )
        )
