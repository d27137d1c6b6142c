"""The pure tests behind triggers: a price crossing, a fill share, a TCA metric. No I/O, no clock.

Shares and slippage are exact :class:`~decimal.Decimal` values so a trigger at ``pct = 50`` fires at
exactly half, never one float ulp early or late.
"""

from __future__ import annotations

from decimal import Decimal

BPS = Decimal(10_000)


def crossed(op: str, price: Decimal, threshold: Decimal) -> bool:
    """``>=``: the price rose to or above the threshold; ``<=``: it fell to or below it."""
    if op == ">=":
        return price >= threshold
    if op == "<=":
        return price <= threshold
    raise ValueError(f"unknown comparison {op!r}; use >= or <=")


def compare(op: str, value: Decimal, threshold: Decimal) -> bool:
    """The same comparison for any metric (a TCA value against its limit)."""
    return crossed(op, value, threshold)


def filled_pct(filled_lots: int, qty_lots: int) -> Decimal:
    """Filled share of a node in percent; a node with no quantity has filled nothing."""
    return Decimal(100 * filled_lots) / qty_lots if qty_lots > 0 else Decimal(0)


def arrival_slippage_bps(sign: int, avg_price: Decimal, arrival_price: Decimal) -> Decimal:
    """``s * (avg - arrival) / arrival * 1e4``: positive is cost (paid up on a buy, sold down on a sell)."""
    if arrival_price <= 0:
        raise ValueError("arrival price must be positive")
    return sign * (avg_price - arrival_price) / arrival_price * BPS


def stop_triggered(sign: int, price: Decimal, stop_price: Decimal) -> bool:
    """A sell stop fires when the price falls to the stop, a buy stop when it rises to it."""
    return price <= stop_price if sign < 0 else price >= stop_price
