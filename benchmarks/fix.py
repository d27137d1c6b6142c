"""Order-to-ExecutionReport latency over FIX beside REST order-to-ack, same server, same run.

    python benchmarks/fix.py                       # 100 and 500 orders/s, 10 s each
    python benchmarks/fix.py --rates 100 --seconds 5

The server runs as its own process (``perpx serve --fix-port``, durability "batch": one fsync
per journal batch). For each rate, first REST (``benchmarks/api.py``'s open-loop client: a signed
``POST /fapi/v1/order``, latency from the scheduled send to the answer), then FIX: one logged-on
session sends a NewOrderSingle at ``t0 + i / rate`` whatever came back, and the latency is from
that scheduled time to the first ExecutionReport for its ClOrdID (150=0 New). Both send the same
order: an IOC LIMIT far from the book, so it is journaled, margined, matched against nothing and
expires. The goal the FIX issue sets: FIX p50 at most half of REST's.

Prints a table and, last, one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from tests.server.harness import free_port  # noqa: E402

from api import _run_rate, _setup, _start_server  # noqa: E402
from perpx.fix.codec import Field, FixMessage, FrameReader, encode  # noqa: E402
from perpx.fix.logon import logon_signature  # noqa: E402
from perpx.fix.session import sending_time  # noqa: E402


def _frame(comp_id: str, seq: int, msg_type: str, body: list[Field]) -> bytes:
    stamp = sending_time(time.time_ns())
    return encode([(35, msg_type), (49, comp_id), (56, "PERPX"), (34, str(seq)), (52, stamp), *body])


async def _fix_rate(
    port: int, key: str, secret: str, rate: int, seconds: float, run: int
) -> dict[str, float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    comp_id = f"BENCH{run}"
    stamp = sending_time(time.time_ns())
    signature = logon_signature(secret, "A", comp_id, "PERPX", "1", stamp)
    logon = [
        (35, "A"),
        (49, comp_id),
        (56, "PERPX"),
        (34, "1"),
        (52, stamp),
        (98, "0"),
        (108, "30"),
        (141, "Y"),
    ]
    writer.write(encode([*logon, (95, str(len(signature))), (96, signature), (553, key)]))
    frames = FrameReader()
    sent_at: dict[str, float] = {}
    latencies_us: list[float] = []
    logged_on = asyncio.Event()
    done = asyncio.Event()
    total = int(rate * seconds)

    async def read() -> None:
        while not done.is_set():
            data = await reader.read(65536)
            if not data:
                return
            for message in frames.feed(data):
                if not isinstance(message, FixMessage):
                    continue
                if message.msg_type == "A":
                    logged_on.set()
                elif message.msg_type == "8":
                    scheduled = sent_at.pop(message.get(11) or "", None)
                    if scheduled is not None:
                        latencies_us.append((time.perf_counter() - scheduled) * 1e6)
                        if len(latencies_us) == total:
                            done.set()

    reading = asyncio.create_task(read())
    await asyncio.wait_for(logged_on.wait(), 10)
    start = time.perf_counter() + 0.2
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        side, price = ("1", "57500") if i % 2 == 0 else ("2", "62500")
        cl_ord_id = f"b{run}-{i}"
        sent_at[cl_ord_id] = scheduled
        body: list[Field] = [
            (11, cl_ord_id),
            (55, "BTCUSDT"),
            (54, side),
            (60, sending_time(time.time_ns())),
            (38, "0.002"),
            (40, "2"),
            (44, price),
            (59, "3"),
        ]
        writer.write(_frame(comp_id, i + 2, "D", body))
    await asyncio.wait_for(done.wait(), 60)
    elapsed = time.perf_counter() - start
    reading.cancel()
    writer.close()
    ordered = sorted(latencies_us)
    return {
        "offered_per_s": rate,
        "achieved_per_s": round(total / elapsed, 1),
        "requests": total,
        "p50_us": round(statistics.median(ordered), 1),
        "p99_us": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1),
        "max_us": round(ordered[-1], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", default="100,500", help="offered rates, orders per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each rate and interface")
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="perpx-bench-fix-") as tmp:
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
                fix = asyncio.run(_fix_rate(fix_port, key, secret, rate, args.seconds, run))
                ratio = round(fix["p50_us"] / float(rest["p50_us"] or 1), 2)
                rows.append({"rate": rate, "fix": fix, "rest": rest, "fix_p50_over_rest_p50": ratio})
                print(
                    f"{rate:>6}/s  FIX order->ER p50 {fix['p50_us']:>8.0f} us p99 {fix['p99_us']:>8.0f} us"
                    f"  | REST order->ack p50 {rest['p50_us']:>8.0f} us p99 {rest['p99_us']:>8.0f} us"
                    f"  | FIX/REST p50 {ratio}x",
                    flush=True,
                )
        finally:
            process.terminate()
            process.wait(30)
    print(
        json.dumps(
            {
                "benchmark": "fix",
                "seconds_per_rate": args.seconds,
                "python": sys.version.split()[0],
                "rows": rows,
            }
        )
    )


if __name__ == "__main__":
    main()
