"""What a non-live parameter change costs the engine (``ChangeMarketParams``, ``engine/params.py``).

A venue on ``default_config()`` with ``--holders`` accounts holding BTCUSDT positions (and a
resting order each), and either no ETHUSDT holders or ``--other`` of them. Timed, per venue:

* ``change``: a ``ChangeMarketParams`` of BTCUSDT's brackets (two bracket tables alternated, so
  every command changes them: maintenance check of every holder, leverage, order margin, bands);
* ``live``: an ``UpdateMarketParams`` of BTCUSDT's ``max_open_orders`` (the live path, baseline).

Runs of each are interleaved; the figures are medians of ``--runs`` runs of ``--changes``
commands. ``ratio_vs_live`` = change / live on the venue without ETHUSDT holders;
``ratio_other_market`` = change with ``--other`` ETHUSDT holders / change without: about 1 when
the cost does not depend on the other market's accounts.

    python benchmarks/market_change.py                 # 500 holders, 5000 other, 40 changes x 5 runs

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from perpx.engine.commands import ChangeMarketParams, UpdateMarketParams
from perpx.engine.params import canonical
from perpx.engine.values import MarketId
from perpx.testkit import Venue

BTC, ETH = "BTCUSDT", "ETHUSDT"
BRACKETS = (
    canonical([
        {"notional_cap": "50000", "max_leverage": 100, "mmr": "0.005"},
        {"notional_cap": "20000000", "max_leverage": 20, "mmr": "0.025"},
    ]),
    canonical([
        {"notional_cap": "50000", "max_leverage": 125, "mmr": "0.004"},
        {"notional_cap": "20000000", "max_leverage": 20, "mmr": "0.025"},
    ]),
)  # fmt: skip


def build(holders: int, other: int) -> Venue:
    """A venue with ``holders`` BTCUSDT positions and ``other`` ETHUSDT positions (pairs of traders)."""
    v = Venue(check=False)
    v.mark(BTC, "30000")
    v.mark(ETH, "2000")
    for market, count, price in ((BTC, holders, "30000"), (ETH, other, "2000")):
        for pair in range(count // 2):
            seller, buyer = f"{market}-s{pair}", f"{market}-b{pair}"
            v.account(seller, "1000000")
            v.account(buyer, "1000000")
            v.place(seller, market, "SELL", "0.01", price)
            v.place(buyer, market, "BUY", "0.01", price)
            v.place(buyer, market, "BUY", "0.01", "1500" if market == ETH else "29000")
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
            command = ChangeMarketParams(
                ts_ns=v.tick(), market=MarketId(BTC), params={"brackets": BRACKETS[n % 2]}
            )
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
    parser.add_argument("--other", type=int, default=5000)
    parser.add_argument("--changes", type=int, default=40)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    alone, crowded = build(args.holders, 0), build(args.holders, args.other)
    change_alone, change_crowded, live_alone = [], [], []
    for _ in range(args.runs):
        change_alone.append(timed(alone, args.changes, live=False))
        live_alone.append(timed(alone, args.changes, live=True))
        change_crowded.append(timed(crowded, args.changes, live=False))
    figures = {
        "change_us": round(statistics.median(change_alone), 1),
        "live_update_us": round(statistics.median(live_alone), 1),
        "change_with_other_market_us": round(statistics.median(change_crowded), 1),
        "ratio_vs_live": round(statistics.median(change_alone) / statistics.median(live_alone), 2),
        "ratio_other_market": round(statistics.median(change_crowded) / statistics.median(change_alone), 2),
        "holders": args.holders,
        "other_market_holders": args.other,
        "changes": args.changes,
        "runs": args.runs,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
