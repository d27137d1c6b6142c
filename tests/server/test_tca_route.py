"""``GET /perpx/v1/tca``: the caller's own fills analysed on a running venue, refusals as Binance errors."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from .harness import MANUAL_CONFIG, ServerProcess

SYMBOL = "BTCUSDT"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("tca") / "data", config_text=MANUAL_CONFIG).start()
    try:
        marked = process.admin(
            "POST", "/marks", {"symbol": SYMBOL, "markPrice": "60000", "indexPrice": "60000"}
        )
        assert marked.status_code == 200, marked.text
        yield process
    finally:
        process.stop()


def test_tca_of_the_caller_s_buys_reports_what_they_filled_and_the_shortfall_identity(
    server: ServerProcess,
) -> None:
    # Arrange: asks at 60,000 and 60,100; the trader buys 0.003 then 0.004 at market
    maker, trader = server.trader("tca-maker"), server.trader("tca-buyer")
    for price in ("60000", "60100"):
        rested = server.signed(
            "POST",
            "/fapi/v1/order",
            maker,
            {
                "symbol": SYMBOL,
                "side": "SELL",
                "type": "LIMIT",
                "quantity": "0.005",
                "price": price,
                "timeInForce": "GTC",
            },
        )
        assert rested.status_code == 200, rested.text
    for qty in ("0.003", "0.004"):
        bought = server.signed(
            "POST",
            "/fapi/v1/order",
            trader,
            {"symbol": SYMBOL, "side": "BUY", "type": "MARKET", "quantity": qty},
        )
        assert bought.status_code == 200, bought.text
    # Act
    answer = server.signed("GET", "/perpx/v1/tca", trader, {"symbol": SYMBOL})
    # Assert: 0.005 at 60,000 and 0.002 at 60,100; the Perold parts add up to the total
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert Decimal(body["filled_qty"]) == Decimal("0.007")
    expected_avg = (Decimal("0.005") * 60000 + Decimal("0.002") * 60100) / Decimal("0.007")
    assert Decimal(body["avg_price"]) == expected_avg.quantize(Decimal(body["avg_price"]))
    parts = ("is_delay", "is_execution", "is_opportunity", "is_fees")
    assert sum(Decimal(body[p]) for p in parts) == Decimal(body["is_total"])
    assert Decimal(body["is_fees"]) > 0 and body["source"]["account"] == trader.account_id


def test_tca_refuses_a_bad_side_an_algo_and_an_account_without_fills(server: ServerProcess) -> None:
    idle = server.trader("tca-idle")
    bad_side = server.signed("GET", "/perpx/v1/tca", idle, {"side": "LONG"})
    algo = server.signed("GET", "/perpx/v1/tca", idle, {"algoId": "7"})
    nothing = server.signed("GET", "/perpx/v1/tca", idle, {"symbol": SYMBOL})
    assert (bad_side.status_code, bad_side.json()["code"]) == (400, -1102)
    assert (algo.status_code, algo.json()["code"]) == (400, -1102)
    assert "has no child orders of algo '7'" in algo.json()["msg"]
    assert nothing.status_code == 400 and "no fills" in nothing.json()["msg"]


def test_tca_of_an_algo_analyses_its_children_only(server: ServerProcess) -> None:
    # Arrange: asks at 61,000; the trader buys 0.002 and 0.003 as children of algo "rt-algo" and
    # 0.004 as an order of its own
    maker, trader = server.trader("tca-algo-maker"), server.trader("tca-algo-buyer")
    rested = server.signed(
        "POST",
        "/fapi/v1/order",
        maker,
        {
            "symbol": SYMBOL,
            "side": "SELL",
            "type": "LIMIT",
            "quantity": "0.01",
            "price": "61000",
            "timeInForce": "GTC",
        },
    )
    assert rested.status_code == 200, rested.text
    for client_id, qty in (("rt-algo-c0", "0.002"), ("rt-algo-c1", "0.003"), ("own-order-1", "0.004")):
        bought = server.signed(
            "POST",
            "/fapi/v1/order",
            trader,
            {
                "symbol": SYMBOL,
                "side": "BUY",
                "type": "MARKET",
                "quantity": qty,
                "newClientOrderId": client_id,
            },
        )
        assert bought.status_code == 200, bought.text
    # Act
    answer = server.signed("GET", "/perpx/v1/tca", trader, {"algoId": "rt-algo"})
    other = server.signed("GET", "/perpx/v1/tca", maker, {"algoId": "rt-algo"})
    mixed = server.signed("GET", "/perpx/v1/tca", trader, {"algoId": "rt-algo", "symbol": SYMBOL})
    # Assert
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert Decimal(body["filled_qty"]) == Decimal("0.005")  # not the 0.004 of its own order
    assert body["algo"] == {
        "client_algo_id": "rt-algo",
        "child_orders": 2,
        "children_logged": None,
        "done_reason": None,
    }
    assert body["source"]["qty"] == "the filled quantity (no child log)"
    assert (other.status_code, other.json()["code"]) == (400, -1102)
    assert "has no child orders of algo 'rt-algo'" in other.json()["msg"]
    assert (mixed.status_code, mixed.json()["code"]) == (400, -1102)
