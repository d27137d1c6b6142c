"""Pre-trade TCA: what an order of ``Q`` over ``D`` seconds is expected to cost, and how uncertain.

The model (docs/tca.md, "pre-trade"), every term in bps of the arrival mid, positive = cost:

* spread: ``half_spread_bps``, the median of ``(a - b) / 2 / m`` over the quotes;
* impact: the square-root law ``Y sigma_d sqrt(Q / V_d)`` with ``sigma_d`` the daily volatility
  (from one-minute closes) and ``V_d`` the daily volume (the tape's volume rate x one day); ``Y``
  is fitted by least squares through the origin on the venue's own taker orders:
  ``cost_i - half_spread = Y x_i`` with ``cost_i = s (p_bar_i - m_i) / m_i`` and
  ``x_i = sigma_d sqrt(q_i / V_d)``; the fit's ``n`` and ``R^2`` are printed with it. Where the
  venue's taker orders are not at hand (an execution backtest), ``Y`` is given instead: the
  :data:`PRIOR_IMPACT_Y` or one that ``perpx tca calibrate`` fitted on simulated orders;
* timing risk: a linear schedule over ``D`` carries ``sigma_s sqrt(D / 3)`` of price risk, the
  standard deviation of the cost;
* expected participation: ``Q / (volume rate x D)``.

Square-root impact does not depend on ``D``; slower trading lowers participation and the risk of a
too-high participation, and raises timing risk. Those are the trade-offs the output shows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from perpx.tca.benchmarks import QuoteBook
from perpx.tca.inputs import InputError, Quote, Side
from perpx.tca.venue import Candle, TakerOrder

DAY_S = 86_400
BPS = 10_000.0
FITTED = "fitted on the venue's taker orders"
PRIOR_IMPACT_Y = 1.0
"""``Y`` when nothing was fitted: the square-root law's coefficient is of order one across markets
(Toth et al. 2011, "Anomalous price impact and the critical nature of liquidity"); ``perpx tca
calibrate`` measures how far it is from the simulated venue's."""


@dataclass(frozen=True, slots=True)
class Calibration:
    """The square-root impact coefficient ``Y`` and how well it fits (``n`` orders, ``R^2``)."""

    y: float
    n: int
    r2: float | None
    source: str = FITTED


@dataclass(frozen=True, slots=True)
class Estimate:
    """The pre-trade estimate; costs in bps of the mid, positive = cost."""

    side: Side
    qty: Decimal
    duration_s: float
    mid: float
    sigma_daily: float
    volume_per_s: float
    half_spread_bps: float
    impact_bps: float
    expected_cost_bps: float
    std_bps: float
    participation: float | None
    calibration: Calibration

    @property
    def expected_cost(self) -> float:
        """The expected cost in quote currency: bps x ``Q`` x mid."""
        return self.expected_cost_bps / BPS * float(self.qty) * self.mid

    def lines(self) -> list[str]:
        c = self.calibration
        r2 = "n/a" if c.r2 is None else f"{c.r2:.3f}"
        part = "n/a (no volume)" if self.participation is None else f"{self.participation:.2%}"
        return [
            f"{self.side.value} {self.qty} over {self.duration_s:g} s at mid {self.mid:g}",
            f"expected cost {self.expected_cost_bps:.2f} bps ({self.expected_cost:.2f} quote),"
            f" std {self.std_bps:.2f} bps",
            f"  half spread {self.half_spread_bps:.2f} bps + impact {self.impact_bps:.2f} bps"
            f" (Y sigma_d sqrt(Q/V_d), sigma_d {self.sigma_daily:.4%}, V_d {self.volume_per_s * DAY_S:g})",
            f"expected participation {part}",
            (
                f"impact calibration: Y = {c.y:.4f} on n = {c.n} taker orders, R^2 = {r2}"
                + ("" if c.n else " (no taker orders: Y = 0, impact unknown)")
                if c.source == FITTED
                else f"impact calibration: Y = {c.y:.4f}, {c.source}"
            ),
        ]


def sigma_daily(candles: Sequence[Candle]) -> float:
    """Daily volatility from one-minute log returns of consecutive closes."""
    closes = np.array([float(c.close) for c in candles], dtype=float)
    if len(closes) < 3:
        raise InputError(f"volatility needs at least 3 one-minute candles, the window holds {len(closes)}")
    returns = np.diff(np.log(closes))
    return float(np.std(returns, ddof=1) * math.sqrt(DAY_S / 60))


def volume_rate(candles: Sequence[Candle]) -> float:
    """Volume per second over the candles' span."""
    span_s = (candles[-1].open_ms - candles[0].open_ms + 60_000) / 1000
    return float(sum(c.volume for c in candles)) / span_s


def half_spread_bps(quotes: Sequence[Quote]) -> float:
    """The median half spread in bps of the mid; 0 without quotes."""
    spreads = [float(q.half_spread / q.mid) * BPS for q in quotes]
    return float(np.median(spreads)) if spreads else 0.0


def calibrate(
    orders: Sequence[TakerOrder], book: QuoteBook, sigma_d: float, daily_volume: float, half_bps: float
) -> Calibration:
    """Fit ``Y`` on the taker orders that have a mid before their first fill (module docstring)."""
    xs: list[float] = []
    ys: list[float] = []
    for order in orders:
        mid = book.mid_at(order.first_ms - 1)
        if mid is None or daily_volume <= 0:
            continue
        cost = order.side.sign * float((order.avg_price - mid) / mid) * BPS
        xs.append(sigma_d * math.sqrt(float(order.qty) / daily_volume) * BPS)
        ys.append(cost - half_bps)
    if not xs:
        return Calibration(0.0, 0, None)
    x = np.array(xs)
    y = np.array(ys)
    denominator = float(x @ x)
    coefficient = float(x @ y) / denominator if denominator else 0.0
    total = float(((y - y.mean()) ** 2).sum())
    residual = float(((y - coefficient * x) ** 2).sum())
    return Calibration(coefficient, len(xs), 1 - residual / total if total > 0 else None)


def estimate(
    side: Side,
    qty: Decimal,
    duration_s: float,
    candles: Sequence[Candle],
    quotes: Sequence[Quote],
    orders: Sequence[TakerOrder],
    calibration: Calibration | None = None,
) -> Estimate:
    """The pre-trade estimate of ``qty`` on ``side`` over ``duration_s`` seconds.

    ``calibration`` gives ``Y``; without one it is fitted on ``orders`` (module docstring).
    """
    if qty <= 0:
        raise InputError(f"--qty must be positive, was {qty}")
    if duration_s <= 0:
        raise InputError(f"--duration-s must be positive, was {duration_s}")
    sigma_d = sigma_daily(candles)
    rate = volume_rate(candles)
    book = QuoteBook(quotes)
    half = half_spread_bps(quotes)
    if calibration is None:
        calibration = calibrate(orders, book, sigma_d, rate * DAY_S, half)
    impact = calibration.y * sigma_d * math.sqrt(float(qty) / (rate * DAY_S)) * BPS if rate > 0 else 0.0
    mid = float(quotes[-1].mid) if quotes else float(candles[-1].close)
    sigma_s = sigma_d / math.sqrt(DAY_S)
    return Estimate(
        side=side,
        qty=qty,
        duration_s=duration_s,
        mid=mid,
        sigma_daily=sigma_d,
        volume_per_s=rate,
        half_spread_bps=half,
        impact_bps=impact,
        expected_cost_bps=half + impact,
        std_bps=sigma_s * math.sqrt(duration_s / 3) * BPS,
        participation=float(qty) / (rate * duration_s) if rate > 0 else None,
        calibration=calibration,
    )
