"""python-binance 1.0.37 (``binance.client``, ``binance.ws``) futures calls against ``perpx serve``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.server.harness import ServerProcess, Trader

from .conftest import BTC, cross

client_module = pytest.importorskip("binance.client")
async_client_module = pytest.importorskip("binance.async_client")
streams = pytest.importorskip("binance.ws.streams")
exceptions = pytest.importorskip("binance.exceptions")


def point_at(venue_client: Any, server: ServerProcess) -> Any:
    """Aim a python-binance client's futures URLs at the venue (it has no base URL option)."""
    venue_client.FUTURES_URL = f"{server.base}/fapi"
    venue_client.FUTURES_DATA_URL = f"{server.base}/futures/data"
    return venue_client


@pytest.fixture
def rest(server: ServerProcess) -> Iterator[tuple[Any, Trader]]:
    trader = server.trader(f"python-binance-{time.monotonic_ns()}")
    venue_client = point_at(client_module.Client(trader.api_key, trader.secret, ping=False), server)
    yield venue_client, trader
    venue_client.close_connection()
    venue_client.loop.close()  # the sync client makes an event loop of its own and leaves it open


def test_sync_rest_market_data(rest: tuple[Any, Trader]) -> None:
    venue_client, _ = rest

    server_time = venue_client.futures_time()["serverTime"]
    symbols = [s["symbol"] for s in venue_client.futures_exchange_info()["symbols"]]
    book = venue_client.futures_order_book(symbol=BTC, limit=5)
    marks = venue_client.futures_mark_price_klines(symbol=BTC, interval="1m", limit=5)

    assert abs(server_time - time.time() * 1000) < 60_000
    assert BTC in symbols
    assert "lastUpdateId" in book
    assert marks and float(marks[-1][4]) > 0


def test_sync_rest_order_cycle_and_balance(rest: tuple[Any, Trader]) -> None:
    venue_client, _ = rest

    placed = venue_client.futures_create_order(
        symbol=BTC, side="BUY", type="LIMIT", quantity=0.01, price=50000, timeInForce="GTC"
    )
    queried = venue_client.futures_get_order(symbol=BTC, orderId=placed["orderId"])
    canceled = venue_client.futures_cancel_order(symbol=BTC, orderId=placed["orderId"])
    balances = venue_client.futures_account_balance()

    assert (placed["status"], queried["status"], canceled["status"]) == ("NEW", "NEW", "CANCELED")
    assert any(b["asset"] == "USDT" and float(b["balance"]) == 100000 for b in balances)


def test_errors_raise_binance_api_exception_with_codes(rest: tuple[Any, Trader]) -> None:
    venue_client, _ = rest

    with pytest.raises(exceptions.BinanceAPIException) as precision:
        venue_client.futures_create_order(
            symbol=BTC, side="BUY", type="LIMIT", quantity="0.0015", price=50000, timeInForce="GTC"
        )
    with pytest.raises(exceptions.BinanceAPIException) as unknown:
        venue_client.futures_get_order(symbol=BTC, orderId=987654321)

    assert (precision.value.status_code, precision.value.code) == (400, -1111)
    assert unknown.value.code == -2013


def test_websocket_market_and_user_sockets(server: ServerProcess) -> None:
    trader = server.trader("python-binance-ws")

    async def run() -> tuple[dict[str, Any], dict[str, Any]]:
        venue_client = point_at(async_client_module.AsyncClient(trader.api_key, trader.secret), server)
        manager = streams.BinanceSocketManager(venue_client)
        manager.FSTREAM_URL = f"ws://127.0.0.1:{server.port}/"
        try:
            async with (
                manager.futures_user_socket() as user,
                manager.aggtrade_futures_socket(BTC) as trades,
            ):
                await asyncio.sleep(0.5)
                await asyncio.to_thread(cross, server, trader)
                fill = await _first(
                    user, lambda m: m.get("e") == "ORDER_TRADE_UPDATE" and m["o"]["x"] == "TRADE"
                )
                trade = await _first(trades, lambda m: m.get("data", m).get("e") == "aggTrade")
                return fill, trade
        finally:
            await venue_client.close_connection()

    fill, trade = asyncio.run(run())

    assert (fill["o"]["s"], fill["o"]["X"]) == (BTC, "FILLED")
    assert float(trade.get("data", trade)["p"]) == 60000


async def _first(socket: Any, want: Any, timeout_s: float = 10) -> dict[str, Any]:
    async with asyncio.timeout(timeout_s):
        while True:
            message: dict[str, Any] = await socket.recv()
            if want(message):
                return message
