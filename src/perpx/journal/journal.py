"""The append-only command journal.

File format
-----------
A journal file starts with the 8-byte magic ``b"PERPXJ1\\n"`` and then holds
records back to back::

    +----------------+----------------+-------------------------------+
    | length: u32 LE | crc32:  u32 LE | payload: msgpack [seq, cmd]   |
    +----------------+----------------+-------------------------------+

``crc32`` covers the payload. ``seq`` starts at 1 and rises by exactly one
per record. A record is *good* when its header is complete, its payload is
complete, its checksum matches, it decodes, and its ``seq`` is the next one.
Reading stops at the first record that is not good: that is the torn or
corrupt tail of a crash, reported by :class:`JournalScan` and cut off by
:func:`truncate_to_good`. Nothing after it is ever applied.

Durability
----------
``"batch"`` (default): :meth:`JournalWriter.commit` writes the buffered
records and ``fsync``\\ s before the caller releases any result of them.
``"none"``: records are written to the OS at commit but not fsynced, so a
killed process loses nothing and a power cut may lose the tail.
"""

from __future__ import annotations

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
MAX_RECORD_BYTES = 16 * 1024 * 1024

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(tuple[int, AnyCommand])


@dataclass(frozen=True, slots=True)
class JournalRecord:
    """One journaled command and its sequence number."""

    seq: int
    command: Command


@dataclass(frozen=True, slots=True)
class JournalScan:
    """What a read of the journal found: the good records and where (and why) it stopped."""

    records: tuple[JournalRecord, ...]
    good_bytes: int
    file_bytes: int
    problem: str | None

    @property
    def torn(self) -> bool:
        return self.good_bytes < self.file_bytes


def encode_record(seq: int, command: Command) -> bytes:
    """Length-prefixed, checksummed bytes of one record.

    Raises
    ------
    ValueError
        If a field of ``command`` is outside the signed/unsigned 64-bit range
        that a record can hold (nothing is written).
    """
    try:
        payload = _encoder.encode((seq, command))
    except OverflowError as exc:
        raise ValueError(
            f"{type(command).__name__} has a number outside the 64-bit range a journal record holds"
        ) from exc
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def scan(path: str | Path, after_seq: int = 0) -> JournalScan:
    """Read every good record of the journal at ``path``; keep those with ``seq > after_seq``.

    A missing file is an empty journal. Reading stops at the first bad record.
    """
    path = Path(path)
    if not path.exists():
        return JournalScan((), 0, 0, None)
    data = path.read_bytes()
    if not data:
        return JournalScan((), 0, 0, None)
    if not data.startswith(MAGIC):
        if MAGIC.startswith(data):
            return JournalScan((), 0, len(data), "torn file header")
        raise ValueError(f"{path} is not a perpx journal (bad magic)")
    records: list[JournalRecord] = []
    offset = len(MAGIC)
    expected_seq = 1
    problem: str | None = None
    while offset < len(data):
        if offset + _HEADER.size > len(data):
            problem = f"torn record header at byte {offset}"
            break
        length, crc = _HEADER.unpack_from(data, offset)
        start = offset + _HEADER.size
        if length > MAX_RECORD_BYTES:
            problem = f"implausible record length {length} at byte {offset}"
            break
        if start + length > len(data):
            problem = f"torn record at byte {offset}: {len(data) - start} of {length} payload bytes"
            break
        payload = data[start : start + length]
        if zlib.crc32(payload) != crc:
            problem = f"checksum mismatch in record at byte {offset}"
            break
        try:
            seq, command = _decoder.decode(payload)
        except msgspec.DecodeError as exc:
            problem = f"undecodable record at byte {offset}: {exc}"
            break
        if seq != expected_seq:
            problem = f"sequence gap at byte {offset}: expected {expected_seq}, found {seq}"
            break
        if seq > after_seq:
            records.append(JournalRecord(seq, command))
        expected_seq += 1
        offset = start + length
    return JournalScan(tuple(records), offset, len(data), problem)


def last_seq(path: str | Path) -> int:
    """Sequence number of the last good record (0 for an empty journal)."""
    found = scan(path)
    return found.records[-1].seq if found.records else 0


def truncate_to_good(path: str | Path, found: JournalScan) -> None:
    """Cut a torn or corrupt tail off the journal so appends continue from the last good record."""
    if not found.torn:
        return
    with open(path, "r+b") as handle:
        handle.truncate(max(found.good_bytes, 0))
        handle.flush()
        os.fsync(handle.fileno())


class JournalWriter:
    """Appends records to one journal file; nothing is released before :meth:`commit`.

    Parameters
    ----------
    path
        The journal file; created with its magic header if new.
    next_seq
        Sequence number of the next record (last good seq + 1).
    fsync
        ``True`` for durability ``"batch"``: every commit ends with ``fsync``.
    """

    def __init__(self, path: str | Path, next_seq: int, fsync: bool = True) -> None:
        self.path = Path(path)
        self.next_seq = next_seq
        self.fsync = fsync
        self._buffer: list[bytes] = []
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._file = open(self.path, "ab")  # noqa: SIM115 - owned for the writer's lifetime
        if new:
            self._file.write(MAGIC)
            self._sync()

    def append(self, command: Command) -> int:
        """Buffer ``command`` as the next record and return its sequence number."""
        seq = self.next_seq
        self._buffer.append(encode_record(seq, command))
        self.next_seq = seq + 1
        return seq

    def append_all(self, commands: list[Command]) -> None:
        """Buffer every command, or none of them if one cannot be encoded (``ValueError``)."""
        records = [encode_record(self.next_seq + i, command) for i, command in enumerate(commands)]
        self._buffer.extend(records)
        self.next_seq += len(records)

    def commit(self) -> None:
        """Write the buffered records (and fsync in batch mode). Call before releasing results."""
        if self._buffer:
            self._file.write(b"".join(self._buffer))
            self._buffer.clear()
            self._sync()

    def _sync(self) -> None:
        self._file.flush()
        if self.fsync:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        self.commit()
        self._file.close()

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def iter_commands(path: str | Path) -> Iterator[Command]:
    """Every good command of a journal, in order."""
    for record in scan(path).records:
        yield record.command
