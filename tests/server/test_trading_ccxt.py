"""Unmodified ccxt 4.5.90 (``binanceusdm``) trading on a ``perpx serve`` child process.

The venue is the default manual-clock one with BTCUSDT marked at 60,000, except that ETHUSDT's
``min_qty`` is 0.01 (ten lots), so a LOT_SIZE filter failure can reach the server through ccxt
(which truncates amounts to the step but does not check the minimum).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import ccxt
import pytest

from .harness import MANUAL_CONFIG, ServerProcess

SYMBOL = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"


def _config() -> str:
    head, eth = MANUAL_CONFIG.split("[markets.ETHUSDT]")
    return head + "[markets.ETHUSDT]" + eth.replace('min_qty = "0.001"', 'min_qty = "0.01"', 1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("ccxt") / "data", config_text=_config()).start()
    try:
        for symbol, price in (("BTCUSDT", "60000"), ("ETHUSDT", "3000")):
            answer = process.admin(
                "POST", "/marks", {"symbol": symbol, "markPrice": price, "indexPrice": price}
            )
            assert answer.status_code == 200, answer.text
        yield process
    finally:
        process.stop()


def client(server: ServerProcess, name: str, deposit: str = "100000") -> Any:
    exchange = server.ccxt(server.trader(name, deposit=deposit))
    exchange.load_markets()
    return exchange


def clear_book(server: ServerProcess) -> None:
    client(server, "sweep-asks").create_order(SYMBOL, "market", "buy", 1)
    client(server, "sweep-bids").create_order(SYMBOL, "market", "sell", 1)


def test_limit_market_and_fetches(server: ServerProcess) -> None:
    # Arrange
    clear_book(server)
    mm, trader = client(server, "mm"), client(server, "trader")
    ask = mm.create_order(SYMBOL, "limit", "sell", 0.01, 60000)

    # Act
    bought = trader.create_order(SYMBOL, "market", "buy", 0.004)
    resting = trader.create_order(SYMBOL, "limit", "buy", 0.002, 59000)

    # Assert
    assert ask["status"] == "open" and ask["clientOrderId"].startswith("x-")
    assert (bought["status"], bought["filled"], bought["average"], bought["cost"]) == (
        "closed",
        0.004,
        60000.0,
        240.0,
    )
    fetched = trader.fetch_order(resting["id"], SYMBOL)
    assert (fetched["status"], fetched["price"], fetched["amount"], fetched["side"]) == (
        "open",
        59000.0,
        0.002,
        "buy",
    )
    assert [o["id"] for o in trader.fetch_open_orders(SYMBOL)] == [resting["id"]]
    assert [o["id"] for o in trader.fetch_open_orders()] == [resting["id"]]
    trades = trader.fetch_my_trades(SYMBOL)
    assert [(t["side"], t["price"], t["amount"], t["takerOrMaker"]) for t in trades] == [
        ("buy", 60000.0, 0.004, "taker")
    ]
    assert trades[0]["fee"] == {"currency": "USDT", "cost": 0.12}
    assert [o["status"] for o in trader.fetch_orders(SYMBOL)] == ["closed", "open"]


def test_post_only_ioc_and_reduce_only(server: ServerProcess) -> None:
    clear_book(server)
    mm, trader = client(server, "mm-2"), client(server, "trader-2")
    mm.create_order(SYMBOL, "limit", "sell", 0.002, 60000)

    with pytest.raises(ccxt.OrderNotFillable):
        trader.create_order(SYMBOL, "limit", "buy", 0.002, 60000, {"postOnly": True})
    ioc = trader.create_order(SYMBOL, "limit", "buy", 0.004, 60000, {"timeInForce": "IOC"})
    reduce = trader.create_order(SYMBOL, "limit", "sell", 0.002, 61000, {"reduceOnly": True})
    post = trader.create_order(SYMBOL, "limit", "buy", 0.002, 59000, {"postOnly": True})

    assert (ioc["status"], ioc["filled"]) == ("expired", 0.002)
    assert (reduce["status"], reduce["reduceOnly"]) == ("open", True)
    assert (post["postOnly"], post["timeInForce"]) == (True, "PO")


def test_stop_market_and_take_profit_through_algo_orders(server: ServerProcess) -> None:
    # Arrange: a long 0.004 and a last trade at 60,000
    clear_book(server)
    mm, trader = client(server, "mm-3"), client(server, "trader-3")
    mm.create_order(SYMBOL, "limit", "sell", 0.004, 60000)
    trader.create_order(SYMBOL, "market", "buy", 0.004)

    # Act
    stop = trader.create_order(
        SYMBOL, "market", "sell", 0.004, None, {"stopLossPrice": 55000, "reduceOnly": True}
    )
    take = trader.create_order(
        SYMBOL, "market", "sell", 0.004, None, {"takeProfitPrice": 65000, "reduceOnly": True}
    )
    trigger = trader.create_order(
        SYMBOL, "limit", "sell", 0.004, 54000, {"triggerPrice": 55000, "reduceOnly": True}
    )

    # Assert
    assert (stop["status"], stop["triggerPrice"], stop["type"]) == ("open", 55000.0, "market")
    assert take["status"] == "open"
    assert trigger["price"] == 54000.0
    listed = trader.fetch_open_orders(SYMBOL, params={"trigger": True})
    assert sorted(o["id"] for o in listed) == sorted([stop["id"], take["id"], trigger["id"]])
    assert trader.fetch_open_orders(SYMBOL) == []
    assert trader.fetch_order(stop["id"], SYMBOL, {"trigger": True})["triggerPrice"] == 55000.0
    canceled = trader.cancel_order(take["id"], SYMBOL, {"trigger": True})
    assert canceled["id"] == take["id"]
    assert len(trader.fetch_open_orders(SYMBOL, params={"trigger": True})) == 2


def test_cancel_and_order_not_found(server: ServerProcess) -> None:
    trader = client(server, "trader-4")
    order = trader.create_order(SYMBOL, "limit", "buy", 0.002, 58000)

    canceled = trader.cancel_order(order["id"], SYMBOL)

    assert canceled["status"] == "canceled"
    with pytest.raises(ccxt.OrderNotFound):
        trader.cancel_order(order["id"], SYMBOL)
    with pytest.raises(ccxt.OrderNotFound):
        trader.fetch_order("987654", SYMBOL)
    assert trader.cancel_all_orders(SYMBOL) is not None


def test_balance_positions_leverage_and_margin_mode(server: ServerProcess) -> None:
    clear_book(server)
    mm, trader = client(server, "mm-5"), client(server, "trader-5", deposit="1000")
    mm.create_order(SYMBOL, "limit", "buy", 0.01, 60000)

    trader.set_leverage(10, SYMBOL)
    trader.create_order(SYMBOL, "market", "sell", 0.01)
    balance = trader.fetch_balance()
    positions = trader.fetch_positions()
    trader.set_margin_mode("isolated", ETH)

    assert balance["USDT"]["total"] == pytest.approx(1000 - 0.3)
    assert balance["USDT"]["used"] == pytest.approx(60)
    (short,) = positions
    assert (short["symbol"], short["side"], short["contracts"], short["entryPrice"]) == (
        SYMBOL,
        "short",
        0.01,
        60000.0,
    )
    assert short["marginMode"] == "cross" and short["liquidationPrice"] > 60000
    assert short["maintenanceMarginPercentage"] == 0.004
    with pytest.raises(ccxt.MarginModeAlreadySet):
        trader.set_margin_mode("isolated", ETH)
    with pytest.raises(ccxt.BadRequest):
        trader.set_leverage(110, ETH)  # ETHUSDT allows at most 100x: -4028


def test_error_classes(server: ServerProcess) -> None:
    trader = client(server, "trader-6", deposit="100")

    with pytest.raises(ccxt.InsufficientFunds):
        trader.create_order(SYMBOL, "limit", "buy", 0.1, 59000)
    with pytest.raises(ccxt.InvalidOrder):
        trader.create_order(SYMBOL, "limit", "buy", 0.001, 59000)  # -4164 min notional
    with pytest.raises(ccxt.InvalidOrder, match="LOT_SIZE"):
        trader.create_order(ETH, "limit", "buy", 0.005, 3000)  # below min_qty 0.01
    with pytest.raises(ccxt.InvalidOrder):
        trader.create_order(SYMBOL, "limit", "sell", 0.002, 61000, {"reduceOnly": True})  # -2022
