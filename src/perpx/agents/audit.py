"""The agents' audit log: an append-only file of JSON lines, each holding the previous line's hash.

Every agent request and decision (allowed or refused, with the reason) and every admin action on
agents is one entry. Entry ``n`` carries ``prev`` = the hash of entry ``n - 1`` (64 zeros for the
first) and ``hash`` = SHA-256 of its own canonical JSON without ``hash``. Changing, removing or
reordering any entry breaks the link at that entry, which :func:`verify_chain` reports (it cannot
stop someone who rewrites the whole file from there on: keep a copy of the last hash elsewhere
when that matters; ``GET /admin/v1/agents/{agentId}/audit`` shows it).
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

AUDIT_FILE = "agents-audit.jsonl"
GENESIS = "0" * 64


def entry_hash(entry: dict[str, Any]) -> str:
    """SHA-256 of the entry's canonical JSON (sorted keys, no spaces), ``hash`` left out."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What :func:`verify_chain` found: ``broken_at`` is the 1-based line of the first bad entry."""

    entries: int
    broken_at: int | None = None
    reason: str = ""
    last_hash: str = GENESIS

    @property
    def ok(self) -> bool:
        return self.broken_at is None

    def line(self) -> str:
        if self.ok:
            return f"audit chain intact: {self.entries} entries, last hash {self.last_hash}"
        return f"audit chain broken at entry {self.broken_at}: {self.reason}"


def verify_chain(path: Path) -> ChainReport:
    """Check every link of the log at ``path``; stop at the first broken one (a missing file is empty)."""
    if not path.exists():
        return ChainReport(0)
    prev = GENESIS
    count = 0
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                entry = json.loads(raw)
            except ValueError:
                return ChainReport(count, number, "the line is not JSON (torn or edited)")
            if not isinstance(entry, dict):
                return ChainReport(count, number, "the line is not a JSON object")
            if entry.get("prev") != prev:
                return ChainReport(count, number, "its 'prev' is not the previous entry's hash")
            if entry.get("hash") != entry_hash(entry):
                return ChainReport(count, number, "its content does not match its hash (edited)")
            prev = entry["hash"]
            count += 1
    return ChainReport(count, last_hash=prev)


class AuditLog:
    """Appends chained entries to ``DATA/agents-audit.jsonl``; thread-safe, flushed per entry.

    Opening an existing log verifies it first and refuses to extend a broken chain (a new entry
    would otherwise hide the break behind a valid link).
    """

    def __init__(self, path: Path) -> None:
        report = verify_chain(path)
        if not report.ok:
            raise ValueError(f"{path}: {report.line()}; run `perpx audit verify --data DIR` and investigate")
        self.path = path
        self._prev = report.last_hash
        self._seq = report.entries
        self._lock = threading.Lock()
        self._handle = path.open("a", encoding="utf-8")

    def append(
        self, ts_ms: int, agent_id: str | None, action: str, decision: str, **detail: Any
    ) -> dict[str, Any]:
        """Append one entry and return it (with ``seq``, ``prev`` and ``hash``)."""
        with self._lock:
            entry: dict[str, Any] = {
                "seq": self._seq + 1,
                "tsMs": ts_ms,
                "agentId": agent_id,
                "action": action,
                "decision": decision,
                **detail,
                "prev": self._prev,
            }
            entry["hash"] = entry_hash(entry)
            self._handle.write(json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n")
            self._handle.flush()
            self._prev = entry["hash"]
            self._seq += 1
            return entry

    def entries(self, agent_id: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
        """The last ``limit`` entries (of ``agent_id`` when given), oldest first."""
        with self._lock:
            self._handle.flush()
            lines = self.path.read_text(encoding="utf-8").splitlines()
        rows = [json.loads(line) for line in lines]
        if agent_id is not None:
            rows = [row for row in rows if row.get("agentId") == agent_id]
        return rows[-limit:]

    @property
    def last_hash(self) -> str:
        return self._prev

    def close(self) -> None:
        self._handle.close()
