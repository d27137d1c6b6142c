"""Cost of the liquidation check after a mark update, with many accounts holding positions.

For each size (``--sizes``, default 10,000 and 100,000 accounts; add 1,000,000 explicitly) two
populations are built, *directly in the engine's state* (building a million accounts through
commands would take an hour; the state is the same kind the commands would produce):

* **none near**: every account far from liquidation (3% to 20% of adverse BTC move away);
* **1% near**: the same, but 1% of the accounts are cross accounts long BTC and ETH of equal
  notional whose liquidation is 0.4% of BTC move away: their BTC band edge (half the slack,
  shared by notional) is crossed by the measured 0.3% move, and the exact check finds them safe.

Accounts come in pairs (a long and a short of the same size) so long = short; a third hold
isolated positions, a third cross BTC only, a third cross BTC and ETH. Bands are computed once
(``Liquidation.rebuild``, what a restore does) before any timing.

Measured, per repeat (``--repeats``; the median is reported):

* **update**: ``engine.apply(SetMarkPrice(BTC 30,000 -> 29,910))``: the whole command, with the
  conditional-order stage and the liquidation stage (flush, pop the crossed band edges, exact
  check of those accounts, re-band them). Between repeats, untimed, the mark goes back to 30,000
  and the near accounts are re-banded there, so every repeat crosses the same edges.
* **full scan**: the baseline without the index: the exact check of every scope of every account
  at 29,910 (``Liquidation.due_by_full_scan``), in the same process on the same state.

One JSON line per size: accounts, for each population the median update time, how many accounts
the index rechecked, the full-scan time and the ratio; plus build and banding times.

Run: ``python benchmarks/risk.py [--sizes 10000,100000] [--repeats 7]``;
``python benchmarks/risk.py --sizes 1000000 --repeats 3`` for the million (about 4 GB, minutes).
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from perpx.engine import formulas
from perpx.engine.accounts import Account
from perpx.engine.commands import MarginMode, SetMarkPrice
from perpx.engine.config import default_config
from perpx.engine.engine import Engine
from perpx.engine.values import AccountId, AssetId, MarketId

BTC = MarketId("BTCUSDT")
ETH = MarketId("ETHUSDT")
BTC_MARK = 300_000  # 30,000.0
ETH_MARK = 200_000  # 2,000.00
MOVE_PERMILLE = 3  # the measured update: BTC 0.3% down
NEAR_MOVE = 4  # near accounts are liquidated by a 0.4% BTC move
START_NS = 1_767_225_600_000_000_000
USDT = AssetId("USDT")


@dataclass
class Population:
    engine: Engine
    near: list[AccountId]
    build_s: float
    band_s: float


def _maintenance(engine: Engine, market: MarketId, lots: int, mark: int) -> int:
    spec = engine.specs[market]
    notional = formulas.notional_atoms(mark, lots, spec.contract_atoms)
    bracket = spec.bracket_for_notional(notional)
    return formulas.maintenance_margin_atoms(notional, bracket.mmr_e8, bracket.cum_atoms)


def build(accounts: int, near_share: float, seed: int = 1) -> Population:
    """``accounts`` accounts with positions, ``near_share`` of them near liquidation; bands computed."""
    import random

    rng = random.Random(seed)
    started = time.perf_counter()
    engine = Engine(default_config())
    engine.marks[BTC] = engine.indexes[BTC] = BTC_MARK
    engine.marks[ETH] = engine.indexes[ETH] = ETH_MARK
    btc_contract = engine.specs[BTC].contract_atoms
    eth_contract = engine.specs[ETH].contract_atoms
    near_every = round(1 / near_share) if near_share else 0
    near: list[AccountId] = []
    deposits = 0
    next_id = 1

    def open_account() -> Account:
        nonlocal next_id
        account = Account(AccountId(next_id), "")
        engine.accounts[account.account_id] = account
        next_id += 1
        return account

    def hold(account: Account, market: MarketId, qty: int, mark: int, contract: int, isolated: bool) -> None:
        position = engine.position_record(account, market)
        position.qty_lots = qty
        position.cost_atoms = qty * mark * contract
        if isolated:
            position.margin_mode = MarginMode.ISOLATED
        if qty > 0:
            engine.open_interest_lots[market] += qty

    for pair in range(accounts // 2):
        lots = rng.randint(20, 400)  # 0.02 to 0.4 BTC
        eth_lots = lots * 15  # about the same notional in ETH
        is_near = near_every and pair % (near_every // 2 or 1) == 0 and len(near) < accounts * near_share
        kind = pair % 3
        for side in (1, -1):
            account = open_account()
            qty = side * lots
            if is_near and side == 1:
                # cross, long BTC and ETH of equal notional, liquidated by a 0.4% BTC move alone
                hold(account, BTC, qty, BTC_MARK, btc_contract, False)
                hold(account, ETH, side * eth_lots, ETH_MARK, eth_contract, False)
                maintenance = _maintenance(engine, BTC, lots, BTC_MARK) + _maintenance(
                    engine, ETH, eth_lots, ETH_MARK
                )
                wallet = maintenance + lots * btc_contract * BTC_MARK * NEAR_MOVE // 1000
                account.balances[USDT] = wallet
                deposits += wallet
                near.append(account.account_id)
                continue
            distance = rng.randint(30, 200)  # per mille of adverse BTC move to liquidation
            cushion = lots * btc_contract * BTC_MARK * distance // 1000
            if kind == 0:  # isolated BTC
                hold(account, BTC, qty, BTC_MARK, btc_contract, True)
                margin = _maintenance(engine, BTC, lots, BTC_MARK) + cushion
                engine.accounts[account.account_id].positions[BTC].isolated_margin_atoms = margin
                account.balances[USDT] = 1_000 * 10**8
                deposits += margin + 1_000 * 10**8
            elif kind == 1:  # cross BTC only
                hold(account, BTC, qty, BTC_MARK, btc_contract, False)
                wallet = _maintenance(engine, BTC, lots, BTC_MARK) + cushion
                account.balances[USDT] = wallet
                deposits += wallet
            else:  # cross BTC and ETH
                hold(account, BTC, qty, BTC_MARK, btc_contract, False)
                hold(account, ETH, qty * 15, ETH_MARK, eth_contract, False)
                wallet = (
                    _maintenance(engine, BTC, lots, BTC_MARK)
                    + _maintenance(engine, ETH, eth_lots, ETH_MARK)
                    + 2 * cushion
                )
                account.balances[USDT] = wallet
                deposits += wallet
        if is_near:  # the near long's short partner holds the ETH too, so long = short in ETH
            partner = engine.accounts[AccountId(next_id - 1)]
            hold(partner, ETH, -eth_lots, ETH_MARK, eth_contract, False)
            partner.balances[USDT] += lots * btc_contract * BTC_MARK
            deposits += lots * btc_contract * BTC_MARK
    engine.next_account_id = next_id
    engine.deposits_atoms[USDT] = deposits
    built = time.perf_counter()
    engine.liquidation.rebuild()
    banded = time.perf_counter()
    return Population(engine, near, built - started, banded - built)


def measure(population: Population, repeats: int) -> dict[str, float | int]:
    engine = population.engine
    stage = engine.liquidation
    watch = stage.watch
    moved = BTC_MARK * (1000 - MOVE_PERMILLE) // 1000
    ts = START_NS
    updates: list[float] = []
    scans: list[float] = []
    rechecked = 0
    for _ in range(repeats):
        # untimed: back to 30,000, near accounts banded there again (as after the build)
        ts += 1_000_000
        engine.apply(SetMarkPrice(ts_ns=ts, market=BTC, index_ticks=BTC_MARK, mark_ticks=BTC_MARK))
        for account_id in population.near:
            watch.band(engine.accounts[account_id])
        watch.pending.clear()
        checked_before = _CHECKS[0]
        gc.collect()
        gc.disable()
        ts += 1_000_000
        command = SetMarkPrice(ts_ns=ts, market=BTC, index_ticks=moved, mark_ticks=moved)
        start = time.perf_counter()
        events = engine.apply(command)
        updates.append(time.perf_counter() - start)
        gc.enable()
        assert not any(type(e).__name__ == "LiquidationExplained" for e in events), "the benchmark liquidated"
        rechecked = _CHECKS[0] - checked_before
        # the baseline on the same state: every scope of every account, exactly
        gc.collect()
        gc.disable()
        start = time.perf_counter()
        due = stage.due_by_full_scan()
        scans.append(time.perf_counter() - start)
        gc.enable()
        assert due == []
    update = statistics.median(updates)
    scan = statistics.median(scans)
    return {
        "update_ms": round(update * 1e3, 3),
        "rechecked": rechecked if _countable() else -1,
        "full_scan_ms": round(scan * 1e3, 1),
        "speedup": round(scan / update, 1),
    }


def _countable() -> bool:
    """Whether :func:`_instrument` can count (-1 when not): a compiled ``RiskWatch.check`` is called without the patch."""
    from perpx.engine.liquidation import watch

    return not str(watch.__file__).endswith(".so")


_CHECKS = [0]
"""Accounts handed to ``RiskWatch.check`` (the candidates of an update), counted by :func:`_instrument`."""


def _instrument() -> None:
    """Count the accounts the stage rechecks (``RiskWatch.check`` calls); one increment each."""
    from perpx.engine.liquidation.watch import RiskWatch

    original = RiskWatch.check

    def check(self: RiskWatch, account: Account) -> bool:
        _CHECKS[0] += 1
        return original(self, account)

    RiskWatch.check = check  # type: ignore[method-assign]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--sizes", default="10000,100000", help="account counts, comma separated (default 10000,100000)"
    )
    parser.add_argument("--repeats", type=int, default=7, help="timed updates per population (default 7)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    _instrument()
    for size in sizes:
        result: dict[str, object] = {
            "benchmark": "risk",
            "accounts": size,
            "move": f"BTC -{MOVE_PERMILLE / 10}%",
            "repeats": args.repeats,
            "python": platform.python_version(),
        }
        for label, share in (("none_near", 0.0), ("one_pct_near", 0.01)):
            population = build(size, share)
            figures = measure(population, args.repeats)
            figures["near_accounts"] = len(population.near)
            figures["build_s"] = round(population.build_s, 1)
            figures["band_s"] = round(population.band_s, 1)
            result[label] = figures
            del population
            gc.collect()
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    sys.setrecursionlimit(10_000)
    main()
