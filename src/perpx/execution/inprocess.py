"""The in-process venue: perpx's own engine, driven through its sequencer, as a :class:`~.venue.Venue`.

Backtests and tests use it: the strategy code is the one that runs live, the matching, fees,
filters and risk checks are the real engine's. It reads the engine's state (books, marks) and
follows its events through a sequencer listener, so it sees every trade (the tape, for POV and
candles) and every event of its account's orders (children, by client order id).

Time is the caller's: ``clock`` gives the ``ts_ns`` of the commands it sends and its
:meth:`EngineVenue.now_ns` (a simulation's clock in a backtest). Construct it before the market's
history you want it to know (VWAP profiles and IS volatility read the candles it recorded).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from perpx.engine.commands import CancelOrder, OrderType, PlaceOrder
from perpx.engine.commands import TimeInForce as EngineTif
from perpx.engine.engine import Engine
from perpx.engine.events import (
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
)
from perpx.engine.values import AccountId, ClientOrderId, MarketId, OrderId, Side
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
    TimeInForce,
)
from perpx.sequencing import Applied, Sequencer

_TIF = {TimeInForce.GTC: EngineTif.GTC, TimeInForce.IOC: EngineTif.IOC, TimeInForce.POST_ONLY: EngineTif.GTX}
_SIDE = {ParentSide.BUY: Side.BUY, ParentSide.SELL: Side.SELL}


def engine_filters(engine: Engine, market: str) -> MarketFilters:
    """A market's trading filters as an algorithm sees them (fees: the base tier's, in bps)."""
    spec = engine.specs[MarketId(market)]
    tier = engine.fee_tiers[0]
    return MarketFilters(
        market=market,
        tick_size=spec.tick_size,
        lot_size=spec.lot_size,
        min_qty_lots=spec.min_qty_lots,
        max_qty_lots=spec.max_qty_lots,
        min_notional=spec.min_notional_atoms * engine.config.settlement.atom,
        maker_fee_bps=Decimal(tier.maker_e8) / 10_000,
        taker_fee_bps=Decimal(tier.taker_e8) / 10_000,
    )


def engine_book(engine: Engine, market: str, depth: int, ts_ns: int) -> BookSnapshot:
    """The top ``depth`` levels of a market's book, stamped ``ts_ns``."""
    book = engine.books[MarketId(market)]
    return BookSnapshot(
        market=market,
        ts_ns=ts_ns,
        bids=tuple(BookLevel(p, q) for p, q in book.bids.depth(depth)),
        asks=tuple(BookLevel(p, q) for p, q in book.asks.depth(depth)),
    )


def engine_prices(engine: Engine, market: str) -> Prices:
    """A market's mark, index and last trade price (ticks; ``None`` while unknown)."""
    m = MarketId(market)
    return Prices(
        mark_ticks=engine.marks.get(m),
        index_ticks=engine.indexes.get(m),
        last_ticks=engine.last_trade_ticks.get(m),
    )


def trade_candles(
    trades: Iterable[PublicTrade], interval_s: int, since_ns: int, until_ns: int
) -> list[Candle]:
    """Candles of ``interval_s`` built from the trades in ``[since_ns, until_ns)`` (in time order)."""
    width = interval_s * 1_000_000_000
    bars: dict[int, list[PublicTrade]] = {}
    for trade in trades:
        if since_ns <= trade.ts_ns < until_ns:
            bars.setdefault(trade.ts_ns // width * width, []).append(trade)
    return [
        Candle(
            open_ns=start,
            close_ns=start + width,
            volume_lots=sum(t.qty_lots for t in trades),
            open_ticks=trades[0].price_ticks,
            high_ticks=max(t.price_ticks for t in trades),
            low_ticks=min(t.price_ticks for t in trades),
            close_ticks=trades[-1].price_ticks,
        )
        for start, trades in sorted(bars.items())
    ]


def child_command(child: ChildOrder, account_id: AccountId, ts_ns: int) -> PlaceOrder:
    """The engine order a child is: a market child is IOC, a priced one keeps its time in force."""
    return PlaceOrder(
        ts_ns=ts_ns,
        account_id=account_id,
        market=MarketId(child.market),
        side=_SIDE[child.side],
        order_type=OrderType.MARKET if child.price_ticks is None else OrderType.LIMIT,
        qty_lots=child.qty_lots,
        price_ticks=child.price_ticks,
        tif=EngineTif.IOC if child.price_ticks is None else _TIF[child.tif],
        reduce_only=child.reduce_only,
        client_order_id=ClientOrderId(child.client_order_id),
    )


@dataclass
class _Child:
    client_order_id: str
    order_id: OrderId | None
    market: str
    side: ParentSide
    qty_lots: int
    price_ticks: int | None
    filled_lots: int = 0
    status: ChildStatus = ChildStatus.OPEN

    def state(self) -> ChildState:
        return ChildState(
            client_order_id=self.client_order_id,
            order_id="" if self.order_id is None else str(self.order_id),
            market=self.market,
            side=self.side,
            qty_lots=self.qty_lots,
            filled_lots=self.filled_lots,
            price_ticks=self.price_ticks,
            status=self.status,
        )


class EngineVenue:
    """A :class:`~.venue.Venue` on a perpx engine, trading as ``account_id`` (module docstring)."""

    def __init__(self, sequencer: Sequencer, account_id: AccountId, clock: Callable[[], int]) -> None:
        self.sequencer = sequencer
        self.engine: Engine = sequencer.engine
        self.account_id = account_id
        self.clock = clock
        self._children: dict[str, _Child] = {}
        self._by_order: dict[OrderId, _Child] = {}
        self._fills: dict[str, list[Fill]] = {}
        self._tape: dict[str, list[PublicTrade]] = {}
        self._atom = self.engine.config.settlement.atom
        sequencer.add_listener(self._observe)

    # ------------------------------------------------------------------ following the engine

    def _observe(self, batch: list[Applied]) -> None:
        for applied in batch:
            for event in applied.events:
                if isinstance(event, OrderFilled):
                    self._filled(event)
                elif event.__class__ in (OrderAccepted, OrderRejected, OrderCanceled, OrderExpired):
                    self._order_event(event)

    def _filled(self, event: OrderFilled) -> None:
        if not event.is_maker:  # one taker fill per trade: the tape
            self._tape.setdefault(event.market, []).append(
                PublicTrade(
                    trade_id=str(event.trade_id),
                    ts_ns=event.ts_ns,
                    price_ticks=event.price_ticks,
                    qty_lots=event.qty_lots,
                )
            )
        child = self._by_order.get(event.order_id) if event.account_id == self.account_id else None
        if child is None:
            return
        child.filled_lots += event.qty_lots
        if event.leaves_lots == 0:
            child.status = ChildStatus.FILLED
        self._fills.setdefault(event.market, []).append(
            Fill(
                trade_id=str(event.trade_id),
                client_order_id=child.client_order_id,
                ts_ns=event.ts_ns,
                price_ticks=event.price_ticks,
                qty_lots=event.qty_lots,
                fee=event.fee_atoms * self._atom,
                is_maker=event.is_maker,
            )
        )

    def _order_event(self, event: object) -> None:
        if isinstance(event, OrderAccepted):
            if event.account_id != self.account_id or event.client_order_id is None:
                return
            child = self._children.get(event.client_order_id)
            if child is not None:
                child.order_id = event.order_id
                self._by_order[event.order_id] = child
        elif isinstance(event, OrderRejected):
            if event.account_id == self.account_id and event.client_order_id in self._children:
                self._children[event.client_order_id].status = ChildStatus.REJECTED
        elif isinstance(event, OrderCanceled | OrderExpired) and event.account_id == self.account_id:
            child = self._by_order.get(event.order_id)
            if child is not None and child.status is ChildStatus.OPEN:
                child.status = ChildStatus.CANCELED

    # ------------------------------------------------------------------ the Venue protocol

    def now_ns(self) -> int:
        return self.clock()

    def filters(self, market: str) -> MarketFilters:
        return engine_filters(self.engine, market)

    def book(self, market: str, depth: int = 20) -> BookSnapshot:
        return engine_book(self.engine, market, depth, self.clock())

    def prices(self, market: str) -> Prices:
        return engine_prices(self.engine, market)

    def candles(self, market: str, interval_s: int, since_ns: int, until_ns: int) -> list[Candle]:
        return trade_candles(self._tape.get(market, []), interval_s, since_ns, until_ns)

    def public_trades(self, market: str, since_ns: int) -> list[PublicTrade]:
        return [t for t in self._tape.get(market, []) if t.ts_ns >= since_ns]

    def place(self, child: ChildOrder) -> ChildAck:
        if child.client_order_id in self._children:
            return ChildAck(
                client_order_id=child.client_order_id,
                accepted=False,
                code="DUPLICATE",
                message="client order id already used",
            )
        record = _Child(
            child.client_order_id, None, child.market, child.side, child.qty_lots, child.price_ticks
        )
        self._children[child.client_order_id] = record
        events = self.sequencer.apply_one(child_command(child, self.account_id, self.clock()))
        for event in events:
            if isinstance(event, OrderRejected) and event.client_order_id == child.client_order_id:
                return ChildAck(
                    client_order_id=child.client_order_id,
                    accepted=False,
                    code=event.code.name,
                    message=event.message,
                )
        return ChildAck(client_order_id=child.client_order_id, accepted=True, order_id=str(record.order_id))

    def cancel(self, market: str, client_order_id: str) -> bool:
        child = self._children.get(client_order_id)
        if child is None or child.status is not ChildStatus.OPEN or child.order_id is None:
            return False
        events = self.sequencer.apply_one(
            CancelOrder(
                ts_ns=self.clock(),
                account_id=self.account_id,
                market=MarketId(market),
                order_id=child.order_id,
            )
        )
        return any(isinstance(e, OrderCanceled) for e in events)

    def order(self, market: str, client_order_id: str) -> ChildState | None:
        child = self._children.get(client_order_id)
        return None if child is None else child.state()

    def open_orders(self, market: str) -> list[ChildState]:
        return [
            c.state() for c in self._children.values() if c.market == market and c.status is ChildStatus.OPEN
        ]

    def fills(self, market: str, since_ns: int) -> list[Fill]:
        return [f for f in self._fills.get(market, []) if f.ts_ns >= since_ns]
