"""Index price: one spot reference per market from several weighted sources.

Each source reports ``(price_ticks, ts_ns)``. At computation time a source
older than ``stale_after_ns`` counts as absent. With fewer than
``min_sources`` fresh sources the index does not move (the caller keeps the
last value and flags the market index-stale). Otherwise the market's policy
decides:

``binance`` (Binance USDS-M futures FAQ)
    median of the fresh prices; a source more than ``outlier_e8`` from it
    gets weight 0; if more than one source is an outlier, the index is the
    plain median; otherwise the weighted mean of the rest.
``capped`` (Binance margin / OKX style)
    every price clipped to ``median x (1 +/- outlier)``, then the weighted mean.
``weighted_median`` (Hyperliquid style)
    sort by price; the first price whose cumulative weight reaches half the total.

Rounding: means and medians of an even count round half up to a whole tick
(the index is published in ticks). Every result lists the sources used and the
ones dropped, with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from perpx.engine.values import RATE_SCALE


class IndexPolicy(StrEnum):
    """How sources combine into the index."""

    BINANCE = "binance"
    CAPPED = "capped"
    WEIGHTED_MEDIAN = "weighted_median"


class DropReason(StrEnum):
    """Why a source did not count, as it appears in index events."""

    NO_QUOTE = "NO_QUOTE"
    STALE = "STALE"
    OUTLIER = "OUTLIER"
    CAPPED = "CAPPED"


@dataclass(frozen=True, slots=True)
class SourceQuote:
    """The latest quote of one spot source."""

    price_ticks: int
    ts_ns: int


@dataclass(frozen=True, slots=True)
class IndexResult:
    """An index computation: the price (``None`` when below quorum), used and dropped sources."""

    price_ticks: int | None
    used: tuple[tuple[str, int], ...]
    dropped: tuple[tuple[str, DropReason], ...]

    @property
    def below_quorum(self) -> bool:
        return self.price_ticks is None


def _half_up_div(numerator: int, denominator: int) -> int:
    return (2 * numerator + denominator) // (2 * denominator)


def median_ticks(prices: Sequence[int]) -> int:
    """Plain median; the mean of the middle two (half up) for an even count."""
    ordered = sorted(prices)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return _half_up_div(ordered[middle - 1] + ordered[middle], 2)


def weighted_mean_ticks(rows: Sequence[tuple[int, int]]) -> int:
    """``sum(w x p) / sum(w)`` over ``(price, weight)`` rows, half up."""
    total = sum(weight for _, weight in rows)
    return _half_up_div(sum(price * weight for price, weight in rows), total)


def weighted_median_ticks(rows: Sequence[tuple[int, int]]) -> int:
    """The first price (ascending) whose cumulative weight reaches half of the total weight."""
    ordered = sorted(rows)
    total = sum(weight for _, weight in ordered)
    cumulative = 0
    for price, weight in ordered:
        cumulative += weight
        if 2 * cumulative >= total:
            return price
    return ordered[-1][0]


def compute_index(
    policy: IndexPolicy,
    weights: Mapping[str, int],
    quotes: Mapping[str, SourceQuote],
    now_ns: int,
    stale_after_ns: int,
    min_sources: int,
    outlier_e8: int,
) -> IndexResult:
    """The index of one market at ``now_ns`` from the latest quote of each configured source."""
    fresh: list[tuple[str, int, int]] = []
    dropped: list[tuple[str, DropReason]] = []
    for source in sorted(weights):
        quote = quotes.get(source)
        if quote is None:
            dropped.append((source, DropReason.NO_QUOTE))
        elif now_ns - quote.ts_ns > stale_after_ns:
            dropped.append((source, DropReason.STALE))
        else:
            fresh.append((source, quote.price_ticks, weights[source]))
    if len(fresh) < min_sources or not fresh:
        return IndexResult(None, (), tuple(dropped))
    median = median_ticks([price for _, price, _ in fresh])
    band = median * outlier_e8
    if policy is IndexPolicy.WEIGHTED_MEDIAN:
        price = weighted_median_ticks([(p, w) for _, p, w in fresh])
        used = fresh
    elif policy is IndexPolicy.CAPPED:
        low = -((-median * (RATE_SCALE - outlier_e8)) // RATE_SCALE)
        high = median * (RATE_SCALE + outlier_e8) // RATE_SCALE
        rows = []
        for source, p, w in fresh:
            clipped = min(max(p, low), high)
            if clipped != p:
                dropped.append((source, DropReason.CAPPED))
            rows.append((clipped, w))
        price = weighted_mean_ticks(rows)
        used = fresh
    else:
        outliers = [row for row in fresh if abs(row[1] - median) * RATE_SCALE > band]
        if len(outliers) > 1:
            # more than one deviant source: the weights are not trusted, the plain median is
            price = median
            used = fresh
        else:
            used = [row for row in fresh if row not in outliers]
            price = weighted_mean_ticks([(p, w) for _, p, w in used])
            dropped.extend((source, DropReason.OUTLIER) for source, _, _ in outliers)
    return IndexResult(price, tuple((s, p) for s, p, _ in used), tuple(dropped))
