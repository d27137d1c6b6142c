"""What each fill paid or earned against the quote in force when it traded.

Per fill ``j`` with quote ``(b, a)`` and mid ``m`` at ``t_j`` (``s = +1`` buy, ``-1`` sell):

* spread capture ``SC = s (m - p) / ((a - b) / 2)``, **positive = good**: +1 (100%) filled
  passively at our own touch, 0 at the mid, -1 crossed at the far touch, below -1 walked the book;
  undefined for a locked quote (``a = b``);
* effective spread ``ES = 2 s (p - m) / m x 10^4`` (cost, round-trip convention);
* realized spread ``RS_D = 2 s (p - m_{t+D}) / m x 10^4``: what the liquidity provider kept;
* price impact ``PI_D = 2 s (m_{t+D} - m) / m x 10^4``, so ``ES = RS_D + PI_D`` (up to the last digit of the divisions).

Aggregates are quantity-weighted over the fills where the metric is defined.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from perpx.tca.benchmarks import QuoteBook
from perpx.tca.inputs import Fill, exact
from perpx.tca.shortfall import BPS

SPREAD_HORIZONS_MS = (1_000, 5_000, 60_000)
"""Realized-spread / price-impact horizons for crypto: 1 s, 5 s, 60 s."""


@dataclass(frozen=True, slots=True)
class FillSpread:
    """The spread metrics of one fill; ``None`` where no quote (or no later mid) is known."""

    capture: Decimal | None
    effective_bps: Decimal | None
    realized_bps: dict[int, Decimal | None]
    impact_bps: dict[int, Decimal | None]


@exact
def fill_spread(
    sign: int, fill: Fill, book: QuoteBook, horizons: Sequence[int] = SPREAD_HORIZONS_MS
) -> FillSpread:
    """The spread metrics of ``fill`` against ``book``."""
    quote = book.at(fill.time_ms)
    if quote is None:
        return FillSpread(None, None, dict.fromkeys(horizons), dict.fromkeys(horizons))
    mid = quote.mid
    capture = sign * (mid - fill.price) / quote.half_spread if quote.half_spread > 0 else None
    realized: dict[int, Decimal | None] = {}
    impact: dict[int, Decimal | None] = {}
    for horizon in horizons:
        later = book.mid_known_at(fill.time_ms + horizon)
        realized[horizon] = None if later is None else 2 * sign * (fill.price - later) / mid * BPS
        impact[horizon] = None if later is None else 2 * sign * (later - mid) / mid * BPS
    return FillSpread(capture, 2 * sign * (fill.price - mid) / mid * BPS, realized, impact)


@exact
def weighted(fills: Sequence[Fill], values: Sequence[Decimal | None]) -> Decimal | None:
    """The quantity-weighted mean of ``values`` over the fills where it is defined."""
    pairs = [(f.qty, v) for f, v in zip(fills, values, strict=True) if v is not None]
    total = sum((q for q, _ in pairs), Decimal(0))
    return sum((q * v for q, v in pairs), Decimal(0)) / total if total else None
