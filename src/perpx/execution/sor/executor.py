"""Send a routed parent's children, and re-route what a failed venue left.

Each round reads the books of the venues still healthy, plans the least-cost split of what is left
(:func:`.router.route`) and sends every venue its share as one immediate-or-cancel limit child at the
worst price of its walk. A venue that fails (a refused child, an unreachable server) is dropped and the
next round routes its share elsewhere, from fresh books.

A child whose fate is unknown (the request left but no answer came back, and asking the venue about it
failed too) is *in doubt*: its quantity is neither counted as filled nor re-routed, so the parent can
never be over-filled; the report names it so a person can reconcile it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from perpx.engine.values import Side
from perpx.execution.ids import child_id

from .grid import Level, VenueBook, VenueTerms
from .router import RoutePlan, route

DEFAULT_DEPTH = 50
DEFAULT_MAX_ROUNDS = 5


class VenueFailed(Exception):
    """The venue cannot take this parent's children any more.

    ``filled_lots`` of the failed child did fill (known for certain); ``in_doubt_lots`` may or may not
    have. A venue that refused a child outright raises it with both zero.
    """

    def __init__(self, reason: str, filled_lots: int = 0, in_doubt_lots: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.filled_lots = filled_lots
        self.in_doubt_lots = in_doubt_lots


@dataclass(frozen=True, slots=True)
class Taken:
    """What an immediate-or-cancel child filled: lots and their notional in ``_units`` (tick times lot)."""

    filled_lots: int
    notional_units: int


class RoutingVenue(Protocol):
    """What the router needs of a venue, on the parent's grid (see :class:`.grid.Grid`)."""

    @property
    def terms(self) -> VenueTerms: ...

    def book(self, side: Side, depth: int) -> tuple[Level, ...]:
        """The levels a ``side`` parent takes from, best first. Raises :class:`VenueFailed`."""
        ...

    def take(self, side: Side, qty_lots: int, limit_price_ticks: int, client_order_id: str) -> Taken:
        """An immediate-or-cancel child; returns what filled. Raises :class:`VenueFailed`."""
        ...


@dataclass(frozen=True, slots=True)
class ChildResult:
    """One child sent: its venue, id, planned lots and what came of it."""

    round_no: int
    venue: str
    client_order_id: str
    planned_lots: int
    limit_price_ticks: int
    filled_lots: int
    notional_units: int = 0
    in_doubt_lots: int = 0
    failure: str | None = None


@dataclass
class RouteReport:
    """Everything one routed parent did: the plans, every child, the venues dropped and what is left."""

    side: Side
    requested_lots: int
    plans: list[RoutePlan] = field(default_factory=list)
    children: list[ChildResult] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def filled_lots(self) -> int:
        return sum(c.filled_lots for c in self.children)

    @property
    def in_doubt_lots(self) -> int:
        return sum(c.in_doubt_lots for c in self.children)

    @property
    def remaining_lots(self) -> int:
        """Neither filled nor in doubt: what a later attempt may still route."""
        return self.requested_lots - self.filled_lots - self.in_doubt_lots

    def filled_by_venue(self) -> dict[str, int]:
        filled: dict[str, int] = {}
        for child in self.children:
            filled[child.venue] = filled.get(child.venue, 0) + child.filled_lots
        return filled

    def used(self, venue: str) -> tuple[int, int]:
        """Lots (filled or in doubt) and filled notional already sent to ``venue``: its caps shrink by them.

        A child in doubt counts at its limit price, the most it can have cost.
        """
        lots = notional = 0
        for child in self.children:
            if child.venue == venue:
                lots += child.filled_lots + child.in_doubt_lots
                notional += child.notional_units + child.in_doubt_lots * child.limit_price_ticks
        return lots, notional


def execute(
    side: Side,
    qty_lots: int,
    venues: Sequence[RoutingVenue],
    client_algo_id: str,
    *,
    limit_price_ticks: int | None = None,
    depth: int = DEFAULT_DEPTH,
    max_rounds: int = DEFAULT_MAX_ROUNDS,
) -> RouteReport:
    """Route ``qty_lots`` over ``venues`` until filled, out of venues, out of liquidity or rounds.

    Child ids are :func:`perpx.execution.ids.child_id` of ``client_algo_id`` and the child's number:
    deterministic, so a retried parent with the same ``client_algo_id`` sends the same ids and a venue
    that deduplicates client order ids drops the repeats.
    Invariant, at every step: filled + in doubt + remaining = ``qty_lots``, and nothing is ever sent
    beyond ``remaining``.
    """
    if not client_algo_id:
        raise ValueError("client_algo_id is required (it names the children)")
    report = RouteReport(side, qty_lots)
    for round_no in range(1, max_rounds + 1):
        if report.remaining_lots == 0:
            break
        books = _healthy_books(side, venues, depth, report)
        if not books:
            break
        plan = route(side, report.remaining_lots, [venue.snapshot for _, venue in books], limit_price_ticks)
        report.plans.append(plan)
        if plan.routed_lots == 0:
            break
        progressed = False
        for allocation in plan.allocations:
            venue = next(v for _, v in books if v.terms.name == allocation.venue)
            name = child_id(client_algo_id, len(report.children))
            result = _send(venue, side, allocation.qty_lots, allocation.worst_price_ticks, name, round_no)
            report.children.append(result)
            if result.failure is not None:
                report.failed[result.venue] = result.failure
            progressed = progressed or result.filled_lots > 0 or result.failure is not None
        if not progressed:
            break
    return report


def _healthy_books(
    side: Side, venues: Sequence[RoutingVenue], depth: int, report: RouteReport
) -> list[tuple[int, _BookedVenue]]:
    """Each venue not yet failed, with its book read now and its caps less what it already took.

    A venue whose book cannot be read is dropped.
    """
    books: list[tuple[int, _BookedVenue]] = []
    for index, venue in enumerate(venues):
        name = venue.terms.name
        if name in report.failed:
            continue
        try:
            levels = venue.book(side, depth)
        except VenueFailed as failure:
            report.failed[name] = failure.reason
            continue
        books.append((index, _BookedVenue(venue, VenueBook(_left_of(venue.terms, report), levels))))
    return books


def _left_of(terms: VenueTerms, report: RouteReport) -> VenueTerms:
    lots, notional = report.used(terms.name)
    return replace(
        terms,
        max_qty_lots=None if terms.max_qty_lots is None else max(0, terms.max_qty_lots - lots),
        max_notional_units=None
        if terms.max_notional_units is None
        else max(0, terms.max_notional_units - notional),
    )


def _send(
    venue: RoutingVenue, side: Side, lots: int, limit_ticks: int, child_id: str, round_no: int
) -> ChildResult:
    name = venue.terms.name
    try:
        taken = venue.take(side, lots, limit_ticks, child_id)
    except VenueFailed as failure:
        filled = min(max(failure.filled_lots, 0), lots)
        in_doubt = min(max(failure.in_doubt_lots, 0), lots - filled)
        notional = filled * limit_ticks
        return ChildResult(
            round_no, name, child_id, lots, limit_ticks, filled, notional, in_doubt, failure.reason
        )
    if not 0 <= taken.filled_lots <= lots:
        reason = f"venue reported {taken.filled_lots} lots filled of {lots} sent"
        return ChildResult(round_no, name, child_id, lots, limit_ticks, 0, 0, lots, reason)
    return ChildResult(round_no, name, child_id, lots, limit_ticks, taken.filled_lots, taken.notional_units)


@dataclass(frozen=True, slots=True)
class _BookedVenue:
    """A venue with the book it showed this round (so one round plans on one snapshot)."""

    venue: RoutingVenue
    snapshot: VenueBook

    @property
    def terms(self) -> VenueTerms:
        return self.venue.terms

    def book(self, side: Side, depth: int) -> tuple[Level, ...]:
        return self.snapshot.levels

    def take(self, side: Side, qty_lots: int, limit_price_ticks: int, client_order_id: str) -> Taken:
        return self.venue.take(side, qty_lots, limit_price_ticks, client_order_id)
