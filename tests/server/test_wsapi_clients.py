"""Unmodified clients on the WebSocket API of a ``perpx serve`` child process: ccxt.pro 4.5.90
(``binanceusdm``) and Binance's official SDK (binance-sdk-derivatives-trading-usds-futures 18.1.0).

``perpx.client.connect_pro`` points ccxt's ``ws-api`` URL at ``/ws-fapi/v1``; the SDK is given it as
its WebSocket API URL. Every call has a deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator
from typing import Any, TypeVar

import pytest

from perpx.client import connect_pro

from .harness import ServerProcess

SYMBOL = "BTC/USDT:USDT"
DEADLINE_S = 30.0
T = TypeVar("T")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("wsapi-ccxt") / "data").start()
    try:
        answer = process.admin(
            "POST", "/marks", {"symbol": "BTCUSDT", "markPrice": "60000", "indexPrice": "60000"}
        )
        assert answer.status_code == 200, answer.text
        yield process
    finally:
        process.stop()


async def _within(call: Awaitable[T]) -> T:
    return await asyncio.wait_for(call, DEADLINE_S)


async def _session(server: ServerProcess, name: str, steps: Any) -> Any:
    trader = server.trader(name)
    exchange = connect_pro(server.base, trader.api_key, trader.secret)
    try:
        await _within(exchange.load_markets())
        return await steps(exchange)
    finally:
        await asyncio.wait_for(exchange.close(), DEADLINE_S)


def test_create_and_cancel_order_ws(server: ServerProcess) -> None:
    # Arrange
    async def steps(exchange: Any) -> tuple[Any, Any, Any]:
        placed = await _within(exchange.create_order_ws(SYMBOL, "limit", "buy", 0.01, 50000))
        canceled = await _within(exchange.cancel_order_ws(placed["id"], SYMBOL))
        rest = await _within(exchange.fetch_order(placed["id"], SYMBOL))
        return placed, canceled, rest

    # Act
    placed, canceled, rest = asyncio.run(_session(server, "ccxt-ws-orders", steps))

    # Assert
    assert placed["status"] == "open" and placed["price"] == 50000 and placed["amount"] == 0.01
    assert canceled["id"] == placed["id"] and canceled["status"] == "canceled"
    assert rest["status"] == "canceled"


def test_edit_fetch_order_and_positions_ws(server: ServerProcess) -> None:
    # Arrange
    maker = server.trader("ccxt-ws-maker")
    ask = {
        "symbol": "BTCUSDT",
        "side": "SELL",
        "type": "LIMIT",
        "quantity": "0.002",
        "price": "60000",
        "timeInForce": "GTC",
    }
    assert server.signed("POST", "/fapi/v1/order", maker, ask).status_code == 200

    async def steps(exchange: Any) -> tuple[Any, Any, Any]:
        await _within(exchange.create_order_ws(SYMBOL, "market", "buy", 0.002))
        placed = await _within(exchange.create_order_ws(SYMBOL, "limit", "buy", 0.01, 50000))
        edited = await _within(exchange.edit_order_ws(placed["id"], SYMBOL, "limit", "buy", 0.005, 50500))
        fetched = await _within(exchange.fetch_order_ws(placed["id"], SYMBOL))
        positions = await _within(exchange.fetch_positions_ws([SYMBOL]))
        return edited, fetched, positions

    # Act
    edited, fetched, positions = asyncio.run(_session(server, "ccxt-ws-edit", steps))

    # Assert
    assert (edited["price"], edited["amount"]) == (50500, 0.005)
    assert fetched["id"] == edited["id"] and fetched["status"] == "open" and fetched["price"] == 50500
    assert [(p["symbol"], p["contracts"], p["side"]) for p in positions] == [(SYMBOL, 0.002, "long")]


def test_fetch_balance_ws_agrees_with_rest(server: ServerProcess) -> None:
    async def steps(exchange: Any) -> tuple[Any, Any]:
        over_ws = await _within(exchange.fetch_balance_ws())
        over_rest = await _within(exchange.fetch_balance())
        return over_ws, over_rest

    over_ws, over_rest = asyncio.run(_session(server, "ccxt-ws-balance", steps))

    assert over_ws["USDT"]["total"] == over_rest["USDT"]["total"] == 100000
    assert over_ws["USDT"]["free"] == over_rest["USDT"]["free"]


def test_a_refusal_reaches_ccxt_as_its_exception_class(server: ServerProcess) -> None:
    import ccxt

    async def steps(exchange: Any) -> BaseException | None:
        try:
            await _within(exchange.cancel_order_ws("987654321", SYMBOL))
        except ccxt.BaseError as exc:
            refusal: BaseException = exc
            return refusal
        return None

    error = asyncio.run(_session(server, "ccxt-ws-refusal", steps))

    assert isinstance(error, ccxt.OrderNotFound), repr(error)


@pytest.mark.filterwarnings("ignore:parameter 'timeout' of type 'float' is deprecated:DeprecationWarning")
def test_the_official_sdk_places_queries_and_cancels_over_the_websocket_api(server: ServerProcess) -> None:
    sdk = pytest.importorskip("binance_sdk_derivatives_trading_usds_futures.derivatives_trading_usds_futures")
    configuration = pytest.importorskip("binance_common.configuration")
    trader = server.trader("sdk-ws")
    config = configuration.ConfigurationWebSocketAPI(
        api_key=trader.api_key,
        api_secret=trader.secret,
        stream_url=f"ws://127.0.0.1:{server.port}/ws-fapi/v1",
    )
    client = sdk.DerivativesTradingUsdsFutures(config_ws_api=config)

    async def steps() -> tuple[Any, Any, Any, Any]:
        connection = await _within(client.websocket_api.create_connection())
        try:
            placed = await _within(
                connection.new_order(
                    symbol="BTCUSDT",
                    side="BUY",
                    type="LIMIT",
                    quantity=0.01,
                    price=50000,
                    time_in_force="GTC",
                    new_client_order_id="sdk:1/a",
                )
            )
            queried = await _within(connection.query_order(symbol="BTCUSDT", orig_client_order_id="sdk:1/a"))
            canceled = await _within(
                connection.cancel_order(symbol="BTCUSDT", order_id=placed.data().result.order_id)
            )
            balance = await _within(connection.futures_account_balance())
            return (
                placed.data().result,
                queried.data().result,
                canceled.data().result,
                balance.data().result,
            )
        finally:
            await asyncio.wait_for(connection.close_connection(close_session=True), DEADLINE_S)

    placed, queried, canceled, balance = asyncio.run(steps())

    assert (placed.status, placed.client_order_id) == ("NEW", "sdk:1/a")
    assert queried.order_id == placed.order_id and queried.status == "NEW"
    assert canceled.status == "CANCELED"
    assert [(b.asset, b.balance) for b in balance] == [("USDT", "100000")]
