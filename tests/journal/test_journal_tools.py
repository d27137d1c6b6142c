"""Rule: the read-only tools never write, and a repair writes only a new directory and names what it dropped.

``perpx replay``, ``perpx journal verify`` and ``perpx journal repair`` are checked by hashing every
file of the data directory before and after. ``verify`` exits 0 only on a clean directory.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from perpx.cli import app
from perpx.engine.config import DEFAULT_CONFIG_TOML
from perpx.engine.engine import Engine
from perpx.engine.state import state_hash
from perpx.journal.journal import scan
from perpx.journal.store import (
    JOURNAL_FILE,
    SNAPSHOT_DIR,
    open_store,
    read_config,
    recover,
    write_snapshot,
)
from perpx.sim.demo import DemoSession

from .files import fingerprint, flip, record_offsets

FAST_CONFIG = DEFAULT_CONFIG_TOML.replace('durability = "batch"', 'durability = "none"')


def _venue(directory: Path) -> tuple[int, str]:
    """A session with a snapshot midway; returns (snapshot seq, final state hash)."""
    store, _ = open_store(directory, FAST_CONFIG)
    DemoSession(store, seed=3).run(6, check_every=0)
    snapshot_seq = store.writer.next_seq - 1
    store.take_snapshot()
    DemoSession(store, seed=5).run(6, check_every=0)
    expected = state_hash(store.engine)
    store.close(snapshot_on_close=False)
    return snapshot_seq, expected


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_verify_of_a_clean_directory_exits_0_and_changes_no_file(tmp_path: Path) -> None:
    # Arrange
    snapshot_seq, expected = _venue(tmp_path)
    before = fingerprint(tmp_path)
    # Act
    code, output = _run("journal", "verify", str(tmp_path))
    # Assert
    assert code == 0, output
    assert "no damage" in output and "verdict: clean" in output
    assert f"(record {snapshot_seq}): ok: checksum and state hash verified; equals the journal" in output
    assert f"state hash {expected}" in output
    assert fingerprint(tmp_path) == before


def test_verify_names_the_corrupt_range_and_the_records_after_it_and_exits_1(tmp_path: Path) -> None:
    # Arrange: one flipped byte in the middle of record 10
    _venue(tmp_path)
    journal = tmp_path / JOURNAL_FILE
    offsets = record_offsets(journal)
    flip(journal, offsets[9][0] + 12)
    before = fingerprint(tmp_path)
    # Act
    code, output = _run("journal", "verify", str(tmp_path), "--no-replay")
    # Assert
    assert code == 1, output
    assert f"records 1..9 in bytes 8..{offsets[9][0]}" in output
    assert f"CORRUPT at record 10, bytes {offsets[9][0]}..{offsets[10][0]}: checksum mismatch" in output
    assert f"records 11..{len(offsets)} in bytes {offsets[10][0]}.." in output
    assert "start-up: refuses: " in output and "verdict: problems found" in output
    assert fingerprint(tmp_path) == before


def test_verify_reports_a_torn_tail_that_start_up_would_cut_and_exits_1(tmp_path: Path) -> None:
    _venue(tmp_path)
    journal = tmp_path / JOURNAL_FILE
    size = journal.stat().st_size
    with open(journal, "ab") as handle:
        handle.write(b"\x30\x00\x00\x00\x01")
    code, output = _run("journal", "verify", str(tmp_path))
    assert code == 1, output
    assert (
        f"TORN TAIL (start-up cuts it) at record {scan(journal).last_seq + 1}, bytes {size}..{size + 5}"
        in output
    )
    assert "cuts the torn tail (5 bytes" in output


def test_verify_reports_a_snapshot_that_differs_from_the_journal(tmp_path: Path) -> None:
    # Arrange: a snapshot that verifies alone (checksum, hash) but holds another record's state
    snapshot_seq, _ = _venue(tmp_path)
    store, _ = open_store(tmp_path)
    write_snapshot(tmp_path, snapshot_seq - 1, store.engine)
    store.writer.close()
    # Act
    code, output = _run("journal", "verify", str(tmp_path))
    # Assert
    assert code == 1, output
    assert f"(record {snapshot_seq - 1}): BAD: verifies alone but differs from the state" in output


def test_replay_of_a_corrupt_journal_exits_2_naming_the_record_and_changes_no_file(tmp_path: Path) -> None:
    _venue(tmp_path)
    journal = tmp_path / JOURNAL_FILE
    start, _end = record_offsets(journal)[4]
    flip(journal, start + 1)
    before = fingerprint(tmp_path)
    code, output = _run("replay", str(tmp_path))
    assert code == 2
    assert f"is corrupt at record 5, byte {start}" in output and "Traceback" not in output
    assert fingerprint(tmp_path) == before


def test_replay_of_a_torn_journal_reports_the_tail_and_changes_no_file(tmp_path: Path) -> None:
    _snapshot_seq, expected = _venue(tmp_path)
    with open(tmp_path / JOURNAL_FILE, "ab") as handle:
        handle.write(b"\x30\x00")
    before = fingerprint(tmp_path)
    code, output = _run("replay", str(tmp_path))
    assert code == 0, output
    assert "torn tail left in place and not applied (read-only): 2 bytes" in output
    assert f"state hash     {expected}" in output
    assert fingerprint(tmp_path) == before


def test_repair_writes_a_new_directory_with_the_valid_prefix_and_names_what_it_dropped(
    tmp_path: Path,
) -> None:
    # Arrange: record 30 is damaged; the snapshot is after it
    source, out = tmp_path / "data", tmp_path / "repaired"
    snapshot_seq, _ = _venue(source)
    journal = source / JOURNAL_FILE
    total = len(record_offsets(journal))
    flip(journal, record_offsets(journal)[29][0] + 10)
    assert 30 < snapshot_seq < total
    before = fingerprint(source)
    # Act
    code, output = _run("journal", "repair", str(source), "--out", str(out))
    # Assert: the source is untouched, the copy starts and holds records 1..29
    assert code == 0, output
    assert fingerprint(source) == before
    assert "journal.log with records 1..29" in output
    assert f"DROPPED {total - 30} records after record 29 that still check" in output
    assert "DROPPED damaged bytes" in output and "may have been acknowledged to clients" in output
    assert "snapshots kept: none" in output and "snapshot dropped: snap-" in output
    prefix = Engine(read_config(source))
    for record in scan(journal).records:
        prefix.apply(record.command)
    assert f"state hash of the repaired journal: {state_hash(prefix)}" in output
    store, report = open_store(out)
    assert report.last_seq == 29 and report.torn_tail is None
    assert report.state_hash == state_hash(prefix)
    store.close()


def test_repair_with_cut_at_seq_keeps_records_1_to_n_and_the_snapshots_before_it(tmp_path: Path) -> None:
    # Arrange
    source, out = tmp_path / "data", tmp_path / "repaired"
    snapshot_seq, _ = _venue(source)
    cut = snapshot_seq + 3
    # Act
    code, output = _run("journal", "repair", str(source), "--out", str(out), "--cut-at-seq", str(cut))
    # Assert
    assert code == 0, output
    assert [r.seq for r in scan(out / JOURNAL_FILE).records] == list(range(1, cut + 1))
    assert [p.name for p in (out / SNAPSHOT_DIR).iterdir()] == [f"snap-{snapshot_seq:012d}.bin"]
    engine, report = recover(out, read_config(out))
    assert report.snapshot_seq == snapshot_seq and report.last_seq == cut
    from_nothing, _ = recover(out, engine.config, use_snapshots=False)
    assert state_hash(engine) == state_hash(from_nothing)


@pytest.mark.parametrize("problem", ["past-damage", "out-not-empty", "out-inside"])
def test_repair_refuses_what_it_cannot_do_and_writes_nothing(tmp_path: Path, problem: str) -> None:
    source = tmp_path / "data"
    _venue(source)
    journal = source / JOURNAL_FILE
    flip(journal, record_offsets(journal)[19][0] + 10)
    out = {"past-damage": tmp_path / "new", "out-not-empty": tmp_path / "full", "out-inside": source / "x"}[
        problem
    ]
    if problem == "out-not-empty":
        out.mkdir()
        (out / "keep.txt").write_text("mine")
    args = ["journal", "repair", str(source), "--out", str(out)]
    if problem == "past-damage":
        args += ["--cut-at-seq", "25"]
    before = fingerprint(tmp_path)
    code, output = _run(*args)
    assert code == 2
    assert {
        "past-damage": "--cut-at-seq 25 is past the journal's last good record 19",
        "out-not-empty": "exists and is not empty",
        "out-inside": "is inside",
    }[problem] in output
    assert fingerprint(tmp_path) == before


def test_explain_reads_the_journal_without_changing_any_file(tmp_path: Path) -> None:
    _venue(tmp_path)
    with open(tmp_path / JOURNAL_FILE, "ab") as handle:
        handle.write(b"\x30\x00")
    before = fingerprint(tmp_path)
    code, output = _run("explain", "--data", str(tmp_path), "--account", "1")
    assert code == 0, output
    assert fingerprint(tmp_path) == before
