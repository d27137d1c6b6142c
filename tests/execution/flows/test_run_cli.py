"""``perpx algo run`` in a child process against a real ``perpx serve``: a bracket to its end, and Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from perpx.execution.flows.journal import NodeRecord, read_journal

from ...server.harness import MANUAL_CONFIG, ServerProcess, Trader

SYMBOL = "BTC/USDT:USDT"


def bracket(tp: str, sl: str) -> dict[str, Any]:
    exit_order = {"market": "BTCUSDT", "side": "sell", "qty": "0.01", "reduce_only": True}
    return {
        "version": 1,
        "name": "cli-bracket",
        "flow": {
            "nodes": [
                {
                    "id": "entry",
                    "type": "order",
                    "order": {"market": "BTCUSDT", "side": "buy", "qty": "0.01", "type": "market"},
                },
                {
                    "id": "tp",
                    "type": "order",
                    "oco": "x",
                    "trigger": {"on": "filled", "node": "entry"},
                    "order": {**exit_order, "type": "limit", "price": tp},
                },
                {
                    "id": "sl",
                    "type": "order",
                    "oco": "x",
                    "trigger": {"on": "filled", "node": "entry"},
                    "order": {**exit_order, "type": "stop_market", "stop_price": sl},
                },
            ]
        },
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    config = MANUAL_CONFIG.replace('clock = "manual"', 'clock = "wall"', 1)
    process = ServerProcess(tmp_path_factory.mktemp("flow-cli") / "data", config_text=config).start()
    try:
        yield process
    finally:
        process.stop()


def quote(server: ServerProcess, mark: str) -> None:
    answer = server.admin("POST", "/marks", {"symbol": "BTCUSDT", "markPrice": mark, "indexPrice": mark})
    assert answer.status_code == 200, answer.text


def start_run(
    server: ServerProcess, trader: Trader, tmp: Path, document: dict[str, Any]
) -> tuple[subprocess.Popen[bytes], Path]:
    path, state = tmp / "doc.json", tmp / "state"
    path.write_text(json.dumps(document))
    args = [
        sys.executable,
        "-m",
        "perpx",
        "algo",
        "run",
        str(path),
        "--venue",
        server.base,
        "--key",
        trader.api_key,
        "--secret",
        trader.secret,
        "--state",
        str(state),
        "--period-s",
        "0.2",
    ]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE), state / "flow.jsonl"


def wait_for(
    journal: Path, node: str, status: str, process: subprocess.Popen[bytes], timeout_s: float = 30
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if journal.exists() and any(
            isinstance(r, NodeRecord) and (r.node, r.status) == (node, status) for r in read_journal(journal)
        ):
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.1)
    raise AssertionError(f"{node} never became {status}")


def final_statuses(journal: Path) -> dict[str, str]:
    return {r.node: r.status for r in read_journal(journal) if isinstance(r, NodeRecord)}


def test_run_takes_a_bracket_to_its_stop_loss(server: ServerProcess, tmp_path: Path) -> None:
    # Arrange: a maker quotes both sides; the desk's flow buys, then rests a take-profit
    quote(server, "60000")
    maker = server.ccxt(server.trader("maker-1", deposit="10000000"))
    maker.create_order(SYMBOL, "limit", "sell", 0.05, 60000)
    maker.create_order(SYMBOL, "limit", "buy", 0.05, 58800)
    desk = server.trader("desk-1", deposit="1000000")
    process, journal = start_run(server, desk, tmp_path, bracket("61000", "59000"))
    wait_for(journal, "tp", "working", process)

    # Act: the mark falls through the stop
    quote(server, "58900")
    out, err = process.communicate(timeout=60)

    # Assert
    assert process.returncode == 0, err.decode()
    assert b"flow cli-bracket finished" in out
    assert final_statuses(journal) == {"entry": "filled", "tp": "canceled", "sl": "filled"}
    client = server.ccxt(desk)
    assert client.fetch_open_orders(SYMBOL) == []
    assert [p for p in client.fetch_positions([SYMBOL]) if float(p["contracts"] or 0)] == []


def test_ctrl_c_cancels_the_working_orders_and_exits_130(server: ServerProcess, tmp_path: Path) -> None:
    # Arrange
    quote(server, "60000")
    maker = server.ccxt(server.trader("maker-2", deposit="10000000"))
    maker.create_order(SYMBOL, "limit", "sell", 0.05, 60000)
    desk = server.trader("desk-2", deposit="1000000")
    process, journal = start_run(server, desk, tmp_path, bracket("61000", "55000"))
    wait_for(journal, "tp", "working", process)

    # Act
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)

    # Assert
    assert process.returncode == 130, err.decode()
    assert b"interrupted: canceled 1 working order(s)" in err
    assert final_statuses(journal) == {"entry": "filled", "tp": "canceled", "sl": "canceled"}
    assert server.ccxt(desk).fetch_open_orders(SYMBOL) == []


def test_run_refuses_an_invalid_document(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"version": 1, "name": "x", "flow": {"nodes": []}}))
    result = subprocess.run(
        [sys.executable, "-m", "perpx", "algo", "run", str(path), "--venue", "http://127.0.0.1:9"],
        capture_output=True,
        check=False,
    )
    assert result.returncode == 1
    assert b"flow.nodes: must have at least 1 item(s)" in result.stderr
