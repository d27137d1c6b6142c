"""What keeping each liquidation's Inputs costs the admin log, on the journal thread.

The admin log (``perpx.server.adminlog``) now remembers the newest index and mark computation of
every market and stores them with each liquidation record, so the operator console shows the same
Inputs lines as ``perpx explain``. It runs as a listener on every applied batch, so its cost is paid
by every command. Measured on the risk lab's ``flash_crash`` journal (its records fed as batches of
``--batch`` records, as the sequencer hands them over), median of ``--repeats``:

* **with inputs**: ``AdminLog.on_applied`` as shipped;
* **baseline** (same process, same batches): the same, with the pricing events not tracked (the
  admin log as it was before, liquidations, fund movements and the audit only, but for one
  ``isinstance`` against an empty tuple per event).

Run: ``python benchmarks/adminlog_inputs.py [--repeats 5] [--batch 64]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from perpx.engine.commands import Command
from perpx.engine.events import Event, Outcome
from perpx.journal.store import read_config, recover
from perpx.server import adminlog
from perpx.server.adminlog import AdminLog
from perpx.server.sequencer import Applied
from perpx.sim.runner.run import run_scenario

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "flash_crash.toml"


def journal_batches(out: Path, batch: int) -> list[list[Applied]]:
    run_scenario(str(SCENARIO), 1, out, write_outputs=False)
    data = out / "journal"
    records: list[Applied] = []

    def observe(seq: int, command: Command, events: list[Event]) -> None:
        records.append(Applied(seq, command, Outcome.of(list(events))))

    recover(data, read_config(data), use_snapshots=False, observe=observe)
    return [records[i : i + batch] for i in range(0, len(records), batch)]


def feed(batches: list[list[Applied]], directory: Path) -> float:
    directory.mkdir()
    log = AdminLog(directory)
    started = time.perf_counter()
    for batch in batches:
        log.on_applied(batch)
    elapsed = time.perf_counter() - started
    log.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        batches = journal_batches(base / "run", args.batch)
        records = sum(len(b) for b in batches)
        module = vars(adminlog)  # the baseline swaps the tracked event types for none
        shipped = module["_PRICING"]
        timings: dict[str, list[float]] = {"with inputs": [], "baseline": []}
        for repeat in range(args.repeats):
            module["_PRICING"] = shipped
            timings["with inputs"].append(feed(batches, base / f"with-{repeat}"))
            module["_PRICING"] = ()
            timings["baseline"].append(feed(batches, base / f"base-{repeat}"))
        module["_PRICING"] = shipped
    medians = {name: statistics.median(values) for name, values in timings.items()}
    print(f"flash_crash journal: {records} records in batches of {args.batch}, {args.repeats} repeats")
    for name, seconds in medians.items():
        print(f"  {name:<12} {seconds * 1e3:8.2f} ms  ({seconds / records * 1e6:.2f} us per record)")
    print(f"  ratio with inputs / baseline: {medians['with inputs'] / medians['baseline']:.3f}")


if __name__ == "__main__":
    main()
