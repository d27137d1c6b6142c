"""The one append-only log under the child log, the flow journal and the algo registry."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from perpx.execution.appendlog import AppendLog


class Note(msgspec.Struct, frozen=True, tag="note"):
    n: int


class Mark(msgspec.Struct, frozen=True, tag="mark"):
    text: str


Entry = Note | Mark


def test_records_come_back_in_order_after_reopening(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    log: AppendLog[Entry] = AppendLog(path, Entry)
    log.append(Note(1))
    log.append(Mark("two"))
    log.close()

    reopened: AppendLog[Entry] = AppendLog(path, Entry)
    reopened.close()

    assert reopened.records == [Note(1), Mark("two")]


def test_a_torn_last_line_is_dropped_and_cut_before_the_next_append(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"type":"note","n":1}\n{"type":"no')

    log: AppendLog[Entry] = AppendLog(path, Entry)
    log.append(Note(2))
    log.close()

    assert log.records == [Note(1), Note(2)]
    assert path.read_bytes() == b'{"type":"note","n":1}\n{"type":"note","n":2}\n'


def test_a_damaged_line_before_the_last_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"type":"note","n":1}\n{garbage}\n{"type":"note","n":3}\n')

    with pytest.raises(ValueError, match=r"log\.jsonl:2: not a test record"):
        AppendLog(path, Entry, what="test record")


def test_without_a_path_it_keeps_records_in_memory_only(tmp_path: Path) -> None:
    log: AppendLog[Entry] = AppendLog(None, Entry)
    log.append(Note(1))

    assert log.records == [Note(1)] and list(tmp_path.iterdir()) == []
