"""One integer grid for every venue's book, and what the router knows of each venue.

Venues quote on their own tick and lot sizes; the router compares them on the parent's grid, a
``tick_size`` and a ``lot_size`` every venue's increments divide. Prices are ``_ticks`` of that grid,
quantities ``_lots``, notionals ``_units`` (one tick times one lot), fees ``_e8`` (``0.0005`` is 50,000).

Rounding is always against the router's plan, never in its favour: an ask between two ticks is
rounded up, a bid down, and a level's quantity down to whole lots, so the planned cost is never
better than what the venue can give and a planned quantity is always there.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from perpx.engine.values import Side, to_decimal

FEE_SCALE_E8 = 100_000_000
"""A fee rate of 1 is ``FEE_SCALE_E8`` in ``_e8`` units."""


@dataclass(frozen=True, slots=True)
class Level:
    """A price level on the side the parent takes from: ``qty_lots`` at ``price_ticks``."""

    price_ticks: int
    qty_lots: int

    def __post_init__(self) -> None:
        if self.price_ticks <= 0:
            raise ValueError(f"level price must be positive, got {self.price_ticks} ticks")
        if self.qty_lots <= 0:
            raise ValueError(f"level quantity must be positive, got {self.qty_lots} lots")


@dataclass(frozen=True, slots=True)
class VenueTerms:
    """A venue's taker fee and the limits the desk puts on it for one parent.

    ``max_qty_lots`` and ``max_notional_units`` cap what is routed there (``None``: no cap);
    ``min_qty_lots`` is the smallest child the venue accepts, so a venue gets either nothing or at
    least that much.
    """

    name: str
    taker_fee_e8: int
    max_qty_lots: int | None = None
    max_notional_units: int | None = None
    min_qty_lots: int = 1

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a venue needs a name")
        if not -FEE_SCALE_E8 < self.taker_fee_e8 < FEE_SCALE_E8:
            raise ValueError(f"{self.name}: taker fee {self.taker_fee_e8} e8 is not a rate in (-1, 1)")
        if self.max_qty_lots is not None and self.max_qty_lots < 0:
            raise ValueError(f"{self.name}: max_qty_lots must not be negative")
        if self.max_notional_units is not None and self.max_notional_units < 0:
            raise ValueError(f"{self.name}: max_notional_units must not be negative")
        if self.min_qty_lots < 1:
            raise ValueError(f"{self.name}: min_qty_lots must be at least 1")


@dataclass(frozen=True, slots=True)
class VenueBook:
    """The levels of one venue on the side the parent takes from, best first, with its terms."""

    terms: VenueTerms
    levels: tuple[Level, ...]


@dataclass(frozen=True, slots=True)
class Grid:
    """The parent's price and quantity increments; every venue's tick and lot must divide them."""

    tick_size: Decimal
    lot_size: Decimal

    def __post_init__(self) -> None:
        if self.tick_size <= 0 or self.lot_size <= 0:
            raise ValueError("grid tick_size and lot_size must be positive")

    def price_ticks(self, price: str | Decimal | int | float, side: Side) -> int:
        """A taken price in ticks, rounded against the taker: up for a buy (asks), down for a sell (bids)."""
        value = to_decimal(repr(price) if isinstance(price, float) else price, "price") / self.tick_size
        return int(value.to_integral_value(ROUND_CEILING if side is Side.BUY else ROUND_FLOOR))

    def qty_lots(self, qty: str | Decimal | int | float) -> int:
        """A quantity in whole lots, rounded down (a planned lot must exist)."""
        value = to_decimal(repr(qty) if isinstance(qty, float) else qty, "quantity") / self.lot_size
        return int(value.to_integral_value(ROUND_FLOOR))

    def price(self, price_ticks: int) -> Decimal:
        return price_ticks * self.tick_size

    def qty(self, qty_lots: int) -> Decimal:
        return qty_lots * self.lot_size

    def notional_units(self, notional: str | Decimal) -> int:
        """A quote notional cap in ``_units`` (tick times lot), rounded down so the cap is never exceeded."""
        value = to_decimal(notional, "notional") / (self.tick_size * self.lot_size)
        return int(value.to_integral_value(ROUND_FLOOR))

    def fee_e8(self, rate: str | Decimal) -> int:
        """A fee rate (``"0.0005"``) in ``_e8``; a rate finer than 1e-8 is an error, not a rounding."""
        value = to_decimal(rate, "fee rate") * FEE_SCALE_E8
        if value != value.to_integral_value():
            raise ValueError(f"fee rate {rate} is finer than 1e-8")
        return int(value)
