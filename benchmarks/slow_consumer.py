"""How fast a WebSocket client that never reads is disconnected, and what a reader beside it receives.

    python benchmarks/slow_consumer.py                          # small-buffer client, 2,000 frames/s, 20 s
    python benchmarks/slow_consumer.py --client deflate --seconds 55

The server is ``tests/server/feedserver.py`` in its own process: the real listeners and stream hub
with ``perpx serve``'s bounds (10,000 queued frames, 5 s without the socket taking a frame), and a
sequencer driver making BTCUSDT trades at ``--rate``. Two clients subscribe to ``btcusdt@trade``:
a reader that takes every frame, and a client that never reads. ``small-buffer``: a 4 KiB receive
buffer and no compression, so its socket stops taking frames at once. ``deflate``: a default
websockets client (its library stops reading after 16 messages, but Linux keeps growing its
receive buffer while tiny deflated frames arrive), with its own keepalive pings off, so only the
server's rules can end it.

Reported: the reader's frames and rate, when the server logged the drop (seconds after the first
trade; ``None`` when it never logged one), and how the never-reading client's connection ended
once it finally reads (its frames before the end, the close code and reason). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.server.harness import MANUAL_CONFIG, ServerProcess  # noqa: E402

DROP_LINE = "dropping a slow WebSocket client"


def _never_reader(url: str, port: int, kind: str) -> ClientConnection:
    if kind == "small-buffer":
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port))
        return connect(url, sock=sock, compression=None, max_queue=4, legacy=True)
    return connect(url, ping_interval=None, legacy=True)


def run(kind: str, rate: int, seconds: float) -> dict[str, Any]:
    trades = int(rate * seconds)
    with tempfile.TemporaryDirectory(prefix="perpx-bench-slow-") as tmp:
        server = ServerProcess(
            Path(tmp) / "data",
            config_text=MANUAL_CONFIG.replace('durability = "batch"', 'durability = "none"'),
            module="tests.server.feedserver",
            extra_args=(
                "--trades",
                str(trades),
                "--rate",
                str(rate),
                "--queue-frames",
                "10000",
                "--stall-s",
                "5",
            ),
        ).start()
        url = f"ws://127.0.0.1:{server.port}/ws/btcusdt@trade"
        try:
            slow = _never_reader(url, server.port, kind)
            reader = connect(url, legacy=True)
            for client in (slow, reader):
                client.send('{"method":"LIST_SUBSCRIPTIONS","id":1}')
                client.recv(timeout=30)
            assert (
                server.admin("POST", "/marks", {"symbol": "BTCUSDT", "markPrice": "30000"}).status_code == 200
            )
            started = time.monotonic()
            received = 0
            dropped_after: float | None = None
            ids: list[int] = []
            while received < trades:
                ids.append(json.loads(reader.recv(timeout=60))["t"])
                received += 1
                if dropped_after is None and received % 200 == 0 and DROP_LINE in server.log():
                    dropped_after = round(time.monotonic() - started, 2)
            reader_seconds = time.monotonic() - started
            frames, close = 0, "still open"
            try:
                while True:
                    slow.recv(timeout=10)
                    frames += 1
            except ConnectionClosed as closed:
                close = (
                    f"{closed.rcvd.code} {closed.rcvd.reason}"
                    if closed.rcvd
                    else "closed without a close frame"
                )
            except TimeoutError:
                pass
            reader.close()
            slow.close()
        finally:
            server.stop()
        return {
            "client": kind,
            "offered_frames_per_s": rate,
            "reader_frames": received,
            "reader_in_order": ids == list(range(ids[0], ids[0] + len(ids))),
            "reader_frames_per_s": round(received / reader_seconds),
            "drop_logged_after_s": dropped_after,
            "drop_lines": [
                line.split(": ", 1)[-1] for line in server.log().splitlines() if DROP_LINE in line
            ],
            "never_reader_frames_before_end": frames,
            "never_reader_end": close,
        }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--client", choices=["small-buffer", "deflate"], default="small-buffer")
    parser.add_argument("--rate", type=int, default=2_000, help="trade frames per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the stream runs")
    args = parser.parse_args()
    print(json.dumps({"benchmark": "slow_consumer", **run(args.client, args.rate, args.seconds)}))


if __name__ == "__main__":
    main()
