"""The algo registry: which parent orders the server runs, for whom, and how each one ended.

``DATA/algos/registry.jsonl`` is an :class:`~perpx.execution.appendlog.AppendLog` (fsynced JSON
lines); each parent's decisions live in its own child log, ``DATA/algos/<algoId>.childlog``
(:mod:`perpx.execution.childlog`). The registry says *that* a parent exists; the child log says
*what it did*; the trading read model says *what the venue made of it*.

Records
-------
====================  =========================================================================
``created``           a parent was accepted: algo id, account, Binance type, urgency, book time,
                      and the canonical :class:`~perpx.execution.model.ParentOrder`
``cancel_requested``  the client asked to cancel it (done on the algo driver's next turn)
``ended``             it ended: FINISHED, CANCELLED or EXPIRED, when, why, and what it executed
====================  =========================================================================

Write order on creation: the child log's ``bound`` record first, then ``created``. A child log with
no ``created`` record was never answered and never sent a child (children are only sent by a
registered runner), so start-up removes it.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import msgspec

from perpx.execution.appendlog import AppendLog
from perpx.execution.model import ParentOrder

REGISTRY_FILE = "registry.jsonl"
ALGOS_DIR = "algos"


class AlgoStatus(StrEnum):
    """Binance's ``algoStatus``; EXPIRED is perpx's (Binance ends such an algo without saying why)."""

    WORKING = "WORKING"
    FINISHED = "FINISHED"
    """Every lot executed."""
    CANCELLED = "CANCELLED"
    """Cancelled by the client (DELETE), or because its agent key was killed."""
    EXPIRED = "EXPIRED"
    """Ended with a remainder: the window closed, children were refused, or nothing could trade."""


class CreatedRecord(msgspec.Struct, frozen=True, tag="created", kw_only=True):
    algo_id: int
    account_id: int
    algo_type: str
    """``TWAP`` or ``VP`` (Binance's routes), or the perpx algorithm's name in upper case."""
    urgency: str | None
    book_ms: int
    parent: ParentOrder


class CancelRequestedRecord(msgspec.Struct, frozen=True, tag="cancel_requested", kw_only=True):
    algo_id: int
    ts_ms: int


class EndedRecord(msgspec.Struct, frozen=True, tag="ended", kw_only=True):
    algo_id: int
    status: AlgoStatus
    end_ms: int
    reason: str


RegistryRecord = CreatedRecord | CancelRequestedRecord | EndedRecord


class Registry(AppendLog[RegistryRecord]):
    """The registry at ``DATA/algos/registry.jsonl``; ``None`` keeps it in memory (tests)."""

    def __init__(self, path: Path | None) -> None:
        super().__init__(path, RegistryRecord, what="algo registry record")


def child_log_path(algos_dir: Path, algo_id: int) -> Path:
    """Where the child log of ``algo_id`` lives."""
    return algos_dir / f"{algo_id}.childlog"
