"""FIX framing: BodyLength and CheckSum hold on the way out and are checked on the way in."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perpx.fix.codec import FixFormatError, FixMessage, FrameReader, Garbled, checksum, encode

ORDER = [
    (35, "D"),
    (49, "CLIENT"),
    (56, "PERPX"),
    (34, "2"),
    (52, "20261203-06:00:00.000"),
    (11, "c-1"),
    (38, "0.5"),
]


def test_encoded_frame_has_the_body_length_and_checksum_fix_defines() -> None:
    frame = encode(ORDER)
    head, _, rest = frame.partition(b"\x019=")
    length_text, _, body_and_trailer = rest.partition(b"\x01")
    body, _, trailer = body_and_trailer.rpartition(b"10=")
    assert head == b"8=FIX.4.4"
    assert int(length_text) == len(body)
    assert trailer == checksum(frame[: frame.rindex(b"10=")]).encode() + b"\x01"


def test_reader_returns_the_fields_of_a_frame_split_across_reads() -> None:
    frame = encode(ORDER)
    reader = FrameReader()
    assert list(reader.feed(frame[:17])) == []
    [message] = list(reader.feed(frame[17:]))
    assert message == FixMessage(tuple(ORDER))
    assert message.msg_type == "D" and message.get(11) == "c-1" and message.get(999) is None


def test_wrong_checksum_is_garbled_and_the_next_frame_still_reads() -> None:
    good = encode(ORDER)
    bad = good[:-4] + (b"000" if not good.endswith(b"000\x01") else b"001") + b"\x01"
    items = list(FrameReader().feed(bad + good))
    assert isinstance(items[0], Garbled) and "CheckSum(10)" in items[0].reason
    assert items[1] == FixMessage(tuple(ORDER))


def test_wrong_body_length_is_garbled_and_the_reader_resynchronises() -> None:
    good = encode(ORDER)
    bad = good.replace(b"9=", b"9=1", 1)
    items = list(FrameReader().feed(bad + good))
    assert isinstance(items[0], Garbled) and "BodyLength(9)" in items[0].reason
    assert items[-1] == FixMessage(tuple(ORDER))


def test_junk_between_frames_is_reported_and_skipped() -> None:
    good = encode(ORDER)
    items = list(FrameReader().feed(b"hello" + good))
    assert isinstance(items[0], Garbled) and items[1] == FixMessage(tuple(ORDER))


def test_a_value_with_soh_cannot_be_encoded() -> None:
    with pytest.raises(FixFormatError, match="SOH"):
        encode([(35, "D"), (58, "a\x01b")])


values = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=20)


@given(st.lists(st.tuples(st.integers(1, 9999), values), min_size=1, max_size=12), st.integers(1, 40))
def test_any_encoded_message_reads_back_whole_however_the_bytes_arrive(
    body: list[tuple[int, str]], chunk: int
) -> None:
    fields = [(35, "D"), *body]
    frame = encode(fields)
    reader = FrameReader()
    items = [item for i in range(0, len(frame), chunk) for item in reader.feed(frame[i : i + chunk])]
    assert items == [FixMessage(tuple(fields))]
