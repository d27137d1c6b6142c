"""User streams subscribed by listenKey, and the all-market streams, on a real ``perpx serve``."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

from tests.server.harness import ServerProcess, Trader

from .conftest import BTC, cross


def listen_key(server: ServerProcess, trader: Trader) -> str:
    answer = httpx.post(f"{server.base}/fapi/v1/listenKey", headers={"X-MBX-APIKEY": trader.api_key})
    assert answer.status_code == 200, answer.text
    key: str = answer.json()["listenKey"]
    return key


def until(ws: ClientConnection, want: Any, timeout_s: float = 5.0) -> Any:
    """The first message ``want`` accepts within ``timeout_s`` (others are skipped)."""
    end = time.monotonic() + timeout_s
    while True:
        message = json.loads(ws.recv(timeout=max(0.0, end - time.monotonic())))
        if want(message):
            return message


def by_stream(ws: ClientConnection, names: set[str], timeout_s: float = 5.0) -> dict[str, Any]:
    """The first message of each combined stream in ``names``, whatever order they arrive in."""
    end = time.monotonic() + timeout_s
    first: dict[str, Any] = {}
    while set(first) != names:
        message = json.loads(ws.recv(timeout=max(0.0, end - time.monotonic())))
        if message["stream"] in names:
            first.setdefault(message["stream"], message["data"])
    return first


def test_unknown_listen_key_is_refused_and_subscribes_nothing(server: ServerProcess) -> None:
    with connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
        ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["A" * 64, "btcusdt@aggTrade"], "id": 1}))
        refused = json.loads(ws.recv(timeout=5))
        ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 2}))
        listed = json.loads(ws.recv(timeout=5))

    assert refused["id"] == 1 and refused["error"]["code"] == 2
    assert listed == {"result": [], "id": 2}


def test_listen_key_subscription_is_listed_and_unsubscribing_stops_the_events(server: ServerProcess) -> None:
    trader = server.trader("subscribe-unsubscribe")
    key = listen_key(server, trader)
    with connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
        ws.send(json.dumps({"method": "SUBSCRIBE", "params": [key, "btcusdt@aggTrade"], "id": 1}))
        assert json.loads(ws.recv(timeout=5)) == {"result": None, "id": 1}
        ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 2}))
        listed = until(ws, lambda m: m.get("id") == 2)
        ws.send(json.dumps({"method": "UNSUBSCRIBE", "params": [key], "id": 3}))
        until(ws, lambda m: m.get("id") == 3)

        cross(server, trader)
        trade = until(ws, lambda m: m.get("e") == "aggTrade")
        ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 4}))
        between = until(ws, lambda m: m.get("id") == 4 or m.get("e") == "ORDER_TRADE_UPDATE")

    assert sorted(listed["result"]) == sorted([key, "btcusdt@aggTrade"])
    assert trade["s"] == BTC
    assert between == {"result": ["btcusdt@aggTrade"], "id": 4}


def test_deleted_listen_key_sends_expired_and_the_connection_keeps_its_streams(server: ServerProcess) -> None:
    trader = server.trader("subscribe-expire")
    key = listen_key(server, trader)
    with connect(f"ws://127.0.0.1:{server.port}/private/stream") as ws:
        ws.send(json.dumps({"method": "SUBSCRIBE", "params": [key, "btcusdt@aggTrade"], "id": 1}))
        assert json.loads(ws.recv(timeout=5)) == {"result": None, "id": 1}

        deleted = httpx.delete(f"{server.base}/fapi/v1/listenKey", headers={"X-MBX-APIKEY": trader.api_key})
        expired = until(ws, lambda m: m.get("data", {}).get("e") == "listenKeyExpired")
        cross(server, trader)
        trade = until(ws, lambda m: m.get("stream") == "btcusdt@aggTrade")

    assert deleted.status_code == 200
    assert expired == {
        "stream": key,
        "data": {"e": "listenKeyExpired", "E": expired["data"]["E"], "listenKey": key},
    }
    assert trade["data"]["s"] == BTC


def test_all_market_streams_carry_every_market(server: ServerProcess) -> None:
    trader = server.trader("all-markets")
    with connect(
        f"ws://127.0.0.1:{server.port}/stream?streams=!ticker@arr/!miniTicker@arr/!bookTicker"
    ) as ws:
        cross(server, trader)
        first = by_stream(ws, {"!ticker@arr", "!miniTicker@arr", "!bookTicker"})
    tickers, minis, top = first["!ticker@arr"], first["!miniTicker@arr"], first["!bookTicker"]

    assert {t["s"] for t in tickers} >= {BTC, "ETHUSDT"} and {t["e"] for t in tickers} == {"24hrTicker"}
    assert {t["e"] for t in minis} == {"24hrMiniTicker"}
    assert top["e"] == "bookTicker" and top["s"] == BTC
