"""The OTC desk's signed routes: request a quote, accept it, read it (perpx extensions).

``POST /perpx/v1/rfq`` (trade scope, weight 5): ``symbol``; ``side`` BUY or SELL, or absent for a
two-way price; exactly one of ``quantity`` (base) and ``quoteQty`` (notional, converted at the
index and rounded down to the lot). Answers the quote: ``quoteId``, ``bidPrice``/``askPrice`` (the
desk's; ``null`` for a side not asked for or not priced), ``quantity``, ``indexPrice``,
``createTime`` and ``expireTime`` in venue time (ms).

``POST /perpx/v1/rfq/{quoteId}/accept`` (trade scope, weight 5): ``side`` for a two-way quote.
Books the block trade while the quote is valid (``perpx.otc.desk``: expiry, last look, limits, then
the engine's margin checks) and answers with its ``tradeId``; refusals carry the desk's codes
(``perpx.otc.errors``, -9562 .. -9568) or the engine's (``-2019`` and the like).

A ``symbol`` of ``[otc.spot]`` (``BTC/USDT``) is a spot pair: priced from the asset's index and
booked as wallet transfers (``perpx.otc.spot``); its quantity and prices use the pair's steps.

``GET /perpx/v1/rfq/{quoteId}`` (read scope): the quote and its outcome: ``status`` (QUOTED, FILLED,
EXPIRED, LAST_LOOK_REJECTED, REJECTED), and for a last-look rejection the index move in bps.

The desk exists when the venue config has an ``[otc]`` section (``perpx.otc.config``); otherwise
every route answers ``-9568``. Accepts are taken one at a time (a lock), so one quote is never
booked twice. Quotes are stored in ``DATA/otc.sqlite`` before the answer leaves. After each booked
trade the desk's hedger (:mod:`perpx.server.otc_hedging`) applies the symbol's hedging policy.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from fastapi import APIRouter, Request

from perpx.engine.commands import BookSpotBlockTrade
from perpx.engine.config import ConfigError, MarketSpec
from perpx.engine.engine import Engine
from perpx.engine.values import MarketId, Side, format_units
from perpx.execution.inprocess import EngineVenue
from perpx.journal.journal import iter_commands
from perpx.journal.store import JOURNAL_FILE
from perpx.otc import errors
from perpx.otc.config import SpotPair, parse_otc
from perpx.otc.desk import AcceptPlan, AnyBlockTrade, Desk
from perpx.otc.errors import OtcError
from perpx.otc.hedging import Hedger
from perpx.otc.outside import OutsideVenue, is_outside, open_outside
from perpx.otc.pricing import QuoteSide
from perpx.otc.reconcile import Reconciled, reconcile
from perpx.otc.store import BOOKING, FILLED, OtcStore, QuoteRecord
from perpx.server import wire
from perpx.server.context import ServerContext
from perpx.server.errors import ApiError, bad_param
from perpx.server.otc_hedging import HedgeDriver, OutsideWorker
from perpx.server.otc_metrics import DeskCollector
from perpx.server.trading.params import auth, spec_of

router = APIRouter(tags=["OTC desk (signed)"])
log = logging.getLogger("perpx.otc")

MAX_QUOTE_ID_CHARS = 64
HEDGE_LOGS = "otc-hedges"
"""The hedges' child logs, under the data directory (``perpx.server.otc_hedging``)."""
UNKNOWN_OUTCOME = -1007
"""The sequencer's answer when a command may or may not have been applied (``api_error_of``)."""
T = TypeVar("T")


class _DeskService:
    """The desk of one running venue, the lock its accepts take, and its hedger."""

    def __init__(self, desk: Desk, hedging: HedgeDriver, collector: DeskCollector) -> None:
        self.desk = desk
        self.lock = asyncio.Lock()
        self.hedging = hedging
        self.collector = collector


_closed_because: dict[int, str] = {}
"""By ``id(ctx)``: why a venue with an ``[otc]`` section has no desk."""
_services: dict[int, _DeskService | None] = {}
"""By ``id(ctx)``: the running venues' desks (``None``: the venue has no ``[otc]`` section)."""


async def on_start(ctx: ServerContext) -> None:
    """Open the desk's store and follow the index for the volatility term (between two batches)."""
    try:
        config = parse_otc(ctx.config.raw, tuple(ctx.specs))
    except ConfigError as exc:
        log.error("otc: the [otc] section is invalid, the desk is closed: %s", exc)
        _services[id(ctx)] = None
        _closed_because[id(ctx)] = f"its [otc] section is invalid ({exc})"
        return
    if config is None:
        _services[id(ctx)] = None
        return
    names = sorted({p.venue for p in config.markets.values() if is_outside(p.venue)})
    outside: dict[str, OutsideVenue] = {}
    for name in names:
        try:
            outside[name] = await asyncio.to_thread(open_outside, name)
        except Exception as exc:  # no credentials, no network, an exchange that refuses: no desk
            log.error("otc: the hedging venue %s cannot be reached, the desk is closed: %s", name, exc)
            _services[id(ctx)] = None
            _closed_because[id(ctx)] = f"its hedging venue {name} cannot be reached ({exc})"
            return
    desk = Desk(config, OtcStore.in_dir(ctx.data_dir))
    core = ctx.seq.core

    def attach(engine: Engine) -> HedgeDriver:
        # between two batches: no batch is being applied while the listeners are added
        core.add_listener(desk.history.observe)
        venue = EngineVenue(core, desk.desk_id, core.stamp)
        hedger = Hedger(
            venue, desk.store, dict(config.markets), log_dir=ctx.data_dir / HEDGE_LOGS, outside=outside
        )
        for hedge_id in hedger.resume():
            log.warning("otc: hedge %s resumed from its child log", hedge_id)
        if outside:
            hedger.refresh_outside(engine, desk.elsewhere)  # once, before the first quote
        return HedgeDriver(hedger, OutsideWorker(hedger, engine, desk.elsewhere) if outside else None)

    collector = DeskCollector(desk.store)
    driver = await ctx.seq.query(attach)
    await ctx.seq.query(lambda engine: core.add_listener(collector.follow_book(engine, desk.desk_id)))
    if driver.outside is not None:
        driver.outside.start()
    settled = await ctx.seq.query(lambda _engine: _reconcile(ctx, desk))
    for outcome in settled:
        log.warning(
            "otc: quote %s was BOOKING at restart: %s %s", outcome.quote_id, outcome.state, outcome.reason
        )
    ctx.seq.add_driver(driver)
    ctx.components.metrics.registry.register(collector)
    _services[id(ctx)] = _DeskService(desk, driver, collector)


def _reconcile(ctx: ServerContext, desk: Desk) -> list[Reconciled]:
    """Quotes a crash left ``BOOKING``, settled from the journal (on the journal thread: no append meanwhile)."""
    if not any(q.state == BOOKING for q in desk.store.quotes()):
        return []
    readmodel = ctx.components.readmodel

    def find_trade(quote: QuoteRecord, command: AnyBlockTrade) -> int | None:
        at_ms = wire.ms(command.ts_ns)
        if isinstance(command, BookSpotBlockTrade):  # a spot pair: the client's income rows name the quote
            rows = readmodel.income(quote.account_id, None, None, at_ms, at_ms, 1000)
            info = f"BLOCK {command.quote_id}"
            return next((int(r.trade_id) for r in rows if r.info == info and r.trade_id), None)
        trades = readmodel.trades(quote.account_id, quote.symbol, None, at_ms, at_ms, 1000, order_id=0)
        for trade in trades:
            if (trade.side, trade.qty_lots, trade.price_ticks) == (
                command.side.name,
                command.qty_lots,
                command.price_ticks,
            ):
                return trade.trade_id
        return None

    return reconcile(desk, iter_commands(ctx.data_dir / JOURNAL_FILE), find_trade)


async def on_stop(ctx: ServerContext) -> None:
    service = _services.pop(id(ctx), None)
    _closed_because.pop(id(ctx), None)
    if service is not None:
        ctx.components.metrics.registry.unregister(service.collector)
        if service.hedging.outside is not None:
            service.hedging.outside.stop()
        service.hedging.hedger.close()
        service.desk.store.close()


def desk_service(ctx: ServerContext) -> _DeskService:
    """The running venue's desk; ``-9568`` when it has none."""
    service = _services.get(id(ctx))
    if service is None:
        why = _closed_because.get(id(ctx), "no [otc] section in its config")
        raise ApiError(400, errors.DESK_UNAVAILABLE, f"This venue has no OTC desk: {why}.")
    return service


def _refused(exc: OtcError) -> ApiError:
    return ApiError(400, exc.code, exc.message)


def _answering(fn: Callable[[Engine], T]) -> Callable[[Engine], T]:
    """``fn`` for the sequencer's query step, its desk refusal turned into the route's answer."""

    def run(engine: Engine) -> T:
        try:
            return fn(engine)
        except OtcError as exc:
            raise _refused(exc) from None

    return run


def _quote_id(request: Request) -> str:
    quote_id = str(request.path_params["quoteId"])
    if not 1 <= len(quote_id) <= MAX_QUOTE_ID_CHARS or not quote_id.isalnum():
        raise bad_param("quoteId", f"a quote id is 1 to {MAX_QUOTE_ID_CHARS} letters and digits")
    return quote_id


def _side_param(values: dict[str, str], two_way: bool) -> str | None:
    side = values.get("side")
    if side is None or side == "":
        return None
    if side not in ("BUY", "SELL"):
        allowed = "BUY or SELL, or leave it out for a two-way price" if two_way else "BUY or SELL"
        raise bad_param("side", f"use {allowed}")
    return side


def _steps(ctx: ServerContext, desk: Desk, symbol: str) -> tuple[Decimal, Decimal]:
    """The symbol's ``(tick_size, lot_size)``: a spot pair's, or the perpetual's."""
    pair = desk.config.spot.get(symbol)
    if pair is not None:
        return pair.tick_size, pair.lot_size
    spec = ctx.specs[symbol]
    return spec.tick_size, spec.lot_size


def quote_json(record: QuoteRecord, steps: tuple[Decimal, Decimal]) -> dict[str, Any]:
    """A quote and its outcome as the routes answer it (``steps``: the symbol's tick and lot)."""
    tick, lot = steps
    return {
        "quoteId": record.quote_id,
        "symbol": record.symbol,
        "side": record.requested,
        "quantity": format_units(record.qty_lots, lot),
        "bidPrice": None if record.bid_ticks is None else format_units(record.bid_ticks, tick),
        "askPrice": None if record.ask_ticks is None else format_units(record.ask_ticks, tick),
        "indexPrice": format_units(record.index_ticks, tick),
        "tier": record.tier,
        "createTime": wire.ms(record.created_ns),
        "expireTime": wire.ms(record.expires_ns),
        "status": record.state,
        "acceptedSide": record.accept_side,
        "acceptTime": None if record.accept_ns is None else wire.ms(record.accept_ns),
        "indexMoveBps": record.move_bps,
        "tradeId": record.trade_id,
        "code": record.code,
        "reason": record.reason,
    }


def _spot_lots(pair: SpotPair | None, quantity: Decimal) -> int:
    assert pair is not None  # no perpetual's spec: the symbol is a spot pair
    if quantity % pair.lot_size:
        raise bad_param("quantity", f"it must be a multiple of {pair.symbol}'s lot size {pair.lot_size}")
    return int(quantity / pair.lot_size)


@router.post("/perpx/v1/rfq")
async def request_quote(request: Request) -> dict[str, Any]:
    """Ask the desk for a price for a size (module docstring)."""
    ctx, account_id, params = await auth(request, "trade", 5)
    desk = desk_service(ctx).desk  # -9568 before anything else when the venue has no desk
    values = params.values
    pair = desk.config.spot.get(values.get("symbol") or "")
    spec = None if pair is not None else spec_of(ctx, values)
    side_text = _side_param(values, two_way=True)
    side = QuoteSide.TWO_WAY if side_text is None else QuoteSide(side_text)
    has_qty, has_notional = bool(values.get("quantity")), bool(values.get("quoteQty"))
    if has_qty == has_notional:
        raise ApiError(400, -1102, "Send exactly one of 'quantity' (base) and 'quoteQty' (notional).")
    qty_lots: int | None = None
    notional: Decimal | None = None
    if has_qty:
        quantity = wire.decimal_param(values, "quantity")
        assert quantity is not None
        qty_lots = (
            wire.to_lots(spec, quantity, "quantity") if spec is not None else _spot_lots(pair, quantity)
        )
        if qty_lots <= 0:
            raise bad_param("quantity", "it must be greater than zero")
    else:
        notional = wire.decimal_param(values, "quoteQty")
        if notional is None or notional <= 0:
            raise bad_param("quoteQty", "it must be greater than zero")
    if spec is not None:
        record = await quote_for(ctx, int(account_id), spec, side, qty_lots, notional)
    else:
        market, account = MarketId(str(values["symbol"])), int(account_id)
        record = await ctx.seq.query(
            _answering(lambda engine: desk.request(engine, account, market, side, qty_lots, notional))
        )
    return quote_json(record, _steps(ctx, desk, record.symbol))


async def book_quote(
    ctx: ServerContext, account_id: int, quote_id: str, side: Side | None
) -> tuple[QuoteRecord, int]:
    """Accept ``quote_id`` for ``account_id`` and book it (REST and FIX); the record and its price.

    Raises
    ------
    ApiError
        The desk's refusal (``-9562 .. -9568``), the engine's (``-2019`` ...), or the sequencer's.
    """
    service = desk_service(ctx)
    desk = service.desk
    async with service.lock:
        plan: AcceptPlan = await ctx.seq.query(
            _answering(lambda engine: desk.prepare_accept(engine, account_id, quote_id, side))
        )
        built: list[AnyBlockTrade] = []

        def build(ts_ns: int) -> AnyBlockTrade:
            try:
                command = desk.command(plan, ts_ns)
            except OtcError as exc:
                raise _refused(exc) from None
            built.append(command)
            return command

        try:
            applied = await ctx.seq.submit(build)
        except ApiError as exc:
            if exc.code != UNKNOWN_OUTCOME:  # certainly not applied; an unknown outcome stays BOOKING
                desk.abandon(plan, exc.code, exc.msg)
            raise
        record = desk.settle(plan, built[0], applied.events.own)
        if record.state == FILLED and record.symbol not in desk.config.spot:  # spot pairs: no hedger
            service.hedging.request_review(record.symbol, f"after {record.quote_id}")
    if record.state != FILLED:
        raise ApiError(
            400, record.code or errors.NOT_QUOTED, record.reason or "The desk did not book the trade."
        )
    return record, plan.price_ticks


async def quote_for(
    ctx: ServerContext,
    account_id: int,
    spec: MarketSpec,
    side: QuoteSide,
    qty_lots: int | None,
    notional: Decimal | None,
) -> QuoteRecord:
    """Ask the desk for a quote (REST and FIX); raises :class:`ApiError` with the desk's refusal."""
    desk = desk_service(ctx).desk
    market = spec.market
    return await ctx.seq.query(
        _answering(lambda engine: desk.request(engine, account_id, market, side, qty_lots, notional))
    )


@router.post("/perpx/v1/rfq/{quoteId}/accept")
async def accept_quote(request: Request) -> dict[str, Any]:
    """Accept a quote while it is valid: the desk books the block trade (module docstring)."""
    ctx, account_id, params = await auth(request, "trade", 5)
    desk_service(ctx)
    quote_id = _quote_id(request)
    side_text = _side_param(params.values, two_way=False)
    side = None if side_text is None else Side[side_text]
    record, price_ticks = await book_quote(ctx, int(account_id), quote_id, side)
    steps = _steps(ctx, desk_service(ctx).desk, record.symbol)
    return {**quote_json(record, steps), "price": format_units(price_ticks, steps[0])}


@router.get("/perpx/v1/rfq/{quoteId}")
async def get_quote(request: Request) -> dict[str, Any]:
    """One of the caller's quotes and its outcome."""
    ctx, account_id, _ = await auth(request, "read", 1)
    service = desk_service(ctx)
    quote_id = _quote_id(request)
    record = service.desk.store.quote(quote_id)
    if record is None or record.account_id != int(account_id):
        raise ApiError(400, errors.UNKNOWN_QUOTE, f"Quote {quote_id!r} is not one of yours.")
    return quote_json(record, _steps(ctx, service.desk, record.symbol))
