"""Integer value types of the venue: ids, scales and exact parsing at the edge.

Every quantity the engine holds is an ``int`` in a declared unit:

==================  =========================================================
suffix              meaning
==================  =========================================================
``_ticks``          a price as a whole number of the market's ``tick_size``
``_lots``           a quantity as a whole number of the market's ``lot_size``
``_atoms``          an amount of an asset in units of ``10**-decimals``
``_e8``             a dimensionless rate scaled by ``RATE_SCALE`` (1e8)
``_ns``             nanoseconds since the Unix epoch
==================  =========================================================

Values are built from ``str`` or ``Decimal`` only, never from ``float``: a
float has already lost the digit the venue would be judged on. Parsing is
exact or it fails with ``ValueError`` naming the offending value.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from enum import IntEnum
from typing import Final, NewType

AccountId = NewType("AccountId", int)
OrderId = NewType("OrderId", int)
TradeId = NewType("TradeId", int)
MarketId = NewType("MarketId", str)
AssetId = NewType("AssetId", str)
ClientOrderId = NewType("ClientOrderId", str)
TxId = NewType("TxId", str)
AlgoId = NewType("AlgoId", int)
"""Id of a conditional (algo) order; its own counter, separate from order ids."""
ClientAlgoId = NewType("ClientAlgoId", str)
ParentId = NewType("ParentId", int)
"""Id of a parent order the venue's algo service works (``perpx.engine.parents``); its own counter."""

RATE_SCALE: Final = 10**8
"""Scale of every ``_e8`` rate: 0.0005 (5 bps) is ``50_000``."""

NS_PER_MS: Final = 1_000_000
NS_PER_DAY: Final = 86_400 * 1_000_000_000


class Side(IntEnum):
    """Order side; its value is the sign it gives a position change."""

    BUY = 1
    SELL = -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


def to_decimal(text: str | Decimal | int, what: str) -> Decimal:
    """Parse ``text`` into a finite Decimal.

    Raises
    ------
    ValueError
        If ``text`` is a float, is not a number, or is NaN/infinite.
    """
    if isinstance(text, float):
        raise ValueError(f"{what} was a float ({text!r}); pass a string or Decimal")
    try:
        value = Decimal(text) if not isinstance(text, Decimal) else text
    except (InvalidOperation, TypeError) as exc:
        raise ValueError(f"{what} was {text!r}, which is not a number") from exc
    if not value.is_finite():
        raise ValueError(f"{what} was {text!r}, which is not finite")
    return value


def to_units(text: str | Decimal | int, unit: Decimal, what: str) -> int:
    """Convert a decimal amount into a whole number of ``unit``.

    Raises
    ------
    ValueError
        If the amount is not an exact multiple of ``unit``.
    """
    value = to_decimal(text, what)
    try:
        units = value / unit
    except ArithmeticError as exc:
        raise ValueError(f"{what} {text!r} is out of range") from exc
    if units != units.to_integral_value():
        raise ValueError(f"{what} {value} is not a multiple of {unit}")
    return int(units)


def to_rate_e8(text: str | Decimal | int, what: str) -> int:
    """Convert a decimal rate (``"0.0002"``) into ``_e8`` units, exactly."""
    return to_units(text, Decimal(1) / RATE_SCALE, what)


def units_to_decimal(units: int, unit: Decimal) -> Decimal:
    """A whole number of ``unit`` back as an exact Decimal (for display and wire formats)."""
    return Decimal(units) * unit


def format_units(units: int, unit: Decimal) -> str:
    """A whole number of ``unit`` as plain decimal text without trailing zeros: ``"30000.5"``, ``"2"``."""
    text = f"{Decimal(units) * unit:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text
