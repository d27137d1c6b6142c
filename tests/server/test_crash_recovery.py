"""Rule: an order the client saw acknowledged survives a crash, and nothing the client did not send appears.

The server is killed with SIGKILL while clients are placing orders. After a
restart on the same data directory, every acknowledged order is there with its
id, and every order the venue holds is either acknowledged or was in flight
(sent, no answer) when the process died.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from tests.server.harness import ServerProcess, Trader

CLIENTS = 3


def _place_until_killed(
    server: ServerProcess,
    trader: Trader,
    client: int,
    acked: dict[str, int],
    in_flight: set[str],
    lock: threading.Lock,
    stop: threading.Event,
) -> None:
    n = 0
    while not stop.is_set():
        n += 1
        client_id = f"crash-{client}-{n}"
        price = str(58000 + (n % 50) * 10)
        with lock:
            in_flight.add(client_id)
        try:
            response = server.signed(
                "POST",
                "/fapi/v1/order",
                trader,
                {
                    "symbol": "BTCUSDT",
                    "side": "BUY",
                    "type": "LIMIT",
                    "timeInForce": "GTC",
                    "quantity": "0.002",
                    "price": price,
                    "newClientOrderId": client_id,
                },
            )
        except httpx.HTTPError:
            return  # the server died with this request in flight
        with lock:
            in_flight.discard(client_id)
            if response.status_code == 200:
                acked[client_id] = int(response.json()["orderId"])
            elif response.status_code != 400:
                return


def test_acknowledged_orders_survive_kill_9_and_nothing_else_appears(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data").start()
    try:
        marked = server.admin(
            "POST", "/marks", {"symbol": "BTCUSDT", "markPrice": "60000", "indexPrice": "60000"}
        )
        assert marked.status_code == 200, marked.text
        trader = server.trader("crash", deposit="10000000")
        acked: dict[str, int] = {}
        in_flight: set[str] = set()
        lock = threading.Lock()
        stop = threading.Event()
        threads = [
            threading.Thread(
                target=_place_until_killed, args=(server, trader, c, acked, in_flight, lock, stop)
            )
            for c in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        while len(acked) < 60 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.kill()
        stop.set()
        for thread in threads:
            thread.join(10)
        assert len(acked) >= 60, "the clients got too few acknowledgements before the kill"

        server.start()
        held: dict[str, int] = {}
        for _ in range(5):
            response = server.signed("GET", "/fapi/v1/openOrders", trader, {"symbol": "BTCUSDT"})
            assert response.status_code == 200, response.text
            held = {o["clientOrderId"]: int(o["orderId"]) for o in response.json()}
            break
        missing = {cid: oid for cid, oid in acked.items() if held.get(cid) != oid}
        assert missing == {}, f"acknowledged orders lost or changed by the crash: {missing}"
        unexplained = set(held) - set(acked) - in_flight
        assert unexplained == set(), (
            f"orders the client never saw acknowledged nor had in flight: {unexplained}"
        )
    finally:
        server.stop()
