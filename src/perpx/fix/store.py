"""The FIX session store: sequence numbers and every application message sent, per SenderCompID.

Why it exists: a client that reconnects without ``ResetSeqNumFlag(141)=Y`` continues both
sequences and asks for what it missed with a ``ResendRequest``; the venue answers with the stored
application messages (``PossDupFlag=Y``, ``OrigSendingTime``), including execution reports made
while the client was away or the venue was down. So a message is stored, and its sequence number
consumed, *before* it is written to the socket, and the store survives ``kill -9``: SQLite in WAL
mode, each message committed alone (a process crash loses nothing the OS has; a power cut may lose
the last commits, as ``synchronous = NORMAL`` documents).

Invariants: per CompID, stored sequence numbers are ``1..next_out - 1`` without gaps, except
what a reset (141=Y) cleared; ``next_in`` is the next sequence number expected from the client.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from perpx.fix.codec import Field

_SCHEMA = """
CREATE TABLE IF NOT EXISTS session (
    comp_id TEXT PRIMARY KEY,
    api_key TEXT NOT NULL,
    next_out INTEGER NOT NULL,
    next_in INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    order_id INTEGER PRIMARY KEY,
    comp_id TEXT NOT NULL,
    cl_ord_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_by_cl_ord_id ON orders (comp_id, cl_ord_id);
CREATE TABLE IF NOT EXISTS algos (
    algo_id INTEGER PRIMARY KEY,
    comp_id TEXT NOT NULL,
    cl_ord_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbound (
    comp_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    msg_type TEXT NOT NULL,
    sending_time TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (comp_id, seq)
);
"""


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """An application message as first sent: its seq, type, SendingTime(52) and body fields."""

    seq: int
    msg_type: str
    sending_time: str
    body: tuple[Field, ...]


@dataclass(frozen=True, slots=True)
class SessionSeqs:
    """A CompID's sequence numbers: the next to send and the next expected from the client."""

    api_key: str
    next_out: int
    next_in: int


def _encode_body(body: tuple[Field, ...]) -> str:
    return "\x01".join(f"{tag}={value}" for tag, value in body)


def _decode_body(text: str) -> tuple[Field, ...]:
    out: list[Field] = []
    for part in text.split("\x01") if text else []:
        tag, _eq, value = part.partition("=")
        out.append((int(tag), value))
    return tuple(out)


class SessionStore:
    """SQLite-backed store of every FIX session's sequence numbers and sent application messages."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def seqs(self, comp_id: str) -> SessionSeqs | None:
        """The CompID's sequence numbers, or ``None`` for a CompID never logged on."""
        row = self._db.execute(
            "SELECT api_key, next_out, next_in FROM session WHERE comp_id = ?", (comp_id,)
        ).fetchone()
        return None if row is None else SessionSeqs(row[0], row[1], row[2])

    def bindings(self) -> list[tuple[str, str]]:
        """Every ``(CompID, API key)`` ever bound, in CompID order."""
        return [
            (row[0], row[1])
            for row in self._db.execute("SELECT comp_id, api_key FROM session ORDER BY comp_id")
        ]

    def comp_ids_of(self, api_key: str) -> list[str]:
        """Every CompID bound to ``api_key`` (a drop copy reaches each of them), in name order."""
        rows = self._db.execute("SELECT comp_id FROM session WHERE api_key = ? ORDER BY comp_id", (api_key,))
        return [row[0] for row in rows]

    def bind(self, comp_id: str, api_key: str) -> SessionSeqs:
        """Bind a new CompID to ``api_key`` (both sequences at 1), or return the existing binding."""
        self._db.execute(
            "INSERT OR IGNORE INTO session (comp_id, api_key, next_out, next_in) VALUES (?, ?, 1, 1)",
            (comp_id, api_key),
        )
        seqs = self.seqs(comp_id)
        assert seqs is not None
        return seqs

    def reset(self, comp_id: str) -> None:
        """``ResetSeqNumFlag=Y``: both sequences back to 1, the sent messages forgotten."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("UPDATE session SET next_out = 1, next_in = 1 WHERE comp_id = ?", (comp_id,))
            self._db.execute("DELETE FROM outbound WHERE comp_id = ?", (comp_id,))

    def set_next_in(self, comp_id: str, next_in: int) -> None:
        self._db.execute("UPDATE session SET next_in = ? WHERE comp_id = ?", (next_in, comp_id))

    def take_out_seq(self, comp_id: str) -> int:
        """Consume the next outbound sequence number for an admin message (not stored, gap-filled on resend)."""
        with self._db:
            self._db.execute("BEGIN")
            row = self._db.execute("SELECT next_out FROM session WHERE comp_id = ?", (comp_id,)).fetchone()
            self._db.execute("UPDATE session SET next_out = next_out + 1 WHERE comp_id = ?", (comp_id,))
        return int(row[0])

    def append(self, comp_id: str, msg_type: str, sending_time: str, body: tuple[Field, ...]) -> int:
        """Store an application message under the next outbound sequence number; return that number."""
        with self._db:
            self._db.execute("BEGIN")
            row = self._db.execute("SELECT next_out FROM session WHERE comp_id = ?", (comp_id,)).fetchone()
            seq = int(row[0])
            self._db.execute(
                "INSERT INTO outbound (comp_id, seq, msg_type, sending_time, body) VALUES (?, ?, ?, ?, ?)",
                (comp_id, seq, msg_type, sending_time, _encode_body(body)),
            )
            self._db.execute("UPDATE session SET next_out = ? WHERE comp_id = ?", (seq + 1, comp_id))
        return seq

    def own_order(self, order_id: int, comp_id: str, cl_ord_id: str) -> None:
        """Remember that ``comp_id`` placed (or last renamed) ``order_id`` as ``cl_ord_id``: its reports go there."""
        self._db.execute(
            "INSERT OR REPLACE INTO orders (order_id, comp_id, cl_ord_id) VALUES (?, ?, ?)",
            (order_id, comp_id, cl_ord_id),
        )

    def order_owner(self, order_id: int) -> tuple[str, str] | None:
        """``(CompID, ClOrdID)`` of a FIX-placed order, or ``None``."""
        row = self._db.execute(
            "SELECT comp_id, cl_ord_id FROM orders WHERE order_id = ?", (order_id,)
        ).fetchone()
        return None if row is None else (row[0], row[1])

    def own_algo(self, algo_id: int, comp_id: str, cl_ord_id: str) -> None:
        """Remember a FIX-placed conditional order: the order it triggers reports to ``comp_id`` as ``cl_ord_id``."""
        self._db.execute(
            "INSERT OR REPLACE INTO algos (algo_id, comp_id, cl_ord_id) VALUES (?, ?, ?)",
            (algo_id, comp_id, cl_ord_id),
        )

    def algo_owner(self, algo_id: int) -> tuple[str, str] | None:
        """``(CompID, ClOrdID)`` of a FIX-placed conditional order, or ``None``."""
        row = self._db.execute(
            "SELECT comp_id, cl_ord_id FROM algos WHERE algo_id = ?", (algo_id,)
        ).fetchone()
        return None if row is None else (row[0], row[1])

    def order_named(self, comp_id: str, cl_ord_id: str) -> int | None:
        """The order ``comp_id`` placed or last renamed as ``cl_ord_id`` (the newest if reused), or ``None``."""
        row = self._db.execute(
            "SELECT order_id FROM orders WHERE comp_id = ? AND cl_ord_id = ? ORDER BY order_id DESC LIMIT 1",
            (comp_id, cl_ord_id),
        ).fetchone()
        return None if row is None else int(row[0])

    def sent(self, comp_id: str, begin: int, end: int) -> list[StoredMessage]:
        """The stored application messages with ``begin <= seq <= end``, in order."""
        rows = self._db.execute(
            "SELECT seq, msg_type, sending_time, body FROM outbound"
            " WHERE comp_id = ? AND seq BETWEEN ? AND ? ORDER BY seq",
            (comp_id, begin, end),
        )
        return [StoredMessage(row[0], row[1], row[2], _decode_body(row[3])) for row in rows]
