"""A venue's data directory: config, journal and snapshots, and the one start-up path.

Layout of ``DIR``::

    DIR/config.toml              the venue config the journal was written under
    DIR/journal.log              every accepted command (see journal.py)
    DIR/snapshots/snap-<seq>.bin whole-state snapshots after record <seq> (12 digits)

Start-up and crash recovery are the same code (:func:`open_store`), in two phases:

1. **Decide, read-only** (:func:`plan_recovery`): read the journal's good prefix; refuse
   corruption (:class:`JournalCorruptError`) and a journal that ends before a snapshot
   (:class:`JournalBehindSnapshotError`); load the newest snapshot that verifies (checksum, then
   restored state hash equals the hash stored with it), naming every one skipped and why.
2. **Act**: re-apply the records after the snapshot, cut a torn tail, open the writer.

Invariants
----------
* A refused start writes nothing: no truncation, no fsync, no snapshot, no new file. Every refusal
  is raised in phase 1.
* Only a torn tail is ever cut, and only at a start that goes on to serve; read-only callers
  (:func:`recover`: ``perpx replay``, ``perpx explain``, audits) never write.
* A snapshot at record ``N`` is written only after records ``1..N`` are on disk (fsync), so a
  journal that ends before a snapshot lost records that had been made durable.

A clean shutdown only makes this faster (a fresh snapshot means a short tail).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import struct
import tomllib
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import msgspec

from perpx.engine.commands import Command
from perpx.engine.config import ConfigError, VenueConfig, parse_config
from perpx.engine.engine import Engine
from perpx.engine.events import Outcome
from perpx.engine.state import restore, snapshot, state_hash
from perpx.journal.journal import (
    JournalDamage,
    JournalScan,
    JournalWriter,
    cut_torn_tail,
    encode_command,
    scan,
)

CONFIG_FILE = "config.toml"
JOURNAL_FILE = "journal.log"
SNAPSHOT_DIR = "snapshots"
SNAPSHOT_MAGIC = b"PERPXS2\n"
_SNAP_HEADER = struct.Struct("<II")
_SNAPSHOT_NAME = re.compile(r"snap-(\d{12})\.bin")

Observer = Callable[[int, Command, Outcome], None]
"""``observe(seq, command, events)``: sees every replayed record (read models catching up, explain)."""

log = logging.getLogger("perpx.journal")


class RecoveryError(RuntimeError):
    """The data directory cannot be brought back to a verified state; the message says why and what to do."""


class JournalCorruptError(RecoveryError):
    """The journal is damaged somewhere other than a torn tail; nothing was changed.

    ``damage`` names the record, its byte offset and what follows it.
    """

    def __init__(self, directory: Path, damage: JournalDamage) -> None:
        self.damage = damage
        keep = damage.seq - 1
        follows = (
            f"a valid record (seq {damage.next_seq}) follows at byte {damage.end_offset}"
            if damage.next_seq is not None
            else "it is not a torn write"
        )
        super().__init__(
            f"{directory / JOURNAL_FILE} is corrupt at record {damage.seq}, byte {damage.offset}"
            f" ({damage.reason}); {follows}, so cutting it would silently drop acknowledged history."
            f" Refused; no file was changed. See `perpx journal verify {directory}`; restore journal.log"
            f" from a backup, or write a repaired copy with `perpx journal repair {directory} --out NEWDIR`"
            f" (keeps records 1..{keep} and reports every record it drops)."
        )


class JournalBehindSnapshotError(RecoveryError):
    """A snapshot was taken after the journal's last good record: durable records were lost."""


@dataclass(frozen=True, slots=True)
class SkippedSnapshot:
    """A snapshot file that start-up did not use, and why (the journal covers its records)."""

    file: str
    reason: str


@dataclass(frozen=True, slots=True)
class TornTail:
    """The torn final record start-up found: ``bytes_cut`` bytes from ``offset`` (record ``seq``)."""

    seq: int
    offset: int
    bytes_cut: int
    reason: str


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What recovery found and did; printed by ``perpx serve`` and ``perpx replay``.

    Attributes
    ----------
    snapshot_seq, snapshot_file
        The snapshot the engine was restored from (``0`` and ``None``: from record 1).
    skipped_snapshots
        Snapshots that failed verification, newest first, with the reason.
    replayed
        Journal records re-applied after the snapshot.
    last_seq
        The last good record: the next append gets ``last_seq + 1``.
    torn_tail
        The torn final record, if there was one; ``tail_cut`` says whether it was cut (a start)
        or only left unapplied (a read-only replay).
    state_hash
        The engine's state hash after recovery.
    """

    snapshot_seq: int
    snapshot_file: str | None
    skipped_snapshots: tuple[SkippedSnapshot, ...]
    replayed: int
    last_seq: int
    torn_tail: TornTail | None
    tail_cut: bool
    state_hash: str

    @property
    def problems(self) -> tuple[str, ...]:
        """The warnings in this report: skipped snapshots and a torn tail."""
        skipped = tuple(f"snapshot {s.file} skipped: {s.reason}" for s in self.skipped_snapshots)
        return skipped + ((self._torn_line(),) if self.torn_tail is not None else ())

    def _torn_line(self) -> str:
        tail = self.torn_tail
        assert tail is not None
        what = "cut" if self.tail_cut else "left in place and not applied (read-only)"
        return (
            f"torn tail {what}: {tail.bytes_cut} bytes at byte {tail.offset}"
            f" (record {tail.seq}: {tail.reason})"
        )

    def lines(self) -> list[str]:
        """The report as lines for a person: snapshot used and skipped, records replayed, bytes cut."""
        start = (
            f"snapshot {self.snapshot_file} (record {self.snapshot_seq})"
            if self.snapshot_file is not None
            else "no snapshot (replayed from record 1)"
        )
        lines = [f"started from {start}"]
        lines += [f"skipped snapshot {s.file}: {s.reason}" for s in self.skipped_snapshots]
        first = self.snapshot_seq + 1
        span = f" ({first}..{self.last_seq})" if self.replayed else ""
        lines.append(f"replayed {self.replayed} journal records{span}; last record {self.last_seq}")
        lines.append(self._torn_line() if self.torn_tail is not None else "torn tail: none")
        lines.append(f"state hash {self.state_hash}")
        return lines


def write_snapshot(directory: Path, seq: int, engine: Engine) -> Path:
    """Write a checksummed snapshot atomically (temp file, fsync, rename)."""
    folder = directory / SNAPSHOT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    payload = msgspec.json.encode({"seq": seq, "hash": state_hash(engine), "state": snapshot(engine)})
    path = folder / snapshot_name(seq)
    temp = path.with_suffix(".tmp")
    try:
        with open(temp, "wb") as handle:
            handle.write(SNAPSHOT_MAGIC + _SNAP_HEADER.pack(len(payload), zlib.crc32(payload)) + payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except OSError:
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)
        raise
    return path


def snapshot_name(seq: int) -> str:
    """The file name of the snapshot after record ``seq``."""
    return f"snap-{seq:012d}.bin"


def snapshot_files(directory: Path) -> list[tuple[int, Path]]:
    """Every ``snap-<seq>.bin`` of ``directory``, newest first, as ``(seq, path)``; other names are ignored."""
    folder = directory / SNAPSHOT_DIR
    if not folder.is_dir():
        return []
    found = [
        (int(match.group(1)), path)
        for path in folder.iterdir()
        if (match := _SNAPSHOT_NAME.fullmatch(path.name)) is not None
    ]
    return sorted(found, reverse=True)


def read_snapshot(path: Path, config: VenueConfig) -> tuple[int, str, Engine]:
    """Load and verify one snapshot: ``(seq, stored hash, engine)``.

    Raises
    ------
    ValueError
        With the reason, if the magic, length or checksum is wrong, the seq inside differs from
        the file name, the state does not restore, or the restored state's hash differs from
        the stored one.
    """
    data = path.read_bytes()
    if not data.startswith(SNAPSHOT_MAGIC):
        raise ValueError("bad magic")
    if len(data) < len(SNAPSHOT_MAGIC) + _SNAP_HEADER.size:
        raise ValueError("incomplete header")
    length, crc = _SNAP_HEADER.unpack_from(data, len(SNAPSHOT_MAGIC))
    payload = data[len(SNAPSHOT_MAGIC) + _SNAP_HEADER.size :]
    if len(payload) != length:
        raise ValueError(f"length mismatch ({len(payload)} payload bytes, header says {length})")
    if zlib.crc32(payload) != crc:
        raise ValueError("checksum mismatch")
    try:
        decoded: dict[str, Any] = msgspec.json.decode(payload)
        seq, stored = int(decoded["seq"]), str(decoded["hash"])
        engine = restore(config, decoded["state"])
    except (ValueError, KeyError, TypeError, msgspec.DecodeError) as exc:
        raise ValueError(f"does not restore: {exc}") from exc
    match = _SNAPSHOT_NAME.fullmatch(path.name)
    if match is not None and int(match.group(1)) != seq:
        raise ValueError(f"holds record {seq}, not the record its name says")
    if state_hash(engine) != stored:
        raise ValueError("restored state hash differs from the stored one")
    return seq, stored, engine


def read_config(directory: Path) -> VenueConfig:
    """The config stored in a data directory.

    Raises
    ------
    RecoveryError
        If there is none, it cannot be read, or it does not parse.
    """
    path = directory / CONFIG_FILE
    if not path.exists():
        raise RecoveryError(f"{directory} has no {CONFIG_FILE}; it is not a perpx data directory")
    try:
        return parse_config(tomllib.loads(path.read_text()))
    except OSError as exc:
        raise RecoveryError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (ConfigError, tomllib.TOMLDecodeError) as exc:
        raise RecoveryError(f"{path}: {exc}") from exc


def resolve_config(directory: Path, config_text: str | None) -> tuple[VenueConfig, str | None]:
    """The directory's config, checked against ``config_text``; reads only.

    Returns ``(config, text to write)``: the text is ``None`` for an existing directory and
    ``config_text`` for a new one (written by :func:`open_store` once nothing can refuse).

    Raises
    ------
    RecoveryError
        A different config for an existing directory (a journal replays only under its own), a
        journal without its config, a new directory without a config, or a config that does not parse.
    """
    stored = directory / CONFIG_FILE
    if stored.exists():
        if config_text is not None:
            try:
                differs = tomllib.loads(config_text) != tomllib.loads(stored.read_text())
            except tomllib.TOMLDecodeError as exc:
                raise RecoveryError(f"config: {exc}") from exc
            except OSError as exc:
                raise RecoveryError(f"cannot read {stored}: {exc.strerror or exc}") from exc
            if differs:
                raise RecoveryError(
                    f"{stored} differs from the config given; a journal replays only under its own config"
                    " (start with a new --data directory, or omit --config to use the stored one)"
                )
        return read_config(directory), None
    journal = directory / JOURNAL_FILE
    if journal.exists() and journal.stat().st_size > 0:
        raise RecoveryError(
            f"{directory} has a journal but no {CONFIG_FILE}: the journal replays only under the config it"
            f" was written with; put that config back as {stored}"
        )
    if config_text is None:
        raise RecoveryError(f"{directory} is new; a config is needed to create it")
    try:
        return parse_config(tomllib.loads(config_text)), config_text
    except (ConfigError, tomllib.TOMLDecodeError) as exc:
        raise RecoveryError(f"config: {exc}") from exc


class RecoveryPlan:
    """What start-up will do, decided by :func:`plan_recovery` before anything is written.

    ``found`` is the journal's good prefix (after the snapshot); ``engine`` is restored from the
    snapshot (or fresh). :meth:`replay` runs the plan once.
    """

    def __init__(
        self,
        directory: Path,
        config: VenueConfig,
        found: JournalScan,
        snapshot_seq: int,
        snapshot_file: str | None,
        engine: Engine,
        skipped: tuple[SkippedSnapshot, ...],
    ) -> None:
        self.directory = directory
        self.config = config
        self.found = found
        self.snapshot_seq = snapshot_seq
        self.snapshot_file = snapshot_file
        self.skipped = skipped
        self._engine: Engine | None = engine

    @property
    def last_seq(self) -> int:
        """The journal's last good record (the torn tail, if any, excluded)."""
        return max(self.found.last_seq, self.snapshot_seq)

    @property
    def torn_tail(self) -> TornTail | None:
        """The torn final record, if the journal ends with one."""
        damage = self.found.damage
        if damage is None:
            return None
        return TornTail(damage.seq, damage.offset, damage.end_offset - damage.offset, damage.reason)

    def replay(self, observe: Observer | None = None) -> tuple[Engine, RecoveryReport]:
        """Re-apply the records after the snapshot (reads only); ``observe`` sees each one's events."""
        engine = self._engine
        if engine is None:
            raise RuntimeError("a recovery plan is replayed once")
        self._engine = None
        for record in self.found.records:
            events = engine.apply(record.command)
            if observe is not None:
                observe(record.seq, record.command, events)
        report = RecoveryReport(
            snapshot_seq=self.snapshot_seq,
            snapshot_file=self.snapshot_file,
            skipped_snapshots=self.skipped,
            replayed=len(self.found.records),
            last_seq=self.last_seq,
            torn_tail=self.torn_tail,
            tail_cut=False,
            state_hash=state_hash(engine),
        )
        return engine, report


def plan_recovery(
    directory: Path,
    config: VenueConfig,
    *,
    use_snapshots: bool = True,
    max_snapshot_seq: int | None = None,
) -> RecoveryPlan:
    """Decide how to recover ``directory``, reading only; every refusal of a start is raised here.

    The newest snapshot that verifies, at or before ``max_snapshot_seq`` (read models that resume
    there), is the starting point; with ``use_snapshots=False`` the start is record 1.

    Raises
    ------
    JournalCorruptError
        The journal is damaged other than by a torn tail.
    JournalBehindSnapshotError
        A snapshot file is after the journal's last good record.
    RecoveryError
        A file of the directory cannot be read.
    """
    try:
        return _plan(directory, config, use_snapshots, max_snapshot_seq)
    except OSError as exc:
        raise RecoveryError(f"cannot read {exc.filename or directory}: {exc.strerror or exc}") from exc


def _plan(
    directory: Path, config: VenueConfig, use_snapshots: bool, max_snapshot_seq: int | None
) -> RecoveryPlan:
    files = snapshot_files(directory)
    skipped: list[SkippedSnapshot] = []
    start: tuple[int, str | None, Engine] = (0, None, Engine(config))
    if use_snapshots:
        for seq, path in files:
            if max_snapshot_seq is not None and seq > max_snapshot_seq:
                continue
            try:
                snap_seq, _stored, engine = read_snapshot(path, config)
            except ValueError as exc:
                skipped.append(SkippedSnapshot(path.name, str(exc)))
                continue
            start = (snap_seq, path.name, engine)
            break
    found = scan(directory / JOURNAL_FILE, after_seq=start[0])
    if found.corrupt:
        assert found.damage is not None
        raise JournalCorruptError(directory, found.damage)
    ahead = [(seq, path) for seq, path in files if seq > found.last_seq]
    if ahead:
        seq, path = ahead[0]
        torn = f" after cutting its torn tail at byte {found.good_bytes}" if found.torn else ""
        raise JournalBehindSnapshotError(
            f"snapshot {path.name} was taken at record {seq} but the journal ends at record"
            f" {found.last_seq}{torn}: records {found.last_seq + 1}..{seq} were durable and are lost"
            " (a journal restored from an older copy, or a disk that lost written data). Refused; no file"
            f" was changed. Restore journal.log from a backup, or write a copy that keeps records"
            f" 1..{found.last_seq} with `perpx journal repair {directory} --out NEWDIR`."
        )
    return RecoveryPlan(directory, config, found, start[0], start[1], start[2], tuple(skipped))


def recover(
    directory: Path,
    config: VenueConfig,
    use_snapshots: bool = True,
    observe: Observer | None = None,
    observe_after: int | None = None,
) -> tuple[Engine, RecoveryReport]:
    """Rebuild the engine from ``directory`` (snapshot + journal), reading only.

    The read-only tools' path (``perpx replay``, ``perpx explain``, audits): a torn tail is
    reported and not applied, and never cut. ``observe(seq, command, events)`` sees every
    replayed record's events; with ``observe_after`` the start is a snapshot at or before that
    record, so ``observe`` sees every record after it.

    Raises
    ------
    RecoveryError
        As :func:`plan_recovery`.
    """
    plan = plan_recovery(directory, config, use_snapshots=use_snapshots, max_snapshot_seq=observe_after)
    return plan.replay(observe)


def cannot_write(directory: Path, exc: OSError) -> RecoveryError:
    """The one-line refusal for a data directory that cannot be written (read-only, permissions, disk full)."""
    where = f" ({exc.filename})" if exc.filename else ""
    return RecoveryError(
        f"cannot write to the data directory {directory}{where}: {exc.strerror or exc}; perpx needs a"
        " writable data directory with free space (check the mount, its permissions and the free space)"
    )


class Store:
    """An engine whose every command is journaled before its events are released.

    Use :func:`open_store` to get one. ``submit`` and ``submit_batch`` are the
    sequencer's single entry: encode, append, commit (fsync in batch mode), apply.

    What a failure means
    --------------------
    * :class:`UnencodableCommand` (from :meth:`encode` or :meth:`submit_batch`): nothing was
      written and nothing applied; the store serves on.
    * :class:`JournalWriteError`: nothing of the batch was applied; with ``restored`` the
      journal is as before the batch and the next batch tries again (see :class:`JournalWriter`).
    * Anything else raised by :meth:`submit_encoded` comes from applying a journaled command:
      the batch is in the journal, the engine may be part-way through it, and the caller must
      stop using this store (a restart replays the journal).
    """

    def __init__(self, directory: Path, config: VenueConfig, engine: Engine, writer: JournalWriter) -> None:
        self.directory = directory
        self.config = config
        self.engine = engine
        self.writer = writer
        self.snapshot_problem: str | None = None
        """Why the last snapshot could not be written (``None`` once one is): the journal still has everything."""
        self._since_snapshot = 0

    @staticmethod
    def encode(command: Command) -> msgspec.Raw:
        """``command`` as a journal record holds it; raises :class:`UnencodableCommand` (nothing written)."""
        return encode_command(command)

    def submit(self, command: Command) -> Outcome:
        """Journal ``command``, make it durable, then apply it and return its events."""
        return self.submit_batch([command])[0]

    def submit_batch(self, commands: list[Command]) -> list[Outcome]:
        """Journal a batch with one commit (one fsync), then apply each in order.

        Every command is encoded before anything is written, so one that cannot be encoded
        raises :class:`UnencodableCommand` and none of the batch is journaled.
        """
        return self.submit_encoded([(command, encode_command(command)) for command in commands])

    def submit_encoded(self, batch: list[tuple[Command, msgspec.Raw]]) -> list[Outcome]:
        """:meth:`submit_batch` for commands already encoded by :meth:`encode` (each encoded once)."""
        self.writer.append_encoded([raw for _command, raw in batch])
        self.writer.commit()
        results = [self.engine.apply(command) for command, _raw in batch]
        self._since_snapshot += len(batch)
        if self._since_snapshot >= self.config.snapshot_every:
            self._snapshot_or_note()
        return results

    def _snapshot_or_note(self) -> None:
        """Snapshot now; a failure (disk full) is noted and retried after another ``snapshot_every``."""
        try:
            self.take_snapshot()
        except OSError as exc:
            self.snapshot_problem = f"snapshot after record {self.writer.next_seq - 1} failed: {exc}"
            log.warning("%s; the journal still holds every command", self.snapshot_problem)
        else:
            self.snapshot_problem = None

    def take_snapshot(self) -> Path:
        """Snapshot the state after the last journaled record, once that record is on disk."""
        self._since_snapshot = 0
        self.writer.commit()
        self.writer.sync()
        return write_snapshot(self.directory, self.writer.next_seq - 1, self.engine)

    def close(self, snapshot_on_close: bool = True) -> None:
        """Commit, optionally snapshot (a faster next start), and close the journal."""
        try:
            self.writer.commit()
            if snapshot_on_close and self.writer.next_seq > 1:
                self._snapshot_or_note()
        finally:
            self.writer.close()


def open_store(
    directory: str | Path,
    config_text: str | None = None,
    *,
    observe: Observer | None = None,
    observe_after: int | None = None,
    plan: RecoveryPlan | None = None,
) -> tuple[Store, RecoveryReport]:
    """Open (or create) a data directory and recover its engine; the one start-up path.

    ``config_text`` is required for a new directory and must match the stored config of an
    existing one (a changed config would replay differently). ``plan`` is a
    :func:`plan_recovery` of this directory made by a caller that checked more before any write
    (the server checks its read models); without it the plan is made here.

    Raises
    ------
    RecoveryError
        Every refusal of :func:`resolve_config` and :func:`plan_recovery`, raised before any file
        is written; and a directory that cannot be written (:func:`cannot_write`).
    """
    directory = Path(directory)
    config, new_text = resolve_config(directory, config_text)
    if plan is None:
        plan = plan_recovery(directory, config, max_snapshot_seq=observe_after)
    try:
        if new_text is not None:
            directory.mkdir(parents=True, exist_ok=True)
            (directory / CONFIG_FILE).write_text(new_text)
        engine, report = plan.replay(observe)
        journal = directory / JOURNAL_FILE
        if plan.found.torn:
            try:
                cut_torn_tail(journal, plan.found)
            except ValueError as exc:
                raise RecoveryError(str(exc)) from exc
            report = replace(report, tail_cut=True)
        writer = JournalWriter(
            journal, report.last_seq + 1, fsync=config.durability == "batch", good_bytes=plan.found.good_bytes
        )
    except OSError as exc:
        raise cannot_write(directory, exc) from exc
    return Store(directory, config, engine, writer), report
