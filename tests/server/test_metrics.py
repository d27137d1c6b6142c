"""``GET /metrics`` on the admin listener: the fixed names, and each value as the REST API says it.

In process (the real apps and sequencer): two traders open a position, the marks move apart from
the index, and every engine gauge is compared with the public REST answer (premiumIndex,
openInterest) or the admin API (insurance fund); the command counters must move by exactly the
commands sent, with the right result.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from perpx.server.metrics import gap_bps

from .harness import PRICED_CONFIG, ServerProcess
from .inprocess import ADMIN_BASE, InProcessVenue, in_process_venue

BTC = "BTCUSDT"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]

FIXED_NAMES = (
    "perpx_engine_running",
    "perpx_journal_last_seq",
    "perpx_journal_commit_seconds",
    "perpx_read_model_lag_records",
    "perpx_commands",
    "perpx_order_ack_seconds",
    "perpx_index_price",
    "perpx_mark_price",
    "perpx_mark_index_gap_bps",
    "perpx_funding_rate",
    "perpx_open_interest",
    "perpx_open_interest_notional",
    "perpx_insurance_fund",
    "perpx_liquidations",
    "perpx_adl",
    "perpx_ws_connections",
    "perpx_rate_limited",
)


@pytest.fixture
def venue(tmp_path: Path) -> Iterator[InProcessVenue]:
    with in_process_venue(tmp_path / "venue") as started:
        yield started


def scrape(venue: InProcessVenue) -> tuple[set[str], Samples]:
    answer = venue.client.get(f"{ADMIN_BASE}/metrics", follow_redirects=False)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    families = list(text_string_to_metric_families(answer.text))
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for family in families for s in family.samples
    }
    return {family.name for family in families}, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def limit(side: str, qty: str, price: str, **extra: str) -> dict[str, str]:
    return {"symbol": BTC, "side": side, "type": "LIMIT", "quantity": qty, "price": price,
            "timeInForce": "GTC", **extra}  # fmt: skip


def test_metrics_agree_with_the_rest_api(venue: InProcessVenue) -> None:
    # Arrange: a position of 0.5 between two traders, the mark 30 above the index
    venue.mark(BTC, "30000")
    buyer, seller = venue.trader("buyer"), venue.trader("seller")
    venue.ok("POST", "/fapi/v1/order", seller, limit("SELL", "0.5", "30000"))
    venue.ok("POST", "/fapi/v1/order", buyer, limit("BUY", "0.5", "30000"))
    moved = venue.admin("POST", "/marks", {"symbol": BTC, "markPrice": "30030", "indexPrice": "30000"})
    assert moved.status_code == 200, moved.text

    # Act
    names, samples = scrape(venue)

    # Assert: every fixed name is exposed
    assert set(FIXED_NAMES) <= names, set(FIXED_NAMES) - names
    premium = venue.client.get("/fapi/v1/premiumIndex", params={"symbol": BTC}).json()
    mark, index = Decimal(premium["markPrice"]), Decimal(premium["indexPrice"])
    assert value(samples, "perpx_mark_price", symbol=BTC) == float(mark) == 30030
    assert value(samples, "perpx_index_price", symbol=BTC) == float(index) == 30000
    assert value(samples, "perpx_mark_index_gap_bps", symbol=BTC) == pytest.approx(10.0)
    assert value(samples, "perpx_mark_index_gap_bps", symbol=BTC) == float(gap_bps(mark, index))
    oi = Decimal(venue.client.get("/fapi/v1/openInterest", params={"symbol": BTC}).json()["openInterest"])
    assert value(samples, "perpx_open_interest", symbol=BTC) == float(oi) == 0.5
    assert value(samples, "perpx_open_interest_notional", symbol=BTC) == float(oi * mark)
    assert value(samples, "perpx_funding_rate", symbol=BTC) == float(premium["lastFundingRate"])
    fund = venue.admin("GET", "/insurance").json()
    assert value(samples, "perpx_insurance_fund", asset=fund["asset"]) == float(fund["equity"])
    state = venue.admin("GET", "/state").json()
    assert value(samples, "perpx_journal_last_seq") == state["lastSeq"]
    assert value(samples, "perpx_engine_running") == 1
    for model in ("readmodel", "marketdata", "adminlog"):
        assert value(samples, "perpx_read_model_lag_records", model=model) == 0
    assert value(samples, "perpx_order_ack_seconds_count", interface="rest") == 2
    assert value(samples, "perpx_journal_commit_seconds_count") >= 1
    assert value(samples, "perpx_ws_connections") == 0


def test_command_counters_move_by_exactly_the_commands_sent(venue: InProcessVenue) -> None:
    # Arrange
    venue.mark(BTC, "30000")
    trader = venue.trader("counted")
    _, before = scrape(venue)

    # Act: two accepted orders, one cancel, one order the engine refuses (reduce-only, no position)
    placed = venue.ok("POST", "/fapi/v1/order", trader, limit("BUY", "0.1", "29000"))
    venue.ok("POST", "/fapi/v1/order", trader, limit("BUY", "0.1", "28000"))
    venue.ok("DELETE", "/fapi/v1/order", trader, {"symbol": BTC, "orderId": placed["orderId"]})
    venue.refused("POST", "/fapi/v1/order", trader, limit("SELL", "0.1", "31000", reduceOnly="true"))
    _, after = scrape(venue)

    # Assert
    def moved(command: str, result: str) -> float:
        key = ("perpx_commands_total", (("result", result), ("type", command)))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert moved("PlaceOrder", "accepted") == 2
    assert moved("PlaceOrder", "rejected") == 1
    assert moved("CancelOrder", "accepted") == 1
    total = sum(v - before.get(k, 0.0) for k, v in after.items() if k[0] == "perpx_commands_total")
    assert total == 4
    seq_moved = value(after, "perpx_journal_last_seq") - value(before, "perpx_journal_last_seq")
    assert seq_moved == 4
    assert (
        value(after, "perpx_order_ack_seconds_count", interface="rest")
        - value(before, "perpx_order_ack_seconds_count", interface="rest")
        == 4
    )


def test_metrics_need_no_token_and_are_not_on_the_public_listener(venue: InProcessVenue) -> None:
    # Act
    admin = venue.client.get(f"{ADMIN_BASE}/metrics")
    public = venue.client.get("/metrics")

    # Assert
    assert admin.status_code == 200
    assert public.status_code == 404


def test_index_priced_venue_over_real_sockets_agrees_with_premium_index(tmp_path: Path) -> None:
    # Arrange: the demo venue's index-priced markets on a manual clock, BTCUSDT quoted by its sources
    config = PRICED_CONFIG.replace('clock = "wall"', 'clock = "manual"')
    server = ServerProcess(tmp_path / "data", config_text=config).start()
    try:
        for source in ("binance", "okx"):
            quoted = server.admin("POST", "/prices", {"symbol": BTC, "source": source, "price": "30000"})
            assert quoted.status_code == 200, quoted.text

        # Act
        text = httpx.get(f"{server.admin_base}/metrics", timeout=10).text
        premium = server.public("/fapi/v1/premiumIndex").json()
        fund = server.admin("GET", "/insurance").json()
    finally:
        server.stop()

    # Assert: every market's figures are premiumIndex's
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert value(samples, "perpx_index_price", symbol=BTC) == 30000
    for row in premium:
        symbol = row["symbol"]
        assert value(samples, "perpx_funding_rate", symbol=symbol) == float(row["lastFundingRate"])
        if row["markPrice"] != "0":
            assert value(samples, "perpx_mark_price", symbol=symbol) == float(row["markPrice"])
        if row["indexPrice"] != "0":
            assert value(samples, "perpx_index_price", symbol=symbol) == float(row["indexPrice"])
    assert value(samples, "perpx_insurance_fund", asset=fund["asset"]) == float(fund["equity"])
    assert value(samples, "perpx_engine_running") == 1


def test_liquidation_and_adl_counters_agree_with_the_liquidation_records(venue: InProcessVenue) -> None:
    # Arrange: a thin long (1,000 USDT behind 0.5 BTC at 30,000) against a rich short
    venue.mark(BTC, "30000")
    thin, rich = venue.trader("thin", deposit="1000"), venue.trader("rich")
    venue.ok("POST", "/fapi/v1/leverage", thin, {"symbol": BTC, "leverage": 20})
    venue.ok("POST", "/fapi/v1/order", rich, limit("SELL", "0.5", "30000"))
    venue.ok("POST", "/fapi/v1/order", thin, limit("BUY", "0.5", "30000"))
    _, before = scrape(venue)

    # Act: the mark falls past the long's bankruptcy price
    venue.mark(BTC, "27000")
    _, after = scrape(venue)

    # Assert
    records = venue.admin("GET", "/liquidations").json()["records"]
    assert records, "the mark move liquidated nobody"

    def moved(name: str) -> float:
        return sum(v - before.get(k, 0.0) for k, v in after.items() if k[0] == name)

    assert moved("perpx_liquidations_total") == len(records)
    for record in records:
        key = (
            "perpx_liquidations_total",
            (("kind", record["outcome"].lower()), ("symbol", record["symbol"])),
        )
        assert after[key] >= 1
    assert moved("perpx_adl_total") == sum(r["steps"].count("adl") for r in records)


def test_ws_connections_count_an_open_user_stream(venue: InProcessVenue) -> None:
    # Arrange
    trader = venue.trader("listener")
    answer = venue.client.post("/fapi/v1/listenKey", headers={"X-MBX-APIKEY": trader.api_key})
    assert answer.status_code == 200, answer.text
    _, before = scrape(venue)

    # Act
    with venue.client.websocket_connect(f"/private/ws?listenKey={answer.json()['listenKey']}"):
        _, during = scrape(venue)

    # Assert
    assert value(before, "perpx_ws_connections") == 0
    assert value(during, "perpx_ws_connections") == 1


def test_rate_limited_counts_each_refusal_by_kind(venue: InProcessVenue) -> None:
    # Arrange: at most 2 new orders in 10 s
    limiter = venue.ctx.components.limits
    limiter.limits = dataclasses.replace(limiter.limits, orders_10s=2)
    venue.mark(BTC, "30000")
    trader = venue.trader("hasty")
    _, before = scrape(venue)

    # Act
    for price in ("29000", "29001"):
        venue.ok("POST", "/fapi/v1/order", trader, limit("BUY", "0.1", price))
    status, code, _ = venue.refused("POST", "/fapi/v1/order", trader, limit("BUY", "0.1", "29002"))
    _, after = scrape(venue)

    # Assert
    assert (status, code) == (429, -1015)

    def moved(kind: str) -> float:
        return value(after, "perpx_rate_limited_total", kind=kind) - value(
            before, "perpx_rate_limited_total", kind=kind
        )

    assert (moved("orders"), moved("weight"), moved("banned")) == (1, 0, 0)
