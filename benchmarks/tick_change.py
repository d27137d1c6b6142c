"""What a tick and lot size change costs the engine (``ChangeMarketParams`` of ``tick_size``/``lot_size``).

A venue on ``default_config()`` with ``--holders`` accounts holding BTCUSDT positions, each with a
resting bid on the 0.5 grid (so a change between 0.1 and 0.5 cancels nothing). Timed:

* ``tick``: a ``ChangeMarketParams`` of BTCUSDT's ``tick_size`` and ``lot_size`` (0.1 / 0.001 and
  0.5 / 0.01 alternated: every resting order is checked against the grid, every holder's margin
  rechecked);
* ``live``: an ``UpdateMarketParams`` of BTCUSDT's ``max_open_orders`` (the live path, baseline).

Runs are interleaved; figures are medians of ``--runs`` runs of ``--changes`` commands;
``ratio_vs_live`` = tick / live.

    python benchmarks/tick_change.py                 # 500 holders, 40 changes x 5 runs

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from perpx.engine.commands import ChangeMarketParams, UpdateMarketParams
from perpx.engine.values import MarketId
from perpx.testkit import Venue

BTC = "BTCUSDT"
GRIDS = ({"tick_size": "0.5", "lot_size": "0.01"}, {"tick_size": "0.1", "lot_size": "0.001"})


def build(holders: int) -> Venue:
    """A venue with ``holders`` BTCUSDT positions (pairs of traders) and a resting bid each."""
    v = Venue(check=False)
    v.mark(BTC, "30000")
    for pair in range(holders // 2):
        seller, buyer = f"s{pair}", f"b{pair}"
        v.account(seller, "1000000")
        v.account(buyer, "1000000")
        v.place(seller, BTC, "SELL", "0.01", "30000")
        v.place(buyer, BTC, "BUY", "0.01", "30000")
        v.place(buyer, BTC, "BUY", "0.01", "29000.5")
    return v


def timed(v: Venue, changes: int, live: bool) -> float:
    """Median microseconds of one command over ``changes`` commands."""
    samples = []
    for n in range(changes):
        if live:
            command: ChangeMarketParams | UpdateMarketParams = UpdateMarketParams(
                ts_ns=v.tick(), market=MarketId(BTC), params={"max_open_orders": str(150 + n % 2)}
            )
        else:
            command = ChangeMarketParams(ts_ns=v.tick(), market=MarketId(BTC), params=GRIDS[n % 2])
        start = time.perf_counter_ns()
        events = v.engine.apply(command)
        samples.append(time.perf_counter_ns() - start)
        assert type(events[-1]).__name__ == "MarketParamsChanged", events[-1]
    return statistics.median(samples) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--holders", type=int, default=500)
    parser.add_argument("--changes", type=int, default=40)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    v = build(args.holders)
    tick, live = [], []
    for _ in range(args.runs):
        tick.append(timed(v, args.changes, live=False))
        live.append(timed(v, args.changes, live=True))
    figures = {
        "tick_change_us": round(statistics.median(tick), 1),
        "live_update_us": round(statistics.median(live), 1),
        "ratio_vs_live": round(statistics.median(tick) / statistics.median(live), 2),
        "holders": args.holders,
        "resting_orders": len(v.engine.orders),
        "changes": args.changes,
        "runs": args.runs,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
