"""Where a child is priced: the passiveness rule every algorithm shares.

``passiveness_bps`` 0 takes liquidity (a market intent, priced by the runner at the far touch plus
take-through); any positive value rests *inside* the spread without crossing it:
``far - max(1, ceil(spread x p))`` ticks for a buy (mirrored for a sell), so 10,000 joins the
near touch and 1 improves the far touch by one tick. An empty side gives the near touch, or no
price at all.
"""

from __future__ import annotations

from perpx.execution.model import BPS, ParentSide
from perpx.execution.venue import BookSnapshot


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
