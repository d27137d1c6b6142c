"""An unmodified QuickFIX initiator (quickfix-ssl) logs on to ``perpx serve --fix-port``, validates every
message against the shipped dictionary, places a limit order and gets its fill from a REST seller."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from perpx.fix.dictionary import dictionary_xml

from ..server.harness import MANUAL_CONFIG, ServerProcess, free_port

pytest.importorskip("quickfix", reason="the QuickFIX client (pip install quickfix-ssl==1.15.1.post4)")


def test_quickfix_initiator_trades_and_is_filled_by_a_rest_order(tmp_path: Path) -> None:
    # Arrange
    fix_port = free_port()
    server = ServerProcess(
        tmp_path / "data", config_text=MANUAL_CONFIG, extra_args=("--fix-port", str(fix_port))
    )
    server.start()
    try:
        marked = server.admin(
            "POST", "/marks", {"symbol": "BTCUSDT", "markPrice": "60000", "indexPrice": "60000"}
        )
        assert marked.status_code == 200, marked.text
        maker, taker = server.trader("qf-maker"), server.trader("qf-taker")
        dictionary = tmp_path / "FIX44-perpx.xml"
        dictionary.write_text(dictionary_xml())
        work = tmp_path / "qf"
        work.mkdir()
        # Act
        done = subprocess.run(
            [
                sys.executable,
                str(Path(__file__).with_name("qf_trade.py")),
                str(work),
                str(fix_port),
                maker.api_key,
                maker.secret,
                str(dictionary),
                server.base,
                taker.api_key,
                taker.secret,
            ],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
    finally:
        server.stop()
    # Assert: New, then the fill with Cum/Leaves/Avg, every message valid under the dictionary
    reports = [line.split()[1:] for line in done.stdout.splitlines() if line.startswith("REPORT")]
    assert done.returncode == 0, done.stdout + done.stderr
    assert reports[0][:2] == ["0", "0"]
    assert reports[-1] == ["F", "2", "0.004", "60000", "0.004", "0", "60000"]


@pytest.mark.parametrize("crash", [False, True], ids=["disconnect", "server-kill-9"])
def test_quickfix_initiator_recovers_a_fill_made_while_it_was_away(tmp_path: Path, crash: bool) -> None:
    # Arrange
    fix_port = free_port()
    server = ServerProcess(
        tmp_path / "data", config_text=MANUAL_CONFIG, extra_args=("--fix-port", str(fix_port))
    )
    server.start()
    try:
        marked = server.admin(
            "POST", "/marks", {"symbol": "BTCUSDT", "markPrice": "60000", "indexPrice": "60000"}
        )
        assert marked.status_code == 200, marked.text
        maker, taker = server.trader("qf-away"), server.trader("qf-seller")
        dictionary = tmp_path / "FIX44-perpx.xml"
        dictionary.write_text(dictionary_xml())
        work = tmp_path / "qf"
        work.mkdir()
        script = str(Path(__file__).with_name("qf_trade.py"))
        args = [str(work), str(fix_port), maker.api_key, maker.secret, str(dictionary), server.base]
        args += [taker.api_key, taker.secret]
        placed = subprocess.run(
            [sys.executable, script, *args, "place"], capture_output=True, text=True, timeout=60, check=False
        )
        assert placed.returncode == 0 and placed.stdout.startswith("REPORT 0 0"), (
            placed.stdout + placed.stderr
        )
        # Act: the order fills while the client is away (after a venue crash and restart, if asked)
        if crash:
            server.kill()
            server.start()
        sold = server.signed(
            "POST",
            "/fapi/v1/order",
            taker,
            {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.004"},
        )
        assert sold.status_code == 200, sold.text
        resumed = subprocess.run(
            [sys.executable, script, *args, "resume"], capture_output=True, text=True, timeout=60, check=False
        )
        lines = resumed.stdout.splitlines()
    finally:
        server.stop()
    # Assert: the fill came back as a resent report, QuickFIX validating it against the dictionary
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    filled = lines.index("REPORT F 2 0.004 60000 0.004 0 60000")
    assert lines[filled - 1] == "POSSDUP"
