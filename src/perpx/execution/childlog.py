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

from pathlib import Path

import msgspec

from perpx.execution.appendlog import AppendLog, read_records
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

_decoder: msgspec.json.Decoder[Record] = msgspec.json.Decoder(Record)


class ChildLog(AppendLog[Record]):
    """The child log at ``path`` (:class:`~perpx.execution.appendlog.AppendLog`); ``None`` keeps it in memory."""

    def __init__(self, path: Path | None) -> None:
        super().__init__(path, Record, what="child-log record")


def read_log(path: Path) -> list[Record]:
    """Every whole record of the child log at ``path``, in order; a torn final line is dropped.

    Raises
    ------
    ValueError
        If a line other than the last cannot be decoded (the log was edited or corrupted).
    """
    return read_records(path, _decoder, "child-log record")
