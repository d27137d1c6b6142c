"""The user data stream: listenKey lifecycle, the private WebSocket's events, and ccxt.pro against it.

Most tests run in process (the real app, TestClient WebSockets); one runs unmodified ccxt.pro
``watch_orders`` / ``watch_positions`` against a ``perpx serve`` child process.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.websockets import WebSocketDisconnect

from perpx.server.userstream import UserStream

from .harness import ServerProcess, Trader
from .inprocess import InProcessVenue, in_process_venue

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import WebSocketTestSession

BTC = "BTCUSDT"


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessVenue]:
    with in_process_venue(tmp_path_factory.mktemp("userstream") / "data") as venue:
        venue.mark(BTC, "60000")
        venue.mark("ETHUSDT", "3000")
        yield venue


def listen_key(venue: InProcessVenue, trader: Trader, method: str = "POST") -> Any:
    return venue.client.request(method, "/fapi/v1/listenKey", headers={"X-MBX-APIKEY": trader.api_key})


def order(
    symbol: str, side: str, kind: str, qty: str, price: str | None = None, **extra: Any
) -> dict[str, Any]:
    params = {"symbol": symbol, "side": side, "type": kind, "quantity": qty, **extra}
    if price is not None:
        params |= {"price": price, "timeInForce": "GTC"}
    return params


def receive(ws: WebSocketTestSession, count: int) -> list[dict[str, Any]]:
    return [ws.receive_json() for _ in range(count)]


def test_listen_key_lifecycle_follows_binance(venue: InProcessVenue) -> None:
    trader = venue.trader("keys")

    first = listen_key(venue, trader).json()["listenKey"]
    again = listen_key(venue, trader).json()["listenKey"]
    kept = listen_key(venue, trader, "PUT").json()["listenKey"]
    closed = listen_key(venue, trader, "DELETE").json()
    gone = listen_key(venue, trader, "PUT")
    fresh = listen_key(venue, trader).json()["listenKey"]

    assert len(first) == 64 and again == first and kept == first
    assert closed == {}
    assert (gone.status_code, gone.json()["code"]) == (400, -1125)
    assert fresh != first


def test_listen_key_needs_a_valid_api_key(venue: InProcessVenue) -> None:
    answer = venue.client.post("/fapi/v1/listenKey", headers={"X-MBX-APIKEY": "nope"})

    assert (answer.status_code, answer.json()["code"]) == (401, -2015)


def test_unknown_listen_key_is_refused(venue: InProcessVenue) -> None:
    with (
        pytest.raises(WebSocketDisconnect),
        venue.client.websocket_connect("/private/ws?listenKey=unknown") as ws,
    ):
        ws.receive_json()


def test_order_fill_cancel_and_close_events(venue: InProcessVenue) -> None:
    # Arrange: mm offers 0.002 at 60,000; the trader listens
    mm, trader = venue.trader("mm-events"), venue.trader("events")
    venue.ok("POST", "/fapi/v1/order", mm, order(BTC, "SELL", "LIMIT", "0.002", "60000"))
    key = listen_key(venue, trader).json()["listenKey"]
    with venue.client.websocket_connect(f"/private/ws?listenKey={key}") as ws:
        # Act 1: a buy for 0.004 fills 0.002 and rests the rest
        placed = venue.ok(
            "POST",
            "/fapi/v1/order",
            trader,
            order(BTC, "BUY", "LIMIT", "0.004", "60000", newClientOrderId="ev-1"),
        )
        new, trade, account = receive(ws, 3)
        # Act 2: cancel the rest
        venue.ok("DELETE", "/fapi/v1/order", trader, {"symbol": BTC, "orderId": placed["orderId"]})
        (canceled,) = receive(ws, 1)
        # Act 3: close the position against mm's bid
        venue.ok("POST", "/fapi/v1/order", mm, order(BTC, "BUY", "LIMIT", "0.002", "60000"))
        venue.ok("POST", "/fapi/v1/order", trader, order(BTC, "SELL", "MARKET", "0.002", reduceOnly="true"))
        close_new, close_trade, close_account = receive(ws, 3)

    # Assert
    assert (new["e"], new["o"]["x"], new["o"]["X"], new["o"]["c"]) == (
        "ORDER_TRADE_UPDATE",
        "NEW",
        "NEW",
        "ev-1",
    )
    o = trade["o"]
    assert (o["x"], o["X"], o["l"], o["z"], o["L"], o["n"], o["N"], o["m"], o["ps"]) == (
        "TRADE",
        "PARTIALLY_FILLED",
        "0.002",
        "0.002",
        "60000",
        "0.06",
        "USDT",
        False,
        "BOTH",
    )
    assert o["i"] == placed["orderId"] and o["t"] > 0 and o["q"] == "0.004" and o["ap"] == "60000"
    assert set(o) >= {
        "s",
        "c",
        "S",
        "o",
        "f",
        "q",
        "p",
        "ap",
        "sp",
        "T",
        "b",
        "a",
        "R",
        "wt",
        "ot",
        "cp",
        "rp",
        "pP",
        "si",
        "ss",
        "V",
        "pm",
        "gtd",
    }
    assert account["e"] == "ACCOUNT_UPDATE" and account["a"]["m"] == "ORDER"
    assert account["a"]["B"][0]["a"] == "USDT" and account["a"]["B"][0]["wb"] == "99999.94"
    (row,) = account["a"]["P"]
    assert (row["s"], row["pa"], row["ep"], row["mt"], row["ps"]) == (BTC, "0.002", "60000", "cross", "BOTH")
    assert (canceled["o"]["x"], canceled["o"]["X"], canceled["o"]["z"]) == ("CANCELED", "CANCELED", "0.002")
    assert (close_new["o"]["x"], close_trade["o"]["X"], close_trade["o"]["R"]) == ("NEW", "FILLED", True)
    assert close_account["a"]["P"][0]["pa"] == "0"
    assert new["E"] == new["T"] == new["o"]["T"]


def test_algo_update_and_deposit(venue: InProcessVenue) -> None:
    trader = venue.trader("algo-events")
    key = listen_key(venue, trader).json()["listenKey"]
    with venue.client.websocket_connect(f"/private/ws?listenKey={key}") as ws:
        placed = venue.ok(
            "POST",
            "/fapi/v1/algoOrder",
            trader,
            {
                "symbol": BTC,
                "side": "SELL",
                "type": "STOP_MARKET",
                "algoType": "CONDITIONAL",
                "triggerPrice": "50000",
                "quantity": "0.002",
                "workingType": "MARK_PRICE",
            },
        )
        (new,) = receive(ws, 1)
        venue.ok("DELETE", "/fapi/v1/algoOrder", trader, {"symbol": BTC, "algoId": placed["algoId"]})
        (canceled,) = receive(ws, 1)
        venue.admin(
            "POST",
            "/deposits",
            {"accountId": trader.account_id, "asset": "USDT", "amount": "5", "txId": "more-algo"},
        )
        (deposit,) = receive(ws, 1)

    assert (new["e"], new["o"]["X"], new["o"]["aid"], new["o"]["tp"], new["o"]["wt"]) == (
        "ALGO_UPDATE",
        "NEW",
        placed["algoId"],
        "50000",
        "MARK_PRICE",
    )
    assert canceled["o"]["X"] == "CANCELED"
    assert (deposit["a"]["m"], deposit["a"]["B"][0]["bc"], deposit["a"]["B"][0]["wb"], deposit["a"]["P"]) == (
        "DEPOSIT",
        "5",
        "100005",
        [],
    )


def test_margin_call_once_when_the_ratio_reaches_80_percent(venue: InProcessVenue) -> None:
    # Arrange: long 0.6 ETH at 3,000 with 100 USDT (maintenance 0.5%)
    mm, trader = venue.trader("mm-call"), venue.trader("call", deposit="100")
    venue.ok("POST", "/fapi/v1/order", mm, order("ETHUSDT", "SELL", "LIMIT", "0.6", "3000"))
    venue.ok("POST", "/fapi/v1/order", trader, order("ETHUSDT", "BUY", "MARKET", "0.6"))
    key = listen_key(venue, trader).json()["listenKey"]
    with venue.client.websocket_connect(f"/private/ws?listenKey={key}") as ws:
        # Act: the mark falls to 2,852 (ratio ~83%), then a little further (still over 80%)
        venue.mark("ETHUSDT", "2852")
        (call,) = receive(ws, 1)
        venue.mark("ETHUSDT", "2851")
        venue.admin(
            "POST",
            "/deposits",
            {"accountId": trader.account_id, "asset": "USDT", "amount": "1", "txId": "call-1"},
        )
        follow = receive(ws, 1)[0]  # the deposit's update, no second MARGIN_CALL before it

    venue.mark("ETHUSDT", "3000")
    assert call["e"] == "MARGIN_CALL"
    (row,) = call["p"]
    assert (row["s"], row["pa"], row["mt"], row["mp"], row["ps"]) == (
        "ETHUSDT",
        "0.6",
        "CROSSED",
        "2852",
        "BOTH",
    )
    assert row["mm"] == "8.556" and row["up"] == "-88.8"
    assert follow["e"] == "ACCOUNT_UPDATE"


def test_deleted_key_pushes_listen_key_expired_and_closes(venue: InProcessVenue) -> None:
    trader = venue.trader("expire")
    key = listen_key(venue, trader).json()["listenKey"]
    with venue.client.websocket_connect(f"/private/ws?listenKey={key}") as ws:
        listen_key(venue, trader, "DELETE")
        expired = ws.receive_json()
        with pytest.raises(WebSocketDisconnect):
            ws.receive_json()

    assert (expired["e"], expired["listenKey"]) == ("listenKeyExpired", key)


def test_key_past_its_validity_expires_on_sweep(venue: InProcessVenue) -> None:
    trader = venue.trader("sweep")
    stream: UserStream = venue.ctx.components.userstream
    key = listen_key(venue, trader).json()["listenKey"]
    with venue.client.websocket_connect(f"/private/ws?listenKey={key}") as ws:
        stream.keys[key].expires_ms = 0
        expired = ws.receive_json()  # the sweeper runs every second

    assert expired["e"] == "listenKeyExpired"
    assert key not in stream.keys


def test_another_accounts_events_are_not_sent(venue: InProcessVenue) -> None:
    mine, other = venue.trader("mine"), venue.trader("not-mine")
    key = listen_key(venue, mine).json()["listenKey"]
    with venue.client.websocket_connect(f"/private/ws?listenKey={key}") as ws:
        venue.ok("POST", "/fapi/v1/order", other, order(BTC, "BUY", "LIMIT", "0.002", "58000"))
        venue.ok(
            "POST",
            "/fapi/v1/order",
            mine,
            order(BTC, "BUY", "LIMIT", "0.002", "58001", newClientOrderId="mine-1"),
        )
        (first,) = receive(ws, 1)

    assert first["o"]["c"] == "mine-1"


# ---------------------------------------------------------------------- ccxt.pro end to end


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("userstream-e2e") / "data").start()
    try:
        answer = process.admin("POST", "/marks", {"symbol": BTC, "markPrice": "60000", "indexPrice": "60000"})
        assert answer.status_code == 200, answer.text
        yield process
    finally:
        process.stop()


def test_ccxt_pro_watch_orders_and_positions(server: ServerProcess) -> None:
    symbol = "BTC/USDT:USDT"
    mm_trader, trader = server.trader("mm"), server.trader("watcher")
    mm = server.ccxt(mm_trader)
    mm.load_markets()
    mm.create_order(symbol, "limit", "sell", 0.004, 60000)
    mm.create_order(symbol, "limit", "buy", 0.004, 59900)

    async def scenario() -> tuple[list[Any], list[Any], list[Any]]:
        exchange = server.ccxt_pro(trader)
        try:
            await exchange.load_markets()
            orders = asyncio.ensure_future(exchange.watch_orders(symbol))
            positions = asyncio.ensure_future(exchange.watch_positions())
            await asyncio.sleep(0.5)
            await exchange.create_order(symbol, "market", "buy", 0.004)
            got_orders = await asyncio.wait_for(orders, 10)
            got_positions = await asyncio.wait_for(positions, 10)
            closing = asyncio.ensure_future(exchange.watch_positions())
            await asyncio.sleep(0.2)
            await exchange.create_order(symbol, "market", "sell", 0.004, None, {"reduceOnly": True})
            closed = await asyncio.wait_for(closing, 10)
            return got_orders, got_positions, closed
        finally:
            await asyncio.wait_for(exchange.close(), 10)

    orders, positions, closed = asyncio.run(asyncio.wait_for(scenario(), 90))

    assert (
        orders[-1]["symbol"] == symbol and orders[-1]["status"] == "closed" and orders[-1]["filled"] == 0.004
    )
    long = next(p for p in positions if p["symbol"] == symbol)
    assert (long["side"], long["contracts"], long["entryPrice"]) == ("long", 0.004, 60000.0)
    assert next(p for p in closed if p["symbol"] == symbol)["contracts"] == 0.0
