"""A durable append-only log of msgspec records: one JSON line each, fsynced, torn tail cut.

The child log (:mod:`perpx.execution.childlog`), the flow journal (:mod:`perpx.execution.flows.journal`)
and the server's algo registry (:mod:`perpx.server.algos.registry`) are this one log with their own
record types: it is write-ahead storage, so a record is on disk before the action it describes.

Invariants
----------
* :meth:`AppendLog.append` returns only once the record is flushed and fsynced.
* A torn last line (the process died mid-write, kill -9 included) is dropped when the log is read,
  and cut off before the next append, so the next record is never glued to it.
* Any other line that does not decode is corruption, not a crash: reading raises ``ValueError``
  naming the file and line, and nothing is appended to such a log.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any, Generic, TypeVar

import msgspec

T = TypeVar("T")


class AppendLog(Generic[T]):
    """Appends records of type ``kind`` to ``path`` durably; ``None`` keeps them in memory only."""

    def __init__(self, path: Path | None, kind: Any, *, what: str = "record") -> None:
        # ``kind`` is a record type or a tagged union of them (``A | B``), which ``type[T]`` cannot name
        self.path = path
        self._decoder: msgspec.json.Decoder[T] = msgspec.json.Decoder(kind)
        self._encoder = msgspec.json.Encoder(decimal_format="string")
        self._what = what
        self.records: list[T] = self._read(path) if path is not None and path.exists() else []
        self._file: IO[bytes] | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            cut_torn_tail(path)
            self._file = path.open("ab")

    def append(self, record: T) -> None:
        """Write ``record`` and make it durable before returning."""
        self.records.append(record)
        if self._file is not None:
            self._file.write(self._encoder.encode(record) + b"\n")
            self._file.flush()
            os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _read(self, path: Path) -> list[T]:
        return read_records(path, self._decoder, self._what)


def cut_torn_tail(path: Path) -> None:
    """Cut a last line with no newline after it (torn by a crash), durably; no-op for a sound file."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as file:
            file.truncate(data.rfind(b"\n") + 1)
            file.flush()
            os.fsync(file.fileno())


def read_records(path: Path, decoder: msgspec.json.Decoder[T], what: str = "record") -> list[T]:
    """Every whole record at ``path``, in order; a torn final line is dropped.

    Raises
    ------
    ValueError
        If a line other than the last cannot be decoded (the log was edited or corrupted).
    """
    lines = path.read_bytes().split(b"\n")
    records: list[T] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(decoder.decode(line))
        except msgspec.DecodeError as exc:
            if number == len(lines):  # no newline after it: torn by a crash mid-write
                break
            raise ValueError(f"{path}:{number}: not a {what} ({exc})") from exc
    return records
