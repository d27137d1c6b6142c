"""What the engine's parent table costs every other command: apply time with and without linked children.

    python benchmarks/parent_link.py                  # 20,000 commands per phase, 5 rounds
    python benchmarks/parent_link.py --commands 50000 --rounds 3

Each round builds a fresh engine (testkit ``Venue`` without the invariant checker) with a maker's
book, then times ``--commands`` IOC orders of another account that trade ten lots each (a fill per
command; the minimum notional) in two phases: baseline, with no parent; and with one WORKING parent whose ``--children``
resting children are linked (``PlaceChildOrder``), so ``Engine.apply`` scans every command's events
for their fills. Prints the median time per command of each phase, their ratio (with children /
baseline: the figure; absolute times depend on the machine), and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from perpx.engine.commands import CreateParent, OrderType, PlaceChildOrder, PlaceOrder, TimeInForce
from perpx.engine.events import ParentCreated
from perpx.engine.values import ClientAlgoId, ClientOrderId, MarketId, Side
from perpx.testkit import Venue

BTC = MarketId("BTCUSDT")


def _venue(children: int) -> Venue:
    venue = Venue(check=False)
    venue.account("maker", "100000000")
    venue.account("taker", "100000000")
    venue.account("algo", "100000000")
    venue.mark("BTCUSDT", "50000")
    venue.place("maker", "BTCUSDT", "SELL", "500", "50000")
    if children:
        events = venue.apply(
            CreateParent(
                ts_ns=venue.tick(),
                account_id=venue.names["algo"],
                market=BTC,
                side=Side.BUY,
                qty_lots=10 * children,
                client_algo_id=ClientAlgoId("bench"),
                algo_type="TWAP",
            )
        )
        parent_id = next(e.parent_id for e in events if isinstance(e, ParentCreated))
        for n in range(children):
            ts = venue.tick()
            order = PlaceOrder(
                ts_ns=ts,
                account_id=venue.names["algo"],
                market=BTC,
                side=Side.BUY,
                order_type=OrderType.LIMIT,
                qty_lots=10,
                price_ticks=venue.ticks("BTCUSDT", "49000"),
                client_order_id=ClientOrderId(f"bench-c{n}"),
            )
            venue.apply(PlaceChildOrder(ts_ns=ts, parent_id=parent_id, order=order))
        assert len(venue.engine.parents.children) == children
    return venue


def _per_command_s(venue: Venue, commands: int) -> float:
    taker = venue.names["taker"]
    engine = venue.engine
    orders = [
        PlaceOrder(
            ts_ns=venue.tick(),
            account_id=taker,
            market=BTC,
            side=Side.BUY,
            order_type=OrderType.MARKET,
            qty_lots=10,
            tif=TimeInForce.IOC,
        )
        for _ in range(commands)
    ]
    started = time.perf_counter()
    for order in orders:
        engine.apply(order)
    return (time.perf_counter() - started) / commands


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--commands", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--children", type=int, default=10)
    args = parser.parse_args()
    baseline: list[float] = []
    linked: list[float] = []
    for _ in range(args.rounds):
        baseline.append(_per_command_s(_venue(0), args.commands))
        linked.append(_per_command_s(_venue(args.children), args.commands))
    base_us = statistics.median(baseline) * 1e6
    linked_us = statistics.median(linked) * 1e6
    print(f"apply per command (median of {args.rounds} rounds): {base_us:.2f} us alone, {linked_us:.2f} us")
    print(f"with {args.children} linked children; ratio {linked_us / base_us:.3f}x")
    print(
        json.dumps(
            {
                "commands": args.commands,
                "rounds": args.rounds,
                "children": args.children,
                "baseline_us": round(base_us, 3),
                "linked_us": round(linked_us, 3),
                "ratio": round(linked_us / base_us, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
