"""Schedule-following: the machinery TWAP, VWAP and IS share.

A schedule algorithm splits the window into slices at boundaries ``t_0 = start < t_1 < ... < t_n
= end`` and names, for each slice ``k``, the share ``u_k`` of *what is left* to do by its end
(:meth:`Curve.share`). At each slice boundary the runner's strategy

1. cancels the previous slice's unfilled child (its quantity returns to the remainder),
2. sends one child for ``ceil(u_k x (qty - filled))`` lots: shortfalls of earlier slices are
   spread over the slices left (catch-up, as Hummingbot and Pacifica do), and the last slice's
   share is 1;
3. prices it by passiveness (:mod:`.pricing`); a slice that starts behind schedule by more
   than one slice's quantity sends its deficit as a taking child instead ("behind by ...");
4. whenever the far touch is at or better than ``would_price``, takes everything left there.

The strategy is stateless: which slice it is in follows from the time, and whether the slice's
child was sent from the child count and the last slice boundary the log shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from perpx.execution.algos.pricing import passive_price_ticks, would_take
from perpx.execution.rules import min_child_lots
from perpx.execution.strategy import CancelChild, Decision, Intent, PlaceChild, Snapshot
from perpx.execution.venue import TimeInForce


class Curve(Protocol):
    """The target of a schedule algorithm, in slices."""

    def boundaries_ns(self, snapshot: Snapshot) -> tuple[int, ...]:
        """``t_0 .. t_n``: the window's slice boundaries, rising, first the start and last the end."""
        ...

    def share(self, snapshot: Snapshot, k: int) -> float:
        """The share of what is left at ``t_k`` to do by ``t_{k+1}`` (1 for the last slice)."""
        ...

    def label(self) -> str:
        """The algorithm's name in child reasons."""
        ...


def _slice_at(bounds: tuple[int, ...], now_ns: int) -> int:
    k = 0
    while k + 1 < len(bounds) - 1 and bounds[k + 1] <= now_ns:
        k += 1
    return k


@dataclass(frozen=True, slots=True)
class ScheduleFollower:
    """A :class:`~perpx.execution.strategy.Strategy` that follows ``curve`` (module docstring)."""

    curve: Curve

    def target_lots(self, snapshot: Snapshot, k: int) -> int:
        """The cumulative quantity the plan wants filled by ``t_{k+1}``, from the fills so far."""
        left = snapshot.bound.qty_lots - snapshot.filled_lots
        return snapshot.filled_lots + min(left, -int(-left * self.curve.share(snapshot, k) // 1))

    def _sized(self, snapshot: Snapshot, qty: int) -> int:
        # a child too small for the market is raised to the minimum; a remainder that would be
        # too small afterwards is sent now, so the parent never strands an unsendable tail
        if qty <= 0:
            return qty
        left = snapshot.bound.qty_lots - snapshot.filled_lots
        smallest = min_child_lots(snapshot.bound)
        qty = min(left, max(qty, smallest))
        return left if left - qty < smallest else qty

    def planned_lots(self, snapshot: Snapshot, k: int) -> int:
        """The static plan: what perfect fills would have done by ``t_k``, ``Q (1 - prod_{i<k} (1 - u_i))``."""
        undone = 1.0
        for i in range(k):
            undone *= 1 - self.curve.share(snapshot, i)
        return int(snapshot.bound.qty_lots * (1 - undone))

    def decide(self, snapshot: Snapshot) -> Decision:
        bound = snapshot.bound
        bounds = self.curve.boundaries_ns(snapshot)
        n = len(bounds) - 1
        if snapshot.now_ns < bounds[0]:
            return Decision(wake_ns=bounds[0], note="waiting for the start")
        k = _slice_at(bounds, snapshot.now_ns)
        next_boundary = bounds[k + 1]
        target = self.target_lots(snapshot, k)
        take = would_take(snapshot)
        if take is not None:
            return Decision((take,), note=f"slice {k + 1}/{n}: would price reached", schedule_lots=target)
        # one child per slice: a child sent at or after this slice's start means the slice is served
        served = snapshot.last_sent_ns is not None and snapshot.last_sent_ns >= bounds[k]
        if served:
            return Decision(wake_ns=next_boundary, note=f"slice {k + 1}/{n} working", schedule_lots=target)
        intents: list[Intent] = [
            CancelChild(c.client_order_id, f"slice {k} ended with {c.working_lots} lots unfilled: re-planned")
            for c in snapshot.working
        ]
        qty = self._sized(snapshot, target - snapshot.filled_lots)
        if qty <= 0:
            return Decision(
                tuple(intents), wake_ns=next_boundary, note=f"slice {k + 1}/{n}: ahead of schedule"
            )
        label = f"{self.curve.label()} slice {k + 1}/{n}"
        parent = bound.parent
        behind = self.planned_lots(snapshot, k) - snapshot.filled_lots
        tolerance = max(1, bound.qty_lots // n)
        passive = passive_price_ticks(parent.side, snapshot.book, parent.passiveness_bps)
        if parent.passiveness_bps == 0 or passive is None:
            intents.append(PlaceChild(qty, None, TimeInForce.IOC, f"{label}: take {qty} lots"))
        elif behind > tolerance and not parent.post_only:
            catch_up = min(behind, qty)
            intents.append(
                PlaceChild(
                    catch_up, None, TimeInForce.IOC, f"{label}: behind plan by {behind} lots, take {catch_up}"
                )
            )
            if qty > catch_up:
                intents.append(
                    PlaceChild(
                        qty - catch_up, passive, TimeInForce.GTC, f"{label}: rest {qty - catch_up} lots"
                    )
                )
        else:
            intents.append(
                PlaceChild(qty, passive, TimeInForce.GTC, f"{label}: rest {qty} lots at {passive}")
            )
        return Decision(tuple(intents), wake_ns=next_boundary, note=label, schedule_lots=target)
