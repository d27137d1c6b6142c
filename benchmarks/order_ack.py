"""Order-to-ack latency over REST, the WebSocket API and FIX: same server, same order, same run.

    python benchmarks/order_ack.py                        # 100 and 300 orders/s, 10 s per interface
    python benchmarks/order_ack.py --rates 100 --seconds 5 --ws-connections 4

The server runs as its own process (``perpx serve --fix-port``, durability "batch"). For each
rate, in this order: REST (``benchmarks/api.py``'s open-loop client, a signed
``POST /fapi/v1/order``), the WebSocket API (a signed ``order.place`` frame on ``/ws-fapi/v1``,
the i-th order on connection ``i mod --ws-connections``, latency from the scheduled send to the
answer frame with its id), then FIX (``benchmarks/fix.py``: NewOrderSingle to the first
ExecutionReport). Open loop on every interface: order *i* is sent at ``t0 + i / rate`` whatever
came back. Every interface sends the same order: an IOC LIMIT far from the book (journaled,
margined, matched against nothing, expired).

A WebSocket API connection answers its requests one at a time, in order; several connections
share the load as REST's connection pool does.

The baseline is REST, measured in the same run: each interface's median is reported as a ratio
to REST's median at the same rate. Prints a table and, last, one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from tests.server.harness import free_port  # noqa: E402

from api import _cpu_s, _run_rate, _setup, _start_server  # noqa: E402
from fix import _fix_rate  # noqa: E402


def _order_frame(key: str, secret: str, i: int) -> str:
    side = "BUY" if i % 2 == 0 else "SELL"
    params = {
        "apiKey": key,
        "newOrderRespType": "RESULT",
        "price": "57500" if side == "BUY" else "62500",
        "quantity": "0.002",
        "recvWindow": "10000",
        "side": side,
        "symbol": "BTCUSDT",
        "timeInForce": "IOC",
        "timestamp": str(int(time.time() * 1000)),
        "type": "LIMIT",
    }
    payload = "&".join(f"{name}={params[name]}" for name in sorted(params))
    params["signature"] = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return json.dumps({"id": i, "method": "order.place", "params": params})


async def _ws_rate(
    url: str, key: str, secret: str, rate: int, seconds: float, connections: int, server_pid: int
) -> dict[str, Any]:
    total = int(rate * seconds)
    sent_at: dict[int, float] = {}
    latencies_us: list[float] = []
    errors = 0
    done = asyncio.Event()
    cpu_before = _cpu_s(server_pid)
    sockets = [await asyncio.wait_for(connect(url, max_size=None), 10) for _ in range(connections)]

    async def read(ws: ClientConnection) -> None:
        nonlocal errors
        async for raw in ws:
            answer = json.loads(raw)
            scheduled = sent_at.pop(answer["id"], None)
            if scheduled is None:
                continue
            latencies_us.append((time.perf_counter() - scheduled) * 1e6)
            if answer["status"] != 200:
                errors += 1
            if len(latencies_us) == total:
                done.set()

    readers = [asyncio.create_task(read(ws)) for ws in sockets]
    start = time.perf_counter() + 0.2
    try:
        for i in range(total):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent_at[i] = scheduled
            await sockets[i % connections].send(_order_frame(key, secret, i))
        await asyncio.wait_for(done.wait(), 120)
    finally:
        elapsed = time.perf_counter() - start
        for task in readers:
            task.cancel()
        for ws in sockets:
            await ws.close()
    cpu_after = _cpu_s(server_pid)
    ordered = sorted(latencies_us)
    cpu_us = None if cpu_before is None or cpu_after is None else (cpu_after - cpu_before) / total * 1e6
    return {
        "offered_per_s": rate,
        "achieved_per_s": round(total / elapsed, 1),
        "requests": total,
        "errors": errors,
        "p50_us": round(statistics.median(ordered), 1),
        "p99_us": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1),
        "max_us": round(ordered[-1], 1),
        "server_cpu_us_per_request": None if cpu_us is None else round(cpu_us, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", default="100,300", help="offered rates, orders per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each rate and interface")
    parser.add_argument(
        "--ws-connections", type=int, default=4, help="WebSocket API connections sharing the load"
    )
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="perpx-bench-ack-") as tmp:
        port, admin_port, fix_port = free_port(), free_port(), free_port()
        process = _start_server(Path(tmp) / "data", port, admin_port, ("--fix-port", str(fix_port)))
        try:
            key, secret = _setup(f"http://127.0.0.1:{admin_port}")
            for run, rate in enumerate(rates):
                rest = asyncio.run(
                    _run_rate(
                        f"http://127.0.0.1:{port}", key, secret, rate, args.seconds, "order", process.pid
                    )
                )
                ws = asyncio.run(
                    _ws_rate(
                        f"ws://127.0.0.1:{port}/ws-fapi/v1",
                        key,
                        secret,
                        rate,
                        args.seconds,
                        args.ws_connections,
                        process.pid,
                    )
                )
                fix = asyncio.run(_fix_rate(fix_port, key, secret, rate, args.seconds, run))
                rest_p50 = float(rest["p50_us"] or 1)
                row = {
                    "rate": rate,
                    "rest": rest,
                    "ws": ws,
                    "fix": fix,
                    "ws_p50_over_rest_p50": round(ws["p50_us"] / rest_p50, 2),
                    "fix_p50_over_rest_p50": round(fix["p50_us"] / rest_p50, 2),
                }
                rows.append(row)
                print(
                    f"{rate:>5}/s  REST p50 {rest_p50:>7.0f} us p99 {rest['p99_us']:>7.0f} us"
                    f" | WS API p50 {ws['p50_us']:>7.0f} us p99 {ws['p99_us']:>7.0f} us ({row['ws_p50_over_rest_p50']}x)"
                    f" | FIX p50 {fix['p50_us']:>7.0f} us p99 {fix['p99_us']:>7.0f} us ({row['fix_p50_over_rest_p50']}x)"
                    f" | errors REST {rest['errors']} WS {ws['errors']}",
                    flush=True,
                )
        finally:
            process.terminate()
            process.wait(30)
    print(
        json.dumps(
            {
                "benchmark": "order_ack",
                "seconds_per_rate": args.seconds,
                "ws_connections": args.ws_connections,
                "python": sys.version.split()[0],
                "rows": rows,
            }
        )
    )


if __name__ == "__main__":
    main()
