"""The parent's rules, applied to every child whatever the strategy asked for.

:func:`enforce` turns a strategy's :class:`~perpx.execution.strategy.PlaceChild` into the child
the runner may send, or into a refusal saying why not. It is the one place the rules live, so no
algorithm (or bug in one) can break them:

* **quantity**: at most the parent's remaining quantity (``qty - filled - working``) and at most
  ``max_clip``; at least the market's minimum lot and minimum notional (a smaller child is
  refused, unless it is the whole remainder and the venue allows it);
* **limit**: a buy is never priced above ``limit_price``, a sell never below; a market intent
  becomes an IOC limit at the far touch plus ``take_through_bps``, capped at the limit (a
  market order without a collar can sweep a thin book);
* **post-only**: with ``post_only`` every child rests (GTX) and taking intents are refused;
* **reduce-only**: every child of a reduce-only parent is sent reduce-only;
* **slippage**: with ``max_slippage_bps``, no child is priced further than that from the
  arrival price against the parent.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING

from perpx.execution.model import BPS, ParentSide
from perpx.execution.strategy import BoundParent, PlaceChild
from perpx.execution.venue import BookSnapshot, TimeInForce


@dataclass(frozen=True, slots=True)
class Allowed:
    """A child that keeps every rule: the size, price and tif to send."""

    qty_lots: int
    price_ticks: int
    tif: TimeInForce
    reduce_only: bool


@dataclass(frozen=True, slots=True)
class Refused:
    """Why an intent cannot become a child."""

    reason: str


def min_child_lots(bound: BoundParent) -> int:
    """The smallest child the market and the parent accept: min lot, min notional at arrival, ``min_clip``."""
    filters = bound.filters
    lot_value = filters.notional(1, bound.arrival_ticks)
    notional_lots = (
        int((filters.min_notional / lot_value).to_integral_value(ROUND_CEILING)) if lot_value > 0 else 0
    )
    return max(1, filters.min_qty_lots, notional_lots, bound.min_clip_lots)


def _cap(side: ParentSide, price_ticks: int, bound_ticks: int | None) -> int:
    if bound_ticks is None:
        return price_ticks
    return min(price_ticks, bound_ticks) if side is ParentSide.BUY else max(price_ticks, bound_ticks)


def slippage_bound_ticks(bound: BoundParent) -> int | None:
    """The worst price ``max_slippage_bps`` allows, rounded toward the arrival price."""
    bps = bound.parent.max_slippage_bps
    if bps is None:
        return None
    move = bound.arrival_ticks * bps // BPS
    return bound.arrival_ticks + move if bound.parent.side is ParentSide.BUY else bound.arrival_ticks - move


def take_price_ticks(bound: BoundParent, book: BookSnapshot) -> int | None:
    """The price a taking child is sent at: far touch plus take-through, or ``None`` on an empty side."""
    far = book.far_touch(bound.parent.side)
    if far is None:
        return None
    through = far * bound.parent.take_through_bps // BPS
    return far + through if bound.parent.side is ParentSide.BUY else far - through


def enforce(
    bound: BoundParent, remaining_lots: int, intent: PlaceChild, book: BookSnapshot
) -> Allowed | Refused:
    """The child ``intent`` may become under the parent's rules (module docstring), or why not."""
    parent, filters = bound.parent, bound.filters
    side = parent.side
    tif = intent.tif
    if parent.post_only:
        if tif is TimeInForce.IOC or intent.price_ticks is None:
            return Refused("post_only parent: a taking child is not allowed")
        tif = TimeInForce.POST_ONLY
    price = intent.price_ticks
    if price is None:
        price = take_price_ticks(bound, book)
        tif = TimeInForce.IOC
        if price is None:
            return Refused("no price to take at: the far side of the book is empty")
    price = _cap(side, price, bound.limit_ticks)
    price = _cap(side, price, slippage_bound_ticks(bound))
    if price <= 0:
        return Refused(f"price {price} ticks is not positive")
    qty = min(intent.qty_lots, remaining_lots)
    if bound.max_clip_lots is not None:
        qty = min(qty, bound.max_clip_lots)
    if qty <= 0:
        return Refused("nothing left to send: filled and working already cover the parent")
    qty = min(qty, filters.max_qty_lots)
    if qty < filters.min_qty_lots:
        return Refused(f"{qty} lots is below the market's minimum of {filters.min_qty_lots}")
    if qty < bound.min_clip_lots and qty < remaining_lots:
        return Refused(f"{qty} lots is below min_clip ({bound.min_clip_lots} lots)")
    if filters.notional(qty, price) < filters.min_notional:
        return Refused(
            f"notional {filters.notional(qty, price)} is below the market's {filters.min_notional}"
        )
    return Allowed(qty, price, tif, parent.reduce_only)
