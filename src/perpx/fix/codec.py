"""FIX 4.4 framing: messages as ordered tag=value fields, checked on the way in, built on the way out.

A frame is ``8=FIX.4.4<SOH>9=<BodyLength><SOH>...body...10=<CheckSum><SOH>``. ``BodyLength``
counts the bytes from the field after ``9=`` up to and including the SOH before ``10=``;
``CheckSum`` is the sum of every byte before ``10=`` modulo 256, as three digits.

A frame whose ``BodyLength`` or ``CheckSum`` does not hold is *garbled*: the FIX session layer
drops it without answering and without consuming its sequence number (FIX 4.4 Vol. 2, "garbled
messages"). :class:`FrameReader` reports it as :class:`Garbled` and resumes at the next
``8=FIX``, so one damaged message costs only itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

SOH = b"\x01"
BEGIN_STRING = "FIX.4.4"
MAX_BODY_BYTES = 64 * 1024
"""A frame announcing a longer body is garbled (no message of this dialect comes near it)."""

_BEGIN = b"8=" + BEGIN_STRING.encode() + SOH

Field = tuple[int, str]


class FixFormatError(ValueError):
    """A field list that is not a FIX message (a tag that is not a positive integer, a value with SOH)."""


@dataclass(frozen=True, slots=True)
class FixMessage:
    """One message's fields in wire order (header, body; no ``8``, ``9`` or ``10``).

    Repeating groups stay in order, so ``all(269)`` gives a ``W``'s entry types in order.
    """

    fields: tuple[Field, ...]

    @property
    def msg_type(self) -> str:
        return self.get(35) or ""

    def get(self, tag: int) -> str | None:
        """The first value of ``tag``, or ``None``."""
        for t, value in self.fields:
            if t == tag:
                return value
        return None

    def all(self, tag: int) -> list[str]:
        """Every value of ``tag``, in order (repeating groups)."""
        return [value for t, value in self.fields if t == tag]

    def has(self, tag: int) -> bool:
        return any(t == tag for t, _value in self.fields)

    def text(self) -> str:
        """The fields as ``35=D|11=...``: for logs and error messages."""
        return "|".join(f"{t}={v}" for t, v in self.fields)


@dataclass(frozen=True, slots=True)
class Garbled:
    """Bytes that looked like a frame but were not one; dropped, with why."""

    reason: str
    raw: bytes


def checksum(data: bytes) -> str:
    """``CheckSum(10)`` of the bytes before ``10=``: their sum modulo 256, three digits."""
    return f"{sum(data) % 256:03d}"


def encode(fields: Sequence[Field]) -> bytes:
    """One frame holding ``fields`` (header and body, ``35`` first), with ``8``, ``9`` and ``10`` added.

    Raises
    ------
    FixFormatError
        If a tag is not a positive integer or a value is empty or holds SOH.
    """
    parts = []
    for tag, value in fields:
        if tag <= 0:
            raise FixFormatError(f"tag {tag} is not a positive integer")
        if not value or "\x01" in value:
            raise FixFormatError(f"tag {tag} has an empty value or a value with SOH")
        parts.append(f"{tag}={value}".encode())
    body = SOH.join(parts) + SOH
    head = _BEGIN + b"9=" + str(len(body)).encode() + SOH
    frame = head + body
    return frame + b"10=" + checksum(frame).encode() + SOH


def parse_fields(body: bytes) -> tuple[Field, ...] | str:
    """The fields of a frame's body, or why they are not fields."""
    fields: list[Field] = []
    for part in body.split(SOH)[:-1]:
        tag, eq, value = part.partition(b"=")
        if not eq or not tag.isdigit() or not value:
            return f"malformed field {part[:32]!r}"
        try:
            fields.append((int(tag), value.decode("utf-8")))
        except UnicodeDecodeError:
            return f"tag {int(tag)} is not UTF-8"
    return tuple(fields)


def _ends_with_checksum(buffer: bytearray, end: int) -> bool:
    """``buffer[:end]`` ends with a complete ``10=nnn<SOH>`` (a frame ended there, whatever its length said)."""
    tail = buffer[end - 7 : end]
    return len(tail) == 7 and tail.startswith(b"10=") and tail[3:6].isdigit() and tail.endswith(SOH)


class FrameReader:
    """Cuts a byte stream into :class:`FixMessage` frames and :class:`Garbled` ones.

    Feed it whatever the socket gave; it keeps an incomplete frame until the rest arrives.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[FixMessage | Garbled]:
        self._buffer += data
        while True:
            item = self._next()
            if item is None:
                return
            yield item

    def _next(self) -> FixMessage | Garbled | None:
        buffer = self._buffer
        start = buffer.find(_BEGIN)
        if start < 0:
            keep = len(_BEGIN) - 1  # a frame may start in the last bytes
            if len(buffer) > keep:
                junk = bytes(buffer[:-keep])
                del buffer[:-keep]
                if junk.strip(b"\r\n\x00 "):
                    return Garbled("bytes that do not start with 8=FIX.4.4", junk)
            return None
        if start > 0:
            junk = bytes(buffer[:start])
            del buffer[:start]
            if junk.strip(b"\r\n\x00 "):
                return Garbled("bytes before 8=FIX.4.4", junk)
        length_at = len(_BEGIN)
        length_end = buffer.find(SOH, length_at)
        if length_end < 0:
            return self._incomplete_or_garbled(length_at + 10, "no BodyLength(9)")
        if not buffer.startswith(b"9=", length_at) or not buffer[length_at + 2 : length_end].isdigit():
            return self._drop_frame("the second field is not BodyLength(9)")
        body_length = int(buffer[length_at + 2 : length_end])
        if body_length == 0 or body_length > MAX_BODY_BYTES:
            return self._drop_frame(f"BodyLength(9) {body_length} is out of range")
        body_start = length_end + 1
        trailer = body_start + body_length
        if len(buffer) < trailer + 7:
            following = buffer.find(_BEGIN, body_start)
            if following > 0 and _ends_with_checksum(buffer, following):
                return self._drop_frame(f"BodyLength(9) {body_length} runs past the end of its frame")
            return None
        if buffer[trailer : trailer + 3] != b"10=" or buffer[trailer + 6 : trailer + 7] != SOH:
            return self._drop_frame(f"BodyLength(9) {body_length} does not end where CheckSum(10) starts")
        declared = bytes(buffer[trailer + 3 : trailer + 6])
        frame = bytes(buffer[: trailer + 7])
        computed = checksum(frame[:trailer])
        del buffer[: trailer + 7]
        if declared.decode("latin-1") != computed:
            return Garbled(f"CheckSum(10) {declared.decode('latin-1')} is not {computed}", frame)
        fields = parse_fields(frame[body_start:trailer])
        if isinstance(fields, str):
            return Garbled(fields, frame)
        if not fields or fields[0][0] != 35:
            return Garbled("the third field is not MsgType(35)", frame)
        return FixMessage(fields)

    def _incomplete_or_garbled(self, limit: int, reason: str) -> Garbled | None:
        if len(self._buffer) < limit:
            return None
        return self._drop_frame(reason)

    def _drop_frame(self, reason: str) -> Garbled:
        """Drop up to the next ``8=FIX`` after this frame's start (resynchronise)."""
        buffer = self._buffer
        following = buffer.find(_BEGIN, 1)
        cut = len(buffer) if following < 0 else following
        raw = bytes(buffer[:cut])
        del buffer[:cut]
        return Garbled(reason, raw)
