"""Routing one parent across two real perpx servers (child processes) with different books and fees.

Venue ``cheap-fee`` charges takers 1 bp, ``dear-fee`` 5 bp; each has a market maker resting asks. The
split is checked against the brute-force optimum over the books the router saw, and against the
trades each server actually reports.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from perpx.engine.values import Side
from perpx.execution.sor import Grid, Level, VenueBook, VenueTerms
from perpx.execution.sor.ccxt_venue import CcxtRoutingVenue
from perpx.execution.sor.executor import Taken, execute

from ...server.harness import MANUAL_CONFIG, ServerProcess
from .test_router import brute_force

SYMBOL = "BTC/USDT:USDT"
GRID = Grid(Decimal("0.1"), Decimal("0.001"))
ASKS = {
    "dear-fee": [("60000", "0.010"), ("60010", "0.020"), ("60030", "0.050")],
    "cheap-fee": [("60020", "0.010"), ("60025", "0.030"), ("60060", "0.050")],
}
TAKER = {"dear-fee": "0.0005", "cheap-fee": "0.0001"}


def start(tmp: Path, name: str) -> ServerProcess:
    config = MANUAL_CONFIG.replace('taker = "0.0005"', f'taker = "{TAKER[name]}"', 1)
    server = ServerProcess(tmp / name, config_text=config).start()
    marked = server.admin(
        "POST", "/marks", {"symbol": "BTCUSDT", "markPrice": "60000", "indexPrice": "60000"}
    )
    assert marked.status_code == 200, marked.text
    maker = server.ccxt(server.trader("maker", deposit="1000000"))
    for price, qty in ASKS[name]:
        maker.create_order(SYMBOL, "limit", "sell", float(qty), float(price))
    return server


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[dict[str, ServerProcess]]:
    started: dict[str, ServerProcess] = {}
    try:
        for name in ASKS:
            started[name] = start(tmp_path, name)
        yield started
    finally:
        for server in started.values():
            server.stop()


def venues(servers: dict[str, ServerProcess]) -> tuple[list[CcxtRoutingVenue], dict[str, Any]]:
    routed: list[CcxtRoutingVenue] = []
    clients: dict[str, Any] = {}
    for name, server in servers.items():
        client = server.ccxt(server.trader("desk"))
        client.load_markets()
        clients[name] = client
        routed.append(CcxtRoutingVenue(client, SYMBOL, GRID, VenueTerms(name, GRID.fee_e8(TAKER[name]))))
    return routed, clients


def traded_lots(client: Any) -> int:
    return sum(GRID.qty_lots(Decimal(repr(t["amount"]))) for t in client.fetch_my_trades(SYMBOL))


def test_a_buy_is_split_at_the_brute_force_optimum_and_filled_as_planned(
    servers: dict[str, ServerProcess],
) -> None:
    # Arrange
    routed, clients = venues(servers)
    shown = [VenueBook(v.terms, v.book(Side.BUY, 50)) for v in routed]

    # Act
    report = execute(Side.BUY, 60, routed, "sor-e2e-1")

    # Assert: the first plan is the optimum of the books the router saw, and each server filled its share
    plan = report.plans[0]
    assert (plan.unrouted_lots, plan.cost_units_e8) == brute_force(Side.BUY, 60, shown, None)
    assert {a.venue: a.qty_lots for a in plan.allocations} == {"dear-fee": 20, "cheap-fee": 40}
    assert report.filled_by_venue() == {"dear-fee": 20, "cheap-fee": 40}
    assert {name: traded_lots(client) for name, client in clients.items()} == {
        "dear-fee": 20,
        "cheap-fee": 40,
    }
    assert (report.remaining_lots, report.in_doubt_lots, len(report.plans)) == (0, 0, 1)


class DiesBeforeItsChild:
    """A routing venue whose server is stopped after the plan and before its child is sent."""

    def __init__(self, venue: CcxtRoutingVenue, server: ServerProcess) -> None:
        self.venue = venue
        self.server = server

    @property
    def terms(self) -> VenueTerms:
        return self.venue.terms

    def book(self, side: Side, depth: int) -> tuple[Level, ...]:
        return self.venue.book(side, depth)

    def take(self, side: Side, qty_lots: int, limit_price_ticks: int, client_order_id: str) -> Taken:
        self.server.stop()
        return self.venue.take(side, qty_lots, limit_price_ticks, client_order_id)


def test_a_venue_that_dies_mid_order_has_its_share_rerouted(servers: dict[str, ServerProcess]) -> None:
    # Arrange: cheap-fee is listed first, so its child goes out first and finds its server gone
    routed, clients = venues(servers)
    by_name = {v.terms.name: v for v in routed}
    dying = DiesBeforeItsChild(by_name["cheap-fee"], servers["cheap-fee"])

    # Act
    report = execute(Side.BUY, 60, [dying, by_name["dear-fee"]], "sor-e2e-2")

    # Assert: its 40 lots went to dear-fee in round 2, which then had 80 lots of asks in all
    assert set(report.failed) == {"cheap-fee"} and "never sent" in report.failed["cheap-fee"]
    assert report.filled_by_venue() == {"cheap-fee": 0, "dear-fee": 60}
    assert [(c.round_no, c.venue, c.filled_lots) for c in report.children] == [
        (1, "cheap-fee", 0),
        (1, "dear-fee", 20),
        (2, "dear-fee", 40),
    ]
    assert traded_lots(clients["dear-fee"]) == 60
    assert report.remaining_lots == 0
