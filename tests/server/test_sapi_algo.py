"""Binance's futures algo API on an in-process venue with a manual clock: TWAP, VP, cancel, reads, rules."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from perpx.engine.commands import ParentStatus
from perpx.engine.values import ParentId
from perpx.sequencing import SequencerError

from .harness import MANUAL_CONFIG, Trader
from .inprocess import InProcessVenue, in_process_venue

TWAP = "/sapi/v1/algo/futures/newOrderTwap"
VP = "/sapi/v1/algo/futures/newOrderVp"
CANCEL = "/sapi/v1/algo/futures/order"
OPEN = "/sapi/v1/algo/futures/openOrders"
HISTORY = "/sapi/v1/algo/futures/historicalOrders"
SUB = "/sapi/v1/algo/futures/subOrders"
PERPX = "/perpx/v1/algo"


@pytest.fixture
def venue(tmp_path: Path) -> Iterator[InProcessVenue]:
    with in_process_venue(tmp_path / "data") as venue:
        venue.mark("BTCUSDT", "50000")
        yield venue


def _asks(venue: InProcessVenue, maker: Trader, levels: list[tuple[str, str]]) -> None:
    for price, qty in levels:
        venue.ok(
            "POST",
            "/fapi/v1/order",
            maker,
            {
                "symbol": "BTCUSDT",
                "side": "SELL",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "price": price,
                "quantity": qty,
            },
        )


def _advance(venue: InProcessVenue, seconds: int, step_s: int = 5) -> None:
    for _ in range(seconds // step_s):
        answer = venue.admin("POST", "/clock", {"advanceMs": step_s * 1000})
        assert answer.status_code == 200, answer.text


def _algo(venue: InProcessVenue, trader: Trader, algo_id: int) -> dict[str, Any]:
    for path in (OPEN, HISTORY):
        for order in venue.ok("GET", path, trader)["orders"]:
            if order["algoId"] == algo_id:
                return dict(order)
    raise AssertionError(f"algo {algo_id} is in neither openOrders nor historicalOrders")


def _twap(venue: InProcessVenue, trader: Trader, **extra: Any) -> dict[str, Any]:
    params = {"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.1", "duration": 300, **extra}
    return dict(venue.ok("POST", TWAP, trader, params))


def test_twap_runs_to_completion_on_the_manual_clock(venue: InProcessVenue) -> None:
    maker, taker = venue.trader("maker", "1000000"), venue.trader("taker")
    _asks(venue, maker, [("50000", "0.05"), ("50001", "0.05"), ("50002", "0.05")])

    answer = _twap(venue, taker, clientAlgoId="twap-1")
    assert answer["success"] is True and answer["code"] == 0 and answer["clientAlgoId"] == "twap-1"
    algo_id = answer["algoId"]
    first = _algo(venue, taker, algo_id)
    assert first["algoStatus"] == "WORKING" and first["algoType"] == "TWAP" and first["totalQty"] == "0.1"
    assert first["executedQty"] == "0.02"  # the first of five one-minute slices goes at once

    _advance(venue, 310)

    done = _algo(venue, taker, algo_id)
    assert done["algoStatus"] == "FINISHED", done
    assert done["executedQty"] == "0.1" and done["endTime"] >= done["bookTime"] + 240_000
    assert done["executedAmt"] == "5000.05"  # 0.05 at 50000 then 0.05 at 50001
    assert done["avgPrice"] == "50000.5"
    assert venue.ok("GET", OPEN, taker) == {"total": 0, "orders": []}

    subs = venue.ok("GET", SUB, taker, {"algoId": algo_id})
    ids = [s["clientOrderId"] for s in subs["subOrders"]]
    assert ids == [f"twap-1-c{n}" for n in range(5)]
    assert subs["total"] == 5 and subs["executedQty"] == "0.1"
    # each child takes at the far touch (IOC): one that meets the end of a level expires partly filled
    assert {(s["orderStatus"], s["timeInForce"]) for s in subs["subOrders"]} <= {
        ("FILLED", "IMMEDIATE_OR_CANCEL"),
        ("EXPIRED", "IMMEDIATE_OR_CANCEL"),
    }
    history = venue.ok("GET", "/fapi/v1/allOrders", taker, {"symbol": "BTCUSDT"})
    assert [o["clientOrderId"] for o in history] == ids  # children are ordinary orders of the account


def test_cancel_mid_way_stops_sending_children(venue: InProcessVenue) -> None:
    maker, taker = venue.trader("maker", "1000000"), venue.trader("taker")
    _asks(venue, maker, [("50000", "1")])
    algo_id = _twap(venue, taker, clientAlgoId="twap-cancel")["algoId"]
    _advance(venue, 65)  # the second slice has gone
    assert _algo(venue, taker, algo_id)["executedQty"] == "0.04"

    answer = venue.ok("DELETE", CANCEL, taker, {"algoId": algo_id})
    assert answer == {"algoId": algo_id, "success": True, "code": 0, "msg": "OK"}
    _advance(venue, 300)

    ended = _algo(venue, taker, algo_id)
    assert ended["algoStatus"] == "CANCELLED" and ended["executedQty"] == "0.04"
    assert ended["reason"] == "cancelled by the client"
    assert venue.ok("GET", SUB, taker, {"algoId": algo_id})["total"] == 2
    assert venue.refused("DELETE", CANCEL, taker, {"algoId": algo_id})[1] == -20124


def test_twap_that_cannot_trade_within_its_limit_expires_and_says_why(venue: InProcessVenue) -> None:
    maker, taker = venue.trader("maker", "1000000"), venue.trader("taker")
    _asks(venue, maker, [("50100", "1")])
    algo_id = _twap(venue, taker, limitPrice="50000", clientAlgoId="twap-limit")["algoId"]

    _advance(venue, 400)

    ended = _algo(venue, taker, algo_id)
    assert ended["algoStatus"] == "EXPIRED" and ended["executedQty"] == "0"
    assert "0 of 100 lots executed" in ended["reason"]


def test_volume_participation_follows_the_tape(venue: InProcessVenue) -> None:
    maker, taker, other = venue.trader("maker", "1000000"), venue.trader("taker"), venue.trader("other")
    _asks(venue, maker, [("50000", "5")])
    answer = venue.ok(
        "POST",
        VP,
        taker,
        {"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.3", "urgency": "HIGH", "clientAlgoId": "vp-1"},
    )
    algo_id = answer["algoId"]
    for _ in range(3):  # the market trades 0.5 each round; HIGH takes 20% of it
        venue.ok(
            "POST",
            "/fapi/v1/order",
            other,
            {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.5"},
        )
        _advance(venue, 10)
    algo = _algo(venue, taker, algo_id)
    assert algo["algoType"] == "VP" and algo["urgency"] == "HIGH"
    assert algo["executedQty"] != "0"
    executed = float(algo["executedQty"])
    assert executed <= 0.3
    assert venue.ok("GET", SUB, taker, {"algoId": algo_id})["subOrders"][0]["clientOrderId"] == "vp-1-c0"


def test_a_perpx_parent_document_runs_through_the_same_service(venue: InProcessVenue) -> None:
    maker, taker = venue.trader("maker", "1000000"), venue.trader("taker")
    _asks(venue, maker, [("50000", "1")])
    parent = {
        "algo": "twap",
        "market": "BTCUSDT",
        "side": "buy",
        "client_algo_id": "doc-1",
        "qty": "0.01",
        "duration_s": 60,
        "slice_interval_s": 20,
        "passiveness_bps": 0,
    }
    answer = venue.ok("POST", PERPX, taker, {"parent": json.dumps(parent)})
    _advance(venue, 70)
    algo = _algo(venue, taker, answer["algoId"])
    assert algo["algoType"] == "TWAP" and algo["algoStatus"] == "FINISHED" and algo["executedQty"] == "0.01"
    assert venue.ok("GET", SUB, taker, {"algoId": answer["algoId"]})["total"] == 3


@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        (TWAP, {"side": "BUY", "quantity": "0.1", "duration": 300}, -1102),
        (TWAP, {"symbol": "NOPE", "side": "BUY", "quantity": "0.1", "duration": 300}, -20121),
        (VP, {"symbol": "NOPE", "side": "BUY", "quantity": "1", "urgency": "LOW"}, -20121),
        (HISTORY, {"symbol": "NOPE"}, -20121),
        (TWAP, {"symbol": "BTCUSDT", "side": "UP", "quantity": "0.1", "duration": 300}, -1102),
        (TWAP, {"symbol": "BTCUSDT", "side": "BUY", "duration": 300}, -1102),
        (TWAP, {"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.1"}, -1102),
        (TWAP, {"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.1", "duration": 299}, -20130),
        (TWAP, {"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.1", "duration": 86401}, -20130),
        (TWAP, {"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.0001", "duration": 300}, -1111),
        (TWAP, {"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.01", "duration": 300}, -20204),
        # quantity * 60 / duration must be greater than minQty (0.001): 0.03 * 60 / 86400 is not
        (TWAP, {"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.03", "duration": 86400}, -20195),
        (TWAP, {"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.02", "duration": 1200}, -20195),  # equal
        # one minute's share above the largest market order (120): the duration is too short
        (TWAP, {"symbol": "BTCUSDT", "side": "BUY", "quantity": "700", "duration": 300}, -20194),
        (TWAP, {"symbol": "BTCUSDT", "side": "BUY", "quantity": "30", "duration": 300}, -20204),
        (
            TWAP,
            {"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.1", "duration": 300, "limitPrice": "1.05"},
            -4014,
        ),
        (
            TWAP,
            {"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.1", "duration": 300, "positionSide": "LONG"},
            -4061,
        ),
        (
            TWAP,
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "quantity": "0.1",
                "duration": 300,
                "clientAlgoId": "x" * 33,
            },
            -20130,
        ),
        (
            TWAP,
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "quantity": "0.1",
                "duration": 300,
                "clientAlgoId": "perpx-1",
            },
            -20130,
        ),
        (VP, {"symbol": "BTCUSDT", "side": "BUY", "quantity": "1", "urgency": "FAST"}, -1102),
        (VP, {"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.1", "urgency": "LOW"}, -20204),
        (CANCEL, {}, -1102),
        (CANCEL, {"algoId": 999}, -20124),
        (SUB, {"algoId": 999}, -20124),
        (PERPX, {}, -1102),
        (PERPX, {"parent": "{"}, -9502),
        (
            PERPX,
            {
                "parent": json.dumps(
                    {
                        "algo": "twap",
                        "market": "BTCUSDT",
                        "side": "buy",
                        "client_algo_id": "a",
                        "qty": "1",
                        "duration_s": 60,
                        "limit_prce": "1",
                    }
                )
            },
            -9502,
        ),
        (
            PERPX,
            {
                "parent": json.dumps(
                    {
                        "algo": "pov",
                        "market": "NOPE",
                        "side": "buy",
                        "client_algo_id": "a",
                        "qty": "1",
                        "pov_target_bps": 100,
                    }
                )
            },
            -20121,
        ),
    ],
)
def test_bad_parameters_get_binance_codes(
    venue: InProcessVenue, path: str, params: dict[str, Any], code: int
) -> None:
    trader = venue.trader("taker")
    method = "DELETE" if path == CANCEL else "GET" if path in (SUB, HISTORY) else "POST"
    status, got, msg = venue.refused(method, path, trader, params)
    assert (status, got) == (400, code), msg
    assert msg


def test_a_twap_whose_minute_share_is_just_above_min_qty_is_accepted(venue: InProcessVenue) -> None:
    maker, taker = venue.trader("maker", "1000000"), venue.trader("taker")
    _asks(venue, maker, [("50000", "1")])

    answer = _twap(venue, taker, quantity="0.021", duration=1200)  # 21 lots * 60 > 1 lot * 1200

    assert answer["success"] is True


def test_a_client_algo_id_is_used_once_per_account(venue: InProcessVenue) -> None:
    maker, taker, other = venue.trader("maker", "1000000"), venue.trader("taker"), venue.trader("other")
    _asks(venue, maker, [("50000", "1")])
    _twap(venue, taker, clientAlgoId="same")
    assert (
        venue.refused(
            "POST",
            TWAP,
            taker,
            {"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.1", "duration": 300, "clientAlgoId": "same"},
        )[1]
        == -20132
    )
    assert _twap(venue, other, clientAlgoId="same")["success"] is True  # another account's ids are its own


def test_an_account_sees_and_cancels_only_its_own_algos(venue: InProcessVenue) -> None:
    maker, taker, other = venue.trader("maker", "1000000"), venue.trader("taker"), venue.trader("other")
    _asks(venue, maker, [("50000", "1")])
    algo_id = _twap(venue, taker)["algoId"]
    assert venue.ok("GET", OPEN, other)["total"] == 0
    assert venue.refused("DELETE", CANCEL, other, {"algoId": algo_id})[1] == -20124
    assert venue.refused("GET", SUB, other, {"algoId": algo_id})[1] == -20124
    mine = venue.ok("GET", OPEN, taker)["orders"]
    assert [o["algoId"] for o in mine] == [algo_id] and mine[0]["clientAlgoId"] == f"perpx-sapi-{algo_id}"


def test_an_agent_parent_is_checked_whole_against_its_limits(venue: InProcessVenue) -> None:
    maker, taker = venue.trader("maker", "1000000"), venue.trader("taker")
    _asks(venue, maker, [("50000", "1")])
    made = venue.admin(
        "POST",
        "/agents",
        {
            "accountId": taker.account_id,
            "name": "bot",
            "scopes": ["read", "trade", "algo"],
            "limits": {"maxOrderNotional": "4000"},
        },
    )
    assert made.status_code == 200, made.text
    agent = Trader(taker.account_id, made.json()["apiKey"], made.json()["apiSecret"])

    _status, code, msg = venue.refused(
        "POST", TWAP, agent, {"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.1", "duration": 300}
    )
    assert (
        code == -9301 and "maxOrderNotional" in msg and "4000" in msg
    )  # 0.1 x 50000 > 4000, though no child would be
    assert _twap(venue, agent, quantity="0.07")["success"] is True


def test_an_agent_without_the_algo_scope_cannot_start_one(venue: InProcessVenue) -> None:
    taker = venue.trader("taker")
    made = venue.admin(
        "POST", "/agents", {"accountId": taker.account_id, "name": "bot", "scopes": ["read", "trade"]}
    )
    assert made.status_code == 200, made.text
    agent = Trader(taker.account_id, made.json()["apiKey"], made.json()["apiSecret"])
    assert (
        venue.refused(
            "POST", TWAP, agent, {"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.1", "duration": 300}
        )[1]
        == -9304
    )


def test_killing_an_agent_cancels_its_running_algos(venue: InProcessVenue) -> None:
    maker, taker = venue.trader("maker", "1000000"), venue.trader("taker")
    _asks(venue, maker, [("50000", "1")])
    made = venue.admin(
        "POST", "/agents", {"accountId": taker.account_id, "name": "bot", "scopes": ["read", "trade", "algo"]}
    )
    agent = Trader(taker.account_id, made.json()["apiKey"], made.json()["apiSecret"])
    algo_id = _twap(venue, agent)["algoId"]
    # the first slice goes on the service's first turn, which runs beside the next request
    deadline = time.monotonic() + 10
    while _algo(venue, agent, algo_id)["executedQty"] != "0.02" and time.monotonic() < deadline:
        time.sleep(0.05)

    killed = venue.admin("POST", f"/agents/{made.json()['agentId']}/kill", {"on": True})
    assert killed.status_code == 200, killed.text
    _advance(venue, 120)

    ended = _algo(venue, agent, algo_id)
    assert ended["algoStatus"] == "CANCELLED" and ended["executedQty"] == "0.02"
    assert "killed" in ended["reason"]


@pytest.mark.timeout(60)
def test_the_user_stream_tells_a_parents_progress_and_end(venue: InProcessVenue) -> None:
    maker, taker = venue.trader("maker", "1000000"), venue.trader("taker")
    _asks(venue, maker, [("50000", "1")])
    key = venue.client.post("/fapi/v1/listenKey", headers={"X-MBX-APIKEY": taker.api_key}).json()["listenKey"]
    with venue.client.websocket_connect(f"/private/ws?listenKey={key}") as ws:
        algo_id = _twap(venue, taker, clientAlgoId="streamed")["algoId"]
        venue.ok("DELETE", CANCEL, taker, {"algoId": algo_id})
        _advance(venue, 5)
        updates: list[dict[str, Any]] = []
        children: list[str] = []
        for _ in range(30):  # the child's order and account events interleave with the algo's
            message = ws.receive_json()
            if message["e"] == "ORDER_TRADE_UPDATE":
                children.append(message["o"]["c"])
            if message["e"] == "PERPX_ALGO_UPDATE":
                updates.append(message["a"])
                if message["a"]["algoStatus"] != "WORKING":
                    break

    assert updates[0]["algoId"] == algo_id and updates[0]["clientAlgoId"] == "streamed"
    assert updates[-1]["algoStatus"] == "CANCELLED" and updates[-1]["executedQty"] == "0.02"
    assert "streamed-c0" in children


def test_a_parent_whose_children_are_refused_expires_with_the_venues_reason(venue: InProcessVenue) -> None:
    maker, poor = venue.trader("maker", "1000000"), venue.trader("poor", "10")
    _asks(venue, maker, [("50000", "1")])
    algo_id = _twap(venue, poor, clientAlgoId="no-margin")["algoId"]

    _advance(venue, 200)

    ended = _algo(venue, poor, algo_id)
    assert ended["algoStatus"] == "EXPIRED" and ended["executedQty"] == "0"
    assert "the venue refused its children" in ended["reason"] and "no-margin-c2 refused" in ended["reason"]
    assert "MARGIN_INSUFFICIENT Margin is insufficient" in ended["reason"]
    assert venue.ok("GET", SUB, poor, {"algoId": algo_id})["total"] == 0  # refused orders are never orders


@pytest.mark.timeout(60)
def test_on_a_wall_clock_venue_a_parent_runs_by_itself(tmp_path: Path) -> None:
    wall_config = MANUAL_CONFIG.replace('clock = "manual"', 'clock = "wall"')
    with in_process_venue(tmp_path / "wall", wall_config) as venue:
        venue.mark("BTCUSDT", "50000")
        maker, taker = venue.trader("maker", "1000000"), venue.trader("taker")
        _asks(venue, maker, [("50000", "1")])
        parent = {
            "algo": "twap",
            "market": "BTCUSDT",
            "side": "buy",
            "client_algo_id": "wall-1",
            "qty": "0.01",
            "duration_s": 2,
            "slice_interval_s": 1,
            "passiveness_bps": 0,
        }
        algo_id = venue.ok("POST", PERPX, taker, {"parent": json.dumps(parent)})["algoId"]
        deadline = time.monotonic() + 30
        algo = _algo(venue, taker, algo_id)
        while algo["algoStatus"] == "WORKING" and time.monotonic() < deadline:
            time.sleep(0.2)
            algo = _algo(venue, taker, algo_id)

    assert algo["algoStatus"] == "FINISHED" and algo["executedQty"] == "0.01"
    assert algo["endTime"] - algo["bookTime"] >= 1_000  # two slices, a second apart, on the venue's clock


def test_an_agent_order_beside_a_running_parent_counts_the_parents_unsent_remainder(
    venue: InProcessVenue,
) -> None:
    # Arrange: a parent of 5000 whose first slice (1000) filled; 4000 are still to be sent
    maker, taker = venue.trader("maker", "1000000"), venue.trader("taker")
    _asks(venue, maker, [("50000", "1")])
    made = venue.admin(
        "POST",
        "/agents",
        {
            "accountId": taker.account_id,
            "name": "bot",
            "scopes": ["read", "trade", "algo"],
            "limits": {"maxOpenNotional": "8000"},
        },
    )
    agent = Trader(taker.account_id, made.json()["apiKey"], made.json()["apiSecret"])
    assert _twap(venue, agent)["success"] is True
    bid = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "price": "40000"}

    # Act: a resting bid of 4000 would make 1000 + 4000 + 4000 = 9000
    _status, code, msg = venue.refused("POST", "/fapi/v1/order", agent, {**bid, "quantity": "0.1"})

    # Assert: refused as over the limit; a bid of 2000 (total 7000) is taken
    assert code == -9301 and "maxOpenNotional" in msg and "attempted 9000" in msg
    assert venue.ok("POST", "/fapi/v1/order", agent, {**bid, "quantity": "0.05"})["status"] == "NEW"


def test_two_agent_parents_cannot_together_pass_max_open_notional(venue: InProcessVenue) -> None:
    maker, taker = venue.trader("maker", "1000000"), venue.trader("taker")
    _asks(venue, maker, [("50000", "1")])
    made = venue.admin(
        "POST",
        "/agents",
        {
            "accountId": taker.account_id,
            "name": "bot",
            "scopes": ["read", "trade", "algo"],
            "limits": {"maxOpenNotional": "8000"},
        },
    )
    agent = Trader(taker.account_id, made.json()["apiKey"], made.json()["apiSecret"])
    assert _twap(venue, agent)["success"] is True  # 5000: its first slice (1000) is now a position

    _status, code, msg = venue.refused(
        "POST", TWAP, agent, {"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.1", "duration": 300}
    )

    # position 1000 + the first parent's unsent 4000 + this parent's 5000
    assert code == -9301 and "maxOpenNotional" in msg and "attempted 10000" in msg


def test_a_child_log_left_by_a_crash_during_creation_is_removed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with in_process_venue(data) as venue:
        venue.mark("BTCUSDT", "50000")
    orphan = data / "algos" / "1.childlog"
    orphan.write_text('{"type":"bound","parent":{"algo":"twap"')  # never registered, never answered

    with in_process_venue(data) as venue:
        maker, taker = venue.trader("maker", "1000000"), venue.trader("taker")
        _asks(venue, maker, [("50000", "1")])
        answer = _twap(venue, taker, clientAlgoId="after-crash")
        algo = _algo(venue, taker, answer["algoId"])

    assert answer["algoId"] == 1 and algo["executedQty"] == "0.02"
    assert '"after-crash"' in orphan.read_text()  # the file is the new parent's own log now


def test_a_parent_whose_log_is_corrupt_expires_and_its_resting_children_are_cancelled(tmp_path: Path) -> None:
    data = tmp_path / "data"
    parent = {
        "algo": "twap",
        "market": "BTCUSDT",
        "side": "buy",
        "client_algo_id": "passive-1",
        "qty": "0.1",
        "duration_s": 600,
        "passiveness_bps": 10_000,
    }
    with in_process_venue(data) as venue:
        venue.mark("BTCUSDT", "50000")
        maker, taker = venue.trader("maker", "1000000"), venue.trader("taker")
        _asks(venue, maker, [("50010", "1")])
        venue.ok(
            "POST",
            "/fapi/v1/order",
            maker,
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "price": "49990",
                "quantity": "1",
            },
        )
        algo_id = venue.ok("POST", PERPX, taker, {"parent": json.dumps(parent)})["algoId"]
        assert _algo(venue, taker, algo_id)["algoStatus"] == "WORKING"  # a query: after the first turn
        resting = venue.ok("GET", "/fapi/v1/openOrders", taker, {"symbol": "BTCUSDT"})
        assert [o["clientOrderId"] for o in resting] == ["passive-1-c0"]
    log_path = data / "algos" / f"{algo_id}.childlog"
    lines = log_path.read_bytes().split(b"\n")
    lines[1] = b"{corrupted by a disk}"
    log_path.write_bytes(b"\n".join(lines))

    with in_process_venue(data) as venue:
        ended = _algo(venue, taker, algo_id)
        still_open = venue.ok("GET", "/fapi/v1/openOrders", taker, {"symbol": "BTCUSDT"})

    assert ended["algoStatus"] == "EXPIRED" and "could not be resumed" in ended["reason"]
    assert still_open == []


def test_status_and_executed_quantity_are_the_engines_journaled_parent_row(venue: InProcessVenue) -> None:
    maker, taker = venue.trader("maker", "1000000"), venue.trader("taker")
    _asks(venue, maker, [("50000", "1")])
    algo_id = _twap(venue, taker, clientAlgoId="row-1")["algoId"]
    _advance(venue, 60)
    venue.ok("DELETE", CANCEL, taker, {"algoId": algo_id})

    row = venue.ctx.seq.engine.parents.rows[ParentId(algo_id)]
    algo = _algo(venue, taker, algo_id)
    assert (row.status, row.executed_lots, row.client_algo_id) == (ParentStatus.CANCELLED, 40, "row-1")
    assert (algo["algoStatus"], algo["executedQty"], algo["reason"]) == ("CANCELLED", "0.04", row.reason)
    children = venue.ok("GET", "/fapi/v1/allOrders", taker, {"symbol": "BTCUSDT"})
    assert len(children) == 2 and not venue.ctx.seq.engine.parents.children


def test_a_working_parent_whose_parameters_were_never_recorded_expires_at_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with in_process_venue(data) as venue:
        venue.mark("BTCUSDT", "50000")
        maker, taker = venue.trader("maker", "1000000"), venue.trader("taker")
        _asks(venue, maker, [("50000", "1")])
        algo_id = _twap(venue, taker, clientAlgoId="lost-params")["algoId"]
    (data / "algos" / "registry.jsonl").write_bytes(b"")  # as if the server died before the registry line

    with in_process_venue(data) as venue:
        row = venue.ctx.seq.engine.parents.rows[ParentId(algo_id)]
        assert venue.ok("GET", OPEN, taker)["total"] == 0

    assert (
        row.status is ParentStatus.EXPIRED
        and "parameters were recorded (it never sent a child)" in row.reason
    )
    assert not (data / "algos" / f"{algo_id}.childlog").exists()


def _sell(venue: InProcessVenue, maker: Trader, price: str, qty: str) -> None:
    venue.ok(
        "POST",
        "/fapi/v1/order",
        maker,
        {
            "symbol": "BTCUSDT",
            "side": "SELL",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "price": price,
            "quantity": qty,
        },
    )


@pytest.mark.parametrize("algo", ["twap", "vwap", "is"])
def test_each_scheduled_algorithm_runs_to_completion_through_the_venues_algo_api(
    venue: InProcessVenue, algo: str
) -> None:
    maker, taker = venue.trader("maker", "1000000"), venue.trader("taker")
    _asks(venue, maker, [("50000", "1")])
    parent = {
        "algo": algo,
        "market": "BTCUSDT",
        "side": "buy",
        "client_algo_id": f"every-{algo}",
        "qty": "0.05",
        "duration_s": 120,
        "slice_interval_s": 60,
        "passiveness_bps": 0,
        "urgency": "high",
    }

    algo_id = venue.ok("POST", PERPX, taker, {"parent": json.dumps(parent)})["algoId"]
    _advance(venue, 130)

    done = _algo(venue, taker, algo_id)
    assert (done["algoType"], done["algoStatus"], done["executedQty"]) == (algo.upper(), "FINISHED", "0.05")
    assert venue.ok("GET", SUB, taker, {"algoId": algo_id})["executedQty"] == "0.05"


def test_a_scaled_ladder_rests_its_levels_and_finishes_when_they_fill(venue: InProcessVenue) -> None:
    maker, taker = venue.trader("maker", "1000000"), venue.trader("taker")
    _asks(venue, maker, [("50010", "1")])
    parent = {
        "algo": "scaled",
        "market": "BTCUSDT",
        "side": "buy",
        "client_algo_id": "ladder-1",
        "qty": "0.3",
        "ladder_levels": 3,
        "ladder_start_price": "49990",
        "ladder_end_price": "49980",
    }
    algo_id = venue.ok("POST", PERPX, taker, {"parent": json.dumps(parent)})["algoId"]
    assert _algo(venue, taker, algo_id)["algoStatus"] == "WORKING"  # a query: after the first turn
    resting = venue.ok("GET", "/fapi/v1/openOrders", taker, {"symbol": "BTCUSDT"})
    assert sorted(o["price"] for o in resting) == ["49980", "49985", "49990"]

    _sell(venue, maker, "49980", "0.3")  # takes the whole ladder
    _advance(venue, 10)

    done = _algo(venue, taker, algo_id)
    assert (done["algoType"], done["algoStatus"], done["executedQty"]) == ("SCALED", "FINISHED", "0.3")


def test_an_iceberg_shows_its_display_size_and_refills_through_the_venues_algo_api(
    venue: InProcessVenue,
) -> None:
    maker, taker = venue.trader("maker", "1000000"), venue.trader("taker")
    _asks(venue, maker, [("50010", "1")])
    parent = {
        "algo": "iceberg",
        "market": "BTCUSDT",
        "side": "buy",
        "client_algo_id": "ice-1",
        "qty": "0.02",
        "display_qty": "0.01",
        "limit_price": "49990",
    }
    algo_id = venue.ok("POST", PERPX, taker, {"parent": json.dumps(parent)})["algoId"]
    assert _algo(venue, taker, algo_id)["algoStatus"] == "WORKING"  # a query: after the first turn
    shown = venue.ok("GET", "/fapi/v1/openOrders", taker, {"symbol": "BTCUSDT"})
    assert [o["origQty"] for o in shown] == ["0.01"]

    _sell(venue, maker, "49990", "0.01")
    _advance(venue, 10)
    _sell(venue, maker, "49990", "0.01")
    _advance(venue, 10)

    done = _algo(venue, taker, algo_id)
    assert (done["algoType"], done["algoStatus"], done["executedQty"]) == ("ICEBERG", "FINISHED", "0.02")
    assert venue.ok("GET", SUB, taker, {"algoId": algo_id})["total"] == 2


def test_a_registry_from_before_the_journaled_parents_still_opens(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with in_process_venue(data) as venue:
        venue.mark("BTCUSDT", "50000")
    (data / "algos" / "registry.jsonl").write_text(
        '{"type":"cancel_requested","algo_id":7,"ts_ms":1}\n{"type":"ended","algo_id":7,"status":"CANCELLED",'
        '"end_ms":2,"reason":"cancelled by the client"}\n'
    )

    with in_process_venue(data) as venue:
        maker, taker = venue.trader("maker", "1000000"), venue.trader("taker")
        _asks(venue, maker, [("50000", "1")])
        answer = _twap(venue, taker, clientAlgoId="after-upgrade")

    assert answer["success"] is True and answer["algoId"] == 1


def test_a_journal_that_cannot_take_a_create_or_a_cancel_answers_503_and_changes_nothing(
    venue: InProcessVenue, monkeypatch: pytest.MonkeyPatch
) -> None:
    maker, taker = venue.trader("maker", "1000000"), venue.trader("taker")
    _asks(venue, maker, [("50000", "1")])
    algo_id = _twap(venue, taker)["algoId"]
    core = venue.ctx.seq.core

    def refuse(command: object) -> object:
        raise SequencerError("the journal disk is full")

    monkeypatch.setattr(core, "apply_one", refuse)
    cancel = venue.signed("DELETE", CANCEL, taker, {"algoId": algo_id})
    create = venue.signed(
        "POST", TWAP, taker, {"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.1", "duration": 300}
    )
    monkeypatch.undo()

    for answer in (cancel, create):
        assert answer.status_code == 503 and answer.json()["code"] == -1001, answer.text
        assert "journal disk is full" in answer.json()["msg"]
    assert [o["algoId"] for o in venue.ok("GET", OPEN, taker)["orders"]] == [algo_id]
