"""The append-only command journal.

File format
-----------
A journal file starts with the 8-byte magic ``b"PERPXJ1\\n"`` and then holds
records back to back::

    +----------------+----------------+-------------------------------+
    | length: u32 LE | crc32:  u32 LE | payload: msgpack [seq, cmd]   |
    +----------------+----------------+-------------------------------+

``crc32`` covers the payload. ``seq`` starts at 1 and rises by exactly one
per record. A record *checks* when its header and payload are complete, its
length is between 1 and :data:`MAX_RECORD_BYTES`, its checksum matches and
it decodes; it is *good* when it also carries the next ``seq``.

Reading never guesses
---------------------
:func:`scan` reads the good prefix. The first record that is not good ends
it, and what comes after that record decides what it is
(:class:`JournalDamage`):

=============  ==============================================================
torn tail      the write of the last batch was cut short (kill -9, power cut):
               the bad record does not check, its bytes do not decode as the
               next record even when its length field is ignored, and no
               record that checks starts anywhere after it. Start-up may cut
               it (:func:`cut_torn_tail`); nothing in it is ever applied.
corruption     anything else: a record that checks follows the bad one (a
               flipped byte or a bad length in the middle), the bad record
               decodes whole as the next record (its length or checksum field
               is damaged, its payload is there), a record that checks carries
               the wrong ``seq``, or the magic is wrong. Nothing may be cut or
               applied past it: start-up refuses, read-only tools report it.
=============  ==============================================================

A single damaged final record whose payload no longer decodes looks exactly
like a torn write and is treated as one; every other damage is refused.

Preallocated space
------------------
With durability ``"batch"`` the writer reserves the file ahead of its records in
:data:`PREALLOCATE_BYTES` steps (``posix_fallocate``), so the file's size does not
change on every commit and ``fdatasync`` has no size to write back. The reserved
space reads as zero bytes. Where the good prefix is followed only by zero bytes
the journal simply ends (a record is never zero-length, so its header is never
eight zero bytes); a zero-length header followed by anything that is not zero is
damage like any other. A clean close cuts the reserve off again.

Durability
----------
``"batch"`` (default): :meth:`JournalWriter.commit` writes the buffered
records and ``fsync``\\ s before the caller releases any result of them, so a
torn tail holds only records of a batch nobody was answered for.
``"none"``: records are written to the OS at commit but not fsynced, so a
killed process loses nothing and a power cut may lose acknowledged records
at the tail.
"""

from __future__ import annotations

import errno
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec

from perpx.engine.commands import AnyCommand, Command

MAGIC = b"PERPXJ1\n"
_HEADER = struct.Struct("<II")
HEADER_BYTES = _HEADER.size
MAX_RECORD_BYTES = 16 * 1024 * 1024
PREALLOCATE_BYTES = 4 * 1024 * 1024
"""How far ahead of its records a durable (``fsync``) writer reserves the file."""
_PAYLOAD_FIRST_BYTE = 0x92
"""msgpack fixarray of two: the first byte of every payload (``[seq, command]``)."""

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(tuple[int, AnyCommand])


@dataclass(frozen=True, slots=True)
class JournalRecord:
    """One journaled command and its sequence number."""

    seq: int
    command: Command


@dataclass(frozen=True, slots=True)
class JournalDamage:
    """The first record that is not good, and what it is (see the module doc).

    Attributes
    ----------
    seq
        The sequence number the damaged record should have carried (the next one expected).
    offset
        Byte offset of its header in the file.
    end_offset
        First byte after the damaged range: the next record that checks, or the end of the file.
    reason
        What is wrong with the record, in words.
    torn
        ``True`` for a torn tail (may be cut), ``False`` for corruption (must be refused).
    next_seq
        ``seq`` of the record that checks at ``end_offset``; ``None`` when nothing checks after it.
    """

    seq: int
    offset: int
    end_offset: int
    reason: str
    torn: bool
    next_seq: int | None

    def describe(self) -> str:
        """One sentence an operator can act on: which record, where, why, and what follows it."""
        where = f"record {self.seq} at byte {self.offset}: {self.reason}"
        if self.torn:
            return f"torn tail at {where}; {self.end_offset - self.offset} bytes, nothing valid after them"
        if self.next_seq is None:
            return f"corruption at {where}"
        return (
            f"corruption at {where}; a valid record (seq {self.next_seq}) follows at byte {self.end_offset}"
        )


@dataclass(frozen=True, slots=True)
class JournalScan:
    """What a read of the journal found: the good records, where the good prefix ends, and why.

    ``good_bytes`` is the offset just after the last good record; ``damage`` is ``None`` when
    the whole file is good.
    """

    records: tuple[JournalRecord, ...]
    good_bytes: int
    file_bytes: int
    damage: JournalDamage | None
    last_seq: int

    @property
    def torn(self) -> bool:
        """The file ends with a torn tail that start-up may cut."""
        return self.damage is not None and self.damage.torn

    @property
    def corrupt(self) -> bool:
        """The file holds damage that is not a torn tail: nothing may start on it."""
        return self.damage is not None and not self.damage.torn


@dataclass(frozen=True, slots=True)
class RecordRun:
    """Consecutive good records ``first_seq..last_seq`` in bytes ``[start_offset, end_offset)``."""

    first_seq: int
    last_seq: int
    start_offset: int
    end_offset: int


@dataclass(frozen=True, slots=True)
class JournalSurvey:
    """The whole file, read past every damage: the runs of good records and the damages between them.

    Only ``perpx journal verify`` needs this; start-up stops at the first damage (:func:`scan`).
    """

    file_bytes: int
    runs: tuple[RecordRun, ...]
    damages: tuple[JournalDamage, ...]


class UnencodableCommand(ValueError):
    """A command that no journal record can hold; nothing of it was written.

    A field outside the 64-bit range msgpack holds, text that is not valid UTF-8
    (a lone surrogate), or a record over ``MAX_RECORD_BYTES`` (which recovery would
    take for a torn tail and cut off, with everything after it).
    """


def encode_command(command: Command) -> msgspec.Raw:
    """The msgpack bytes of ``command`` alone, to frame with its ``seq`` later (encoded once).

    Raises
    ------
    UnencodableCommand
        If no journal record can hold ``command`` (see the class).
    """
    name = type(command).__name__
    try:
        payload = _encoder.encode(command)
    except OverflowError as exc:
        raise UnencodableCommand(
            f"{name} has a number outside the 64-bit range a journal record holds"
        ) from exc
    except UnicodeEncodeError as exc:
        raise UnencodableCommand(f"{name} has text that is not valid UTF-8 ({exc.reason})") from exc
    except (TypeError, ValueError) as exc:
        raise UnencodableCommand(f"{name} cannot be written to the journal: {exc}") from exc
    if len(payload) > MAX_RECORD_BYTES - 16:
        raise UnencodableCommand(
            f"{name} is {len(payload)} bytes; a journal record holds at most {MAX_RECORD_BYTES - 16}"
        )
    return msgspec.Raw(payload)


def frame_record(seq: int, command: msgspec.Raw) -> bytes:
    """Length-prefixed, checksummed bytes of the record ``[seq, command]`` (``command`` from :func:`encode_command`)."""
    payload = _encoder.encode((seq, command))
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def encode_record(seq: int, command: Command) -> bytes:
    """Length-prefixed, checksummed bytes of one record.

    Raises
    ------
    UnencodableCommand
        (a ``ValueError``) if no record can hold ``command``; nothing is written.
    """
    return frame_record(seq, encode_command(command))


def _decode(payload: bytes | memoryview) -> tuple[int, Command] | None:
    try:
        seq, command = _decoder.decode(payload)
    except (msgspec.DecodeError, ValueError, TypeError):
        return None
    return seq, command


def _record_at(data: bytes, offset: int) -> tuple[int, Command, int] | None:
    """``(seq, command, end)`` of the record at ``offset`` if it checks, else ``None``."""
    start = offset + HEADER_BYTES
    if start > len(data):
        return None
    length, crc = _HEADER.unpack_from(data, offset)
    end = start + length
    if length == 0 or length > MAX_RECORD_BYTES or end > len(data):
        return None
    payload = memoryview(data)[start:end]
    if zlib.crc32(payload) != crc:
        return None
    decoded = _decode(payload)
    if decoded is None:
        return None
    return decoded[0], decoded[1], end


def _problem_at(data: bytes, offset: int) -> str:
    """Why the record at ``offset`` does not check (or, when it does, the empty string)."""
    start = offset + HEADER_BYTES
    if start > len(data):
        return f"incomplete record header ({len(data) - offset} of {HEADER_BYTES} bytes)"
    length, crc = _HEADER.unpack_from(data, offset)
    if length == 0 or length > MAX_RECORD_BYTES:
        return f"impossible record length {length}"
    if start + length > len(data):
        return f"incomplete payload ({len(data) - start} of {length} bytes)"
    payload = memoryview(data)[start : start + length]
    if zlib.crc32(payload) != crc:
        return "checksum mismatch"
    if _decode(payload) is None:
        return "payload does not decode as [seq, command]"
    return ""


def _next_record(data: bytes, after: int) -> tuple[int, int] | None:
    """``(offset, seq)`` of the first record that checks and starts after byte ``after``."""
    index = data.find(bytes((_PAYLOAD_FIRST_BYTE,)), after + 1 + HEADER_BYTES)
    while index != -1:
        found = _record_at(data, index - HEADER_BYTES)
        if found is not None:
            return index - HEADER_BYTES, found[0]
        index = data.find(bytes((_PAYLOAD_FIRST_BYTE,)), index + 1)
    return None


def _whole_despite_header(data: bytes, offset: int, seq: int) -> bool:
    """The record at ``offset`` decodes whole as record ``seq`` although its header does not check.

    Its payload is there: either as long as the length field says (the checksum field or a
    payload byte is damaged) or running exactly to the end of the file (the length field is
    damaged). A torn write never produces that.
    """
    start = offset + HEADER_BYTES
    if start > len(data):
        return False
    length, _crc = _HEADER.unpack_from(data, offset)
    candidates = [memoryview(data)[start:]]
    if 0 < length <= len(data) - start:
        candidates.append(memoryview(data)[start : start + length])
    return any((decoded := _decode(c)) is not None and decoded[0] == seq for c in candidates)


def _damage(data: bytes, offset: int, seq: int) -> JournalDamage:
    """Classify the bad record at ``offset`` that should have been record ``seq``."""
    found = _record_at(data, offset)
    if found is not None:
        return JournalDamage(
            seq, offset, offset, f"sequence gap: found record {found[0]}", torn=False, next_seq=found[0]
        )
    reason = _problem_at(data, offset)
    following = _next_record(data, offset)
    if following is not None:
        return JournalDamage(seq, offset, following[0], reason, torn=False, next_seq=following[1])
    if reason.startswith("payload does not decode") or _whole_despite_header(data, offset, seq):
        whole = "its checksum matches" if reason.startswith("payload") else "its payload decodes whole"
        return JournalDamage(
            seq, offset, len(data), f"{reason}, but {whole}: not a torn write", torn=False, next_seq=None
        )
    return JournalDamage(seq, offset, len(data), reason, torn=True, next_seq=None)


def _bad_magic(data: bytes) -> JournalDamage:
    """The damage of a file that does not start with :data:`MAGIC`."""
    if MAGIC.startswith(data):
        return JournalDamage(1, 0, len(data), "incomplete file header", torn=True, next_seq=None)
    reason = "bad magic: the file does not start with a perpx journal header"
    following = _next_record(data, -1)
    if following is None:
        return JournalDamage(1, 0, len(data), reason, torn=False, next_seq=None)
    return JournalDamage(1, 0, following[0], reason, torn=False, next_seq=following[1])


def _read(path: Path) -> bytes | None:
    return path.read_bytes() if path.exists() else None


def _zero_tail(data: bytes, offset: int) -> bool:
    """Only zero bytes (reserved, never written) from ``offset`` to the end: the journal ends there."""
    return data.count(0, offset) == len(data) - offset


def scan(path: str | Path, after_seq: int = 0) -> JournalScan:
    """Read the good prefix of the journal at ``path``; keep the records with ``seq > after_seq``.

    A missing or empty file is an empty journal. Never writes. The first record that is not good
    ends the prefix and is classified in ``damage`` (torn tail or corruption, see the module doc).
    """
    data = _read(Path(path))
    if not data:
        return JournalScan((), 0, 0, None, 0)
    if not data.startswith(MAGIC):
        return JournalScan((), 0, len(data), _bad_magic(data), 0)
    records: list[JournalRecord] = []
    offset = len(MAGIC)
    seq = 0
    damage = None
    while offset < len(data):
        found = _record_at(data, offset)
        if found is None or found[0] != seq + 1:
            if found is None and _zero_tail(data, offset):
                break
            damage = _damage(data, offset, seq + 1)
            break
        seq = found[0]
        if seq > after_seq:
            records.append(JournalRecord(seq, found[1]))
        offset = found[2]
    return JournalScan(tuple(records), offset, len(data), damage, seq)


def survey(path: str | Path) -> JournalSurvey:
    """Read the whole journal, past every damage, for a report (``perpx journal verify``). Never writes.

    After a damaged range the reading resumes at the next record that checks, whatever its
    ``seq``; a record that checks but breaks the sequence starts a new run.
    """
    data = _read(Path(path)) or b""
    if not data:
        return JournalSurvey(0, (), ())
    bad_magic = not data.startswith(MAGIC)
    runs: list[RecordRun] = []
    damages: list[JournalDamage] = []
    offset = len(MAGIC)
    expected: int | None = 1
    if bad_magic:
        damages.append(_bad_magic(data))
        if damages[0].next_seq is None:
            return JournalSurvey(len(data), (), tuple(damages))
        offset = damages[0].end_offset
        expected = None
    run_start: tuple[int, int] | None = None
    last = 0
    while offset < len(data):
        found = _record_at(data, offset)
        if found is None and _zero_tail(data, offset):
            break
        if found is not None and (expected is None or found[0] == expected):
            if run_start is None:
                run_start = (found[0], offset)
            last = found[0]
            expected = last + 1
            offset = found[2]
            continue
        if run_start is not None:
            runs.append(RecordRun(run_start[0], last, run_start[1], offset))
            run_start = None
        damage = _damage(data, offset, expected or 1)
        damages.append(damage)
        if damage.next_seq is None:
            break
        offset = damage.end_offset
        expected = None
    if run_start is not None:
        runs.append(RecordRun(run_start[0], last, run_start[1], offset))
    return JournalSurvey(len(data), tuple(runs), tuple(damages))


def prefix_bytes(path: str | Path, through_seq: int) -> int:
    """Length of the file's beginning that holds exactly records ``1..through_seq`` (good records only).

    Raises
    ------
    ValueError
        If record ``through_seq`` is not in the good prefix.
    """
    data = _read(Path(path)) or b""
    if through_seq == 0:
        return len(MAGIC) if data.startswith(MAGIC) else 0
    offset, seq = len(MAGIC), 0
    while data.startswith(MAGIC) and seq < through_seq:
        found = _record_at(data, offset)
        if found is None or found[0] != seq + 1:
            break
        seq, offset = found[0], found[2]
    if seq != through_seq:
        raise ValueError(
            f"record {through_seq} is not in the good prefix of {path} (it ends at record {seq})"
        )
    return offset


def records_in(path: str | Path, start_offset: int, end_offset: int) -> Iterator[JournalRecord]:
    """Every record that checks in bytes ``[start_offset, end_offset)``, walking record by record.

    Used on the runs a :func:`survey` found, to say which commands a repair drops.
    """
    data = _read(Path(path)) or b""
    offset = start_offset
    while offset < end_offset:
        found = _record_at(data, offset)
        if found is None:
            return
        yield JournalRecord(found[0], found[1])
        offset = found[2]


def last_seq(path: str | Path) -> int:
    """Sequence number of the last good record (0 for an empty journal)."""
    return scan(path).last_seq


def cut_torn_tail(path: str | Path, found: JournalScan) -> int:
    """Cut the torn tail ``found`` off the journal (and fsync) so appends continue after the last good record.

    Returns the number of bytes cut (0 when there is no torn tail).

    Raises
    ------
    ValueError
        If ``found`` holds corruption (that is never cut), or the file changed size since it was
        scanned (someone else is writing it).
    """
    if found.damage is None:
        return 0
    if not found.damage.torn:
        raise ValueError(f"{path}: refusing to cut a journal that is corrupt, not torn")
    path = Path(path)
    if path.stat().st_size != found.file_bytes:
        raise ValueError(f"{path} changed size since it was read; is another process writing it?")
    with open(path, "r+b") as handle:
        handle.truncate(found.good_bytes)
        handle.flush()
        os.fsync(handle.fileno())
    return found.file_bytes - found.good_bytes


class JournalWriteError(Exception):
    """Writing or syncing the journal failed; no command of the failed commit was applied.

    ``restored`` tells what the file holds now:

    * ``True``: it is back at the length of the last good commit, and that was checked
      (and synced with durability ``"batch"``). The commit's records are certainly not in the
      journal; the writer accepts the next commit, which writes them anew if they are resent.
    * ``False``: the file could not be cut back. Some of the commit's records may be complete in
      it, and a restart would apply them. The writer refuses every later commit.
    """

    def __init__(self, reason: str, *, restored: bool, errno: int | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.restored = restored
        self.errno = errno


class JournalWriter:
    """Appends records to one journal file; nothing is released before :meth:`commit`.

    Parameters
    ----------
    path
        The journal file; created with its magic header if new.
    next_seq
        Sequence number of the next record (last good seq + 1).
    fsync
        ``True`` for durability ``"batch"``: every commit ends with ``fdatasync``, and the file is
        reserved ahead of the records (see the module doc), so the sync has no size to write.
    good_bytes
        Where the good prefix ends (``scan(path).good_bytes``); records are written from there.
        ``None`` reads it from the file.

    A failed commit
    ---------------
    A commit that cannot be written or synced (``ENOSPC``, ``EDQUOT``, ``EROFS``, ``EIO``, ...)
    leaves the journal as it was before it: the file is cut back to ``good_bytes`` (the length
    the last successful commit left), the cut is synced, the file is reopened and its length
    checked, and the buffered records and their sequence numbers are dropped. Then
    :class:`JournalWriteError` is raised with ``restored=True``, and the next commit simply tries
    again. An fsync is never retried over the same bytes: after a failed fsync Linux may mark
    the dirty pages clean and report no error the second time ("fsyncgate"), so a retry could
    claim durability for data that never reached the disk. Cutting the file back removes those
    pages instead. If the cut, its sync or the reopen fails too, the error has
    ``restored=False`` and the writer refuses every later commit: a person must look at the
    disk and restart (recovery cuts a torn tail; complete records of that commit would replay).
    """

    def __init__(
        self, path: str | Path, next_seq: int, fsync: bool = True, good_bytes: int | None = None
    ) -> None:
        self.path = Path(path)
        self.next_seq = next_seq
        self.fsync = fsync
        self._buffer: list[bytes] = []
        self._broken: str | None = None
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._fd = self._open()
        self._reserve = fsync
        self.good_bytes = 0
        if new:
            self._write_all(MAGIC)
            self._sync()
            self.good_bytes = len(MAGIC)
        else:
            self.good_bytes = scan(self.path).good_bytes if good_bytes is None else good_bytes
        self.reserved_bytes = os.fstat(self._fd).st_size

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)

    def _reserve_for(self, length: int) -> None:
        """Reserve the file past ``good_bytes + length`` (best effort: a plain write extends it anyway)."""
        end = self.good_bytes + length
        if not self._reserve or end <= self.reserved_bytes:
            return
        target = end + PREALLOCATE_BYTES
        try:
            os.posix_fallocate(self._fd, self.reserved_bytes, target - self.reserved_bytes)
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                self._reserve = False  # this file system cannot reserve; write as we go
            return  # no space to reserve: the write itself says whether the records fit
        self.reserved_bytes = target

    def append(self, command: Command) -> int:
        """Buffer ``command`` as the next record and return its sequence number."""
        seq = self.next_seq
        self._buffer.append(encode_record(seq, command))
        self.next_seq = seq + 1
        return seq

    def append_all(self, commands: list[Command]) -> None:
        """Buffer every command, or none of them if one cannot be encoded (:class:`UnencodableCommand`)."""
        self.append_encoded([encode_command(command) for command in commands])

    def append_encoded(self, commands: list[msgspec.Raw]) -> None:
        """Buffer commands already encoded by :func:`encode_command`, in order."""
        self._buffer.extend(frame_record(self.next_seq + i, raw) for i, raw in enumerate(commands))
        self.next_seq += len(commands)

    def commit(self) -> None:
        """Write the buffered records (and fsync in batch mode). Call before releasing results.

        Raises
        ------
        JournalWriteError
            If writing or syncing failed; the buffered records are dropped (see the class).
        """
        if not self._buffer:
            return
        data = b"".join(self._buffer)
        first_seq = self.next_seq - len(self._buffer)
        self._buffer.clear()
        if self._broken is not None:
            self.next_seq = first_seq
            raise JournalWriteError(self._broken, restored=False, errno=None)
        stage = "write"
        try:
            self._reserve_for(len(data))
            self._write_all(data)
            stage = "fsync"
            self._sync()
        except OSError as exc:
            self.next_seq = first_seq
            reason = f"journal {stage} failed: {_os_error_text(exc)}"
            problem = self._restore()
            if problem is not None:
                self._broken = f"{reason}; then cutting it back to {self.good_bytes} bytes failed: {problem}"
                raise JournalWriteError(self._broken, restored=False, errno=exc.errno) from exc
            raise JournalWriteError(reason, restored=True, errno=exc.errno) from exc
        self.good_bytes += len(data)

    def _restore(self) -> str | None:
        """Cut the file back to ``good_bytes``, sync the cut, reopen and check; the problem, or ``None``."""
        try:
            self._truncate(self.good_bytes)
            self._sync()
            os.close(self._fd)
            self._fd = -1
            self._fd = self._open()
            length = os.fstat(self._fd).st_size
        except OSError as exc:
            return _os_error_text(exc)
        self.reserved_bytes = length
        if length != self.good_bytes:
            return f"the file is {length} bytes after the cut"
        return None

    def _write_all(self, data: bytes) -> None:
        """Write ``data`` at ``good_bytes`` (``good_bytes`` moves only once the commit is synced)."""
        view = memoryview(data)
        offset = self.good_bytes
        while view:
            written = self._write_some(view, offset)
            view = view[written:]
            offset += written

    def _write_some(self, data: memoryview, offset: int) -> int:
        """One ``pwrite(2)``; a seam for fault-injection tests."""
        return os.pwrite(self._fd, data, offset)

    def _fsync(self) -> None:
        """One ``fdatasync(2)`` (the reserve keeps the size still); a seam for fault-injection tests."""
        os.fdatasync(self._fd)

    def _truncate(self, length: int) -> None:
        """One ``ftruncate(2)``; a seam for fault-injection tests."""
        os.ftruncate(self._fd, length)

    def sync(self) -> None:
        """Make every committed record durable now, whatever the durability mode.

        A snapshot calls this first, so a snapshot is never ahead of the journal on disk; if the
        fsync fails the ``OSError`` propagates and no snapshot is written.
        """
        self._fsync()

    def _sync(self) -> None:
        if self.fsync:
            self._fsync()

    def close(self) -> None:
        """Commit what is buffered, cut the unused reserve off, and close (closed even if the commit fails)."""
        try:
            self.commit()
            if self._fd >= 0 and self._broken is None and self.reserved_bytes > self.good_bytes:
                self._truncate(self.good_bytes)
                self._sync()
                self.reserved_bytes = self.good_bytes
        finally:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _os_error_text(exc: OSError) -> str:
    if exc.errno is None:
        return str(exc)
    return f"[Errno {exc.errno}] {exc.strerror or os.strerror(exc.errno)}"


def iter_commands(path: str | Path) -> Iterator[Command]:
    """Every good command of a journal, in order."""
    for record in scan(path).records:
        yield record.command
