"""A routing venue on the ``Venue`` port: the in-process engine, or whatever implements the port.

So the router runs wherever the algorithms run: in a backtest on :class:`perpx.execution.inprocess.EngineVenue`
and live on any port implementation. The venue's own tick and lot must divide the routing grid's
(a grid lot is a whole number of venue lots), which :meth:`PortRoutingVenue.__init__` checks.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

from perpx.engine.values import Side
from perpx.execution.ids import parse_child_id
from perpx.execution.model import ParentSide
from perpx.execution.venue import ChildOrder, MarketFilters, TimeInForce, Venue, VenueUnavailable

from .executor import Taken, VenueFailed
from .grid import FEE_SCALE_E8, Grid, Level, VenueTerms

_BPS_TO_E8 = FEE_SCALE_E8 // 10_000


def terms_from_filters(
    name: str,
    filters: MarketFilters,
    *,
    max_qty_lots: int | None = None,
    max_notional_units: int | None = None,
) -> VenueTerms:
    """A venue's terms with the taker fee its filters declare (``taker_fee_bps``) and the desk's caps."""
    fee = filters.taker_fee_bps * _BPS_TO_E8
    if fee != fee.to_integral_value():
        raise ValueError(f"{name}: taker fee {filters.taker_fee_bps} bps is finer than 1e-8")
    return VenueTerms(name, int(fee), max_qty_lots=max_qty_lots, max_notional_units=max_notional_units)


class PortRoutingVenue:
    """``market`` on a :class:`~perpx.execution.venue.Venue`, routed under ``terms`` on ``grid``."""

    def __init__(self, venue: Venue, market: str, grid: Grid, terms: VenueTerms) -> None:
        self.venue = venue
        self.market = market
        self.grid = grid
        self._terms = terms
        self.filters = venue.filters(market)
        lots_per_grid_lot = grid.lot_size / self.filters.lot_size
        ticks_per_grid_tick = grid.tick_size / self.filters.tick_size
        if (
            lots_per_grid_lot != lots_per_grid_lot.to_integral_value()
            or ticks_per_grid_tick != ticks_per_grid_tick.to_integral_value()
        ):
            raise ValueError(
                f"{terms.name}: the venue's tick {self.filters.tick_size} and lot {self.filters.lot_size} "
                f"must divide the grid's {grid.tick_size} and {grid.lot_size}"
            )
        self._lots = int(lots_per_grid_lot)
        self._ticks = int(ticks_per_grid_tick)

    @property
    def terms(self) -> VenueTerms:
        return self._terms

    def book(self, side: Side, depth: int) -> tuple[Level, ...]:
        try:
            snapshot = self.venue.book(self.market, depth)
        except VenueUnavailable as exc:
            raise VenueFailed(f"order book unavailable: {exc}") from exc
        merged: dict[int, int] = {}
        for level in snapshot.asks if side is Side.BUY else snapshot.bids:
            lots = self.grid.qty_lots(level.qty_lots * self.filters.lot_size)
            if lots > 0:
                ticks = self.grid.price_ticks(level.price_ticks * self.filters.tick_size, side)
                merged[ticks] = merged.get(ticks, 0) + lots
        try:
            return tuple(Level(t, merged[t]) for t in sorted(merged, reverse=side is Side.SELL))
        except ValueError as exc:
            raise VenueFailed(f"malformed order book: {exc}") from exc

    def take(self, side: Side, qty_lots: int, limit_price_ticks: int, client_order_id: str) -> Taken:
        parsed = parse_child_id(client_order_id)
        child = ChildOrder(
            client_order_id=client_order_id,
            parent_id=client_order_id if parsed is None else parsed[0],
            market=self.market,
            side=ParentSide.BUY if side is Side.BUY else ParentSide.SELL,
            qty_lots=qty_lots * self._lots,
            price_ticks=limit_price_ticks * self._ticks,
            tif=TimeInForce.IOC,
        )
        try:
            since_ns = self.venue.now_ns()
            ack = self.venue.place(child)
        except VenueUnavailable as exc:
            raise self._reconcile(client_order_id, qty_lots, str(exc)) from exc
        if not ack.accepted:
            raise VenueFailed(f"child refused: {ack.code} {ack.message}")
        try:
            return self._taken(client_order_id, since_ns)
        except VenueUnavailable as exc:
            raise VenueFailed(f"fill unknown after the send: {exc}", 0, qty_lots) from exc

    def _reconcile(self, client_order_id: str, qty_lots: int, reason: str) -> VenueFailed:
        try:
            state = self.venue.order(self.market, client_order_id)
        except VenueUnavailable:
            return VenueFailed(f"{reason}; could not reconcile", 0, qty_lots)
        if state is None:
            return VenueFailed(f"{reason}; the venue has no such child", 0, 0)
        return VenueFailed(f"{reason}; reconciled by client id", self._grid_lots(state.filled_lots), 0)

    def _taken(self, client_order_id: str, since_ns: int) -> Taken:
        fills = [f for f in self.venue.fills(self.market, since_ns) if f.client_order_id == client_order_id]
        lots = sum(f.qty_lots for f in fills)
        notional = sum((f.qty_lots * f.price_ticks for f in fills), 0)
        units = (
            Decimal(notional)
            * self.filters.lot_size
            * self.filters.tick_size
            / (self.grid.lot_size * self.grid.tick_size)
        )
        return Taken(self._grid_lots(lots), int(units.to_integral_value(ROUND_CEILING)))

    def _grid_lots(self, venue_lots: int) -> int:
        """Venue lots in grid lots, rounded up (a part-lot fill counts whole: never over-fill the parent)."""
        return -(-venue_lots // self._lots)
