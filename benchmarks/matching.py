"""Matching-engine throughput and latency on a fixed, seeded command mix.

The stream is built *before* any timing, as a list of engine commands (ints
already, no parsing in the loop), from ``random.Random(seed)``:

* 60% limit orders placed passively near the touch (GTC, a few ticks behind it);
* 30% cancels of an order that is live at that point of the stream;
* 10% aggressive orders that trade (IOC limits through the touch, some MARKET),
  sized to sweep one to a few resting orders, the last one often partly.

A shadow engine builds the stream, so every cancel names a live order and the
stream is checked to cause no rejection at all. The market is BTCUSDT of
:func:`perpx.engine.config.default_config`, with 100 accounts holding large
deposits and a mark price set; the book is seeded with resting orders before
the timed part starts. Margin checks are on: this is the engine's normal path.

Measured, each on a fresh engine replaying the same list:

* ``engine.apply`` alone (journal off): commands/s, median of ``--runs`` runs;
* per-command latency: ``time.perf_counter_ns`` around every ``apply`` of one
  more run; p50 and p99 in microseconds;
* journal on: each command is appended to the journal (``perpx.journal``) before
  it is applied, committed in batches of 1,000 as ``Store.submit_batch`` does;
  without fsync (the headline figure) and with fsync per batch;
* a bare price-time book written here (dict of price -> deque, sorted price
  lists, no margin, no events, no accounts) on the same stream, and the ratio.

The last line printed is one JSON object with the results.

Run: ``python benchmarks/matching.py [--commands N] [--seed S] [--runs R]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from perpx.engine.commands import (
    CancelOrder,
    Command,
    CreateAccount,
    Deposit,
    OrderType,
    PlaceOrder,
    SetMarkPrice,
    StpMode,
    TimeInForce,
)
from perpx.engine.config import default_config
from perpx.engine.engine import Engine
from perpx.engine.events import CommandRejected, OrderFilled, OrderRejected
from perpx.engine.values import AccountId, MarketId, OrderId, Side, TxId
from perpx.journal.journal import JournalWriter

MARKET = MarketId("BTCUSDT")
START_NS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
STEP_NS = 1_000_000
MARK_TICKS = 300_000  # 30,000.0 USDT at a 0.1 tick
ACCOUNTS = 100
DEPOSIT_ATOMS = 10_000_000 * 10**8  # 10M USDT each
SEED_ORDERS = 2_000  # resting orders placed before the timed stream
MIN_LOTS = 4  # 0.004 BTC: above the 100 USDT minimum notional near the mark
MAX_LOTS = 100
BAND_TICKS = 100  # passive prices stay within mark +/- this (+ the depth offset)
JOURNAL_BATCH = 1_000  # commands per journal commit


@dataclass(frozen=True)
class Workload:
    """Setup commands (untimed) and the timed stream, plus what the stream contains."""

    setup: list[Command]
    stream: list[Command]
    places: int
    cancels: int
    aggressive: int
    fills: int
    live_after: int
    kinds: list[str]  # per stream command: "place", "cancel" or "aggressive"


# ---------------------------------------------------------------------- workload


def build_workload(commands: int, seed: int) -> Workload:
    """The seeded setup and stream; a shadow engine keeps every cancel on a live order."""
    rng = random.Random(seed)
    config = default_config()
    asset = config.settlement_asset
    engine = Engine(config)
    ts = START_NS
    setup: list[Command] = []

    def step() -> int:
        nonlocal ts
        ts += STEP_NS
        return ts

    for n in range(1, ACCOUNTS + 1):
        setup.append(CreateAccount(ts_ns=step(), name=f"acct-{n}"))
        setup.append(
            Deposit(
                ts_ns=step(),
                account_id=AccountId(n),
                asset=asset,
                amount_atoms=DEPOSIT_ATOMS,
                tx_id=TxId(f"dep-{n}"),
            )
        )
    setup.append(SetMarkPrice(ts_ns=step(), market=MARKET, index_ticks=MARK_TICKS, mark_ticks=MARK_TICKS))
    for setup_command in setup:
        _apply_checked(engine, setup_command)

    book = engine.books[MARKET]
    live: list[OrderId] = []
    slot: dict[OrderId, int] = {}

    def forget(order_id: OrderId) -> None:
        index = slot.pop(order_id)
        last = live.pop()
        if last != order_id:
            live[index] = last
            slot[last] = index

    def run(command: Command) -> int:
        """Apply on the shadow engine, keep ``live`` in step; return the fills it caused."""
        fills = 0
        for event in _apply_checked(engine, command):
            if isinstance(event, OrderFilled):
                fills += 1
                if event.leaves_lots == 0 and event.order_id in slot:
                    forget(event.order_id)
        if isinstance(command, PlaceOrder):
            order_id = OrderId(engine.next_order_id - 1)
            if order_id in engine.orders and order_id not in slot:
                slot[order_id] = len(live)
                live.append(order_id)
        elif isinstance(command, CancelOrder):
            assert command.order_id is not None
            forget(command.order_id)
        return fills

    def passive() -> PlaceOrder:
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        depth = min(int(rng.expovariate(0.2)), 50)
        if side is Side.BUY:
            ask = book.asks.best_price()
            top = MARK_TICKS + BAND_TICKS if ask is None else min(ask - 1, MARK_TICKS + BAND_TICKS)
            price = top - depth
        else:
            bid = book.bids.best_price()
            bottom = MARK_TICKS - BAND_TICKS if bid is None else max(bid + 1, MARK_TICKS - BAND_TICKS)
            price = bottom + depth
        return PlaceOrder(
            ts_ns=step(),
            account_id=AccountId(rng.randint(1, ACCOUNTS)),
            market=MARKET,
            side=side,
            order_type=OrderType.LIMIT,
            qty_lots=rng.randint(MIN_LOTS, MAX_LOTS),
            price_ticks=price,
            stp=StpMode.NONE,  # the bare book has no accounts: both trade through own orders
        )

    for _ in range(SEED_ORDERS):
        seed_order = passive()
        run(seed_order)
        setup.append(seed_order)

    stream: list[Command] = []
    kinds: list[str] = []
    places = cancels = aggressive = fills = 0
    target = len(live)
    for _ in range(commands):
        draw = rng.random()
        command: Command
        if draw < 0.6 or not live:
            command = passive()
            places += 1
            kinds.append("place")
        elif draw < 0.9:
            order_id = live[rng.randrange(len(live))]
            command = CancelOrder(
                ts_ns=step(),
                account_id=engine.orders[order_id].account_id,
                market=MARKET,
                order_id=order_id,
            )
            cancels += 1
            kinds.append("cancel")
        else:
            side = Side.BUY if rng.random() < 0.5 else Side.SELL
            opposite = book.opposite(side)
            sweep = rng.randint(3, 10) if len(live) > target else rng.randint(1, 3)
            qty = 0
            last = 0
            for taken, maker in enumerate(opposite.orders(), start=1):
                last = maker.leaves_lots
                qty += last
                if taken >= sweep:
                    break
            qty = max(MIN_LOTS, qty - rng.randint(0, max(last - 1, 0)))
            best = opposite.best_price()
            account = AccountId(rng.randint(1, ACCOUNTS))
            if best is None or rng.random() < 0.2:
                command = PlaceOrder(
                    ts_ns=step(),
                    account_id=account,
                    market=MARKET,
                    side=side,
                    order_type=OrderType.MARKET,
                    qty_lots=qty,
                    tif=TimeInForce.IOC,
                    stp=StpMode.NONE,
                )
            else:
                command = PlaceOrder(
                    ts_ns=step(),
                    account_id=account,
                    market=MARKET,
                    side=side,
                    order_type=OrderType.LIMIT,
                    qty_lots=qty,
                    price_ticks=best + 5 * side,
                    tif=TimeInForce.IOC,
                    stp=StpMode.NONE,
                )
            aggressive += 1
            kinds.append("aggressive")
        fills += run(command)
        stream.append(command)
    return Workload(
        setup=setup,
        stream=stream,
        places=places,
        cancels=cancels,
        aggressive=aggressive,
        fills=fills,
        live_after=len(live),
        kinds=kinds,
    )


def _apply_checked(engine: Engine, command: Command) -> list[object]:
    events = engine.apply(command)
    for event in events:
        if isinstance(event, OrderRejected | CommandRejected):
            raise RuntimeError(f"the benchmark stream caused a rejection: {event}")
    return list(events)


# ---------------------------------------------------------------------- bare baseline


class BareOrder:
    __slots__ = ("leaves", "order_id", "price", "side")

    def __init__(self, order_id: int, side: int, price: int, leaves: int) -> None:
        self.order_id = order_id
        self.side = side
        self.price = price
        self.leaves = leaves


class BareBook:
    """A simple price-time book: per side a dict ``price -> deque`` and a sorted list of prices.

    Prices are kept sign-adjusted (``+price`` bids, ``-price`` asks) so the best
    level of either side is the list's last element. No accounts, no margin, no
    fees, no events: only matching, resting and cancelling. Order ids are
    counted like the engine's (the stream causes no rejection).
    """

    def __init__(self, first_order_id: int) -> None:
        self.levels: dict[int, dict[int, deque[BareOrder]]] = {1: {}, -1: {}}
        self.keys: dict[int, list[int]] = {1: [], -1: []}
        self.orders: dict[int, BareOrder] = {}
        self.next_id = first_order_id
        self.trades = 0

    def apply(self, command: Command) -> None:
        if type(command) is PlaceOrder:
            self.place(command)
        elif type(command) is CancelOrder:
            self.cancel(command)

    def place(self, command: PlaceOrder) -> None:
        order_id = self.next_id
        self.next_id += 1
        side = int(command.side)
        limit = command.price_ticks
        leaves = command.qty_lots
        levels = self.levels[-side]
        keys = self.keys[-side]
        while leaves > 0 and keys:
            price = -keys[-1] * side
            if limit is not None and (price - limit) * side > 0:
                break
            queue = levels[price]
            while leaves > 0 and queue:
                maker = queue[0]
                qty = min(leaves, maker.leaves)
                maker.leaves -= qty
                leaves -= qty
                self.trades += 1
                if maker.leaves == 0:
                    queue.popleft()
                    del self.orders[maker.order_id]
            if not queue:
                del levels[price]
                keys.pop()
        if leaves > 0 and limit is not None and command.tif is TimeInForce.GTC:
            order = BareOrder(order_id, side, limit, leaves)
            own = self.levels[side]
            resting = own.get(limit)
            if resting is None:
                resting = own[limit] = deque()
                insort(self.keys[side], limit * side)
            resting.append(order)
            self.orders[order_id] = order

    def cancel(self, command: CancelOrder) -> None:
        assert command.order_id is not None
        order = self.orders.pop(command.order_id)
        levels = self.levels[order.side]
        queue = levels[order.price]
        queue.remove(order)
        if not queue:
            del levels[order.price]
            keys = self.keys[order.side]
            del keys[bisect_left(keys, order.price * order.side)]

    def live(self) -> dict[int, int]:
        return {order_id: order.leaves for order_id, order in self.orders.items()}


# ---------------------------------------------------------------------- timing


def fresh_engine(workload: Workload) -> Engine:
    engine = Engine(default_config())
    for command in workload.setup:
        engine.apply(command)
    return engine


def time_engine(workload: Workload, journal_dir: str | None = None, fsync: bool = False) -> float:
    """Seconds to apply the stream on a fresh engine.

    With ``journal_dir`` the stream goes through :class:`~perpx.journal.journal.JournalWriter`
    the way ``Store.submit_batch`` does it: a batch of ``JOURNAL_BATCH`` commands
    is appended, committed (written to the OS; ``fsync`` too when asked), then applied.
    """
    engine = fresh_engine(workload)
    apply = engine.apply
    stream = workload.stream
    gc.collect()
    if journal_dir is None:
        start = time.perf_counter()
        for command in stream:
            apply(command)
        return time.perf_counter() - start
    path = os.path.join(journal_dir, f"bench-{time.perf_counter_ns()}.journal")
    start = time.perf_counter()
    writer = JournalWriter(path, next_seq=1, fsync=fsync)
    append = writer.append
    for first in range(0, len(stream), JOURNAL_BATCH):
        batch = stream[first : first + JOURNAL_BATCH]
        for command in batch:
            append(command)
        writer.commit()
        for command in batch:
            apply(command)
    writer.close()
    elapsed = time.perf_counter() - start
    os.remove(path)
    return elapsed


def time_latencies(workload: Workload) -> tuple[list[int], Engine]:
    """``perf_counter_ns`` around every ``apply`` of one run, and the engine it leaves."""
    engine = fresh_engine(workload)
    apply = engine.apply
    clock = time.perf_counter_ns
    out = [0] * len(workload.stream)
    gc.collect()
    for i, command in enumerate(workload.stream):
        start = clock()
        apply(command)
        out[i] = clock() - start
    return out, engine


def time_baseline(workload: Workload) -> tuple[float, BareBook]:
    """Seconds for the bare book to run the stream, after the setup's orders (untimed)."""
    book = BareBook(first_order_id=1)
    apply = book.apply
    for command in workload.setup:
        apply(command)
    gc.collect()
    start = time.perf_counter()
    for command in workload.stream:
        apply(command)
    return time.perf_counter() - start, book


def percentile(sorted_values: Sequence[int], fraction: float) -> int:
    """Nearest-rank percentile of an ascending sequence."""
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def compiled_modules() -> list[str]:
    """Engine modules imported from a compiled extension rather than a ``.py`` file."""
    out = []
    for name, module in sorted(sys.modules.items()):
        path = getattr(module, "__file__", None) or ""
        if name.startswith("perpx.engine") and path and not path.endswith(".py"):
            out.append(name)
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--commands", type=int, default=200_000, help="timed commands (default 200000)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the command mix (default 1)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per measurement (default 5)")
    parser.add_argument("--journal-dir", default=None, help="where the journal files go (default: temp dir)")
    args = parser.parse_args(argv)

    compiled = compiled_modules()
    print(f"python {platform.python_version()} ({platform.python_implementation()}) on {platform.machine()}")
    print(
        f"compiled (mypyc) engine modules: {len(compiled)} ({', '.join(m.removeprefix('perpx.engine.') for m in compiled)})"
        if compiled
        else "compiled (mypyc) engine modules: none (pure Python)"
    )

    started = time.perf_counter()
    workload = build_workload(args.commands, args.seed)
    print(
        f"stream: {len(workload.stream)} commands (seed {args.seed}): {workload.places} passive places,"
        f" {workload.cancels} cancels, {workload.aggressive} aggressive; {workload.fills} fills;"
        f" {workload.live_after} orders live at the end; setup {len(workload.setup)} commands"
        f" (built and checked in {time.perf_counter() - started:.1f} s)"
    )

    n = len(workload.stream)
    plain: list[float] = []
    baseline_times: list[float] = []
    bare = BareBook(first_order_id=1)
    for _ in range(args.runs):  # interleaved, so that both see the same machine
        plain.append(time_engine(workload))
        elapsed, bare = time_baseline(workload)
        baseline_times.append(elapsed)
    rate = n / statistics.median(plain)
    baseline_rate = n / statistics.median(baseline_times)
    print(f"engine, journal off: {rate:,.0f} commands/s (median of {args.runs}; runs {_rates(n, plain)})")

    latencies, engine = time_latencies(workload)
    ordered = sorted(latencies)
    p50 = percentile(ordered, 0.50) / 1000
    p99 = percentile(ordered, 0.99) / 1000
    print(
        f"latency per apply (one more run): p50 {p50:.1f} us, p99 {p99:.1f} us, max {ordered[-1] / 1000:.0f} us"
    )
    for kind in ("place", "cancel", "aggressive"):
        some = sorted(t for t, k in zip(latencies, workload.kinds, strict=True) if k == kind)
        print(
            f"  {kind:>10}: p50 {percentile(some, 0.5) / 1000:.1f} us,"
            f" p99 {percentile(some, 0.99) / 1000:.1f} us ({len(some)} commands)"
        )

    with tempfile.TemporaryDirectory(prefix="perpx-bench-", dir=args.journal_dir) as journal_dir:
        journaled = [time_engine(workload, journal_dir) for _ in range(args.runs)]
        synced = [time_engine(workload, journal_dir, fsync=True) for _ in range(args.runs)]
    journal_rate = n / statistics.median(journaled)
    print(
        f"engine, journal on:  {journal_rate:,.0f} commands/s (median of {args.runs};"
        f" runs {_rates(n, journaled)}; JournalWriter, commit every {JOURNAL_BATCH}, no fsync)"
    )
    print(
        f"  with fsync per commit (durability 'batch'): {n / statistics.median(synced):,.0f} commands/s"
        f" (median of {args.runs}; runs {_rates(n, synced)}; in {args.journal_dir or tempfile.gettempdir()})"
    )

    _check_same_book(workload, engine, bare)
    ratio = rate / baseline_rate
    print(
        f"bare price-time book: {baseline_rate:,.0f} commands/s (median of {args.runs};"
        f" runs {_rates(n, baseline_times)}; same stream, run between the journal-off runs)"
    )
    print(f"engine / bare book: {ratio:.3f} (the bare book is {1 / ratio:.1f}x faster)")

    result: dict[str, object] = {
        "commands_per_s": round(rate),
        "p50_us": round(p50, 2),
        "p99_us": round(p99, 2),
        "baseline_commands_per_s": round(baseline_rate),
        "ratio_vs_baseline": round(ratio, 4),
        "journal_commands_per_s": round(journal_rate),
        "compiled": bool(compiled),
        "compiled_modules": len(compiled),
        "python": platform.python_version(),
        "commands": n,
        "seed": args.seed,
    }
    print(json.dumps(result, sort_keys=False))
    return result


def _rates(n: int, times: Sequence[float]) -> str:
    return ", ".join(f"{n / t:,.0f}" for t in times)


def _check_same_book(workload: Workload, engine: Engine, bare: BareBook) -> None:
    """The bare book must end where the engine ended: same live orders, same leaves, same trades."""
    engine_live = {int(o.order_id): o.leaves_lots for o in engine.orders.values()}
    if engine_live != bare.live():
        raise RuntimeError("the bare book and the engine disagree on the live orders")
    if bare.trades != workload.fills // 2:
        raise RuntimeError(f"the bare book made {bare.trades} trades, the engine {workload.fills // 2}")


if __name__ == "__main__":
    main()
