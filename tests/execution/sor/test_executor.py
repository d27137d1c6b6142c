"""The executor on in-memory venues: re-routing after a failure, children in doubt, caps across rounds."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from perpx.engine.values import Side
from perpx.execution.sor import Grid, Level, VenueTerms
from perpx.execution.sor.ccxt_venue import CcxtRoutingVenue
from perpx.execution.sor.executor import Taken, VenueFailed, execute

BUY = Side.BUY


@dataclass
class BookVenue:
    """Asks that an IOC buy fills against; ``fail`` is raised by the next ``take`` (once)."""

    name: str
    asks: list[Level]
    fee_e8: int = 0
    max_qty_lots: int | None = None
    fail: VenueFailed | None = None
    fills_per_child: int | None = None
    sent: list[tuple[int, int, str]] = field(default_factory=list)

    @property
    def terms(self) -> VenueTerms:
        return VenueTerms(self.name, self.fee_e8, max_qty_lots=self.max_qty_lots)

    def book(self, side: Side, depth: int) -> tuple[Level, ...]:
        return tuple(self.asks[:depth])

    def take(self, side: Side, qty_lots: int, limit_price_ticks: int, client_order_id: str) -> Taken:
        self.sent.append((qty_lots, limit_price_ticks, client_order_id))
        if self.fail is not None:
            failure, self.fail = self.fail, None
            raise failure
        filled = notional = 0
        qty_lots = min(qty_lots, self.fills_per_child or qty_lots)
        while self.asks and filled < qty_lots and self.asks[0].price_ticks <= limit_price_ticks:
            level = self.asks.pop(0)
            take = min(level.qty_lots, qty_lots - filled)
            filled += take
            notional += take * level.price_ticks
            if take < level.qty_lots:
                self.asks.insert(0, Level(level.price_ticks, level.qty_lots - take))
        return Taken(filled, notional)


def test_a_venue_that_fails_mid_order_has_its_share_rerouted() -> None:
    # Arrange
    a = BookVenue("a", [Level(100, 3), Level(103, 10)])
    b = BookVenue("b", [Level(101, 3)], fail=VenueFailed("connection refused"))

    # Act
    report = execute(BUY, 6, [a, b], "p1")

    # Assert
    assert report.failed == {"b": "connection refused"}
    assert report.filled_by_venue() == {"a": 6, "b": 0}
    assert [c.client_order_id for c in report.children] == ["p1-c0", "p1-c1", "p1-c2"]
    assert (report.filled_lots, report.in_doubt_lots, report.remaining_lots) == (6, 0, 0)


def test_a_child_in_doubt_is_never_rerouted() -> None:
    # Arrange
    a = BookVenue("a", [Level(100, 2), Level(103, 10)])
    b = BookVenue("b", [Level(101, 3)], fail=VenueFailed("timeout; could not reconcile", 0, 3))

    # Act
    report = execute(BUY, 5, [a, b], "p2")

    # Assert
    assert report.filled_by_venue() == {"a": 2, "b": 0}
    assert (report.filled_lots, report.in_doubt_lots, report.remaining_lots) == (2, 3, 0)
    assert len(a.sent) == 1  # nothing more went to a: the 3 lots may have filled at b


def test_a_partly_known_failure_counts_what_filled() -> None:
    a = BookVenue("a", [Level(100, 9)])
    b = BookVenue("b", [Level(99, 4)], fail=VenueFailed("reset; reconciled by client id", 1, 0))

    report = execute(BUY, 4, [a, b], "p3")

    assert report.filled_by_venue() == {"b": 1, "a": 3}
    assert report.remaining_lots == 0


def test_a_quantity_cap_holds_across_rounds() -> None:
    # Arrange: a fills only 2 lots a child (its book is shown deeper than it is), capped at 4 in all
    a = BookVenue("a", [Level(100, 9)], max_qty_lots=4, fills_per_child=2)
    b = BookVenue("b", [Level(105, 5)])

    # Act
    report = execute(BUY, 10, [a, b], "p4")

    # Assert: round 1 sends a 4 (fills 2) and b 5; round 2 may send a only the 2 its cap has left
    assert [lots for lots, _, _ in a.sent] == [4, 2]
    assert report.filled_by_venue() == {"a": 4, "b": 5}
    assert report.remaining_lots == 1


def test_a_limit_price_leaves_the_rest_unrouted() -> None:
    a = BookVenue("a", [Level(100, 2), Level(120, 9)])

    report = execute(BUY, 5, [a], "p5", limit_price_ticks=110)

    assert (report.filled_lots, report.remaining_lots) == (2, 3)
    assert report.plans[-1].routed_lots == 0


def test_a_parent_without_a_client_algo_id_is_rejected() -> None:
    with pytest.raises(ValueError, match="client_algo_id is required"):
        execute(BUY, 1, [BookVenue("a", [Level(1, 1)])], "")


class FakeExchange:
    """A ccxt exchange object that returns one canned order book."""

    def __init__(self, book: dict[str, Any]) -> None:
        self.answer = book

    def fetch_order_book(self, symbol: str, limit: int) -> dict[str, Any]:
        return self.answer


@pytest.mark.parametrize(
    "book",
    [
        {"asks": [[0.0, 1.0]], "bids": []},
        {"asks": [["x", 1.0]], "bids": []},
        {"bids": []},
        {"asks": [[60000.0]], "bids": []},
    ],
)
def test_a_malformed_book_drops_the_venue_instead_of_crashing(book: dict[str, Any]) -> None:
    bad = CcxtRoutingVenue(
        FakeExchange(book), "BTC/USDT:USDT", Grid(Decimal("0.1"), Decimal("0.001")), VenueTerms("bad", 0)
    )
    good = BookVenue("good", [Level(100, 5)])

    report = execute(BUY, 3, [bad, good], "p6")

    assert "malformed order book" in report.failed["bad"]
    assert report.filled_by_venue() == {"good": 3}
