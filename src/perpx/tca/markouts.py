"""Markouts per fill and post-trade reversion: did the price move for or against us afterwards.

Unlike the costs, both are **positive = favourable**:

* markout at horizon ``h``: ``M_h = s (m_{t_j+h} - p_j) / p_j x 10^4`` per fill, aggregated
  quantity-weighted over the fills whose ``t_j + h`` the quotes reach, overall and split maker /
  taker;
* reversion: ``R_h = s (m_{t_end} - m_{t_end+h}) / P_a x 10^4``: positive means the price came
  back after the order finished (its impact was temporary).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from perpx.tca.benchmarks import QuoteBook
from perpx.tca.inputs import Fill, ParentOrder, exact
from perpx.tca.shortfall import BPS

HORIZONS_MS = (1_000, 5_000, 30_000, 60_000, 300_000)
"""The markout horizons tca.json reports (keys "1s", "5s", "30s", "60s", "300s")."""


@exact
def fill_markout(sign: int, fill: Fill, book: QuoteBook, horizon_ms: int) -> Decimal | None:
    """``M_h`` of one fill in bps; ``None`` when the quotes end before ``t_j + h``."""
    mid = book.mid_known_at(fill.time_ms + horizon_ms)
    return None if mid is None else sign * (mid - fill.price) / fill.price * BPS


@dataclass(frozen=True, slots=True)
class MarkoutPoint:
    """The quantity-weighted markouts at one horizon, over the fills the data reaches (``qty``)."""

    horizon_ms: int
    all_bps: Decimal | None
    maker_bps: Decimal | None
    taker_bps: Decimal | None
    qty: Decimal


def _weighted(pairs: Sequence[tuple[Decimal, Decimal]]) -> Decimal | None:
    total = sum((q for q, _ in pairs), Decimal(0))
    return sum((q * m for q, m in pairs), Decimal(0)) / total if total else None


@exact
def markout_curve(
    order: ParentOrder, fills: Sequence[Fill], book: QuoteBook, horizons: Sequence[int] = HORIZONS_MS
) -> list[MarkoutPoint]:
    """One :class:`MarkoutPoint` per horizon."""
    points = []
    for horizon in horizons:
        rows = [(f, fill_markout(order.side.sign, f, book, horizon)) for f in fills]
        known = [(f, m) for f, m in rows if m is not None]
        points.append(
            MarkoutPoint(
                horizon_ms=horizon,
                all_bps=_weighted([(f.qty, m) for f, m in known]),
                maker_bps=_weighted([(f.qty, m) for f, m in known if f.maker is True]),
                taker_bps=_weighted([(f.qty, m) for f, m in known if f.maker is False]),
                qty=sum((f.qty for f, _ in known), Decimal(0)),
            )
        )
    return points


@exact
def reversion(order: ParentOrder, book: QuoteBook, end_ms: int, horizon_ms: int) -> Decimal | None:
    """``R_h`` in bps of ``P_a``; ``None`` when a mid is missing."""
    at_end = book.mid_at(end_ms)
    after = book.mid_known_at(end_ms + horizon_ms)
    if at_end is None or after is None:
        return None
    return order.side.sign * (at_end - after) / order.arrival_price * BPS
