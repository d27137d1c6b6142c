"""Public WebSocket streams end to end: raw and combined sockets, and unmodified ccxt.pro ``binanceusdm``."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from tests.server.harness import ServerProcess
from tests.server.test_public_e2e import SYMBOL, Seeded, order, seed


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    server = ServerProcess(tmp_path_factory.mktemp("streams") / "data").start()
    try:
        yield seed(server)
    finally:
        server.stop()


def trade_at(seeded: Seeded, price: str) -> None:
    """One trade of 0.002 at ``price`` (inside the spread): a maker bid, then a taker market sell."""
    order(seeded.server, seeded.maker, "BUY", "0.002", price)
    order(seeded.server, seeded.taker, "SELL", "0.002")


def ws_url(server: ServerProcess, path: str) -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


def receive(ws: ClientConnection, timeout_s: float = 5.0) -> Any:
    return json.loads(ws.recv(timeout=timeout_s))


def test_diff_depth_continues_from_the_rest_snapshot(seeded: Seeded) -> None:
    # Arrange
    server = seeded.server
    with connect(ws_url(server, "/public/ws/0")) as ws:
        ws.send('{"method":"SUBSCRIBE","params":["btcusdt@depth@100ms"],"id":1}')
        assert receive(ws) == {"result": None, "id": 1}
        snapshot = server.public("/fapi/v1/depth", symbol="BTCUSDT").json()

        # Act
        order(server, seeded.maker, "BUY", "0.002", "59000")
        order(server, seeded.maker, "SELL", "0.002", "61000")
        order(server, seeded.maker, "BUY", "0.003", "59000")
        diffs = [receive(ws) for _ in range(3)]
        after = server.public("/fapi/v1/depth", symbol="BTCUSDT").json()

    # Assert
    assert diffs[0]["pu"] == snapshot["lastUpdateId"]
    assert [d["pu"] for d in diffs[1:]] == [d["u"] for d in diffs[:-1]]
    assert all(d["U"] <= d["u"] and d["e"] == "depthUpdate" and d["s"] == "BTCUSDT" for d in diffs)
    assert [(d["b"], d["a"]) for d in diffs] == [
        ([["59000", "0.002"]], []),
        ([], [["61000", "0.002"]]),
        ([["59000", "0.005"]], []),
    ]
    assert after["lastUpdateId"] == diffs[-1]["u"]


def test_combined_stream_wraps_events_and_raw_path_subscribes_by_name(seeded: Seeded) -> None:
    # Arrange
    server = seeded.server
    with (
        connect(ws_url(server, "/stream?streams=btcusdt@aggTrade/btcusdt@trade")) as combined,
        connect(ws_url(server, "/ws/btcusdt@trade")) as raw,
    ):
        combined.send('{"method":"LIST_SUBSCRIPTIONS","id":7}')
        listed = receive(combined)

        # Act
        trade_at(seeded, "60003")
        wrapped = [receive(combined) for _ in range(2)]
        bare = receive(raw)

    # Assert
    assert listed == {"result": ["btcusdt@aggTrade", "btcusdt@trade"], "id": 7}
    by_stream = {frame["stream"]: frame["data"] for frame in wrapped}
    assert by_stream["btcusdt@trade"] == bare
    assert (bare["e"], bare["p"], bare["q"], bare["m"]) == ("trade", "60003", "0.002", True)
    assert by_stream["btcusdt@aggTrade"]["a"] == bare["t"]


def test_bad_subscribe_is_answered_with_error_code_2(seeded: Seeded) -> None:
    # Arrange
    with connect(ws_url(seeded.server, "/market/ws/3")) as ws:
        # Act
        ws.send('{"method":"SUBSCRIBE","params":["btcusdt@bogus"],"id":5}')
        reply = receive(ws)

    # Assert
    assert reply["id"] == 5
    assert reply["error"]["code"] == 2


def test_timed_streams_push_mark_price_partial_depth_and_klines(seeded: Seeded) -> None:
    # Arrange
    server = seeded.server
    names = "btcusdt@markPrice@1s/btcusdt@depth5@100ms/btcusdt@kline_1m"
    with connect(ws_url(server, f"/market/stream?streams={names}")) as ws:
        # Act
        trade_at(seeded, "60004")
        latest: dict[str, Any] = {}
        deadline = time.monotonic() + 5
        while len(latest) < 3 or latest["btcusdt@kline_1m"]["k"]["c"] != "60004":
            frame = receive(ws, max(0.01, deadline - time.monotonic()))
            latest[frame["stream"]] = frame["data"]
        book = server.public("/fapi/v1/depth", symbol="BTCUSDT", limit=5).json()
        # the trade is two batches (the resting order, then the taker); wait for the frame after both
        while (latest["btcusdt@depth5@100ms"]["b"], latest["btcusdt@depth5@100ms"]["a"]) != (
            book["bids"],
            book["asks"],
        ) and time.monotonic() < deadline:
            frame = receive(ws, max(0.01, deadline - time.monotonic()))
            latest[frame["stream"]] = frame["data"]
        mark, partial = latest["btcusdt@markPrice@1s"], latest["btcusdt@depth5@100ms"]
        candle = latest["btcusdt@kline_1m"]["k"]

    # Assert
    assert (mark["e"], mark["s"], mark["p"], mark["i"], mark["r"]) == (
        "markPriceUpdate",
        "BTCUSDT",
        "60000",
        "60000",
        "0.00000000",
    )
    assert partial["e"] == "depthUpdate"
    assert (partial["b"], partial["a"]) == (book["bids"], book["asks"])
    assert (candle["i"], candle["x"], candle["s"]) == ("1m", False, "BTCUSDT")
    assert float(candle["v"]) >= 0.002


def test_ccxt_pro_watch_order_book_and_watch_trades(seeded: Seeded) -> None:
    # Arrange
    server = seeded.server

    async def scenario() -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
        exchange = server.ccxt_pro(seeded.taker)
        try:
            await exchange.load_markets()
            await asyncio.wait_for(exchange.watch_order_book(SYMBOL), 10)
            watching = asyncio.create_task(exchange.watch_trades(SYMBOL))
            await asyncio.sleep(0.3)

            # Act
            await asyncio.to_thread(order, server, seeded.maker, "BUY", "0.004", "59500")
            await asyncio.to_thread(trade_at, seeded, "60005")
            trades = await asyncio.wait_for(watching, 10)
            # the watched book keeps applying diffs as they arrive; wait until it shows both orders
            book: dict[str, Any] = {}
            for _ in range(100):
                book = exchange.orderbooks[SYMBOL].limit()
                if [59500.0, 0.004] in book["bids"] and book["bids"][0][0] < 60005:
                    break
                await asyncio.sleep(0.05)
            rest = await asyncio.to_thread(server.public, "/fapi/v1/depth", symbol="BTCUSDT")
            return book, trades, rest.json()
        finally:
            await exchange.close()

    book, trades, rest = asyncio.run(scenario())

    # Assert
    assert [59500.0, 0.004] in book["bids"]
    assert book["nonce"] == rest["lastUpdateId"]
    assert book["bids"] == [[float(p), float(q)] for p, q in rest["bids"]]
    assert book["asks"] == [[float(p), float(q)] for p, q in rest["asks"]]
    assert [(t["side"], t["price"], t["amount"]) for t in trades[-1:]] == [("sell", 60005.0, 0.002)]


def test_raw_path_with_a_listen_key_is_the_user_data_stream(seeded: Seeded) -> None:
    # Arrange
    server = seeded.server
    created = httpx.post(
        f"{server.base}/fapi/v1/listenKey", headers={"X-MBX-APIKEY": seeded.maker.api_key}, timeout=10
    )
    listen_key = created.json()["listenKey"]
    with connect(ws_url(server, f"/ws/{listen_key}")) as ws:
        # Act
        placed = order(server, seeded.maker, "BUY", "0.002", "58000")
        update = receive(ws)

    # Assert
    assert update["e"] == "ORDER_TRADE_UPDATE"
    assert update["o"]["i"] == placed["orderId"]
