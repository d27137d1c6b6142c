"""Wire formats: Binance's decimal strings to integer ticks, lots and atoms, and back.

Parsing is exact: a price that is not a whole number of ticks is refused with
Binance's code, never rounded. Every parser raises :class:`ApiError`, so a
handler can call them in a row and let the first bad parameter answer.

Ranges, defined here once
-------------------------
Every number a request carries is checked against one of these bounds before
it reaches a command, a query or a read model, so no value can fail later in
the journal (msgpack holds 64-bit integers), in SQLite (signed 64-bit) or in
venue time (``int64`` nanoseconds). Outside its bound a value is refused with
-1102 and a message that names the bound.

================================  ==================================================
parameters                        accepted
================================  ==================================================
prices, quantities, amounts,      a plain decimal of at most ``MAX_DECIMAL_DIGITS``
rates (``price``, ``quantity``,   characters, at most ``MAX_UNITS`` ticks, lots,
``triggerPrice``, ``amount``,     atoms or ``_e8``
``callbackRate``, admin prices)
ids (``orderId``, ``algoId``,     ``0..MAX_ID``
``fromId``, ``accountId``)
times (``startTime``,             ``0..MAX_TIME_MS``
``endTime``)
other integers (``limit``,        the route's own range, never wider than ``int64``
``type``, ``leverage``)
================================  ==================================================

A value inside these bounds may still be refused by the engine (a price above
the market's ``max_price`` is -4025, a quantity above ``max_qty`` -4005): the
bounds say what the venue can hold, the market's filters what it accepts.
Precision keeps Binance's codes: a price that is not a multiple of the tick is
-4014, a quantity with more decimals than ``quantityPrecision`` -1111 and one not a multiple
of the step -4023, an amount finer than the
asset's atom -1111. ``timestamp`` and ``recvWindow`` are checked by
:mod:`perpx.server.auth` (at most 15 digits).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Context, Decimal, InvalidOperation, localcontext
from typing import Final

from perpx.engine.config import MarketSpec
from perpx.engine.values import NS_PER_MS, format_units
from perpx.server.errors import ApiError, bad_param, bad_request, bad_symbol, mandatory

_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")
_INTEGER = re.compile(r"-?[0-9]{1,19}")
_CLIENT_ID = re.compile(r"[.A-Z:/a-z0-9_-]{1,36}")
MAX_DECIMAL_DIGITS: Final = 40
"""The longest decimal text accepted (digits and the point)."""

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
"""The largest integer every store of the venue holds: a journal record, SQLite, venue nanoseconds."""
MAX_UNITS: Final = INT64_MAX
"""The largest price in ticks, quantity in lots, amount in atoms or rate in ``_e8`` a request may carry."""
MAX_ID: Final = INT64_MAX
"""The largest order, algo, trade or account id a request may name."""
MAX_TIME_MS: Final = INT64_MAX // NS_PER_MS
"""The latest time (ms) a request may name: venue time is ``int64`` nanoseconds (year 2262)."""

_EXACT = Context(prec=2 * MAX_DECIMAL_DIGITS + 20)
"""Enough digits that dividing any accepted decimal by a tick, step or atom is exact."""


def required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise mandatory(name)
    return value


def decimal_param(params: Mapping[str, str], name: str, *, optional: bool = False) -> Decimal | None:
    """A non-negative plain decimal (``"0.002"``, ``"60000"``); NaN, exponents, signs and junk are -1102."""
    text = params.get(name)
    if text is None or text == "":
        if optional:
            return None
        raise mandatory(name)
    return plain_decimal(text, name)


def plain_decimal(text: str, name: str) -> Decimal:
    """``text`` as a non-negative plain decimal of at most ``MAX_DECIMAL_DIGITS`` characters (else -1102)."""
    if len(text) > MAX_DECIMAL_DIGITS:
        raise bad_param(name, f"{len(text)} characters is too long for a number")
    if text.startswith("-"):
        try:
            Decimal(text)
        except InvalidOperation:
            raise bad_param(name, f"{text!r} is not a decimal number") from None
        raise ApiError(400, -1102, f"Parameter '{name}' was {text}; it must not be negative.")
    if not _DECIMAL.fullmatch(text):
        raise bad_param(name, f"{text!r} is not a plain decimal number")
    return Decimal(text)


def int_param(
    params: Mapping[str, str],
    name: str,
    *,
    default: int | None = None,
    lo: int = INT64_MIN,
    hi: int = INT64_MAX,
) -> int:
    """An integer in ``lo..hi`` (never wider than ``int64``); junk and values outside are -1102."""
    text = params.get(name)
    if text is None or text == "":
        if default is None:
            raise mandatory(name)
        return default
    lo, hi = max(lo, INT64_MIN), min(hi, INT64_MAX)
    if not _INTEGER.fullmatch(text):
        raise bad_param(name, f"{text[:32]!r} is not an integer between {lo} and {hi}")
    value = int(text)
    if not lo <= value <= hi:
        raise bad_param(name, f"{value} is outside {lo}..{hi}")
    return value


def optional_int(
    params: Mapping[str, str], name: str, *, lo: int = INT64_MIN, hi: int = INT64_MAX
) -> int | None:
    """:func:`int_param` that answers ``None`` when the parameter is absent or empty."""
    if params.get(name) in (None, ""):
        return None
    return int_param(params, name, lo=lo, hi=hi)


def id_param(params: Mapping[str, str], name: str) -> int | None:
    """An optional id (``orderId``, ``algoId``, ``fromId``): ``0..MAX_ID``."""
    return optional_int(params, name, lo=0, hi=MAX_ID)


def time_param(params: Mapping[str, str], name: str) -> int | None:
    """An optional time in ms (``startTime``, ``endTime``): ``0..MAX_TIME_MS``."""
    return optional_int(params, name, lo=0, hi=MAX_TIME_MS)


def bool_param(params: Mapping[str, str], name: str, default: bool = False) -> bool:
    text = params.get(name)
    if text is None or text == "":
        return default
    lowered = text.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    raise bad_param(name, f"{text!r} is not true or false")


def enum_param(
    params: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str | None = None
) -> str:
    text = params.get(name)
    if text is None or text == "":
        if default is None:
            raise mandatory(name)
        return default
    if text not in allowed:
        raise bad_param(name, f"{text!r} is not one of {', '.join(allowed)}")
    return text


def client_id_param(params: Mapping[str, str], name: str) -> str | None:
    text = params.get(name)
    if text is None or text == "":
        return None
    if not _CLIENT_ID.fullmatch(text):
        raise ApiError(
            400,
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is '^[.A-Z:/a-z0-9_-]{{1,36}}$'.",
        )
    return text


def market_param(
    params: Mapping[str, str], specs: Mapping[str, MarketSpec], name: str = "symbol"
) -> MarketSpec:
    symbol = required(params, name)
    spec = specs.get(symbol.upper())
    if spec is None:
        raise bad_symbol()
    return spec


def to_ticks(spec: MarketSpec, value: Decimal, name: str) -> int:
    """A price in whole ticks; not a tick multiple is -4014 (Binance's "Price not increased by tick size")."""
    return to_units(
        value,
        spec.tick_size,
        name,
        lambda: bad_request(
            -4014, f"Price not increased by tick size: {name} {value} is not a multiple of {spec.tick_size}."
        ),
    )


def to_lots(spec: MarketSpec, value: Decimal, name: str) -> int:
    """A quantity in whole lots.

    More decimals than ``quantityPrecision`` (the lot size's decimals) is -1111, as Binance answers
    before it checks the step; within the precision but not a step multiple is -4023.
    """
    precision = _decimals(spec.lot_size)
    if _decimals(value) > precision:
        raise bad_request(
            -1111,
            f"Precision is over the maximum defined for this asset: {name} {value} has more than"
            f" {precision} decimals (quantityPrecision).",
        )
    return to_units(
        value,
        spec.lot_size,
        name,
        lambda: bad_request(
            -4023,
            f"Quantity not increased by step size: {name} {value} is not a multiple of {spec.lot_size}.",
        ),
    )


def _decimals(value: Decimal) -> int:
    """Digits after the point, trailing zeros ignored (``0.0010`` -> 3)."""
    return max(0, -int(value.normalize().as_tuple().exponent))


def to_atoms(value: Decimal, atom: Decimal, name: str) -> int:
    """An amount in whole atoms of an asset; finer than the atom is -1111."""
    return to_units(
        value,
        atom,
        name,
        lambda: bad_request(
            -1111,
            f"Precision is over the maximum defined for this asset: {name} {value} has more decimals than {atom}.",
        ),
    )


def to_units(value: Decimal, unit: Decimal, name: str, not_multiple: Callable[[], ApiError]) -> int:
    """``value`` as a whole number of ``unit`` in ``0..MAX_UNITS``.

    Raises
    ------
    ApiError
        ``not_multiple()`` if ``value`` is not a whole number of ``unit``; -1102 if it is more
        than ``MAX_UNITS`` units (larger than the venue can hold, whatever the market's filters).
    """
    with localcontext(_EXACT):
        units = value / unit
        whole = units.to_integral_value()
    if units > MAX_UNITS:
        raise bad_param(
            name, f"{value} is larger than the venue can hold (at most {format_units(MAX_UNITS, unit)})"
        )
    if units != whole:
        raise not_multiple()
    return int(units)


def price(spec: MarketSpec, ticks: int | None) -> str:
    """Ticks as Binance's price string (``"0"`` for none)."""
    return "0" if ticks is None else format_units(ticks, spec.tick_size)


def qty(spec: MarketSpec, lots: int) -> str:
    return format_units(lots, spec.lot_size)


def money(atoms: int, atom: Decimal) -> str:
    return format_units(atoms, atom)


def ms(ts_ns: int) -> int:
    """Nanoseconds to Binance's integer milliseconds (floor)."""
    return ts_ns // NS_PER_MS
