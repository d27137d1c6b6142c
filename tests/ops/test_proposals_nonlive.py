"""Proposals of parameters the venue cannot change live on its own, on the real admin app.

Brackets, funding settings and filters go proposal -> dry run (scenarios and the venue's state
now) -> approval -> apply; right after the apply, leverageBracket, exchangeInfo, the console's
market view (``GET /admin/v1/markets/SYMBOL/params``) and the metrics show the new values.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from perpx.engine.config import DEFAULT_CONFIG_TOML

from ..server.harness import ADMIN_TOKEN, Trader
from ..server.inprocess import ADMIN_BASE, InProcessVenue, in_process_venue
from ..server.test_metrics import scrape, value

BTC = "BTCUSDT"
LOW_BRACKETS = [
    {"notional_cap": "50000", "max_leverage": 50, "mmr": "0.01"},
    {"notional_cap": "20000000", "max_leverage": 20, "mmr": "0.025"},
]


@pytest.fixture
def venue(tmp_path: Path) -> Iterator[InProcessVenue]:
    with in_process_venue(tmp_path / "venue") as started:
        started.mark(BTC, "30000")
        yield started


def call(venue: InProcessVenue, operator: str, method: str, path: str, body: Any = None) -> httpx.Response:
    headers = {"X-PERPX-ADMIN": ADMIN_TOKEN, "X-PERPX-OPERATOR": operator}
    answer: httpx.Response = venue.client.request(
        method, f"{ADMIN_BASE}/admin/v1{path}", json=body, headers=headers
    )
    return answer


def staged(venue: InProcessVenue, params: dict[str, Any], cancel: bool = False) -> int:
    """A proposal by alice with a dry run on mark_walk; its id."""
    body = {"symbol": BTC, "params": params, "reason": "tighter risk", "cancelOffGrid": cancel}
    answer = call(venue, "alice", "POST", "/proposals", body)
    assert answer.status_code == 200, answer.text
    pid: int = answer.json()["id"]
    ran = call(venue, "alice", "POST", f"/proposals/{pid}/dry-run", {"scenarios": ["mark_walk"]})
    assert ran.status_code == 200, ran.text
    return pid


def order(venue: InProcessVenue, trader: Trader, side: str, qty: str, price: str) -> None:
    venue.ok("POST", "/fapi/v1/order", trader,
             {"symbol": BTC, "side": side, "type": "LIMIT", "quantity": qty, "price": price,
              "timeInForce": "GTC"})  # fmt: skip


def test_a_bracket_and_funding_change_is_applied_and_shown_everywhere_at_once(venue: InProcessVenue) -> None:
    # Arrange
    trader = venue.trader("t")
    pid = staged(venue, {"brackets": LOW_BRACKETS, "funding_interval_hours": "4", "min_notional": "50"})
    dry = call(venue, "ops", "GET", f"/proposals/{pid}").json()["dry_run"]
    assert call(venue, "bob", "POST", f"/proposals/{pid}/approve").status_code == 200

    # Act
    applied = call(venue, "carol", "POST", f"/proposals/{pid}/apply")

    # Assert: the dry run compared both and found nothing the venue would refuse
    assert json.loads(dry["current"]["brackets"])[0]["max_leverage"] == 125
    assert json.loads(dry["proposed"]["brackets"]) == LOW_BRACKETS
    assert dry["results"]["mark_walk"]["applicable"] is True
    assert dry["venue"]["refused"] is None and dry["venue"]["accountsUnderMaintenance"] == 0
    assert applied.status_code == 200, applied.text
    brackets = venue.ok("GET", "/fapi/v1/leverageBracket", trader, {"symbol": BTC})["brackets"]
    assert [(b["initialLeverage"], b["maintMarginRatio"]) for b in brackets] == [(50, 0.01), (20, 0.025)]
    info = venue.client.get("/fapi/v1/exchangeInfo").json()
    filters = next(s for s in info["symbols"] if s["symbol"] == BTC)["filters"]
    assert next(f for f in filters if f["filterType"] == "MIN_NOTIONAL")["notional"] == "50"
    view = call(venue, "ops", "GET", f"/markets/{BTC}/params").json()
    assert set(view["changed"]) == {"brackets", "funding_interval_hours", "min_notional"}
    assert json.loads(view["params"]["brackets"]) == LOW_BRACKETS
    _names, samples = scrape(venue)
    assert value(samples, "perpx_max_leverage", symbol=BTC) == 50
    assert value(samples, "perpx_max_leverage", symbol="ETHUSDT") == 100
    audit = call(venue, "ops", "GET", f"/audit?symbol={BTC}").json()
    assert {r["param"] for r in audit if r["kind"] == "param"} == set(view["changed"])


def test_brackets_that_would_liquidate_an_account_are_refused_by_the_dry_run_and_cannot_be_approved(
    venue: InProcessVenue,
) -> None:
    # Arrange: two accounts hold 1 BTC each at 100x on 320 USDT
    buyer, seller = venue.trader("buyer", "320"), venue.trader("seller", "320")
    for trader in (buyer, seller):
        venue.ok("POST", "/fapi/v1/leverage", trader, {"symbol": BTC, "leverage": 100})
    order(venue, seller, "SELL", "1", "30000")
    order(venue, buyer, "BUY", "1", "30000")
    harsh = [{"notional_cap": "20000000", "max_leverage": 20, "mmr": "0.025"}]

    # Act
    pid = staged(venue, {"brackets": harsh})
    approve = call(venue, "bob", "POST", f"/proposals/{pid}/approve")

    # Assert
    checked = call(venue, "ops", "GET", f"/proposals/{pid}").json()["dry_run"]["venue"]
    assert checked["refused"]["code"] == -9408 and checked["accountsUnderMaintenance"] == 2
    assert checked["leverageClamped"] == 2
    assert (approve.status_code, approve.json()["code"]) == (409, -9408)
    assert "would put 2 account(s)" in approve.json()["msg"]
    assert (
        json.loads(call(venue, "ops", "GET", f"/markets/{BTC}/params").json()["params"]["brackets"])[0][
            "max_leverage"
        ]
        == 125
    )


def test_cancel_off_grid_proposal_cancels_the_orders_the_new_filters_refuse(venue: InProcessVenue) -> None:
    # Arrange: one resting bid of 150 USDT, under the proposed 500
    trader = venue.trader("t")
    order(venue, trader, "BUY", "0.005", "30000")
    refused = staged(venue, {"min_notional": "500"})
    pid = staged(venue, {"min_notional": "500"}, cancel=True)
    assert call(venue, "bob", "POST", f"/proposals/{pid}/approve").status_code == 200

    # Act
    applied = call(venue, "carol", "POST", f"/proposals/{pid}/apply")

    # Assert
    first = call(venue, "ops", "GET", f"/proposals/{refused}").json()["dry_run"]["venue"]
    assert first["refused"]["code"] == -9407 and first["ordersOffFilter"] == 1
    assert applied.status_code == 200, applied.text
    assert venue.ok("GET", "/fapi/v1/openOrders", trader, {"symbol": BTC}) == []


PRICED_CONFIG = (
    DEFAULT_CONFIG_TOML
    + """
[markets.BTCUSDT.index]
sources = { binance = 3, okx = 2, bybit = 2 }
min_sources = 2
stale_after_s = 3600
"""
)


def test_index_sources_and_funding_change_shows_in_funding_info_the_risk_view_and_metrics(
    tmp_path: Path,
) -> None:
    with in_process_venue(tmp_path / "venue", PRICED_CONFIG) as venue:
        # Arrange: three fresh quotes; kraken joins, bybit leaves, funding every 4 hours
        for source, price in (("binance", "30000"), ("okx", "30010"), ("bybit", "30005")):
            quoted = call(venue, "ops", "POST", "/prices", {"symbol": BTC, "source": source, "price": price})
            assert quoted.status_code == 200, quoted.text
        index = {"sources": {"binance": 3, "okx": 2, "kraken": 1}, "min_sources": 2, "stale_after_s": 3600}
        pid = staged(venue, {"index": index, "funding_interval_hours": "4", "funding_cap": "0.01"})
        checked = call(venue, "ops", "GET", f"/proposals/{pid}").json()["dry_run"]["venue"]
        assert call(venue, "bob", "POST", f"/proposals/{pid}/approve").status_code == 200

        # Act
        applied = call(venue, "carol", "POST", f"/proposals/{pid}/apply")
        kraken = call(venue, "ops", "POST", "/prices", {"symbol": BTC, "source": "kraken", "price": "30002"})
        bybit = call(venue, "ops", "POST", "/prices", {"symbol": BTC, "source": "bybit", "price": "30001"})

        # Assert
        assert checked["refused"] is None and checked["freshIndexSources"] == 2
        assert applied.status_code == 200, applied.text
        assert kraken.status_code == 200 and (bybit.status_code, bybit.json()["code"]) == (400, -9101)
        info = venue.client.get("/fapi/v1/fundingInfo").json()
        assert [(r["symbol"], r["fundingIntervalHours"], r["adjustedFundingRateCap"]) for r in info] == [
            (BTC, 4, "0.01000000")
        ]
        risk = call(venue, "ops", "GET", "/risk?limit=0").json()
        market = next(m for m in risk["markets"] if m["symbol"] == BTC)
        assert [s["source"] for s in market["sources"]] == ["binance", "kraken", "okx"]
        _names, samples = scrape(venue)
        assert value(samples, "perpx_funding_interval_hours", symbol=BTC) == 4
        assert value(samples, "perpx_funding_cap", symbol=BTC) == 0.01
        assert ("perpx_index_source_age_seconds", (("source", "bybit"), ("symbol", BTC))) not in samples
