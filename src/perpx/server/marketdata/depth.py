"""The ``depth`` component: each market's book update id and per-batch level diffs, in memory.

See :mod:`perpx.server.marketdata` for the update-id rules the depth streams rely on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from perpx.engine.book import BookSide
from perpx.engine.config import VenueConfig
from perpx.engine.engine import Engine
from perpx.engine.events import OrderAccepted, OrderAmended, OrderCanceled, OrderExpired, OrderFilled
from perpx.engine.values import MarketId, OrderId, Side
from perpx.server.sequencer import Applied


@dataclass(frozen=True, slots=True)
class DepthDiff:
    """The levels of one market a batch changed: ``(price_ticks, total_lots)``, 0 removes a level."""

    market: MarketId
    first_seq: int
    last_seq: int
    previous_seq: int
    ts_ns: int
    bids: list[tuple[int, int]]
    asks: list[tuple[int, int]]


@dataclass(frozen=True, slots=True)
class BookTop:
    """Best bid and ask (``None`` when a side is empty) after update ``update_id``."""

    market: MarketId
    update_id: int
    ts_ns: int
    bid: tuple[int, int] | None
    ask: tuple[int, int] | None


@dataclass(frozen=True, slots=True)
class DepthSnapshot:
    """A book read in one piece: its levels, best first, and the update id they include."""

    market: MarketId
    update_id: int
    now_ns: int
    bids: list[tuple[int, int]]
    asks: list[tuple[int, int]]


@dataclass(frozen=True, slots=True)
class BookChanges:
    """What one batch did to the books: the diff of each market it changed, and the tops that moved.

    :meth:`DepthTracker.on_applied` returns it to whoever feeds the tracker, which hands it to the
    depth streams (:meth:`perpx.server.streams.StreamHub.on_applied`): the streams never read the
    tracker's state to learn what the last batch did.
    """

    diffs: list[DepthDiff]
    tops: list[BookTop]


NO_CHANGES = BookChanges([], [])


def _level_lots(side: BookSide, price: int) -> int:
    level = side.levels.get(price)
    return 0 if level is None else sum(order.leaves_lots for order in level.values())


class DepthTracker:
    """The ``depth`` component: book update ids and per-batch level diffs (see the module doc).

    It runs in the sequencer's pipeline only (``on_applied`` and inside ``seq.query``), so it may read the
    engine's books directly. ``engine_of`` gives the running engine; ``last_seq_of`` the journal's
    last record (the starting update id of every market).
    """

    def __init__(
        self, config: VenueConfig, engine_of: Callable[[], Engine], last_seq_of: Callable[[], int]
    ) -> None:
        self.markets = tuple(config.markets)
        self._engine_of = engine_of
        self._last_seq_of = last_seq_of
        self._ready = False
        self.book_update_id: dict[MarketId, int] = {}
        self.last_bounds: dict[MarketId, tuple[int, int, int]] = {}
        """``(U, u, pu)`` of each market's latest diff (partial-depth events carry them)."""
        self._orders: dict[OrderId, tuple[MarketId, Side, int]] = {}
        self._shadow: dict[MarketId, tuple[dict[int, int], dict[int, int]]] = {}
        self._tops: dict[MarketId, tuple[tuple[int, int] | None, tuple[int, int] | None]] = {}

    def resume_seq(self) -> int | None:
        return None

    def close(self) -> None:
        pass

    def _ensure(self, engine: Engine, last_seq: int) -> None:
        if self._ready:
            return
        self._ready = True
        for market in self.markets:
            book = engine.books[market]
            self._shadow[market] = (dict(book.bids.depth()), dict(book.asks.depth()))
            self._tops[market] = (_best(book.bids), _best(book.asks))
            self.book_update_id[market] = last_seq
        for order_id, order in engine.orders.items():
            self._orders[order_id] = (order.market, order.side, order.price_ticks)

    def snapshot(self, engine: Engine, market: MarketId, limit: int | None) -> DepthSnapshot:
        """The book of ``market`` now and its ``lastUpdateId`` (call in the sequencer's pipeline)."""
        self._ensure(engine, self._last_seq_of())
        book = engine.books[market]
        return DepthSnapshot(
            market, self.book_update_id[market], engine.now_ns, book.bids.depth(limit), book.asks.depth(limit)
        )

    def top(self, engine: Engine, market: MarketId) -> BookTop:
        """Best bid and ask of ``market`` now (call in the sequencer's pipeline)."""
        self._ensure(engine, self._last_seq_of())
        bid, ask = self._tops[market]
        return BookTop(market, self.book_update_id[market], engine.now_ns, bid, ask)

    def on_applied(self, batch: list[Applied]) -> BookChanges:
        """Move the update ids past ``batch`` and return the levels and tops it changed."""
        engine = self._engine_of()
        if not self._ready:
            self._ensure(engine, batch[-1].seq)
            return NO_CHANGES
        diffs: list[DepthDiff] = []
        tops: list[BookTop] = []
        touched: dict[MarketId, dict[tuple[Side, int], None]] = {}
        seqs: dict[MarketId, list[int]] = {}
        orders = self._orders

        def touch(market: MarketId, side: Side, price: int, seq: int) -> None:
            touched.setdefault(market, {})[(side, price)] = None
            bounds = seqs.get(market)
            if bounds is None:
                seqs[market] = [seq, seq]
            else:
                bounds[1] = seq

        for applied in batch:
            seq = applied.seq
            for event in applied.events:
                if isinstance(event, OrderFilled):
                    if event.is_maker:
                        touch(event.market, event.side, event.price_ticks, seq)
                    if event.leaves_lots == 0:
                        orders.pop(event.order_id, None)
                elif isinstance(event, OrderAccepted):
                    if event.price_ticks is not None:
                        orders[event.order_id] = (event.market, event.side, event.price_ticks)
                        touch(event.market, event.side, event.price_ticks, seq)
                elif isinstance(event, OrderCanceled | OrderExpired):
                    found = orders.pop(event.order_id, None)
                    if found is not None:
                        touch(*found, seq)
                elif isinstance(event, OrderAmended):
                    found = orders.get(event.order_id)
                    if found is not None:
                        market, side, old_price = found
                        touch(market, side, old_price, seq)
                        orders[event.order_id] = (market, side, event.price_ticks)
                        touch(market, side, event.price_ticks, seq)
        ts_ns = batch[-1].command.ts_ns
        for market, levels in touched.items():
            book = engine.books[market]
            shadow_bids, shadow_asks = self._shadow[market]
            bids: list[tuple[int, int]] = []
            asks: list[tuple[int, int]] = []
            for side, price in levels:
                if side is Side.BUY:
                    shadow, book_side, out = shadow_bids, book.bids, bids
                else:
                    shadow, book_side, out = shadow_asks, book.asks, asks
                lots = _level_lots(book_side, price)
                if shadow.get(price, 0) == lots:
                    continue
                if lots:
                    shadow[price] = lots
                else:
                    del shadow[price]
                out.append((price, lots))
            if not bids and not asks:
                continue
            bids.sort(reverse=True)
            asks.sort()
            first, last = seqs[market]
            previous = self.book_update_id[market]
            self.book_update_id[market] = last
            self.last_bounds[market] = (first, last, previous)
            diffs.append(DepthDiff(market, first, last, previous, ts_ns, bids, asks))
            top = (_best(book.bids), _best(book.asks))
            if top != self._tops[market]:
                self._tops[market] = top
                tops.append(BookTop(market, last, ts_ns, top[0], top[1]))
        return BookChanges(diffs, tops) if diffs else NO_CHANGES


def _best(side: BookSide) -> tuple[int, int] | None:
    price = side.best_price()
    return None if price is None else (price, _level_lots(side, price))
