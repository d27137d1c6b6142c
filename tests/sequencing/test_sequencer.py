"""The one sequencer: order, stamps, refusals and what each failure means to its caller."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from perpx.engine.commands import AdvanceClock, CreateAccount, Deposit
from perpx.engine.config import DEFAULT_CONFIG_TOML, default_config
from perpx.engine.engine import Engine
from perpx.engine.events import AccountCreated
from perpx.engine.state import state_hash
from perpx.engine.values import AccountId, AssetId, TxId
from perpx.journal.journal import scan
from perpx.journal.store import JOURNAL_FILE, open_store, recover
from perpx.sequencing import (
    Applied,
    JournalUnavailable,
    NotJournalable,
    OutcomeUnknown,
    Sequencer,
    SequencerState,
    VenueStopped,
)
from perpx.testkit import START_NS


def deposit(ts_ns: int, amount_atoms: int, tx: str) -> Deposit:
    return Deposit(
        ts_ns=ts_ns, account_id=AccountId(1), asset=AssetId("USDT"), amount_atoms=amount_atoms, tx_id=TxId(tx)
    )


def test_commands_get_consecutive_seqs_and_listeners_see_each_batch_before_the_caller() -> None:
    # Arrange
    sequencer = Sequencer(Engine(default_config()))
    seen: list[list[int]] = []
    sequencer.add_listener(lambda batch: seen.append([applied.seq for applied in batch]))
    # Act
    first = sequencer.apply(
        [CreateAccount(ts_ns=START_NS, name="a"), CreateAccount(ts_ns=START_NS, name="b")]
    )
    second = sequencer.apply([deposit(START_NS, 5, "t1")])
    # Assert
    assert [applied.seq for applied in first + second] == [1, 2, 3]
    assert seen == [[1, 2], [3]]
    assert sequencer.last_seq == 3 and sequencer.commands_committed == 3 and sequencer.batches_committed == 2
    assert isinstance(first[0].events.own[0], AccountCreated)


def test_stamps_never_decrease_and_never_fall_behind_the_engine() -> None:
    # Arrange: a clock that runs backwards
    times = iter([START_NS + 50, START_NS + 10, START_NS + 5])
    sequencer = Sequencer(Engine(default_config()), clock=lambda: next(times), status_clock=lambda: 0)
    sequencer.apply_one(AdvanceClock(ts_ns=START_NS + 20))
    # Act
    stamps = [sequencer.stamp(), sequencer.stamp(), sequencer.stamp()]
    # Assert
    assert stamps == [START_NS + 50, START_NS + 50, START_NS + 50]


def test_without_a_clock_commands_are_stamped_with_venue_time() -> None:
    sequencer = Sequencer(Engine(default_config()))
    sequencer.apply_one(AdvanceClock(ts_ns=START_NS + 7))
    assert sequencer.stamp() == START_NS + 7


def test_batch_with_an_unjournalable_command_is_refused_whole_before_anything_is_written(
    tmp_path: Path,
) -> None:
    # Arrange
    store, _ = open_store(tmp_path, DEFAULT_CONFIG_TOML)
    sequencer = Sequencer(store=store)
    sequencer.start()
    before = state_hash(store.engine)
    # Act
    with pytest.raises(NotJournalable, match="64-bit"):
        sequencer.apply([CreateAccount(ts_ns=START_NS, name="a"), deposit(START_NS, 10**36, "huge")])
    # Assert
    assert state_hash(store.engine) == before
    assert sequencer.last_seq == 0 and sequencer.status().state is SequencerState.RUNNING
    sequencer.close(snapshot=False)
    assert scan(tmp_path / JOURNAL_FILE).records == ()


def test_journal_write_that_fails_and_is_undone_refuses_the_batch_and_the_next_one_goes_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange
    store, _ = open_store(tmp_path, DEFAULT_CONFIG_TOML)
    sequencer = Sequencer(store=store)
    sequencer.start()
    real = store.writer._write_some
    calls = {"n": 0}

    def full_once(data: memoryview, offset: int) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(data, offset)

    monkeypatch.setattr(store.writer, "_write_some", full_once)
    # Act
    with pytest.raises(JournalUnavailable, match="No space left"):
        sequencer.apply([CreateAccount(ts_ns=START_NS, name="lost")])
    refused = sequencer.status()
    [applied] = sequencer.apply([CreateAccount(ts_ns=START_NS, name="kept")])
    # Assert
    assert refused.state is SequencerState.JOURNAL_NOT_WRITABLE and "No space left" in (refused.reason or "")
    assert sequencer.status().state is SequencerState.RUNNING
    assert applied.seq == 1 and isinstance(applied.events.own[0], AccountCreated)
    names = [account.name for account in store.engine.accounts.values()]
    assert "lost" not in names and "kept" in names


def test_engine_failure_after_journaling_stops_the_sequencer_and_replay_agrees(tmp_path: Path) -> None:
    # Arrange
    store, _ = open_store(tmp_path, DEFAULT_CONFIG_TOML)
    sequencer = Sequencer(store=store)
    sequencer.start()
    sequencer.apply([CreateAccount(ts_ns=START_NS, name="a")])

    def explode(command: object) -> None:
        raise RuntimeError("boom")

    store.engine._handlers[CreateAccount] = explode
    # Act
    with pytest.raises(OutcomeUnknown, match="boom"):
        sequencer.apply([CreateAccount(ts_ns=START_NS, name="b")])
    # Assert: later commands are refused as certainly not applied
    with pytest.raises(VenueStopped, match="boom"):
        sequencer.apply([CreateAccount(ts_ns=START_NS, name="c")])
    assert sequencer.failure is not None and "restart" in sequencer.failure
    sequencer.close()
    assert [record.seq for record in scan(tmp_path / JOURNAL_FILE).records] == [1, 2]


def test_a_journaled_run_replays_to_the_same_state_hash(tmp_path: Path) -> None:
    # Arrange
    store, _ = open_store(tmp_path, DEFAULT_CONFIG_TOML)
    sequencer = Sequencer(store=store)
    sequencer.start()
    applied: list[Applied] = []
    # Act
    applied += sequencer.apply([CreateAccount(ts_ns=START_NS, name="a")])
    applied += sequencer.apply([deposit(START_NS + 1, 10**12, "t1"), deposit(START_NS + 2, 10**12, "t1")])
    live = state_hash(sequencer.engine)
    sequencer.close(snapshot=False)
    engine, _report = recover(tmp_path, store.config, use_snapshots=False)
    # Assert
    assert [a.seq for a in applied] == [1, 2, 3]
    assert state_hash(engine) == live


def test_a_sequencer_drives_an_engine_or_a_store_not_both(tmp_path: Path) -> None:
    store, _ = open_store(tmp_path, DEFAULT_CONFIG_TOML)
    with pytest.raises(ValueError, match="exactly one"):
        Sequencer(store.engine, store=store)
    with pytest.raises(ValueError, match="exactly one"):
        Sequencer()
    store.close(snapshot_on_close=False)
