"""Where a child is priced: the passiveness rule every algorithm shares.

``passiveness_bps`` 0 takes liquidity (a market intent, priced by the runner at the far touch plus
take-through); any positive value rests *inside* the spread without crossing it:
``far - max(1, ceil(spread x p))`` ticks for a buy (mirrored for a sell), so 10,000 joins the
near touch and 1 improves the far touch by one tick. An empty side gives the near touch, or no
price at all.
"""

from __future__ import annotations

from perpx.execution.model import BPS, ParentSide
from perpx.execution.strategy import PlaceChild, Snapshot
from perpx.execution.venue import BookSnapshot, TimeInForce


def passive_price_ticks(side: ParentSide, book: BookSnapshot, passiveness_bps: int) -> int | None:
    """The resting price for ``side`` at ``passiveness_bps`` (> 0), or ``None`` on an empty book."""
    near, far = book.touch(side), book.far_touch(side)
    if far is None:
        return near
    if near is None:
        return far - 1 if side is ParentSide.BUY else far + 1
    spread = abs(far - near)
    inside = max(1, -(-spread * passiveness_bps // BPS))
    return far - inside if side is ParentSide.BUY else far + inside


def would_take(snapshot: Snapshot) -> PlaceChild | None:
    """The "I would" child: when the far touch is at or better than ``would_price``, take what is left there.

    ``None`` without a would price, with nothing left, with an empty far side, or for a post-only parent.
    """
    bound = snapshot.bound
    far = snapshot.book.far_touch(bound.parent.side)
    left = snapshot.remaining_lots
    if bound.would_ticks is None or far is None or left <= 0 or bound.parent.post_only:
        return None
    better = far <= bound.would_ticks if bound.parent.side is ParentSide.BUY else far >= bound.would_ticks
    if not better:
        return None
    return PlaceChild(
        left,
        bound.would_ticks,
        TimeInForce.IOC,
        f"far touch {far} at or better than would price {bound.would_ticks}: take {left} lots",
    )
