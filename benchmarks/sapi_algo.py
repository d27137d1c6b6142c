"""What running parent orders costs everyone else: REST order round trip with and without algos.

    python benchmarks/sapi_algo.py                    # 20 parents, 300 orders per phase
    python benchmarks/sapi_algo.py --parents 50 --orders 500

An in-process venue on the wall clock (the real apps and sequencer behind Starlette's TestClient,
``tests/server/inprocess.py``). Phase 1 (baseline): one client sends ``--orders`` signed
``POST /fapi/v1/order`` one after another (an IOC LIMIT far from the book: journaled, margined,
expired) and the round trip of each is timed. Phase 2: ``--parents`` TWAP parents (``POST
/perpx/v1/algo``, one-second slices, taking liquidity) run on the algo service's driver, and the
same client sends the same orders again. Prints the medians and their ratio (phase 2 / phase 1) and,
last, one JSON line with every figure. The ratio is the figure: absolute times depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.server.harness import MANUAL_CONFIG, Trader  # noqa: E402
from tests.server.inprocess import InProcessVenue, in_process_venue  # noqa: E402

WALL_CONFIG = MANUAL_CONFIG.replace('clock = "manual"', 'clock = "wall"')
FAR_IOC = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "IOC", "quantity": "0.003"}


def _round_trips(venue: InProcessVenue, trader: Trader, orders: int) -> list[float]:
    times: list[float] = []
    for _ in range(orders):
        started = time.perf_counter()
        answer = venue.signed("POST", "/fapi/v1/order", trader, {**FAR_IOC, "price": "40000"})
        times.append(time.perf_counter() - started)
        assert answer.status_code == 200, answer.text
    return times


def _start_parents(venue: InProcessVenue, parents: int) -> list[Trader]:
    owners: list[Trader] = []
    for n in range(parents):
        owner = venue.trader(f"algo-{n}", "1000000")
        parent = {
            "algo": "twap",
            "market": "BTCUSDT",
            "side": "buy",
            "client_algo_id": f"bench-{n}",
            "qty": "1",
            "duration_s": 600,
            "slice_interval_s": 1,
            "passiveness_bps": 0,
        }
        venue.ok("POST", "/perpx/v1/algo", owner, {"parent": json.dumps(parent)})
        owners.append(owner)
    return owners


def _executed(venue: InProcessVenue, owners: list[Trader]) -> float:
    total = 0.0
    for owner in owners:
        for order in venue.ok("GET", "/sapi/v1/algo/futures/openOrders", owner)["orders"]:
            total += float(order["executedQty"])
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--parents", type=int, default=20)
    parser.add_argument("--orders", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, in_process_venue(Path(tmp) / "data", WALL_CONFIG) as venue:
        venue.mark("BTCUSDT", "50000")
        maker, client = venue.trader("maker", "100000000"), venue.trader("client", "1000000")
        venue.ok(
            "POST",
            "/fapi/v1/order",
            maker,
            {
                "symbol": "BTCUSDT",
                "side": "SELL",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "price": "50000",
                "quantity": "300",
            },
        )
        baseline = _round_trips(venue, client, args.orders)
        owners = _start_parents(venue, args.parents)
        time.sleep(2)  # every parent has taken its first slices
        before = _executed(venue, owners)
        started = time.monotonic()
        loaded = _round_trips(venue, client, args.orders)
        seconds = time.monotonic() - started
        during = _executed(venue, owners) - before
    base_ms = statistics.median(baseline) * 1000
    loaded_ms = statistics.median(loaded) * 1000
    figures = {
        "parents": args.parents,
        "orders_per_phase": args.orders,
        "baseline_p50_ms": round(base_ms, 3),
        "with_parents_p50_ms": round(loaded_ms, 3),
        "ratio_p50": round(loaded_ms / base_ms, 3),
        "phase2_seconds": round(seconds, 2),
        "btc_executed_by_parents_during_phase2": round(during, 3),
    }
    print(
        f"REST order round trip p50: {base_ms:.2f} ms alone, {loaded_ms:.2f} ms beside {args.parents} parents"
    )
    print(f"ratio (with parents / alone): {figures['ratio_p50']}x")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
