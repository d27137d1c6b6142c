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

from decimal import Decimal
from pathlib import Path

import msgspec

from perpx.execution.appendlog import AppendLog, read_records


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
_decoder: msgspec.json.Decoder[FlowRecord] = msgspec.json.Decoder(FlowRecord)


class FlowJournal(AppendLog[FlowRecord]):
    """The flow journal at ``path`` (:class:`~perpx.execution.appendlog.AppendLog`); ``None`` keeps it in memory."""

    def __init__(self, path: Path | None) -> None:
        super().__init__(path, FlowRecord, what="flow journal record")


def read_journal(path: Path) -> list[FlowRecord]:
    """Every whole record at ``path``, in order; a torn final line is dropped.

    Raises
    ------
    ValueError
        If a line other than the last cannot be decoded (the journal was edited or corrupted).
    """
    return read_records(path, _decoder, "flow journal record")
