"""The native prototype (``perpx.native``) against the engine and the bare book, on one stream.

The stream is the matching benchmark's (``benchmarks/matching.py``: 60% passive places, 30%
cancels, 10% sweeps; 100 accounts, margin checks on), built once before any timing. Each run
times, interleaved so that all see the same machine:

* **bare book**: ``matching.BareBook`` (dict of price -> deque, no accounts, no margin, no events);
* **engine**: ``Engine.apply`` on a fresh engine (``perpx.build.engine_build()`` says which build:
  mypyc-compiled or pure Python);
* **native, apply**: ``NativeEngine.apply(command)`` on the same command objects (each call reads
  the msgspec struct's fields, checks their ranges and dispatches: the whole Python boundary);
* **native, typed call**: ``place(...)`` / ``cancel(...)`` with the ints already extracted (one
  Python call per command, no attribute reads);
* **native, C loop**: ``run_batch`` over the stream packed as int64 (no Python per command): the
  cost of the book, margin check, matching and settlement alone.

Also, on their own: ``perpx.journal.journal.encode_record`` over the stream (the journal's
msgpack encoding per command, without the write); the packed stream journaled as batches of
1,000 commands (a length and CRC32 header and one write per batch, to a temporary file, no
fsync, then with fsync after every batch); and an empty Python loop over the stream.

Every native run must end where the engine ends (the same resting orders in queue order, leaves,
trades and fees), or the benchmark fails. Ratios are commands/s over the bare book's, in the same run.
The last line printed is one JSON object.

Run: ``python benchmarks/native.py [--commands N] [--seed S] [--runs R]`` (defaults 200,000, 1, 5;
the first run compiles the prototype, about 10 s, cached in the temporary directory after that).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import struct
import tempfile
import time
import zlib
from array import array
from collections.abc import Callable, Sequence

from matching import (
    JOURNAL_BATCH,
    MARKET,
    Workload,
    build_workload,
    fresh_engine,
    time_baseline,
    time_engine,
)
from perpx.build import engine_build
from perpx.engine.commands import CancelOrder, Command, OrderType, PlaceOrder, StpMode, TimeInForce
from perpx.engine.config import default_config
from perpx.engine.engine import Engine
from perpx.journal.journal import encode_record
from perpx.native import NativeEngine, native_engine

STP_CODES = {StpMode.NONE: 0, StpMode.EXPIRE_TAKER: 1, StpMode.EXPIRE_MAKER: 2, StpMode.EXPIRE_BOTH: 3}


def fresh_native(workload: Workload) -> NativeEngine:
    """A native engine after the workload's setup (untimed), its event log empty."""
    native = native_engine(default_config(), MARKET)
    for command in workload.setup:
        if native.apply(command) < 0:
            raise RuntimeError(f"the native engine refused a setup command: {command}")
    native.clear_events()
    return native


def time_native_apply(workload: Workload) -> tuple[float, NativeEngine]:
    native = fresh_native(workload)
    apply = native.apply
    stream = workload.stream
    gc.collect()
    start = time.perf_counter()
    for command in stream:
        apply(command)
    return time.perf_counter() - start, native


TypedCall = tuple[Callable[..., int], tuple[int | bool, ...]]


def typed_calls(native: NativeEngine, stream: Sequence[Command]) -> list[TypedCall]:
    """``(bound method, int arguments)`` per command: what an adapter that already holds ints would call."""
    calls: list[TypedCall] = []
    for command in stream:
        if isinstance(command, PlaceOrder):
            price = command.price_ticks
            calls.append(
                (
                    native.place,
                    (
                        command.ts_ns,
                        int(command.account_id),
                        int(command.side),
                        command.order_type is OrderType.MARKET,
                        command.tif is TimeInForce.GTC,
                        price is not None,
                        0 if price is None else price,
                        command.qty_lots,
                        STP_CODES[command.stp],
                    ),
                )
            )
        elif isinstance(command, CancelOrder) and command.order_id is not None:
            calls.append((native.cancel, (command.ts_ns, int(command.account_id), int(command.order_id))))
        else:
            raise RuntimeError(f"not a place or a cancel by id: {command}")
    return calls


def time_native_typed(workload: Workload) -> tuple[float, NativeEngine]:
    native = fresh_native(workload)
    calls = typed_calls(native, workload.stream)
    gc.collect()
    start = time.perf_counter()
    for method, args in calls:
        method(*args)
    return time.perf_counter() - start, native


def time_native_batch(workload: Workload) -> tuple[float, NativeEngine]:
    native = fresh_native(workload)
    packed = native.pack(workload.stream)
    answers = array("q", bytes(8 * len(workload.stream)))
    gc.collect()
    start = time.perf_counter()
    native.run_batch(packed, answers)
    return time.perf_counter() - start, native


def time_encoding(workload: Workload) -> float:
    """Seconds to encode every command as its journal record (msgpack, length, CRC), no write."""
    gc.collect()
    start = time.perf_counter()
    for seq, command in enumerate(workload.stream, start=1):
        encode_record(seq, command)
    return time.perf_counter() - start


def time_packed_journal(
    workload: Workload, native: NativeEngine, directory: str, fsync: bool = False
) -> float:
    """Seconds to journal the stream as packed batches: per 1,000 commands one header (length and
    CRC32 of the batch), one write of the header and one of the batch's 64 bytes per command.

    What a journal of the packed records would cost in place of ``encode_record`` per command:
    written to the OS (the figure ``matching.py`` puts first), or with ``fsync`` after every batch.
    """
    packed = native.pack(workload.stream)
    view = memoryview(packed).cast("B")
    batch_bytes = 8 * 8 * JOURNAL_BATCH
    path = os.path.join(directory, f"packed-{time.perf_counter_ns()}.journal")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    gc.collect()
    start = time.perf_counter()
    for first in range(0, len(view), batch_bytes):
        batch = view[first : first + batch_bytes]
        os.write(fd, struct.pack("<II", len(batch), zlib.crc32(batch)))
        os.write(fd, batch)
        if fsync:
            os.fsync(fd)
    elapsed = time.perf_counter() - start
    os.close(fd)
    os.remove(path)
    return elapsed


def time_empty_loop(workload: Workload) -> float:
    noop = int
    gc.collect()
    start = time.perf_counter()
    for _ in workload.stream:
        noop()
    return time.perf_counter() - start


def check_same(engine: Engine, native: NativeEngine, label: str) -> None:
    """The native run must end where the engine ended: resting orders in queue order, trades, fees."""
    book = engine.books[MARKET]
    resting = [
        (o.order_id, o.account_id, int(o.side), o.price_ticks, o.leaves_lots)
        for side in (book.bids, book.asks)
        for o in side.orders()
    ]
    if native.book.resting() != resting:
        raise RuntimeError(f"{label}: the native book and the engine's disagree")
    if (native.next_trade_id, native.fees_atoms) != (engine.next_trade_id, engine.fees_atoms[engine.asset]):
        raise RuntimeError(f"{label}: the native engine traded or charged differently")


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--commands", type=int, default=200_000, help="timed commands (default 200000)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the command mix (default 1)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per measurement (default 5)")
    args = parser.parse_args(argv)

    build = engine_build()
    print(f"python {platform.python_version()} ({platform.python_implementation()}) on {platform.machine()}")
    print(f"engine build: {build}")
    started = time.perf_counter()
    fresh_native(build_workload(10, args.seed))  # compiles the prototype now, untimed, if it is not cached
    print(f"native prototype ready in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    workload = build_workload(args.commands, args.seed)
    n = len(workload.stream)
    print(
        f"stream: {n} commands (seed {args.seed}): {workload.places} passive places, {workload.cancels} cancels,"
        f" {workload.aggressive} aggressive; {workload.fills} fills (built in {time.perf_counter() - started:.1f} s)"
    )

    times: dict[str, list[float]] = {"bare": [], "engine": [], "apply": [], "typed": [], "batch": []}
    engine = fresh_engine(workload)
    for command in workload.stream:
        engine.apply(command)
    for run in range(args.runs):
        elapsed, _ = time_baseline(workload)
        times["bare"].append(elapsed)
        times["engine"].append(time_engine(workload))
        for key, timer in (
            ("apply", time_native_apply),
            ("typed", time_native_typed),
            ("batch", time_native_batch),
        ):
            elapsed, native = timer(workload)
            times[key].append(elapsed)
            if run == 0:
                check_same(engine, native, key)
    encode = statistics.median(time_encoding(workload) for _ in range(args.runs))
    empty = statistics.median(time_empty_loop(workload) for _ in range(args.runs))
    with tempfile.TemporaryDirectory(prefix="perpx-bench-") as directory:
        packer = fresh_native(workload)
        packed_journal = statistics.median(
            time_packed_journal(workload, packer, directory) for _ in range(args.runs)
        )
        packed_synced = statistics.median(
            time_packed_journal(workload, packer, directory, fsync=True) for _ in range(args.runs)
        )

    rates = {key: n / statistics.median(values) for key, values in times.items()}
    bare = rates["bare"]
    labels = {
        "bare": "bare price-time book (Python)",
        "engine": f"engine.apply ({build})",
        "apply": "native, apply(command)",
        "typed": "native, typed place()/cancel()",
        "batch": "native, C loop (run_batch)",
    }
    for key, label in labels.items():
        runs = ", ".join(f"{n / t:,.0f}" for t in times[key])
        print(
            f"{label:>46}: {rates[key]:>12,.0f} commands/s  {1e6 / rates[key]:6.3f} us/command"
            f"  x{rates[key] / bare:.2f} bare (runs {runs})"
        )
    boundary_us = 1e6 / rates["apply"] - 1e6 / rates["batch"]
    print(f"journal encoding (encode_record, no write): {1e6 * encode / n:.3f} us/command")
    print(
        f"journal of packed batches (header, CRC32, write per {JOURNAL_BATCH}; no fsync):"
        f" {1e6 * packed_journal / n:.3f} us/command; with fsync per batch {1e6 * packed_synced / n:.3f} us/command"
        f" ({1e3 * packed_synced / -(-n // JOURNAL_BATCH):.3f} ms per batch, in {tempfile.gettempdir()})"
    )
    print(f"empty Python loop over the stream: {1e6 * empty / n:.3f} us/command")
    print(f"Python boundary of apply(command), apply minus C loop: {boundary_us:.3f} us/command")

    result: dict[str, object] = {
        "commands": n,
        "seed": args.seed,
        "runs": args.runs,
        "engine_build": build,
        "bare_commands_per_s": round(rates["bare"]),
        "engine_commands_per_s": round(rates["engine"]),
        "native_apply_commands_per_s": round(rates["apply"]),
        "native_typed_commands_per_s": round(rates["typed"]),
        "native_batch_commands_per_s": round(rates["batch"]),
        "engine_ratio_vs_bare": round(rates["engine"] / bare, 4),
        "native_apply_ratio_vs_bare": round(rates["apply"] / bare, 4),
        "native_batch_ratio_vs_bare": round(rates["batch"] / bare, 4),
        "journal_encode_us_per_command": round(1e6 * encode / n, 3),
        "packed_journal_us_per_command": round(1e6 * packed_journal / n, 3),
        "packed_journal_fsync_us_per_command": round(1e6 * packed_synced / n, 3),
        "boundary_us_per_command": round(boundary_us, 3),
        "python": platform.python_version(),
    }
    print(json.dumps(result, sort_keys=False))
    return result


if __name__ == "__main__":
    main()
