"""A tick and lot size change through a proposal, on the real app: REST orders and exchangeInfo after it.

The proposal's dry run counts the resting orders off the new grid, the apply cancels them
(``cancelOffGrid``), exchangeInfo publishes the new filters at once, an order on the new tick is
accepted over REST and one on the old tick is refused with Binance's ``-4014``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..server.harness import Trader
from ..server.inprocess import InProcessVenue, in_process_venue
from .test_proposals_nonlive import BTC, call, staged


@pytest.fixture
def venue(tmp_path: Path) -> Iterator[InProcessVenue]:
    with in_process_venue(tmp_path / "venue") as started:
        started.mark(BTC, "30000")
        yield started


def send(venue: InProcessVenue, trader: Trader, qty: str, price: str) -> httpx.Response:
    params = {
        "symbol": BTC,
        "side": "BUY",
        "type": "LIMIT",
        "quantity": qty,
        "price": price,
        "timeInForce": "GTC",
    }
    answer: httpx.Response = venue.signed("POST", "/fapi/v1/order", trader, params)
    return answer


def filters(venue: InProcessVenue) -> dict[str, dict[str, Any]]:
    info = venue.client.get("/fapi/v1/exchangeInfo").json()
    symbol = next(s for s in info["symbols"] if s["symbol"] == BTC)
    return {f["filterType"]: f for f in symbol["filters"]}


def test_a_tick_and_lot_change_applies_over_rest_and_exchange_info_publishes_it(
    venue: InProcessVenue,
) -> None:
    # Arrange: one bid off the new tick (30000.1), one on it (30000.0)
    trader = venue.trader("t")
    assert send(venue, trader, "0.01", "30000.1").status_code == 200
    assert send(venue, trader, "0.01", "30000.0").status_code == 200
    pid = staged(venue, {"tick_size": "0.5", "lot_size": "0.01"}, cancel=True)
    checked = call(venue, "ops", "GET", f"/proposals/{pid}").json()["dry_run"]["venue"]
    assert call(venue, "bob", "POST", f"/proposals/{pid}/approve").status_code == 200

    # Act
    applied = call(venue, "carol", "POST", f"/proposals/{pid}/apply")
    on_grid = send(venue, trader, "0.02", "30000.5")
    old_tick = send(venue, trader, "0.01", "30000.1")
    old_step = send(venue, trader, "0.015", "30000.5")

    # Assert
    assert checked["refused"] is None and checked["ordersOffFilter"] == 1
    assert applied.status_code == 200, applied.text
    published = filters(venue)
    assert published["PRICE_FILTER"]["tickSize"] == "0.5"
    assert published["LOT_SIZE"]["stepSize"] == published["MARKET_LOT_SIZE"]["stepSize"] == "0.010"
    assert on_grid.status_code == 200, on_grid.text
    assert (old_tick.status_code, old_tick.json()["code"]) == (400, -4014)
    assert "multiple of 0.5" in old_tick.json()["msg"]
    assert (old_step.status_code, old_step.json()["code"]) == (400, -4023)
    resting = venue.ok("GET", "/fapi/v1/openOrders", trader, {"symbol": BTC})
    assert sorted(o["price"] for o in resting) == ["30000", "30000.5"]
    view = call(venue, "ops", "GET", f"/markets/{BTC}/params").json()
    assert view["changed"] == {"lot_size": "0.01", "tick_size": "0.5"}


def test_a_tick_off_the_price_unit_is_refused_at_proposal_time_with_its_code(venue: InProcessVenue) -> None:
    # Act
    answer = call(
        venue, "alice", "POST", "/proposals", {"symbol": BTC, "params": {"tick_size": "0.05"}, "reason": "r"}
    )

    # Assert
    assert (answer.status_code, answer.json()["code"]) == (400, -9411)
    assert "price_unit 0.1" in answer.json()["msg"]
    assert call(venue, "ops", "GET", "/proposals").json() == []
    assert filters(venue)["PRICE_FILTER"]["tickSize"] == "0.1"
