"""The last-look policy: an accept is rejected only when the index moved more than a threshold.

Pure. The move is measured in basis points of the index at the quote, signed (positive when the
index rose). The threshold applies to the absolute move, whatever its direction, so the desk does
not keep the moves that favour it and reject only those that do not: a symmetric last look.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

BPS = Decimal(10_000)


@dataclass(frozen=True, slots=True)
class LastLook:
    """The decision: the move since the quote, and whether it rejects the accept."""

    move_bps: Decimal
    rejected: bool


def last_look(index_at_quote_ticks: int, index_now_ticks: int, threshold_bps: Decimal) -> LastLook:
    """Reject only when ``|index now - index at quote|`` exceeds ``threshold_bps`` of the quote's index."""
    move = Decimal(index_now_ticks - index_at_quote_ticks) * BPS / Decimal(index_at_quote_ticks)
    return LastLook(move_bps=move, rejected=abs(move) > threshold_bps)
