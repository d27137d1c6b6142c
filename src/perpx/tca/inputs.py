"""What TCA is computed from: the parent order, its fills, the market's trades and quotes.

Every value is a :class:`~decimal.Decimal` built from the text it was read from (never from a
float), and every time is integer milliseconds since the epoch. The CSV readers refuse bad input
with an :class:`InputError` that names the file, the row and the column, so the command line can
print one line instead of a traceback.

CSV columns, fixed by the issue (a header row, any column order, extra columns ignored; every
named column is required and no cell may be empty):

============  =========================================================================
fills         ``ts_ms, price, qty, fee, liquidity``: ``fee`` in the quote currency, negative
              for a rebate; ``liquidity`` ``MAKER`` or ``TAKER``
trades        ``ts_ms, price, qty, own``: the market's whole tape over the order's life,
              **own fills included**, ``own`` 1 for the order's own prints and 0 for the rest
quotes        ``ts_ms, bid, ask``: the top of book, each row in force from its time on
============  =========================================================================
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Context, Decimal, InvalidOperation, localcontext
from enum import Enum
from functools import wraps
from pathlib import Path
from typing import ParamSpec, TypeVar

T = TypeVar("T")
P = ParamSpec("P")

EXACT = Context(prec=60)
"""The context every TCA computation runs in: wide enough that no sum or product of realistic
prices and quantities is rounded, so the Perold identity holds with ``==``."""


def exact(function: Callable[P, T]) -> Callable[P, T]:
    """Run ``function`` in :data:`EXACT`, whatever context its caller has."""

    @wraps(function)
    def in_context(*args: P.args, **kwargs: P.kwargs) -> T:
        with localcontext(EXACT):
            return function(*args, **kwargs)

    return in_context


class InputError(ValueError):
    """Input TCA cannot use; the message names the file, row and column where there is one."""


class Side(Enum):
    """The parent order's direction; ``sign`` is the ``s`` of every formula."""

    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1


@dataclass(frozen=True, slots=True)
class ParentOrder:
    """The order being analysed: what was wanted, at which reference prices, over which interval.

    ``end_price`` is ``P_c``, the price the unfilled remainder is valued at (opportunity cost);
    ``None`` lets the analysis take the mid (or the last trade) at ``end_ms``. ``start_ms`` and
    ``end_ms`` bound the interval VWAP and participation; ``None`` means the first and last fill.
    """

    side: Side
    qty: Decimal
    decision_price: Decimal
    arrival_price: Decimal
    end_price: Decimal | None = None
    start_ms: int | None = None
    end_ms: int | None = None

    def __post_init__(self) -> None:
        if self.qty <= 0:
            raise InputError(f"--qty must be positive, was {self.qty}")
        for name, value in (
            ("--decision-price", self.decision_price),
            ("--arrival-price", self.arrival_price),
            ("--end-price", self.end_price),
        ):
            if value is not None and value <= 0:
                raise InputError(f"{name} must be positive, was {value}")
        if self.start_ms is not None and self.end_ms is not None and self.end_ms < self.start_ms:
            raise InputError(f"--end-ms {self.end_ms} is before --start-ms {self.start_ms}")


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of the parent order: ``fee`` is positive when paid, negative for a rebate."""

    time_ms: int
    price: Decimal
    qty: Decimal
    fee: Decimal = Decimal(0)
    maker: bool | None = None
    trade_id: int | None = None


@dataclass(frozen=True, slots=True)
class Trade:
    """One print of the market's tape; ``own`` says whether it is one of the order's own fills
    (``None`` when the source does not say, as on a venue's tape, where trade ids tell)."""

    time_ms: int
    price: Decimal
    qty: Decimal
    trade_id: int | None = None
    own: bool | None = None


@dataclass(frozen=True, slots=True)
class Quote:
    """The top of book from ``time_ms`` until the next quote."""

    time_ms: int
    bid: Decimal
    ask: Decimal

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2

    @property
    def half_spread(self) -> Decimal:
        return (self.ask - self.bid) / 2


TIME = "ts_ms"
"""The time column of every CSV file: integer milliseconds since the epoch."""
FILL_COLUMNS = (TIME, "price", "qty", "fee", "liquidity")
TRADE_COLUMNS = (TIME, "price", "qty", "own")
QUOTE_COLUMNS = (TIME, "bid", "ask")
LIQUIDITY = {"MAKER": True, "TAKER": False}
OWN = {"1": True, "0": False}


class _Row:
    """One CSV row with the parsers that name the file, row and column they fail on."""

    def __init__(self, path: Path, number: int, values: dict[str, str]) -> None:
        self.path = path
        self.number = number
        self.values = values

    def _fail(self, column: str, why: str) -> InputError:
        return InputError(f"{self.path}: row {self.number}, column {column}: {why}")

    def text(self, column: str) -> str | None:
        value = self.values.get(column)
        return None if value is None or value.strip() == "" else value.strip()

    def required(self, column: str) -> str:
        value = self.text(column)
        if value is None:
            raise self._fail(column, "empty")
        return value

    def decimal(self, column: str, *, positive: bool = False, default: Decimal | None = None) -> Decimal:
        raw = self.text(column) if default is not None else self.required(column)
        if raw is None:
            assert default is not None
            return default
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise self._fail(column, f"not a number: {raw!r}") from None
        if not value.is_finite():
            raise self._fail(column, f"not a finite number: {raw!r}")
        if positive and value <= 0:
            raise self._fail(column, f"must be positive, was {raw}")
        return value

    def integer(self, column: str, *, optional: bool = False) -> int | None:
        raw = self.text(column) if optional else self.required(column)
        if raw is None:
            return None
        try:
            value = int(raw)
        except ValueError:
            raise self._fail(column, f"not an integer: {raw!r}") from None
        if value < 0:
            raise self._fail(column, f"must not be negative, was {raw}")
        return value

    def time_ms(self) -> int:
        value = self.integer(TIME)
        assert value is not None
        return value

    def choice(self, column: str, meanings: dict[str, bool]) -> bool:
        """The required ``column`` as one of ``meanings``' keys (any letter case)."""
        raw = self.required(column)
        value = meanings.get(raw.upper())
        if value is None:
            raise self._fail(column, f"must be {' or '.join(meanings)}, was {raw!r}")
        return value

    def check(self, ok: bool, column: str, why: str) -> None:
        if not ok:
            raise self._fail(column, why)


def _read(path: Path, required: Sequence[str], build: Callable[[_Row], T]) -> list[T]:
    """The rows of ``path`` through ``build``, oldest first; the header must hold ``required``."""
    try:
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            header = [name.strip() for name in reader.fieldnames or []]
            if not header:
                raise InputError(f"{path}: empty file (a header row with {', '.join(required)} is needed)")
            missing = [name for name in required if name not in header]
            if missing:
                raise InputError(f"{path}: row 1 (header): missing column {', '.join(missing)}")
            reader.fieldnames = header
            items: list[tuple[int, int, T]] = []
            for index, raw in enumerate(reader):
                row = _Row(path, index + 2, {k: v for k, v in raw.items() if isinstance(k, str) and v})
                item = build(row)
                items.append((row.time_ms(), index, item))
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    except csv.Error as exc:
        raise InputError(f"{path}: not CSV ({exc})") from exc
    items.sort(key=lambda entry: (entry[0], entry[1]))
    return [item for _, _, item in items]


def read_fills(path: Path) -> list[Fill]:
    """The fills in ``path``, oldest first; an empty table is an error (there is nothing to analyse)."""

    def build(row: _Row) -> Fill:
        return Fill(
            time_ms=row.time_ms(),
            price=row.decimal("price", positive=True),
            qty=row.decimal("qty", positive=True),
            fee=row.decimal("fee"),
            maker=row.choice("liquidity", LIQUIDITY),
        )

    fills = _read(path, FILL_COLUMNS, build)
    if not fills:
        raise InputError(f"{path}: no fills (only a header)")
    return fills


def read_trades(path: Path) -> list[Trade]:
    """The market's trades in ``path``, oldest first."""

    def build(row: _Row) -> Trade:
        return Trade(
            time_ms=row.time_ms(),
            price=row.decimal("price", positive=True),
            qty=row.decimal("qty", positive=True),
            own=row.choice("own", OWN),
        )

    return _read(path, TRADE_COLUMNS, build)


def read_quotes(path: Path) -> list[Quote]:
    """The quotes in ``path``, oldest first; a crossed or locked-through quote (bid > ask) is refused."""

    def build(row: _Row) -> Quote:
        bid = row.decimal("bid", positive=True)
        ask = row.decimal("ask", positive=True)
        row.check(bid <= ask, "ask", f"below the bid ({ask} < {bid})")
        return Quote(row.time_ms(), bid, ask)

    return _read(path, QUOTE_COLUMNS, build)


def check_fills(order: ParentOrder, fills: Sequence[Fill], source: str) -> None:
    """Refuse fills that cannot belong to ``order``: more filled than ordered."""
    filled = sum((fill.qty for fill in fills), Decimal(0))
    if filled > order.qty:
        raise InputError(f"{source}: the fills add up to {filled}, more than --qty {order.qty}")
