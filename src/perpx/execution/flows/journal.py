"""The flow journal: every node's change of state, durable, so a restarted flow resumes where it was.

One JSON line per record, flushed and fsynced before the runner goes on. A restarted
:class:`~.runner.FlowRunner` reads it back: conditions that already held, waits that already
elapsed and OCO legs already canceled stay so, and order nodes are found on the venue by their
derived client order ids (a node journaled ``working`` is followed, not sent again). A torn last line
(the process died mid-write) is dropped; the change it described is simply made again.

Records
-------
===========  ===================================================================================
``started``  first line: the flow id, the document's name, and the time the flow started
``node``     a node's new status, when, why, and its arrival price when it started
===========  ===================================================================================
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import IO

import msgspec


class StartedRecord(msgspec.Struct, frozen=True, tag="started", kw_only=True):
    flow_id: str
    document: str
    ts_ns: int


class NodeRecord(msgspec.Struct, frozen=True, tag="node", kw_only=True):
    ts_ns: int
    node: str
    status: str
    reason: str
    arrival_price: Decimal | None = None


FlowRecord = StartedRecord | NodeRecord
_decoder = msgspec.json.Decoder(FlowRecord)
_encoder = msgspec.json.Encoder(decimal_format="string")


class FlowJournal:
    """Appends records to ``path`` durably; ``None`` keeps them in memory only."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.records: list[FlowRecord] = read_journal(path) if path is not None and path.exists() else []
        self._file: IO[bytes] | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            _cut_torn_tail(path)
            self._file = path.open("ab")

    def append(self, record: FlowRecord) -> None:
        """Write ``record`` and make it durable before returning."""
        self.records.append(record)
        if self._file is not None:
            self._file.write(_encoder.encode(record) + b"\n")
            self._file.flush()
            os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_journal(path: Path) -> list[FlowRecord]:
    """Every whole record at ``path``, in order; a torn final line is dropped.

    Raises
    ------
    ValueError
        If a line other than the last cannot be decoded (the journal was edited or corrupted).
    """
    lines = path.read_bytes().split(b"\n")
    records: list[FlowRecord] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(_decoder.decode(line))
        except msgspec.DecodeError as exc:
            if number == len(lines):
                break
            raise ValueError(f"{path}:{number}: not a flow journal record ({exc})") from exc
    return records


def _cut_torn_tail(path: Path) -> None:
    """Drop a last line without its newline (a write cut by a crash), so the next record starts clean."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as file:
            file.truncate(data.rfind(b"\n") + 1)
