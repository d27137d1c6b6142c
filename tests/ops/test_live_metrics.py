"""The operations metrics on a running venue, each against what the REST API says.

In process (the real apps and sequencer, :mod:`tests.server.inprocess`): index sources and their
quorum on an index-priced venue with a manual clock, accounts near liquidation against the
account's own margin figures, the invariant monitor, WebSocket disconnects, anomaly scores.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from ..server.harness import PRICED_CONFIG, ServerProcess
from ..server.inprocess import InProcessVenue, in_process_venue
from ..server.test_metrics import BTC, limit, scrape, value

MANUAL_PRICED = PRICED_CONFIG.replace('clock = "wall"', 'clock = "manual"')


@pytest.fixture
def venue(tmp_path: Path) -> Iterator[InProcessVenue]:
    with in_process_venue(tmp_path / "venue") as started:
        yield started


@pytest.fixture
def priced(tmp_path: Path) -> Iterator[InProcessVenue]:
    with in_process_venue(tmp_path / "priced", MANUAL_PRICED) as started:
        yield started


def quote(venue: InProcessVenue, source: str, price: str = "30000") -> dict[str, object]:
    answer = venue.admin("POST", "/prices", {"symbol": BTC, "source": source, "price": price})
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


def advance(venue: InProcessVenue, ms: int) -> None:
    answer = venue.admin("POST", "/clock", {"advanceMs": ms})
    assert answer.status_code == 200, answer.text


def test_index_source_ages_and_quorum_follow_the_venue_clock(priced: InProcessVenue) -> None:
    # Arrange: two of BTCUSDT's three sources quote (quorum 2, stale after 10 s)
    quote(priced, "binance")
    quote(priced, "okx")

    # Act
    advance(priced, 4_000)
    _, fresh = scrape(priced)
    advance(priced, 7_000)  # 11 s: both quotes are stale
    answer = quote(priced, "bybit")
    _, stale = scrape(priced)

    # Assert: ages in venue seconds, a source that never quoted has no age
    assert value(fresh, "perpx_index_source_age_seconds", symbol=BTC, source="binance") == 4.0
    assert value(fresh, "perpx_index_source_age_seconds", symbol=BTC, source="okx") == 4.0
    assert ("perpx_index_source_age_seconds", (("source", "bybit"), ("symbol", BTC))) not in fresh
    assert value(fresh, "perpx_index_sources_live", symbol=BTC) == 2
    assert value(fresh, "perpx_index_sources_min", symbol=BTC) == 2
    # below quorum exactly when the admin API says the index is stale
    assert value(stale, "perpx_index_sources_live", symbol=BTC) == 1
    assert value(stale, "perpx_index_source_age_seconds", symbol=BTC, source="binance") == 11.0
    assert value(stale, "perpx_index_source_age_seconds", symbol=BTC, source="bybit") == 0.0
    assert answer["indexStale"] is True


def test_accounts_near_liquidation_agree_with_the_account_margin_ratio(venue: InProcessVenue) -> None:
    # Arrange: a thin long (1,000 USDT behind 0.5 BTC at 30,000 on 20x) against a rich short
    venue.mark(BTC, "30000")
    thin, rich = venue.trader("thin", deposit="1000"), venue.trader("rich")
    venue.ok("POST", "/fapi/v1/leverage", thin, {"symbol": BTC, "leverage": 20})
    venue.ok("POST", "/fapi/v1/order", rich, limit("SELL", "0.5", "30000"))
    venue.ok("POST", "/fapi/v1/order", thin, limit("BUY", "0.5", "30000"))
    seen: dict[str, tuple[Decimal, float]] = {}

    # Act: the mark falls toward the long's liquidation price
    for mark in ("29000", "28160", "28150"):
        venue.mark(BTC, mark)
        account = venue.ok("GET", "/fapi/v2/account", thin)
        ratio = Decimal(account["totalMaintMargin"]) / Decimal(account["totalMarginBalance"])
        _, samples = scrape(venue)
        seen[mark] = (ratio, value(samples, "perpx_accounts_near_liquidation", symbol=BTC))

    # Assert: counted exactly when the REST margin ratio is at or over 80% (the short is healthy)
    for mark, (ratio, near) in seen.items():
        assert near == (1 if ratio >= Decimal("0.8") else 0), (mark, ratio, near)
    assert seen["28160"][1] == 0
    assert seen["28150"][1] == 1


def test_invariant_monitor_checks_the_live_venue_from_the_start(venue: InProcessVenue) -> None:
    # Act
    _, samples = scrape(venue)

    # Assert: the first check ran when the venue started, and found nothing broken
    assert value(samples, "perpx_invariant_checks_total") >= 1
    assert value(samples, "perpx_invariant_violations_total") == 0
    last = venue.ctx.components.metrics.monitor.last
    assert last is not None and last.problems == ()


def test_invariant_violation_is_counted_and_names_the_rule(venue: InProcessVenue) -> None:
    # Arrange: corrupt the ledger behind the engine's back (a bug the checks exist to catch)
    monitor = venue.ctx.components.metrics.monitor
    engine = venue.ctx.seq.engine
    engine.deposits_atoms[engine.asset] = engine.deposits_atoms.get(engine.asset, 0) + 1
    _, before = scrape(venue)

    # Act
    result = venue.client.portal.call(monitor.check_once)  # type: ignore[union-attr]
    _, after = scrape(venue)

    # Assert
    assert any(problem.startswith("conservation of") for problem in result.problems)
    moved = value(after, "perpx_invariant_violations_total") - value(
        before, "perpx_invariant_violations_total"
    )
    assert moved >= len(result.problems) >= 1
    engine.deposits_atoms[engine.asset] -= 1


def test_ws_disconnects_count_a_closed_user_stream(venue: InProcessVenue) -> None:
    # Arrange
    trader = venue.trader("listener")
    answer = venue.client.post("/fapi/v1/listenKey", headers={"X-MBX-APIKEY": trader.api_key})
    assert answer.status_code == 200, answer.text
    _, before = scrape(venue)

    # Act
    with venue.client.websocket_connect(f"/private/ws?listenKey={answer.json()['listenKey']}"):
        scrape(venue)
    _, after = scrape(venue)

    # Assert
    def moved(reason: str) -> float:
        return value(after, "perpx_ws_disconnects_total", reason=reason) - value(
            before, "perpx_ws_disconnects_total", reason=reason
        )

    assert (moved("closed"), moved("slow")) == (1, 0)
    assert value(after, "perpx_ws_connections") == 0


def test_ws_disconnects_count_every_ended_connection_and_public_metrics_match_the_admin_port(
    tmp_path: Path,
) -> None:
    # Arrange: a real server (sockets closed by the client, as in production), scraped on its public
    # port (--public-metrics) and on the admin one
    server = ServerProcess(tmp_path / "data", extra_args=("--public-metrics",)).start()
    try:
        trader = server.trader("listener")
        keys = [
            httpx.post(
                f"{server.base}/fapi/v1/listenKey", headers={"X-MBX-APIKEY": trader.api_key}, timeout=10
            ).json()["listenKey"]
            for _ in range(2)
        ]
        before = scrape_text(httpx.get(f"{server.admin_base}/metrics", timeout=10).text)

        # Act: three market streams and two user streams open and close with no scrape in between
        for path in ("/ws/btcusdt@trade", "/stream?streams=btcusdt@depth", "/ws"):
            with connect(f"ws://127.0.0.1:{server.port}{path}", open_timeout=30) as ws:
                ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 1}))
                assert json.loads(ws.recv(timeout=10))["id"] == 1
        for key in keys:
            with connect(f"ws://127.0.0.1:{server.port}/private/ws?listenKey={key}", open_timeout=30):
                pass
        deadline = time.monotonic() + 10
        while True:
            after = scrape_text(httpx.get(f"{server.admin_base}/metrics", timeout=10).text)
            if value(after, "perpx_ws_connections") == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        public = httpx.get(f"{server.base}/metrics", timeout=10)
    finally:
        server.stop()

    # Assert
    def moved(reason: str) -> float:
        return value(after, "perpx_ws_disconnects_total", reason=reason) - value(
            before, "perpx_ws_disconnects_total", reason=reason
        )

    assert (moved("closed"), moved("slow")) == (5, 0)
    assert value(after, "perpx_ws_connections") == 0
    assert public.status_code == 200 and public.headers["content-type"].startswith("text/plain")
    figures = scrape_text(public.text)
    assert value(figures, "perpx_engine_running") == 1
    assert value(figures, "perpx_journal_last_seq") == value(after, "perpx_journal_last_seq") > 0


def scrape_text(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    families = text_string_to_metric_families(text)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for family in families for s in family.samples}


def test_anomaly_scores_are_exported_for_each_key_series(venue: InProcessVenue) -> None:
    # Arrange
    venue.mark(BTC, "30000")

    # Act
    scrape(venue)
    _, samples = scrape(venue)

    # Assert: warming up, every series scores 0
    for metric in ("commands", "liquidations", f"mark_index_gap_bps:{BTC}"):
        assert value(samples, "perpx_anomaly_score", metric=metric) == 0


def test_the_public_port_serves_no_metrics_unless_asked(venue: InProcessVenue) -> None:
    # Act
    answer = venue.client.get("/metrics")

    # Assert
    assert answer.status_code == 404
    assert "perpx_engine_running" not in answer.text
