"""Rule: a flow the venue runs survives kill -9 between a node's trigger and its child's fill, and no
node fires twice.

A real ``perpx serve`` (manual clock) takes a flow sent through an unmodified ccxt's ``request``: a
mark cross on ETHUSDT sends a BTCUSDT entry, whose fill sends an exit (if-then across markets, then
OTO). The process is killed with SIGKILL once the entry rests, and the flow journal loses its last
line (the entry's ``working``: the worst moment, the order journaled by the engine but not by the
flow). After the restart the entry is adopted from the venue by its derived id, never sent again; its
fill sends the exit exactly once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from perpx.execution.flows.journal import NodeRecord, read_journal

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
    journal = server.data_dir / "flows" / f"{flow_id}.flowlog"
    lines = journal.read_bytes().splitlines(keepends=True)
    last = read_journal(journal)[-1]
    assert isinstance(last, NodeRecord) and (last.node, last.status) == ("entry", "working")
    journal.write_bytes(b"".join(lines[:-1]))  # the engine has the order; the flow journal never heard

    server.start()
    resumed = _until(server, trader, flow_id, lambda f: _statuses(f)["entry"] == "working")
    assert resumed["status"] == "WORKING" and "adopted kill-1-c1" in resumed["nodes"][1]["reason"]
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
    fired = [r for r in read_journal(journal) if isinstance(r, NodeRecord) and r.node == "exit"]
    assert [r.status for r in fired] == ["working"]
