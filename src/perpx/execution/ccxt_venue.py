"""The ccxt venue: a perpx server (through ccxt ``binanceusdm`` pointed at it) or any exchange ccxt reaches.

The same strategies that backtest on :mod:`.inprocess` run here. This adapter is the only place
decimal strings, floats and exchange symbols appear: it converts ccxt's prices and amounts to
ticks and lots of the market's filters (``TICK_SIZE`` precision, as binanceusdm reports it; other
precision modes are converted from their digit counts) and maps ccxt's errors to the port's
rules:

==========================================  ====================================================
ccxt raises                                 the port says
==========================================  ====================================================
``InvalidOrder``, ``InsufficientFunds``,    a rejected :class:`~.venue.ChildAck` with the
``BadRequest``, ``PermissionDenied``        exchange's message (a business refusal)
``OrderNotFound`` on cancel / fetch         ``False`` / ``None``
``NetworkError`` and anything else          :class:`~.venue.VenueUnavailable` (outcome unknown:
                                            the runner looks the child up by its id next time)
==========================================  ====================================================

Children carry their client order id as ``newClientOrderId``; :meth:`CcxtVenue.order` finds a
child by it (``origClientOrderId``) after a restart. Fills are the account's trades
(``fetch_my_trades``), matched to children through their exchange order ids.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import ccxt

from perpx.execution.model import ParentSide
from perpx.execution.venue import (
    BookLevel,
    BookSnapshot,
    Candle,
    ChildAck,
    ChildOrder,
    ChildState,
    ChildStatus,
    Fill,
    MarketFilters,
    Prices,
    PublicTrade,
    VenueUnavailable,
)

NS_PER_MS = 1_000_000
TIMEFRAMES = {60: "1m", 300: "5m", 900: "15m", 3600: "1h", 14_400: "4h", 86_400: "1d"}
_REFUSALS = (ccxt.InvalidOrder, ccxt.InsufficientFunds, ccxt.BadRequest, ccxt.PermissionDenied)
_STATUS = {
    "open": ChildStatus.OPEN,
    "closed": ChildStatus.FILLED,
    "canceled": ChildStatus.CANCELED,
    "expired": ChildStatus.CANCELED,
    "rejected": ChildStatus.REJECTED,
}


def _dec(value: Any) -> Decimal:
    return Decimal(str(value))


class CcxtVenue:
    """A :class:`~.venue.Venue` over a ccxt exchange object (already configured with keys and URLs)."""

    def __init__(self, exchange: Any) -> None:
        self.exchange = exchange
        exchange.load_markets()
        self._filters: dict[str, MarketFilters] = {}
        self._cid_by_order: dict[str, str] = {}

    # ------------------------------------------------------------------ units

    def _symbol(self, market: str) -> str:
        try:
            return str(self.exchange.markets_by_id[market][0]["symbol"])
        except KeyError:
            if market in self.exchange.markets:
                return market
            raise

    def _step(self, value: Any) -> Decimal:
        step = _dec(value)
        if self.exchange.precisionMode == ccxt.TICK_SIZE:
            return step
        return Decimal(1).scaleb(-int(step))

    def _ticks(self, filters: MarketFilters, price: Any) -> int:
        return int((_dec(price) / filters.tick_size).to_integral_value(ROUND_HALF_EVEN))

    def _lots(self, filters: MarketFilters, qty: Any) -> int:
        return int((_dec(qty) / filters.lot_size).to_integral_value(ROUND_HALF_EVEN))

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(self.exchange, name)(*args, **kwargs)
        except _REFUSALS:
            raise
        except ccxt.OrderNotFound:
            raise
        except Exception as exc:  # transport, parsing, exchange down: the outcome is unknown
            raise VenueUnavailable(f"{name} failed: {exc}") from exc

    # ------------------------------------------------------------------ the Venue protocol

    def now_ns(self) -> int:
        return int(self.exchange.milliseconds()) * NS_PER_MS

    def filters(self, market: str) -> MarketFilters:
        if market not in self._filters:
            info = self.exchange.market(self._symbol(market))
            tick, lot = self._step(info["precision"]["price"]), self._step(info["precision"]["amount"])
            limits = info["limits"]
            self._filters[market] = MarketFilters(
                market=market,
                tick_size=tick,
                lot_size=lot,
                min_qty_lots=int(_dec(limits["amount"]["min"] or lot) / lot),
                max_qty_lots=int(_dec(limits["amount"]["max"] or 10**12) / lot),
                min_notional=_dec(limits["cost"]["min"] or 0),
                maker_fee_bps=_dec(info.get("maker") or 0) * 10_000,
                taker_fee_bps=_dec(info.get("taker") or 0) * 10_000,
            )
        return self._filters[market]

    def book(self, market: str, depth: int = 20) -> BookSnapshot:
        f = self.filters(market)
        book = self._call("fetch_order_book", self._symbol(market), depth)
        return BookSnapshot(
            market=market,
            ts_ns=int(book.get("timestamp") or self.exchange.milliseconds()) * NS_PER_MS,
            bids=tuple(BookLevel(self._ticks(f, p), self._lots(f, q)) for p, q, *_ in book["bids"]),
            asks=tuple(BookLevel(self._ticks(f, p), self._lots(f, q)) for p, q, *_ in book["asks"]),
        )

    def prices(self, market: str) -> Prices:
        f = self.filters(market)
        symbol = self._symbol(market)
        ticker = self._call("fetch_ticker", symbol)
        mark = index = None
        if self.exchange.has.get("fetchMarkPrice"):
            quote = self._call("fetch_mark_price", symbol)
            mark, index = quote.get("markPrice"), quote.get("indexPrice")
        return Prices(
            mark_ticks=None if mark is None else self._ticks(f, mark),
            index_ticks=None if index is None else self._ticks(f, index),
            last_ticks=None if ticker.get("last") is None else self._ticks(f, ticker["last"]),
        )

    def candles(self, market: str, interval_s: int, since_ns: int, until_ns: int) -> list[Candle]:
        f = self.filters(market)
        timeframe = TIMEFRAMES.get(interval_s)
        if timeframe is None:
            raise ValueError(f"interval_s must be one of {sorted(TIMEFRAMES)}, was {interval_s}")
        bars: list[Candle] = []
        since_ms = since_ns // NS_PER_MS
        while since_ms * NS_PER_MS < until_ns:
            rows = self._call("fetch_ohlcv", self._symbol(market), timeframe, since_ms, 1000)
            fresh = [r for r in rows if r[0] >= since_ms and r[0] * NS_PER_MS < until_ns]
            for t, o, h, low, c, v in (r[:6] for r in fresh):
                bars.append(
                    Candle(
                        open_ns=t * NS_PER_MS,
                        close_ns=(t + interval_s * 1000) * NS_PER_MS,
                        volume_lots=self._lots(f, v),
                        open_ticks=self._ticks(f, o),
                        high_ticks=self._ticks(f, h),
                        low_ticks=self._ticks(f, low),
                        close_ticks=self._ticks(f, c),
                    )
                )
            if len(rows) < 1000 or not fresh:
                break
            since_ms = fresh[-1][0] + interval_s * 1000
        return bars

    def public_trades(self, market: str, since_ns: int) -> list[PublicTrade]:
        f = self.filters(market)
        trades = self._call("fetch_trades", self._symbol(market), since_ns // NS_PER_MS, 1000)
        return [
            PublicTrade(
                trade_id=str(t["id"]),
                ts_ns=int(t["timestamp"]) * NS_PER_MS,
                price_ticks=self._ticks(f, t["price"]),
                qty_lots=self._lots(f, t["amount"]),
            )
            for t in trades
            if int(t["timestamp"]) * NS_PER_MS >= since_ns
        ]

    def place(self, child: ChildOrder) -> ChildAck:
        f = self.filters(child.market)
        params: dict[str, Any] = {"newClientOrderId": child.client_order_id}
        if child.reduce_only:
            params["reduceOnly"] = True
        amount = float(child.qty_lots * f.lot_size)
        if child.price_ticks is None:
            kind, price = "market", None
        else:
            kind, price = "limit", float(child.price_ticks * f.tick_size)
            params["timeInForce"] = child.tif.value
        try:
            order = self._call(
                "create_order", self._symbol(child.market), kind, child.side.value, amount, price, params
            )
        except _REFUSALS as exc:
            return ChildAck(
                client_order_id=child.client_order_id,
                accepted=False,
                code=type(exc).__name__,
                message=str(exc),
            )
        self._cid_by_order[str(order["id"])] = child.client_order_id
        return ChildAck(client_order_id=child.client_order_id, accepted=True, order_id=str(order["id"]))

    def cancel(self, market: str, client_order_id: str) -> bool:
        try:
            self._call("cancel_order", None, self._symbol(market), {"origClientOrderId": client_order_id})
        except (ccxt.OrderNotFound, *_REFUSALS):
            return False
        return True

    def _state(self, market: str, order: dict[str, Any]) -> ChildState:
        f = self.filters(market)
        cid = str(order.get("clientOrderId") or self._cid_by_order.get(str(order["id"]), ""))
        self._cid_by_order[str(order["id"])] = cid
        status = _STATUS.get(str(order.get("status")), ChildStatus.OPEN)
        qty = self._lots(f, order["amount"])
        filled = self._lots(f, order.get("filled") or 0)
        if status is ChildStatus.FILLED and filled < qty:
            status = ChildStatus.CANCELED  # an IOC remainder that expired is "closed" in ccxt
        return ChildState(
            client_order_id=cid,
            order_id=str(order["id"]),
            market=market,
            side=ParentSide(order["side"]),
            qty_lots=qty,
            filled_lots=filled,
            price_ticks=None if order.get("price") is None else self._ticks(f, order["price"]),
            status=status,
        )

    def order(self, market: str, client_order_id: str) -> ChildState | None:
        try:
            order = self._call(
                "fetch_order", None, self._symbol(market), {"origClientOrderId": client_order_id}
            )
        except (ccxt.OrderNotFound, *_REFUSALS):
            return None
        return self._state(market, order)

    def open_orders(self, market: str) -> list[ChildState]:
        return [self._state(market, o) for o in self._call("fetch_open_orders", self._symbol(market))]

    def fills(self, market: str, since_ns: int) -> list[Fill]:
        f = self.filters(market)
        trades = self._call("fetch_my_trades", self._symbol(market), since_ns // NS_PER_MS, 1000)
        fills = []
        for t in trades:
            cid = self._cid_by_order.get(str(t["order"]))
            if cid is None:
                found = self._call("fetch_order", str(t["order"]), self._symbol(market))
                cid = self._state(market, found).client_order_id
            fee = t.get("fee") or {}
            fills.append(
                Fill(
                    trade_id=str(t["id"]),
                    client_order_id=cid,
                    ts_ns=int(t["timestamp"]) * NS_PER_MS,
                    price_ticks=self._ticks(f, t["price"]),
                    qty_lots=self._lots(f, t["amount"]),
                    fee=_dec(fee.get("cost") or 0),
                    is_maker=t.get("takerOrMaker") == "maker",
                )
            )
        return fills
