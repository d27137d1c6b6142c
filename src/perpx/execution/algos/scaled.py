"""Scaled (ladder) orders: ``n`` resting limit orders between two prices, sized by a rule.

Prices: level ``i`` of ``n`` (``i = 0..n-1``) is at ``p_0 + (p_{n-1} - p_0) i / (n-1)``
(``linear``) or ``p_0 (p_{n-1}/p_0)^(i/(n-1))`` (``geometric``), rounded to a tick toward the
passive side. Sizes: weights ``1`` (``flat``), ``i + 1`` (``increasing``) or ``r^i``
(``geometric``, ``r = ladder_size_ratio``); each level gets ``floor(Q w_i / sum w)`` lots and the
rounding remainder goes to the last level. Levels too small for the market are merged into the
next one. All levels go out at the first wake-up; a level refused by a rule is reported, and the
parent then waits for fills (and for its end behaviour, if it has a window).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from perpx.execution.model import ParentSide, PriceSpacing, SizeDistribution
from perpx.execution.rules import min_child_lots
from perpx.execution.strategy import BoundParent, Decision, PlaceChild, Snapshot
from perpx.execution.venue import TimeInForce


def ladder_prices_ticks(bound: BoundParent) -> list[int]:
    """The level prices, in ticks, rounded toward the passive side."""
    parent = bound.parent
    assert parent.ladder_levels and parent.ladder_start_price and parent.ladder_end_price
    n = parent.ladder_levels
    first, last = parent.ladder_start_price, parent.ladder_end_price
    tick = bound.filters.tick_size
    rounding = ROUND_FLOOR if parent.side is ParentSide.BUY else ROUND_CEILING
    prices = []
    for i in range(n):
        if n == 1:
            price = first
        elif parent.ladder_spacing is PriceSpacing.LINEAR:
            price = first + (last - first) * i / (n - 1)
        else:
            price = first * (last / first) ** (Decimal(i) / (n - 1))
        prices.append(int((price / tick).to_integral_value(rounding)))
    return prices


def ladder_sizes_lots(bound: BoundParent) -> list[int]:
    """The level sizes in lots; they sum to the parent's quantity (before merging small levels)."""
    parent = bound.parent
    n = parent.ladder_levels or 1
    if parent.ladder_sizes is SizeDistribution.FLAT:
        weights = [Decimal(1)] * n
    elif parent.ladder_sizes is SizeDistribution.INCREASING:
        weights = [Decimal(i + 1) for i in range(n)]
    else:
        weights = [parent.ladder_size_ratio**i for i in range(n)]
    total = sum(weights)
    sizes = [int(bound.qty_lots * w / total) for w in weights]
    sizes[-1] += bound.qty_lots - sum(sizes)
    return sizes


@dataclass(frozen=True, slots=True)
class Scaled:
    """The ladder strategy (module docstring)."""

    def decide(self, snapshot: Snapshot) -> Decision:
        bound = snapshot.bound
        if snapshot.children_sent:
            return Decision(note=f"ladder resting: {snapshot.working_lots} lots working")
        smallest = min_child_lots(bound)
        intents = []
        carry = 0
        levels = list(zip(ladder_prices_ticks(bound), ladder_sizes_lots(bound), strict=True))
        for i, (price, level_lots) in enumerate(levels):
            size = level_lots + carry
            if size < smallest and i < len(levels) - 1:
                carry = size
                continue
            carry = 0
            tif = TimeInForce.POST_ONLY if bound.parent.post_only else TimeInForce.GTC
            intents.append(
                PlaceChild(size, price, tif, f"ladder level {i + 1}/{len(levels)}: {size} lots at {price}")
            )
        return Decision(tuple(intents), note="ladder placed")
