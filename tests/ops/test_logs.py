"""``--log-format json``: one JSON object per line, with the journal seq where a line has one."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from perpx.ops.logs import JsonFormatter, configure

from ..server.harness import ServerProcess


def record(msg: str, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("perpx.test", logging.ERROR, __file__, 1, msg, None, None)
    made.__dict__.update(extra)
    return made


def test_a_line_about_a_command_carries_its_seq() -> None:
    # Act
    line = json.loads(JsonFormatter().format(record("listener failed", seq=41, seq_last=43)))

    # Assert
    assert line["msg"] == "listener failed"
    assert (line["seq"], line["seq_last"]) == (41, 43)
    assert line["level"] == "error"
    assert line["logger"] == "perpx.test"
    assert line["ts"].endswith("+00:00")


def test_an_exception_is_one_line_with_its_traceback() -> None:
    # Arrange
    try:
        raise ValueError("boom")
    except ValueError:
        failed = record("failed")
        failed.exc_info = sys.exc_info()

    # Act
    text = JsonFormatter().format(failed)

    # Assert
    assert "\n" not in text
    assert "ValueError: boom" in json.loads(text)["exc"]


def test_an_unknown_log_format_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="text, json"):
        configure("xml")


def test_serve_refuses_an_unknown_log_format_before_creating_anything(tmp_path: Path) -> None:
    # Act
    done = subprocess.run(
        [sys.executable, "-m", "perpx", "serve", "--data", str(tmp_path / "new"), "--log-format", "xml"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    # Assert
    assert done.returncode != 0
    assert "--log-format must be one of text, json" in done.stdout + done.stderr
    assert not (tmp_path / "new").exists()


def test_uvicorn_lines_and_the_access_log_are_json_too(tmp_path: Path) -> None:
    # Arrange
    server = ServerProcess(tmp_path / "data", extra_args=("--log-format", "json", "--log-level", "info"))
    try:
        server.start()
        # Act
        assert httpx.get(f"{server.base}/fapi/v1/ping", timeout=10).status_code == 200
        assert httpx.get(f"{server.base}/no/such/route", timeout=10).status_code == 404
    finally:
        server.stop()
    lines = [line for line in server.log().splitlines() if line and not line.startswith("perpx")]

    # Assert: every log line is JSON (no uvicorn text line), and the access lines carry the request
    objects = [json.loads(line) for line in lines if line.startswith("{")]
    assert [line for line in lines if not line.startswith("{")] == []
    assert any(o["logger"] == "uvicorn.error" and "Started server process" in o["msg"] for o in objects)
    access = [(o["method"], o["path"], o["status"]) for o in objects if o["logger"] == "uvicorn.access"]
    assert ("GET", "/fapi/v1/ping", 200) in access
    assert ("GET", "/no/such/route", 404) in access


def test_serve_refuses_an_unknown_log_level_with_the_choices(tmp_path: Path) -> None:
    # Act
    done = subprocess.run(
        [sys.executable, "-m", "perpx", "serve", "--data", str(tmp_path / "new"), "--log-level", "loud"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    # Assert
    assert done.returncode == 2
    assert "--log-level must be one of critical, error, warning, info, debug" in done.stdout + done.stderr
    assert not (tmp_path / "new").exists()
