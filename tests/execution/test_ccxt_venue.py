"""The same runner through ccxt ``binanceusdm`` against a real ``perpx serve``; kill -9 and resume."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from perpx.execution.ccxt_venue import CcxtVenue
from perpx.execution.childlog import ChildLog, LostRecord, PlaceRecord, read_log
from perpx.execution.live import run_live
from perpx.execution.model import decode_parent
from perpx.execution.runner import ParentRunner

from ..server.harness import MANUAL_CONFIG, REPO, ServerProcess
from .live_child import perpx_ccxt

SYMBOL = "BTC/USDT:USDT"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # a wall clock, so venue time (trade and fill times) moves with the runner's time
    config = MANUAL_CONFIG.replace('clock = "manual"', 'clock = "wall"', 1)
    process = ServerProcess(tmp_path_factory.mktemp("algo-ccxt") / "data", config_text=config).start()
    try:
        answer = process.admin(
            "POST", "/marks", {"symbol": "BTCUSDT", "markPrice": "60000", "indexPrice": "60000"}
        )
        assert answer.status_code == 200, answer.text
        yield process
    finally:
        process.stop()


def _client(server: ServerProcess, name: str) -> tuple[Any, Any]:
    trader = server.trader(name, deposit="10000000")
    exchange = perpx_ccxt(server.base, trader.api_key, trader.secret)
    exchange.load_markets()
    return exchange, trader


def _quote(maker: Any) -> None:
    maker.cancel_all_orders(SYMBOL)
    for i in range(1, 6):
        maker.create_order(SYMBOL, "limit", "sell", 0.5, 60000 + i)
        maker.create_order(SYMBOL, "limit", "buy", 0.5, 60000 - i)


def test_twap_through_ccxt_fills_with_tagged_children(server: ServerProcess, tmp_path: Path) -> None:
    maker, _ = _client(server, "mm-1")
    algo, _ = _client(server, "algo-1")
    _quote(maker)
    parent = decode_parent(
        {
            "algo": "twap",
            "market": "BTCUSDT",
            "side": "buy",
            "client_algo_id": "ccxt-twap-1",
            "qty": "0.006",
            "duration_s": 3,
            "slice_interval_s": 1,
            "passiveness_bps": 0,
        }
    )
    runner = ParentRunner.start(CcxtVenue(algo), parent, ChildLog(tmp_path / "log.jsonl"), period_s=1)
    try:
        run_live(runner)
    finally:
        runner.log.close()

    trades = algo.fetch_my_trades(SYMBOL)
    orders = algo.fetch_orders(SYMBOL)
    assert runner.done
    assert sum(t["amount"] for t in trades) == pytest.approx(0.006)
    assert orders and all(o["clientOrderId"].startswith("ccxt-twap-1-c") for o in orders)


@pytest.mark.parametrize(
    ("algo", "fields"),
    [
        ("vwap", {"duration_s": 3, "slice_interval_s": 1, "passiveness_bps": 0}),
        ("is", {"duration_s": 3, "slice_interval_s": 1, "passiveness_bps": 0, "urgency": "high"}),
        ("pov", {"pov_target_bps": 1000, "would_price": "60005", "duration_s": 30}),
        ("scaled", {"ladder_levels": 3, "ladder_start_price": "60003", "ladder_end_price": "60001"}),
        ("iceberg", {"display_qty": "0.002", "limit_price": "60005"}),
    ],
)
def test_every_algorithm_works_a_parent_on_a_perpx_server_through_ccxt(
    server: ServerProcess, tmp_path: Path, algo: str, fields: dict[str, Any]
) -> None:
    maker, _ = _client(server, f"mm-{algo}")
    trader, _ = _client(server, f"algo-{algo}")
    _quote(maker)
    parent = decode_parent(
        {
            "market": "BTCUSDT",
            "side": "buy",
            "client_algo_id": f"ccxt-{algo}",
            "qty": "0.006",
            "algo": algo,
            **fields,
        }
    )
    runner = ParentRunner.start(CcxtVenue(trader), parent, ChildLog(tmp_path / "log.jsonl"), period_s=1)
    try:
        run_live(runner)
    finally:
        runner.log.close()

    trades = trader.fetch_my_trades(SYMBOL)
    assert runner.done
    assert sum(t["amount"] for t in trades) == pytest.approx(0.006)
    assert all(o["clientOrderId"].startswith(f"ccxt-{algo}-c") for o in trader.fetch_orders(SYMBOL))


def test_kill_9_mid_parent_then_restart_sends_no_child_twice(server: ServerProcess, tmp_path: Path) -> None:
    maker, _ = _client(server, "mm-2")
    algo, trader = _client(server, "algo-2")
    _quote(maker)
    log = tmp_path / "kill.jsonl"
    parent = json.dumps(
        {
            "algo": "twap",
            "market": "BTCUSDT",
            "side": "buy",
            "client_algo_id": "kill9-1",
            "qty": "0.012",
            "duration_s": 12,
            "slice_interval_s": 1,
            "passiveness_bps": 0,
        }
    )
    args = [
        sys.executable,
        str(Path(__file__).with_name("live_child.py")),
        server.base,
        trader.api_key,
        trader.secret,
        str(log),
        parent,
    ]
    env = {"PYTHONPATH": str(REPO / "src")}
    first = subprocess.Popen(args, cwd=REPO, env={**_env(), **env}, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not log.exists() or log.read_bytes().count(b'"place"') < 3):
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    placed_before = log.read_bytes().count(b'"place"')

    second = subprocess.run(
        args, cwd=REPO, env={**_env(), **env}, capture_output=True, timeout=60, check=False
    )

    assert second.returncode == 0, second.stderr.decode()[-2000:]
    records = read_log(log)
    lost = {r.client_order_id for r in records if isinstance(r, LostRecord)}
    logged = [r.client_order_id for r in records if isinstance(r, PlaceRecord)]
    on_venue = Counter(o["clientOrderId"] for o in algo.fetch_orders(SYMBOL))
    assert placed_before >= 3
    assert len(logged) == len(set(logged))
    assert max(on_venue.values()) == 1
    assert set(on_venue) == set(logged) - lost
    position = sum(t["amount"] for t in algo.fetch_my_trades(SYMBOL))
    assert position == pytest.approx(0.012)


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)
