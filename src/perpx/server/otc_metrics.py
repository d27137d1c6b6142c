"""The desk's KPIs on the admin listener's ``GET /metrics``: a collector over the desk's store.

Read at each scrape, on the event loop (where the routes write the store), so a scrape always
agrees with ``GET /perpx/v1/rfq/{quoteId}``. Names (all gauges, as the report's ``desk.prom``):

* ``perpx_otc_rfqs``: requests received, quoted or refused;
* ``perpx_otc_quotes{state}``: quotes by state (QUOTED, FILLED, EXPIRED, LAST_LOOK_REJECTED, REJECTED);
* ``perpx_otc_hit_ratio``: filled / quoted; ``perpx_otc_last_look_rate``: last-look rejections / accepts;
* ``perpx_otc_rejection_rate``: accepts not booked / accepts;
* ``perpx_otc_quote_to_trade_latency_ms``: median, venue time, of the booked quotes;
* ``perpx_otc_hedges``: hedges started;
* when the desk is the venue's lender, the loan book (``perpx.otc.lender.book_figures``, taken on the
  journal thread after each batch that touched a loan or an asset price): ``perpx_otc_loan_open``,
  ``perpx_otc_loan_book_size``, ``perpx_otc_loan_utilisation``, ``perpx_otc_loan_average_ltv``,
  ``perpx_otc_interest_income``, ``perpx_otc_loan_bad_debt``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from statistics import median

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from perpx.engine.engine import Engine
from perpx.engine.events import (
    AssetIndexUpdated,
    LoanBorrowed,
    LoanCollateralAdjusted,
    LoanInterestAccrued,
    LoanLiquidated,
    LoanRepaid,
)
from perpx.engine.values import AccountId
from perpx.otc.lender import BookFigures, book_figures
from perpx.otc.store import FILLED, LAST_LOOK_REJECTED, OtcStore, QuoteRecord
from perpx.sequencing import Applied

STATES = ("QUOTED", "FILLED", "EXPIRED", "LAST_LOOK_REJECTED", "REJECTED")


LOAN_EVENTS = (
    LoanBorrowed,
    LoanRepaid,
    LoanLiquidated,
    LoanInterestAccrued,
    LoanCollateralAdjusted,
    AssetIndexUpdated,
)
"""Events after which the loan book's figures are taken again."""


class DeskCollector(Collector):
    """Prometheus collector of the desk's store and loan book (module docstring)."""

    def __init__(self, store: OtcStore) -> None:
        self.store = store
        self.book: BookFigures | None = None
        """The loan book's figures as last taken (``None``: the desk is not the lender, or no loan yet)."""

    def follow_book(self, engine: Engine, desk: AccountId) -> Callable[[list[Applied]], None]:
        """A sequencer listener that retakes the loan book's figures after a batch that touched it."""
        self.book = book_figures(engine, desk)

        def listener(batch: list[Applied]) -> None:
            if any(isinstance(e, LOAN_EVENTS) for applied in batch for e in applied.events):
                self.book = book_figures(engine, desk)

        return listener

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
        book = self.book
        if book is None:
            return
        for name, text, amount in (
            ("perpx_otc_loan_open", "Open loans of the desk's book.", book.open_loans),
            ("perpx_otc_loan_book_size", "Open loans' debt at the index, settlement asset.", book.book_size),
            ("perpx_otc_loan_utilisation", "Borrowed / (borrowed + lender's available).", book.utilisation),
            (
                "perpx_otc_interest_income",
                "Interest earned (repaid and owed), settlement asset.",
                book.interest_income,
            ),
            ("perpx_otc_loan_bad_debt", "Debt written off, settlement asset.", book.bad_debt),
        ):
            yield GaugeMetricFamily(name, text, value=float(amount))
        if book.average_ltv is not None:
            yield GaugeMetricFamily(
                "perpx_otc_loan_average_ltv",
                "Debt-weighted LTV of the open loans.",
                value=float(book.average_ltv),
            )
