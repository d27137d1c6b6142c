"""A venue's data directory: config, journal and snapshots, and the one start-up path.

Layout of ``DIR``::

    DIR/config.toml              the venue config the journal was written under
    DIR/journal.log              every accepted command (see journal.py)
    DIR/snapshots/snap-<seq>.bin whole-state snapshots after record <seq>

Start-up and crash recovery are the same code (:func:`open_store`): load the
newest snapshot that verifies (checksum, then restored state hash equals the
hash stored with it), re-apply the journal records after it, cut off a torn
tail, and only then hand the engine out. A clean shutdown only makes this
faster (a fresh snapshot means a short tail).
"""

from __future__ import annotations

import os
import struct
import tomllib
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from perpx.engine.commands import Command
from perpx.engine.config import ConfigError, VenueConfig, parse_config
from perpx.engine.engine import Engine
from perpx.engine.events import Event
from perpx.engine.state import restore, snapshot, state_hash
from perpx.journal.journal import JournalWriter, scan, truncate_to_good

CONFIG_FILE = "config.toml"
JOURNAL_FILE = "journal.log"
SNAPSHOT_DIR = "snapshots"
SNAPSHOT_MAGIC = b"PERPXS2\n"
_SNAP_HEADER = struct.Struct("<II")


class RecoveryError(RuntimeError):
    """The data directory cannot be brought back to a verified state; the message says why."""


@dataclass
class RecoveryReport:
    """What start-up found and did, for the log and for ``perpx replay``."""

    snapshot_seq: int = 0
    replayed: int = 0
    last_seq: int = 0
    truncated_bytes: int = 0
    problems: list[str] = field(default_factory=list)
    state_hash: str = ""


def write_snapshot(directory: Path, seq: int, engine: Engine) -> Path:
    """Write a checksummed snapshot atomically (temp file, fsync, rename)."""
    folder = directory / SNAPSHOT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    payload = msgspec.json.encode({"seq": seq, "hash": state_hash(engine), "state": snapshot(engine)})
    path = folder / f"snap-{seq:012d}.bin"
    temp = path.with_suffix(".tmp")
    with open(temp, "wb") as handle:
        handle.write(SNAPSHOT_MAGIC + _SNAP_HEADER.pack(len(payload), zlib.crc32(payload)) + payload)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
    return path


def _read_snapshot(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    if not data.startswith(SNAPSHOT_MAGIC):
        raise ValueError("bad magic")
    length, crc = _SNAP_HEADER.unpack_from(data, len(SNAPSHOT_MAGIC))
    payload = data[len(SNAPSHOT_MAGIC) + _SNAP_HEADER.size :]
    if len(payload) != length or zlib.crc32(payload) != crc:
        raise ValueError("checksum or length mismatch")
    decoded: dict[str, Any] = msgspec.json.decode(payload)
    return decoded


def load_latest_snapshot(
    directory: Path, config: VenueConfig, report: RecoveryReport, max_seq: int | None = None
) -> tuple[int, Engine]:
    """The newest snapshot that verifies (at or before ``max_seq``), as ``(seq, engine)``; ``(0, fresh engine)`` if none."""
    folder = directory / SNAPSHOT_DIR
    paths = sorted(folder.glob("snap-*.bin"), reverse=True) if folder.exists() else []
    for path in paths:
        if max_seq is not None and _snapshot_seq(path) > max_seq:
            continue
        try:
            data = _read_snapshot(path)
            engine = restore(config, data["state"])
        except (ValueError, KeyError, TypeError, msgspec.DecodeError) as exc:
            report.problems.append(f"snapshot {path.name} skipped: {exc}")
            continue
        if state_hash(engine) != data["hash"]:
            report.problems.append(
                f"snapshot {path.name} skipped: restored state hash differs from the stored one"
            )
            continue
        return int(data["seq"]), engine
    return 0, Engine(config)


def _snapshot_seq(path: Path) -> int:
    try:
        return int(path.stem.removeprefix("snap-"))
    except ValueError:
        return 0


def read_config(directory: Path) -> VenueConfig:
    """The config stored in a data directory."""
    path = directory / CONFIG_FILE
    if not path.exists():
        raise RecoveryError(f"{directory} has no {CONFIG_FILE}; it is not a perpx data directory")
    try:
        return parse_config(tomllib.loads(path.read_text()))
    except (ConfigError, tomllib.TOMLDecodeError) as exc:
        raise RecoveryError(f"{path}: {exc}") from exc


def recover(
    directory: Path,
    config: VenueConfig,
    use_snapshots: bool = True,
    repair: bool = True,
    observe: Callable[[int, Command, list[Event]], None] | None = None,
    observe_after: int | None = None,
) -> tuple[Engine, RecoveryReport]:
    """Rebuild the engine from ``directory``: snapshot (optional) + journal tail.

    With ``repair`` (start-up) a torn tail is cut off so appends can continue;
    without it (``perpx replay``, audits) the directory is only read.
    ``observe(seq, command, events)`` sees every replayed command's events
    (``perpx explain``, read models); with ``observe_after`` the start point is a snapshot at or
    before that record, so ``observe`` sees every record after it (a read model catching up).
    """
    report = RecoveryReport()
    seq, engine = (
        load_latest_snapshot(directory, config, report, max_seq=observe_after)
        if use_snapshots
        else (0, Engine(config))
    )
    report.snapshot_seq = seq
    journal_path = directory / JOURNAL_FILE
    found = scan(journal_path)
    if found.problem is not None:
        bad_bytes = found.file_bytes - found.good_bytes
        if repair:
            report.problems.append(f"journal: {found.problem}; {bad_bytes} bytes cut off")
            report.truncated_bytes = bad_bytes
            truncate_to_good(journal_path, found)
        else:
            report.problems.append(
                f"journal: {found.problem}; the {bad_bytes} bytes after it were not applied"
            )
    last = found.records[-1].seq if found.records else 0
    if last < seq:
        raise RecoveryError(
            f"snapshot is at record {seq} but the journal ends at {last}: the journal lost records a snapshot saw"
        )
    for record in found.records:
        if record.seq > seq:
            events = engine.apply(record.command)
            if observe is not None:
                observe(record.seq, record.command, events)
            report.replayed += 1
    report.last_seq = max(last, seq)
    report.state_hash = state_hash(engine)
    return engine, report


class Store:
    """An engine whose every command is journaled before its events are released.

    Use :func:`open_store` to get one. ``submit`` and ``submit_batch`` are the
    sequencer's single entry: append, commit (fsync in batch mode), apply.
    """

    def __init__(self, directory: Path, config: VenueConfig, engine: Engine, writer: JournalWriter) -> None:
        self.directory = directory
        self.config = config
        self.engine = engine
        self.writer = writer
        self._since_snapshot = 0

    def submit(self, command: Command) -> list[Event]:
        """Journal ``command``, make it durable, then apply it and return its events."""
        return self.submit_batch([command])[0]

    def submit_batch(self, commands: list[Command]) -> list[list[Event]]:
        """Journal a batch with one commit (one fsync), then apply each in order."""
        self.writer.append_all(commands)
        self.writer.commit()
        results = [self.engine.apply(command) for command in commands]
        self._since_snapshot += len(commands)
        if self._since_snapshot >= self.config.snapshot_every:
            self.take_snapshot()
        return results

    def take_snapshot(self) -> Path:
        """Snapshot the state after the last journaled record."""
        self._since_snapshot = 0
        return write_snapshot(self.directory, self.writer.next_seq - 1, self.engine)

    def close(self, snapshot_on_close: bool = True) -> None:
        """Commit, optionally snapshot (a faster next start), and close the journal."""
        self.writer.commit()
        if snapshot_on_close and self.writer.next_seq > 1:
            self.take_snapshot()
        self.writer.close()


def open_store(
    directory: str | Path,
    config_text: str | None = None,
    *,
    observe: Callable[[int, Command, list[Event]], None] | None = None,
    observe_after: int | None = None,
) -> tuple[Store, RecoveryReport]:
    """Open (or create) a data directory and recover its engine; the one start-up path.

    ``config_text`` is required for a new directory and must match the stored
    config of an existing one (a changed config would replay differently).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stored = directory / CONFIG_FILE
    if stored.exists():
        if config_text is not None and tomllib.loads(config_text) != tomllib.loads(stored.read_text()):
            raise RecoveryError(
                f"{stored} differs from the config given; a journal replays only under its own config"
                " (start with a new --data directory, or omit --config to use the stored one)"
            )
    elif config_text is None:
        raise RecoveryError(f"{directory} is new; a config is needed to create it")
    else:
        try:
            parse_config(tomllib.loads(config_text))
        except (ConfigError, tomllib.TOMLDecodeError) as exc:
            raise RecoveryError(f"config: {exc}") from exc
        stored.write_text(config_text)
    config = read_config(directory)
    engine, report = recover(directory, config, observe=observe, observe_after=observe_after)
    writer = JournalWriter(directory / JOURNAL_FILE, report.last_seq + 1, fsync=config.durability == "batch")
    return Store(directory, config, engine, writer), report
