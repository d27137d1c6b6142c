"""Conditional (algo) orders: the book of untriggered orders and the stage that fires them.

A conditional order (``PlaceConditionalOrder``) waits off the book until a
price of its ``working_type`` (the mark, or the last trade) reaches its
trigger; then it places a plain order through the engine's normal path
(``Core.place``: filters, margin, matching), exactly as if its owner had
sent it at that moment. Binance USDS-M is the model (reference section 9).

Trigger rules
-------------
==========================  ===========================  ===========================
type                        BUY fires when               SELL fires when
==========================  ===========================  ===========================
STOP, STOP_MARKET           price >= trigger             price <= trigger
TAKE_PROFIT(_MARKET)        price <= trigger             price >= trigger
TRAILING_STOP_MARKET        active and price >=          active and price <=
                            ceil(min x (1 + rate))       floor(max x (1 - rate))
==========================  ===========================  ===========================

A trailing stop is *active* from placement (its extreme starts at the current
price) or, with an activation price, from the first observed price at or past
it (BUY: ``<= activation``, SELL: ``>= activation``); from then on its extreme
(the minimum for a BUY, the maximum for a SELL) follows every observed price.
The trailing trigger is rounded *away* from the extreme, so the order fires
only once the price has come back by at least the whole callback rate.

* An order that would fire (or a trailing stop that would activate) at the
  price it is placed against is refused with ``-2021`` "Order would immediately
  trigger", as Binance does; equality counts as firing.
* ``price_protect``: while ``|mark - last| / mark > trigger_protect`` (both
  prices known) such an order ignores prices altogether: it neither fires,
  activates, nor moves its trailing extreme.
* Prices are observed after each command's handler and after every pass of the
  consequence loop, i.e. after each order's fills, not between two fills of one
  order (one order's fills move the last price monotonically, so its final
  price is its extreme).
* Several orders due in one pass fire in ``algo_id`` (placement) order, each
  against the position its predecessors left; their children's trades are seen
  by the next pass, which may fire more (a cascade), until a pass fires nothing.

Efficiency
----------
:class:`TriggerIndex` keeps, per ``(market, working_type, price_protect,
direction)``, a sorted list of ``(key, algo_id)`` with ``key = -direction x
level``, so the orders due at a price are always a *suffix* (found by one
bisect and cut off by one slice). A pass over a market therefore costs
``O(log n + k)`` for ``k`` orders that fire, whatever ``n`` rest; a pending
(not yet active) trailing stop sits in the same lists keyed by its activation
price. Active trailing stops are different: every new extreme moves their
trigger, so they live in small groups per ``(market, working_type,
price_protect, side)``. Each group keeps the range of prices that changes
nothing for any member (no new extreme, nothing fires): a price inside it costs
``O(1)``; a price outside it (a new high for some SELL stop, a new low for some
BUY stop, or a trigger) scans the group, ``O(t)`` for its ``t`` stops. In a
market that keeps making new extremes that is every observation. Markets
holding no conditional order cost ``O(1)``; looking again at unchanged prices
(the confirming pass after one that fired) finds nothing and costs the bisects.
"""

from perpx.engine.triggers.index import ConditionalIndex, TriggerIndex, quiet_range
from perpx.engine.triggers.order import (
    FALL,
    MAX_CALLBACK_RATE_E8,
    MIN_CALLBACK_RATE_E8,
    RISE,
    ConditionalOrder,
    level_direction,
    protection_blocks,
    reached,
    trailing_trigger_ticks,
)
from perpx.engine.triggers.stage import Triggers

__all__ = [
    "FALL",
    "MAX_CALLBACK_RATE_E8",
    "MIN_CALLBACK_RATE_E8",
    "RISE",
    "ConditionalIndex",
    "ConditionalOrder",
    "TriggerIndex",
    "Triggers",
    "level_direction",
    "protection_blocks",
    "quiet_range",
    "reached",
    "trailing_trigger_ticks",
]
