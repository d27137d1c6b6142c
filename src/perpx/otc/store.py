"""The desk's records: every quote and its outcome, every refused request, every hedge; in SQLite.

Quotes live here, not in the journal: a quote changes no balance. Each write commits before the
desk answers (``synchronous=FULL``), so a quote a client saw, and the outcome of its accept, survive
a crash. The block trade an accept books is a journaled engine command carrying the quote id, so
the ledger and this store can always be joined (``perpx desk report``).

States of a quote::

    QUOTED --accept passed the desk's checks--> BOOKING --the engine booked it--> FILLED
           --accept after expiry---------------------------->  EXPIRED
           --index moved beyond the last-look threshold----->  LAST_LOOK_REJECTED (move recorded)
           --the engine refused the block trade------------->  REJECTED (code and message recorded)

BOOKING is written before the block trade is submitted, so a quote is never booked twice: one whose
outcome the venue could not tell (it stopped, or the answer timed out) stays BOOKING until the next
start settles it from the journal (``perpx.otc.reconcile``: FILLED if its block trade was booked,
else REJECTED with -9570). A quote never accepted stays QUOTED in the table; it counts as expired once venue time passes its
``expires_ns`` (the report reads it so).
"""

from __future__ import annotations

import sqlite3
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

FILE_NAME = "otc.sqlite"

QUOTED = "QUOTED"
BOOKING = "BOOKING"
FILLED = "FILLED"
EXPIRED = "EXPIRED"
LAST_LOOK_REJECTED = "LAST_LOOK_REJECTED"
REJECTED = "REJECTED"


@dataclass(frozen=True, slots=True)
class QuoteRecord:
    """One quote as given, and its outcome (``state`` and the ``accept_*`` fields)."""

    quote_id: str
    account_id: int
    tier: str
    symbol: str
    requested: str
    qty_lots: int
    bid_ticks: int | None
    ask_ticks: int | None
    index_ticks: int
    mark_ticks: int
    bid_half_bps: str
    ask_half_bps: str
    skew_bps: str
    volatility_bps: str
    inventory_lots: int
    created_ns: int
    expires_ns: int
    state: str = QUOTED
    accept_side: str | None = None
    accept_ns: int | None = None
    accept_index_ticks: int | None = None
    move_bps: str | None = None
    trade_id: int | None = None
    code: int | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class RefusedRequest:
    """A request the desk gave no price for, and why."""

    account_id: int
    tier: str
    symbol: str
    requested: str
    qty_lots: int
    ts_ns: int
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class HedgeRecord:
    """One hedge: a parent order the desk sent through the execution engine."""

    hedge_id: str
    symbol: str
    side: str
    qty_lots: int
    algo: str
    start_ns: int
    arrival_ticks: int
    inventory_lots: int
    reason: str
    venue: str = ""
    """Where it ran: ``""`` for perpx's own book, else the policy's ``venue`` (``perpx.otc.outside``)."""


@dataclass(frozen=True, slots=True)
class OutsideFill:
    """One fill of a hedge child on an outside venue: not on perpx's ledger, so kept here for the report.

    ``price``, ``qty`` (base units) and ``fee`` (the quote asset, negative for a rebate) are the
    outside venue's exact decimals, as text. ``fill_ns`` is that venue's time of the fill;
    ``booked_ns`` perpx's venue time when the desk recorded it: the report books the fill then
    (``perpx.otc.outside_pnl``). Unique by ``(venue, trade_id)``: recording twice changes nothing.
    """

    venue: str
    trade_id: str
    hedge_id: str
    symbol: str
    side: str
    client_order_id: str
    price: str
    qty: str
    fee: str
    fill_ns: int
    booked_ns: int


R = TypeVar("R", QuoteRecord, RefusedRequest, HedgeRecord, OutsideFill)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS quotes (
    quote_id TEXT PRIMARY KEY, account_id INTEGER NOT NULL, tier TEXT NOT NULL, symbol TEXT NOT NULL,
    requested TEXT NOT NULL, qty_lots INTEGER NOT NULL, bid_ticks INTEGER, ask_ticks INTEGER,
    index_ticks INTEGER NOT NULL, mark_ticks INTEGER NOT NULL, bid_half_bps TEXT NOT NULL,
    ask_half_bps TEXT NOT NULL, skew_bps TEXT NOT NULL, volatility_bps TEXT NOT NULL,
    inventory_lots INTEGER NOT NULL, created_ns INTEGER NOT NULL, expires_ns INTEGER NOT NULL,
    state TEXT NOT NULL, accept_side TEXT, accept_ns INTEGER, accept_index_ticks INTEGER, move_bps TEXT,
    trade_id INTEGER, code INTEGER, reason TEXT);
CREATE TABLE IF NOT EXISTS refused (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, account_id INTEGER NOT NULL, tier TEXT NOT NULL,
    symbol TEXT NOT NULL, requested TEXT NOT NULL, qty_lots INTEGER NOT NULL, ts_ns INTEGER NOT NULL,
    code INTEGER NOT NULL, reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS hedges (
    hedge_id TEXT PRIMARY KEY, symbol TEXT NOT NULL, side TEXT NOT NULL, qty_lots INTEGER NOT NULL,
    algo TEXT NOT NULL, start_ns INTEGER NOT NULL, arrival_ticks INTEGER NOT NULL,
    inventory_lots INTEGER NOT NULL, reason TEXT NOT NULL, venue TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS outside_fills (
    venue TEXT NOT NULL, trade_id TEXT NOT NULL, hedge_id TEXT NOT NULL, symbol TEXT NOT NULL,
    side TEXT NOT NULL, client_order_id TEXT NOT NULL, price TEXT NOT NULL, qty TEXT NOT NULL,
    fee TEXT NOT NULL, fill_ns INTEGER NOT NULL, booked_ns INTEGER NOT NULL,
    PRIMARY KEY (venue, trade_id));
"""


class OtcStore:
    """The desk's SQLite file (``DIR/otc.sqlite``); ``":memory:"`` for tests."""

    def __init__(self, path: Path | str) -> None:
        if isinstance(path, Path):
            path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)
        columns = [row[1] for row in self.db.execute("PRAGMA table_info(hedges)").fetchall()]
        if "venue" not in columns:  # a store written before hedges could run outside perpx
            self.db.execute("ALTER TABLE hedges ADD COLUMN venue TEXT NOT NULL DEFAULT ''")

    @classmethod
    def in_dir(cls, directory: Path) -> OtcStore:
        """The store of a data directory."""
        return cls(directory / FILE_NAME)

    def close(self) -> None:
        self.db.close()

    def next_quote_id(self) -> str:
        """``Q`` and the next number: ids follow the order quotes were given, across restarts."""
        (count,) = self.db.execute("SELECT count(*) FROM quotes").fetchone()
        return f"Q{count + 1:08d}"

    def add_quote(self, record: QuoteRecord) -> None:
        self._insert("quotes", record)

    def update_quote(self, record: QuoteRecord) -> None:
        """Write ``record``'s outcome over the stored quote of the same id."""
        names = [f.name for f in fields(QuoteRecord) if f.name != "quote_id"]
        sets = ", ".join(f"{n} = ?" for n in names)
        values = [getattr(record, n) for n in names]
        self.db.execute(f"UPDATE quotes SET {sets} WHERE quote_id = ?", [*values, record.quote_id])

    def quote(self, quote_id: str) -> QuoteRecord | None:
        rows = self._select(QuoteRecord, "quotes", "quote_id = ?", [quote_id])
        return rows[0] if rows else None

    def quotes(self) -> list[QuoteRecord]:
        return self._select(QuoteRecord, "quotes", "1", [], "created_ns, quote_id")

    def add_refused(self, record: RefusedRequest) -> None:
        self._insert("refused", record)

    def refused(self) -> list[RefusedRequest]:
        return self._select(RefusedRequest, "refused", "1", [], "seq")

    def add_hedge(self, record: HedgeRecord) -> None:
        self._insert("hedges", record)

    def hedges(self) -> list[HedgeRecord]:
        return self._select(HedgeRecord, "hedges", "1", [], "start_ns, hedge_id")

    def hedge(self, hedge_id: str) -> HedgeRecord | None:
        rows = self._select(HedgeRecord, "hedges", "hedge_id = ?", [hedge_id])
        return rows[0] if rows else None

    def add_outside_fill(self, record: OutsideFill) -> bool:
        """Record an outside fill once; ``False`` when it was already recorded (by venue and trade id)."""
        names = [f.name for f in fields(record)]
        marks = ", ".join("?" for _ in names)
        cursor = self.db.execute(
            f"INSERT OR IGNORE INTO outside_fills ({', '.join(names)}) VALUES ({marks})", astuple(record)
        )
        return cursor.rowcount == 1

    def outside_fills(self) -> list[OutsideFill]:
        """Every recorded outside fill, in the order the desk booked them."""
        return self._select(OutsideFill, "outside_fills", "1", [], "booked_ns, fill_ns, venue, trade_id")

    def _insert(self, table: str, record: Any) -> None:
        names = [f.name for f in fields(record)]
        marks = ", ".join("?" for _ in names)
        self.db.execute(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})", astuple(record))

    def _select(self, kind: type[R], table: str, where: str, args: list[Any], order: str = "1") -> list[R]:
        names = ", ".join(f.name for f in fields(kind))
        rows = self.db.execute(f"SELECT {names} FROM {table} WHERE {where} ORDER BY {order}", args)
        return [kind(*row) for row in rows.fetchall()]
