"""The WebSocket API (``/ws-fapi/v1``) with raw signed frames against a ``perpx serve`` child process.

Frames are signed as Binance documents (and ccxt signs them): HMAC-SHA256 over the parameters but
``signature``, sorted by name, ``name=value`` joined with ``&``. Every receive has a deadline.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from .harness import ServerProcess, Trader

BTC = "BTCUSDT"
RECV_TIMEOUT_S = 15.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("wsapi") / "data").start()
    try:
        answer = process.admin("POST", "/marks", {"symbol": BTC, "markPrice": "60000", "indexPrice": "60000"})
        assert answer.status_code == 200, answer.text
        yield process
    finally:
        process.stop()


@pytest.fixture
def ws(server: ServerProcess) -> Iterator[ClientConnection]:
    with connect(f"ws://127.0.0.1:{server.port}/ws-fapi/v1", open_timeout=RECV_TIMEOUT_S) as connection:
        yield connection


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def signed(
    trader: Trader, method: str, params: dict[str, Any], request_id: Any = 1, **changes: Any
) -> dict[str, Any]:
    """A request frame signed with ``trader``'s key (``changes`` replace signed parameters after signing)."""
    body = {**params, "apiKey": trader.api_key, "timestamp": int(time.time() * 1000)}
    payload = "&".join(f"{name}={_text(body[name])}" for name in sorted(body))
    body["signature"] = hmac.new(trader.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    body.update(changes)
    return {"id": request_id, "method": method, "params": body}


def ask(ws: ClientConnection, frame: Any) -> dict[str, Any]:
    ws.send(frame if isinstance(frame, (str, bytes)) else json.dumps(frame))
    answer: dict[str, Any] = json.loads(ws.recv(timeout=RECV_TIMEOUT_S))
    return answer


def ok(ws: ClientConnection, frame: dict[str, Any]) -> Any:
    answer = ask(ws, frame)
    assert answer["status"] == 200, answer
    assert answer["id"] == frame["id"]
    return answer["result"]


def refused(ws: ClientConnection, frame: Any) -> tuple[int, int, str]:
    answer = ask(ws, frame)
    assert "error" in answer, answer
    return answer["status"], answer["error"]["code"], answer["error"]["msg"]


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


# ---------------------------------------------------------------------- orders


def test_place_status_modify_and_cancel_answer_as_the_rest_routes(
    server: ServerProcess, ws: ClientConnection
) -> None:
    # Arrange
    trader = server.trader("ws-orders")

    # Act
    placed = ok(ws, signed(trader, "order.place", limit("BUY", "0.010", "50000", newClientOrderId="ws-1"), 7))
    status = ok(ws, signed(trader, "order.status", {"symbol": BTC, "orderId": placed["orderId"]}, "s"))
    modified = ok(
        ws,
        signed(
            trader,
            "order.modify",
            {
                "symbol": BTC,
                "orderId": placed["orderId"],
                "side": "BUY",
                "quantity": "0.005",
                "price": "50100",
            },
            3,
        ),
    )
    canceled = ok(ws, signed(trader, "order.cancel", {"symbol": BTC, "origClientOrderId": "ws-1"}, 4))
    rest = server.signed(
        "GET", "/fapi/v1/order", trader, {"symbol": BTC, "orderId": placed["orderId"]}
    ).json()

    # Assert
    assert placed["status"] == "NEW" and placed["clientOrderId"] == "ws-1"
    assert status["orderId"] == placed["orderId"] and status["origQty"] == "0.01"
    assert (modified["price"], modified["origQty"]) == ("50100", "0.005")
    assert canceled["status"] == "CANCELED"
    assert rest["status"] == "CANCELED" and rest["orderId"] == placed["orderId"]


def test_an_answer_reports_rate_limits_unless_told_not_to(
    server: ServerProcess, ws: ClientConnection
) -> None:
    # Arrange
    trader = server.trader("ws-limits")

    # Act
    reported = ask(ws, signed(trader, "order.place", limit("BUY", "0.003", "40000")))
    quiet = ask(
        ws, signed(trader, "order.place", {**limit("BUY", "0.003", "40000"), "returnRateLimits": False})
    )

    # Assert
    kinds = [(r["rateLimitType"], r["interval"]) for r in reported["rateLimits"]]
    assert kinds == [("REQUEST_WEIGHT", "MINUTE"), ("ORDERS", "SECOND"), ("ORDERS", "MINUTE")]
    assert reported["rateLimits"][2]["count"] >= 1
    assert quiet["status"] == 200 and "rateLimits" not in quiet


def test_a_fill_shows_in_balance_status_and_position(server: ServerProcess, ws: ClientConnection) -> None:
    # Arrange
    maker, taker = server.trader("ws-maker"), server.trader("ws-taker")
    ok(ws, signed(maker, "order.place", limit("SELL", "0.002", "60000")))

    # Act
    ok(
        ws,
        signed(taker, "order.place", {"symbol": BTC, "side": "BUY", "type": "MARKET", "quantity": "0.002"}),
    )
    balance = ok(ws, signed(taker, "account.balance", {}))
    status = ok(ws, signed(taker, "account.status", {}))
    positions = ok(ws, signed(taker, "account.position", {"symbol": BTC}))
    rest_balance = server.signed("GET", "/fapi/v2/balance", taker).json()

    # Assert
    assert balance == rest_balance
    assert [a["asset"] for a in status["assets"]] == [b["asset"] for b in balance]
    assert [(p["symbol"], p["positionAmt"]) for p in positions] == [(BTC, "0.002")]


def test_an_agent_key_is_held_to_its_policy(server: ServerProcess, ws: ClientConnection) -> None:
    # Arrange
    owner = server.trader("ws-agent-owner")
    created = server.admin(
        "POST",
        "/agents",
        {
            "accountId": owner.account_id,
            "name": "ws-agent",
            "scopes": ["read", "preview", "trade", "cancel"],
            "limits": {"maxOrderNotional": "1000"},
        },
    )
    assert created.status_code == 200, created.text
    agent = Trader(owner.account_id, created.json()["apiKey"], created.json()["apiSecret"])

    # Act
    status, code, msg = refused(ws, signed(agent, "order.place", limit("BUY", "0.100", "50000")))
    within = ok(ws, signed(agent, "order.place", limit("BUY", "0.010", "50000")))

    # Assert
    assert (status, code) == (400, -9301)
    assert "maxOrderNotional" in msg
    assert within["status"] == "NEW"


def test_a_conditional_type_is_sent_to_the_algo_routes(server: ServerProcess, ws: ClientConnection) -> None:
    trader = server.trader("ws-stop")

    status, code, msg = refused(
        ws,
        signed(
            trader, "order.place", {**limit("BUY", "0.001", "61000"), "type": "STOP", "stopPrice": "61000"}
        ),
    )

    assert (status, code) == (400, -4120) and "algoOrder" in msg


# ---------------------------------------------------------------------- refusals


def test_signing_refusals_carry_binances_codes(server: ServerProcess, ws: ClientConnection) -> None:
    # Arrange
    trader = server.trader("ws-signing")
    order = limit("BUY", "0.003", "40000")
    stranger = Trader(trader.account_id, "A" * 64, trader.secret)

    # Act
    wrong = refused(ws, signed(trader, "order.place", order, signature="0" * 64))
    unsigned = refused(
        ws,
        {
            "id": 1,
            "method": "order.place",
            "params": {**order, "apiKey": trader.api_key, "timestamp": int(time.time() * 1000)},
        },
    )
    no_key = refused(ws, {"id": 1, "method": "order.place", "params": order})
    unknown_key = refused(ws, signed(stranger, "order.place", order))
    stale = refused(ws, signed(trader, "order.place", order, timestamp=int(time.time() * 1000) - 600_000))
    tampered = refused(ws, signed(trader, "order.place", order, quantity="0.002"))

    # Assert
    assert wrong[1] == -1022 and unsigned[1] == -1102 and "signature" in unsigned[2]
    assert no_key[1] == -1102 and "apiKey" in no_key[2]
    assert unknown_key[:2] == (401, -2015)
    assert stale[1] == -1021
    assert tampered[1] == -1022


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", -9600),
        (b'{"id": 1, "method": "session.status"}', -9600),
        ("[1, 2, 3]", -9600),
        ('{"id": 1, "method": "order.place", "params": {"quantity": NaN}}', -9600),
        ('{"id": 1, "method": "order.place", "params": {"a": "1", "a": "2"}}', -1101),
        ('{"id": 1, "method": "order.place", "params": [], "extra": 1}', -1104),
        ('{"id": 1, "method": "order.explode", "params": {}}', -9601),
        ('{"id": 1, "method": 5, "params": {}}', -1102),
        ('{"id": {"a": 1}, "method": "order.place"}', -1102),
        ('{"id": 1, "method": "order.place", "params": "x"}', -1102),
        ('{"id": 1, "method": "order.place", "params": {"symbol": ["BTCUSDT"]}}', -1102),
    ],
)
def test_a_frame_that_cannot_be_read_gets_an_error_frame(
    ws: ClientConnection, frame: str | bytes, code: int
) -> None:
    status, got, msg = refused(ws, frame)

    assert (status, got) == (400, code), msg
    assert msg


def test_unknown_parameters_and_oversized_numbers_are_refused(
    server: ServerProcess, ws: ClientConnection
) -> None:
    trader = server.trader("ws-params")

    misspelt = refused(ws, signed(trader, "order.place", {**limit("BUY", "0.003", "40000"), "quantiy": "1"}))
    huge_frame = json.dumps(signed(trader, "order.place", limit("BUY", "1e400", "40000"))).replace(
        '"1e400"', "1e400"
    )
    huge = refused(ws, huge_frame)
    long_int = refused(ws, signed(trader, "order.place", limit("BUY", "9" * 60, "40000")))

    assert misspelt[1] == -1104 and "quantiy" in misspelt[2]
    assert huge[1] == -1102 and "quantity" in huge[2]
    assert long_int[1] == -1102


def test_session_logon_with_an_hmac_key_is_refused_and_status_answers(
    server: ServerProcess, ws: ClientConnection
) -> None:
    trader = server.trader("ws-session")

    logon = refused(ws, signed(trader, "session.logon", {}))
    status = ok(ws, {"id": "st", "method": "session.status"})

    assert logon[1] == -4056 and "Ed25519" in logon[2]
    assert status["apiKey"] is None and status["connectedSince"] > 0


def test_user_data_stream_methods_take_the_api_key_alone(server: ServerProcess, ws: ClientConnection) -> None:
    trader = server.trader("ws-stream")

    started = ok(ws, {"id": 1, "method": "userDataStream.start", "params": {"apiKey": trader.api_key}})
    pinged = ok(ws, {"id": 2, "method": "userDataStream.ping", "params": {"apiKey": trader.api_key}})
    stopped = ok(ws, {"id": 3, "method": "userDataStream.stop", "params": {"apiKey": trader.api_key}})

    assert started["listenKey"] == pinged["listenKey"] and len(started["listenKey"]) > 16
    assert stopped == {}


def test_random_frames_never_close_or_break_the_connection(
    server: ServerProcess, ws: ClientConnection
) -> None:
    # Arrange: frames built from pieces of real requests, random JSON and random bytes
    trader = server.trader("ws-fuzz")
    rng = random.Random(20261203)
    valid = signed(trader, "order.status", {"symbol": BTC, "orderId": 1})
    pieces: list[Any] = [None, True, 0, -1, 1e308, 2**70, "", "x" * 2000, [], {}, "0.001", "NaN", "-0", "1e9"]
    names = [
        "symbol",
        "side",
        "type",
        "quantity",
        "price",
        "orderId",
        "timestamp",
        "signature",
        "apiKey",
        "id",
    ]
    methods = ["order.place", "order.cancel", "order.status", "account.balance", "session.logon", "", "x"]
    frames: list[str | bytes] = []
    for _ in range(300):
        kind = rng.randrange(4)
        if kind == 0:
            frames.append(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))))
        elif kind == 1:
            text = json.dumps(valid)
            cut = rng.randrange(len(text))
            frames.append(
                text[:cut] + rng.choice(['"', "{", "}", ",", ":", "\\", "\u00e9", ""]) + text[cut + 1 :]
            )
        else:
            params = {rng.choice(names): rng.choice(pieces) for _ in range(rng.randrange(6))}
            if kind == 3:
                params = {**valid["params"], **params}
            frames.append(
                json.dumps(
                    {"id": rng.choice([*pieces[:4], "a"]), "method": rng.choice(methods), "params": params}
                )
            )

    # Act
    answers = [ask(ws, frame) for frame in frames]
    after = ask(ws, signed(trader, "account.balance", {}, "after"))

    # Assert
    assert all(a["status"] != 500 for a in answers), [a for a in answers if a["status"] == 500][:3]
    assert all(("error" in a) != ("result" in a) for a in answers)
    assert after["status"] == 200 and after["id"] == "after"


# ---------------------------------------------------------------------- metrics


def test_order_ack_and_connections_are_in_the_metrics(server: ServerProcess, ws: ClientConnection) -> None:
    # Arrange
    trader = server.trader("ws-metrics")

    # Act
    ok(ws, signed(trader, "order.place", limit("BUY", "0.003", "40000")))
    text = httpx.get(f"{server.admin_base}/metrics", timeout=10).text

    # Assert
    acks = [
        line for line in text.splitlines() if line.startswith('perpx_order_ack_seconds_count{interface="ws"}')
    ]
    assert acks and float(acks[0].split()[-1]) >= 1
    connections = [line for line in text.splitlines() if line.startswith("perpx_ws_connections ")]
    assert connections and float(connections[0].split()[-1]) >= 1


def _closed_count(server: ServerProcess) -> float:
    text = httpx.get(f"{server.admin_base}/metrics", timeout=10).text
    lines = [
        line for line in text.splitlines() if line.startswith('perpx_ws_disconnects_total{reason="closed"}')
    ]
    return float(lines[0].split()[-1]) if lines else 0.0


def test_a_closed_connection_is_counted_as_a_disconnect(server: ServerProcess) -> None:
    # Arrange
    before = _closed_count(server)

    # Act
    with connect(f"ws://127.0.0.1:{server.port}/ws-fapi/v1", open_timeout=RECV_TIMEOUT_S) as connection:
        ask(connection, {"id": 1, "method": "session.status"})
    deadline = time.monotonic() + RECV_TIMEOUT_S
    after = _closed_count(server)
    while after == before and time.monotonic() < deadline:
        time.sleep(0.05)
        after = _closed_count(server)

    # Assert
    assert after >= before + 1


def test_request_weight_and_order_limits_hold_over_the_websocket_api(tmp_path: Path) -> None:
    # Arrange: a venue allowing 30 weight a minute and 2 orders per 10 s
    limits = {
        "PERPX_RATE_LIMIT_WEIGHT_1M": "30",
        "PERPX_ORDER_LIMIT_10S": "2",
        "PERPX_RATE_LIMIT_BAN_AFTER": "1000",
    }
    process = ServerProcess(tmp_path / "data", env=limits).start()
    try:
        answer = process.admin("POST", "/marks", {"symbol": BTC, "markPrice": "60000", "indexPrice": "60000"})
        assert answer.status_code == 200, answer.text
        trader = process.trader("ws-limited")
        with connect(f"ws://127.0.0.1:{process.port}/ws-fapi/v1", open_timeout=RECV_TIMEOUT_S) as ws:
            # Act
            orders = [
                ask(ws, signed(trader, "order.place", limit("BUY", "0.003", "40000"), i)) for i in range(3)
            ]
            frames = [ask(ws, {"id": i, "method": "session.status"}) for i in range(20)]

        # Assert
        assert [o["status"] for o in orders] == [200, 200, 429]
        assert orders[2]["error"]["code"] == -1015
        refused_frames = [f for f in frames if f["status"] == 429]
        assert refused_frames and all(f["error"]["code"] == -1003 for f in refused_frames)
        assert frames[0]["status"] == 200
    finally:
        process.stop()
