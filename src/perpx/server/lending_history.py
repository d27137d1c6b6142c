"""The loan history read model: borrows, repayments, LTV adjustments and liquidations, per account.

A persistent :class:`~perpx.server.context.Component` in ``DATA/lending.sqlite``. It stores every
:class:`~perpx.engine.events.LoanBorrowed`, ``LoanRepaid``, ``LoanCollateralAdjusted`` and
``LoanLiquidated`` as the event's JSON (``msgspec.json``), keyed by journal ``seq`` and position in
the batch; ``resume_seq`` is written in the same transaction as the rows, so a restart replays
exactly the records after it and never stores one twice. The ``/sapi/v2/loan/flexible/*/history``
routes and ``perpx lending report`` read it.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import msgspec

from perpx.engine.events import Event, LoanBorrowed, LoanCollateralAdjusted, LoanLiquidated, LoanRepaid
from perpx.server.sequencer import Applied

FILE = "lending.sqlite"
CHECKPOINT_EVERY = 5_000
"""Journal records between two ``resume_seq`` writes when no loan event arrives."""

KINDS: dict[type[Event], str] = {
    LoanBorrowed: "borrow",
    LoanRepaid: "repay",
    LoanCollateralAdjusted: "adjust",
    LoanLiquidated: "liquidation",
}
LoanEvent = LoanBorrowed | LoanRepaid | LoanCollateralAdjusted | LoanLiquidated
_DECODER = msgspec.json.Decoder(LoanEvent)

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS lending_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS loan_events (seq INTEGER NOT NULL, idx INTEGER NOT NULL,"
    " ts_ns INTEGER NOT NULL, account_id INTEGER NOT NULL, kind TEXT NOT NULL, loan_coin TEXT NOT NULL,"
    " collateral_coin TEXT NOT NULL, record BLOB NOT NULL, PRIMARY KEY (seq, idx))",
    "CREATE INDEX IF NOT EXISTS loan_events_by_account ON loan_events (account_id, kind, ts_ns)",
)


class LoanHistory:
    """The loan history (component ``lending``); thread-safe."""

    def __init__(self, data_dir: Path) -> None:
        self._db = sqlite3.connect(data_dir / FILE, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        for statement in _SCHEMA:
            self._db.execute(statement)
        self._lock = threading.Lock()
        row = self._db.execute("SELECT value FROM lending_meta WHERE key = 'resume_seq'").fetchone()
        self._stored_seq = int(row[0]) if row else 0
        self._seq = self._stored_seq

    def resume_seq(self) -> int | None:
        return self._seq

    def on_applied(self, batch: list[Applied]) -> None:
        rows: list[tuple[object, ...]] = []
        for applied in batch:
            for idx, event in enumerate(applied.events):
                kind = KINDS.get(type(event))
                if kind is None:
                    continue
                assert isinstance(event, LoanBorrowed | LoanRepaid | LoanCollateralAdjusted | LoanLiquidated)
                rows.append(
                    (
                        applied.seq,
                        idx,
                        event.ts_ns,
                        int(event.account_id),
                        kind,
                        str(event.loan_asset),
                        str(event.collateral_asset),
                        msgspec.json.encode(event),
                    )
                )
        last = batch[-1].seq if batch else self._seq
        self._seq = max(self._seq, last)
        if not rows and self._seq - self._stored_seq < CHECKPOINT_EVERY:
            return
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR IGNORE INTO loan_events VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            self._db.execute(
                "INSERT INTO lending_meta (key, value) VALUES ('resume_seq', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (self._seq,),
            )
            self._db.execute("COMMIT")
            self._stored_seq = self._seq

    def close(self) -> None:
        with self._lock:
            if self._seq != self._stored_seq:
                self._db.execute(
                    "INSERT INTO lending_meta (key, value) VALUES ('resume_seq', ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (self._seq,),
                )
            self._db.close()

    def rows(
        self,
        kind: str,
        account_id: int | None,
        loan_coin: str | None,
        collateral_coin: str | None,
        start_ns: int | None,
        end_ns: int | None,
        offset: int,
        limit: int,
    ) -> tuple[list[LoanEvent], int]:
        """One page of ``kind`` events (newest first) and how many match in all."""
        where = ["kind = ?"]
        args: list[object] = [kind]
        for column, value in (
            ("account_id", account_id),
            ("loan_coin", loan_coin),
            ("collateral_coin", collateral_coin),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if start_ns is not None:
            where.append("ts_ns >= ?")
            args.append(start_ns)
        if end_ns is not None:
            where.append("ts_ns <= ?")
            args.append(end_ns)
        clause = " AND ".join(where)
        with self._lock:
            total = int(
                self._db.execute(f"SELECT COUNT(*) FROM loan_events WHERE {clause}", args).fetchone()[0]
            )
            found = self._db.execute(
                f"SELECT record FROM loan_events WHERE {clause} ORDER BY seq DESC, idx DESC LIMIT ? OFFSET ?",
                (*args, limit, offset),
            ).fetchall()
        return [_DECODER.decode(record) for (record,) in found], total
