"""Stress: a long seeded stream of random commands on the engine and the reference model.

Opt-in (see ``tests/conftest.py``): ``pytest --run-stress``, ``PERPX_STRESS=1`` or
``-m stress``. Knobs, all environment variables:

==========================  =========  ================================================
variable                    default    meaning
==========================  =========  ================================================
``PERPX_STRESS_COMMANDS``   1000000    trading commands to send (accounts and deposits
                                       for the 1,000 accounts come on top)
``PERPX_STRESS_CHECK_EVERY`` 5000      run :func:`perpx.engine.invariants.check` every
                                       this many commands (and always at the end)
``PERPX_STRESS_SEED``       20260101   seed of the test's ``random.Random``
==========================  =========  ================================================

The mix: passive limit orders, aggressive limit orders (GTC/IOC/FOK/GTX),
MARKET orders, reduce-only orders against open positions, cancels (own orders,
someone else's, unknown ids), amends (price and size, crossing or not) and
mark moves, over 1,000 funded accounts, all self-trade prevention modes.

What is checked:

* **every command**: the engine's outcomes (acceptances and order ids, each
  fill's trade id, price, quantity, taker and maker, rejections with codes,
  expirations with reasons, cancels, amends and reduce-only trims) equal the
  reference model's, in order, so a divergence is reported at the command that
  caused it;
* **every ``PERPX_STRESS_CHECK_EVERY`` commands** and at the end: the engine's
  invariants (checking them after each of a million commands would take far
  longer than the run itself);
* **at the end**: the L2 book (price, total quantity per level) and the L3
  book (order ids in queue order) of both sides, every position, and a
  snapshot round trip to the same state hash.

The randomness lives in the test only; the engine draws none.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from perpx.engine import invariants
from perpx.engine.state import restore, snapshot, state_hash
from perpx.engine.values import AccountId
from perpx.journal.journal import JournalWriter
from tests.engine import reference_book as ref
from tests.engine.differential import Differential
from tests.engine.reference_book import Accepted, Canceled, Expired, Filled, Outcome

COMMANDS = int(os.environ.get("PERPX_STRESS_COMMANDS", "1000000"))
CHECK_EVERY = int(os.environ.get("PERPX_STRESS_CHECK_EVERY", "5000"))
SEED = int(os.environ.get("PERPX_STRESS_SEED", "20260101"))
ACCOUNTS = 1_000
MARK = 10_000
TAKE_BOUND = "0.002"  # 20 ticks either side of the mark; the book spreads wider
MAX_RESTING = 3_000  # above this, new passive orders give way to cancels

TIFS = [ref.GTC, ref.IOC, ref.IOC, ref.FOK, ref.GTX]
STPS = [ref.STP_NONE] * 7 + [ref.EXPIRE_TAKER, ref.EXPIRE_MAKER, ref.EXPIRE_BOTH]


class LiveOrders:
    """Resting order ids and owners, for O(1) random picks; kept from the outcomes alone."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.where: dict[int, int] = {}
        self.owner: dict[int, AccountId] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, order_id: int, owner: AccountId) -> None:
        self.where[order_id] = len(self.ids)
        self.ids.append(order_id)
        self.owner[order_id] = owner

    def discard(self, order_id: int) -> None:
        index = self.where.pop(order_id, None)
        if index is None:
            return
        last = self.ids.pop()
        if last != order_id:
            self.ids[index] = last
            self.where[last] = index
        del self.owner[order_id]

    def pick(self, rng: random.Random) -> int:
        return self.ids[rng.randrange(len(self.ids))]

    def follow(self, outcomes: list[Outcome], owner: AccountId) -> None:
        for o in outcomes:
            if isinstance(o, Accepted):
                self.add(o.order_id, owner)
            elif isinstance(o, Filled):
                if o.taker_leaves == 0:
                    self.discard(o.taker_id)
                if o.maker_leaves == 0:
                    self.discard(o.maker_id)
            elif isinstance(o, Expired | Canceled):
                self.discard(o.order_id)


REPLAY_SCRIPT = """
import sys
from perpx.engine.engine import Engine
from perpx.engine.state import state_hash
from perpx.journal.journal import scan
from tests.engine.differential import book_config

engine = Engine(book_config(sys.argv[2]))
for record in scan(sys.argv[1]).records:
    engine.apply(record.command)
print(state_hash(engine))
"""


def _replay_in_fresh_process(journal: Path, hash_seed: str) -> str:
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONHASHSEED=hash_seed, PYTHONPATH=str(root))
    done = subprocess.run(
        [sys.executable, "-c", REPLAY_SCRIPT, str(journal), TAKE_BOUND],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
    )
    return done.stdout.strip()


@pytest.mark.stress
def test_random_commands_match_the_reference_model(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    # journal=True keeps every command the engine applies (setup included) for the replay below
    diff = Differential(ACCOUNTS, MARK, TAKE_BOUND, journal=True)
    model = diff.model
    engine = diff.venue.engine
    accounts = diff.accounts
    live = LiveOrders()
    seen: Counter[str] = Counter()
    mark = MARK
    started = time.perf_counter()
    checks = 0
    depth_total = 0  # resting orders summed over the checkpoints, for the report

    for n in range(1, COMMANDS + 1):
        roll = rng.random()
        who = accounts[rng.randrange(ACCOUNTS)]
        if roll < 0.45 and len(live) > MAX_RESTING:
            roll = 0.70  # the book is deep enough: cancel instead
        if roll < 0.45:
            kind = "passive"
            side = rng.choice((ref.BUY, ref.SELL))
            price = mark - side * (1 + int(rng.expovariate(1 / 12)))
            got, want = diff.place(
                who, side, ref.LIMIT, rng.randint(1, 20), max(1, price), ref.GTC, ref.STP_NONE
            )
        elif roll < 0.57:
            side = rng.choice((ref.BUY, ref.SELL))
            if live and rng.random() < 0.2:
                who = live.owner[live.pick(rng)]  # an account with resting orders: self-trades happen
            tif, stp = rng.choice(TIFS), rng.choice(STPS)
            if roll < 0.53:
                kind = "aggressive"
                price = mark + side * rng.randint(-3, 25)
                got, want = diff.place(who, side, ref.LIMIT, rng.randint(1, 25), max(1, price), tif, stp)
            else:
                kind = "market"
                tif = ref.GTC if tif == ref.GTX else tif
                got, want = diff.place(who, side, ref.MARKET, rng.randint(1, 30), None, tif, stp)
        elif roll < 0.63:
            kind = "reduce_only"
            lots = model.positions.get(who, 0)
            side = ref.SELL if lots > 0 else ref.BUY  # against a flat position: refused
            qty = max(1, abs(lots) + rng.choice((-5, 0, 0, 3, 20)))
            if rng.random() < 0.3:
                got, want = diff.place(
                    who, side, ref.MARKET, qty, None, rng.choice((ref.IOC, ref.FOK)), ref.STP_NONE, True
                )
            else:
                price = mark + side * rng.randint(-10, 10)
                got, want = diff.place(
                    who, side, ref.LIMIT, qty, max(1, price), rng.choice(TIFS), rng.choice(STPS), True
                )
        elif roll < 0.85:
            kind = "cancel"
            if live and roll < 0.835:
                order_id = live.pick(rng)
                owner = live.owner[order_id] if rng.random() < 0.95 else who
                got, want = diff.cancel(owner, order_id)
            else:
                got, want = diff.cancel(who, rng.randint(1, model.next_order_id + 5))
        elif roll < 0.97:
            kind = "amend"
            if live:
                order_id = live.pick(rng)
                owner = live.owner[order_id]
                order = next(
                    o for o in model.side_list(ref.BUY) + model.side_list(ref.SELL) if o.order_id == order_id
                )
                price = max(1, order.price + rng.choice((0, 0, -1, 1, -3, 3, -15, 15)))
                qty = max(1, order.qty + rng.choice((-3, -1, 0, 1, 5, 20)))
                got, want = diff.amend(owner, order_id, price, qty)
            else:
                got, want = diff.amend(who, rng.randint(1, model.next_order_id + 5), mark, 1)
        else:
            kind = "mark"
            mark = min(MARK + 150, max(MARK - 150, mark + rng.choice((-3, -1, 1, 3))))
            diff.set_mark(mark)
            got, want = [], []
        if got != want:
            raise AssertionError(
                f"command {n} ({kind}, seed {SEED}) diverged\n  engine: {got}\n  model:  {want}"
            )
        live.follow(got, who)
        seen[kind] += 1
        for o in got:
            seen[type(o).__name__] += 1
        if n % CHECK_EVERY == 0:
            invariants.check(engine)
            checks += 1
            depth_total += len(live)

    invariants.check(engine)
    checks += 1
    for side in (ref.BUY, ref.SELL):
        assert diff.engine_l2(side) == model.l2(side), f"final L2 of side {side} differs"
        assert diff.engine_l3(side) == model.l3(side), f"final L3 of side {side} differs"
    assert diff.engine_positions() == diff.model_positions()
    assert sorted(live.ids) == sorted(o.order_id for o in model.resting())
    restored = restore(diff.config, snapshot(engine))
    assert state_hash(restored) == state_hash(engine)
    journal_path = tmp_path / "stress.journal"
    with JournalWriter(journal_path, next_seq=1, fsync=False) as writer:
        writer.append_all(diff.venue.journal)
    expected = state_hash(engine)
    assert _replay_in_fresh_process(journal_path, "1") == expected
    assert _replay_in_fresh_process(journal_path, "4242") == expected
    elapsed = time.perf_counter() - started
    print(
        f"\nstress: {COMMANDS} commands, seed {SEED}, {elapsed:.1f} s ({COMMANDS / elapsed:,.0f}/s),"
        f" invariants checked {checks} times, {depth_total // max(1, checks - 1)} orders resting on average"
        f" at the checkpoints, {len(live)} at the end"
    )
    print("  " + ", ".join(f"{k}={v}" for k, v in sorted(seen.items())))
    assert seen["Filled"] > COMMANDS // 20, "the mix should trade a lot"
