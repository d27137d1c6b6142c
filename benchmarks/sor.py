"""Smart order routing: what the optimal split saves, and what computing it costs.

    python benchmarks/sor.py                         # 2, 3 and 5 venues, 200 random parents each
    python benchmarks/sor.py --venues 2,4 --parents 500 --seed 7

For each count of venues, ``--parents`` random problems (seeded): books of 20 levels around 60,000
with random gaps and sizes, taker fees drawn from 0, 1, 2, 5 and 10 bp, a parent of 5-60% of the
total depth. Per problem it reports:

* **saving**: the all-in cost (fees included) of the best single venue minus the routed cost, in bp of
  the routed notional (positive = routing was cheaper), for parents one venue can fill alone;
* **fill gain**: the extra share of the parent routed when no single venue could fill it.

Timing: median wall time of :func:`perpx.execution.sor.route` on the problem, reported as a ratio to
the baseline measured in the same run: routing the same parent on the first venue alone (one book,
the same walk). Prints a table and, last, one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

from perpx.engine.values import Side
from perpx.execution.sor import Level, VenueBook, VenueTerms, route

FEES_E8 = (0, 10_000, 20_000, 50_000, 100_000)


def problem(rng: random.Random, venues: int) -> tuple[int, list[VenueBook]]:
    books = []
    for i in range(venues):
        price = 600_000 + rng.randrange(0, 30)
        levels = []
        for _ in range(20):
            levels.append(Level(price, rng.randrange(1, 200)))
            price += rng.randrange(1, 15)
        books.append(VenueBook(VenueTerms(f"v{i}", rng.choice(FEES_E8)), tuple(levels)))
    depth = sum(level.qty_lots for book in books for level in book.levels)
    return max(1, int(depth * rng.uniform(0.05, 0.6))), books


def timed(side: Side, qty: int, books: list[VenueBook], repeat: int = 5) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        route(side, qty, books)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venues", default="2,3,5")
    parser.add_argument("--parents", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    figures: dict[str, dict[str, float | int | None]] = {}
    print(
        f"{'venues':>6} {'median saving bp':>17} {'p90 saving bp':>14} {'fill gain':>10} {'time ratio':>11}"
    )
    for venues in (int(v) for v in args.venues.split(",")):
        savings, gains, ratios = [], [], []
        for _ in range(args.parents):
            qty, books = problem(rng, venues)
            plan = route(Side.BUY, qty, books)
            singles = [route(Side.BUY, qty, [book]) for book in books]
            whole = [s for s in singles if s.unrouted_lots == 0]
            if whole and plan.unrouted_lots == 0:
                best = min(s.cost_units_e8 for s in whole)
                notional = sum(a.notional_units for a in plan.allocations)
                savings.append((best - plan.cost_units_e8) / notional / 100_000_000 * 10_000)
            else:
                gains.append((plan.routed_lots - max(s.routed_lots for s in singles)) / qty)
            ratios.append(timed(Side.BUY, qty, books) / timed(Side.BUY, qty, books[:1]))
        row = {
            "parents": args.parents,
            "median_saving_bps": round(statistics.median(savings), 3) if savings else None,
            "p90_saving_bps": round(statistics.quantiles(savings, n=10)[-1], 3) if len(savings) > 1 else None,
            "median_fill_gain": round(statistics.median(gains), 4) if gains else None,
            "median_time_ratio_vs_one_venue": round(statistics.median(ratios), 2),
        }
        figures[str(venues)] = row
        print(
            f"{venues:>6} {row['median_saving_bps']!s:>17} {row['p90_saving_bps']!s:>14} "
            f"{row['median_fill_gain']!s:>10} {row['median_time_ratio_vs_one_venue']!s:>11}"
        )
    print(json.dumps({"benchmark": "sor", "seed": args.seed, "by_venues": figures}))


if __name__ == "__main__":
    main()
