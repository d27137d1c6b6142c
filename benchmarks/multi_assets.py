"""What a collateral index move costs in Multi-Assets Mode: proportional to the holders, not the accounts.

Each engine is the example lending venue (``perpx.lending.venue``) with ``--others`` plain accounts
(USDT only, not in the mode) and ``holders`` accounts in Multi-Assets Mode holding 1 BTC each. The
timed work is ``--moves`` BTC index moves (two quotes each, the price alternating by 1 USDT), which
revalue the holders' collateral. Configurations, alternating, ``--runs`` times each:

* ``baseline``: ``--holders`` holders and no other account;
* ``many_others``: the same holders beside ``--others`` accounts that hold no collateral (an index
  move must not look at them: the ratio to the baseline should be about 1);
* ``ten_x_holders``: ten times the holders and no other account (the cost should grow about tenfold).

It prints the median seconds per move of each and the ratios to the baseline measured in the same
run; the last line is one JSON object.

Run: ``python benchmarks/multi_assets.py [--holders H] [--others N] [--moves M] [--runs R]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
import tomllib
from collections.abc import Sequence

from perpx.engine.commands import CreateAccount, Deposit, SetMultiAssetsMode, SubmitAssetQuote
from perpx.engine.config import parse_config
from perpx.engine.engine import Engine
from perpx.engine.values import AccountId, AssetId, TxId
from perpx.lending.venue import LENDING_VENUE_TOML

BTC, USDT = AssetId("BTC"), AssetId("USDT")
START_NS = 1_767_225_600_000_000_000


def _engine(holders: int, others: int) -> Engine:
    engine = Engine(parse_config(tomllib.loads(LENDING_VENUE_TOML)))
    ts = START_NS
    for source in ("binance", "okx"):
        engine.apply(SubmitAssetQuote(ts_ns=ts, asset=BTC, source=source, price_atoms=50_000 * 10**8))
    for n in range(holders + others):
        account = AccountId(engine.next_account_id)
        engine.apply(CreateAccount(ts_ns=ts, name=f"a{n}"))
        holder = n < holders
        asset, amount = (BTC, 10**8) if holder else (USDT, 1_000 * 10**8)
        engine.apply(
            Deposit(ts_ns=ts, account_id=account, asset=asset, amount_atoms=amount, tx_id=TxId(f"d{n}"))
        )
        if holder:
            engine.apply(SetMultiAssetsMode(ts_ns=ts, account_id=account, enabled=True))
    return engine


def _time(holders: int, others: int, moves: int) -> float:
    engine = _engine(holders, others)
    ts = engine.now_ns
    commands = []
    for n in range(moves):
        price = (50_000 + n % 2) * 10**8
        for source in ("binance", "okx"):
            ts += 1_000_000
            commands.append(SubmitAssetQuote(ts_ns=ts, asset=BTC, source=source, price_atoms=price))
    apply = engine.apply
    gc.collect()
    start = time.perf_counter()
    for command in commands:
        apply(command)
    return (time.perf_counter() - start) / moves


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--holders", type=int, default=100)
    parser.add_argument("--others", type=int, default=10_000)
    parser.add_argument("--moves", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    shapes = {
        "baseline": (args.holders, 0),
        "many_others": (args.holders, args.others),
        "ten_x_holders": (10 * args.holders, 0),
    }
    times: dict[str, list[float]] = {kind: [] for kind in shapes}
    for _ in range(args.runs):
        for kind, (holders, others) in shapes.items():
            times[kind].append(_time(holders, others, args.moves))
    median = {kind: statistics.median(values) for kind, values in times.items()}
    for kind, seconds in median.items():
        print(f"{kind:14s} {seconds * 1e6:10.1f} us per index move (median of {args.runs})")
    result: dict[str, object] = {
        "holders": args.holders,
        "others": args.others,
        "moves": args.moves,
        "runs": args.runs,
        "baseline_us_per_move": round(median["baseline"] * 1e6, 1),
        "many_others_vs_baseline": round(median["many_others"] / median["baseline"], 3),
        "ten_x_holders_vs_baseline": round(median["ten_x_holders"] / median["baseline"], 3),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
