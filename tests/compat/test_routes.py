"""The routes issue 18 added, in process: their Binance fields, weights and codes."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from perpx.engine.values import AccountId, MarketId
from perpx.server.countdowns import COUNTDOWNS_FILE, CountdownFileError
from perpx.server.errors import ApiError
from perpx.server.wire import to_lots
from tests.server.harness import Trader
from tests.server.inprocess import InProcessVenue, in_process_venue

BTC = "BTCUSDT"


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessVenue]:
    with in_process_venue(tmp_path_factory.mktemp("compat-routes") / "data") as venue:
        venue.mark(BTC, "60000")
        venue.mark("ETHUSDT", "3000")
        yield venue


def limit(side: str, qty: str, price: str) -> dict[str, Any]:
    return {
        "symbol": BTC,
        "side": side,
        "type": "LIMIT",
        "quantity": qty,
        "price": price,
        "timeInForce": "GTC",
    }


def open_orders(venue: InProcessVenue, trader: Trader) -> list[dict[str, Any]]:
    orders: list[dict[str, Any]] = venue.ok("GET", "/fapi/v1/openOrders", trader, {"symbol": BTC})
    return orders


# ---------------------------------------------------------------------- order/test


def test_test_order_that_would_be_accepted_answers_empty_and_places_nothing(venue: InProcessVenue) -> None:
    trader = venue.trader("dry-ok")

    answer = venue.ok("POST", "/fapi/v1/order/test", trader, limit("BUY", "0.01", "59000"))

    assert answer == {}
    assert open_orders(venue, trader) == []


@pytest.mark.parametrize(
    ("params", "code"),
    [
        (limit("BUY", "0.0015", "59000"), -1111),
        (limit("BUY", "0.01", "59000.05"), -4014),
        ({**limit("BUY", "0.01", "59000"), "type": "STOP_MARKET", "stopPrice": "58000"}, -4120),
        (limit("BUY", "0.001", "59000"), -4164),
        ({**limit("BUY", "0.01", "59000"), "positionSide": "LONG"}, -4061),
    ],
)
def test_test_order_is_refused_with_the_order_routes_code(
    venue: InProcessVenue, params: dict[str, Any], code: int
) -> None:
    trader = venue.trader(f"dry{code}")

    status, got, msg = venue.refused("POST", "/fapi/v1/order/test", trader, params)
    placed_status, placed_code, _ = venue.refused("POST", "/fapi/v1/order", trader, params)

    assert (status, got) == (400, code), msg
    assert (placed_status, placed_code) == (status, got)
    assert open_orders(venue, trader) == []


def test_quantity_with_too_many_decimals_is_1111_and_not_a_step_multiple_stays_4023(
    venue: InProcessVenue,
) -> None:
    coarse = dataclasses.replace(venue.ctx.specs[BTC], lot_size=Decimal("0.005"))

    with pytest.raises(ApiError) as too_fine:
        to_lots(coarse, Decimal("0.0001"), "quantity")
    with pytest.raises(ApiError) as off_step:
        to_lots(coarse, Decimal("0.007"), "quantity")

    assert too_fine.value.code == -1111
    assert off_step.value.code == -4023
    assert to_lots(coarse, Decimal("0.0100"), "quantity") == 2


def test_test_order_runs_the_margin_check_as_the_order_route_does(venue: InProcessVenue) -> None:
    # Arrange: 100 USDT at the default leverage cannot carry 1 BTC at 59,000
    trader = venue.trader("dry-margin", deposit="100")
    too_big = limit("BUY", "1", "59000")
    # Act
    status, code, msg = venue.refused("POST", "/fapi/v1/order/test", trader, too_big)
    placed_status, placed_code, _ = venue.refused("POST", "/fapi/v1/order", trader, too_big)
    market_status, market_code, _ = venue.refused(
        "POST",
        "/fapi/v1/order/test",
        trader,
        {"symbol": BTC, "side": "SELL", "type": "MARKET", "quantity": "1"},
    )
    # Assert: -2019 on both routes, a MARKET order too; a small order passes; nothing was placed
    assert (status, code) == (placed_status, placed_code) == (400, -2019), msg
    assert "Margin is insufficient" in msg
    assert (market_status, market_code) == (400, -2019)
    assert venue.ok("POST", "/fapi/v1/order/test", trader, limit("BUY", "0.01", "59000")) == {}
    assert open_orders(venue, trader) == []


def test_test_order_refuses_a_reduce_only_order_with_no_position_to_reduce(venue: InProcessVenue) -> None:
    trader = venue.trader("dry-reduce")

    status, code, msg = venue.refused(
        "POST", "/fapi/v1/order/test", trader, {**limit("SELL", "0.01", "61000"), "reduceOnly": "true"}
    )

    assert (status, code) == (400, -2022), msg


def test_test_order_on_a_market_the_account_never_traded_stores_no_position(venue: InProcessVenue) -> None:
    trader = venue.trader("dry-fresh")

    venue.ok("POST", "/fapi/v1/order/test", trader, {**limit("BUY", "0.1", "3000"), "symbol": "ETHUSDT"})

    held = venue.ctx.seq.engine.accounts[AccountId(trader.account_id)].positions
    assert "ETHUSDT" not in held


# ---------------------------------------------------------------------- algo ids and order ids


def test_a_conditional_item_of_batch_orders_is_refused_4120_and_the_rest_placed(
    venue: InProcessVenue,
) -> None:
    trader = venue.trader("batch-algo")
    items = [
        limit("BUY", "0.01", "50000"),
        {"symbol": BTC, "side": "SELL", "type": "STOP_MARKET", "quantity": "0.01", "stopPrice": "50000"},
    ]

    placed, refused = venue.ok("POST", "/fapi/v1/batchOrders", trader, {"batchOrders": json.dumps(items)})

    assert placed["status"] == "NEW" and placed["type"] == "LIMIT"
    assert refused["code"] == -4120 and "algoOrder" in refused["msg"]
    assert venue.ok("GET", "/fapi/v1/openAlgoOrders", trader, {"symbol": BTC}) == []
    venue.ok("DELETE", "/fapi/v1/allOpenOrders", trader, {"symbol": BTC})


def test_an_algo_id_names_no_order_and_an_order_id_names_no_algo_order(venue: InProcessVenue) -> None:
    # Arrange: an account whose only object is an algo order, and another whose only one is an order
    algo_owner = venue.trader("ids-algo")
    order_owner = venue.trader("ids-order")
    algo = venue.ok(
        "POST",
        "/fapi/v1/algoOrder",
        algo_owner,
        {
            "symbol": BTC,
            "side": "SELL",
            "type": "STOP_MARKET",
            "quantity": "0.01",
            "triggerPrice": "50000",
            "workingType": "MARK_PRICE",
        },
    )
    order = venue.ok("POST", "/fapi/v1/order", order_owner, limit("BUY", "0.01", "50000"))
    # Act: each id on the other kind's routes, by its own owner
    as_order = venue.refused("GET", "/fapi/v1/order", algo_owner, {"symbol": BTC, "orderId": algo["algoId"]})
    cancel_as_order = venue.refused(
        "DELETE", "/fapi/v1/order", algo_owner, {"symbol": BTC, "orderId": algo["algoId"]}
    )
    as_algo = venue.refused("GET", "/fapi/v1/algoOrder", order_owner, {"algoId": order["orderId"]})
    # Assert: unknown everywhere, and both objects untouched
    assert (as_order[1], cancel_as_order[1]) == (-2013, -2011)  # unknown order; cancel rejected
    assert as_algo[1] == -2013
    assert [a["algoId"] for a in venue.ok("GET", "/fapi/v1/openAlgoOrders", algo_owner, {"symbol": BTC})] == [
        algo["algoId"]
    ]
    assert [o["orderId"] for o in open_orders(venue, order_owner)] == [order["orderId"]]
    venue.ok("DELETE", "/fapi/v1/allOpenOrders", order_owner, {"symbol": BTC})
    venue.ok("DELETE", "/fapi/v1/algoOpenOrders", algo_owner, {"symbol": BTC})


# ---------------------------------------------------------------------- countdownCancelAll


def _poll(deadline_s: float, check: Any) -> Any:
    end = time.monotonic() + deadline_s
    while True:
        found = check()
        if found or time.monotonic() > end:
            return found
        time.sleep(0.02)


def test_countdown_that_runs_out_cancels_the_markets_orders(venue: InProcessVenue) -> None:
    trader = venue.trader("switch")
    venue.ok("POST", "/fapi/v1/order", trader, limit("BUY", "0.01", "50000"))
    venue.ok(
        "POST",
        "/fapi/v1/algoOrder",
        trader,
        {
            "symbol": BTC,
            "side": "SELL",
            "type": "STOP_MARKET",
            "quantity": "0.01",
            "triggerPrice": "50000",
            "workingType": "MARK_PRICE",
        },
    )

    armed = venue.ok("POST", "/fapi/v1/countdownCancelAll", trader, {"symbol": BTC, "countdownTime": "200"})
    gone = _poll(5, lambda: open_orders(venue, trader) == [])

    assert armed == {"symbol": BTC, "countdownTime": "200"}
    assert gone
    assert venue.ok("GET", "/fapi/v1/openAlgoOrders", trader, {"symbol": BTC}) == []
    assert venue.ctx.components.countdowns.running() == 0


def test_countdown_renewed_by_heartbeats_or_stopped_with_zero_cancels_nothing(venue: InProcessVenue) -> None:
    trader = venue.trader("heartbeat")
    venue.ok("POST", "/fapi/v1/order", trader, limit("BUY", "0.01", "50000"))

    for _ in range(4):
        venue.ok("POST", "/fapi/v1/countdownCancelAll", trader, {"symbol": BTC, "countdownTime": "400"})
        time.sleep(0.1)
    venue.ok("POST", "/fapi/v1/countdownCancelAll", trader, {"symbol": BTC, "countdownTime": "0"})
    time.sleep(0.6)

    assert len(open_orders(venue, trader)) == 1
    venue.ok("DELETE", "/fapi/v1/allOpenOrders", trader, {"symbol": BTC})


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"symbol": BTC}, -1102),
        ({"symbol": BTC, "countdownTime": "-1"}, -1102),
        ({"symbol": BTC, "countdownTime": "soon"}, -1102),
        ({"symbol": "NOPE", "countdownTime": "1000"}, -1121),
    ],
)
def test_countdown_with_bad_parameters_is_refused(
    venue: InProcessVenue, params: dict[str, Any], code: int
) -> None:
    trader = venue.trader(f"bad-countdown{code}")
    before = venue.ctx.components.countdowns.running()

    _, got, msg = venue.refused("POST", "/fapi/v1/countdownCancelAll", trader, params)

    assert got == code, msg
    assert venue.ctx.components.countdowns.running() == before


def test_a_countdown_survives_a_restart_and_one_run_out_while_down_cancels_at_start(tmp_path: Path) -> None:
    # Arrange: two countdowns armed, the venue stopped before the short one runs out
    data = tmp_path / "data"
    with in_process_venue(data) as first:
        first.mark(BTC, "60000")
        short, long_ = first.trader("down-short"), first.trader("down-long")
        for trader in (short, long_):
            first.ok("POST", "/fapi/v1/order", trader, limit("BUY", "0.01", "50000"))
        first.ok("POST", "/fapi/v1/countdownCancelAll", short, {"symbol": BTC, "countdownTime": "3000"})
        first.ok("POST", "/fapi/v1/countdownCancelAll", long_, {"symbol": BTC, "countdownTime": "600000"})
        countdowns = first.ctx.components.countdowns
        short_due = countdowns.deadline_ns(AccountId(short.account_id), MarketId(BTC))
        long_due = countdowns.deadline_ns(AccountId(long_.account_id), MarketId(BTC))
        assert short_due is not None and countdowns.running() == 2  # nothing fired while it ran
    # Act: the venue is down past the short deadline, then starts again on the same data
    time.sleep(max(0.0, (short_due - time.time_ns()) / 1e9) + 0.2)
    with in_process_venue(data) as second:
        gone = _poll(10, lambda: open_orders(second, short) == [])
        # Assert: the run-out countdown cancelled at start; the other kept its deadline and its order
        assert gone
        restored = second.ctx.components.countdowns
        assert (
            restored.running() == 1
            and restored.deadline_ns(AccountId(long_.account_id), MarketId(BTC)) == long_due
        )
        assert len(open_orders(second, long_)) == 1
        second.ok("POST", "/fapi/v1/countdownCancelAll", long_, {"symbol": BTC, "countdownTime": "0"})
    assert json.loads((data / COUNTDOWNS_FILE).read_text()) == {"deadlines": []}


def test_a_venue_does_not_start_on_a_countdowns_file_it_cannot_read(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with in_process_venue(data):
        pass
    (data / COUNTDOWNS_FILE).write_text("{not json")

    with pytest.raises(CountdownFileError, match="not a countdowns file"), in_process_venue(data):
        pass


# ---------------------------------------------------------------------- status routes


def test_rate_limit_order_lists_the_enforced_order_limits(venue: InProcessVenue) -> None:
    trader = venue.trader("limits")

    answer = venue.ok("GET", "/fapi/v1/rateLimit/order", trader)

    limits = venue.ctx.components.limits.limits
    assert answer == [
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": limits.orders_10s},
        {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": limits.orders_1m},
    ]


def test_api_trading_status_has_no_indicators(venue: InProcessVenue) -> None:
    trader = venue.trader("status")

    answer = venue.ok("GET", "/fapi/v1/apiTradingStatus", trader, {"symbol": BTC})

    assert answer["indicators"] == {} and isinstance(answer["updateTime"], int)


def test_force_orders_lists_only_the_callers_liquidation_orders(venue: InProcessVenue) -> None:
    maker = venue.trader("liq-maker", deposit="1000000")
    victim = venue.trader("liq-victim", deposit="100")
    bystander = venue.trader("liq-bystander")
    venue.ok("POST", "/fapi/v1/leverage", victim, {"symbol": BTC, "leverage": "100"})
    venue.ok("POST", "/fapi/v1/order", maker, limit("SELL", "0.1", "60000"))
    venue.ok("POST", "/fapi/v1/order", maker, limit("BUY", "0.5", "59000"))
    venue.ok(
        "POST", "/fapi/v1/order", victim, {"symbol": BTC, "side": "BUY", "type": "MARKET", "quantity": "0.1"}
    )

    venue.mark(BTC, "59100")
    liquidations = venue.ok("GET", "/fapi/v1/forceOrders", victim, {"symbol": BTC})
    venue.mark(BTC, "60000")
    venue.ok("DELETE", "/fapi/v1/allOpenOrders", maker, {"symbol": BTC})

    assert liquidations, "the victim was not liquidated"
    assert all(o["clientOrderId"].startswith("autoclose-") and o["side"] == "SELL" for o in liquidations)
    assert venue.ok("GET", "/fapi/v1/forceOrders", bystander) == []
    assert venue.ok("GET", "/fapi/v1/forceOrders", victim, {"autoCloseType": "ADL"}) == []
    assert venue.refused("GET", "/fapi/v1/forceOrders", victim, {"autoCloseType": "BOTH"})[1] == -1102


# ---------------------------------------------------------------------- price klines


@pytest.mark.parametrize(
    ("path", "name", "kind"),
    [
        ("/fapi/v1/markPriceKlines", "symbol", "mark"),
        ("/fapi/v1/indexPriceKlines", "pair", "index"),
        ("/fapi/v1/premiumIndexKlines", "symbol", "premium"),
    ],
)
def test_price_klines_follow_the_marks_set(venue: InProcessVenue, path: str, name: str, kind: str) -> None:
    venue.mark("ETHUSDT", "3000")
    venue.admin("POST", "/marks", {"symbol": "ETHUSDT", "markPrice": "3030", "indexPrice": "3000"})
    venue.mark("ETHUSDT", "3000")

    answer = venue.client.get(path, params={name: "ETHUSDT", "interval": "1m", "limit": "5"})

    assert answer.status_code == 200, answer.text
    rows = answer.json()
    last = rows[-1]
    assert len(last) == 12 and last[6] == last[0] + 59_999 and last[5] == "0"
    high = {"mark": "3030", "index": "3000", "premium": "0.01000000"}[kind]
    assert float(last[2]) == float(high) and last[8] >= 3


def test_price_klines_without_the_market_are_refused(venue: InProcessVenue) -> None:
    answer = venue.client.get("/fapi/v1/markPriceKlines", params={"symbol": "NOPE", "interval": "1m"})

    assert answer.status_code == 400 and answer.json()["code"] == -1121
