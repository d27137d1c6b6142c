"""The shipped data dictionary: QuickFIX loads it and validates the gateway's messages, groups included."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from perpx.fix.codec import Field, encode
from perpx.fix.dictionary import dictionary_xml

pytest.importorskip("quickfix", reason="the QuickFIX client (pip install quickfix-ssl==1.15.1.post4)")

HEADER: list[Field] = [(35, ""), (49, "PERPX"), (56, "CLIENT1"), (34, "2"), (52, "20261203-06:00:00.000")]


def frame(msg_type: str, body: list[Field]) -> str:
    header = [(35, msg_type), *HEADER[1:]]
    return encode([*header, *body]).decode().replace("\x01", "|")


def validate(tmp_path: Path, frames: list[str]) -> list[str]:
    path = tmp_path / "FIX44-perpx.xml"
    path.write_text(dictionary_xml())
    script = Path(__file__).with_name("qf_validate.py")
    results = []
    for one in frames:  # one process each: QuickFIX aborts the process on some invalid messages
        done = subprocess.run(
            [sys.executable, str(script), str(path)],
            check=False,
            input=one + "\n",
            capture_output=True,
            text=True,
            timeout=60,
        )
        results.append(
            done.stdout.strip() if done.returncode == 0 else f"bad: QuickFIX aborted ({done.returncode})"
        )
    return results


def test_quickfix_validates_the_gateway_messages_against_the_shipped_dictionary(tmp_path: Path) -> None:
    frames = [
        frame(
            "W",
            [
                (262, "r1"),
                (55, "BTCUSDT"),
                (25044, "17"),
                (268, "2"),
                (269, "0"),
                (270, "30000.1"),
                (271, "0.5"),
                (269, "1"),
                (270, "30000.2"),
                (271, "1.5"),
            ],
        ),
        frame(
            "X",
            [
                (262, "r1"),
                (25044, "18"),
                (268, "2"),
                (279, "1"),
                (269, "0"),
                (270, "30000.1"),
                (271, "0.7"),
                (55, "BTCUSDT"),
                (279, "2"),
                (269, "1"),
                (270, "30000.2"),
                (55, "BTCUSDT"),
            ],
        ),
        frame(
            "8",
            [
                (37, "7"),
                (11, "c-1"),
                (17, "E-1"),
                (150, "F"),
                (39, "1"),
                (55, "BTCUSDT"),
                (54, "1"),
                (38, "1.0"),
                (40, "2"),
                (44, "30000.1"),
                (32, "0.4"),
                (31, "30000.1"),
                (151, "0.6"),
                (14, "0.4"),
                (6, "30000.1"),
                (12, "0.48"),
                (13, "3"),
            ],
        ),
        frame(
            "9",
            [
                (37, "NONE"),
                (11, "c-2"),
                (41, "c-1"),
                (39, "8"),
                (434, "1"),
                (102, "1"),
                (58, "Order does not exist."),
            ],
        ),
        frame("j", [(45, "3"), (372, "Z"), (380, "3"), (58, "unsupported message type")]),
        frame(
            "8",
            [
                (37, "7"),
                (17, "E-2"),
                (150, "F"),
                (39, "1"),
                (55, "BTCUSDT"),
                (54, "1"),
                (151, "0"),
                (14, "1"),
                (6, "1"),
                (9999, "x"),
            ],
        ),
    ]
    results = validate(tmp_path, frames)
    assert results[:5] == ["ok"] * 5
    assert results[5].startswith("bad")
