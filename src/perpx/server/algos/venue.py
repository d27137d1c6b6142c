"""The server's own venue as an execution :class:`~perpx.execution.venue.Venue`, for one account.

The algo service (:mod:`perpx.server.algos.service`) works parent orders with the same
:class:`~perpx.execution.runner.ParentRunner` that backtests and ``perpx algo run`` use; this is the
port it trades through. Every method runs inside the sequencer's pipeline (a driver's turn on the
journal thread, or a query between batches), where nothing else touches the engine, so it reads the
engine directly and applies children through the venue's one sequencer: a child is an ordinary
journaled command of the account, in its order history, user data stream and fills.

What it reads
-------------
* books, marks, filters: the engine;
* children and their fills: the trading read model (``orders`` by client order id, ``trades`` by
  order id), which survives a restart, so a resumed runner finds every child the journal holds;
* the tape (POV participation, VWAP candles): the market-data trade store.

Invariants: :meth:`ServerVenue.place` never raises for a business refusal (a rejected ack carries the
engine's code and message); a journal that cannot be written raises
:class:`~perpx.execution.venue.VenueUnavailable`, and the runner keeps the child's id retired.
"""

from __future__ import annotations

from perpx.engine.commands import CancelOrder, PlaceChildOrder, PlaceOrder
from perpx.engine.engine import Engine
from perpx.engine.events import OrderCanceled, OrderRejected
from perpx.engine.values import NS_PER_MS, AccountId, MarketId, OrderId, ParentId
from perpx.execution.inprocess import (
    child_command,
    engine_book,
    engine_filters,
    engine_prices,
    trade_candles,
)
from perpx.execution.model import ParentSide
from perpx.execution.venue import (
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
from perpx.sequencing import Sequencer, SequencerError
from perpx.server.marketdata.trades import TradeStore
from perpx.server.orders_wire import OrderRecord
from perpx.server.readmodel import ReadModel

TAPE_ROWS = 5_000
"""The most recent public trades read for POV participation and VWAP candles."""
FILL_ROWS = 1_000
"""Fills of the account are read in pages of this many rows (every fill since the parent began)."""

_STATUS = {
    "NEW": ChildStatus.OPEN,
    "PARTIALLY_FILLED": ChildStatus.OPEN,
    "FILLED": ChildStatus.FILLED,
}


class ServerVenue:
    """A :class:`~perpx.execution.venue.Venue` on the running server, trading as ``account_id``."""

    def __init__(
        self, core: Sequencer, readmodel: ReadModel, tape: TradeStore, account_id: AccountId
    ) -> None:
        self.core = core
        self.engine: Engine = core.engine
        self.readmodel = readmodel
        self.tape = tape
        self.account_id = account_id
        self._atom = self.engine.config.settlement.atom
        self.parent_id: ParentId | None = None
        """Set: children go as ``PlaceChildOrder`` of this engine parent (its executed lots count them)."""

    # ------------------------------------------------------------------ market

    def now_ns(self) -> int:
        """The venue's time: the stamp its next command gets (the manual clock, or wall time)."""
        return self.core.stamp()

    def filters(self, market: str) -> MarketFilters:
        return engine_filters(self.engine, market)

    def book(self, market: str, depth: int = 20) -> BookSnapshot:
        return engine_book(self.engine, market, depth, self.now_ns())

    def prices(self, market: str) -> Prices:
        return engine_prices(self.engine, market)

    def public_trades(self, market: str, since_ns: int) -> list[PublicTrade]:
        since_ms = since_ns // NS_PER_MS
        return [
            PublicTrade(
                trade_id=str(t.trade_id),
                ts_ns=t.ts_ms * NS_PER_MS,
                price_ticks=t.price_ticks,
                qty_lots=t.qty_lots,
            )
            for t in self.tape.recent_trades(market, TAPE_ROWS)
            if t.ts_ms >= since_ms
        ]

    def candles(self, market: str, interval_s: int, since_ns: int, until_ns: int) -> list[Candle]:
        return trade_candles(self.public_trades(market, since_ns), interval_s, 0, until_ns)  # already since

    # ------------------------------------------------------------------ the account's children

    def place(self, child: ChildOrder) -> ChildAck:
        order = child_command(child, self.account_id, self.core.stamp())
        command: PlaceOrder | PlaceChildOrder = (
            order
            if self.parent_id is None
            else PlaceChildOrder(ts_ns=order.ts_ns, parent_id=self.parent_id, order=order)
        )
        try:
            events = self.core.apply_one(command)
        except SequencerError as exc:
            raise VenueUnavailable(f"the child was not journaled: {exc}") from exc
        for event in events:
            if isinstance(event, OrderRejected) and event.client_order_id == child.client_order_id:
                return ChildAck(
                    client_order_id=child.client_order_id,
                    accepted=False,
                    code=event.code.name,
                    message=event.message,
                )
        record = self._record(child.market, child.client_order_id)
        return ChildAck(
            client_order_id=child.client_order_id,
            accepted=True,
            order_id=None if record is None else str(record.order_id),
        )

    def cancel(self, market: str, client_order_id: str) -> bool:
        record = self._record(market, client_order_id)
        if record is None or not record.is_open:
            return False
        try:
            events = self.core.apply_one(
                CancelOrder(
                    ts_ns=self.core.stamp(),
                    account_id=self.account_id,
                    market=MarketId(market),
                    order_id=OrderId(record.order_id),
                )
            )
        except SequencerError as exc:
            raise VenueUnavailable(f"the cancel was not journaled: {exc}") from exc
        return any(isinstance(e, OrderCanceled) for e in events)

    def order(self, market: str, client_order_id: str) -> ChildState | None:
        record = self._record(market, client_order_id)
        return None if record is None else self._state(record)

    def open_orders(self, market: str) -> list[ChildState]:
        return [self._state(r) for r in self.readmodel.open_orders(int(self.account_id), market)]

    def fills(self, market: str, since_ns: int) -> list[Fill]:
        since_ms = since_ns // NS_PER_MS
        account = int(self.account_id)
        trades = self.readmodel.trades(account, market, 0, since_ms, None, FILL_ROWS)
        while trades and len(trades) % FILL_ROWS == 0:  # every page was full: read the next one
            more = self.readmodel.trades(account, market, trades[-1].trade_id + 1, since_ms, None, FILL_ROWS)
            if not more:
                break
            trades += more
        names: dict[int, str] = {}
        out: list[Fill] = []
        for trade in trades:
            name = names.get(trade.order_id)
            if name is None:
                record = self.readmodel.order(int(self.account_id), market, order_id=trade.order_id)
                name = names[trade.order_id] = "" if record is None else record.client_order_id
            out.append(
                Fill(
                    trade_id=str(trade.trade_id),
                    client_order_id=name,
                    ts_ns=trade.time_ms * NS_PER_MS,
                    price_ticks=trade.price_ticks,
                    qty_lots=trade.qty_lots,
                    fee=trade.fee_atoms * self._atom,
                    is_maker=trade.maker,
                )
            )
        return out

    def _record(self, market: str, client_order_id: str) -> OrderRecord | None:
        return self.readmodel.order(int(self.account_id), market, client_order_id=client_order_id)

    def _state(self, record: OrderRecord) -> ChildState:
        return ChildState(
            client_order_id=record.client_order_id,
            order_id=str(record.order_id),
            market=record.symbol,
            side=ParentSide.BUY if record.side == "BUY" else ParentSide.SELL,
            qty_lots=record.orig_qty_lots,
            filled_lots=record.executed_lots,
            price_ticks=record.price_ticks,
            status=_STATUS.get(record.status, ChildStatus.CANCELED),
        )
