"""What one poll of the operator console's risk monitor costs the sequencer, with many accounts.

``GET /admin/v1/risk`` runs as one sequencer query between batches (``perpx.console.risk``): every
account with a position gets its margin figures and each position its liquidation price, then the
rows are sorted. The console polls it every 2 s, so its time is a pause every 2 s for every trader.

The population is ``benchmarks/risk.py``'s (built directly in the engine's state, a third isolated,
a third cross BTC, a third cross BTC and ETH, none near liquidation). Measured per repeat, the median
reported:

* **risk read**: the query's body (accounts and markets), as the route runs it;
* **full scan** (baseline, same process, same state): the engine's own exact check of every scope of
  every account (``Liquidation.due_by_full_scan``).

Run: ``python benchmarks/console_risk.py [--sizes 1000,10000] [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from perpx.console.risk import _accounts, _markets
from risk import build


def _median_s(run: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        gc.collect()
        gc.disable()
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
        gc.enable()
    return statistics.median(times)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    for size in (int(s) for s in args.sizes.split(",")):
        engine = build(size, 0.0).engine
        specs = {str(m): spec for m, spec in engine.specs.items()}
        atom = engine.config.settlement.atom

        def read(engine: Any = engine, specs: Any = specs, atom: Any = atom) -> None:
            _accounts(engine, specs, atom, 100)
            _markets(engine, specs)

        risk_s = _median_s(read, args.repeats)
        scan_s = _median_s(engine.liquidation.due_by_full_scan, args.repeats)
        print(
            json.dumps(
                {
                    "accounts": size,
                    "risk_read_ms": round(risk_s * 1000, 2),
                    "full_scan_ms": round(scan_s * 1000, 2),
                    "ratio": round(risk_s / scan_s, 2),
                    "repeats": args.repeats,
                }
            )
        )


if __name__ == "__main__":
    main()
