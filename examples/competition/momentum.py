"""An example strategy participant: follow the last few marks' trend, flip when it turns.

Interface (perpx.compete.participant): ``on_step(view) -> list[OrderRequest]``, called once a step.
"""

from __future__ import annotations

from decimal import Decimal

from perpx.compete.participant import MarketView, OrderRequest


class Momentum:
    """Long ``size`` when the mark rose over ``lookback`` steps, short when it fell, flat on no change."""

    def __init__(self, lookback: int = 5, size: str = "0.02") -> None:
        self.lookback = lookback
        self.size = Decimal(size)

    def on_step(self, view: MarketView) -> list[OrderRequest]:
        if len(view.marks) <= self.lookback:
            return []
        change = view.marks[-1] - view.marks[-1 - self.lookback]
        target = self.size if change > 0 else -self.size if change < 0 else Decimal(0)
        delta = target - view.position
        if delta == 0:
            return []
        return [OrderRequest("BUY" if delta > 0 else "SELL", abs(delta))]
