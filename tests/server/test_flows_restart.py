"""Rule: a flow the venue runs survives kill -9 between a node's trigger and its child's fill, and no
node fires twice.

A real ``perpx serve`` (manual clock) takes a flow sent through an unmodified ccxt's ``request``: a
mark cross on ETHUSDT sends a BTCUSDT entry, whose fill sends an exit (if-then across markets, then
OTO). The process is killed with SIGKILL once the entry rests; a replay of its journal shows which
nodes fired (the engine records the flow). After the restart the entry is followed by its derived
id, never sent again; its fill sends the exit exactly once, and the restarted venue's state hash
equals a replay of its journal.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from perpx.engine.commands import ParentStatus
from perpx.engine.state import state_hash
from perpx.journal.store import read_config, recover

from .harness import ServerProcess, Trader

FLOW = "/perpx/v1/flow"
DEADLINE_S = 30.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path / "data")
    try:
        yield process
    finally:
        process.stop(timeout_s=20)


def _ok(
    server: ServerProcess, method: str, path: str, trader: Trader, params: dict[str, Any] | None = None
) -> Any:
    answer = server.signed(method, path, trader, params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _mark(server: ServerProcess, symbol: str, price: str) -> None:
    answer = server.admin("POST", "/marks", {"symbol": symbol, "markPrice": price, "indexPrice": price})
    assert answer.status_code == 200, answer.text


def _until(
    server: ServerProcess, trader: Trader, flow_id: int, holds: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        flow = _ok(server, "GET", FLOW, trader, {"flowId": flow_id})
        if holds(flow):
            return dict(flow)
        assert time.monotonic() < deadline, flow
        time.sleep(0.1)


def _statuses(flow: dict[str, Any]) -> dict[str, str]:
    return {node["id"]: node["status"] for node in flow["nodes"]}


def _client_ids(server: ServerProcess, trader: Trader) -> list[str]:
    return [
        o["clientOrderId"] for o in _ok(server, "GET", "/fapi/v1/allOrders", trader, {"symbol": "BTCUSDT"})
    ]


DOCUMENT = {
    "version": 1,
    "name": "eth-then-btc",
    "flow": {
        "nodes": [
            {
                "id": "eth-up",
                "type": "condition",
                "when": {
                    "on": "price_cross",
                    "market": "ETHUSDT",
                    "source": "mark",
                    "op": ">=",
                    "price": "2100",
                },
            },
            {
                "id": "entry",
                "type": "order",
                "trigger": {"on": "done", "node": "eth-up"},
                "order": {
                    "market": "BTCUSDT",
                    "side": "buy",
                    "qty": "0.1",
                    "type": "limit",
                    "price": "50000",
                },
            },
            {
                "id": "exit",
                "type": "order",
                "trigger": {"on": "filled", "node": "entry"},
                "order": {
                    "market": "BTCUSDT",
                    "side": "sell",
                    "qty": "0.1",
                    "type": "limit",
                    "price": "52000",
                    "reduce_only": True,
                },
            },
        ]
    },
}


def test_a_flow_killed_between_trigger_and_fill_resumes_without_firing_a_node_twice(
    server: ServerProcess,
) -> None:
    server.start()
    _mark(server, "BTCUSDT", "50000")
    _mark(server, "ETHUSDT", "2000")
    maker, trader = server.trader("maker", "1000000"), server.trader("flows")
    exchange = server.ccxt(trader)  # an unmodified ccxt: its generic signed request, pointed at the route
    exchange.urls["api"]["sapi"] = f"{server.base}/perpx/v1"
    answer = exchange.request(
        "flow", ["sapi"], "POST", {"document": json.dumps(DOCUMENT), "clientFlowId": "kill-1"}
    )
    assert answer["success"] is True and answer["clientFlowId"] == "kill-1"
    flow_id = int(answer["flowId"])
    armed = _until(server, trader, flow_id, lambda f: _statuses(f)["eth-up"] == "armed")
    assert _statuses(armed) == {"eth-up": "armed", "entry": "pending", "exit": "pending"}

    _mark(server, "ETHUSDT", "2100")
    _until(server, trader, flow_id, lambda f: _statuses(f)["entry"] == "working")
    assert _client_ids(server, trader) == ["kill-1-c1"]
    server.kill()
    engine, _ = recover(server.data_dir, read_config(server.data_dir), use_snapshots=False)
    row = engine.parents.flows[flow_id]
    assert (row.status, row.client_flow_id) == (ParentStatus.WORKING, "kill-1")
    assert [(line[1], line[2]) for line in row.nodes] == [
        ("eth-up", "armed"),
        ("eth-up", "done"),
        ("entry", "working"),
    ]  # which node fired is the engine's: a replay of the journal rebuilds it

    server.start()
    resumed = _until(server, trader, flow_id, lambda f: _statuses(f)["entry"] == "working")
    assert resumed["status"] == "WORKING" and resumed["nodes"][1]["clientOrderId"] == "kill-1-c1"
    assert _client_ids(server, trader) == ["kill-1-c1"]
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
            "quantity": "0.1",
        },
    )

    sent = _until(server, trader, flow_id, lambda f: _statuses(f)["exit"] == "working")
    assert _statuses(sent) == {"eth-up": "done", "entry": "filled", "exit": "working"}
    assert _client_ids(server, trader) == ["kill-1-c1", "kill-1-c2"]
    live = server.admin("GET", "/state")
    assert live.status_code == 200, live.text
    server.kill()
    replayed, _ = recover(server.data_dir, read_config(server.data_dir), use_snapshots=False)
    fired = [line[2] for line in replayed.parents.flows[flow_id].nodes if line[1] == "exit"]
    assert fired == ["working"]  # the exit fired once
    assert state_hash(replayed) == live.json()["stateHash"]
