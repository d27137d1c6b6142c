"""What the lending stage costs the order path: the matching benchmark's stream with and without it.

The stream of ``benchmarks/matching.py`` (seeded limit orders, cancels and aggressive orders on
BTCUSDT; ``build_workload``) is applied to three fresh engines, alternating, ``--runs`` times each:

* ``baseline``: the lending stage's two per-command hooks replaced by no-ops (what the order path
  cost before the stage existed);
* ``idle``: the stage as it runs on every venue (no loans: one clock division and one flag test per
  command);
* ``book``: the example lending venue (``perpx.lending.venue``) with ``--loans`` open loans (their
  interest accrues at each minute boundary the stream's clock crosses).

It prints the median commands/s of each and the ratios to the baseline measured in the same run;
the last line is one JSON object.

Run: ``python benchmarks/lending.py [--commands N] [--runs R] [--loans L]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
import tomllib
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from matching import Workload, build_workload
from perpx.engine.commands import BorrowLoan, CreateAccount, Deposit, SubmitAssetQuote
from perpx.engine.config import parse_config
from perpx.engine.engine import Engine
from perpx.engine.values import AccountId, AssetId, TxId
from perpx.lending.venue import LENDING_VENUE_TOML

BTC, USDT = AssetId("BTC"), AssetId("USDT")


def _engine(workload: Workload, kind: str, loans: int) -> Engine:
    config = parse_config(tomllib.loads(LENDING_VENUE_TOML))
    engine = Engine(config)
    first_ts = workload.setup[0].ts_ns
    if kind == "book":
        engine.apply(CreateAccount(ts_ns=first_ts, name="lender"))
        engine.apply(
            Deposit(ts_ns=first_ts, account_id=AccountId(1), asset=USDT, amount_atoms=10**16, tx_id=TxId("l"))
        )
    for command in workload.setup:
        engine.apply(command)
    if kind == "book":
        ts = workload.setup[-1].ts_ns
        for source in ("binance", "okx"):
            engine.apply(SubmitAssetQuote(ts_ns=ts, asset=BTC, source=source, price_atoms=50_000 * 10**8))
        for n in range(loans):
            account = engine.next_account_id
            engine.apply(CreateAccount(ts_ns=ts, name=f"b{n}"))
            engine.apply(
                Deposit(
                    ts_ns=ts,
                    account_id=AccountId(account),
                    asset=BTC,
                    amount_atoms=10**8,
                    tx_id=TxId(f"b{n}"),
                )
            )
            engine.apply(
                BorrowLoan(
                    ts_ns=ts,
                    account_id=AccountId(account),
                    loan_asset=USDT,
                    collateral_asset=BTC,
                    loan_atoms=30_000 * 10**8,
                )
            )
        assert len(engine.lending.loans) == loans
    if kind == "baseline":
        engine.lending.catch_up = lambda now_ns: None  # type: ignore[method-assign]
        engine.lending.check = lambda: None  # type: ignore[method-assign]
    return engine


def _time(workload: Workload, kind: str, loans: int) -> float:
    engine = _engine(workload, kind, loans)
    apply = engine.apply
    gc.collect()
    start = time.perf_counter()
    for command in workload.stream:
        apply(command)
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--loans", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    workload = build_workload(args.commands, args.seed)
    times: dict[str, list[float]] = {"baseline": [], "idle": [], "book": []}
    for _ in range(args.runs):
        for kind, values in times.items():
            values.append(_time(workload, kind, args.loans))
    rate = {kind: len(workload.stream) / statistics.median(values) for kind, values in times.items()}
    for kind in times:
        print(f"{kind:9s} {rate[kind]:12,.0f} commands/s (median of {args.runs})")
    result: dict[str, object] = {
        "commands": len(workload.stream),
        "runs": args.runs,
        "loans": args.loans,
        "baseline_per_s": round(rate["baseline"]),
        "idle_vs_baseline": round(rate["idle"] / rate["baseline"], 3),
        "book_vs_baseline": round(rate["book"] / rate["baseline"], 3),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
