"""Rule: recovery never guesses. Only a torn final record is cut; every other damage refuses the start and changes no file.

A torn tail is what a crash leaves: an incomplete final record (kill -9 mid-write) or unreadable
bytes at the very end (a power cut), with nothing valid after them. Anything else (a flipped byte
or a bad length in the middle, a whole final record whose header is damaged, a wrong sequence
number, a bad magic, a journal that ends before a snapshot) is corruption: start-up refuses with the
record, the byte offset and the way out, and every file stays byte for byte as it was.
"""

from __future__ import annotations

import random
import shutil
import struct
from pathlib import Path

import pytest

from perpx.engine.commands import CreateAccount, Deposit
from perpx.engine.config import DEFAULT_CONFIG_TOML
from perpx.engine.state import state_hash
from perpx.engine.values import AccountId, AssetId, TxId
from perpx.journal.journal import MAGIC, PREALLOCATE_BYTES, JournalWriter, encode_record, scan
from perpx.journal.store import (
    JOURNAL_FILE,
    SNAPSHOT_DIR,
    JournalBehindSnapshotError,
    JournalCorruptError,
    RecoveryError,
    Store,
    open_store,
    recover,
)
from perpx.sequencing import Sequencer
from perpx.sim.demo import DemoSession

from .files import fingerprint, flip, record_offsets

USDT = AssetId("USDT")
FAST_CONFIG = DEFAULT_CONFIG_TOML.replace('durability = "batch"', 'durability = "none"')
"""No fsync per command: these tests damage files on purpose, they do not cut power."""


def _venue(directory: Path, steps: int = 6, snapshot_midway: bool = True) -> tuple[Store, str]:
    """A demo session with a snapshot in the middle of its journal; closed without a final snapshot."""
    store, _ = open_store(directory, FAST_CONFIG)
    DemoSession(store, seed=3).run(steps, check_every=0)
    if snapshot_midway:
        store.take_snapshot()
    DemoSession(store, seed=5).run(steps, check_every=0)
    expected = state_hash(store.engine)
    store.close(snapshot_on_close=False)
    return store, expected


def _small_journal(path: Path, records: int = 30) -> None:
    """``records`` small commands: accounts and deposits (a journal a test can flip byte by byte)."""
    with JournalWriter(path, next_seq=1) as writer:
        for i in range(records):
            if i % 2 == 0:
                writer.append(CreateAccount(ts_ns=i + 1, name=f"acct-{i}"))
            else:
                writer.append(
                    Deposit(
                        ts_ns=i + 1,
                        account_id=AccountId(i // 2 + 1),
                        asset=USDT,
                        amount_atoms=10**8 * (i + 1),
                        tx_id=TxId(f"tx-{i}"),
                    )
                )


def _record_holding(offsets: list[tuple[int, int]], offset: int) -> int:
    return next(i + 1 for i, (start, end) in enumerate(offsets) if start <= offset < end)


def _refuses_unchanged(directory: Path, error: type[RecoveryError] = JournalCorruptError) -> str:
    """Start-up on ``directory`` refuses with ``error`` and changes no file; returns the message."""
    before = fingerprint(directory)
    with pytest.raises(error) as refused:
        open_store(directory)
    assert fingerprint(directory) == before
    return str(refused.value)


# ---------------------------------------------------------------------------- every byte, every cut


def test_every_single_byte_flip_is_corruption_unless_it_hits_the_final_record(tmp_path: Path) -> None:
    # Arrange
    journal = tmp_path / JOURNAL_FILE
    _small_journal(journal)
    pristine = journal.read_bytes()
    offsets = record_offsets(journal)
    last = len(offsets)
    for offset in range(len(pristine)):
        journal.write_bytes(pristine)
        flip(journal, offset)
        # Act
        found = scan(journal)
        # Assert
        damage = found.damage
        assert damage is not None, f"flip at byte {offset} went unnoticed"
        if offset < len(MAGIC):
            assert not damage.torn and damage.offset == 0
            continue
        hit = _record_holding(offsets, offset)
        assert damage.seq == hit and damage.offset == offsets[hit - 1][0], offset
        assert found.last_seq == hit - 1
        if hit < last:
            assert not damage.torn, f"flip at byte {offset} (record {hit} of {last}) taken for a torn tail"
            assert damage.next_seq == hit + 1 and damage.end_offset == offsets[hit][0]


def test_a_cut_at_any_byte_is_a_torn_tail_that_keeps_every_whole_record(tmp_path: Path) -> None:
    # Arrange: what kill -9 during a write leaves is a prefix of the file
    journal = tmp_path / JOURNAL_FILE
    _small_journal(journal)
    pristine = journal.read_bytes()
    ends = [end for _start, end in record_offsets(journal)]
    for size in range(1, len(pristine)):
        journal.write_bytes(pristine[:size])
        # Act
        found = scan(journal)
        # Assert
        whole = sum(1 for end in ends if end <= size)
        assert found.last_seq == whole, size
        at_boundary = size == len(MAGIC) or size in ends
        assert found.damage is None if at_boundary else found.torn, size


# ---------------------------------------------------------------------------- the middle of the journal


@pytest.mark.parametrize(
    ("field", "at"),
    [("length", 0), ("length", 2), ("crc", 5), ("payload", 8), ("payload", 20), ("payload", -1)],
)
def test_mid_journal_flip_refuses_start_and_changes_no_file(tmp_path: Path, field: str, at: int) -> None:
    # Arrange: a flip in record k of n, in its length field, its CRC or its payload
    _venue(tmp_path)
    journal = tmp_path / JOURNAL_FILE
    offsets = record_offsets(journal)
    k = len(offsets) // 2
    start, end = offsets[k - 1]
    flip(journal, (end + at) if at < 0 else (start + at))
    # Act
    message = _refuses_unchanged(tmp_path)
    # Assert: it names the record, the byte offset and the way out
    assert f"record {k}, byte {start}" in message
    assert "perpx journal repair" in message and "perpx journal verify" in message


def test_bad_length_pointing_past_the_end_with_records_after_it_is_corruption(tmp_path: Path) -> None:
    # Arrange: record k's length field says more bytes than the file has left
    _venue(tmp_path)
    journal = tmp_path / JOURNAL_FILE
    offsets = record_offsets(journal)
    k = 3
    data = bytearray(journal.read_bytes())
    struct.pack_into("<I", data, offsets[k - 1][0], len(data))
    journal.write_bytes(bytes(data))
    # Act
    found = scan(journal)
    message = _refuses_unchanged(tmp_path)
    # Assert
    assert found.damage is not None and not found.damage.torn and found.damage.next_seq == k + 1
    assert f"record {k}, byte {offsets[k - 1][0]}" in message


def test_record_with_a_wrong_sequence_number_refuses_start(tmp_path: Path) -> None:
    # Arrange: a record that checks (CRC, decode) but skips a sequence number
    journal = tmp_path / JOURNAL_FILE
    store, _ = open_store(tmp_path, FAST_CONFIG)
    store.submit(CreateAccount(ts_ns=1, name="a"))
    store.close(snapshot_on_close=False)
    with open(journal, "ab") as handle:
        handle.write(encode_record(3, CreateAccount(ts_ns=2, name="b")))
    # Act
    message = _refuses_unchanged(tmp_path)
    # Assert
    assert "record 2" in message and "sequence gap" in message


def test_bad_magic_refuses_start(tmp_path: Path) -> None:
    _venue(tmp_path, steps=3, snapshot_midway=False)
    flip(tmp_path / JOURNAL_FILE, 2)
    message = _refuses_unchanged(tmp_path)
    assert "record 1, byte 0" in message and "bad magic" in message


# ---------------------------------------------------------------------------- the final record


@pytest.mark.parametrize(
    ("field", "delta"), [("length", +1), ("length", -1), ("length", 1 << 20), ("crc", 0)]
)
def test_final_record_with_a_damaged_header_but_a_whole_payload_refuses_start(
    tmp_path: Path, field: str, delta: int
) -> None:
    # Arrange: the last record's payload is all there; its length or CRC field is wrong
    _venue(tmp_path, steps=4, snapshot_midway=False)
    journal = tmp_path / JOURNAL_FILE
    start, _end = record_offsets(journal)[-1]
    data = bytearray(journal.read_bytes())
    length, crc = struct.unpack_from("<II", data, start)
    if field == "length":
        struct.pack_into("<I", data, start, length + delta)
    else:
        struct.pack_into("<I", data, start + 4, crc ^ 0x1)
    journal.write_bytes(bytes(data))
    # Act
    message = _refuses_unchanged(tmp_path)
    # Assert
    assert f"byte {start}" in message and "not a torn write" in message


def test_final_record_whose_payload_no_longer_decodes_is_cut_as_a_torn_write(tmp_path: Path) -> None:
    # Arrange: indistinguishable from a power cut that left the last page unwritten
    _venue(tmp_path, steps=4, snapshot_midway=False)
    journal = tmp_path / JOURNAL_FILE
    offsets = record_offsets(journal)
    start, end = offsets[-1]
    flip(journal, start + 8, 0x01)  # 0x92 (array of 2) becomes 0x93
    # Act
    store, report = open_store(tmp_path)
    # Assert: reported and cut, exactly that record
    assert report.torn_tail is not None and report.tail_cut
    assert (report.torn_tail.seq, report.torn_tail.offset, report.torn_tail.bytes_cut) == (
        len(offsets),
        start,
        end - start,
    )
    assert report.last_seq == len(offsets) - 1 and journal.stat().st_size == start
    store.close(snapshot_on_close=False)


@pytest.mark.parametrize("tail", ["zeros-then-garbage", "garbage", "torn-header", "torn-payload"])
def test_torn_tail_after_a_crash_is_cut_and_reported(tmp_path: Path, tail: str) -> None:
    # Arrange: what a kill -9 or a power cut leaves after the last good record
    store, expected = _venue(tmp_path, steps=4, snapshot_midway=False)
    journal = tmp_path / JOURNAL_FILE
    size = journal.stat().st_size
    last = scan(journal).last_seq
    record = encode_record(last + 1, CreateAccount(ts_ns=store.engine.now_ns + 1, name="unacked"))
    appended = {
        "zeros-then-garbage": bytes(4096) + b"\x01",
        "garbage": random.Random(7).randbytes(300),
        "torn-header": record[:5],
        "torn-payload": record[:-3],
    }[tail]
    with open(journal, "ab") as handle:
        handle.write(appended)
    # Act
    reopened, report = open_store(tmp_path)
    # Assert
    assert report.torn_tail is not None and report.tail_cut
    assert (report.torn_tail.seq, report.torn_tail.offset, report.torn_tail.bytes_cut) == (
        last + 1,
        size,
        len(appended),
    )
    assert journal.stat().st_size == size and report.last_seq == last
    assert report.state_hash == expected
    assert any("torn tail cut" in line for line in report.lines())
    reopened.close(snapshot_on_close=False)


def test_zero_bytes_after_the_last_record_are_reserved_space_and_the_next_record_goes_over_them(
    tmp_path: Path,
) -> None:
    # Arrange: a crash while the writer had reserved the file ahead of its records
    _store, expected = _venue(tmp_path, steps=4, snapshot_midway=False)
    journal = tmp_path / JOURNAL_FILE
    size = journal.stat().st_size
    last = scan(journal).last_seq
    with open(journal, "ab") as handle:
        handle.write(bytes(PREALLOCATE_BYTES))
    # Act
    reopened, report = open_store(tmp_path)
    Sequencer(store=reopened).apply([CreateAccount(ts_ns=reopened.engine.now_ns + 1, name="after")])
    reopened.close(snapshot_on_close=False)
    # Assert: nothing was torn or cut; the new record follows the old ones and the reserve is gone
    assert report.torn_tail is None and not report.tail_cut
    assert report.last_seq == last and report.state_hash == expected
    found = scan(journal)
    assert found.damage is None and found.last_seq == last + 1
    assert journal.stat().st_size == found.good_bytes > size


def test_a_valid_record_after_unreadable_bytes_makes_them_corruption_not_a_tail(tmp_path: Path) -> None:
    # Arrange: garbage, then a record that checks: the garbage is in the middle of history
    store, _ = _venue(tmp_path, steps=4, snapshot_midway=False)
    journal = tmp_path / JOURNAL_FILE
    size = journal.stat().st_size
    last = scan(journal).last_seq
    with open(journal, "ab") as handle:
        handle.write(bytes(64))
        handle.write(encode_record(last + 2, CreateAccount(ts_ns=store.engine.now_ns + 1, name="later")))
    # Act
    message = _refuses_unchanged(tmp_path)
    # Assert
    assert f"record {last + 1}, byte {size}" in message and f"seq {last + 2}" in message


# ---------------------------------------------------------------------------- snapshots


def test_journal_that_ends_before_a_snapshot_refuses_start_and_changes_no_file(tmp_path: Path) -> None:
    # Arrange: the journal lost whole records a snapshot saw (restored from an older copy)
    _venue(tmp_path)
    snapshot_seq = int(next((tmp_path / SNAPSHOT_DIR).glob("snap-*.bin")).stem.removeprefix("snap-"))
    journal = tmp_path / JOURNAL_FILE
    with open(journal, "r+b") as handle:
        handle.truncate(record_offsets(journal)[snapshot_seq - 3][1])
    # Act
    message = _refuses_unchanged(tmp_path, JournalBehindSnapshotError)
    # Assert
    assert f"record {snapshot_seq} but the journal ends at record {snapshot_seq - 2}" in message
    assert "perpx journal repair" in message


@pytest.mark.parametrize("where", ["magic", "length", "crc", "payload", "truncated"])
def test_damaged_snapshot_is_skipped_with_its_reason_and_nothing_is_lost(tmp_path: Path, where: str) -> None:
    # Arrange: two snapshots; the newer one is damaged
    store, _ = open_store(tmp_path, FAST_CONFIG)
    DemoSession(store, seed=3).run(6, check_every=0)
    older = store.take_snapshot()
    DemoSession(store, seed=4).run(6, check_every=0)
    newer = store.take_snapshot()
    DemoSession(store, seed=5).run(3, check_every=0)
    expected = state_hash(store.engine)
    store.close(snapshot_on_close=False)
    data = bytearray(newer.read_bytes())
    if where == "truncated":
        del data[len(data) // 2 :]
    else:
        data[{"magic": 1, "length": 9, "crc": 13, "payload": len(data) // 2}[where]] ^= 0x20
    newer.write_bytes(bytes(data))
    # Act
    reopened, report = open_store(tmp_path)
    # Assert
    assert report.snapshot_file == older.name
    assert [s.file for s in report.skipped_snapshots] == [newer.name]
    assert report.state_hash == expected
    assert any(line.startswith(f"skipped snapshot {newer.name}: ") for line in report.lines())
    reopened.close(snapshot_on_close=False)


def test_missing_snapshots_replay_the_whole_journal_to_the_same_state(tmp_path: Path) -> None:
    _store, expected = _venue(tmp_path)
    shutil.rmtree(tmp_path / SNAPSHOT_DIR)
    engine, report = recover(tmp_path, _store.config)
    assert report.snapshot_file is None and state_hash(engine) == expected


def test_a_snapshot_is_taken_only_after_the_journal_is_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange: durability "none" never fsyncs a commit; a snapshot must still find its records on disk
    store, _ = open_store(tmp_path, FAST_CONFIG)
    store.submit(CreateAccount(ts_ns=1, name="a"))
    calls: list[str] = []
    monkeypatch.setattr(JournalWriter, "sync", lambda self: calls.append("journal fsync"))
    monkeypatch.setattr(
        "perpx.journal.store.write_snapshot", lambda directory, seq, engine: calls.append("snapshot")
    )
    # Act
    store.take_snapshot()
    # Assert
    assert calls == ["journal fsync", "snapshot"]
    store.writer.close()


def test_journal_without_its_config_refuses_start_and_changes_no_file(tmp_path: Path) -> None:
    _venue(tmp_path, steps=2, snapshot_midway=False)
    (tmp_path / "config.toml").unlink()
    before = fingerprint(tmp_path)
    with pytest.raises(RecoveryError, match=r"has a journal but no config\.toml"):
        open_store(tmp_path, DEFAULT_CONFIG_TOML)
    assert fingerprint(tmp_path) == before
