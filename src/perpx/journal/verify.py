"""Offline checks and repair of a data directory: ``perpx journal verify`` and ``perpx journal repair``.

Both only read the directory they are given. ``verify`` reports everything it finds: the journal's
runs of good records, each damaged range and whether it is a torn tail or corruption, every
snapshot's checksum and state hash (and, when the journal is replayed, whether it equals the state
the journal gives at the snapshot's record), and what start-up would do. ``repair`` never edits in
place: it writes a *new* directory holding the valid prefix of the journal (up to a chosen record),
the snapshots at or before it that verify, the config and the other files unchanged, and says
exactly what it dropped.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from perpx.engine.config import VenueConfig
from perpx.engine.engine import Engine
from perpx.engine.state import state_hash
from perpx.journal.journal import (
    JournalDamage,
    JournalSurvey,
    prefix_bytes,
    records_in,
    scan,
    survey,
)
from perpx.journal.store import (
    CONFIG_FILE,
    JOURNAL_FILE,
    SNAPSHOT_DIR,
    RecoveryError,
    plan_recovery,
    read_config,
    read_snapshot,
    recover,
    snapshot_files,
)


@dataclass(frozen=True, slots=True)
class SnapshotCheck:
    """One snapshot file: did it verify (checksum, restored hash, and the journal's state at its record)."""

    file: str
    seq: int
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What ``perpx journal verify`` found; ``clean`` is ``True`` only when nothing is wrong at all.

    ``start_up`` is what a start on this directory would do (the recovery path's own verdict).
    """

    directory: Path
    config_problem: str | None
    journal: JournalSurvey
    snapshots: tuple[SnapshotCheck, ...]
    replayed_to: int | None
    state_hash: str | None
    start_up: str
    start_up_refuses: bool

    @property
    def clean(self) -> bool:
        """No damage in the journal, every snapshot verified, the config readable."""
        return (
            self.config_problem is None
            and not self.journal.damages
            and all(check.ok for check in self.snapshots)
            and not self.start_up_refuses
        )

    def lines(self) -> list[str]:
        """The report for a person, one finding a line."""
        lines = [f"data directory {self.directory}"]
        lines.append(f"config: {self.config_problem or 'ok'}")
        records = sum(run.last_seq - run.first_seq + 1 for run in self.journal.runs)
        lines.append(f"journal: {self.journal.file_bytes} bytes, {records} records that check")
        in_file_order = sorted(
            [
                (
                    run.start_offset,
                    f"records {run.first_seq}..{run.last_seq} in bytes {run.start_offset}..{run.end_offset}",
                )
                for run in self.journal.runs
            ]
            + [(damage.offset, _damage_line(damage)) for damage in self.journal.damages]
        )
        lines += [f"  {line}" for _offset, line in in_file_order]
        if not self.journal.damages:
            lines.append("  no damage")
        if not self.snapshots:
            lines.append("snapshots: none")
        for check in self.snapshots:
            lines.append(
                f"snapshot {check.file} (record {check.seq}): {'ok' if check.ok else 'BAD'}: {check.detail}"
            )
        if self.replayed_to is not None:
            lines.append(f"replayed records 1..{self.replayed_to}: state hash {self.state_hash}")
        lines.append(f"start-up: {self.start_up}")
        lines.append("verdict: clean" if self.clean else "verdict: problems found (see above)")
        return lines


def _damage_line(damage: JournalDamage) -> str:
    kind = "TORN TAIL (start-up cuts it)" if damage.torn else "CORRUPT"
    span = f"bytes {damage.offset}..{damage.end_offset}"
    after = f"; resumes with record {damage.next_seq}" if damage.next_seq is not None else ""
    return f"{kind} at record {damage.seq}, {span}: {damage.reason}{after}"


def verify(directory: Path, replay: bool = True) -> VerifyReport:
    """Check ``directory`` without writing; see the module doc.

    With ``replay`` the journal's good prefix is re-applied from record 1 and every snapshot's
    stored hash is compared with the state the journal gives at its record.
    """
    config: VenueConfig | None = None
    config_problem: str | None = None
    try:
        config = read_config(directory)
    except RecoveryError as exc:
        config_problem = str(exc)
    journal_path = directory / JOURNAL_FILE
    surveyed = survey(journal_path)
    found = scan(journal_path)
    checks: dict[int, SnapshotCheck] = {}
    stored: dict[int, str] = {}
    for seq, path in snapshot_files(directory):
        if config is None:
            checks[seq] = SnapshotCheck(path.name, seq, False, "not checked: no readable config")
            continue
        try:
            _seq, stored_hash, _engine = read_snapshot(path, config)
        except (ValueError, OSError) as exc:
            checks[seq] = SnapshotCheck(path.name, seq, False, str(exc))
            continue
        if seq > found.last_seq:
            detail = f"beyond the journal's good records (they end at record {found.last_seq})"
            checks[seq] = SnapshotCheck(path.name, seq, False, detail)
            continue
        stored[seq] = stored_hash
        checks[seq] = SnapshotCheck(path.name, seq, True, "checksum and state hash verified")
    replayed_to: int | None = None
    final_hash: str | None = None
    if replay and config is not None:
        engine = Engine(config)
        for record in found.records:
            engine.apply(record.command)
            expected = stored.get(record.seq)
            if expected is not None:
                name = checks[record.seq].file
                if state_hash(engine) == expected:
                    detail = "checksum and state hash verified; equals the journal's state at its record"
                    checks[record.seq] = SnapshotCheck(name, record.seq, True, detail)
                else:
                    detail = "verifies alone but differs from the state the journal gives at its record"
                    checks[record.seq] = SnapshotCheck(name, record.seq, False, detail)
        replayed_to = found.last_seq
        final_hash = state_hash(engine)
    start_up, refuses = _start_up_verdict(directory, config, found.torn)
    return VerifyReport(
        directory=directory,
        config_problem=config_problem,
        journal=surveyed,
        snapshots=tuple(checks[seq] for seq in sorted(checks)),
        replayed_to=replayed_to,
        state_hash=final_hash,
        start_up=start_up,
        start_up_refuses=refuses,
    )


def _start_up_verdict(directory: Path, config: VenueConfig | None, torn: bool) -> tuple[str, bool]:
    if config is None:
        return "refuses: no readable config", True
    try:
        plan = plan_recovery(directory, config)
    except RecoveryError as exc:
        return f"refuses: {exc}", True
    tail = plan.torn_tail
    parts = [
        f"starts from snapshot {plan.snapshot_file}" if plan.snapshot_file else "starts from record 1",
        f"replays to record {plan.last_seq}",
    ]
    if tail is not None and torn:
        parts.append(f"cuts the torn tail ({tail.bytes_cut} bytes at byte {tail.offset}, record {tail.seq})")
    parts += [f"skips {s.file} ({s.reason})" for s in plan.skipped]
    return ", ".join(parts), False


@dataclass(frozen=True, slots=True)
class RepairReport:
    """What ``perpx journal repair`` wrote and, above all, what it dropped."""

    source: Path
    out: Path
    kept_last_seq: int
    kept_bytes: int
    source_bytes: int
    dropped_records: int
    dropped_commands: tuple[tuple[str, int], ...]
    damaged_ranges: tuple[tuple[int, int, bool], ...]
    snapshots_kept: tuple[str, ...]
    snapshots_dropped: tuple[tuple[str, str], ...]
    copied: tuple[str, ...]
    state_hash: str

    def lines(self) -> list[str]:
        """The report for a person; the lines about dropped data come first after the summary."""
        lines = [
            f"wrote {self.out}: {CONFIG_FILE}, {JOURNAL_FILE} with records 1..{self.kept_last_seq}"
            f" ({self.kept_bytes} of {self.source_bytes} bytes)"
        ]
        if self.dropped_records:
            kinds = ", ".join(f"{name} {count}" for name, count in self.dropped_commands)
            lines.append(
                f"DROPPED {self.dropped_records} records after record {self.kept_last_seq} that still check"
                f" ({kinds})"
            )
        for start, end, torn in self.damaged_ranges:
            if torn:
                lines.append(f"dropped the torn tail, bytes {start}..{end} (a write cut short)")
            else:
                lines.append(f"DROPPED damaged bytes {start}..{end} (unreadable; what they held is unknown)")
        if self.dropped_records or any(not torn for _s, _e, torn in self.damaged_ranges):
            lines.append(
                "  these records may have been acknowledged to clients: the orders, fills, transfers and"
                " settings in them are not in the new history, and the ids they were given will be given again"
            )
        else:
            lines.append("no record that checks was dropped")
        lines.append(f"snapshots kept: {', '.join(self.snapshots_kept) or 'none'}")
        lines += [f"snapshot dropped: {name}: {why}" for name, why in self.snapshots_dropped]
        lines.append(f"copied unchanged: {', '.join(self.copied) or 'nothing else'}")
        lines.append(f"state hash of the repaired journal: {self.state_hash}")
        lines.append(f"{self.source} was not changed")
        return lines


def repair(source: Path, out: Path, cut_at_seq: int | None = None) -> RepairReport:
    """Write a repaired copy of ``source`` into the new directory ``out``; ``source`` is only read.

    ``out`` gets the config, the journal's records ``1..cut_at_seq`` (default: the whole good prefix,
    up to the first damage) byte for byte, the snapshots at or before that record that verify and
    equal the journal's state there, and every other top-level file unchanged except SQLite ``-shm``
    files (read models and API keys; start-up checks the read models against the new journal).

    Raises
    ------
    RecoveryError
        ``out`` exists and is not empty or is inside ``source``; ``source`` has no readable config;
        ``cut_at_seq`` is past the good prefix; or ``out`` cannot be written.
    """
    source_abs, out_abs = source.resolve(), out.resolve()
    if out_abs == source_abs or source_abs in out_abs.parents:
        raise RecoveryError(f"--out {out} is inside {source}; repair writes a separate new directory")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RecoveryError(f"--out {out} exists and is not empty; repair writes only into a new directory")
    config = read_config(source)
    journal_path = source / JOURNAL_FILE
    found = scan(journal_path)
    cut = found.last_seq if cut_at_seq is None else cut_at_seq
    if cut > found.last_seq:
        where = (
            f"; the first damage is record {found.damage.seq} at byte {found.damage.offset}"
            if found.damage is not None
            else ""
        )
        raise RecoveryError(
            f"--cut-at-seq {cut} is past the journal's last good record {found.last_seq}{where}:"
            f" a repair keeps at most records 1..{found.last_seq}"
        )
    kept_bytes = prefix_bytes(journal_path, cut)
    surveyed = survey(journal_path)
    dropped = Counter(
        type(record.command).__name__
        for run in surveyed.runs
        if run.last_seq > cut or run.start_offset >= kept_bytes
        for record in records_in(journal_path, max(run.start_offset, kept_bytes), run.end_offset)
    )
    damaged = tuple((d.offset, d.end_offset, d.torn) for d in surveyed.damages if d.end_offset > d.offset)
    try:
        return _write_repair(source, out, config, cut, kept_bytes, surveyed, dropped, damaged)
    except OSError as exc:
        raise RecoveryError(f"cannot write {exc.filename or out}: {exc.strerror or exc}") from exc


def _write_repair(
    source: Path,
    out: Path,
    config: VenueConfig,
    cut: int,
    kept_bytes: int,
    surveyed: JournalSurvey,
    dropped: Counter[str],
    damaged: tuple[tuple[int, int, bool], ...],
) -> RepairReport:
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source / CONFIG_FILE, out / CONFIG_FILE)
    with open(source / JOURNAL_FILE, "rb") as reader, open(out / JOURNAL_FILE, "wb") as writer:
        writer.write(reader.read(kept_bytes))
        writer.flush()
        os.fsync(writer.fileno())
    engine = Engine(config)
    hashes: dict[int, str] = {}
    wanted = {seq for seq, _path in snapshot_files(source) if seq <= cut}
    for record in scan(out / JOURNAL_FILE).records:
        engine.apply(record.command)
        if record.seq in wanted:
            hashes[record.seq] = state_hash(engine)
    kept: list[str] = []
    dropped_snapshots: list[tuple[str, str]] = []
    for seq, path in sorted(snapshot_files(source)):
        if seq > cut:
            dropped_snapshots.append((path.name, f"after record {cut}"))
            continue
        try:
            _seq, stored, _restored = read_snapshot(path, config)
        except ValueError as exc:
            dropped_snapshots.append((path.name, str(exc)))
            continue
        if hashes.get(seq) != stored:
            dropped_snapshots.append((path.name, "differs from the state the journal gives at its record"))
            continue
        (out / SNAPSHOT_DIR).mkdir(exist_ok=True)
        shutil.copyfile(path, out / SNAPSHOT_DIR / path.name)
        kept.append(path.name)
    copied: list[str] = []
    for path in sorted(source.iterdir()):
        if path.name in (CONFIG_FILE, JOURNAL_FILE) or not path.is_file() or path.name.endswith("-shm"):
            continue
        shutil.copy2(path, out / path.name)
        copied.append(path.name)
    _engine, report = recover(out, config)
    return RepairReport(
        source=source,
        out=out,
        kept_last_seq=cut,
        kept_bytes=kept_bytes,
        source_bytes=surveyed.file_bytes,
        dropped_records=sum(dropped.values()),
        dropped_commands=tuple(sorted(dropped.items(), key=lambda item: (-item[1], item[0]))),
        damaged_ranges=damaged,
        snapshots_kept=tuple(kept),
        snapshots_dropped=tuple(dropped_snapshots),
        copied=tuple(copied),
        state_hash=report.state_hash,
    )
