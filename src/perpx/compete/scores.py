"""Leaderboard figures from an equity curve and a participant's fills.

Returns and Sharpe are per step (the curve is sampled once per step) and annualised with
``sqrt(steps per year)``; they are report figures, computed in floats from the integer equity the
venue reports. Max drawdown is the largest fall from a running peak, as a fraction of that peak.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

YEAR_S = 365 * 86_400


@dataclass(frozen=True, slots=True)
class Score:
    """One leaderboard row (money as decimal strings, ratios as floats rounded for stable output)."""

    name: str
    kind: str
    pnl: str
    return_pct: float
    sharpe: float
    max_drawdown_pct: float
    volume: str
    fees: str
    trades: int
    liquidations: int
    limit_refusals: int
    final_equity: str


def sharpe(equity: list[int], step_s: int) -> float:
    """Annualised Sharpe ratio of per-step returns (0 when flat or too short)."""
    returns = [b / a - 1 for a, b in itertools.pairwise(equity) if a > 0]
    if len(returns) < 2:
        return 0.0
    mean = sum(returns) / len(returns)
    variance = sum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
    if variance <= 0:
        return 0.0
    return round(mean / math.sqrt(variance) * math.sqrt(YEAR_S / step_s), 4)


def max_drawdown(equity: list[int]) -> float:
    """Largest peak-to-trough fall as a percentage of the peak."""
    peak, worst = 0, 0.0
    for value in equity:
        peak = max(peak, value)
        if peak > 0:
            worst = max(worst, (peak - value) / peak)
    return round(worst * 100, 4)
