"""Order-to-ack latency of signed REST order entry under open-loop load.

    python benchmarks/api.py                          # rates 100, 250, 500, 1000 /s, 10 s each
    python benchmarks/api.py --rates 200,800 --seconds 5

The server runs as its own process (``perpx serve`` on a fresh data directory,
durability "batch": one fsync per journal batch); this process is the load
generator. Open loop: request *i* is sent at ``t0 + i / rate`` whether or not
earlier ones were answered, and its latency is measured from that scheduled
time to the answer, so a stalled server shows up as latency instead of as a
slower offered rate (no coordinated omission). Each order is a signed
``POST /fapi/v1/order`` of an IOC LIMIT far from the book (it is journaled,
margined, matched against nothing and expires: the whole order path without
growing the book). The baseline, measured at the same rates in the same run, is
``GET /fapi/v1/ping`` (HTTP stack only, no signature, no sequencer): the ratio
says what order entry costs on top of serving HTTP at all.

Beside latency, each row reports the server process's CPU time per request (user + system, every
thread, from ``/proc``; Linux only): on a machine shared with other work, latency mostly measures
the neighbours, while CPU per request stays the cost of the request itself.

Prints a table and, last, one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.server.harness import ADMIN_TOKEN, MANUAL_CONFIG, free_port  # noqa: E402


def _start_server(
    data: Path, port: int, admin_port: int, extra_args: tuple[str, ...] = ()
) -> subprocess.Popen[bytes]:
    config = data.parent / "bench-venue.toml"
    config.write_text(MANUAL_CONFIG)
    env = {
        **os.environ,
        "PERPX_ADMIN_TOKEN": ADMIN_TOKEN,
        "PERPX_RATE_LIMIT_WEIGHT_1M": "100000000",
        "PERPX_ORDER_LIMIT_10S": "100000000",
        "PERPX_ORDER_LIMIT_1M": "100000000",
    }
    log = open(data.parent / "server.log", "wb")  # noqa: SIM115 - the child owns it
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "perpx",
            "serve",
            "--data",
            str(data),
            "--config",
            str(config),
            "--port",
            str(port),
            "--admin-port",
            str(admin_port),
            *extra_args,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not start")


def _setup(admin_base: str) -> tuple[str, str]:
    headers = {"X-PERPX-ADMIN": ADMIN_TOKEN}
    marked = httpx.post(
        f"{admin_base}/admin/v1/marks",
        json={"symbol": "BTCUSDT", "markPrice": "60000", "indexPrice": "60000"},
        headers=headers,
    )
    marked.raise_for_status()
    created = httpx.post(
        f"{admin_base}/admin/v1/accounts",
        json={"name": "bench", "permissions": ["read", "trade"]},
        headers=headers,
    ).json()
    httpx.post(
        f"{admin_base}/admin/v1/deposits",
        json={
            "accountId": created["accountId"],
            "asset": "USDT",
            "amount": "100000000",
            "txId": "bench-seed",
        },
        headers=headers,
    ).raise_for_status()
    return str(created["apiKey"]), str(created["apiSecret"])


def _order_body(secret: str, i: int) -> bytes:
    side = "BUY" if i % 2 == 0 else "SELL"
    price = "57500" if side == "BUY" else "62500"
    items = [
        ("timestamp", str(int(time.time() * 1000))),
        ("symbol", "BTCUSDT"),
        ("side", side),
        ("type", "LIMIT"),
        ("timeInForce", "IOC"),
        ("quantity", "0.002"),
        ("price", price),
        ("newOrderRespType", "RESULT"),
        ("recvWindow", "10000"),
    ]
    payload = urlencode(items)
    signature = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return f"{payload}&signature={signature}".encode()


def _cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system, all threads) process ``pid`` has used; ``None`` without ``/proc``."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _run_rate(
    base: str, key: str, secret: str, rate: int, seconds: float, kind: str, server_pid: int
) -> dict[str, float | None]:
    total = int(rate * seconds)
    cpu_before = _cpu_s(server_pid)
    latencies_us: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(i: int, scheduled: float) -> None:
            nonlocal errors
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                if kind == "order":
                    async with session.post(
                        f"{base}/fapi/v1/order",
                        data=_order_body(secret, i),
                        headers={"X-MBX-APIKEY": key, "Content-Type": "application/x-www-form-urlencoded"},
                    ) as response:
                        await response.read()
                        ok = response.status == 200
                else:
                    async with session.get(f"{base}/fapi/v1/ping") as response:
                        await response.read()
                        ok = response.status == 200
            except aiohttp.ClientError:
                ok = False
            latencies_us.append((time.perf_counter() - scheduled) * 1e6)
            if not ok:
                errors += 1

        start = time.perf_counter() + 0.2
        await asyncio.gather(*(one(i, start + i / rate) for i in range(total)))
        elapsed = time.perf_counter() - start
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


def _num(value: float | None) -> float:
    assert value is not None
    return value


def _cpu_text(row: dict[str, float | None]) -> str:
    cpu = row["server_cpu_us_per_request"]
    return "n/a" if cpu is None else f"{cpu:.0f} us"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", default="100,250,500,1000", help="offered rates, requests per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each rate")
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    with tempfile.TemporaryDirectory(prefix="perpx-bench-api-") as tmp:
        port, admin_port = free_port(), free_port()
        process = _start_server(Path(tmp) / "data", port, admin_port)
        base = f"http://127.0.0.1:{port}"
        try:
            key, secret = _setup(f"http://127.0.0.1:{admin_port}")
            rows = []
            for rate in rates:
                ping = asyncio.run(_run_rate(base, key, secret, rate, args.seconds, "ping", process.pid))
                order = asyncio.run(_run_rate(base, key, secret, rate, args.seconds, "order", process.pid))
                rows.append(
                    {
                        "rate": rate,
                        "order": order,
                        "ping": ping,
                        "p50_ratio_vs_ping": round(_num(order["p50_us"]) / _num(ping["p50_us"]), 2),
                    }
                )
                print(
                    f"{rate:>6}/s  order p50 {order['p50_us']:>9.0f} us  p99 {order['p99_us']:>9.0f} us  max {order['max_us']:>9.0f} us"
                    f"  achieved {order['achieved_per_s']:>7.1f}/s errors {order['errors']}"
                    f"  | ping p50 {ping['p50_us']:>7.0f} us p99 {ping['p99_us']:>7.0f} us  | order/ping p50 {rows[-1]['p50_ratio_vs_ping']}x"
                    f"  | server cpu/req order {_cpu_text(order)} ping {_cpu_text(ping)}",
                    flush=True,
                )
        finally:
            process.terminate()
            process.wait(30)
    print(
        json.dumps(
            {
                "benchmark": "api",
                "seconds_per_rate": args.seconds,
                "python": sys.version.split()[0],
                "rows": rows,
            }
        )
    )


if __name__ == "__main__":
    main()
