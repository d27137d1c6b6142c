"""An in-memory ``Venue`` whose fills, prices and refusals the test decides (the flow rules, isolated)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import msgspec

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

FILTERS = {
    "BTCUSDT": MarketFilters(
        market="BTCUSDT",
        tick_size=Decimal("0.1"),
        lot_size=Decimal("0.001"),
        min_qty_lots=1,
        max_qty_lots=1_000_000,
        min_notional=Decimal(5),
    ),
    "ETHUSDT": MarketFilters(
        market="ETHUSDT",
        tick_size=Decimal("0.01"),
        lot_size=Decimal("0.001"),
        min_qty_lots=1,
        max_qty_lots=1_000_000,
        min_notional=Decimal(5),
    ),
}


@dataclass
class MemVenue:
    now: int = 1_767_225_600_000_000_000
    marks: dict[str, int] = field(default_factory=lambda: {"BTCUSDT": 600_000, "ETHUSDT": 300_000})
    orders: dict[str, ChildState] = field(default_factory=dict)
    sent: list[ChildOrder] = field(default_factory=list)
    trades: list[Fill] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    """Client order ids the venue rejects."""
    down: bool = False
    lose_next_answer: bool = False
    """The next ``place`` reaches the venue, then the connection drops: no answer, and the venue is down."""

    def now_ns(self) -> int:
        return self.now

    def filters(self, market: str) -> MarketFilters:
        return FILTERS[market]

    def book(self, market: str, depth: int = 20) -> BookSnapshot:
        mark = self.marks[market]
        return BookSnapshot(
            market=market, ts_ns=self.now, bids=(BookLevel(mark - 1, 10),), asks=(BookLevel(mark + 1, 10),)
        )

    def prices(self, market: str) -> Prices:
        self._up()
        mark = self.marks[market]
        return Prices(mark_ticks=mark, index_ticks=mark, last_ticks=mark)

    def candles(self, market: str, interval_s: int, since_ns: int, until_ns: int) -> list[Candle]:
        return []

    def public_trades(self, market: str, since_ns: int) -> list[PublicTrade]:
        return []

    def place(self, child: ChildOrder) -> ChildAck:
        self._up()
        self.sent.append(child)
        if child.client_order_id in self.refuse:
            return ChildAck(
                client_order_id=child.client_order_id,
                accepted=False,
                code="-2019",
                message="Margin is insufficient.",
            )
        self.orders[child.client_order_id] = ChildState(
            client_order_id=child.client_order_id,
            order_id=str(len(self.sent)),
            market=child.market,
            side=child.side,
            qty_lots=child.qty_lots,
            filled_lots=0,
            price_ticks=child.price_ticks,
            status=ChildStatus.OPEN,
        )
        if self.lose_next_answer:
            self.lose_next_answer, self.down = False, True
            raise VenueUnavailable("read timed out")
        return ChildAck(client_order_id=child.client_order_id, accepted=True, order_id=str(len(self.sent)))

    def cancel(self, market: str, client_order_id: str) -> bool:
        self._up()
        state = self.orders.get(client_order_id)
        if state is None or state.status is not ChildStatus.OPEN:
            return False
        self.orders[client_order_id] = _with(state, status=ChildStatus.CANCELED)
        return True

    def order(self, market: str, client_order_id: str) -> ChildState | None:
        self._up()
        return self.orders.get(client_order_id)

    def open_orders(self, market: str) -> list[ChildState]:
        return [o for o in self.orders.values() if o.market == market and o.status is ChildStatus.OPEN]

    def fills(self, market: str, since_ns: int) -> list[Fill]:
        return [
            f for f in self.trades if f.ts_ns >= since_ns and self.orders[f.client_order_id].market == market
        ]

    # ------------------------------------------------------------------ test controls

    def fill(self, client_order_id: str, lots: int, price_ticks: int) -> None:
        state = self.orders[client_order_id]
        filled = state.filled_lots + lots
        assert filled <= state.qty_lots
        status = ChildStatus.FILLED if filled == state.qty_lots else ChildStatus.OPEN
        self.orders[client_order_id] = _with(state, filled_lots=filled, status=status)
        self.trades.append(
            Fill(
                trade_id=str(len(self.trades)),
                client_order_id=client_order_id,
                ts_ns=self.now,
                price_ticks=price_ticks,
                qty_lots=lots,
                fee=Decimal(0),
                is_maker=True,
            )
        )

    def working(self) -> list[str]:
        return [cid for cid, o in self.orders.items() if o.status is ChildStatus.OPEN]

    def _up(self) -> None:
        if self.down:
            raise VenueUnavailable("connection refused")


def _with(state: ChildState, **changes: object) -> ChildState:
    return msgspec.structs.replace(state, **changes)
