"""Journal, snapshot and recovery rules: one start-up path, torn tails cut, hashes verified.

The damage matrix (what is cut, what is refused) is in test_damage.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from perpx.engine.commands import CreateAccount, Deposit
from perpx.engine.config import DEFAULT_CONFIG_TOML
from perpx.engine.events import DepositApplied, TransferRejected
from perpx.engine.state import state_hash
from perpx.engine.values import AccountId, AssetId, TxId
from perpx.journal.journal import MAGIC, PREALLOCATE_BYTES, JournalWriter, encode_record, scan
from perpx.journal.store import JOURNAL_FILE, SNAPSHOT_DIR, RecoveryError, Store, open_store, recover
from perpx.sim.demo import DemoSession

USDT = AssetId("USDT")


def _session(directory: Path, steps: int = 20, seed: int = 3) -> tuple[Store, str]:
    store, _ = open_store(directory, DEFAULT_CONFIG_TOML)
    summary = DemoSession(store, seed).run(steps, check_every=5)
    return store, summary.state_hash


def test_scan_of_written_records_returns_them_in_order(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "j.log"
    commands = [CreateAccount(ts_ns=i, name=f"a{i}") for i in range(1, 4)]
    with JournalWriter(path, next_seq=1) as writer:
        for command in commands:
            writer.append(command)
    # Act
    found = scan(path)
    # Assert
    assert [r.seq for r in found.records] == [1, 2, 3]
    assert [r.command for r in found.records] == commands
    assert found.damage is None and found.last_seq == 3


def test_uncommitted_records_are_not_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "j.log"
    writer = JournalWriter(path, next_seq=1)
    writer.append(CreateAccount(ts_ns=1, name="a"))
    assert scan(path).records == ()
    writer.commit()
    assert len(scan(path).records) == 1
    writer.close()


@pytest.mark.parametrize("cut", [1, 5, 9, 20])
def test_torn_tail_is_reported_and_truncated_and_nothing_after_it_applied(tmp_path: Path, cut: int) -> None:
    # Arrange: a session, then the last record is torn by `cut` bytes
    store, _ = _session(tmp_path, steps=5)
    store.close(snapshot_on_close=False)
    journal = tmp_path / JOURNAL_FILE
    records = scan(journal).records
    size = journal.stat().st_size
    last_len = len(encode_record(records[-1].seq, records[-1].command))
    with open(journal, "r+b") as handle:
        handle.truncate(size - last_len + min(cut, last_len - 1))
    # Act
    reopened, report = open_store(tmp_path)
    # Assert
    assert report.problems and "torn" in report.problems[0]
    assert report.last_seq == len(records) - 1
    assert reopened.engine.commands_applied == len(records) - 1
    assert journal.stat().st_size == size - last_len
    # appends continue with the next sequence number and stay readable
    reopened.submit(CreateAccount(ts_ns=reopened.engine.now_ns + 1, name="after"))
    reopened.close(snapshot_on_close=False)
    assert [r.seq for r in scan(journal).records][-2:] == [len(records) - 1, len(records)]


def test_corrupt_record_in_the_middle_ends_the_good_prefix_as_corruption(tmp_path: Path) -> None:
    # Arrange: flip one payload byte of record 3
    path = tmp_path / "j.log"
    with JournalWriter(path, next_seq=1) as writer:
        for i in range(1, 6):
            writer.append(CreateAccount(ts_ns=i, name=f"a{i}"))
    data = bytearray(path.read_bytes())
    offset = len(MAGIC)
    for _ in range(2):
        offset += len(encode_record(1, CreateAccount(ts_ns=1, name="a1")))
    data[offset + 9] ^= 0xFF
    path.write_bytes(bytes(data))
    # Act
    found = scan(path)
    # Assert
    assert [r.seq for r in found.records] == [1, 2]
    assert found.corrupt and found.damage is not None
    assert (found.damage.seq, found.damage.next_seq, found.damage.reason) == (3, 4, "checksum mismatch")


def test_snapshot_plus_tail_gives_the_same_hash_as_full_replay(tmp_path: Path) -> None:
    # Arrange: snapshot midway, then more commands after it
    store, _ = _session(tmp_path, steps=10)
    store.take_snapshot()
    DemoSession(store, seed=11).run(5, check_every=0)
    expected = state_hash(store.engine)
    store.close(snapshot_on_close=False)
    # Act
    from_snapshot, snap_report = recover(tmp_path, store.config, use_snapshots=True)
    from_nothing, full_report = recover(tmp_path, store.config, use_snapshots=False)
    # Assert
    assert snap_report.snapshot_seq > 0 and snap_report.replayed < full_report.replayed
    assert state_hash(from_snapshot) == state_hash(from_nothing) == expected


def test_corrupt_snapshot_is_skipped_and_recovery_falls_back_to_the_journal(tmp_path: Path) -> None:
    store, expected = _session(tmp_path, steps=8)
    store.close()
    snapshot = next((tmp_path / SNAPSHOT_DIR).glob("snap-*.bin"))
    data = bytearray(snapshot.read_bytes())
    data[-3] ^= 0x55
    snapshot.write_bytes(bytes(data))
    engine, report = recover(tmp_path, store.config)
    assert report.snapshot_seq == 0
    assert any("skipped" in p for p in report.problems)
    assert state_hash(engine) == expected


def test_restart_resumes_exactly_and_deposit_tx_ids_stay_idempotent(tmp_path: Path) -> None:
    # Arrange
    store, _ = open_store(tmp_path, DEFAULT_CONFIG_TOML)
    store.submit(CreateAccount(ts_ns=1, name="a"))
    deposit = Deposit(ts_ns=2, account_id=AccountId(1), asset=USDT, amount_atoms=10**10, tx_id=TxId("t-1"))
    assert isinstance(store.submit(deposit)[0], DepositApplied)
    before = state_hash(store.engine)
    store.close()
    # Act
    reopened, _ = open_store(tmp_path)
    again = reopened.submit(deposit)
    # Assert
    assert isinstance(again[0], TransferRejected)
    assert reopened.engine.accounts[AccountId(1)].balance(USDT) == 10**10
    assert state_hash(reopened.engine) == before
    reopened.close()


def test_open_with_a_different_config_is_refused(tmp_path: Path) -> None:
    store, _ = open_store(tmp_path, DEFAULT_CONFIG_TOML)
    store.close()
    changed = DEFAULT_CONFIG_TOML.replace("max_open_orders = 200", "max_open_orders = 10", 1)
    with pytest.raises(RecoveryError, match="differs"):
        open_store(tmp_path, changed)


def test_new_directory_without_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RecoveryError, match="config is needed"):
        open_store(tmp_path / "new")


def _replay_hash(directory: Path, hash_seed: str) -> str:
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    out = subprocess.run(
        [sys.executable, "-m", "perpx", "replay", str(directory)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return next(line.split()[-1] for line in out.splitlines() if line.startswith("state hash"))


def test_replay_in_fresh_processes_with_different_hash_seeds_gives_the_same_hash(tmp_path: Path) -> None:
    # Arrange
    store, expected = _session(tmp_path, steps=30)
    store.close()
    # Act
    first = _replay_hash(tmp_path, "1")
    second = _replay_hash(tmp_path, "987654")
    # Assert
    assert first == second == expected


def test_replay_reads_a_torn_journal_without_changing_it(tmp_path: Path) -> None:
    store, _ = _session(tmp_path, steps=3)
    store.close(snapshot_on_close=False)
    journal = tmp_path / JOURNAL_FILE
    with open(journal, "ab") as handle:
        handle.write(b"\x05\x00\x00")
    size = journal.stat().st_size
    engine, report = recover(tmp_path, store.config)
    assert journal.stat().st_size == size
    assert report.problems and "not applied" in report.problems[0]
    assert engine.commands_applied == report.last_seq


def test_snapshot_and_hash_hold_ledger_totals_beyond_64_bits(tmp_path: Path) -> None:
    # Arrange: 3 x 10**11 USDT deposited in two transfers (3 x 10**19 atoms > 2**64)
    store, _ = open_store(tmp_path, DEFAULT_CONFIG_TOML)
    store.submit(CreateAccount(ts_ns=1, name="whale"))
    for i in range(2):
        store.submit(
            Deposit(
                ts_ns=2 + i,
                account_id=AccountId(1),
                asset=USDT,
                amount_atoms=15 * 10**18,
                tx_id=TxId(f"w{i}"),
            )
        )
    expected = state_hash(store.engine)
    # Act
    store.close()
    engine, report = recover(tmp_path, store.config)
    # Assert
    assert report.snapshot_seq == 3
    assert engine.accounts[AccountId(1)].balance(USDT) == 3 * 10**19
    assert state_hash(engine) == expected


def test_a_command_beyond_the_journal_range_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    store, _ = open_store(tmp_path, DEFAULT_CONFIG_TOML)
    store.submit(CreateAccount(ts_ns=1, name="a"))
    huge = Deposit(ts_ns=2, account_id=AccountId(1), asset=USDT, amount_atoms=2**64, tx_id=TxId("big"))
    with pytest.raises(ValueError, match="64-bit"):
        store.submit(huge)
    assert store.engine.accounts[AccountId(1)].balance(USDT) == 0
    store.close()
    assert len(scan(tmp_path / JOURNAL_FILE).records) == 1


def test_a_batch_with_one_unjournalable_command_journals_and_applies_none(tmp_path: Path) -> None:
    store, _ = open_store(tmp_path, DEFAULT_CONFIG_TOML)
    before = state_hash(store.engine)
    good = CreateAccount(ts_ns=1, name="a")
    bad = Deposit(ts_ns=2, account_id=AccountId(1), asset=USDT, amount_atoms=2**64, tx_id=TxId("big"))
    with pytest.raises(ValueError, match="64-bit"):
        store.submit_batch([good, bad])
    store.close()
    assert state_hash(store.engine) == before
    assert scan(tmp_path / JOURNAL_FILE).records == ()


def test_durable_writer_reserves_the_file_ahead_and_a_clean_close_cuts_the_reserve(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "j.log"
    writer = JournalWriter(path, next_seq=1, fsync=True)
    # Act
    writer.append(CreateAccount(ts_ns=1, name="a"))
    writer.commit()
    open_size = path.stat().st_size
    found_open = scan(path)
    writer.close()
    # Assert: while open the records are followed by zero bytes that read as the journal's end
    assert open_size >= found_open.good_bytes + PREALLOCATE_BYTES
    assert found_open.damage is None and found_open.last_seq == 1
    assert path.stat().st_size == scan(path).good_bytes == writer.good_bytes
