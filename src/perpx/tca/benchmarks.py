"""The prices costs are measured against: the arrival price, the interval VWAP and the mid.

* **Arrival** ``P_a`` is given (the mid when the parent order reached the venue); the analysis
  never guesses it.
* **Interval VWAP** is ``sum(q p) / sum(q)`` over the market's trades with
  ``start_ms <= t <= end_ms``, once *including* the order's own fills (the tape as printed) and once
  *excluding* them (including them flatters a large order, which is most of the tape it trades
  against). Own prints are taken out by the tape's ``own`` flag when every print in the interval
  has one (TRADES.csv's ``own`` column), else by trade id when both sides have ids (a venue's
  tape), else by subtracting the own fills inside the interval from the tape's sums.
* **Mid** ``m_t`` is the mid of the last quote at or before ``t`` (a quote stamped in the fill's
  millisecond counts as before it, so quote files should carry the pre-trade quote).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from perpx.tca.inputs import Fill, Quote, Trade, exact


@dataclass(frozen=True, slots=True)
class IntervalVwap:
    """The tape over ``[start_ms, end_ms]``: VWAP with and without own fills, and the volumes."""

    start_ms: int
    end_ms: int
    market_qty: Decimal
    own_qty: Decimal
    vwap: Decimal | None
    vwap_ex_own: Decimal | None

    @property
    def participation(self) -> Decimal | None:
        """Own fills over market volume in the interval, the market volume including them."""
        return self.own_qty / self.market_qty if self.market_qty > 0 else None


@exact
def interval_vwap(trades: Sequence[Trade], fills: Sequence[Fill], start_ms: int, end_ms: int) -> IntervalVwap:
    """The interval VWAP of ``trades`` with and without ``fills`` (see the module docstring).

    Raises
    ------
    ValueError
        If the own fills inside the interval exceed the tape's volume: the tape cannot hold them,
        so it was not the full tape (or not of this market).
    """
    inside = [t for t in trades if start_ms <= t.time_ms <= end_ms]
    own = [f for f in fills if start_ms <= f.time_ms <= end_ms]
    qty = sum((t.qty for t in inside), Decimal(0))
    value = sum((t.qty * t.price for t in inside), Decimal(0))
    own_qty = sum((f.qty for f in own), Decimal(0))
    own_ids = {f.trade_id for f in own if f.trade_id is not None}
    if inside and all(t.own is not None for t in inside):
        rest = [t for t in inside if not t.own]
        ex_qty = sum((t.qty for t in rest), Decimal(0))
        ex_value = sum((t.qty * t.price for t in rest), Decimal(0))
    elif own and len(own_ids) == len(own) and all(t.trade_id is not None for t in inside):
        rest = [t for t in inside if t.trade_id not in own_ids]
        ex_qty = sum((t.qty for t in rest), Decimal(0))
        ex_value = sum((t.qty * t.price for t in rest), Decimal(0))
    else:
        ex_qty = qty - own_qty
        ex_value = value - sum((f.qty * f.price for f in own), Decimal(0))
    if inside and ex_qty < 0:
        raise ValueError(
            f"the own fills inside [{start_ms}, {end_ms}] ({own_qty}) exceed the tape's volume ({qty}):"
            " the trades file must be the market's whole tape, own fills included"
        )
    return IntervalVwap(
        start_ms=start_ms,
        end_ms=end_ms,
        market_qty=qty,
        own_qty=own_qty,
        vwap=value / qty if qty > 0 else None,
        vwap_ex_own=ex_value / ex_qty if ex_qty > 0 else None,
    )


class QuoteBook:
    """The top of book over time: ``at(t)`` is the last quote at or before ``t``."""

    def __init__(self, quotes: Sequence[Quote]) -> None:
        self.quotes = sorted(quotes, key=lambda q: q.time_ms)
        self._times = [q.time_ms for q in self.quotes]

    def __bool__(self) -> bool:
        return bool(self.quotes)

    @property
    def last_ms(self) -> int | None:
        """The time of the last quote: mids after it are not known (the data ends there)."""
        return self._times[-1] if self._times else None

    def at(self, time_ms: int) -> Quote | None:
        """The quote in force at ``time_ms``; ``None`` before the first quote."""
        index = bisect.bisect_right(self._times, time_ms)
        return self.quotes[index - 1] if index else None

    def mid_at(self, time_ms: int) -> Decimal | None:
        quote = self.at(time_ms)
        return None if quote is None else quote.mid

    def mid_known_at(self, time_ms: int) -> Decimal | None:
        """The mid at ``time_ms`` if the data reaches that far, else ``None`` (for markouts)."""
        if self.last_ms is None or time_ms > self.last_ms:
            return None
        return self.mid_at(time_ms)


def quotes_from_tape(trades: Sequence[tuple[int, Decimal, bool]]) -> list[Quote]:
    """Top-of-book quotes inferred from a tape that says which side was the maker.

    For a venue that keeps trades but not quotes: a trade whose buyer was the maker printed at the
    bid, one whose seller was the maker at the ask. Each inferred quote (last bid-side print, last
    ask-side print) is in force from the millisecond *after* the trade, so a fill is never measured
    against the quote it made itself; a crossed pair (the price moved through a stale side) is
    skipped until the stale side prints again. ``trades`` are ``(time_ms, price, buyer_maker)``,
    oldest first.
    """
    bid: Decimal | None = None
    ask: Decimal | None = None
    quotes: list[Quote] = []
    for time_ms, price, buyer_maker in trades:
        if buyer_maker:
            bid = price
        else:
            ask = price
        if bid is not None and ask is not None and bid <= ask:
            quote = Quote(time_ms + 1, bid, ask)
            if quotes and quotes[-1].time_ms == quote.time_ms:
                quotes[-1] = quote
            else:
                quotes.append(quote)
    return quotes
