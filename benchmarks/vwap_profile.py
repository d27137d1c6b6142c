"""VWAP on a short window follows the venue's intraday volume curve (the minute-of-hour profile).

    python benchmarks/vwap_profile.py                 # seeds 1,2,3
    python benchmarks/vwap_profile.py --seeds 1

The market is calm_day's, with its noise traders' activity on an hourly cycle
(``activity_amplitude`` 0.9: busiest at the top of each hour, quietest at half past) and a run of
3 h 15 min. After two hours and 45 minutes of history, each run buys 2 BTC over the 30 minutes
from hh:45 to hh+1:15 (1-minute slices, passiveness 5000), once with VWAP and once with TWAP on the
same seed (the same market path, up to the parent's own impact):

==================  ==================================================================================
figure              definition
==================  ==================================================================================
``corr``            correlation of the parent's executed lots per minute with the market's volume
                    per minute (own fills excluded) over the window: TWAP is the baseline
``peak_share``      share of the parent executed in the window's middle 10 minutes (hh:55..hh+1:05),
                    against the market's share of volume there (``market_peak_share``)
``slip_bps``        average fill price against the interval VWAP of the tape (own fills excluded),
                    bps, positive = cost
==================  ==================================================================================

Prints one row per run, then one JSON line with the figures, the means over seeds and the
VWAP/TWAP ratios of the means (measured in the same run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from perpx.execution.backtest import BacktestResult, backtest
from perpx.execution.model import decode_parent
from perpx.sim.runner.simulation import START_NS
from perpx.sim.scenario import read_document, scenario_from_document

REPO = Path(__file__).resolve().parents[1]
NS_PER_S = 1_000_000_000
MINUTE_NS = 60 * NS_PER_S
WINDOW_START_NS = START_NS + (2 * 3600 + 45 * 60) * NS_PER_S
WINDOW_S = 1800
PEAK = (WINDOW_START_NS + 10 * MINUTE_NS, WINDOW_START_NS + 20 * MINUTE_NS)


def _scenario() -> Any:
    path = REPO / "scenarios" / "calm_day.toml"
    doc = read_document(path)
    doc["run"]["duration_s"] = 3 * 3600 + 15 * 60
    for agent in doc["agents"]:
        if agent["kind"] == "noise_trader":
            agent["activity_amplitude"] = 0.9
            agent["activity_period_s"] = 3600
    return scenario_from_document(doc, path.parent, path)


def _per_minute(points: list[tuple[int, int]]) -> list[float]:
    out = [0.0] * (WINDOW_S // 60)
    for ts_ns, lots in points:
        k = (ts_ns - WINDOW_START_NS) // MINUTE_NS
        if 0 <= k < len(out):
            out[k] += lots
    return out


def _figures(result: BacktestResult) -> dict[str, float]:
    own_ids = {f.trade_id for f in result.fills}
    own = _per_minute([(f.ts_ns, f.qty_lots) for f in result.fills])
    market_trades = [t for t in result.tape if t.trade_id not in own_ids]
    market = _per_minute([(t.ts_ns, t.qty_lots) for t in market_trades])
    in_peak = [t for t in market_trades if PEAK[0] <= t.ts_ns < PEAK[1]]
    peak_own = sum(f.qty_lots for f in result.fills if PEAK[0] <= f.ts_ns < PEAK[1])
    market_vwap = sum(t.price_ticks * t.qty_lots for t in market_trades) / sum(
        t.qty_lots for t in market_trades
    )
    filled = sum(f.qty_lots for f in result.fills)
    avg = sum(f.price_ticks * f.qty_lots for f in result.fills) / filled
    return {
        "filled_lots": filled,
        "corr": statistics.correlation(own, market),
        "peak_share": peak_own / filled,
        "market_peak_share": sum(t.qty_lots for t in in_peak) / sum(t.qty_lots for t in market_trades),
        "slip_bps": (avg - market_vwap) / market_vwap * 10_000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", default="1,2,3")
    args = parser.parse_args()
    scenario = _scenario()
    rows: dict[str, list[dict[str, float]]] = {"vwap": [], "twap": []}
    print(
        f"{'algo':<6}{'seed':>5}{'filled':>8}{'corr':>8}{'peak':>8}{'mkt peak':>10}{'slip bps':>10}{'wall s':>8}"
    )
    for seed in (int(s) for s in args.seeds.split(",")):
        for algo, runs in rows.items():
            parent = decode_parent(
                {
                    "algo": algo,
                    "market": "BTCUSDT",
                    "side": "buy",
                    "qty": "2",
                    "start_ns": WINDOW_START_NS,
                    "duration_s": WINDOW_S,
                    "slice_interval_s": 60,
                    "passiveness_bps": 5000,
                    "client_algo_id": f"profile-{algo}-{seed}",
                }
            )
            started = time.perf_counter()
            result = backtest(parent, scenario, seed=seed)
            wall = time.perf_counter() - started
            figures = _figures(result)
            runs.append(figures)
            print(
                f"{algo:<6}{seed:>5}{figures['filled_lots']:>8}{figures['corr']:>8.3f}{figures['peak_share']:>8.3f}"
                f"{figures['market_peak_share']:>10.3f}{figures['slip_bps']:>10.2f}{wall:>8.1f}"
            )
    means = {algo: {k: statistics.fmean(r[k] for r in runs) for k in runs[0]} for algo, runs in rows.items()}
    print(
        json.dumps(
            {
                "runs": rows,
                "means": means,
                "vwap_over_twap": {
                    k: means["vwap"][k] / means["twap"][k] if means["twap"][k] else None
                    for k in ("corr", "peak_share", "slip_bps")
                },
            }
        )
    )


if __name__ == "__main__":
    main()
