"""Mark price: the fair price that drives PnL, margin, liquidation and price bands.

Binance USDS-M (default)::

    price1 = index x (1 + last_funding_rate x time_to_funding / funding_interval)
    price2 = index + moving average of (book mid - index) over the basis window
    mark   = median(price1, price2, last trade price)

Fallbacks: a basis sample is only taken when the book has both sides; with no
samples in the window ``price2 = index``; without a last trade the median is
of the two remaining prices (their mean, half up). Every input is in ticks,
rates in ``_e8``; results round half up to a tick.
"""

from __future__ import annotations

from collections.abc import Sequence

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
