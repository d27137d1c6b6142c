"""The child log: a durable, append-only record of a parent's binding and every child it sent.

Written *before* the venue sees a child (write-ahead), one JSON line per record, flushed and
fsynced, so after a crash (kill -9 included) the log holds every child that might be on the venue.
A restarted runner reads it back (:func:`read_log`) and asks the venue for each child by its
derived client order id: a child the venue knows is adopted, one it never saw was lost before
sending and is marked so. No child is ever sent twice, because no id is ever reused.

Records
-------
============  ==============================================================================
``bound``     first line: the parent as bound to its market (qty in lots, start, arrival price)
``place``     a child about to be sent: index, client order id, size, price, tif, reason
``cancel``    a cancel about to be sent, with its reason
``lost``      a ``place`` the venue never saw (found on restart)
``done``      the parent finished, with why
============  ==============================================================================

A torn last line (the process died mid-write) is ignored, and cut off before the next append: its
child was never sent.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

import msgspec

from perpx.execution.model import ParentOrder


class BoundRecord(msgspec.Struct, frozen=True, tag="bound", kw_only=True):
    """The parent and what binding it to the market fixed once and for all."""

    parent: ParentOrder
    qty_lots: int
    start_ns: int
    end_ns: int | None
    arrival_ticks: int


class PlaceRecord(msgspec.Struct, frozen=True, tag="place", kw_only=True):
    """A child the runner is about to send, and why."""

    index: int
    client_order_id: str
    ts_ns: int
    qty_lots: int
    price_ticks: int | None
    tif: str
    reason: str


class CancelRecord(msgspec.Struct, frozen=True, tag="cancel", kw_only=True):
    """A cancel the runner is about to send, and why."""

    client_order_id: str
    ts_ns: int
    reason: str


class LostRecord(msgspec.Struct, frozen=True, tag="lost", kw_only=True):
    """A logged child the venue never received (the runner died between logging and sending)."""

    client_order_id: str
    ts_ns: int


class DoneRecord(msgspec.Struct, frozen=True, tag="done", kw_only=True):
    """The parent finished."""

    ts_ns: int
    reason: str


Record = BoundRecord | PlaceRecord | CancelRecord | LostRecord | DoneRecord

_decoder = msgspec.json.Decoder(Record)
_encoder = msgspec.json.Encoder()


class ChildLog:
    """Appends records to ``path`` durably; ``None`` keeps them in memory only (tests, dry runs)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.records: list[Record] = read_log(path) if path is not None and path.exists() else []
        self._file: IO[bytes] | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            _drop_torn_tail(path)
            self._file = path.open("ab")

    def append(self, record: Record) -> None:
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


def _drop_torn_tail(path: Path) -> None:
    # a record torn by a crash has no newline after it: cut it off, or the next append would be
    # glued to it and both lines lost
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as file:
            file.truncate(data.rfind(b"\n") + 1)
            file.flush()
            os.fsync(file.fileno())


def read_log(path: Path) -> list[Record]:
    """Every whole record of the log at ``path``, in order; a torn final line is dropped.

    Raises
    ------
    ValueError
        If a line other than the last cannot be decoded (the log was edited or corrupted).
    """
    lines = path.read_bytes().split(b"\n")
    records: list[Record] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(_decoder.decode(line))
        except msgspec.DecodeError as exc:
            if number == len(lines):  # no newline after it: torn by a crash mid-write
                break
            raise ValueError(f"{path}:{number}: not a child-log record ({exc})") from exc
    return records
