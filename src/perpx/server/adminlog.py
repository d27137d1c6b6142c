"""The admin read model: liquidation explanations, insurance-fund movements and the parameter audit log.

A persistent :class:`~perpx.server.context.Component` in ``DATA/admin.sqlite`` (next to the API
keys). It keeps, from the events the sequencer applies:

==================  =================================================================
table               rows
==================  =================================================================
``liquidations``    every :class:`~perpx.engine.events.LiquidationExplained`, as the
                    event's JSON (``msgspec.json``), with the accounts it names
``insurance``       every :class:`~perpx.engine.events.InsuranceFundChanged`
``inputs``          for each liquidation row, the newest index and mark computations of
                    the markets of its positions before it (``perpx explain``'s *Inputs*)
``audit``           one row per parameter of every
                    :class:`~perpx.engine.events.MarketParamsChanged`: who (the
                    command's ``operator``), when (wall and venue time), old, new, seq
==================  =================================================================

Rows are keyed by journal ``seq`` (and position in the batch), and ``resume_seq`` is written in
the same transaction as the rows, so a restart replays exactly the records after it and a
replayed record is never stored twice. The inputs are the pricing events this process has seen:
after a restart, a liquidation before its markets' next index or mark computation has none (``perpx
explain --data DIR`` replays the journal and always has them). Amounts are stored as decimal text of integer atoms
(ledger totals are unbounded integers; SQLite's are 64-bit).
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

import msgspec

from perpx.engine.commands import ChangeMarketParams, UpdateMarketParams
from perpx.engine.events import (
    AdlStep,
    IndexUpdated,
    InsuranceFundChanged,
    LiquidationExplained,
    MarketParamsChanged,
    MarkPriceSet,
    MarkPriceUpdated,
)
from perpx.server.sequencer import Applied

PricingEvent = IndexUpdated | MarkPriceUpdated | MarkPriceSet
"""The events ``perpx explain`` shows as a record's inputs (:data:`perpx.explain.PRICING_EVENTS`)."""

Inputs = list[tuple[str, PricingEvent]]
"""``("BTCUSDT IndexUpdated", event)``, in ``perpx explain``'s order (market, then event name)."""

_PRICING = (IndexUpdated, MarkPriceUpdated, MarkPriceSet)

FILE = "admin.sqlite"
CHECKPOINT_EVERY = 5_000
"""Journal records between two ``resume_seq`` writes when no admin event arrives."""

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS admin_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS liquidations (seq INTEGER NOT NULL, idx INTEGER NOT NULL,"
    " ts_ns INTEGER NOT NULL, account_id INTEGER NOT NULL, accounts TEXT NOT NULL,"
    " record BLOB NOT NULL, PRIMARY KEY (seq, idx))",
    "CREATE TABLE IF NOT EXISTS insurance (seq INTEGER NOT NULL, idx INTEGER NOT NULL,"
    " ts_ns INTEGER NOT NULL, account_id INTEGER NOT NULL, market TEXT, reason TEXT NOT NULL,"
    " amount_atoms TEXT NOT NULL, fund_cash_atoms TEXT NOT NULL, PRIMARY KEY (seq, idx))",
    "CREATE TABLE IF NOT EXISTS inputs (seq INTEGER NOT NULL, idx INTEGER NOT NULL,"
    " record BLOB NOT NULL, PRIMARY KEY (seq, idx))",
    "CREATE TABLE IF NOT EXISTS audit (seq INTEGER NOT NULL, idx INTEGER NOT NULL, param TEXT NOT NULL,"
    " operator TEXT NOT NULL, wall_ns INTEGER NOT NULL, ts_ns INTEGER NOT NULL, market TEXT NOT NULL,"
    " old TEXT NOT NULL, new TEXT NOT NULL, PRIMARY KEY (seq, idx, param))",
)


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One parameter change: who, when (wall clock and venue clock, ns), what, and its journal record."""

    seq: int
    operator: str
    wall_ns: int
    ts_ns: int
    market: str
    param: str
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class FundRow:
    """One movement of insurance-fund cash (``amount_atoms`` > 0 into the fund)."""

    seq: int
    ts_ns: int
    account_id: int
    market: str | None
    reason: str
    amount_atoms: int
    fund_cash_atoms: int


class AdminLog:
    """The admin read model (component ``adminlog``); thread-safe."""

    def __init__(self, data_dir: Path) -> None:
        self._db = sqlite3.connect(data_dir / FILE, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        for statement in _SCHEMA:
            self._db.execute(statement)
        self._lock = threading.Lock()
        row = self._db.execute("SELECT value FROM admin_meta WHERE key = 'resume_seq'").fetchone()
        self._stored_seq = int(row[0]) if row else 0
        self._seq = self._stored_seq
        self._pricing: dict[tuple[str, str], PricingEvent] = {}

    # ------------------------------------------------------------------ component protocol

    def resume_seq(self) -> int | None:
        return self._seq

    def on_applied(self, batch: list[Applied]) -> None:
        liquidations: list[tuple[object, ...]] = []
        insurance: list[tuple[object, ...]] = []
        audit: list[tuple[object, ...]] = []
        inputs: list[tuple[object, ...]] = []
        for applied in batch:
            for idx, event in enumerate(applied.events):
                if isinstance(event, _PRICING):
                    self._pricing[(str(event.market), type(event).__name__)] = event
                elif isinstance(event, LiquidationExplained):
                    inputs.append((applied.seq, idx, msgspec.json.encode(self._inputs(event))))
                    liquidations.append(
                        (
                            applied.seq,
                            idx,
                            event.ts_ns,
                            int(event.account_id),
                            _named_accounts(event),
                            msgspec.json.encode(event),
                        )
                    )
                elif isinstance(event, InsuranceFundChanged):
                    insurance.append(
                        (
                            applied.seq,
                            idx,
                            event.ts_ns,
                            int(event.account_id),
                            event.market,
                            event.reason,
                            str(event.amount_atoms),
                            str(event.fund_cash_atoms),
                        )
                    )
                elif isinstance(event, MarketParamsChanged):
                    command = applied.command
                    wall_ns = (
                        command.wall_ns if isinstance(command, UpdateMarketParams | ChangeMarketParams) else 0
                    )
                    audit.extend(
                        (
                            applied.seq,
                            idx,
                            change.param,
                            event.operator,
                            wall_ns,
                            event.ts_ns,
                            event.market,
                            change.old,
                            change.new,
                        )
                        for change in event.changes
                    )
        last = batch[-1].seq if batch else self._seq
        self._seq = max(self._seq, last)
        if not (liquidations or insurance or audit) and self._seq - self._stored_seq < CHECKPOINT_EVERY:
            return
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR IGNORE INTO liquidations VALUES (?, ?, ?, ?, ?, ?)", liquidations)
            self._db.executemany("INSERT OR IGNORE INTO insurance VALUES (?, ?, ?, ?, ?, ?, ?, ?)", insurance)
            self._db.executemany("INSERT OR IGNORE INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", audit)
            self._db.executemany("INSERT OR IGNORE INTO inputs VALUES (?, ?, ?)", inputs)
            self._write_seq()
            self._db.execute("COMMIT")

    def _inputs(self, event: LiquidationExplained) -> Inputs:
        """The newest pricing events of the record's markets, as ``perpx explain`` collects them."""
        markets = {str(row.market) for row in event.before.positions}
        return [
            (f"{market} {name}", pricing)
            for (market, name), pricing in sorted(self._pricing.items())
            if market in markets
        ]

    def close(self) -> None:
        with self._lock:
            if self._seq != self._stored_seq:
                self._write_seq()
            self._db.close()

    def _write_seq(self) -> None:
        self._db.execute(
            "INSERT INTO admin_meta VALUES ('resume_seq', ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (self._seq,),
        )
        self._stored_seq = self._seq

    # ------------------------------------------------------------------ queries

    def liquidations(self, account_id: int | None, limit: int) -> list[tuple[int, LiquidationExplained]]:
        """The newest ``limit`` records (oldest first) naming ``account_id`` (all when ``None``)."""
        query = "SELECT seq, record FROM liquidations"
        args: tuple[object, ...] = ()
        if account_id is not None:
            query += " WHERE accounts LIKE ?"
            args = (f"%,{int(account_id)},%",)
        query += " ORDER BY seq DESC, idx DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(query, (*args, limit)).fetchall()
        decoder = msgspec.json.Decoder(LiquidationExplained)
        return [(int(seq), decoder.decode(record)) for seq, record in reversed(rows)]

    def explained(self, limit: int) -> list[tuple[int, LiquidationExplained, Inputs]]:
        """The newest ``limit`` records (oldest first), each with its inputs (empty when not kept)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT l.seq, l.record, i.record FROM liquidations l"
                " LEFT JOIN inputs i ON i.seq = l.seq AND i.idx = l.idx"
                " ORDER BY l.seq DESC, l.idx DESC LIMIT ?",
                (limit,),
            ).fetchall()
        records = msgspec.json.Decoder(LiquidationExplained)
        kept = msgspec.json.Decoder(Inputs)
        return [
            (int(seq), records.decode(record), [] if found is None else kept.decode(found))
            for seq, record, found in reversed(rows)
        ]

    def fund_history(self, limit: int) -> list[FundRow]:
        """The newest ``limit`` insurance-fund movements, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, ts_ns, account_id, market, reason, amount_atoms, fund_cash_atoms"
                " FROM insurance ORDER BY seq DESC, idx DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [FundRow(r[0], r[1], r[2], r[3], r[4], int(r[5]), int(r[6])) for r in reversed(rows)]

    def audit(self, market: str | None, limit: int) -> list[AuditRow]:
        """The newest ``limit`` parameter changes (of ``market``, or all), oldest first."""
        query = "SELECT seq, operator, wall_ns, ts_ns, market, param, old, new FROM audit"
        args: tuple[object, ...] = ()
        if market is not None:
            query += " WHERE market = ?"
            args = (market,)
        query += " ORDER BY seq DESC, idx DESC, param DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(query, (*args, limit)).fetchall()
        return [AuditRow(*row) for row in reversed(rows)]


def _named_accounts(event: LiquidationExplained) -> str:
    """``",3,7,"``: the liquidated account and every ADL counterparty, for a LIKE filter."""
    ids = {int(event.account_id)}
    for step in event.steps:
        if isinstance(step, AdlStep):
            ids.update(int(leg.account_id) for leg in step.legs)
    return "," + ",".join(str(i) for i in sorted(ids)) + ","
