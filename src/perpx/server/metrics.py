"""Prometheus metrics: ``GET /metrics`` on the admin listener, and on the public one when asked (component ``metrics``).

The names are fixed (dashboards and the alert rules in ``deploy/prometheus/rules.yml`` rely on
them); ``docs/operations.md`` lists each with its unit. Three kinds of source:

* **Counters over applied batches** (:meth:`Metrics.on_applied`, a listener on the journal thread):
  ``perpx_commands_total{type,result}`` (``result`` from each command's own first event: a
  ``*Rejected`` event is ``rejected``, anything else ``accepted``), ``perpx_liquidations_total``
  ``{symbol,kind}`` (one per liquidation record; ``kind`` is its outcome) and ``perpx_adl_total{symbol}``
  (one per auto-deleveraging step). They count from the start of this process.
* **Timings** observed where they happen: ``perpx_journal_commit_seconds`` around each batch's
  journal commit on the sequencer path (write, fsync, apply, listeners: until its callers can be
  answered), ``perpx_order_ack_seconds{interface}`` around order entry (``rest``: ``POST`` and
  ``DELETE /fapi/v1/order``; ``ws``: the WebSocket API's ``order.place`` and ``order.cancel``;
  ``fix``: NewOrderSingle and OrderCancelRequest until the execution report is sent).
* **Gauges read at scrape time.** Everything that reads engine state is read by one sequencer query
  (:meth:`RequestSequencer.query`), between batches, like every other read of the engine; the
  WebSocket connection count and the rate-limit refusals are read on the loop, where they live. A
  stopped sequencer answers no query: the scrape then reports ``perpx_engine_running 0`` and the
  engine gauges keep their last values. Index source ages and quorum and the accounts near
  liquidation come from :mod:`perpx.ops.venue_risk` in the same query.
* **The invariant monitor** (:mod:`perpx.ops.invariant_monitor`), started with the venue:
  ``perpx_invariant_checks_total`` and ``perpx_invariant_violations_total`` (one per broken
  invariant per check), on a schedule that keeps the checks under 1% of a core.
* **Anomaly scores** (:mod:`perpx.ops.anomaly`), updated at each scrape from the figures just read:
  ``perpx_anomaly_score{metric}`` for ``commands`` (commands per second since the last scrape,
  seasonal by hour of venue time), ``liquidations`` (liquidation records since the last scrape) and
  ``mark_index_gap_bps:SYMBOL``. One sample per scrape: the scores assume a steady scrape interval.
* **WebSocket disconnects** ``perpx_ws_disconnects_total{reason}``, exact: ``slow`` counts the
  clients the market stream hub and the user data stream dropped as too slow, ``closed`` every other
  connection that ended (the WebSocket API's ``/ws-fapi/v1`` included) (the client left, the server stopped it, its listenKey expired), each
  counted once by the component that served it (a connection opened and closed between two scrapes
  included).

Units are Binance's REST units: prices in the quote asset, open interest in base units (contracts
of ``stepSize``), notional and the insurance fund in the settlement asset, rates as decimals.

Authentication
--------------
``/metrics`` is on the public listener too only with ``perpx serve --public-metrics``.
``/metrics`` needs no admin token, as ``/health`` and ``/ready``: Prometheus 2.42 (Debian 12)
cannot send the ``X-PERPX-ADMIN`` header, and the admin listener binds 127.0.0.1 unless
``--admin-host`` says otherwise. The figures are venue aggregates (no account, order or key). An
operator who binds the admin listener to another address exposes them to that network.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from perpx.engine.events import (
    AdlStep,
    CommandRejected,
    ConditionalOrderRejected,
    LiquidationExplained,
    OrderRejected,
    TransferRejected,
)
from perpx.engine.values import RATE_SCALE, format_units
from perpx.ops.anomaly import Ewma, HourlyEwma
from perpx.ops.invariant_monitor import InvariantMonitor
from perpx.ops.venue_risk import IndexSources, accounts_near_liquidation, index_sources
from perpx.server.errors import ApiError
from perpx.server.rest import ctx_of
from perpx.server.sequencer import Applied, SequencerState

if TYPE_CHECKING:
    from perpx.engine.engine import Engine
    from perpx.server.context import ServerContext

REJECTIONS = (OrderRejected, CommandRejected, TransferRejected, ConditionalOrderRejected)
"""A command whose own first event is one of these was refused."""

LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
"""Seconds; sub-millisecond resolution (the default buckets start at 5 ms)."""

RATE_LIMIT_KINDS = ("weight", "banned", "orders")
"""``perpx_rate_limited_total{kind}``: 429 -1003 (request weight), 418 -1003 (IP banned), 429 -1015 (orders)."""

INTERFACES = ("rest", "ws", "fix")

WS_DISCONNECT_REASONS = ("slow", "closed")
"""``perpx_ws_disconnects_total{reason}`` (see the module docstring)."""

NS_PER_S = 1_000_000_000

QUERY_TIMEOUT_S = 5.0
"""A scrape waits this long for the sequencer; a sequencer that does not answer reads as not running."""


@dataclass(frozen=True, slots=True)
class MarketFigures:
    """One market's figures at scrape time, in Binance's REST units."""

    index: Decimal | None
    mark: Decimal | None
    funding_rate: Decimal
    open_interest: Decimal
    sources: IndexSources | None
    near_liquidation: int
    funding_cap: Decimal | None
    funding_floor: Decimal | None
    band_bps: Decimal
    max_leverage: int
    funding_interval_hours: int | None


@dataclass(frozen=True, slots=True)
class VenueFigures:
    """What one sequencer query reads for a scrape."""

    last_seq: int
    lag: dict[str, int]
    markets: dict[str, MarketFigures]
    insurance_asset: str
    insurance_equity: Decimal
    now_ns: int
    asset_index: dict[str, Decimal | None]
    """Each ``[assets.X]`` with an index: its price in the settlement asset, ``None`` while it is stale
    or below quorum (no new loans or collateral risk on it, no liquidation by it)."""


def gap_bps(mark: Decimal, index: Decimal) -> Decimal:
    """``(mark - index) / index`` in basis points (signed)."""
    return (mark - index) / index * 10_000


@dataclass
class Metrics:
    """The venue's metrics registry and the listener that counts applied batches."""

    ctx: ServerContext
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    public: bool = False
    """Also serve ``/metrics`` on the public listener (``perpx serve --public-metrics``); read when
    the public app is built (:func:`attach_public`)."""

    def __post_init__(self) -> None:
        r = self.registry
        self.engine_running = Gauge(
            "perpx_engine_running", "1 while the sequencer runs, 0 when starting or stopped.", registry=r
        )
        self.journal_last_seq = Gauge("perpx_journal_last_seq", "The last journal record.", registry=r)
        self.journal_commit = Histogram(
            "perpx_journal_commit_seconds",
            "Seconds per batch commit on the sequencer path (journal write, fsync, apply, listeners).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.read_model_lag = Gauge(
            "perpx_read_model_lag_records",
            "Journal records a persistent read model has not applied.",
            ["model"],
            registry=r,
        )
        self.commands = Counter(
            "perpx_commands_total",
            "Commands applied, by command type and result (accepted or rejected).",
            ["type", "result"],
            registry=r,
        )
        self.order_ack = Histogram(
            "perpx_order_ack_seconds",
            "Seconds from an order entry request to its answer, by interface.",
            ["interface"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.index_price = Gauge("perpx_index_price", "Index price (quote asset).", ["symbol"], registry=r)
        self.mark_price = Gauge("perpx_mark_price", "Mark price (quote asset).", ["symbol"], registry=r)
        self.gap = Gauge(
            "perpx_mark_index_gap_bps", "(mark - index) / index in basis points.", ["symbol"], registry=r
        )
        self.funding_rate = Gauge(
            "perpx_funding_rate",
            "The next funding settlement's rate (decimal; 0 without funding).",
            ["symbol"],
            registry=r,
        )
        self.funding_cap = Gauge(
            "perpx_funding_cap",
            "The highest funding rate a settlement can have (decimal; markets with funding only).",
            ["symbol"],
            registry=r,
        )
        self.funding_floor = Gauge(
            "perpx_funding_floor",
            "The lowest funding rate a settlement can have (decimal; markets with funding only).",
            ["symbol"],
            registry=r,
        )
        self.max_leverage = Gauge(
            "perpx_max_leverage",
            "The highest leverage of the market's first bracket (changes with an applied proposal).",
            ["symbol"],
            registry=r,
        )
        self.funding_interval = Gauge(
            "perpx_funding_interval_hours",
            "Hours between funding settlements (markets with funding only; a change starts after the next one).",
            ["symbol"],
            registry=r,
        )
        self.band = Gauge(
            "perpx_mark_index_band_bps",
            "The band around the index the mark is clamped to, in basis points.",
            ["symbol"],
            registry=r,
        )
        self.open_interest = Gauge(
            "perpx_open_interest", "Open interest (base units, the long side).", ["symbol"], registry=r
        )
        self.open_interest_notional = Gauge(
            "perpx_open_interest_notional",
            "Open interest times the mark price (settlement asset).",
            ["symbol"],
            registry=r,
        )
        self.insurance_fund = Gauge(
            "perpx_insurance_fund", "Insurance fund equity on the marks.", ["asset"], registry=r
        )
        self.liquidations = Counter(
            "perpx_liquidations_total",
            "Liquidation records, by market and outcome.",
            ["symbol", "kind"],
            registry=r,
        )
        self.adl = Counter("perpx_adl_total", "Auto-deleveraging steps, by market.", ["symbol"], registry=r)
        self.ws_connections = Gauge(
            "perpx_ws_connections",
            "Open WebSocket connections (market and user streams, WebSocket API).",
            registry=r,
        )
        self.rate_limited = Counter(
            "perpx_rate_limited_total",
            "Requests refused by a rate limit (weight: 429 -1003, banned: 418 -1003, orders: 429 -1015).",
            ["kind"],
            registry=r,
        )
        self.index_source_age = Gauge(
            "perpx_index_source_age_seconds",
            "Venue-clock seconds since the source's latest quote (absent until it first quotes).",
            ["symbol", "source"],
            registry=r,
        )
        self.index_sources_live = Gauge(
            "perpx_index_sources_live",
            "Index sources no older than stale_after (below min_sources the index freezes).",
            ["symbol"],
            registry=r,
        )
        self.asset_index_price = Gauge(
            "perpx_asset_index_price",
            "Index price of a collateral or loan asset (settlement asset per unit), while fresh.",
            ["asset"],
            registry=r,
        )
        self.asset_index_stale = Gauge(
            "perpx_asset_index_stale",
            "1 while the asset's index is stale or below its quorum: no new loans on it, collateral at zero "
            "for new risk, no liquidation or conversion by it.",
            ["asset"],
            registry=r,
        )
        self.index_sources_min = Gauge(
            "perpx_index_sources_min",
            "The index quorum (min_sources) of the market.",
            ["symbol"],
            registry=r,
        )
        self.near_liquidation = Gauge(
            "perpx_accounts_near_liquidation",
            "Accounts with a position in the market whose margin ratio is at or over 80%.",
            ["symbol"],
            registry=r,
        )
        self.invariant_checks = Counter(
            "perpx_invariant_checks_total",
            "Runs of the engine's invariant checks on the live venue.",
            registry=r,
        )
        self.invariant_violations = Counter(
            "perpx_invariant_violations_total",
            "Broken invariants found (one per rule per check).",
            registry=r,
        )
        self.ws_disconnects = Counter(
            "perpx_ws_disconnects_total",
            "WebSocket connections ended (slow: dropped as too slow; closed: any other end).",
            ["reason"],
            registry=r,
        )
        self.anomaly_score = Gauge(
            "perpx_anomaly_score",
            "EWMA z-score of a key series (0 while warming up).",
            ["metric"],
            registry=r,
        )
        self.monitor = InvariantMonitor(
            query=lambda fn: self.ctx.seq.query(fn, timeout_s=QUERY_TIMEOUT_S),
            last_seq=lambda: self.ctx.seq.last_seq,
        )
        self._invariants_seen = (0, 0)
        self._ws_ended_seen = dict.fromkeys(WS_DISCONNECT_REASONS, 0)
        self._commands_seen = 0
        self._liquidations_seen = 0
        self._scored: tuple[int, int, int] | None = None
        self._command_rate = HourlyEwma()
        self._liquidation_rate = Ewma()
        self._gaps: dict[str, Ewma] = {}
        for reason in WS_DISCONNECT_REASONS:
            self.ws_disconnects.labels(reason)
        for metric in ("commands", "liquidations"):
            self.anomaly_score.labels(metric)
        for interface in INTERFACES:
            self.order_ack.labels(interface)
        for kind in RATE_LIMIT_KINDS:
            self.rate_limited.labels(kind)
        for symbol in self.ctx.specs:
            self.adl.labels(symbol)
        self._rate_limited_seen: dict[str, int] = dict.fromkeys(RATE_LIMIT_KINDS, 0)
        self._sources: dict[str, set[str]] = {}
        """The index sources whose age series each symbol has published."""

    # ------------------------------------------------------------------ component protocol

    def resume_seq(self) -> int | None:
        return None

    def close(self) -> None:
        return None

    def on_applied(self, batch: list[Applied]) -> None:
        """Count commands, liquidations and ADL steps (on the journal thread)."""
        for applied in batch:
            own = applied.events.own
            result = "rejected" if own and isinstance(own[0], REJECTIONS) else "accepted"
            self.commands.labels(type(applied.command).__name__, result).inc()
            self._commands_seen += 1
            for event in applied.events:
                if isinstance(event, LiquidationExplained):
                    self._liquidations_seen += 1
                    symbol = str(event.market) if event.market is not None else ""
                    self.liquidations.labels(symbol, event.outcome.lower()).inc()
                    for step in event.steps:
                        if isinstance(step, AdlStep):
                            self.adl.labels(symbol).inc()

    # ------------------------------------------------------------------ timings

    def observe_commit(self, seconds: float) -> None:
        self.journal_commit.observe(seconds)

    @contextmanager
    def order_ack_timer(self, interface: str) -> Iterator[None]:
        """Observe the seconds the block takes (answered or refused) into ``perpx_order_ack_seconds``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.order_ack.labels(interface).observe(time.perf_counter() - start)

    # ------------------------------------------------------------------ the scrape

    async def render(self) -> bytes:
        """Refresh the gauges (one sequencer query), then the exposition text."""
        ctx = self.ctx
        seq = ctx.sequencer
        running = seq is not None and seq.status().state not in (
            SequencerState.STARTING,
            SequencerState.STOPPED,
        )
        if running:
            try:
                figures = await ctx.seq.query(self._read, timeout_s=QUERY_TIMEOUT_S)
            except ApiError:
                running = False
            else:
                self._publish(figures)
                self._score(figures)
        self.engine_running.set(1 if running else 0)
        self._count_invariants()
        components = ctx.components
        connections = (
            {id(c) for c in components.streams.connections}
            | {id(c) for group in components.userstream.connections.values() for c in group}
            | set(components.wsapi.open)
        )
        self.ws_connections.set(len(connections))
        ended = {
            "slow": components.streams.slow_drops + components.userstream.slow_drops,
            "closed": components.streams.closed + components.userstream.closed + components.wsapi.closed,
        }
        for reason, count in ended.items():
            if count > self._ws_ended_seen[reason]:
                self.ws_disconnects.labels(reason).inc(count - self._ws_ended_seen[reason])
                self._ws_ended_seen[reason] = count
        refused = components.limits.refused
        for kind in RATE_LIMIT_KINDS:
            new = refused[kind] - self._rate_limited_seen[kind]
            if new > 0:
                self.rate_limited.labels(kind).inc(new)
                self._rate_limited_seen[kind] = refused[kind]
        return generate_latest(self.registry)

    def _read(self, engine: Engine) -> VenueFigures:
        """On the sequencer, between batches."""
        ctx = self.ctx
        last_seq = ctx.seq.last_seq
        lag: dict[str, int] = {}
        for name, component in ctx.components.persistent().items():
            at = component.resume_seq()
            lag[name] = 0 if at is None else max(0, last_seq - at)
        markets: dict[str, MarketFigures] = {}
        near = accounts_near_liquidation(engine)
        for symbol, listed in ctx.specs.items():
            spec = engine.specs[listed.market]  # the engine's: an applied proposal may have changed it
            view = engine.pricing.view(spec.market)
            rate = view.predicted_funding_rate_e8
            markets[symbol] = MarketFigures(
                index=_price(view.index_ticks, spec.tick_size),
                mark=_price(view.mark_ticks, spec.tick_size),
                funding_rate=Decimal(rate or 0) / RATE_SCALE,  # 0 without funding, as premiumIndex
                open_interest=Decimal(format_units(engine.open_interest_lots[spec.market], spec.lot_size)),
                sources=index_sources(engine, spec.market),
                near_liquidation=near.get(spec.market, 0),
                funding_cap=_rate(view.funding_cap_e8 if rate is not None else None),
                funding_floor=_rate(view.funding_floor_e8 if rate is not None else None),
                band_bps=Decimal(spec.risk.mark_index_band_e8) / RATE_SCALE * 10_000,
                max_leverage=spec.max_leverage,
                funding_interval_hours=view.funding_interval_hours if rate is not None else None,
            )
        fund = engine.liquidation.insurance_fund()
        return VenueFigures(
            last_seq=last_seq,
            lag=lag,
            markets=markets,
            insurance_asset=str(engine.asset),
            insurance_equity=Decimal(format_units(fund.equity_atoms, ctx.atom)),
            now_ns=engine.now_ns,
            asset_index={
                str(asset): None if atoms is None else Decimal(format_units(atoms, ctx.atom))
                for asset, spec in sorted(engine.config.assets.items())
                if spec.index is not None
                for atoms in [engine.lending.index_atoms(asset)]
            },
        )

    def _publish(self, figures: VenueFigures) -> None:
        self.journal_last_seq.set(figures.last_seq)
        for model, lag in figures.lag.items():
            self.read_model_lag.labels(model).set(lag)
        for symbol, m in figures.markets.items():
            if m.index is not None:
                self.index_price.labels(symbol).set(float(m.index))
            if m.mark is not None:
                self.mark_price.labels(symbol).set(float(m.mark))
                self.open_interest_notional.labels(symbol).set(float(m.open_interest * m.mark))
            if m.mark is not None and m.index:
                self.gap.labels(symbol).set(float(gap_bps(m.mark, m.index)))
            self.funding_rate.labels(symbol).set(float(m.funding_rate))
            self.open_interest.labels(symbol).set(float(m.open_interest))
            self.near_liquidation.labels(symbol).set(m.near_liquidation)
            self.band.labels(symbol).set(float(m.band_bps))
            self.max_leverage.labels(symbol).set(m.max_leverage)
            if m.funding_interval_hours is not None:
                self.funding_interval.labels(symbol).set(m.funding_interval_hours)
            if m.funding_cap is not None and m.funding_floor is not None:
                self.funding_cap.labels(symbol).set(float(m.funding_cap))
                self.funding_floor.labels(symbol).set(float(m.funding_floor))
            if m.sources is not None:
                self.index_sources_live.labels(symbol).set(m.sources.live)
                self.index_sources_min.labels(symbol).set(m.sources.min_sources)
                for source, age_ns in m.sources.ages_ns.items():
                    if age_ns is not None:
                        self.index_source_age.labels(symbol, source).set(age_ns / NS_PER_S)
                self._drop_sources(symbol, m.sources)
        self.insurance_fund.labels(figures.insurance_asset).set(float(figures.insurance_equity))
        for asset, price in figures.asset_index.items():
            self.asset_index_stale.labels(asset).set(1 if price is None else 0)
            if price is not None:
                self.asset_index_price.labels(asset).set(float(price))

    def _drop_sources(self, symbol: str, sources: IndexSources) -> None:
        """Forget the age series of sources an applied proposal removed from ``symbol``'s index."""
        published = self._sources.setdefault(symbol, set())
        for source in sorted(published - set(sources.ages_ns)):
            self.index_source_age.remove(symbol, source)
        published.clear()
        published.update(s for s, age in sources.ages_ns.items() if age is not None)

    def _score(self, figures: VenueFigures) -> None:
        """Feed this scrape's figures to the anomaly detectors and export their z-scores."""
        commands, liquidations = self._commands_seen, self._liquidations_seen
        for symbol, m in figures.markets.items():
            if m.mark is not None and m.index:
                gap = float(gap_bps(m.mark, m.index))
                detector = self._gaps.setdefault(symbol, Ewma())
                self.anomaly_score.labels(f"mark_index_gap_bps:{symbol}").set(detector.update(gap))
        if self._scored is not None:
            at_ns, seen_commands, seen_liquidations = self._scored
            elapsed_s = (figures.now_ns - at_ns) / NS_PER_S
            if elapsed_s > 0:
                rate = (commands - seen_commands) / elapsed_s
                self.anomaly_score.labels("commands").set(self._command_rate.update(figures.now_ns, rate))
            new = float(liquidations - seen_liquidations)
            self.anomaly_score.labels("liquidations").set(self._liquidation_rate.update(new))
        self._scored = (figures.now_ns, commands, liquidations)

    def _count_invariants(self) -> None:
        checks, violations = self.monitor.checks, self.monitor.violations
        seen_checks, seen_violations = self._invariants_seen
        if checks > seen_checks:
            self.invariant_checks.inc(checks - seen_checks)
        if violations > seen_violations:
            self.invariant_violations.inc(violations - seen_violations)
        self._invariants_seen = (checks, violations)


def _rate(rate_e8: int | None) -> Decimal | None:
    return None if rate_e8 is None else Decimal(rate_e8) / RATE_SCALE


def _price(ticks: int | None, tick_size: Decimal) -> Decimal | None:
    return None if ticks is None else Decimal(format_units(ticks, tick_size))


async def on_start(ctx: ServerContext) -> None:
    """Start the invariant monitor with the venue."""
    ctx.components.metrics.monitor.start()


async def on_stop(ctx: ServerContext) -> None:
    await ctx.components.metrics.monitor.stop()


router = APIRouter(tags=["metrics (perpx)"])


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus exposition of the venue's metrics (no token; see :mod:`perpx.server.metrics`)."""
    body = await ctx_of(request).components.metrics.render()
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def attach_public(app: FastAPI, ctx: ServerContext) -> None:
    """Serve ``/metrics`` on the public app too, when the operator asked for it (off by default).

    The admin listener always serves it. The public one does only on request: the figures are
    venue aggregates, but a venue may not want to publish its order-ack latencies or invariant
    counts to every trader.
    """
    if ctx.built is not None and ctx.components.metrics.public:
        app.include_router(router)
