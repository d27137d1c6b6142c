"""Flows run by the venue (``/perpx/v1/flow``): OCO, OTO, bracket and if-then across markets, on a
manual-clock in-process venue, each through signed raw requests."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .harness import Trader
from .inprocess import InProcessVenue, in_process_venue

FLOW = "/perpx/v1/flow"
DEADLINE_S = 20.0


@pytest.fixture
def venue(tmp_path: Path) -> Iterator[InProcessVenue]:
    with in_process_venue(tmp_path / "data") as venue:
        venue.mark("BTCUSDT", "50000")
        venue.mark("ETHUSDT", "2000")
        yield venue


def _order(**fields: Any) -> dict[str, Any]:
    return {"market": "BTCUSDT", "qty": "0.1", "type": "limit", **fields}


def _document(nodes: list[dict[str, Any]], parents: list[dict[str, Any]] | None = None) -> str:
    return json.dumps({"version": 1, "name": "test-flow", "parents": parents or [], "flow": {"nodes": nodes}})


def _start(venue: InProcessVenue, trader: Trader, document: str, client_flow_id: str) -> int:
    answer = venue.ok("POST", FLOW, trader, {"document": document, "clientFlowId": client_flow_id})
    assert answer["success"] is True and answer["clientFlowId"] == client_flow_id
    return int(answer["flowId"])


def _flow(venue: InProcessVenue, trader: Trader, flow_id: int) -> dict[str, Any]:
    return dict(venue.ok("GET", FLOW, trader, {"flowId": flow_id}))


def _until(
    venue: InProcessVenue, trader: Trader, flow_id: int, holds: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The flow once ``holds`` is true of it; each read is a pipeline pass, so the flow's driver runs."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        flow = _flow(venue, trader, flow_id)
        if holds(flow):
            return flow
        assert time.monotonic() < deadline, flow
        time.sleep(0.02)


def _nodes(flow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {node["id"]: node for node in flow["nodes"]}


def _statuses(flow: dict[str, Any]) -> dict[str, str]:
    return {node["id"]: node["status"] for node in flow["nodes"]}


def _limit(venue: InProcessVenue, trader: Trader, side: str, price: str, qty: str = "0.1") -> None:
    venue.ok(
        "POST",
        "/fapi/v1/order",
        trader,
        {
            "symbol": "BTCUSDT",
            "side": side,
            "type": "LIMIT",
            "timeInForce": "GTC",
            "price": price,
            "quantity": qty,
        },
    )


def _orders(venue: InProcessVenue, trader: Trader) -> dict[str, str]:
    history = venue.ok("GET", "/fapi/v1/allOrders", trader, {"symbol": "BTCUSDT"})
    return {o["clientOrderId"]: o["status"] for o in history}


def test_oco_first_fill_cancels_the_other_leg(venue: InProcessVenue) -> None:
    trader, other = venue.trader("flows"), venue.trader("other", "1000000")
    document = _document(
        [
            {"id": "sell-high", "type": "order", "oco": "g", "order": _order(side="sell", price="51000")},
            {"id": "buy-low", "type": "order", "oco": "g", "order": _order(side="buy", price="49000")},
        ]
    )
    flow_id = _start(venue, trader, document, "oco-1")
    working = _until(venue, trader, flow_id, lambda f: set(_statuses(f).values()) == {"working"})
    assert {n["clientOrderId"] for n in working["nodes"]} == {"oco-1-c0", "oco-1-c1"}

    _limit(venue, other, "BUY", "51000")

    done = _until(venue, trader, flow_id, lambda f: f["status"] == "FINISHED")
    assert _statuses(done) == {"sell-high": "filled", "buy-low": "canceled"}
    assert "OCO: sell-high filled first" in _nodes(done)["buy-low"]["reason"]
    assert _orders(venue, trader) == {"oco-1-c0": "FILLED", "oco-1-c1": "CANCELED"}


def test_oto_fill_of_the_first_order_sends_the_second(venue: InProcessVenue) -> None:
    trader, other = venue.trader("flows"), venue.trader("other", "1000000")
    document = _document(
        [
            {"id": "entry", "type": "order", "order": _order(side="buy", price="50000")},
            {
                "id": "exit",
                "type": "order",
                "trigger": {"on": "filled", "node": "entry"},
                "order": _order(side="sell", price="52000", reduce_only=True),
            },
        ]
    )
    flow_id = _start(venue, trader, document, "oto-1")
    waiting = _until(venue, trader, flow_id, lambda f: _statuses(f)["entry"] == "working")
    assert _statuses(waiting)["exit"] == "pending" and _orders(venue, trader) == {"oto-1-c0": "NEW"}

    _limit(venue, other, "SELL", "50000")

    sent = _until(venue, trader, flow_id, lambda f: _statuses(f)["exit"] == "working")
    assert _statuses(sent)["entry"] == "filled" and sent["status"] == "WORKING"
    assert _orders(venue, trader) == {"oto-1-c0": "FILLED", "oto-1-c1": "NEW"}


def test_bracket_entry_then_take_profit_cancels_the_stop_loss(venue: InProcessVenue) -> None:
    trader, other = venue.trader("flows"), venue.trader("other", "1000000")
    document = _document(
        [
            {"id": "entry", "type": "order", "order": _order(side="buy", price="50000")},
            {
                "id": "take-profit",
                "type": "order",
                "oco": "exit",
                "trigger": {"on": "filled", "node": "entry"},
                "order": _order(side="sell", price="51000", reduce_only=True),
            },
            {
                "id": "stop-loss",
                "type": "order",
                "oco": "exit",
                "trigger": {"on": "filled", "node": "entry"},
                "order": {
                    "market": "BTCUSDT",
                    "side": "sell",
                    "qty": "0.1",
                    "type": "stop_market",
                    "stop_price": "49000",
                    "reduce_only": True,
                },
            },
        ]
    )
    flow_id = _start(venue, trader, document, "bracket-1")
    _until(venue, trader, flow_id, lambda f: _statuses(f)["entry"] == "working")

    _limit(venue, other, "SELL", "50000")
    placed = _until(venue, trader, flow_id, lambda f: _statuses(f)["take-profit"] == "working")
    assert _statuses(placed) == {"entry": "filled", "take-profit": "working", "stop-loss": "armed"}

    _limit(venue, other, "BUY", "51000")
    done = _until(venue, trader, flow_id, lambda f: f["status"] == "FINISHED")
    assert _statuses(done) == {"entry": "filled", "take-profit": "filled", "stop-loss": "canceled"}
    assert _orders(venue, trader) == {"bracket-1-c0": "FILLED", "bracket-1-c1": "FILLED"}
    position = venue.ok("GET", "/fapi/v2/positionRisk", trader, {"symbol": "BTCUSDT"})
    assert position[0]["positionAmt"] == "0"  # the stop never fired


def test_a_mark_cross_on_eth_starts_a_twap_on_btc(venue: InProcessVenue) -> None:
    trader, other = venue.trader("flows"), venue.trader("other", "1000000")
    _limit(venue, other, "SELL", "50000", "1")
    parents = [
        {
            "id": "btc-twap",
            "client_algo_id": "then-twap",
            "algo": "twap",
            "market": "BTCUSDT",
            "side": "buy",
            "qty": "0.1",
            "duration_s": 300,
            "end_behavior": "complete_aggressive",
            "passiveness_bps": 0,
        }
    ]
    document = _document(
        [
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
                "id": "buy-btc",
                "type": "algo",
                "parent": "btc-twap",
                "trigger": {"on": "done", "node": "eth-up"},
            },
        ],
        parents,
    )
    flow_id = _start(venue, trader, document, "ifthen-1")
    armed = _until(venue, trader, flow_id, lambda f: _statuses(f)["eth-up"] == "armed")
    assert _statuses(armed)["buy-btc"] == "pending" and _nodes(armed)["buy-btc"]["algoId"] is None

    venue.mark("ETHUSDT", "2100")

    started = _until(venue, trader, flow_id, lambda f: _statuses(f)["buy-btc"] == "working")
    algo_id = _nodes(started)["buy-btc"]["algoId"]
    open_algos = venue.ok("GET", "/sapi/v1/algo/futures/openOrders", trader)["orders"]
    assert [(a["algoId"], a["clientAlgoId"], a["algoType"]) for a in open_algos] == [
        (algo_id, "then-twap", "TWAP")
    ]
    for _ in range(70):
        assert venue.admin("POST", "/clock", {"advanceMs": 5_000}).status_code == 200

    done = _until(venue, trader, flow_id, lambda f: f["status"] == "FINISHED")
    assert _statuses(done) == {"eth-up": "done", "buy-btc": "filled"}
    assert _nodes(done)["buy-btc"]["executedQty"] == "0.1"
    history = venue.ok("GET", "/sapi/v1/algo/futures/historicalOrders", trader)["orders"]
    assert [(a["algoId"], a["algoStatus"], a["executedQty"]) for a in history] == [
        (algo_id, "FINISHED", "0.1")
    ]
    children = set(_orders(venue, trader))
    assert children and all(cid.startswith("then-twap-c") for cid in children)


def test_cancel_cancels_every_working_node(venue: InProcessVenue) -> None:
    trader = venue.trader("flows")
    document = _document(
        [
            {"id": "entry", "type": "order", "order": _order(side="buy", price="49000")},
            {
                "id": "exit",
                "type": "order",
                "trigger": {"on": "filled", "node": "entry"},
                "order": _order(side="sell", price="52000"),
            },
        ]
    )
    flow_id = _start(venue, trader, document, "cancel-1")
    _until(venue, trader, flow_id, lambda f: _statuses(f)["entry"] == "working")

    answer = venue.ok("DELETE", FLOW, trader, {"flowId": flow_id})

    assert answer == {"flowId": flow_id, "success": True, "code": 0, "msg": "OK"}
    ended = _until(venue, trader, flow_id, lambda f: f["status"] == "CANCELLED")
    assert _statuses(ended) == {"entry": "canceled", "exit": "canceled"}
    assert _orders(venue, trader) == {"cancel-1-c0": "CANCELED"}
    assert venue.refused("DELETE", FLOW, trader, {"flowId": flow_id})[1] == -9593


def test_a_flow_is_only_its_owners(venue: InProcessVenue) -> None:
    trader, stranger = venue.trader("flows"), venue.trader("stranger")
    flow_id = _start(
        venue,
        trader,
        _document([{"id": "a", "type": "order", "order": _order(side="buy", price="49000")}]),
        "mine",
    )

    assert venue.refused("GET", FLOW, stranger, {"flowId": flow_id})[1] == -9593
    assert venue.refused("DELETE", FLOW, stranger, {"flowId": flow_id})[1] == -9593
    assert venue.ok("GET", FLOW, stranger) == {"total": 0, "flows": []}
    assert venue.ok("GET", FLOW, trader)["total"] == 1


@pytest.mark.parametrize(
    ("params", "code", "words"),
    [
        ({}, -1102, "document"),
        ({"document": "{"}, -9590, "not JSON"),
        ({"document": "[]"}, -9590, "JSON object"),
        (
            {
                "document": _document(
                    [{"id": "a", "type": "order", "order": _order(side="buy", price="1", qty="0")}]
                )
            },
            -9590,
            "flow.nodes[0].order",
        ),
        (
            {
                "document": json.dumps(
                    {"version": 1, "name": "x", "flow": {"nodes": [{"id": "a", "type": "wait"}]}}
                )
            },
            -9590,
            "flow.nodes[0].wait_s: is required",
        ),
        (
            {
                "document": _document(
                    [{"id": "a", "type": "order", "order": _order(side="buy", price="1", market="DOGEUSDT")}]
                )
            },
            -9591,
            "flow.nodes[0].order.market",
        ),
        (
            {
                "document": _document(
                    [{"id": "a", "type": "order", "order": _order(side="buy", price="1", qty="0.0001")}]
                )
            },
            -9592,
            "flow.nodes[0].order.qty",
        ),
        (
            {
                "document": _document(
                    [{"id": "a", "type": "order", "order": _order(side="buy", price="50000.01")}]
                )
            },
            -9592,
            "flow.nodes[0].order.price",
        ),
        (
            {
                "document": _document([{"id": "a", "type": "order", "order": _order(side="buy", price="1")}]),
                "clientFlowId": "perpx-mine",
            },
            -9595,
            "reserved",
        ),
        (
            {
                "document": _document([{"id": "a", "type": "order", "order": _order(side="buy", price="1")}]),
                "clientFlowId": "bad id!",
            },
            -9595,
            "letters, digits",
        ),
    ],
)
def test_a_bad_flow_is_refused_with_a_code_and_its_path(
    venue: InProcessVenue, params: dict[str, str], code: int, words: str
) -> None:
    trader = venue.trader("flows")

    status, got, msg = venue.refused("POST", FLOW, trader, params)

    assert (status, got) == (400, code) and words in msg, msg
    assert venue.ok("GET", FLOW, trader) == {"total": 0, "flows": []}


def test_a_client_flow_id_is_used_once(venue: InProcessVenue) -> None:
    trader = venue.trader("flows")
    document = _document([{"id": "a", "type": "order", "order": _order(side="buy", price="49000")}])
    _start(venue, trader, document, "once")

    assert venue.refused("POST", FLOW, trader, {"document": document, "clientFlowId": "once"})[1] == -9595


def _agent(venue: InProcessVenue, name: str, **policy: Any) -> Trader:
    owner = venue.trader(name)
    body = {"accountId": owner.account_id, "name": name, "scopes": ["read", "trade", "cancel"], **policy}
    created = venue.admin("POST", "/agents", body)
    assert created.status_code == 200, created.text
    data = created.json()
    return Trader(owner.account_id, data["apiKey"], data["apiSecret"])


def test_an_agent_without_the_algo_scope_cannot_start_a_flow(venue: InProcessVenue) -> None:
    agent = _agent(venue, "no-algo")
    document = _document([{"id": "a", "type": "order", "order": _order(side="buy", price="49000")}])

    code = venue.refused("POST", FLOW, agent, {"document": document})[1]

    assert code == -9304
    assert venue.ok("GET", FLOW, agent) == {"total": 0, "flows": []}


def test_an_agent_limit_applies_to_every_node_of_the_flow(venue: InProcessVenue) -> None:
    agent = _agent(
        venue,
        "small",
        scopes=["read", "trade", "cancel", "algo"],
        limits={"maxOrderNotional": "6000"},
    )
    small = _order(side="buy", price="49000")
    large = _order(side="sell", price="60000", qty="1")
    document = _document(
        [
            {"id": "a", "type": "order", "order": small},
            {"id": "b", "type": "order", "trigger": {"on": "filled", "node": "a"}, "order": large},
        ]
    )

    code, msg = venue.refused("POST", FLOW, agent, {"document": document})[1:]

    assert code == -9301, msg
    allowed = _document([{"id": "a", "type": "order", "order": small}])
    assert venue.ok("POST", FLOW, agent, {"document": allowed})["success"] is True


def test_a_parent_id_already_used_by_the_account_is_refused(venue: InProcessVenue) -> None:
    trader = venue.trader("flows")
    parent = {
        "id": "p",
        "client_algo_id": "shared-id",
        "algo": "twap",
        "market": "BTCUSDT",
        "side": "buy",
        "qty": "0.1",
        "duration_s": 300,
    }
    nodes = [{"id": "run", "type": "algo", "parent": "p", "trigger": {"on": "time", "after_s": 3600}}]
    _start(venue, trader, _document(nodes, [parent]), "first")

    code, msg = venue.refused("POST", FLOW, trader, {"document": _document(nodes, [parent])})[1:]

    assert code == -9595 and "parents[0].client_algo_id" in msg


def test_an_ended_flow_reads_the_same_after_a_restart(tmp_path: Path) -> None:
    document = _document(
        [
            {"id": "sell-high", "type": "order", "oco": "g", "order": _order(side="sell", price="51000")},
            {"id": "buy-low", "type": "order", "oco": "g", "order": _order(side="buy", price="49000")},
        ]
    )
    with in_process_venue(tmp_path / "data") as venue:
        venue.mark("BTCUSDT", "50000")
        trader, other = venue.trader("flows"), venue.trader("other", "1000000")
        flow_id = _start(venue, trader, document, "oco-restart")
        _until(venue, trader, flow_id, lambda f: _statuses(f)["buy-low"] == "working")
        _limit(venue, other, "BUY", "51000")
        before = _until(venue, trader, flow_id, lambda f: f["status"] == "FINISHED")

    with in_process_venue(tmp_path / "data") as venue:
        after = _flow(venue, trader, flow_id)

    assert after["status"] == "FINISHED" and after["reason"] == before["reason"]
    assert _statuses(after) == _statuses(before) == {"sell-high": "filled", "buy-low": "canceled"}
    assert [n["clientOrderId"] for n in after["nodes"]] == ["oco-restart-c0", "oco-restart-c1"]
