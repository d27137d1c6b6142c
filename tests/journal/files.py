"""Test helpers for data directories: a fingerprint of every file, and record offsets of a journal."""

from __future__ import annotations

import hashlib
from pathlib import Path

from perpx.journal.journal import MAGIC, scan


def fingerprint(directory: Path) -> dict[str, str]:
    """SHA-256 of every file under ``directory`` by relative path, plus every sub-directory.

    Equal fingerprints before and after an operation mean it created, deleted and changed nothing.
    """
    found: dict[str, str] = {}
    for path in sorted(directory.rglob("*")):
        key = str(path.relative_to(directory))
        found[key] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "<dir>"
    return found


def record_offsets(journal: Path) -> list[tuple[int, int]]:
    """``(start, end)`` byte range of every good record, in order (record ``i + 1`` at index ``i``)."""
    from perpx.journal.journal import encode_record

    offsets: list[tuple[int, int]] = []
    start = len(MAGIC)
    for record in scan(journal).records:
        end = start + len(encode_record(record.seq, record.command))
        offsets.append((start, end))
        start = end
    return offsets


def flip(path: Path, offset: int, mask: int = 0x40) -> None:
    """XOR one byte of ``path`` at ``offset`` with ``mask``."""
    data = bytearray(path.read_bytes())
    data[offset] ^= mask
    path.write_bytes(bytes(data))
