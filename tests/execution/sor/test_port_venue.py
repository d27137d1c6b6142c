"""Routing on the ``Venue`` port: two in-process engines with different books and taker fees."""

from __future__ import annotations

import tomllib
from decimal import Decimal

import pytest

from perpx.engine.config import DEFAULT_CONFIG_TOML, parse_config
from perpx.engine.values import Side
from perpx.execution.inprocess import EngineVenue
from perpx.execution.sor import Grid, VenueBook
from perpx.execution.sor.executor import execute
from perpx.execution.sor.port_venue import PortRoutingVenue, terms_from_filters
from perpx.testkit import Venue

from .test_router import brute_force

GRID = Grid(Decimal("0.1"), Decimal("0.001"))


def engine(taker: str, asks: list[tuple[str, str]]) -> tuple[Venue, EngineVenue]:
    config = parse_config(
        tomllib.loads(DEFAULT_CONFIG_TOML.replace('taker = "0.0005"', f'taker = "{taker}"', 1))
    )
    tv = Venue(config=config)
    tv.account("mm", "10000000")
    desk = tv.account("desk", "10000000")
    tv.mark("BTCUSDT", "60000")
    for price, qty in asks:
        tv.place("mm", "BTCUSDT", "SELL", qty, price)
    return tv, EngineVenue(tv.sequencer, desk, lambda: tv.now_ns)


def test_a_buy_routed_over_two_engines_is_optimal_and_fills_as_planned() -> None:
    # Arrange
    dear_tv, dear = engine("0.0005", [("60000", "0.010"), ("60010", "0.020"), ("60030", "0.050")])
    cheap_tv, cheap = engine("0.0001", [("60020", "0.010"), ("60025", "0.030"), ("60060", "0.050")])
    venues = [
        PortRoutingVenue(dear, "BTCUSDT", GRID, terms_from_filters("dear", dear.filters("BTCUSDT"))),
        PortRoutingVenue(
            cheap, "BTCUSDT", GRID, terms_from_filters("cheap", cheap.filters("BTCUSDT"), max_qty_lots=30)
        ),
    ]
    shown = [VenueBook(v.terms, v.book(Side.BUY, 50)) for v in venues]

    # Act
    report = execute(Side.BUY, 60, venues, "port-1")

    # Assert: cheap is capped at 30 lots, so dear takes 30 (10 at 60,000, 20 at 60,010)
    assert (report.plans[0].unrouted_lots, report.plans[0].cost_units_e8) == brute_force(
        Side.BUY, 60, shown, None
    )
    assert report.filled_by_venue() == {"dear": 30, "cheap": 30}
    assert (dear_tv.position("desk", "BTCUSDT"), cheap_tv.position("desk", "BTCUSDT")) == (
        Decimal("0.03"),
        Decimal("0.03"),
    )
    assert terms_from_filters("x", dear.filters("BTCUSDT")).taker_fee_e8 == 50_000


def test_a_venue_off_the_grid_is_refused() -> None:
    _, venue = engine("0.0005", [])
    with pytest.raises(ValueError, match="must divide the grid's"):
        PortRoutingVenue(
            venue,
            "BTCUSDT",
            Grid(Decimal("0.05"), Decimal("0.001")),
            terms_from_filters("v", venue.filters("BTCUSDT")),
        )
