"""Rule: the server starts only on a consistent data directory; a refused start changes no file.

A read model ahead of the journal (the journal lost records the read model saw) refuses the start
with the model, both record numbers and the way out; ``--rebuild-read-models`` rebuilds the read
models from the journal, so no row can hold an order id the engine will give again. A data
directory that cannot be written refuses in one line, never with a traceback.
"""

from __future__ import annotations

import ctypes
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

with warnings.catch_warnings():  # starlette warns about httpx at import; the client works
    warnings.simplefilter("ignore")

from perpx.journal.store import JOURNAL_FILE, SNAPSHOT_DIR, RecoveryError
from perpx.server.app import build_components
from perpx.server.context import READ_MODELS, open_venue, stored_seqs

from ..journal.files import fingerprint, record_offsets
from .harness import ADMIN_TOKEN, MANUAL_CONFIG, Trader
from .inprocess import InProcessVenue, in_process_venue, serving

BTC = "BTCUSDT"
NO_FSYNC_CONFIG = MANUAL_CONFIG.replace('durability = "batch"', 'durability = "none"')
"""Durability "none": a power cut may lose the journal's tail (the case these tests rebuild)."""


@contextmanager
def _venue(data: Path, rebuild: bool = False) -> Iterator[InProcessVenue]:
    ctx = open_venue(data, None, build_components, rebuild_read_models=rebuild)
    ctx.admin_token = ADMIN_TOKEN
    with serving(ctx) as venue:
        yield venue


def _place(venue: InProcessVenue, trader: Trader, n: int, tag: str) -> dict[str, int]:
    acked: dict[str, int] = {}
    for i in range(n):
        params = {
            "symbol": BTC,
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.002",
            "price": str(59000 + i * 10),
            "newClientOrderId": f"{tag}-{i}",
        }
        acked[f"{tag}-{i}"] = int(venue.ok("POST", "/fapi/v1/order", trader, params)["orderId"])
    return acked


def _row_order_ids(data: Path) -> set[int]:
    with sqlite3.connect(f"{(data / 'readmodel.sqlite').resolve().as_uri()}?mode=ro", uri=True) as db:
        return {row[0] for row in db.execute("SELECT order_id FROM orders")}


def _lose_the_tail(data: Path, keep: int, torn_bytes: int) -> None:
    """What a power cut under durability "none" can leave: records after ``keep`` gone, a torn record."""
    journal = data / JOURNAL_FILE
    offsets = record_offsets(journal)
    with open(journal, "r+b") as handle:
        handle.truncate(offsets[keep - 1][1] + torn_bytes)
    for snapshot in (data / SNAPSHOT_DIR).glob("snap-*.bin"):
        if int(snapshot.stem.removeprefix("snap-")) > keep:
            snapshot.unlink()


@pytest.fixture
def traded(tmp_path: Path) -> tuple[Path, Trader, dict[str, int]]:
    """A venue with 20 acknowledged orders, stopped cleanly."""
    data = tmp_path / "data"
    with in_process_venue(data, NO_FSYNC_CONFIG) as venue:
        venue.mark(BTC, "60000")
        trader = venue.trader("t")
        acked = _place(venue, trader, 20, "base")
    return data, trader, acked


def test_read_model_ahead_of_the_journal_refuses_start_and_changes_no_file(
    traded: tuple[Path, Trader, dict[str, int]],
) -> None:
    # Arrange: the journal lost its last 12 records; the read models had seen them
    data, _trader, _acked = traded
    last = len(record_offsets(data / JOURNAL_FILE))
    _lose_the_tail(data, last - 12, torn_bytes=0)
    before = fingerprint(data)
    # Act
    with pytest.raises(RecoveryError) as refused:
        open_venue(data, None, build_components)
    # Assert
    message = str(refused.value)
    assert f"read model 'readmodel' ({data / 'readmodel.sqlite'}) holds records up to {last}" in message
    assert f"the journal ends at record {last - 12}" in message
    assert "--rebuild-read-models" in message and "no file was changed" in message
    assert fingerprint(data) == before


def test_rebuilt_read_models_after_a_lost_tail_never_hold_an_id_a_new_order_gets(
    traded: tuple[Path, Trader, dict[str, int]],
) -> None:
    # Arrange: a power cut lost the last 12 records and tore the one before (durability "none")
    data, trader, acked = traded
    last = len(record_offsets(data / JOURNAL_FILE))
    _lose_the_tail(data, last - 12, torn_bytes=7)
    # Act
    with _venue(data, rebuild=True) as venue:
        report = venue.ctx.report
        lines = venue.ctx.start_lines()
        held = _row_order_ids(data)
        fresh = _place(venue, trader, 5, "after")
        rows_after = _row_order_ids(data)
    # Assert: the torn record was cut and said so; the read models were rebuilt from the journal
    assert report is not None and report.tail_cut and report.last_seq == last - 12
    assert any(line.startswith("read models rebuilt from the journal") for line in lines)
    assert held and max(held) < min(fresh.values())
    assert not held & set(fresh.values())
    assert len(rows_after) == len(held) + 5
    assert set(acked.values()) - held, "the lost records held acknowledged orders"


def test_new_orders_after_a_torn_tail_cut_get_ids_no_row_holds(
    traded: tuple[Path, Trader, dict[str, int]],
) -> None:
    # Arrange: a kill -9 mid-write: only a torn record after the last one the read models saw
    data, trader, acked = traded
    with open(data / JOURNAL_FILE, "ab") as handle:
        handle.write(b"\x40\x00\x00\x00\x12\x34")
    # Act
    with _venue(data) as venue:
        report = venue.ctx.report
        held = _row_order_ids(data)
        fresh = _place(venue, trader, 3, "after")
    # Assert
    assert report is not None and report.tail_cut and report.torn_tail is not None
    assert held == set(acked.values())
    assert not held & set(fresh.values())


def test_read_model_that_is_not_a_database_refuses_start_and_rebuild_recovers_it(
    traded: tuple[Path, Trader, dict[str, int]],
) -> None:
    # Arrange
    data, trader, acked = traded
    (data / "market.sqlite").write_bytes(b"not a database" * 100)
    before = fingerprint(data)
    # Act
    with pytest.raises(RecoveryError) as refused:
        open_venue(data, None, build_components)
    unchanged = fingerprint(data) == before
    with _venue(data, rebuild=True) as venue:
        held = {
            o["clientOrderId"]: o["orderId"]
            for o in venue.ok("GET", "/fapi/v1/allOrders", trader, {"symbol": BTC})
        }
    # Assert
    assert "market.sqlite is not a readable SQLite database" in str(refused.value)
    assert "--rebuild-read-models" in str(refused.value) and unchanged
    assert held == acked


def test_read_model_seqs_are_read_without_writing_and_match_the_components(
    traded: tuple[Path, Trader, dict[str, int]],
) -> None:
    # Arrange
    data, _trader, _acked = traded
    before = fingerprint(data)
    # Act
    seqs = stored_seqs(data)
    # Assert: nothing created (no -wal, no -shm), and each equals what the component resumes from
    assert fingerprint(data) == before
    ctx = open_venue(data, None, build_components)
    try:
        persistent = {
            n: c.resume_seq() for n, c in ctx.components.named().items() if c.resume_seq() is not None
        }
        assert seqs == persistent
        assert {m.name for m in READ_MODELS} == set(persistent)
    finally:
        ctx.close()


def test_read_model_seqs_after_a_crash_are_read_from_the_write_ahead_log_without_writing(
    tmp_path: Path,
) -> None:
    # Arrange: the image a crash leaves: read models with uncheckpointed write-ahead logs
    data, crashed = tmp_path / "data", tmp_path / "crashed"
    with in_process_venue(data, NO_FSYNC_CONFIG) as venue:
        venue.mark(BTC, "60000")
        _place(venue, venue.trader("t"), 5, "wal")
        expected = venue.ctx.components.readmodel.resume_seq()
        shutil.copytree(data, crashed)
    assert (crashed / "readmodel.sqlite-wal").stat().st_size > 0
    before = fingerprint(crashed)
    # Act
    seqs = stored_seqs(crashed)
    # Assert
    assert seqs["readmodel"] == expected > 0
    assert fingerprint(crashed) == before


def _without_root_override() -> None:
    """Run the child as root without CAP_DAC_OVERRIDE/READ_SEARCH, so file modes apply to it too."""
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        for capability in (1, 2):
            if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _no_file_may_grow() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def _serve(
    data: Path, preexec: Callable[[], None], config: Path | None = None
) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "perpx", "serve", "--data", str(data), "--port", "0"]
    if config is not None:
        args += ["--config", str(config)]
    return subprocess.run(args, check=False, capture_output=True, text=True, timeout=60, preexec_fn=preexec)


def _chmod_tree(root: Path, writable: bool) -> None:
    for path in [root, *root.rglob("*")]:
        mode = (0o755 if path.is_dir() else 0o644) if writable else (0o555 if path.is_dir() else 0o444)
        path.chmod(mode)


def test_read_only_data_directory_refuses_start_in_one_line(
    traded: tuple[Path, Trader, dict[str, int]],
) -> None:
    # Arrange
    data, _trader, _acked = traded
    _chmod_tree(data, writable=False)
    before = fingerprint(data)
    try:
        # Act
        done = _serve(data, _without_root_override)
    finally:
        _chmod_tree(data, writable=True)
    # Assert
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"error: cannot write to the data directory {data}")
    assert "Traceback" not in done.stdout + done.stderr
    assert fingerprint(data) == before


def test_data_directory_that_cannot_be_written_refuses_start_in_one_line(tmp_path: Path) -> None:
    # Arrange: no file may grow by a byte (what a full disk does to every write)
    config = tmp_path / "venue.toml"
    config.write_text(MANUAL_CONFIG)
    # Act
    done = _serve(tmp_path / "data", _no_file_may_grow, config)
    # Assert
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"error: cannot write to the data directory {tmp_path / 'data'}")
    assert "Traceback" not in done.stdout + done.stderr
