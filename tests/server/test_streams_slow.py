"""Slow consumers: a client that never reads is disconnected, and a reader beside it misses nothing.

A real server (``tests/server/feedserver.py``: the real listeners, a driver making BTCUSDT trades
at 2,000 a second) streams ``btcusdt@trade`` to two clients. One reads everything; the other
never reads (a 4 KiB receive buffer, a websockets client that stops pulling from the socket when
4 messages wait, and no compression, so its frames fill the buffers in a fraction of a second
rather than in the seconds 10-byte deflated frames would take). The rule under test is the hub's (``streams.py``): a client whose socket
takes no frame for ``--stall-s`` is disconnected with close code 1008. Nothing here measures
time: the assertions are that the disconnect happens, that it reaches the slow client as a
1008 close once it reads, and that the reader gets every trade, in order, none twice.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from .harness import MANUAL_CONFIG, ServerProcess

TRADES = 12_000
RATE = 2_000
STALL_S = 2.0
QUEUE_FRAMES = 10_000
DROP_LINE = "dropping a slow WebSocket client"


@pytest.fixture
def feed(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(
        tmp_path / "data",
        config_text=MANUAL_CONFIG.replace('durability = "batch"', 'durability = "none"'),
        module="tests.server.feedserver",
        extra_args=(
            *("--trades", str(TRADES), "--rate", str(RATE)),
            *("--queue-frames", str(QUEUE_FRAMES), "--stall-s", str(STALL_S)),
        ),
    ).start()
    try:
        yield server
    finally:
        server.stop()


def confirm_subscription(client: ClientConnection) -> None:
    client.send('{"method":"LIST_SUBSCRIPTIONS","id":1}')
    assert json.loads(client.recv(timeout=30)) == {"result": ["btcusdt@trade"], "id": 1}


def small_window_socket(port: int) -> socket.socket:
    """A connected socket with a 4 KiB receive buffer (set before connecting: the window follows it)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    return sock


def drain_after_drop(server: ServerProcess, client: ClientConnection, outcome: dict[str, Any]) -> None:
    """Wait until the server logs the drop, then read ``client`` to its end; record how it ended."""
    deadline = time.monotonic() + 60
    while DROP_LINE not in server.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    outcome["dropped"] = DROP_LINE in server.log()
    frames = 0
    try:
        while True:
            client.recv(timeout=30)
            frames += 1
    except ConnectionClosed as closed:
        outcome["close"] = closed.rcvd.code if closed.rcvd is not None else None
    except TimeoutError:
        outcome["close"] = "still open"
    outcome["frames"] = frames


def test_a_client_that_never_reads_is_dropped_and_a_reader_gets_every_trade_in_order(
    feed: ServerProcess,
) -> None:
    # Arrange
    url = f"ws://127.0.0.1:{feed.port}/ws/btcusdt@trade"
    outcome: dict[str, Any] = {}
    trades: list[dict[str, Any]] = []
    with (
        connect(
            url, sock=small_window_socket(feed.port), max_queue=4, compression=None, open_timeout=30
        ) as slow,
        connect(url, open_timeout=30) as good,
    ):
        confirm_subscription(slow)
        confirm_subscription(good)
        watcher = threading.Thread(target=drain_after_drop, args=(feed, slow, outcome), daemon=True)
        watcher.start()
        # Act
        assert feed.admin("POST", "/marks", {"symbol": "BTCUSDT", "markPrice": "30000"}).status_code == 200
        while len(trades) < TRADES:
            trades.append(json.loads(good.recv(timeout=30)))
        watcher.join(90)
        good.send('{"method":"LIST_SUBSCRIPTIONS","id":2}')
        still_there = json.loads(good.recv(timeout=30))
    # Assert
    ids = [trade["t"] for trade in trades]
    assert ids == list(range(ids[0], ids[0] + TRADES))
    assert {trade["e"] for trade in trades} == {"trade"}
    assert still_there == {"result": ["btcusdt@trade"], "id": 2}
    assert outcome["dropped"], feed.log()[-2_000:]
    assert outcome["close"] == 1008, outcome
    assert outcome["frames"] < TRADES
    assert feed.log().count(DROP_LINE) == 1
