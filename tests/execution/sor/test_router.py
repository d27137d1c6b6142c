"""The router's split: rule tables for the maths, and a brute-force optimum over random books."""

from __future__ import annotations

from itertools import product

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perpx.engine.values import Side
from perpx.execution.sor import Level, VenueBook, VenueTerms, all_in_cost, route

BUY, SELL = Side.BUY, Side.SELL


def book(name: str, fee_e8: int, *levels: tuple[int, int], **limits: int) -> VenueBook:
    return VenueBook(VenueTerms(name, fee_e8, **limits), tuple(Level(p, q) for p, q in levels))


@pytest.mark.parametrize(
    ("side", "price_ticks", "qty_lots", "fee_e8", "expected"),
    [
        (BUY, 100, 2, 0, 2 * 100 * 100_000_000),
        (BUY, 100, 2, 50_000, 2 * 100 * 100_050_000),  # a buy pays price plus 5 bp
        (SELL, 100, 2, 50_000, -2 * 100 * 99_950_000),  # a sell receives price less 5 bp
        (SELL, 100, 1, -10_000, -100 * 100_010_000),  # a rebate lowers the cost on either side
    ],
)
def test_all_in_cost_rules(side: Side, price_ticks: int, qty_lots: int, fee_e8: int, expected: int) -> None:
    assert all_in_cost(side, price_ticks, qty_lots, fee_e8) == expected


@pytest.mark.parametrize(
    ("rule", "side", "qty", "books", "limit", "split", "unrouted"),
    [
        (
            "cheaper venue first",
            BUY,
            3,
            [book("a", 0, (101, 5)), book("b", 0, (100, 2))],
            None,
            {"a": 1, "b": 2},
            0,
        ),
        # 1000 at 20 bp (1002 all-in) loses to 1001 at no fee
        (
            "fees decide between near prices",
            BUY,
            2,
            [book("a", 200_000, (1000, 5)), book("b", 0, (1001, 5))],
            None,
            {"b": 2},
            0,
        ),
        (
            "a sell takes the highest net bid",
            SELL,
            4,
            [book("a", 0, (99, 2), (98, 9)), book("b", 0, (100, 1), (97, 9))],
            None,
            {"a": 3, "b": 1},
            0,
        ),
        (
            "quantity cap",
            BUY,
            4,
            [book("a", 0, (100, 9), max_qty_lots=1), book("b", 0, (105, 9))],
            None,
            {"a": 1, "b": 3},
            0,
        ),
        (
            "notional cap in units",
            BUY,
            4,
            [book("a", 0, (100, 9), max_notional_units=250), book("b", 0, (105, 9))],
            None,
            {"a": 2, "b": 2},
            0,
        ),
        ("limit price stops the walk", BUY, 5, [book("a", 0, (100, 2), (110, 9))], 105, {"a": 2}, 3),
        (
            "thin books leave a remainder",
            BUY,
            9,
            [book("a", 0, (100, 2)), book("b", 0, (101, 3))],
            None,
            {"a": 2, "b": 3},
            4,
        ),
        # b's 3-lot minimum: 2 lots at a and 1 at b is not allowed; a takes 3 instead of b taking 3
        (
            "a minimum is all or nothing",
            BUY,
            3,
            [book("a", 0, (100, 2), (103, 5)), book("b", 0, (101, 9), min_qty_lots=3)],
            None,
            {"a": 3},
            0,
        ),
        (
            "a minimum met when it pays",
            BUY,
            5,
            [book("a", 0, (100, 2), (110, 5)), book("b", 0, (101, 9), min_qty_lots=3)],
            None,
            {"a": 2, "b": 3},
            0,
        ),
        (
            "ties go to the venue listed first",
            BUY,
            1,
            [book("a", 0, (100, 1)), book("b", 0, (100, 1))],
            None,
            {"a": 1},
            0,
        ),
    ],
)
def test_split_rules(
    rule: str,
    side: Side,
    qty: int,
    books: list[VenueBook],
    limit: int | None,
    split: dict[str, int],
    unrouted: int,
) -> None:
    plan = route(side, qty, books, limit)
    assert {a.venue: a.qty_lots for a in plan.allocations} == split, rule
    assert plan.unrouted_lots == unrouted, rule


@pytest.mark.parametrize(
    ("books", "qty", "message"),
    [
        ([book("a", 0, (100, 1))], 0, "parent quantity must be positive"),
        ([book("a", 0, (100, 1)), book("a", 0, (101, 1))], 1, "venue names must be unique"),
        ([book("a", 0, (101, 1), (100, 1))], 1, "levels must be best first"),
    ],
)
def test_bad_routing_input_is_rejected(books: list[VenueBook], qty: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        route(BUY, qty, books)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Level(0, 1), "level price must be positive"),
        (lambda: Level(1, 0), "level quantity must be positive"),
        (lambda: VenueTerms("a", 100_000_000), "is not a rate in"),
        (lambda: VenueTerms("a", 0, min_qty_lots=0), "min_qty_lots must be at least 1"),
        (lambda: VenueTerms("", 0), "a venue needs a name"),
    ],
)
def test_bad_book_values_are_rejected(make: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()  # type: ignore[operator]


# ---------------------------------------------------------------- brute force


def walk_cost(side: Side, venue: VenueBook, lots: int) -> int:
    cost = 0
    for level in venue.levels:
        take = min(lots, level.qty_lots)
        cost += all_in_cost(side, level.price_ticks, take, venue.terms.taker_fee_e8)
        lots -= take
    assert lots == 0
    return cost


def feasible(side: Side, venue: VenueBook, lots: int, limit: int | None) -> bool:
    """Every lot of the walk exists, is within the limit and the caps; a used venue meets its minimum."""
    if lots == 0:
        return True
    terms = venue.terms
    if lots < terms.min_qty_lots or (terms.max_qty_lots is not None and lots > terms.max_qty_lots):
        return False
    left, notional = lots, 0
    for level in venue.levels:
        if left == 0:
            break
        if limit is not None and int(side) * (level.price_ticks - limit) > 0:
            return False
        take = min(left, level.qty_lots)
        notional += take * level.price_ticks
        left -= take
    if left > 0:
        return False
    return terms.max_notional_units is None or notional <= terms.max_notional_units


def brute_force(side: Side, qty: int, books: list[VenueBook], limit: int | None) -> tuple[int, int]:
    """(unrouted lots, cost) of the best of every split, by enumeration."""
    best: tuple[int, int] | None = None
    for split in product(range(qty + 1), repeat=len(books)):
        if sum(split) > qty or not all(
            feasible(side, b, q, limit) for b, q in zip(books, split, strict=True)
        ):
            continue
        score = (qty - sum(split), sum(walk_cost(side, b, q) for b, q in zip(books, split, strict=True)))
        best = score if best is None or score < best else best
    assert best is not None
    return best


@st.composite
def venue_books(draw: st.DrawFn, side: Side, name: str) -> VenueBook:
    start = draw(st.integers(90, 110))
    steps = draw(st.lists(st.integers(1, 4), min_size=0, max_size=3))
    prices = [start]
    for step in steps:
        prices.append(prices[-1] + int(side) * step)
    levels = tuple(Level(p, draw(st.integers(1, 4))) for p in prices)
    terms = VenueTerms(
        name,
        draw(st.sampled_from([0, 20_000, 50_000, 200_000, 2_000_000])),
        max_qty_lots=draw(st.none() | st.integers(0, 6)),
        max_notional_units=draw(st.none() | st.integers(0, 800)),
        min_qty_lots=draw(st.sampled_from([1, 1, 2, 3])),
    )
    return VenueBook(terms, levels)


@st.composite
def problems(draw: st.DrawFn) -> tuple[Side, int, list[VenueBook], int | None]:
    side = draw(st.sampled_from([BUY, SELL]))
    count = draw(st.integers(1, 3))
    books = [draw(venue_books(side, f"v{i}")) for i in range(count)]
    limit = draw(st.none() | st.integers(90, 115))
    return side, draw(st.integers(1, 8)), books, limit


@settings(max_examples=300, deadline=None)
@given(problems())
def test_split_matches_the_brute_force_optimum(
    problem: tuple[Side, int, list[VenueBook], int | None],
) -> None:
    side, qty, books, limit = problem
    plan = route(side, qty, books, limit)
    assert (plan.unrouted_lots, plan.cost_units_e8) == brute_force(side, qty, books, limit)
    by_name = {b.terms.name: b for b in books}
    for allocation in plan.allocations:
        venue = by_name[allocation.venue]
        assert feasible(side, venue, allocation.qty_lots, limit)
        assert allocation.cost_units_e8 == walk_cost(side, venue, allocation.qty_lots)
    assert sum(a.qty_lots for a in plan.allocations) + plan.unrouted_lots == qty
