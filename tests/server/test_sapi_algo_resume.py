"""Rule: a parent order the server works survives kill -9: after a restart it resumes, and no child is sent twice.

A real ``perpx serve`` (manual clock) works a TWAP, started and read through an unmodified ccxt's
implicit SAPI algo methods; the process is killed with SIGKILL mid-parent and
restarted on the same data directory. The trial also plays the worst moment of a crash: the child
log holds a child that the journal never received (the process died between logging it and sending
it) and a torn last line; the restarted service must mark that child lost, never send it, and still
execute exactly the parent's quantity.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from perpx.engine.commands import ParentStatus
from perpx.engine.state import state_hash
from perpx.engine.values import ParentId
from perpx.execution.childlog import PlaceRecord, read_log
from perpx.journal.store import read_config, recover

from .harness import MANUAL_CONFIG, ServerProcess, Trader

WALL_CONFIG = MANUAL_CONFIG.replace('clock = "manual"', 'clock = "wall"')


def _ok(
    server: ServerProcess, method: str, path: str, trader: Trader, params: dict[str, Any] | None = None
) -> Any:
    answer = server.signed(method, path, trader, params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _advance(server: ServerProcess, seconds: int, step_s: int = 15) -> None:
    for _ in range(seconds // step_s):
        answer = server.admin("POST", "/clock", {"advanceMs": step_s * 1000})
        assert answer.status_code == 200, answer.text


def _algo(server: ServerProcess, trader: Trader, algo_id: int) -> dict[str, Any]:
    for path in ("/sapi/v1/algo/futures/openOrders", "/sapi/v1/algo/futures/historicalOrders"):
        for order in _ok(server, "GET", path, trader)["orders"]:
            if order["algoId"] == algo_id:
                return dict(order)
    raise AssertionError(f"algo {algo_id} is unknown after the restart")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path / "data")
    try:
        yield process
    finally:
        process.stop(timeout_s=20)


def _start_twap(server: ServerProcess) -> tuple[Trader, int]:
    server.start()
    assert (
        server.admin(
            "POST", "/marks", {"symbol": "BTCUSDT", "markPrice": "50000", "indexPrice": "50000"}
        ).status_code
        == 200
    )
    maker, taker = server.trader("maker", "1000000"), server.trader("taker")
    _ok(
        server,
        "POST",
        "/fapi/v1/order",
        maker,
        {
            "symbol": "BTCUSDT",
            "side": "SELL",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "price": "50000",
            "quantity": "1",
        },
    )
    exchange = server.ccxt(taker)  # an unmodified ccxt: its implicit SAPI algo methods, pointed here
    exchange.urls["api"]["sapi"] = f"{server.base}/sapi/v1"
    answer = exchange.sapi_post_algo_futures_newordertwap(
        {"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.1", "duration": 300, "clientAlgoId": "resume-1"}
    )
    assert answer["success"] is True and answer["clientAlgoId"] == "resume-1"
    _advance(server, 75)  # two of five slices have gone
    assert _algo(server, taker, answer["algoId"])["executedQty"] == "0.04"
    return taker, answer["algoId"]


def _client_ids(server: ServerProcess, taker: Trader) -> list[str]:
    return [
        o["clientOrderId"] for o in _ok(server, "GET", "/fapi/v1/allOrders", taker, {"symbol": "BTCUSDT"})
    ]


def test_a_twap_resumes_after_kill_9_and_no_child_goes_twice(server: ServerProcess) -> None:
    taker, algo_id = _start_twap(server)
    server.kill()
    engine, _ = recover(server.data_dir, read_config(server.data_dir), use_snapshots=False)
    row = engine.parents.rows[ParentId(algo_id)]
    assert (row.status, row.executed_lots, row.client_algo_id) == (ParentStatus.WORKING, 40, "resume-1")
    log_path = server.data_dir / "algos" / f"{algo_id}.childlog"
    sent = [r for r in read_log(log_path) if isinstance(r, PlaceRecord)]
    assert [r.client_order_id for r in sent] == ["resume-1-c0", "resume-1-c1"]
    ghost = PlaceRecord(
        index=len(sent),
        client_order_id=f"resume-1-c{len(sent)}",
        ts_ns=sent[-1].ts_ns + 1,
        qty_lots=20,
        price_ticks=None,
        tif="IOC",
        reason="written ahead, then the process died",
    )
    with log_path.open("ab") as file:  # a whole line, then a torn one: both crash shapes at once
        file.write(msgspec.json.encode(ghost) + b"\n" + b'{"type":"place","ind')

    server.start()
    resumed = _algo(server, taker, algo_id)
    assert resumed["algoStatus"] == "WORKING" and resumed["executedQty"] == "0.04"
    _advance(server, 300)

    done = _algo(server, taker, algo_id)
    assert done["algoStatus"] == "FINISHED" and done["executedQty"] == "0.1"
    ids = _client_ids(server, taker)
    assert ghost.client_order_id not in ids  # retired: the journal never had it, and it is never sent
    assert ids[:2] == ["resume-1-c0", "resume-1-c1"] and len(ids) == len(set(ids))
    exchange = server.ccxt(taker)
    exchange.urls["api"]["sapi"] = f"{server.base}/sapi/v1"
    history = exchange.sapi_get_algo_futures_historicalorders({"symbol": "BTCUSDT"})
    assert [(o["algoId"], o["algoStatus"]) for o in history["orders"]] == [(algo_id, "FINISHED")]
    subs = exchange.sapi_get_algo_futures_suborders({"algoId": algo_id})
    assert [s["clientOrderId"] for s in subs["subOrders"]] == ids
    live = server.admin("GET", "/state")
    assert live.status_code == 200, live.text
    server.kill()
    replayed, _ = recover(server.data_dir, read_config(server.data_dir), use_snapshots=False)
    row = replayed.parents.rows[ParentId(algo_id)]
    assert (row.status, row.executed_lots, row.qty_lots) == (ParentStatus.FINISHED, 100, 100)
    assert state_hash(replayed) == live.json()["stateHash"]  # a replay in this process: the same venue


def _wait_for(
    server: ServerProcess, trader: Trader, algo_id: int, done: Any, timeout_s: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    algo = _algo(server, trader, algo_id)
    while not done(algo):
        assert time.monotonic() < deadline, f"algo {algo_id} did not get there in {timeout_s} s: {algo}"
        time.sleep(0.25)
        algo = _algo(server, trader, algo_id)
    return algo


@pytest.mark.stress
def test_on_the_wall_clock_a_twap_killed_mid_way_resumes_without_duplicate_children(tmp_path: Path) -> None:
    """Opt-in (``pytest -m stress``, about a minute): the window keeps running while the server is dead."""
    server = ServerProcess(tmp_path / "data", WALL_CONFIG)
    try:
        server.start()
        marked = server.admin(
            "POST", "/marks", {"symbol": "BTCUSDT", "markPrice": "50000", "indexPrice": "50000"}
        )
        assert marked.status_code == 200, marked.text
        maker, taker = server.trader("maker", "1000000"), server.trader("taker")
        _ok(
            server,
            "POST",
            "/fapi/v1/order",
            maker,
            {
                "symbol": "BTCUSDT",
                "side": "SELL",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "price": "50000",
                "quantity": "1",
            },
        )
        parent = {
            "algo": "twap",
            "market": "BTCUSDT",
            "side": "buy",
            "client_algo_id": "wall-kill",
            "qty": "0.1",
            "duration_s": 20,
            "slice_interval_s": 2,
            "passiveness_bps": 0,
            "end_behavior": "complete_aggressive",
        }
        algo_id = _ok(server, "POST", "/perpx/v1/algo", taker, {"parent": json.dumps(parent)})["algoId"]
        before = _wait_for(
            server, taker, algo_id, lambda a: Decimal(a["executedQty"]) >= Decimal("0.02"), timeout_s=30
        )
        assert before["algoStatus"] == "WORKING", before
        server.kill()

        server.start()
        done = _wait_for(server, taker, algo_id, lambda a: a["algoStatus"] != "WORKING", timeout_s=90)
        ids = _client_ids(server, taker)
        children = _ok(server, "GET", "/fapi/v1/allOrders", taker, {"symbol": "BTCUSDT"})
    finally:
        server.stop(timeout_s=20)

    assert (done["algoStatus"], done["executedQty"]) == ("FINISHED", "0.1"), done
    assert len(ids) == len(set(ids)) and all(i.startswith("wall-kill-c") for i in ids)
    assert sum(Decimal(c["executedQty"]) for c in children) == Decimal("0.1")  # exactly the parent's quantity
    replayed, _ = recover(server.data_dir, read_config(server.data_dir), use_snapshots=False)
    row = replayed.parents.rows[ParentId(algo_id)]
    assert (row.status, row.executed_lots) == (ParentStatus.FINISHED, 100)
