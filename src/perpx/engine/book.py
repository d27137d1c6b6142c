"""The order book of one market: price levels in price-time priority.

Layout
------
Each side keeps ``levels``: a dict from price (ticks) to a FIFO queue of
orders, itself a dict ``OrderId -> Order`` (dicts keep insertion order, pop
and delete by key in O(1)), and ``keys``: the level prices as a sorted list of
*sign-adjusted* keys (``+price`` for bids, ``-price`` for asks), so the best
price of either side is always ``keys[-1]`` and removing the best level is a
``pop()``.

Invariants (checked by :mod:`perpx.engine.invariants`)
------------------------------------------------------
* every level in ``levels`` is non-empty and has its key in ``keys``;
* ``best_bid < best_ask`` whenever both exist (the book never rests crossed);
* an order's position in its level queue is its time priority.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator
from typing import Final

from perpx.engine.commands import OrderType, StpMode, TimeInForce
from perpx.engine.values import AccountId, ClientOrderId, MarketId, OrderId, Side

_BUY: Final = Side.BUY  # a constant, not a module lookup, when compiled with mypyc


class Order:
    """A live order, owned and mutated by the engine only (never leaves it: events copy fields)."""

    __slots__ = (
        "account_id",
        "client_order_id",
        "fee_free",
        "filled_lots",
        "market",
        "order_id",
        "order_type",
        "price_ticks",
        "qty_lots",
        "reduce_only",
        "side",
        "stp",
        "tif",
        "ts_ns",
    )

    def __init__(
        self,
        order_id: OrderId,
        account_id: AccountId,
        market: MarketId,
        side: Side,
        order_type: OrderType,
        tif: TimeInForce,
        price_ticks: int,
        qty_lots: int,
        reduce_only: bool,
        client_order_id: ClientOrderId | None,
        stp: StpMode,
        ts_ns: int,
        fee_free: bool = False,
    ) -> None:
        self.order_id = order_id
        self.fee_free = fee_free
        """A liquidation order: the clearance fee replaces its trading fee."""
        self.account_id = account_id
        self.market = market
        self.side = side
        self.order_type = order_type
        self.tif = tif
        self.price_ticks = price_ticks
        self.qty_lots = qty_lots
        self.filled_lots = 0
        self.reduce_only = reduce_only
        self.client_order_id = client_order_id
        self.stp = stp
        self.ts_ns = ts_ns

    @property
    def leaves_lots(self) -> int:
        return self.qty_lots - self.filled_lots

    def __repr__(self) -> str:
        return (
            f"Order({self.order_id} {self.side.name} {self.leaves_lots}/{self.qty_lots}"
            f" @ {self.price_ticks} acct={self.account_id})"
        )


class BookSide:
    """One side of a book. ``sign`` is +1 for bids and -1 for asks.

    ``keys`` holds ``price x sign`` of every level, ascending (the best level last); ``best`` is
    the best level itself (``levels[keys[-1] x sign]``, or None when the side is empty), kept by
    :meth:`add` and :meth:`remove` so the head of the book costs no lookup.
    """

    __slots__ = ("best", "keys", "levels", "sign")

    def __init__(self, sign: int) -> None:
        self.sign = sign
        self.levels: dict[int, dict[OrderId, Order]] = {}
        self.keys: list[int] = []
        self.best: dict[OrderId, Order] | None = None

    def best_price(self) -> int | None:
        """Best price in ticks, or ``None`` when the side is empty."""
        keys = self.keys
        if not keys:
            return None
        return keys[-1] if self.sign > 0 else -keys[-1]

    def head(self) -> Order | None:
        """The order with the highest priority on this side."""
        best = self.best
        if best is None:
            return None
        for order in best.values():
            return order  # the level's first order: dicts keep insertion (time) order
        return None  # unreachable: a level is never empty

    def add(self, order: Order) -> None:
        """Queue ``order`` at the back of its price level."""
        price = order.price_ticks
        level = self.levels.get(price)
        if level is None:
            level = self.levels[price] = {}
            key = price if self.sign > 0 else -price
            keys = self.keys
            insort(keys, key)
            if keys[-1] == key:
                self.best = level
        level[order.order_id] = order

    def remove(self, order: Order) -> None:
        """Take ``order`` out of its level; drop the level when it empties."""
        price = order.price_ticks
        level = self.levels[price]
        del level[order.order_id]
        if not level:
            del self.levels[price]
            keys = self.keys
            key = price if self.sign > 0 else -price
            if keys[-1] == key:
                keys.pop()
                self.best = self.levels[keys[-1] if self.sign > 0 else -keys[-1]] if keys else None
            else:
                del keys[bisect_left(keys, key)]

    def depth(self, limit: int | None = None) -> list[tuple[int, int]]:
        """``[(price_ticks, total_leaves_lots), ...]`` from the best price outward."""
        out: list[tuple[int, int]] = []
        for key in reversed(self.keys):
            price = key * self.sign
            out.append((price, sum(o.leaves_lots for o in self.levels[price].values())))
            if limit is not None and len(out) >= limit:
                break
        return out

    def orders(self) -> Iterator[Order]:
        """Every order on this side, best level first, in queue order."""
        for key in reversed(self.keys):
            yield from self.levels[key * self.sign].values()


class OrderBook:
    """Bids and asks of one market."""

    __slots__ = ("asks", "bids", "market")

    def __init__(self, market: MarketId) -> None:
        self.market = market
        self.bids = BookSide(+1)
        self.asks = BookSide(-1)

    def side(self, side: Side) -> BookSide:
        """The side an order of ``side`` rests on."""
        return self.bids if side is _BUY else self.asks

    def opposite(self, side: Side) -> BookSide:
        """The side an order of ``side`` trades against."""
        return self.asks if side is _BUY else self.bids

    def is_crossed(self) -> bool:
        bid = self.bids.best_price()
        ask = self.asks.best_price()
        return bid is not None and ask is not None and bid >= ask
