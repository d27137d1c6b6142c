"""Funding: premium index samples, their time-weighted average, and the rate.

Binance USDS-M::

    premium      = (max(0, impact_bid - index) - max(0, index - impact_ask)) / index
    average      = (1 x P1 + 2 x P2 + ... + n x Pn) / (1 + 2 + ... + n)
    rate_8h      = average + clamp(interest - average, -0.05%, +0.05%)
    rate         = clamp(rate_8h x interval_hours / 8, floor, cap)
    payment      = signed position x mark x rate   (longs pay when positive)

Impact prices are the average fill price of a market order of
``impact_notional = impact_margin_notional / initial margin rate at max
leverage`` against the book. Rates are ``_e8``; the premium rounds toward zero
(a sample never overstates the premium), the average half up.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import Final

from perpx.engine.values import RATE_SCALE

CLAMP_E8: Final = 50_000
"""0.05%: the band around the interest rate inside which the premium is ignored."""


def impact_notional_atoms(impact_margin_notional_atoms: int, max_leverage: int) -> int:
    """Impact notional: ``impact margin notional / initial margin rate at max leverage``; exact.

    The initial margin rate at the maximum leverage ``L`` is ``1 / L``, so the
    quotient is the product ``impact_margin_notional x L`` (200 USDT at 125x: 25,000 USDT).
    """
    return impact_margin_notional_atoms * max_leverage


def impact_price_ticks(
    levels: Iterable[tuple[int, int]], notional_atoms: int, contract_atoms: int
) -> int | None:
    """Average fill price (ticks, half up) of taking ``notional_atoms`` from ``levels``.

    ``levels`` are ``(price_ticks, lots)`` from the best price outward (an
    iterable, consumed only as far as the notional needs); the last
    level may be taken in part (a fraction of a lot: this is a measurement, not
    a trade). The average is notional divided by base quantity, computed
    exactly. ``None`` when the side cannot absorb the whole notional.
    """
    if notional_atoms <= 0:
        return None
    remaining = notional_atoms
    base = Fraction(0)
    for price, lots in levels:
        take = min(remaining, price * lots * contract_atoms)
        base += Fraction(take, price * contract_atoms)
        remaining -= take
        if remaining == 0:
            average = Fraction(notional_atoms, contract_atoms) / base
            return int((2 * average.numerator + average.denominator) // (2 * average.denominator))
    return None


def premium_e8(impact_bid_ticks: int, impact_ask_ticks: int, index_ticks: int) -> int:
    """Premium index sample, rate ``_e8``, rounded toward zero."""
    excess = max(0, impact_bid_ticks - index_ticks) - max(0, index_ticks - impact_ask_ticks)
    magnitude = abs(excess) * RATE_SCALE // index_ticks
    return magnitude if excess >= 0 else -magnitude


def time_weighted_average_e8(samples_e8: Sequence[int]) -> int:
    """``sum(i x P_i) / sum(i)`` for i = 1..n (later samples weigh more), half up; 0 with none."""
    if not samples_e8:
        return 0
    n = len(samples_e8)
    numerator = sum((i + 1) * sample for i, sample in enumerate(samples_e8))
    denominator = n * (n + 1) // 2
    if numerator >= 0:
        return (2 * numerator + denominator) // (2 * denominator)
    return -((2 * -numerator + denominator) // (2 * denominator))


def funding_rate_e8(
    average_premium_e8: int, interest_e8: int, interval_hours: int, cap_e8: int, floor_e8: int
) -> int:
    """The interval's funding rate from the average premium, scaled to the interval and clamped."""
    rate_8h = average_premium_e8 + min(max(interest_e8 - average_premium_e8, -CLAMP_E8), CLAMP_E8)
    scaled = rate_8h * interval_hours
    rate = scaled // 8 if scaled >= 0 else -((-scaled) // 8)
    return min(max(rate, floor_e8), cap_e8)


def twa_add(numerator: int, count: int, sample_e8: int, repeat: int = 1) -> tuple[int, int]:
    """Add ``repeat`` equal samples to a running time-weighted average; exact.

    The running state is ``(numerator, count)`` with ``numerator = sum(i x P_i)``.
    Samples ``count + 1 .. count + repeat`` weigh ``count + 1 + ... + count + repeat``
    ``= repeat x (2 x count + repeat + 1) / 2`` (a whole number). So a clock jump
    over which the book did not change adds its samples in O(1), and the result
    equals adding them one by one.
    """
    return numerator + sample_e8 * (repeat * (2 * count + repeat + 1) // 2), count + repeat


def twa_e8(numerator: int, count: int) -> int:
    """The average of a running ``(numerator, count)``: as :func:`time_weighted_average_e8` (half up)."""
    if count == 0:
        return 0
    denominator = count * (count + 1) // 2
    if numerator >= 0:
        return (2 * numerator + denominator) // (2 * denominator)
    return -((2 * -numerator + denominator) // (2 * denominator))
