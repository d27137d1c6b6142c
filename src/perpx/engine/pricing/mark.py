"""Mark price: the fair price that drives PnL, margin, liquidation and price bands.

Binance USDS-M (default)::

    price1 = index x (1 + last_funding_rate x time_to_funding / funding_interval)
    price2 = index + moving average of (book mid - index) over the basis window
    mark   = median(price1, price2, last trade price)

Fallbacks: a second whose book is one-sided or empty contributes a basis
sample of zero (the mid counts as the index), so stale samples from a book
that emptied never dominate the window; with no samples in the window
``price2 = index``; without a last trade the median is of the two remaining
prices (their mean, half up). Every input is in ticks, rates in ``_e8``;
results round half up to a tick. Then the mark is clamped to
``index x (1 +/- mark_index_band)``: two of the three inputs come from the
book, and the bound keeps any book from walking the mark further.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from perpx.engine.values import RATE_SCALE


def _half_up_div(numerator: int, denominator: int) -> int:
    return (
        (2 * numerator + denominator) // (2 * denominator)
        if numerator >= 0
        else -((2 * -numerator + denominator) // (2 * denominator))
    )


def funding_basis_price_ticks(
    index_ticks: int, funding_rate_e8: int, time_to_funding_ns: int, interval_ns: int
) -> int:
    """``index x (1 + rate x time_to_funding / interval)``, half up."""
    numerator = index_ticks * (RATE_SCALE * interval_ns + funding_rate_e8 * time_to_funding_ns)
    return _half_up_div(numerator, RATE_SCALE * interval_ns)


def moving_basis_price_ticks(index_ticks: int, basis_samples_ticks: Sequence[int]) -> int:
    """``index + mean(basis samples)``; the index itself when there are no samples."""
    if not basis_samples_ticks:
        return index_ticks
    return index_ticks + _half_up_div(sum(basis_samples_ticks), len(basis_samples_ticks))


def median_of(values: Sequence[int]) -> int:
    """Median of one to three prices; two prices give their mean, half up."""
    ordered = sorted(values)
    if len(ordered) == 2:
        return _half_up_div(ordered[0] + ordered[1], 2)
    return ordered[len(ordered) // 2]


def binance_mark_ticks(price1_ticks: int, price2_ticks: int, last_trade_ticks: int | None) -> int:
    """``median(price1, price2, last)``, or of the first two when nothing has traded."""
    values = [price1_ticks, price2_ticks]
    if last_trade_ticks is not None:
        values.append(last_trade_ticks)
    return median_of(values)


def index_band_ticks(index_ticks: int, band_e8: int) -> tuple[int, int]:
    """``(low, high)``: ``index x (1 - band)`` rounded up and ``index x (1 + band)`` rounded down.

    Rounded inward, so a mark at either edge is never further from the index than the band.
    """
    low = -((-index_ticks * (RATE_SCALE - band_e8)) // RATE_SCALE)
    high = index_ticks * (RATE_SCALE + band_e8) // RATE_SCALE
    return max(low, 1), max(high, 1)


def clamp_to_index_band(mark_ticks: int, index_ticks: int, band_e8: int) -> int:
    """The mark, held within ``index x (1 +/- band)`` (``mechanics.md`` 20, "The band")."""
    low, high = index_band_ticks(index_ticks, band_e8)
    return low if mark_ticks < low else high if mark_ticks > high else mark_ticks


def basis_half_ticks(best_bid_ticks: int, best_ask_ticks: int, index_ticks: int) -> int:
    """``2 x (book mid - index)``, exact: the mid of a one-tick spread is half a tick."""
    return best_bid_ticks + best_ask_ticks - 2 * index_ticks


def moving_basis_half_price_ticks(index_ticks: int, basis_samples_half_ticks: Sequence[int]) -> int:
    """``index + mean(basis samples)`` from samples in half ticks, half up; the index with none."""
    if not basis_samples_half_ticks:
        return index_ticks
    return index_ticks + _half_up_div(sum(basis_samples_half_ticks), 2 * len(basis_samples_half_ticks))


# Hyperliquid-style EMA of the basis, in integers.
#
# Hyperliquid: for a sample s arriving t after the previous one,
#     num = num x exp(-t / 150 s) + s x t,   den = den x exp(-t / 150 s) + t,   ema = num / den.
# perpx samples once a second (t = 1 s) and keeps num and den as integers:
#   * exp(-1/150) is the constant EMA_DECAY_E12 = 993,355,506,255 / 10**12 (rounded half up from
#     0.99335550625503...), relative error below 1e-12 per step;
#   * one second of weight is EMA_WEIGHT = 10**6 units and the sample is in half ticks, so the
#     truncation of num x decay (toward zero, so a decayed value reaches exactly 0 and never
#     sticks at -1) loses less than one millionth of a half tick-second per step;
#   * a second whose book is empty or one-sided adds a zero sample (the mid counts as the index), as
#     the moving average does, so a basis from a book that emptied fades instead of persisting; a
#     second with the index stale decays num and den and adds nothing;
#   * after EMA_HORIZON_S seconds (40 time constants, exp(-40) < 5e-18) without interruption a run
#     of equal seconds restarts from an empty average: older samples would weigh nothing in e12.
EMA_DECAY_E12: Final = 993_355_506_255
EMA_SCALE: Final = 10**12
EMA_WEIGHT: Final = 10**6
EMA_HORIZON_S: Final = 6_000


def _trunc_div(numerator: int, denominator: int) -> int:
    quotient = abs(numerator) // denominator
    return quotient if numerator >= 0 else -quotient


def ema_seconds(num: int, den: int, sample_half_ticks: int | None, seconds: int) -> tuple[int, int]:
    """Run the basis EMA for ``seconds`` one-second steps of the same sample (``None``: no sample).

    Each step is ``num = trunc(num x decay) + sample x weight``, ``den = floor(den x decay) + weight``.
    More than :data:`EMA_HORIZON_S` steps start from ``(0, 0)`` and run the last ``EMA_HORIZON_S``.
    A run stops early at a fixed point of the step (a converged average, or a fully decayed one),
    which changes nothing: the remaining steps would leave it where it is.
    """
    if seconds > EMA_HORIZON_S:
        num, den, seconds = 0, 0, EMA_HORIZON_S
    add_num = 0 if sample_half_ticks is None else sample_half_ticks * EMA_WEIGHT
    add_den = 0 if sample_half_ticks is None else EMA_WEIGHT
    for _ in range(seconds):
        next_num = _trunc_div(num * EMA_DECAY_E12, EMA_SCALE) + add_num
        next_den = den * EMA_DECAY_E12 // EMA_SCALE + add_den
        if next_num == num and next_den == den:
            break  # a fixed point of the step: every further step of this run changes nothing
        num, den = next_num, next_den
    return num, den


def ema_basis_price_ticks(index_ticks: int, num: int, den: int) -> int:
    """``index + num / den`` with the EMA in half ticks, half up; the index itself when empty."""
    if den == 0:
        return index_ticks
    return index_ticks + _half_up_div(num, 2 * den)
