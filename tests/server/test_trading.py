"""Signed trading and account routes, in process: fields as ccxt reads them, Binance codes, read model.

One venue (manual clock, BTCUSDT marked at 60,000) serves the module; each test opens its own
accounts. ``mm`` helpers rest liquidity from a separate market-maker account.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from perpx.engine.values import AccountId
from perpx.server.errors import ApiError

from .harness import Trader
from .inprocess import InProcessVenue, in_process_venue

BTC = "BTCUSDT"


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessVenue]:
    with in_process_venue(tmp_path_factory.mktemp("trading") / "data") as venue:
        venue.mark(BTC, "60000")
        venue.mark("ETHUSDT", "3000")
        yield venue


def limit(side: str, qty: str, price: str, **extra: Any) -> dict[str, Any]:
    return {
        "symbol": BTC,
        "side": side,
        "type": "LIMIT",
        "quantity": qty,
        "price": price,
        "timeInForce": "GTC",
        **extra,
    }


def market(side: str, qty: str, **extra: Any) -> dict[str, Any]:
    return {
        "symbol": BTC,
        "side": side,
        "type": "MARKET",
        "quantity": qty,
        "newOrderRespType": "RESULT",
        **extra,
    }


def clear_book(venue: InProcessVenue) -> None:
    """Take every BTCUSDT order within the market take bound off the book (a new account trades them)."""
    venue.ok("POST", "/fapi/v1/order", venue.trader("sweep-asks"), market("BUY", "1"))
    venue.ok("POST", "/fapi/v1/order", venue.trader("sweep-bids"), market("SELL", "1"))


def place(venue: InProcessVenue, trader: Trader, params: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = venue.ok("POST", "/fapi/v1/order", trader, params)
    return answer


# ---------------------------------------------------------------------- new orders


def test_limit_order_answers_the_order_object_ccxt_reads(venue: InProcessVenue) -> None:
    # Arrange
    trader = venue.trader("limit")

    # Act
    order = place(venue, trader, limit("BUY", "0.002", "59000", newClientOrderId="x-my-id-1"))

    # Assert
    assert order["status"] == "NEW"
    assert order["clientOrderId"] == "x-my-id-1"
    assert (order["price"], order["origQty"], order["executedQty"], order["cumQuote"]) == (
        "59000",
        "0.002",
        "0",
        "0",
    )
    assert (order["type"], order["side"], order["timeInForce"], order["positionSide"]) == (
        "LIMIT",
        "BUY",
        "GTC",
        "BOTH",
    )
    assert isinstance(order["orderId"], int) and isinstance(order["updateTime"], int)
    assert order["reduceOnly"] is False and order["stopPrice"] == "0"


def test_order_without_client_id_gets_one_derived_from_its_id(venue: InProcessVenue) -> None:
    trader = venue.trader("noid")

    order = place(venue, trader, limit("BUY", "0.002", "59000"))

    assert order["clientOrderId"] == f"perpx-{order['orderId']}"
    found = venue.ok(
        "GET", "/fapi/v1/order", trader, {"symbol": BTC, "origClientOrderId": order["clientOrderId"]}
    )
    assert found["orderId"] == order["orderId"]


def test_market_order_with_result_answers_its_final_state(venue: InProcessVenue) -> None:
    # Arrange: 0.003 offered at 60,000 and 0.002 at 60,100
    mm, taker = venue.trader("mm-market"), venue.trader("taker-market")
    clear_book(venue)
    place(venue, mm, limit("SELL", "0.003", "60000"))
    place(venue, mm, limit("SELL", "0.002", "60100"))

    # Act
    order = place(venue, taker, market("BUY", "0.005"))

    # Assert: filled at both levels; the average is exact
    assert order["status"] == "FILLED"
    assert order["executedQty"] == "0.005"
    assert order["cumQuote"] == "300.2"
    assert order["avgPrice"] == "60040"


def test_market_order_without_enough_liquidity_expires_with_what_it_filled(venue: InProcessVenue) -> None:
    mm, taker = venue.trader("mm-thin"), venue.trader("taker-thin")
    clear_book(venue)
    place(venue, mm, limit("SELL", "0.002", "60000"))

    order = place(venue, taker, market("BUY", "0.005"))

    assert order["status"] == "EXPIRED"
    assert order["executedQty"] == "0.002"


def test_ack_answers_the_accepted_state(venue: InProcessVenue) -> None:
    mm, taker = venue.trader("mm-ack"), venue.trader("taker-ack")
    clear_book(venue)
    place(venue, mm, limit("SELL", "0.002", "60000"))

    order = place(venue, taker, {**market("BUY", "0.002"), "newOrderRespType": "ACK"})

    assert order["status"] == "NEW" and order["executedQty"] == "0"
    assert (
        venue.ok("GET", "/fapi/v1/order", taker, {"symbol": BTC, "orderId": order["orderId"]})["status"]
        == "FILLED"
    )


def test_post_only_that_would_take_is_refused_with_5022(venue: InProcessVenue) -> None:
    mm, taker = venue.trader("mm-gtx"), venue.trader("taker-gtx")
    clear_book(venue)
    place(venue, mm, limit("SELL", "0.002", "60000"))

    status, code, _ = venue.refused(
        "POST", "/fapi/v1/order", taker, limit("BUY", "0.002", "60000", timeInForce="GTX")
    )

    assert (status, code) == (400, -5022)


def test_ioc_remainder_expires_and_fok_that_cannot_fill_is_refused(venue: InProcessVenue) -> None:
    mm, taker = venue.trader("mm-ioc"), venue.trader("taker-ioc")
    clear_book(venue)
    place(venue, mm, limit("SELL", "0.002", "60000"))

    ioc = place(venue, taker, limit("BUY", "0.005", "60000", timeInForce="IOC", newOrderRespType="RESULT"))
    _, fok_code, _ = venue.refused(
        "POST", "/fapi/v1/order", taker, limit("BUY", "0.005", "60000", timeInForce="FOK")
    )

    assert (ioc["status"], ioc["executedQty"]) == ("EXPIRED", "0.002")
    assert fok_code == -5021


def test_reduce_only_without_a_position_is_refused_with_2022(venue: InProcessVenue) -> None:
    trader = venue.trader("ro")

    _, code, msg = venue.refused(
        "POST", "/fapi/v1/order", trader, limit("SELL", "0.002", "61000", reduceOnly="true")
    )

    assert code == -2022
    assert msg.startswith("ReduceOnly Order is rejected.")


@pytest.mark.parametrize(
    ("params", "code"),
    [
        (limit("BUY", "0.002", "59000.05"), -4014),
        (limit("BUY", "0.0025", "59000"), -1111),
        (limit("BUY", "NaN", "59000"), -1102),
        (limit("BUY", "-0.002", "59000"), -1102),
        ({**limit("BUY", "0.002", "59000"), "symbol": "NOPEUSDT"}, -1121),
        (limit("BUY", "0.002", "59000", positionSide="LONG"), -4061),
        (limit("BUY", "0.002", "59000", timeInForce="GTD", goodTillDate="1"), -1102),
        (limit("BUY", "0.002", "59000", timeInForce="GTD"), -1116),
        (limit("BUY", "0.002", "59000", priceMatch="OPPONENT"), -1102),
        (limit("BUY", "0.002", "59000", newClientOrderId="bad id!"), -1100),
        (limit("BUY", "0.002", "59000", newClientOrderId="perpx-7"), -4015),
        ({**market("BUY", "0.002"), "price": "60000"}, -1106),
        ({**limit("BUY", "0.002", "59000"), "type": "LIMIT_MAKER"}, -1116),
        (limit("BUY", "0.001", "59000"), -4164),
        (limit("BUY", "100", "59000"), -2019),
        (limit("BUY", "0", "59000"), -4003),
    ],
)
def test_bad_order_is_refused_with_binance_code(
    venue: InProcessVenue, params: dict[str, Any], code: int
) -> None:
    trader = venue.trader(f"bad{code}")
    before = venue.ok("GET", "/fapi/v1/allOrders", trader, {"symbol": BTC})

    status, got, msg = venue.refused("POST", "/fapi/v1/order", trader, params)

    assert (status, got) == (400, code), msg
    assert venue.ok("GET", "/fapi/v1/allOrders", trader, {"symbol": BTC}) == before


def test_insufficient_margin_keeps_binance_text_first(venue: InProcessVenue) -> None:
    trader = venue.trader("poor", deposit="10")

    _, code, msg = venue.refused("POST", "/fapi/v1/order", trader, limit("BUY", "0.01", "59000"))

    assert code == -2019 and msg.startswith("Margin is insufficient.")


# ---------------------------------------------------------------------- query, modify, cancel


def test_query_and_cancel_unknown_orders_answer_2013_and_2011(venue: InProcessVenue) -> None:
    trader = venue.trader("unknown")

    _, query_code, query_msg = venue.refused(
        "GET", "/fapi/v1/order", trader, {"symbol": BTC, "orderId": 999999}
    )
    _, cancel_code, cancel_msg = venue.refused(
        "DELETE", "/fapi/v1/order", trader, {"symbol": BTC, "orderId": 999999}
    )
    _, missing, _ = venue.refused("GET", "/fapi/v1/order", trader, {"symbol": BTC})

    assert (query_code, query_msg) == (-2013, "Order does not exist.")
    assert (cancel_code, cancel_msg) == (-2011, "Unknown order sent.")
    assert missing == -1102


def test_cancel_answers_canceled_and_a_second_cancel_is_2011(venue: InProcessVenue) -> None:
    trader = venue.trader("cancel")
    order = place(venue, trader, limit("BUY", "0.002", "59000", newClientOrderId="to-cancel"))

    canceled = venue.ok("DELETE", "/fapi/v1/order", trader, {"symbol": BTC, "origClientOrderId": "to-cancel"})
    _, again, _ = venue.refused(
        "DELETE", "/fapi/v1/order", trader, {"symbol": BTC, "orderId": order["orderId"]}
    )

    assert (canceled["orderId"], canceled["status"]) == (order["orderId"], "CANCELED")
    assert again == -2011
    assert (
        venue.ok("GET", "/fapi/v1/order", trader, {"symbol": BTC, "orderId": order["orderId"]})["status"]
        == "CANCELED"
    )


def test_another_accounts_order_is_unknown(venue: InProcessVenue) -> None:
    owner, other = venue.trader("owner"), venue.trader("other")
    order = place(venue, owner, limit("BUY", "0.002", "59000"))

    _, code, _ = venue.refused(
        "DELETE", "/fapi/v1/order", other, {"symbol": BTC, "orderId": order["orderId"]}
    )
    _, query, _ = venue.refused("GET", "/fapi/v1/order", other, {"symbol": BTC, "orderId": order["orderId"]})

    assert (code, query) == (-2011, -2013)


def test_modify_changes_price_and_quantity(venue: InProcessVenue) -> None:
    trader = venue.trader("modify")
    order = place(venue, trader, limit("BUY", "0.002", "59000"))

    changed = venue.ok(
        "PUT",
        "/fapi/v1/order",
        trader,
        {"symbol": BTC, "orderId": order["orderId"], "side": "BUY", "quantity": "0.003", "price": "59100"},
    )
    _, nothing, _ = venue.refused(
        "PUT",
        "/fapi/v1/order",
        trader,
        {"symbol": BTC, "orderId": order["orderId"], "side": "BUY", "quantity": "0.003", "price": "59100"},
    )
    _, unknown, _ = venue.refused(
        "PUT",
        "/fapi/v1/order",
        trader,
        {"symbol": BTC, "orderId": 424242, "side": "BUY", "quantity": "0.003", "price": "59100"},
    )

    assert (changed["price"], changed["origQty"], changed["status"]) == ("59100", "0.003", "NEW")
    assert (nothing, unknown) == (-5027, -2013)


def test_open_orders_open_order_and_cancel_all(venue: InProcessVenue) -> None:
    trader = venue.trader("open")
    first = place(venue, trader, limit("BUY", "0.002", "58000"))
    place(venue, trader, limit("BUY", "0.002", "58100"))

    listed = venue.ok("GET", "/fapi/v1/openOrders", trader, {"symbol": BTC})
    everywhere = venue.ok("GET", "/fapi/v1/openOrders", trader)
    one = venue.ok("GET", "/fapi/v1/openOrder", trader, {"symbol": BTC, "orderId": first["orderId"]})
    done = venue.ok("DELETE", "/fapi/v1/allOpenOrders", trader, {"symbol": BTC})
    _, closed, _ = venue.refused(
        "GET", "/fapi/v1/openOrder", trader, {"symbol": BTC, "orderId": first["orderId"]}
    )

    assert [o["price"] for o in listed] == ["58000", "58100"] and everywhere == listed
    assert one["orderId"] == first["orderId"]
    assert done == {"code": 200, "msg": "The operation of cancel all open order is done."}
    assert venue.ok("GET", "/fapi/v1/openOrders", trader, {"symbol": BTC}) == []
    assert closed == -2013


def test_batch_orders_answer_per_item(venue: InProcessVenue) -> None:
    trader = venue.trader("batch")
    items = [
        limit("BUY", "0.002", "58000"),
        limit("BUY", "0.002", "58000.05"),
        limit("BUY", "0.002", "58200"),
    ]

    answer = venue.ok("POST", "/fapi/v1/batchOrders", trader, {"batchOrders": json.dumps(items)})
    ids = json.dumps([answer[0]["orderId"], 987654])
    canceled = venue.ok("DELETE", "/fapi/v1/batchOrders", trader, {"symbol": BTC, "orderIdList": ids})
    _, too_many, _ = venue.refused(
        "POST", "/fapi/v1/batchOrders", trader, {"batchOrders": json.dumps(items * 2)}
    )

    assert [a.get("status") for a in answer] == ["NEW", None, "NEW"]
    assert answer[1]["code"] == -4014
    assert answer[0]["orderId"] < answer[2]["orderId"]
    assert canceled[0]["status"] == "CANCELED" and canceled[1]["code"] == -2011
    assert too_many == -1102


def test_batch_modify(venue: InProcessVenue) -> None:
    trader = venue.trader("batch-modify")
    order = place(venue, trader, limit("BUY", "0.002", "58000"))
    items = [
        {"symbol": BTC, "orderId": order["orderId"], "side": "BUY", "quantity": "0.002", "price": "58050"}
    ]

    answer = venue.ok("PUT", "/fapi/v1/batchOrders", trader, {"batchOrders": json.dumps(items)})

    assert answer[0]["price"] == "58050"


def test_all_orders_user_trades_and_income_after_a_round_trip(venue: InProcessVenue) -> None:
    # Arrange: buy 0.002 at 60,000 from mm, then sell it back to mm's bid at 60,500
    mm, trader = venue.trader("mm-trip"), venue.trader("trip")
    clear_book(venue)
    place(venue, mm, limit("SELL", "0.002", "60000"))
    place(venue, trader, market("BUY", "0.002"))
    place(venue, mm, limit("BUY", "0.002", "60500"))

    # Act
    place(venue, trader, market("SELL", "0.002", reduceOnly="true"))

    # Assert
    orders = venue.ok("GET", "/fapi/v1/allOrders", trader, {"symbol": BTC})
    trades = venue.ok("GET", "/fapi/v1/userTrades", trader, {"symbol": BTC})
    income = venue.ok("GET", "/fapi/v1/income", trader)
    pnl = venue.ok("GET", "/fapi/v1/income", trader, {"incomeType": "REALIZED_PNL"})
    assert [o["status"] for o in orders] == ["FILLED", "FILLED"]
    assert [(t["side"], t["price"], t["qty"], t["quoteQty"], t["maker"], t["buyer"]) for t in trades] == [
        ("BUY", "60000", "0.002", "120", False, True),
        ("SELL", "60500", "0.002", "121", False, False),
    ]
    assert trades[0]["commission"] == "0.06" and trades[0]["commissionAsset"] == "USDT"
    assert trades[1]["realizedPnl"] == "1"
    assert [i["incomeType"] for i in income] == ["TRANSFER", "COMMISSION", "REALIZED_PNL", "COMMISSION"]
    assert [i["income"] for i in pnl] == ["1"]
    assert (
        venue.ok("GET", "/fapi/v1/userTrades", trader, {"symbol": BTC, "fromId": trades[1]["id"]})
        == trades[1:]
    )
    _, no_symbol, _ = venue.refused("GET", "/fapi/v1/userTrades", trader)
    assert no_symbol == -1102


# ---------------------------------------------------------------------- account and positions


def test_account_balance_and_positions_of_a_short(venue: InProcessVenue) -> None:
    # Arrange: the trader sells 0.1 BTC at 60,000 (a short)
    mm, trader = venue.trader("mm-short"), venue.trader("short", deposit="1000")
    clear_book(venue)
    place(venue, mm, limit("BUY", "0.1", "60000"))

    # Act
    place(venue, trader, market("SELL", "0.1"))

    # Assert
    account = venue.ok("GET", "/fapi/v3/account", trader)
    usdt = account["assets"][0]
    assert usdt["asset"] == "USDT" and usdt["updateTime"] > 0
    assert Decimal(usdt["walletBalance"]) == Decimal("1000") - Decimal("3")  # 0.05% taker fee on 6,000
    assert usdt["initialMargin"] == "300"  # 6,000 at 20x
    assert [p["positionAmt"] for p in account["positions"]] == ["-0.1"]
    rows = venue.ok("GET", "/fapi/v3/positionRisk", trader)
    (row,) = rows
    assert (row["positionAmt"], row["notional"], row["entryPrice"], row["positionSide"]) == (
        "-0.1",
        "-6000",
        "60000",
        "BOTH",
    )
    assert Decimal(row["liquidationPrice"]) > Decimal("60000")
    assert row["adl"] >= 1 and row["marginAsset"] == "USDT"
    assert row["isolatedMargin"] == "0"
    assert Decimal(row["breakEvenPrice"]) < Decimal("60000")
    v2 = venue.ok("GET", "/fapi/v2/positionRisk", trader)
    assert {r["symbol"] for r in v2} == {"BTCUSDT", "ETHUSDT"}
    assert next(r for r in v2 if r["symbol"] == BTC)["marginType"] == "cross"
    balance = venue.ok("GET", "/fapi/v2/balance", trader)
    assert balance[0]["balance"] == usdt["walletBalance"]
    assert venue.ok("GET", "/fapi/v3/balance", trader) == balance
    assert venue.ok("GET", "/fapi/v2/account", trader)["feeTier"] == 0
    quantile = venue.ok("GET", "/fapi/v1/adlQuantile", trader)
    assert quantile[0]["symbol"] == BTC and quantile[0]["adlQuantile"]["SHORT"] == row["adl"]


def test_unfunded_account_reports_update_time_zero(venue: InProcessVenue) -> None:
    trader = venue.trader("empty", deposit=None)

    account = venue.ok("GET", "/fapi/v3/account", trader)

    assert account["assets"][0]["updateTime"] == 0  # ccxt skips the asset, as on Binance
    assert account["positions"] == []


def test_leverage_bracket_and_commission_rate(venue: InProcessVenue) -> None:
    trader = venue.trader("brackets")

    every = venue.ok("GET", "/fapi/v1/leverageBracket", trader)
    one = venue.ok("GET", "/fapi/v1/leverageBracket", trader, {"symbol": BTC})
    rates = venue.ok("GET", "/fapi/v1/commissionRate", trader, {"symbol": BTC})

    assert [b["symbol"] for b in every] == ["BTCUSDT", "ETHUSDT"]
    first, second = one["brackets"][:2]
    assert (
        first["initialLeverage"],
        first["notionalCap"],
        first["notionalFloor"],
        first["maintMarginRatio"],
    ) == (125, 50000, 0, 0.004)
    assert (second["notionalFloor"], second["maintMarginRatio"], second["cum"]) == (50000, 0.005, 50.0)
    assert rates == {"symbol": BTC, "makerCommissionRate": "0.0002", "takerCommissionRate": "0.0005"}


def test_leverage_margin_type_and_isolated_margin(venue: InProcessVenue) -> None:
    # Arrange
    mm, trader = venue.trader("mm-iso"), venue.trader("iso", deposit="1000")
    clear_book(venue)

    # Act
    leverage = venue.ok("POST", "/fapi/v1/leverage", trader, {"symbol": BTC, "leverage": 10})
    _, bad_leverage, _ = venue.refused("POST", "/fapi/v1/leverage", trader, {"symbol": BTC, "leverage": 200})
    isolated = venue.ok("POST", "/fapi/v1/marginType", trader, {"symbol": BTC, "marginType": "ISOLATED"})
    _, again, again_msg = venue.refused(
        "POST", "/fapi/v1/marginType", trader, {"symbol": BTC, "marginType": "ISOLATED"}
    )
    place(venue, mm, limit("SELL", "0.01", "60000"))
    place(venue, trader, market("BUY", "0.01"))
    added = venue.ok("POST", "/fapi/v1/positionMargin", trader, {"symbol": BTC, "amount": "25", "type": 1})
    venue.ok("POST", "/fapi/v1/positionMargin", trader, {"symbol": BTC, "amount": "5", "type": 2})
    _, too_much, _ = venue.refused(
        "POST", "/fapi/v1/positionMargin", trader, {"symbol": BTC, "amount": "5000", "type": 2}
    )
    history = venue.ok("GET", "/fapi/v1/positionMargin/history", trader, {"symbol": BTC})

    # Assert
    assert leverage == {"leverage": 10, "maxNotionalValue": "20000000", "symbol": BTC}
    assert bad_leverage == -4028
    assert isolated == {"code": 200, "msg": "success"}
    assert (again, again_msg) == (-4046, "No need to change margin type.")
    assert added == {"amount": 25.0, "code": 200, "msg": "Successfully modify position margin.", "type": 1}
    assert too_much == -2019
    assert [(h["type"], h["amount"]) for h in history] == [(2, "5"), (1, "25")]
    (row,) = venue.ok("GET", "/fapi/v3/positionRisk", trader, {"symbol": BTC})
    assert row["isolatedWallet"] == "79.7"  # 60 initial margin at 10x - 0.3 taker fee, + 25 - 5
    assert row["marginType"] == "isolated" and row["leverage"] == "10"


def test_one_way_mode_only(venue: InProcessVenue) -> None:
    trader = venue.trader("dual")

    dual = venue.ok("GET", "/fapi/v1/positionSide/dual", trader)
    _, hedge, _ = venue.refused("POST", "/fapi/v1/positionSide/dual", trader, {"dualSidePosition": "true"})
    _, same, _ = venue.refused("POST", "/fapi/v1/positionSide/dual", trader, {"dualSidePosition": "false"})
    multi = venue.ok("GET", "/fapi/v1/multiAssetsMargin", trader)

    assert dual == {"dualSidePosition": False} and multi == {"multiAssetsMargin": False}
    assert (hedge, same) == (-4061, -4059)


def test_the_insurance_fund_account_is_never_reachable_by_a_key(venue: InProcessVenue) -> None:
    key = venue.ctx.keys.create(AccountId(0), "fund", ("read", "trade"))
    fund = Trader(0, key.api_key, key.secret)

    status, code, _ = venue.refused("GET", "/fapi/v3/account", fund)
    status_order, _, _ = venue.refused("POST", "/fapi/v1/order", fund, limit("BUY", "0.002", "59000"))

    assert (status, code, status_order) == (401, -2015, 401)


def test_read_key_cannot_trade(venue: InProcessVenue) -> None:
    created = venue.admin("POST", "/accounts", {"name": "reader", "permissions": ["read"]}).json()
    reader = Trader(created["accountId"], created["apiKey"], created["apiSecret"])

    status, code, _ = venue.refused("POST", "/fapi/v1/order", reader, limit("BUY", "0.002", "59000"))

    assert (status, code) == (401, -2015)
    assert venue.ok("GET", "/fapi/v1/openOrders", reader) == []


# ---------------------------------------------------------------------- conditional orders


def algo(side: str, kind: str, trigger: str, qty: str = "0.002", **extra: Any) -> dict[str, Any]:
    return {
        "symbol": BTC,
        "side": side,
        "type": kind,
        "algoType": "CONDITIONAL",
        "triggerPrice": trigger,
        "quantity": qty,
        **extra,
    }


def test_algo_order_lifecycle_new_triggered_finished(venue: InProcessVenue) -> None:
    # Arrange: a stop-market buy at 60,200 (last trade price), liquidity at 60,300
    mm, trader = venue.trader("mm-algo"), venue.trader("algo")
    clear_book(venue)
    place(venue, mm, limit("SELL", "0.002", "60000"))
    place(venue, venue.trader("lift-algo"), market("BUY", "0.002"))  # last trade 60,000
    placed = venue.ok(
        "POST", "/fapi/v1/algoOrder", trader, algo("BUY", "STOP_MARKET", "60200", clientAlgoId="my-stop")
    )
    listed = venue.ok("GET", "/fapi/v1/openAlgoOrders", trader, {"symbol": BTC})
    place(venue, mm, limit("SELL", "0.002", "60300"))
    place(venue, mm, limit("SELL", "0.002", "60200"))

    # Act: a trade at 60,200 fires the stop; its market order lifts the rest
    place(venue, venue.trader("lift-algo-2"), market("BUY", "0.002"))

    # Assert
    after = venue.ok("GET", "/fapi/v1/algoOrder", trader, {"clientAlgoId": "my-stop"})
    assert (placed["algoStatus"], placed["triggerPrice"], placed["algoType"]) == (
        "NEW",
        "60200",
        "CONDITIONAL",
    )
    assert [a["algoId"] for a in listed] == [placed["algoId"]]
    assert after["algoStatus"] == "FINISHED" and after["actualOrderId"]
    child = venue.ok("GET", "/fapi/v1/order", trader, {"symbol": BTC, "orderId": int(after["actualOrderId"])})
    assert (child["status"], child["type"], child["origType"], child["stopPrice"]) == (
        "FILLED",
        "MARKET",
        "STOP_MARKET",
        "60200",
    )
    assert child["clientOrderId"] == "my-stop"
    assert venue.ok("GET", "/fapi/v1/openAlgoOrders", trader, {"symbol": BTC}) == []
    everything = venue.ok("GET", "/fapi/v1/allAlgoOrders", trader, {"symbol": BTC})
    assert [a["algoStatus"] for a in everything] == ["FINISHED"]


def test_algo_order_cancel_and_refusals(venue: InProcessVenue) -> None:
    trader = venue.trader("algo-cancel")
    clear_book(venue)
    place(venue, venue.trader("mm-ac"), limit("SELL", "0.002", "60000"))
    place(venue, venue.trader("lift-ac"), market("BUY", "0.002"))
    placed = venue.ok("POST", "/fapi/v1/algoOrder", trader, algo("SELL", "TAKE_PROFIT_MARKET", "61000"))

    canceled = venue.ok("DELETE", "/fapi/v1/algoOrder", trader, {"symbol": BTC, "algoId": placed["algoId"]})
    _, again, _ = venue.refused(
        "DELETE", "/fapi/v1/algoOrder", trader, {"symbol": BTC, "algoId": placed["algoId"]}
    )
    _, unknown, _ = venue.refused("GET", "/fapi/v1/algoOrder", trader, {"algoId": 777777})
    _, immediate, _ = venue.refused(
        "POST", "/fapi/v1/algoOrder", trader, algo("SELL", "STOP_MARKET", "61000")
    )
    _, not_algo, _ = venue.refused("POST", "/fapi/v1/algoOrder", trader, algo("SELL", "LIMIT", "61000"))

    assert canceled == {
        "algoId": placed["algoId"],
        "clientAlgoId": f"perpx-algo-{placed['algoId']}",
        "code": "200",
        "msg": "success",
    }
    assert (
        venue.ok("GET", "/fapi/v1/algoOrder", trader, {"algoId": placed["algoId"]})["algoStatus"]
        == "CANCELED"
    )
    assert (again, unknown, immediate, not_algo) == (-2011, -2013, -2021, -1116)


@pytest.mark.parametrize(
    "kind", ["STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"]
)
def test_conditional_type_on_the_order_endpoint_is_refused_4120_and_places_nothing(
    venue: InProcessVenue, kind: str
) -> None:
    trader = venue.trader(f"old-ccxt-{kind}")
    params = {
        "symbol": BTC,
        "side": "SELL",
        "type": kind,
        "stopPrice": "59000",
        "quantity": "0.002",
        "newClientOrderId": f"old-{kind}"[:36],
    }
    if kind == "TRAILING_STOP_MARKET":
        params = {**params, "stopPrice": "", "callbackRate": "1"}
    if kind in ("STOP", "TAKE_PROFIT"):
        params["price"] = "59000"

    status, code, msg = venue.refused("POST", "/fapi/v1/order", trader, params)

    assert (status, code) == (400, -4120), msg
    assert "/fapi/v1/algoOrder" in msg
    assert venue.ok("GET", "/fapi/v1/openAlgoOrders", trader) == []
    assert venue.ok("GET", "/fapi/v1/openOrders", trader) == []


def test_trailing_stop_callback_rate_is_a_percent(venue: InProcessVenue) -> None:
    trader = venue.trader("trailing")

    placed = venue.ok(
        "POST",
        "/fapi/v1/algoOrder",
        trader,
        {
            "symbol": BTC,
            "side": "SELL",
            "type": "TRAILING_STOP_MARKET",
            "algoType": "CONDITIONAL",
            "quantity": "0.002",
            "callbackRate": "1.5",
            "workingType": "MARK_PRICE",
        },
    )

    assert (placed["callbackRate"], placed["workingType"], placed["orderType"]) == (
        "1.5",
        "MARK_PRICE",
        "TRAILING_STOP_MARKET",
    )


def test_engine_refusal_helper_keeps_filter_text() -> None:
    from perpx.engine.codes import RejectCode
    from perpx.server.trading.params import refusal

    error = refusal(RejectCode.PRICE_FILTER, "Filter failure: LOT_SIZE (quantity below min_qty 10 lots)")

    assert isinstance(error, ApiError)
    assert error.msg.startswith("Filter failure: LOT_SIZE")


def test_data_file_is_under_the_data_directory(venue: InProcessVenue) -> None:
    assert (Path(venue.ctx.data_dir) / "readmodel.sqlite").exists()


def test_order_entry_and_cancel_run_on_the_lean_route_with_fastapis_bytes(venue: InProcessVenue) -> None:
    # Arrange
    from starlette.routing import Route

    from perpx.server.trading.order_route import ORDER_PATH, order_endpoint

    trader = venue.trader("lean")
    clear_book(venue)

    # Act
    placed = venue.signed("POST", "/fapi/v1/order", trader, limit("BUY", "0.002", "59000"))
    order_id = placed.json()["orderId"]
    canceled = venue.signed("DELETE", "/fapi/v1/order", trader, {"symbol": BTC, "orderId": order_id})
    refused = venue.signed("DELETE", "/fapi/v1/order", trader, {"symbol": BTC, "orderId": order_id})
    queried = venue.signed("GET", "/fapi/v1/order", trader, {"symbol": BTC, "orderId": order_id})

    # Assert: the route is matched first; its bytes are what FastAPI's JSONResponse would send
    first = venue.public_app.router.routes[0]
    assert isinstance(first, Route) and (first.path, first.endpoint) == (ORDER_PATH, order_endpoint)
    for answer in (placed, canceled):
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/json"
        fastapi_bytes = json.dumps(answer.json(), ensure_ascii=False, separators=(",", ":")).encode()
        assert answer.content == fastapi_bytes
        assert "x-mbx-used-weight-1m" in answer.headers
    assert canceled.json()["status"] == "CANCELED"
    assert (refused.status_code, refused.json()) == (400, {"code": -2011, "msg": "Unknown order sent."})
    assert queried.status_code == 200 and queried.json()["status"] == "CANCELED"
