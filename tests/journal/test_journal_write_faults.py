"""The journal's write path under bad input and a failing disk: nothing half-written is ever kept.

Faults are injected through the writer's one-syscall seams (``_write_some``, ``_fsync``,
``_truncate``): each raises ``OSError`` with a real errno for a chosen number of calls, as a
full disk (``ENOSPC``), a read-only remount (``EROFS``) or a failing device (``EIO``) would.
"""

from __future__ import annotations

import dataclasses
import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from perpx.engine.commands import CreateAccount, Deposit
from perpx.engine.config import DEFAULT_CONFIG_TOML
from perpx.engine.state import state_hash
from perpx.engine.values import AccountId, AssetId, TxId
from perpx.journal.journal import (
    MAX_RECORD_BYTES,
    JournalWriteError,
    JournalWriter,
    UnencodableCommand,
    encode_command,
    encode_record,
    frame_record,
    scan,
)
from perpx.journal.store import JOURNAL_FILE, SNAPSHOT_DIR, open_store

USDT = AssetId("USDT")


def failing(times: int, code: int, real: Callable[..., Any]) -> Callable[..., Any]:
    """``real`` that raises ``OSError(code)`` on its first ``times`` calls."""
    left = [times]

    def call(*args: Any) -> Any:
        if left[0] > 0:
            left[0] -= 1
            raise OSError(code, os.strerror(code))
        return real(*args)

    return call


def partial_then_failing(
    code: int, real: Callable[[memoryview, int], int]
) -> Callable[[memoryview, int], int]:
    """A disk that takes the first 7 bytes of a write, then fails the rest once with ``code``."""
    state = {"partial": True, "failed": False}

    def write(data: memoryview, offset: int) -> int:
        if state["partial"]:
            state["partial"] = False
            return real(data[:7], offset)
        if not state["failed"]:
            state["failed"] = True
            raise OSError(code, os.strerror(code))
        return real(data, offset)

    return write


def account(n: int) -> CreateAccount:
    return CreateAccount(ts_ns=n, name=f"a{n}")


def journal_with_two_records(path: Path) -> JournalWriter:
    writer = JournalWriter(path, next_seq=1)
    writer.append_all([account(1), account(2)])
    writer.commit()
    return writer


# ---------------------------------------------------------------------- encoding


@pytest.mark.parametrize(
    ("command", "why"),
    [
        (
            Deposit(ts_ns=1, account_id=AccountId(1), asset=USDT, amount_atoms=10**36, tx_id=TxId("t")),
            "64-bit",
        ),
        (
            Deposit(ts_ns=1, account_id=AccountId(-(2**63) - 1), asset=USDT, amount_atoms=1, tx_id=TxId("t")),
            "64-bit",
        ),
        (CreateAccount(ts_ns=1, name="\ud800"), "UTF-8"),
        (CreateAccount(ts_ns=1, name="x" * MAX_RECORD_BYTES), "at most"),
    ],
)
def test_command_no_record_can_hold_is_refused_and_nothing_is_written(
    tmp_path: Path, command: Any, why: str
) -> None:
    # Arrange
    writer = journal_with_two_records(tmp_path / "j.log")
    size = (tmp_path / "j.log").stat().st_size
    # Act
    with pytest.raises(UnencodableCommand, match=why):
        writer.append_all([account(3), command])
    writer.commit()
    # Assert: none of the batch was buffered, the sequence continues at 3
    assert writer.next_seq == 3
    assert (tmp_path / "j.log").stat().st_size == size
    writer.append(account(3))
    writer.close()
    assert [r.seq for r in scan(tmp_path / "j.log").records] == [1, 2, 3]


def test_record_framed_from_an_encoded_command_is_byte_for_byte_the_record_encoded_at_once() -> None:
    command = Deposit(ts_ns=7, account_id=AccountId(3), asset=USDT, amount_atoms=2**63 - 1, tx_id=TxId("x"))
    assert frame_record(41, encode_command(command)) == encode_record(41, command)


def test_encoded_command_round_trips_through_msgpack() -> None:
    command = account(5)
    assert msgspec.msgpack.decode(encode_command(command), type=CreateAccount) == command


# ---------------------------------------------------------------------- failed commits


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO])
def test_failed_write_refuses_the_commit_and_leaves_the_journal_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    # Arrange
    path = tmp_path / "j.log"
    writer = journal_with_two_records(path)
    size = writer.good_bytes  # the records; the file also holds the writer's zero reserve
    monkeypatch.setattr(writer, "_write_some", failing(1, code, writer._write_some))
    writer.append_all([account(3), account(4)])
    # Act
    with pytest.raises(JournalWriteError) as raised:
        writer.commit()
    # Assert
    assert raised.value.restored and raised.value.errno == code
    assert f"[Errno {code}] {os.strerror(code)}" in raised.value.reason
    assert path.stat().st_size == size == writer.good_bytes
    assert writer.next_seq == 3
    assert [r.seq for r in scan(path).records] == [1, 2]


def test_partial_write_then_disk_full_is_cut_back_to_the_last_good_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange: the disk takes 7 bytes of the commit, then is full
    path = tmp_path / "j.log"
    writer = journal_with_two_records(path)
    size = writer.good_bytes  # the records; the file also holds the writer's zero reserve
    monkeypatch.setattr(writer, "_write_some", partial_then_failing(errno.ENOSPC, writer._write_some))
    writer.append(account(3))
    # Act
    with pytest.raises(JournalWriteError) as raised:
        writer.commit()
    # Assert: the 7 torn bytes are gone, not left for recovery to find
    assert raised.value.restored
    assert path.stat().st_size == size
    found = scan(path)
    assert found.damage is None and [r.seq for r in found.records] == [1, 2]


def test_commit_after_space_returns_writes_the_next_records_with_the_next_seq(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange: two commits fail, then the disk has room again
    path = tmp_path / "j.log"
    writer = journal_with_two_records(path)
    monkeypatch.setattr(writer, "_write_some", failing(2, errno.ENOSPC, writer._write_some))
    for n in (3, 4):
        writer.append(account(n))
        with pytest.raises(JournalWriteError):
            writer.commit()
    # Act
    writer.append(account(5))
    writer.commit()
    writer.close()
    # Assert: the refused commands never appear; seq stays contiguous
    found = scan(path)
    assert [(r.seq, r.command) for r in found.records] == [(1, account(1)), (2, account(2)), (3, account(5))]


def test_failed_fsync_cuts_the_commit_off_instead_of_retrying_the_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange: the bytes reach the page cache, the fsync fails (EIO)
    path = tmp_path / "j.log"
    writer = journal_with_two_records(path)
    size = writer.good_bytes  # the records; the file also holds the writer's zero reserve
    monkeypatch.setattr(writer, "_fsync", failing(1, errno.EIO, writer._fsync))
    writer.append(account(3))
    # Act
    with pytest.raises(JournalWriteError) as raised:
        writer.commit()
    # Assert: the unsynced record is not left in the file, and the writer works on
    assert raised.value.restored and "fsync failed" in raised.value.reason
    assert path.stat().st_size == size
    writer.append(account(4))
    writer.commit()
    writer.close()
    assert [r.command for r in scan(path).records] == [account(1), account(2), account(4)]


def test_journal_that_cannot_be_cut_back_refuses_every_later_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange: fsync fails, and so does the truncate that would undo the commit
    path = tmp_path / "j.log"
    writer = journal_with_two_records(path)
    monkeypatch.setattr(writer, "_fsync", failing(1, errno.EIO, writer._fsync))
    monkeypatch.setattr(writer, "_truncate", failing(1, errno.EIO, writer._truncate))
    writer.append(account(3))
    # Act
    with pytest.raises(JournalWriteError) as first:
        writer.commit()
    writer.append(account(4))
    with pytest.raises(JournalWriteError) as later:
        writer.commit()
    # Assert: the writer says the batch may be in the file, and stays refused with the same reason
    assert not first.value.restored and not later.value.restored
    assert "cutting it back" in first.value.reason and later.value.reason == first.value.reason
    writer.close()


# ---------------------------------------------------------------------- the store


def test_store_batch_refused_by_the_journal_applies_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange
    store, _ = open_store(tmp_path, DEFAULT_CONFIG_TOML)
    store.submit(account(1))
    before = state_hash(store.engine)
    monkeypatch.setattr(store.writer, "_write_some", failing(1, errno.ENOSPC, store.writer._write_some))
    # Act
    with pytest.raises(JournalWriteError):
        store.submit_batch([account(2), account(3)])
    # Assert
    assert state_hash(store.engine) == before
    assert store.submit(account(4))
    store.close(snapshot_on_close=False)
    reopened, report = open_store(tmp_path)
    assert report.problems == () and reopened.engine.commands_applied == 2
    reopened.close(snapshot_on_close=False)


def test_snapshot_that_cannot_be_written_is_noted_and_the_store_keeps_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange: snapshots are due every command, and the disk is full for them
    store, _ = open_store(tmp_path, DEFAULT_CONFIG_TOML)
    store.config = dataclasses.replace(store.config, snapshot_every=1)

    real_fsync = os.fsync
    writer = store.writer
    monkeypatch.setattr(writer, "_fsync", lambda: real_fsync(writer._fd))
    monkeypatch.setattr(os, "fsync", failing(1, errno.ENOSPC, real_fsync))
    # Act
    events = store.submit(account(1))
    # Assert: the command is journaled and applied, the snapshot problem is reported, no temp file is left
    assert events
    assert store.snapshot_problem is not None and "No space left" in store.snapshot_problem
    assert not list((tmp_path / SNAPSHOT_DIR).glob("*.tmp"))
    store.submit(account(2))
    assert store.snapshot_problem is None
    store.close(snapshot_on_close=False)
    assert len(scan(tmp_path / JOURNAL_FILE).records) == 2
