"""A naive model of the trigger conditions: every open order checked against every price, every time.

It is written from the reference's wording (section 9 of perp-mechanics.md), not from
:class:`perpx.engine.triggers.TriggerIndex`: the trailing conditions are the exact inequalities
``latest >= min x (1 + rate)`` / ``latest <= max x (1 - rate)`` in integers, with no rounded level.
Swapped into an engine (:func:`naive_engine`), it must fire exactly the same orders in the same
order as the sorted index, through the same stage.
"""

from __future__ import annotations

from perpx.engine.commands import ConditionalType, WorkingType
from perpx.engine.config import VenueConfig
from perpx.engine.engine import Engine
from perpx.engine.triggers import ConditionalOrder
from perpx.engine.values import RATE_SCALE, AlgoId, MarketId, Side


class NaiveIndex:
    """Scan everything on every observation; fire in ``algo_id`` order."""

    def __init__(self) -> None:
        self.orders: dict[AlgoId, ConditionalOrder] = {}

    def add(self, order: ConditionalOrder) -> None:
        self.orders[order.algo_id] = order

    def remove(self, order: ConditionalOrder) -> None:
        del self.orders[order.algo_id]

    def holds(self, market: MarketId) -> bool:
        return any(o.market == market for o in self.orders.values())

    def observe(
        self, market: MarketId, working_type: WorkingType, price: int, protected_too: bool
    ) -> list[ConditionalOrder]:
        fired = []
        for algo_id in sorted(self.orders):
            o = self.orders[algo_id]
            if o.market != market or o.working_type is not working_type:
                continue
            if o.price_protect and not protected_too:
                continue
            buy = o.side is Side.BUY
            if o.order_type is ConditionalType.TRAILING_STOP_MARKET:
                assert o.callback_rate_e8 is not None
                if not o.activated:
                    activation = o.activation_price_ticks
                    assert activation is not None
                    if (price <= activation) if buy else (price >= activation):
                        o.activated = True
                        o.extreme_ticks = price
                    continue
                if buy:
                    o.extreme_ticks = min(o.extreme_ticks, price)
                    hit = price * RATE_SCALE >= o.extreme_ticks * (RATE_SCALE + o.callback_rate_e8)
                else:
                    o.extreme_ticks = max(o.extreme_ticks, price)
                    hit = price * RATE_SCALE <= o.extreme_ticks * (RATE_SCALE - o.callback_rate_e8)
            else:
                trigger = o.trigger_price_ticks
                assert trigger is not None
                if o.order_type in (ConditionalType.STOP, ConditionalType.STOP_MARKET):
                    hit = price >= trigger if buy else price <= trigger
                else:
                    hit = price <= trigger if buy else price >= trigger
            if hit:
                fired.append(o)
        for o in fired:
            del self.orders[o.algo_id]
        return fired


def naive_engine(config: VenueConfig) -> Engine:
    engine = Engine(config)
    engine.triggers.index = NaiveIndex()
    return engine
