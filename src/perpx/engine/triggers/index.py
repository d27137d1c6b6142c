"""The index of untriggered orders: what is due at a price in ``O(log n + fired)`` (see the package doc)."""

from __future__ import annotations

from bisect import bisect_left, insort
from typing import TYPE_CHECKING, Final, Protocol

from perpx.engine.commands import (
    WorkingType,
)
from perpx.engine.values import (
    AlgoId,
    MarketId,
    Side,
)

if TYPE_CHECKING:
    pass
from perpx.engine.triggers.order import FALL, RISE, ConditionalOrder, reached


class ConditionalIndex(Protocol):
    """Where untriggered orders wait; :meth:`observe` says which fire at a price."""

    def add(self, order: ConditionalOrder) -> None: ...

    def remove(self, order: ConditionalOrder) -> None: ...

    def holds(self, market: MarketId) -> bool: ...

    def observe(
        self, market: MarketId, working_type: WorkingType, price: int, protected_too: bool
    ) -> list[ConditionalOrder]:
        """Show ``price`` to the orders watching it; return those that fire, out of the index.

        Pending trailing stops that reach their activation price become active,
        and active ones move their extreme. ``protected_too=False`` hides the
        price from price-protected orders. The result is in ``algo_id`` order.
        """
        ...


LevelKey = tuple[MarketId, WorkingType, bool, int]
"""``(market, working_type, price_protect, direction)`` of one sorted level list."""
TrailingKey = tuple[MarketId, WorkingType, bool, int]
"""``(market, working_type, price_protect, side)`` of one group of active trailing stops."""

_UNBOUNDED: Final = (-(1 << 62), 1 << 62)


def quiet_range(order: ConditionalOrder) -> tuple[int, int]:
    """Prices (inclusive) at which an active trailing stop neither moves its extreme nor fires.

    SELL (max ``M``, level ``L``): ``L < price <= M``; BUY (min ``M``, level ``L``): ``M <= price < L``.
    """
    level = order.trailing_level()
    if order.side is Side.SELL:
        return level + 1, order.extreme_ticks
    return order.extreme_ticks, level - 1


class TriggerIndex:
    """Untriggered orders in sorted lists by level, and active trailing stops in small groups.

    ``levels[key]`` is sorted ``(-direction x level, algo_id)``: the entries due
    at ``price`` are those with ``entry >= (-direction x price,)``, a suffix.

    ``trailing[key]`` holds the active trailing stops of one market, working
    type, protection flag and side; ``quiet[key]`` is a price range inside every
    member's :func:`quiet_range`, so a price in it costs nothing. It is exact
    after each scan of the group, narrowed when a stop joins, and left as it
    is when one leaves (still safe, only narrower).
    """

    __slots__ = ("_orders_by_id", "counts", "levels", "quiet", "trailing")

    def __init__(self) -> None:
        self.levels: dict[LevelKey, list[tuple[int, AlgoId]]] = {}
        self.trailing: dict[TrailingKey, dict[AlgoId, ConditionalOrder]] = {}
        self.quiet: dict[TrailingKey, tuple[int, int]] = {}
        self.counts: dict[MarketId, int] = {}
        self._orders_by_id: dict[AlgoId, ConditionalOrder] = {}

    def add(self, order: ConditionalOrder) -> None:
        market = order.market
        self.counts[market] = self.counts.get(market, 0) + 1
        self._orders_by_id[order.algo_id] = order
        if order.is_trailing and order.activated:
            self._activate(order)
            return
        level, direction = order.pending_level()
        lkey = (market, order.working_type, order.price_protect, direction)
        insort(self.levels.setdefault(lkey, []), (-direction * level, order.algo_id))

    def _activate(self, order: ConditionalOrder) -> None:
        key = (order.market, order.working_type, order.price_protect, int(order.side))
        self.trailing.setdefault(key, {})[order.algo_id] = order
        lo, hi = self.quiet.get(key, _UNBOUNDED)
        own_lo, own_hi = quiet_range(order)
        self.quiet[key] = max(lo, own_lo), min(hi, own_hi)

    def remove(self, order: ConditionalOrder) -> None:
        market = order.market
        self.counts[market] -= 1
        del self._orders_by_id[order.algo_id]
        if order.is_trailing and order.activated:
            key = (market, order.working_type, order.price_protect, int(order.side))
            del self.trailing[key][order.algo_id]
            return
        level, direction = order.pending_level()
        entries = self.levels[(market, order.working_type, order.price_protect, direction)]
        entry = (-direction * level, order.algo_id)
        at = bisect_left(entries, entry)
        assert entries[at] == entry
        del entries[at]

    def holds(self, market: MarketId) -> bool:
        return self.counts.get(market, 0) > 0

    def observe(
        self, market: MarketId, working_type: WorkingType, price: int, protected_too: bool
    ) -> list[ConditionalOrder]:
        fired: list[ConditionalOrder] = []
        for protected in (False, True) if protected_too else (False,):
            for direction in (RISE, FALL):
                entries = self.levels.get((market, working_type, protected, direction))
                if not entries:
                    continue
                at = bisect_left(entries, (-direction * price,))
                if at == len(entries):
                    continue
                due = entries[at:]
                del entries[at:]
                for _key, algo_id in due:
                    order = self._orders_by_id[algo_id]
                    if order.is_trailing:  # reached its activation price: becomes active here
                        order.activated = True
                        order.extreme_ticks = price
                        self._activate(order)
                    else:
                        fired.append(order)
            for side in (Side.BUY, Side.SELL):
                key = (market, working_type, protected, int(side))
                group = self.trailing.get(key)
                if group:
                    lo, hi = self.quiet[key]
                    if not lo <= price <= hi:
                        fired.extend(self._scan(key, group, side, price))
        for order in fired:
            self.counts[market] -= 1
            del self._orders_by_id[order.algo_id]
        fired.sort(key=by_algo_id)
        return fired

    def _scan(
        self, key: TrailingKey, group: dict[AlgoId, ConditionalOrder], side: Side, price: int
    ) -> list[ConditionalOrder]:
        """Move the group's extremes to ``price``, take out the stops it fires, recompute the quiet range."""
        done: list[ConditionalOrder] = []
        lo, hi = _UNBOUNDED
        sell = side is Side.SELL
        for order in group.values():
            if (price > order.extreme_ticks) if sell else (price < order.extreme_ticks):
                order.extreme_ticks = price
            elif reached(order.trailing_level(), FALL if sell else RISE, price):
                done.append(order)
                continue
            own_lo, own_hi = quiet_range(order)
            lo, hi = max(lo, own_lo), min(hi, own_hi)
        for order in done:
            del group[order.algo_id]
        self.quiet[key] = lo, hi
        return done


def by_algo_id(order: ConditionalOrder) -> int:
    return order.algo_id
