"""A routing venue reached through ccxt: a perpx server (``binanceusdm`` pointed at it) or any exchange.

The adapter is the only place the router meets floats and exceptions from the wire: it puts the book
on the parent's grid (:class:`.grid.Grid`, rounding against the plan), sends immediate-or-cancel limit
children with the router's deterministic client ids, and turns every ccxt error into
:class:`.executor.VenueFailed`. A refused connection means the child never left, so nothing filled.
After any other network error it asks the venue for the child by its client id: found, its fill
counts; "no such order", nothing filled; no answer, the whole child is in doubt.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal
from typing import Any

import ccxt

from perpx.engine.values import Side

from .executor import Taken, VenueFailed
from .grid import Grid, Level, VenueTerms


class CcxtRoutingVenue:
    """``symbol`` on a ccxt ``exchange`` (markets loaded or loadable), under ``terms``."""

    def __init__(self, exchange: Any, symbol: str, grid: Grid, terms: VenueTerms) -> None:
        self.exchange = exchange
        self.symbol = symbol
        self.grid = grid
        self._terms = terms

    @property
    def terms(self) -> VenueTerms:
        return self._terms

    def book(self, side: Side, depth: int) -> tuple[Level, ...]:
        try:
            book = self.exchange.fetch_order_book(self.symbol, depth)
        except ccxt.BaseError as exc:
            raise VenueFailed(f"order book unavailable: {type(exc).__name__}: {exc}") from exc
        try:
            merged: dict[int, int] = {}
            for entry in book["asks" if side is Side.BUY else "bids"]:
                lots = self.grid.qty_lots(entry[1])
                if lots > 0:
                    ticks = self.grid.price_ticks(entry[0], side)
                    merged[ticks] = merged.get(ticks, 0) + lots
            order = sorted(merged, reverse=side is Side.SELL)
            return tuple(Level(ticks, merged[ticks]) for ticks in order)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise VenueFailed(f"malformed order book: {exc}") from exc

    def take(self, side: Side, qty_lots: int, limit_price_ticks: int, client_order_id: str) -> Taken:
        amount = float(self.grid.qty(qty_lots))
        price = float(self.grid.price(limit_price_ticks))
        params = {"timeInForce": "IOC", "clientOrderId": client_order_id}
        try:
            order = self.exchange.create_order(self.symbol, "limit", side.name.lower(), amount, price, params)
        except ccxt.NetworkError as exc:
            reason = f"{type(exc).__name__}: {exc}"
            if _connection_refused(exc):
                raise VenueFailed(f"{reason}; the child was never sent", 0, 0) from exc
            raise self._reconcile(client_order_id, qty_lots, reason) from exc
        except ccxt.BaseError as exc:
            raise VenueFailed(f"child refused: {type(exc).__name__}: {exc}") from exc
        return self._taken(order)

    def _reconcile(self, client_order_id: str, qty_lots: int, reason: str) -> VenueFailed:
        try:
            order = self.exchange.fetch_order("", self.symbol, {"clientOrderId": client_order_id})
        except ccxt.OrderNotFound:
            return VenueFailed(f"{reason}; the venue has no such child", 0, 0)
        except ccxt.BaseError as exc:
            return VenueFailed(f"{reason}; could not reconcile ({type(exc).__name__})", 0, qty_lots)
        if order.get("status") in ("open", None):
            return VenueFailed(f"{reason}; the child is still {order.get('status')}", 0, qty_lots)
        taken = self._taken(order)
        return VenueFailed(f"{reason}; reconciled by client id", taken.filled_lots, 0)

    def _taken(self, order: dict[str, Any]) -> Taken:
        """Filled lots and notional, both rounded up: a venue lot finer than the grid never over-fills."""
        filled = Decimal(repr(order.get("filled") or 0.0)) / self.grid.lot_size
        cost = Decimal(repr(order.get("cost") or 0.0)) / (self.grid.tick_size * self.grid.lot_size)
        return Taken(int(filled.to_integral_value(ROUND_CEILING)), int(cost.to_integral_value(ROUND_CEILING)))


def _connection_refused(exc: BaseException) -> bool:
    """Whether the error chain holds a refused TCP connection (the request cannot have reached the venue)."""
    seen: list[BaseException] = []
    pending: list[object] = [exc]
    while pending and len(seen) < 20:
        item = pending.pop()
        if not isinstance(item, BaseException) or any(item is s for s in seen):
            continue
        if isinstance(item, ConnectionRefusedError):
            return True
        seen.append(item)
        pending += [item.__cause__, item.__context__, getattr(item, "reason", None), *item.args[:1]]
    return False
