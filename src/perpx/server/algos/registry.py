"""The algo registry: each parent order's parameters, as the client sent them.

``DATA/algos/registry.jsonl`` is an :class:`~perpx.execution.appendlog.AppendLog` (fsynced JSON
lines) of ``created`` records: algo id, account, Binance type, urgency, book time and the canonical
:class:`~perpx.execution.model.ParentOrder`. A parent's status, executed quantity and end are not
here: they are the engine's (:mod:`perpx.engine.parents`, journaled), the one source of truth.
Each parent's decisions live in its own child log, ``DATA/algos/<algoId>.childlog``
(:mod:`perpx.execution.childlog`).

Write order on creation: ``CreateParent`` in the journal (the engine assigns the algo id), the
child log's ``bound`` record, then ``created``. A WORKING parent with no ``created`` record was
never answered and never sent a child (children are only sent by a registered runner): start-up
ends it EXPIRED and removes its child log.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from perpx.engine.commands import ParentStatus
from perpx.execution.appendlog import AppendLog
from perpx.execution.model import ParentOrder

REGISTRY_FILE = "registry.jsonl"
ALGOS_DIR = "algos"


AlgoStatus = ParentStatus
"""Binance's ``algoStatus``: the engine's :class:`~perpx.engine.commands.ParentStatus`; EXPIRED is
perpx's word for an end with a remainder (Binance ends such an algo without saying why)."""


class CreatedRecord(msgspec.Struct, frozen=True, tag="created", kw_only=True):
    algo_id: int
    account_id: int
    algo_type: str
    """``TWAP`` or ``VP`` (Binance's routes), or the perpx algorithm's name in upper case."""
    urgency: str | None
    book_ms: int
    parent: ParentOrder


class LegacyCancelRequested(msgspec.Struct, frozen=True, tag="cancel_requested", kw_only=True):
    """A line of a registry written before the engine's parent table (read and ignored)."""

    algo_id: int


class LegacyEnded(msgspec.Struct, frozen=True, tag="ended", kw_only=True):
    """A line of a registry written before the engine's parent table (read and ignored)."""

    algo_id: int


RegistryRecord = CreatedRecord | LegacyCancelRequested | LegacyEnded
"""Only ``created`` is written; the other two decode so an older data directory still opens."""


class Registry(AppendLog[RegistryRecord]):
    """The registry at ``DATA/algos/registry.jsonl``; ``None`` keeps it in memory (tests)."""

    def __init__(self, path: Path | None) -> None:
        super().__init__(path, RegistryRecord, what="algo registry record")


def child_log_path(algos_dir: Path, algo_id: int) -> Path:
    """Where the child log of ``algo_id`` lives."""
    return algos_dir / f"{algo_id}.childlog"
