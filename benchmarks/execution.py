"""Execution algorithms on the simulator: the figures of issue 14.

    python benchmarks/execution.py                               # calm_day, seeds 1 2 3
    python benchmarks/execution.py --scenario scenarios/flash_crash.toml --seeds 1,2

Each algorithm works one parent on the same scenario and seed (the same market path, up to the
parent's own impact) through the in-process venue (:func:`perpx.execution.backtest.backtest`),
starting after a 15-minute warm-up:

=============  ==========================================================================
figure         definition
=============  ==========================================================================
TWAP           schedule tracking error, ``max_t |filled(t) - Q*(t)| / Q`` against the
               straight line over the window (buy 2 BTC over 30 min, 1-min slices,
               passiveness 5000)
VWAP           slippage of the average fill price against the interval VWAP of the tape
               (own fills included, and excluded), in bps, positive = cost (same parent)
POV            realised participation ``F / V`` (V includes own fills) at the end and its
               range after the first 10% of the volume, against the band (target 10%,
               band 8-12%, buy 10 BTC, 30 min window)
IS vs TWAP     Perold implementation shortfall in bps for IS (urgency high) and for TWAP,
               same parent and seed, both taking (passiveness 0) so the difference is the
               schedule only
=============  ==========================================================================

Prints one row per run and, last, one JSON line with every figure and the means over seeds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from perpx.execution.backtest import backtest
from perpx.execution.model import decode_parent

REPO = Path(__file__).resolve().parents[1]

BASE = {"market": "BTCUSDT", "side": "buy", "duration_s": 1800, "slice_interval_s": 60}
RUNS: dict[str, dict[str, Any]] = {
    "twap": {**BASE, "algo": "twap", "qty": "2", "passiveness_bps": 5000},
    "vwap": {**BASE, "algo": "vwap", "qty": "2", "passiveness_bps": 5000},
    "pov": {
        **BASE,
        "algo": "pov",
        "qty": "10",
        "pov_target_bps": 1000,
        "pov_min_bps": 800,
        "pov_max_bps": 1200,
        "passiveness_bps": 5000,
    },
    "is": {**BASE, "algo": "is", "qty": "2", "urgency": "high", "passiveness_bps": 0},
    "twap_taking": {**BASE, "algo": "twap", "qty": "2", "passiveness_bps": 0},
}


def _num(text: Any) -> float | None:
    return None if text is None else float(text)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenario", type=Path, default=REPO / "scenarios" / "calm_day.toml")
    parser.add_argument("--seeds", default="1,2,3")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    rows: list[dict[str, Any]] = []
    print(
        f"{'algo':<12}{'seed':>5}{'filled':>9}{'track':>9}{'vwap bps':>10}{'ex-own':>9}{'part':>8}{'p-min':>8}{'p-max':>8}{'IS bps':>9}{'wall s':>8}"
    )
    for seed in seeds:
        for name, data in RUNS.items():
            parent = decode_parent({**data, "client_algo_id": f"bench-{name}-{seed}"})
            started = time.perf_counter()
            result = backtest(parent, args.scenario, seed=seed)
            wall = time.perf_counter() - started
            tca, fig = result.tca, result.figures
            row = {
                "algo": name,
                "seed": seed,
                "fill_rate": _num(tca["fill_rate"]),
                "tracking_error": fig["tracking_error"],
                "vwap_slippage_bps": _num(tca["vwap_slippage_bps"]),
                "vwap_ex_own_slippage_bps": _num(tca["vwap_ex_own_slippage_bps"]),
                "participation": fig["participation"],
                "participation_min": fig["participation_min"],
                "participation_max": fig["participation_max"],
                "is_bps": _num(tca["is_bps"]),
                "arrival_slippage_bps": _num(tca["arrival_slippage_bps"]),
                "children": fig["children"],
                "wall_s": round(wall, 2),
            }
            rows.append(row)
            print(
                f"{name:<12}{seed:>5}{row['fill_rate'] or 0:>9.3f}{row['tracking_error']:>9.4f}"
                f"{row['vwap_slippage_bps'] or 0:>10.2f}{row['vwap_ex_own_slippage_bps'] or 0:>9.2f}"
                f"{row['participation'] or 0:>8.4f}{row['participation_min'] or 0:>8.4f}{row['participation_max'] or 0:>8.4f}"
                f"{row['is_bps'] or 0:>9.2f}{wall:>8.1f}",
                flush=True,
            )

    def mean(algo: str, key: str) -> float | None:
        values = [r[key] for r in rows if r["algo"] == algo and r[key] is not None]
        return round(statistics.fmean(values), 4) if values else None

    figures = {
        "scenario": args.scenario.name,
        "seeds": seeds,
        "twap_tracking_error_mean": mean("twap", "tracking_error"),
        "vwap_slippage_bps_mean": mean("vwap", "vwap_slippage_bps"),
        "vwap_ex_own_slippage_bps_mean": mean("vwap", "vwap_ex_own_slippage_bps"),
        "pov_participation_mean": mean("pov", "participation"),
        "pov_band": [0.08, 0.12],
        "pov_in_band_runs": sum(
            1
            for r in rows
            if r["algo"] == "pov" and r["participation"] is not None and 0.08 <= r["participation"] <= 0.12
        ),
        "is_bps_mean": mean("is", "is_bps"),
        "twap_taking_is_bps_mean": mean("twap_taking", "is_bps"),
        "rows": rows,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
