"""Public market data: Binance USDS-M ``/fapi/v1`` routes that need no key.

Book, prices and funding figures are read from the engine on the sequencer
thread (one ``seq.query`` per request, returning plain data); trade history,
klines and tickers come from the ``marketdata`` read model (SQLite, read off
the event loop). Times in answers are venue time (the manual clock may differ
from the wall clock), except ``serverTime``, which is the wall clock that
signing windows use.

Where perpx differs from Binance: aggregate trades are consecutive fills of one
taker order at one price, with the first trade's id as the aggregate id; the
24-hour ticker has one-minute granularity; a halted market is listed as
``SETTLING``, a settled one as ``CLOSE``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

from fastapi import APIRouter, Request

from perpx.engine.commands import MarketMode
from perpx.engine.config import MarketSpec, VenueConfig
from perpx.engine.engine import Engine
from perpx.engine.pricing.stage import PricingView
from perpx.engine.values import RATE_SCALE, MarketId, format_units
from perpx.server.context import ServerContext
from perpx.server.errors import ApiError
from perpx.server.marketdata.candles import INTERVALS, Candle, Ticker
from perpx.server.marketdata.depth import DepthTracker
from perpx.server.marketdata.price_candles import PriceCandle
from perpx.server.marketdata.trades import AggTrade, Trade, TradeStore
from perpx.server.rest import charge, ctx_of, params_of, public
from perpx.server.wire import enum_param, id_param, int_param, market_param, ms, price, qty, time_param

router = APIRouter(tags=["market data"])

T = TypeVar("T")

PERPETUAL_DELIVERY_MS = 4133404800000
"""Binance's delivery date of a perpetual (2100-12-25)."""
DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
ORDER_TYPES = [
    "LIMIT",
    "MARKET",
    "STOP",
    "STOP_MARKET",
    "TAKE_PROFIT",
    "TAKE_PROFIT_MARKET",
    "TRAILING_STOP_MARKET",
]
TIME_IN_FORCE = ["GTC", "IOC", "FOK", "GTX"]
RATE_LIMITS = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
    {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
]
STATUS = {
    MarketMode.NORMAL: "TRADING",
    MarketMode.REDUCE_ONLY: "TRADING",
    MarketMode.HALTED: "SETTLING",
    MarketMode.SETTLED: "CLOSE",
}


def store_of(ctx: ServerContext) -> TradeStore:
    return ctx.components.marketdata


def depth_of(ctx: ServerContext) -> DepthTracker:
    return ctx.components.depth


async def _read(fn: Callable[[], T]) -> T:
    """Run a read-model query off the event loop."""
    return await asyncio.to_thread(fn)


# ---------------------------------------------------------------------------------------------- formatting


def rate(e8: int | None) -> str:
    """A rate in ``_e8`` units as Binance writes it: ``"0.00010000"``."""
    return f"{Decimal(e8 or 0) / RATE_SCALE:.8f}"


def quote(spec: MarketSpec, units: int) -> str:
    """A quote volume in ``ticks x lots`` units as decimal text."""
    return format_units(units, spec.tick_size * spec.lot_size)


def decimals(step: Decimal) -> int:
    """Digits after the point of a tick or lot size (``0.001`` -> 3)."""
    exponent = step.normalize().as_tuple().exponent
    return max(0, -int(exponent))


def levels(spec: MarketSpec, rows: list[tuple[int, int]]) -> list[list[str]]:
    return [[price(spec, p), qty(spec, lots)] for p, lots in rows]


def trade_json(spec: MarketSpec, trade: Trade) -> dict[str, Any]:
    return {
        "id": trade.trade_id,
        "price": price(spec, trade.price_ticks),
        "qty": qty(spec, trade.qty_lots),
        "quoteQty": quote(spec, trade.price_ticks * trade.qty_lots),
        "time": trade.ts_ms,
        "isBuyerMaker": trade.buyer_maker,
    }


def agg_trade_json(spec: MarketSpec, agg: AggTrade) -> dict[str, Any]:
    return {
        "a": agg.agg_id,
        "p": price(spec, agg.price_ticks),
        "q": qty(spec, agg.qty_lots),
        "f": agg.agg_id,
        "l": agg.last_id,
        "T": agg.ts_ms,
        "m": agg.buyer_maker,
    }


def kline_row(spec: MarketSpec, candle: Candle) -> list[Any]:
    return [
        candle.open_ms,
        price(spec, candle.open_ticks),
        price(spec, candle.high_ticks),
        price(spec, candle.low_ticks),
        price(spec, candle.close_ticks),
        qty(spec, candle.volume_lots),
        candle.close_ms,
        quote(spec, candle.quote_units),
        candle.count,
        qty(spec, candle.buy_lots),
        quote(spec, candle.buy_quote_units),
        "0",
    ]


def ticker_figures(spec: MarketSpec, ticker: Ticker) -> dict[str, str]:
    """Change, change %, weighted average (Binance's 24h ticker numbers) as decimal text."""
    tick = spec.tick_size
    change = Decimal(ticker.last_ticks - ticker.open_ticks) * tick
    percent = (
        Decimal(ticker.last_ticks - ticker.open_ticks) * 100 / ticker.open_ticks
        if ticker.open_ticks
        else Decimal(0)
    )
    average = (
        Decimal(ticker.quote_units) / ticker.volume_lots * tick
        if ticker.volume_lots
        else Decimal(ticker.last_ticks) * tick
    )
    places = Decimal(1).scaleb(-decimals(tick))
    return {
        "priceChange": f"{change:f}",
        "priceChangePercent": f"{percent.quantize(Decimal('0.001')):f}",
        "weightedAvgPrice": f"{average.quantize(places):f}",
    }


def ticker_json(spec: MarketSpec, ticker: Ticker) -> dict[str, Any]:
    return {
        "symbol": ticker.market,
        **ticker_figures(spec, ticker),
        "lastPrice": price(spec, ticker.last_ticks),
        "lastQty": qty(spec, ticker.last_lots),
        "openPrice": price(spec, ticker.open_ticks),
        "highPrice": price(spec, ticker.high_ticks),
        "lowPrice": price(spec, ticker.low_ticks),
        "volume": qty(spec, ticker.volume_lots),
        "quoteVolume": quote(spec, ticker.quote_units),
        "openTime": ticker.open_ms,
        "closeTime": ticker.close_ms,
        "firstId": ticker.first_id,
        "lastId": ticker.last_id,
        "count": ticker.count,
    }


def premium_json(spec: MarketSpec, view: PricingView, now_ns: int) -> dict[str, Any]:
    """``premiumIndex`` of one market; ``lastFundingRate`` is the running interval's rate so far."""
    index = view.index_ticks
    return {
        "symbol": spec.market,
        "markPrice": price(spec, view.mark_ticks),
        "indexPrice": price(spec, index),
        "estimatedSettlePrice": price(spec, index),
        "lastFundingRate": rate(view.predicted_funding_rate_e8),
        "interestRate": rate(view.interest_rate_e8),
        "nextFundingTime": 0 if view.next_funding_ns is None else ms(view.next_funding_ns),
        "time": ms(now_ns),
    }


def symbol_json(spec: MarketSpec, config: VenueConfig, mode: MarketMode, onboard_ms: int) -> dict[str, Any]:
    """One ``exchangeInfo`` symbol: what ccxt reads, plus Binance's usual extras."""
    percent_digits = 4
    up = Decimal(spec.percent_price_up_e8) / RATE_SCALE
    down = Decimal(spec.percent_price_down_e8) / RATE_SCALE
    first = spec.brackets[0]
    return {
        "symbol": spec.market,
        "pair": spec.market,
        "contractType": "PERPETUAL",
        "deliveryDate": PERPETUAL_DELIVERY_MS,
        "onboardDate": onboard_ms,
        "status": STATUS[mode],
        "maintMarginPercent": f"{Decimal(first.mmr_e8) / RATE_SCALE * 100:.4f}",
        "requiredMarginPercent": f"{Decimal(100) / first.max_leverage:.4f}",
        "baseAsset": spec.base,
        "quoteAsset": spec.settlement_asset,
        "marginAsset": spec.settlement_asset,
        "pricePrecision": decimals(spec.tick_size),
        "quantityPrecision": decimals(spec.lot_size),
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": [],
        "settlePlan": 0,
        "triggerProtect": f"{Decimal(spec.risk.trigger_protect_e8) / RATE_SCALE:.4f}",
        "liquidationFee": f"{Decimal(spec.risk.liquidation_fee_e8) / RATE_SCALE:.6f}",
        "marketTakeBound": f"{Decimal(spec.market_take_bound_e8) / RATE_SCALE:.2f}",
        "maxMoveOrderLimit": 10000,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": price(spec, spec.min_price_ticks),
                "maxPrice": price(spec, spec.max_price_ticks),
                "tickSize": f"{spec.filter_tick_size:f}",
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": qty(spec, spec.min_qty_lots),
                "maxQty": qty(spec, spec.max_qty_lots),
                "stepSize": f"{spec.filter_lot_size:f}",
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": qty(spec, spec.min_qty_lots),
                "maxQty": qty(spec, spec.market_max_qty_lots),
                "stepSize": f"{spec.filter_lot_size:f}",
            },
            {"filterType": "MAX_NUM_ORDERS", "limit": spec.max_open_orders},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": spec.risk.max_algo_orders},
            {
                "filterType": "MIN_NOTIONAL",
                "notional": format_units(spec.min_notional_atoms, config.settlement.atom),
            },
            {
                "filterType": "PERCENT_PRICE",
                "multiplierUp": f"{up:.{percent_digits}f}",
                "multiplierDown": f"{down:.{percent_digits}f}",
                "multiplierDecimal": str(percent_digits),
            },
        ],
        "orderTypes": ORDER_TYPES,
        "timeInForce": TIME_IN_FORCE,
    }


# ---------------------------------------------------------------------------------------------- helpers


def _markets(ctx: ServerContext, params: Mapping[str, str]) -> list[MarketSpec]:
    """The market named by ``symbol`` (-1121 if unknown), or every market when it is absent."""
    if params.get("symbol"):
        return [market_param(params, ctx.specs)]
    return list(ctx.config.markets.values())


def _limit(params: Mapping[str, str], default: int, hi: int) -> int:
    return int_param(params, "limit", default=default, lo=1, hi=hi)


def _time_range(params: Mapping[str, str]) -> tuple[int | None, int | None]:
    start = time_param(params, "startTime")
    end = time_param(params, "endTime")
    if start is not None and end is not None and start > end:
        raise ApiError(400, -1128, "startTime is after endTime.")
    return start, end


# ---------------------------------------------------------------------------------------------- routes


@router.get("/fapi/v1/ping")
async def ping(request: Request) -> dict[str, Any]:
    """Connectivity check."""
    await public(request)
    return {}


@router.get("/fapi/v1/time")
async def server_time(request: Request) -> dict[str, Any]:
    """The server's wall-clock time in ms (signing windows use it; venue time may be manual)."""
    await public(request)
    return {"serverTime": time.time_ns() // 1_000_000}


@router.get("/fapi/v1/exchangeInfo")
async def exchange_info(request: Request) -> dict[str, Any]:
    """Markets with their filters, order types and status, rate limits and margin assets."""
    await public(request)
    ctx = ctx_of(request)
    # specs from the engine: an operator may change filters while the venue runs
    specs, modes = await ctx.seq.query(lambda engine: (dict(engine.specs), dict(engine.modes)))
    store = store_of(ctx)
    onboard = store.first_ms if store.first_ms is not None else time.time_ns() // 1_000_000
    return {
        "timezone": "UTC",
        "serverTime": time.time_ns() // 1_000_000,
        "futuresType": "U_MARGINED",
        "rateLimits": RATE_LIMITS,
        "exchangeFilters": [],
        "assets": [
            {
                "asset": str(asset),
                "marginAvailable": asset == ctx.config.settlement_asset,
                "autoAssetExchange": None,
            }
            for asset in ctx.config.assets
        ],
        "symbols": [symbol_json(spec, ctx.config, modes[market], onboard) for market, spec in specs.items()],
    }


def _depth_weight(limit: int) -> int:
    if limit <= 50:
        return 2
    if limit <= 100:
        return 5
    if limit <= 500:
        return 10
    return 20


@router.get("/fapi/v1/depth")
async def depth(request: Request) -> dict[str, Any]:
    """The book to ``limit`` levels a side (default 500, at most 1000) and its ``lastUpdateId``."""
    params = await params_of(request)
    limit = _limit(params.values, 500, 1000)
    charge(request, _depth_weight(limit))
    ctx = ctx_of(request)
    spec = market_param(params.values, ctx.specs)
    tracker = depth_of(ctx)
    snap = await ctx.seq.query(lambda engine: tracker.snapshot(engine, spec.market, limit))
    now = ms(snap.now_ns)
    return {
        "lastUpdateId": snap.update_id,
        "E": now,
        "T": now,
        "bids": levels(spec, snap.bids),
        "asks": levels(spec, snap.asks),
    }


@router.get("/fapi/v1/trades")
async def trades(request: Request) -> list[dict[str, Any]]:
    """The most recent public trades (default 500, at most 1000), oldest first."""
    params = await public(request, 5)
    ctx = ctx_of(request)
    spec = market_param(params.values, ctx.specs)
    limit = _limit(params.values, 500, 1000)
    rows = await _read(lambda: store_of(ctx).recent_trades(spec.market, limit))
    return [trade_json(spec, t) for t in rows]


@router.get("/fapi/v1/historicalTrades")
async def historical_trades(request: Request) -> list[dict[str, Any]]:
    """Older public trades from ``fromId`` on (no key needed here, unlike Binance)."""
    params = await public(request, 20)
    ctx = ctx_of(request)
    spec = market_param(params.values, ctx.specs)
    limit = _limit(params.values, 500, 1000)
    from_id = id_param(params.values, "fromId")
    rows = await _read(lambda: store_of(ctx).recent_trades(spec.market, limit, from_id))
    return [trade_json(spec, t) for t in rows]


@router.get("/fapi/v1/aggTrades")
async def agg_trades(request: Request) -> list[dict[str, Any]]:
    """Aggregate trades by ``fromId``, by time, or the most recent (default 500, at most 1000)."""
    params = await public(request, 20)
    ctx = ctx_of(request)
    spec = market_param(params.values, ctx.specs)
    limit = _limit(params.values, 500, 1000)
    from_id = id_param(params.values, "fromId")
    start, end = _time_range(params.values)
    rows = await _read(lambda: store_of(ctx).agg_trades(spec.market, limit, from_id, start, end))
    return [agg_trade_json(spec, a) for a in rows]


def _klines_weight(limit: int) -> int:
    if limit < 100:
        return 1
    if limit < 500:
        return 2
    if limit <= 1000:
        return 5
    return 10


@router.get("/fapi/v1/klines")
async def klines(request: Request) -> list[list[Any]]:
    """Candles of the public trades: ``interval`` 1m .. 1M, ``limit`` default 500, at most 1500."""
    params = await params_of(request)
    limit = _limit(params.values, 500, 1500)
    charge(request, _klines_weight(limit))
    ctx = ctx_of(request)
    spec = market_param(params.values, ctx.specs)
    interval = enum_param(params.values, "interval", tuple(INTERVALS))
    start, end = _time_range(params.values)
    rows = await _read(lambda: store_of(ctx).klines(spec.market, interval, limit, start, end))
    return [kline_row(spec, c) for c in rows]


@router.get("/fapi/v1/continuousKlines")
async def continuous_klines(request: Request) -> list[list[Any]]:
    """Klines by ``pair`` and ``contractType`` (PERPETUAL only: the same candles as ``klines``)."""
    params = await params_of(request)
    limit = _limit(params.values, 500, 1500)
    charge(request, _klines_weight(limit))
    ctx = ctx_of(request)
    spec = market_param(params.values, ctx.specs, "pair")
    enum_param(params.values, "contractType", ("PERPETUAL",))
    interval = enum_param(params.values, "interval", tuple(INTERVALS))
    start, end = _time_range(params.values)
    rows = await _read(lambda: store_of(ctx).klines(spec.market, interval, limit, start, end))
    return [kline_row(spec, c) for c in rows]


def price_kline_row(spec: MarketSpec, kind: str, candle: PriceCandle) -> list[Any]:
    """One mark, index or premium kline as Binance sends it (volumes are ``"0"``; ``count`` the samples)."""
    if kind == "premium":
        values = [
            rate(v) for v in (candle.open_value, candle.high_value, candle.low_value, candle.close_value)
        ]
    else:
        values = [
            price(spec, v)
            for v in (candle.open_value, candle.high_value, candle.low_value, candle.close_value)
        ]
    return [candle.open_ms, *values, "0", candle.close_ms, "0", candle.count, "0", "0", "0"]


async def _price_klines(request: Request, kind: str) -> list[list[Any]]:
    params = await params_of(request)
    limit = _limit(params.values, 500, 1500)
    charge(request, _klines_weight(limit))
    ctx = ctx_of(request)
    spec = market_param(params.values, ctx.specs, "pair" if kind == "index" else "symbol")
    interval = enum_param(params.values, "interval", tuple(INTERVALS))
    start, end = _time_range(params.values)
    rows = await _read(lambda: store_of(ctx).price_klines(spec.market, kind, interval, limit, start, end))
    return [price_kline_row(spec, kind, c) for c in rows]


@router.get("/fapi/v1/markPriceKlines")
async def mark_price_klines(request: Request) -> list[list[Any]]:
    """Candles of the mark price by ``symbol``: ``interval`` 1m .. 1M, ``limit`` default 500, at most 1500."""
    return await _price_klines(request, "mark")


@router.get("/fapi/v1/indexPriceKlines")
async def index_price_klines(request: Request) -> list[list[Any]]:
    """Candles of the index price by ``pair``: ``interval`` 1m .. 1M, ``limit`` default 500, at most 1500."""
    return await _price_klines(request, "index")


@router.get("/fapi/v1/premiumIndexKlines")
async def premium_index_klines(request: Request) -> list[list[Any]]:
    """Candles of the mark's premium over the index, ``(mark - index) / index``, by ``symbol``."""
    return await _price_klines(request, "premium")


@router.get("/fapi/v1/ticker/24hr")
async def ticker_24hr(request: Request) -> Any:
    """Rolling 24-hour statistics of one market (an object) or of all (a list)."""
    params = await params_of(request)
    charge(request, 1 if params.get("symbol") else 40)
    ctx = ctx_of(request)
    specs = _markets(ctx, params.values)
    store = store_of(ctx)
    rows = await _read(lambda: [store.ticker(spec.market) for spec in specs])
    out = [ticker_json(spec, row) for spec, row in zip(specs, rows, strict=True)]
    return out[0] if params.get("symbol") else out


async def _prices(request: Request) -> Any:
    params = await params_of(request)
    charge(request, 1 if params.get("symbol") else 2)
    ctx = ctx_of(request)
    specs = _markets(ctx, params.values)
    store = store_of(ctx)
    last = await _read(lambda: [store.last_trade(spec.market) for spec in specs])
    out = [
        {
            "symbol": spec.market,
            "price": price(spec, trade.price_ticks if trade is not None else None),
            "time": trade.ts_ms if trade is not None else store.now_ms,
        }
        for spec, trade in zip(specs, last, strict=True)
    ]
    return out[0] if params.get("symbol") else out


@router.get("/fapi/v1/ticker/price")
async def ticker_price(request: Request) -> Any:
    """Last trade price of one market or of all."""
    return await _prices(request)


@router.get("/fapi/v2/ticker/price")
async def ticker_price_v2(request: Request) -> Any:
    """Last trade price of one market or of all (v2: the same fields)."""
    return await _prices(request)


@router.get("/fapi/v1/ticker/bookTicker")
async def book_ticker(request: Request) -> Any:
    """Best bid and ask of one market or of all."""
    params = await params_of(request)
    charge(request, 2 if params.get("symbol") else 5)
    ctx = ctx_of(request)
    specs = _markets(ctx, params.values)
    tracker = depth_of(ctx)
    tops = await ctx.seq.query(lambda engine: [tracker.top(engine, spec.market) for spec in specs])
    out = []
    for spec, top in zip(specs, tops, strict=True):
        bid = top.bid or (None, 0)
        ask = top.ask or (None, 0)
        out.append(
            {
                "symbol": spec.market,
                "bidPrice": price(spec, bid[0]),
                "bidQty": qty(spec, bid[1]),
                "askPrice": price(spec, ask[0]),
                "askQty": qty(spec, ask[1]),
                "time": ms(top.ts_ns),
                "lastUpdateId": top.update_id,
            }
        )
    return out[0] if params.get("symbol") else out


def _views(engine: Engine, markets: list[MarketId]) -> tuple[int, list[PricingView]]:
    return engine.now_ns, [engine.pricing.view(market) for market in markets]


@router.get("/fapi/v1/premiumIndex")
async def premium_index(request: Request) -> Any:
    """Mark and index price and the running funding rate of one market or of all."""
    params = await params_of(request)
    charge(request, 1 if params.get("symbol") else 10)
    ctx = ctx_of(request)
    specs = _markets(ctx, params.values)
    now_ns, views = await ctx.seq.query(lambda engine: _views(engine, [s.market for s in specs]))
    out = [premium_json(spec, view, now_ns) for spec, view in zip(specs, views, strict=True)]
    return out[0] if params.get("symbol") else out


@router.get("/fapi/v1/fundingRate")
async def funding_rate(request: Request) -> list[dict[str, Any]]:
    """Settled funding rates, oldest first (default 100, at most 1000; without a start: the latest)."""
    params = await public(request)
    ctx = ctx_of(request)
    market = market_param(params.values, ctx.specs).market if params.get("symbol") else None
    limit = _limit(params.values, 100, 1000)
    start, end = _time_range(params.values)
    rows = await _read(lambda: store_of(ctx).funding_history(market, limit, start, end))
    specs = ctx.config.markets
    return [
        {
            "symbol": row.market,
            "fundingTime": row.funding_ms,
            "fundingRate": rate(row.rate_e8),
            "markPrice": price(specs[row.market], row.mark_ticks) if row.market in specs else "0",
        }
        for row in rows
    ]


@router.get("/fapi/v1/fundingInfo")
async def funding_info(request: Request) -> list[dict[str, Any]]:
    """Funding cap, floor and interval of every market that settles funding."""
    await public(request)
    ctx = ctx_of(request)
    specs = await ctx.seq.query(lambda engine: list(engine.specs.values()))  # a proposal may change them
    return [
        {
            "symbol": spec.market,
            "adjustedFundingRateCap": rate(spec.risk.funding_cap_e8),
            "adjustedFundingRateFloor": rate(spec.risk.funding_floor_e8),
            "fundingIntervalHours": spec.risk.funding_interval_hours,
            "disclaimer": False,
        }
        for spec in specs
        if spec.index is not None
    ]


@router.get("/fapi/v1/openInterest")
async def open_interest(request: Request) -> dict[str, Any]:
    """Open interest (the long side's total) of one market."""
    params = await public(request)
    ctx = ctx_of(request)
    spec = market_param(params.values, ctx.specs)
    now_ns, lots = await ctx.seq.query(lambda engine: (engine.now_ns, engine.open_interest_lots[spec.market]))
    return {"openInterest": qty(spec, lots), "symbol": spec.market, "time": ms(now_ns)}
