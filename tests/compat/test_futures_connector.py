"""binance-futures-connector 4.2.0 (``binance.um_futures``, ``binance.websocket``) against ``perpx serve``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.server.harness import ServerProcess, Trader

from .conftest import BTC, cross
from .inbox import Inbox

um_futures = pytest.importorskip("binance.um_futures")
websocket_client = pytest.importorskip("binance.websocket.um_futures.websocket_client")
error = pytest.importorskip("binance.error")


@pytest.fixture
def opened() -> Iterator[list[Any]]:
    """REST clients a test opened; their HTTP sessions are closed after it."""
    clients: list[Any] = []
    yield clients
    for rest in clients:
        rest.session.close()


def client(server: ServerProcess, opened: list[Any], name: str | None = None) -> tuple[Any, Trader | None]:
    trader = server.trader(name) if name is not None else None
    if trader is None:
        rest = um_futures.UMFutures(base_url=server.base)
    else:
        rest = um_futures.UMFutures(key=trader.api_key, secret=trader.secret, base_url=server.base)
    opened.append(rest)
    return rest, trader


def test_sync_rest_market_data(server: ServerProcess, opened: list[Any]) -> None:
    rest, _ = client(server, opened)

    assert abs(rest.time()["serverTime"] - time.time() * 1000) < 60_000
    assert BTC in [s["symbol"] for s in rest.exchange_info()["symbols"]]
    assert "lastUpdateId" in rest.depth(BTC, limit=5)
    assert isinstance(rest.klines(BTC, "1m", limit=5), list)
    marks = rest.mark_price_klines(BTC, "1m", limit=5)
    assert marks and float(marks[-1][4]) > 0
    assert float(rest.mark_price(BTC)["markPrice"]) > 0


def test_sync_rest_order_cycle_and_account(server: ServerProcess, opened: list[Any]) -> None:
    rest, _ = client(server, opened, "connector-orders")

    placed = rest.new_order(
        symbol=BTC, side="BUY", type="LIMIT", quantity=0.01, price=50000, timeInForce="GTC"
    )
    queried = rest.query_order(symbol=BTC, orderId=placed["orderId"])
    canceled = rest.cancel_order(symbol=BTC, orderId=placed["orderId"])
    balances = rest.balance()

    assert (placed["status"], queried["status"], canceled["status"]) == ("NEW", "NEW", "CANCELED")
    assert any(b["asset"] == "USDT" and float(b["balance"]) == 100000 for b in balances)
    assert any(a["asset"] == "USDT" for a in rest.account()["assets"])


def test_errors_raise_client_error_with_binance_codes(server: ServerProcess, opened: list[Any]) -> None:
    rest, _ = client(server, opened, "connector-errors")

    with pytest.raises(error.ClientError) as precision:
        rest.new_order(
            symbol=BTC, side="BUY", type="LIMIT", quantity="0.0015", price=50000, timeInForce="GTC"
        )
    with pytest.raises(error.ClientError) as algo:
        rest.new_order(symbol=BTC, side="SELL", type="STOP_MARKET", quantity=0.01, stopPrice=50000)
    with pytest.raises(error.ClientError) as unknown:
        rest.query_order(symbol=BTC, orderId=987654321)

    assert (precision.value.status_code, precision.value.error_code) == (400, -1111)
    assert algo.value.error_code == -4120
    assert unknown.value.error_code == -2013


def test_websocket_market_stream_and_user_stream_by_subscribe(
    server: ServerProcess, opened: list[Any]
) -> None:
    rest, trader = client(server, opened, "connector-ws")
    listen_key = rest.new_listen_key()["listenKey"]
    inbox = Inbox()
    ws = websocket_client.UMFuturesWebsocketClient(
        stream_url=f"ws://127.0.0.1:{server.port}", on_message=lambda _, text: inbox.put(text)
    )
    try:
        ws.agg_trade(symbol="btcusdt", id=1)
        ws.user_data(listen_key=listen_key, id=2)
        inbox.wait_for(lambda m: m == {"result": None, "id": 2})

        assert trader is not None
        cross(server, trader)

        fill = inbox.wait_for(lambda m: m.get("e") == "ORDER_TRADE_UPDATE" and m["o"]["x"] == "TRADE")
        trade = inbox.wait_for(lambda m: m.get("e") == "aggTrade")
    finally:
        ws.stop()
        ws.socket_manager.ws.shutdown()  # the connector sends a close frame but never closes its socket

    assert fill["o"]["s"] == BTC and fill["o"]["X"] == "FILLED"
    assert trade["s"] == BTC and float(trade["p"]) == 60000
