"""The desk's KPIs on the admin listener's ``GET /metrics``: a collector over the desk's store.

Read at each scrape, on the event loop (where the routes write the store), so a scrape always
agrees with ``GET /perpx/v1/rfq/{quoteId}``. Names (all gauges, as the report's ``desk.prom``):

* ``perpx_otc_rfqs``: requests received, quoted or refused;
* ``perpx_otc_quotes{state}``: quotes by state (QUOTED, FILLED, EXPIRED, LAST_LOOK_REJECTED, REJECTED);
* ``perpx_otc_hit_ratio``: filled / quoted; ``perpx_otc_last_look_rate``: last-look rejections / accepts;
* ``perpx_otc_rejection_rate``: accepts not booked / accepts;
* ``perpx_otc_quote_to_trade_latency_ms``: median, venue time, of the booked quotes;
* ``perpx_otc_hedges``: hedges started.
"""

from __future__ import annotations

from collections.abc import Iterator
from statistics import median

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from perpx.otc.store import FILLED, LAST_LOOK_REJECTED, OtcStore, QuoteRecord

STATES = ("QUOTED", "FILLED", "EXPIRED", "LAST_LOOK_REJECTED", "REJECTED")


class DeskCollector(Collector):
    """Prometheus collector of the desk's store (module docstring)."""

    def __init__(self, store: OtcStore) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        quotes: list[QuoteRecord] = self.store.quotes()
        refused = len(self.store.refused())
        yield GaugeMetricFamily(
            "perpx_otc_rfqs", "RFQs received, quoted or refused.", value=len(quotes) + refused
        )
        by_state = GaugeMetricFamily("perpx_otc_quotes", "Quotes by state.", labels=["state"])
        for state in STATES:
            by_state.add_metric([state], sum(1 for q in quotes if q.state == state))
        yield by_state
        filled = [q for q in quotes if q.state == FILLED]
        accepts = [q for q in quotes if q.accept_ns is not None]
        yield GaugeMetricFamily(
            "perpx_otc_hit_ratio",
            "Booked quotes / quotes given.",
            value=len(filled) / len(quotes) if quotes else 0.0,
        )
        yield GaugeMetricFamily(
            "perpx_otc_last_look_rate",
            "Accepts rejected by last look / accepts.",
            value=sum(1 for q in accepts if q.state == LAST_LOOK_REJECTED) / len(accepts) if accepts else 0.0,
        )
        yield GaugeMetricFamily(
            "perpx_otc_rejection_rate",
            "Accepts not booked / accepts.",
            value=sum(1 for q in accepts if q.state != FILLED) / len(accepts) if accepts else 0.0,
        )
        latencies = [(q.accept_ns - q.created_ns) / 1e6 for q in filled if q.accept_ns is not None]
        yield GaugeMetricFamily(
            "perpx_otc_quote_to_trade_latency_ms",
            "Median quote-to-trade latency of booked quotes, venue ms.",
            value=median(latencies) if latencies else 0.0,
        )
        yield GaugeMetricFamily("perpx_otc_hedges", "Hedges started.", value=len(self.store.hedges()))
