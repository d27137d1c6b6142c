"""The optimal split of one parent across venues: equal marginal all-in cost, exactly.

Each lot taken at ``price_ticks`` on a venue with taker fee ``f`` costs
``s * price * 1e8 + price * f`` (in ``_units_e8``; ``s`` = +1 buy, -1 sell): a buy pays the price plus
the fee, a sell receives the price less the fee, and both count as cost. Walking a book best first,
that marginal cost never falls, so each venue's cost is convex in the quantity routed to it and a
per-venue quantity or notional cap keeps it so. Taking the cheapest next lot anywhere (the greedy walk)
is then optimal: when it stops, every used venue's last marginal cost is at most every unused lot's,
which is the equal-marginal-cost condition.

A venue minimum (``min_qty_lots`` above one lot) breaks convexity: a venue gets zero or at least its
minimum. The router then solves each choice of participating venues exactly (their minimums taken
first from their best levels, the rest by the greedy walk) and keeps the best; the number of choices is
``2**venues`` with minimums, small for the handful of venues a desk routes to.

The objective is lexicographic: route as much of the parent as the books, limits and limit price allow,
then at the least cost. Ties go to the venue listed first, so the plan is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations, pairwise

from perpx.engine.values import Side

from .grid import FEE_SCALE_E8, Level, VenueBook

MAX_VENUES_WITH_MINIMUMS = 12
"""Above this many venues with a minimum child, the exact search (2**n choices) is refused."""


def all_in_cost(side: Side, price_ticks: int, qty_lots: int, taker_fee_e8: int) -> int:
    """Cost of taking ``qty_lots`` at ``price_ticks``, fee included, in ``_units_e8`` (exact, no rounding).

    Positive means money paid: a buy costs price plus fee, a sell costs minus the price plus the fee.
    """
    return qty_lots * price_ticks * (int(side) * FEE_SCALE_E8 + taker_fee_e8)


@dataclass(frozen=True, slots=True)
class Allocation:
    """What one venue is asked to take: ``qty_lots`` through levels up to ``worst_price_ticks``."""

    venue: str
    qty_lots: int
    worst_price_ticks: int
    notional_units: int
    cost_units_e8: int


@dataclass(frozen=True, slots=True)
class RoutePlan:
    """A split of ``requested_lots``: one allocation per used venue (in the order given) and what is left."""

    side: Side
    requested_lots: int
    allocations: tuple[Allocation, ...]
    unrouted_lots: int
    cost_units_e8: int

    @property
    def routed_lots(self) -> int:
        return self.requested_lots - self.unrouted_lots

    def lots_for(self, venue: str) -> int:
        return sum(a.qty_lots for a in self.allocations if a.venue == venue)


@dataclass(frozen=True, slots=True)
class _Chunk:
    marginal_e8: int
    venue_index: int
    level_index: int
    level: Level


def route(
    side: Side, qty_lots: int, books: list[VenueBook], limit_price_ticks: int | None = None
) -> RoutePlan:
    """The least-cost split of ``qty_lots`` over ``books`` (see the module docstring).

    Raises
    ------
    ValueError
        On a non-positive quantity, two venues with one name, a book not best-first, or too many venues
        with minimums for the exact search.
    """
    if qty_lots <= 0:
        raise ValueError(f"parent quantity must be positive, got {qty_lots} lots")
    names = [book.terms.name for book in books]
    if len(set(names)) != len(names):
        raise ValueError(f"venue names must be unique, got {names}")
    for book in books:
        _check_best_first(side, book)
    capacity = [_capacity(side, book, limit_price_ticks) for book in books]
    with_minimum = [i for i, book in enumerate(books) if book.terms.min_qty_lots > 1]
    if not with_minimum:
        return _plan(side, qty_lots, books, capacity, list(range(len(books))))
    if len(with_minimum) > MAX_VENUES_WITH_MINIMUMS:
        raise ValueError(
            f"{len(with_minimum)} venues have minimum children; at most {MAX_VENUES_WITH_MINIMUMS}"
        )
    free = [i for i in range(len(books)) if i not in with_minimum]
    best: RoutePlan | None = None
    for size in range(len(with_minimum) + 1):
        for chosen in combinations(with_minimum, size):
            plan = _plan(side, qty_lots, books, capacity, sorted([*free, *chosen]))
            if best is None or (plan.unrouted_lots, plan.cost_units_e8) < (
                best.unrouted_lots,
                best.cost_units_e8,
            ):
                best = plan
    assert best is not None  # the empty choice always yields a plan
    return best


def _check_best_first(side: Side, book: VenueBook) -> None:
    prices = [level.price_ticks for level in book.levels]
    ordered = all(int(side) * (b - a) > 0 for a, b in pairwise(prices))
    if not ordered:
        word = "ascending asks" if side is Side.BUY else "descending bids"
        raise ValueError(f"{book.terms.name}: levels must be best first ({word}), got {prices}")


def _capacity(side: Side, book: VenueBook, limit_price_ticks: int | None) -> int:
    """Lots the venue can take: its levels within the limit price, its quantity cap and notional cap."""
    terms = book.terms
    lots = 0
    notional = 0
    for level in book.levels:
        if limit_price_ticks is not None and int(side) * (level.price_ticks - limit_price_ticks) > 0:
            break
        take = level.qty_lots
        if terms.max_notional_units is not None:
            take = min(take, (terms.max_notional_units - notional) // level.price_ticks)
        lots += take
        notional += take * level.price_ticks
        if take < level.qty_lots:
            break
    return lots if terms.max_qty_lots is None else min(lots, terms.max_qty_lots)


def _plan(
    side: Side, qty_lots: int, books: list[VenueBook], capacity: list[int], used: list[int]
) -> RoutePlan:
    """Minimums of the ``used`` venues first (from their best levels), then the greedy walk over the rest."""
    taken = dict.fromkeys(used, 0)
    remaining = qty_lots
    for i in used:
        minimum = books[i].terms.min_qty_lots
        if minimum > 1:
            if capacity[i] < minimum or remaining < minimum:
                return _infeasible(side, qty_lots)
            taken[i] = minimum
            remaining -= minimum
    chunks = sorted(
        (
            _Chunk(level.price_ticks * (int(side) * FEE_SCALE_E8 + books[i].terms.taker_fee_e8), i, j, level)
            for i in used
            for j, level in enumerate(books[i].levels)
        ),
        key=lambda c: (c.marginal_e8, c.venue_index, c.level_index),
    )
    depth = dict.fromkeys(used, 0)  # lots of each venue's walk already counted (minimums included)
    for chunk in chunks:
        if remaining == 0:
            break
        i = chunk.venue_index
        before = depth[i]
        depth[i] += chunk.level.qty_lots
        free_here = min(depth[i], capacity[i]) - max(before, taken[i])
        if free_here <= 0:
            continue
        take = min(free_here, remaining)
        taken[i] += take
        remaining -= take
    return _materialise(side, qty_lots, books, taken, remaining)


def _infeasible(side: Side, qty_lots: int) -> RoutePlan:
    """A choice of venues whose minimums cannot all be met: it routes nothing, so any other choice wins."""
    return RoutePlan(side, qty_lots, (), qty_lots, 0)


def _materialise(
    side: Side, qty_lots: int, books: list[VenueBook], taken: dict[int, int], remaining: int
) -> RoutePlan:
    allocations: list[Allocation] = []
    for i in sorted(taken):
        lots = taken[i]
        if lots == 0:
            continue
        book = books[i]
        left, notional, cost, worst = lots, 0, 0, 0
        for level in book.levels:
            take = min(left, level.qty_lots)
            notional += take * level.price_ticks
            cost += all_in_cost(side, level.price_ticks, take, book.terms.taker_fee_e8)
            worst = level.price_ticks
            left -= take
            if left == 0:
                break
        allocations.append(Allocation(book.terms.name, lots, worst, notional, cost))
    total = sum(a.cost_units_e8 for a in allocations)
    return RoutePlan(side, qty_lots, tuple(allocations), remaining, total)
