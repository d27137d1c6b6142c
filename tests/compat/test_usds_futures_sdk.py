"""binance-sdk-derivatives-trading-usds-futures 18.1.0 (the official SDK) against ``perpx serve``."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.server.harness import ServerProcess, Trader

from .conftest import BTC, cross
from .inbox import Inbox

sdk = pytest.importorskip("binance_sdk_derivatives_trading_usds_futures.derivatives_trading_usds_futures")
configuration = pytest.importorskip("binance_common.configuration")
errors = pytest.importorskip("binance_common.errors")


def client(server: ServerProcess, trader: Trader | None = None) -> Any:
    rest = configuration.ConfigurationRestAPI(
        api_key=trader.api_key if trader else "",
        api_secret=trader.secret if trader else "",
        base_path=server.base,
    )
    streams = configuration.ConfigurationWebSocketStreams(stream_url=f"ws://127.0.0.1:{server.port}")
    return sdk.DerivativesTradingUsdsFutures(config_rest_api=rest, config_ws_streams=streams)


def test_sync_rest_market_data(server: ServerProcess) -> None:
    api = client(server).rest_api

    server_time = api.check_server_time().data().server_time
    symbols = [s.symbol for s in api.exchange_information().data().symbols]
    book = api.order_book(symbol=BTC, limit=5).data()
    marks = api.mark_price_kline_candlestick_data(symbol=BTC, interval="1m", limit=5).data()

    assert abs(server_time - time.time() * 1000) < 60_000
    assert BTC in symbols
    assert book.last_update_id is not None
    assert marks and float(marks[-1][4]) > 0


def test_sync_rest_order_cycle(server: ServerProcess) -> None:
    api = client(server, server.trader("sdk-orders")).rest_api

    checked = api.test_order(
        symbol=BTC, side="BUY", type="LIMIT", quantity=0.01, price=50000, time_in_force="GTC"
    )
    placed = api.new_order(
        symbol=BTC, side="BUY", type="LIMIT", quantity=0.01, price=50000, time_in_force="GTC"
    ).data()
    queried = api.query_order(symbol=BTC, order_id=placed.order_id).data()
    canceled = api.cancel_order(symbol=BTC, order_id=placed.order_id).data()

    assert checked.status == 200
    assert (placed.status, queried.status, canceled.status) == ("NEW", "NEW", "CANCELED")


def test_errors_raise_the_sdks_error_classes(server: ServerProcess) -> None:
    api = client(server, server.trader("sdk-errors")).rest_api

    with pytest.raises(errors.BadRequestError) as precision:
        api.new_order(symbol=BTC, side="BUY", type="LIMIT", quantity=0.0015, price=50000, time_in_force="GTC")
    with pytest.raises(errors.BadRequestError) as algo:
        api.new_order(symbol=BTC, side="SELL", type="STOP_MARKET", quantity=0.01)

    # the SDK's error carries Binance's code in ``status_code`` and its msg in ``error_message``
    assert precision.value.status_code == -1111 and "quantityPrecision" in precision.value.error_message
    assert algo.value.status_code == -4120


def test_websocket_market_stream_and_user_stream_on_private_stream(server: ServerProcess) -> None:
    trader = server.trader("sdk-ws")
    venue = client(server, trader)
    listen_key = venue.rest_api.start_user_data_stream().data().listen_key
    inbox = Inbox()

    async def run() -> None:
        connection = await venue.websocket_streams.create_connection()
        try:
            trades = await connection.aggregate_trade_streams(symbol="btcusdt")
            trades.on("message", inbox.put)
            user = await connection.user_data(listen_key)
            user.on("message", inbox.put)
            await asyncio.sleep(0.5)
            await asyncio.to_thread(cross, server, trader)
            fill = await asyncio.to_thread(inbox.wait_for, lambda m: _is_fill(_inner(m)))
            trade = await asyncio.to_thread(
                inbox.wait_for, lambda m: getattr(_inner(m), "e", None) == "aggTrade"
            )
            assert (fill.actual_instance.o.s, fill.actual_instance.o.X) == (BTC, "FILLED")
            assert float(trade.p) == 60000
        finally:
            await connection.close_connection(close_session=True)

    asyncio.run(run())


def _inner(message: Any) -> Any:
    """The event a message of the SDK wraps (user stream events come as a one-of wrapper)."""
    return getattr(message, "actual_instance", None) or message


def _is_fill(event: Any) -> bool:
    return type(event).__name__ == "OrderTradeUpdate" and event.o.x == "TRADE"
