"""Wire formats: Binance's decimal strings to integer ticks, lots and atoms, and back.

Parsing is exact: a price that is not a whole number of ticks is refused with
Binance's code, never rounded. Every parser raises :class:`ApiError`, so a
handler can call them in a row and let the first bad parameter answer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from perpx.engine.config import MarketSpec
from perpx.engine.values import NS_PER_MS, format_units
from perpx.server.errors import ApiError, bad_param, bad_request, bad_symbol, mandatory

_DECIMAL = re.compile(r"^[0-9]+(\.[0-9]+)?$")
_CLIENT_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
MAX_DECIMAL_DIGITS = 40


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
    if len(text) > MAX_DECIMAL_DIGITS:
        raise bad_param(name, f"{len(text)} characters is too long for a number")
    if text.startswith("-"):
        try:
            Decimal(text)
        except InvalidOperation:
            raise bad_param(name, f"{text!r} is not a decimal number") from None
        raise ApiError(400, -1102, f"Parameter '{name}' was {text}; it must not be negative.")
    if not _DECIMAL.match(text):
        raise bad_param(name, f"{text!r} is not a plain decimal number")
    return Decimal(text)


def int_param(
    params: Mapping[str, str],
    name: str,
    *,
    default: int | None = None,
    lo: int | None = None,
    hi: int | None = None,
) -> int:
    text = params.get(name)
    if text is None or text == "":
        if default is None:
            raise mandatory(name)
        return default
    if not re.fullmatch(r"-?[0-9]{1,19}", text):
        raise bad_param(name, f"{text!r} is not an integer")
    value = int(text)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        bounds = f"{lo if lo is not None else '-inf'}..{hi if hi is not None else 'inf'}"
        raise bad_param(name, f"{value} is outside {bounds}")
    return value


def optional_int(params: Mapping[str, str], name: str) -> int | None:
    if params.get(name) in (None, ""):
        return None
    return int_param(params, name)


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
    if not _CLIENT_ID.match(text):
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
    units = value / spec.tick_size
    if units != units.to_integral_value():
        raise bad_request(
            -4014, f"Price not increased by tick size: {name} {value} is not a multiple of {spec.tick_size}."
        )
    return int(units)


def to_lots(spec: MarketSpec, value: Decimal, name: str) -> int:
    """A quantity in whole lots; not a step multiple is -4023."""
    units = value / spec.lot_size
    if units != units.to_integral_value():
        raise bad_request(
            -4023,
            f"Quantity not increased by step size: {name} {value} is not a multiple of {spec.lot_size}.",
        )
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
