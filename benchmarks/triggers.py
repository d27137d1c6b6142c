"""Cost of the conditional-order stage against the number of resting conditional orders.

For each size ``n`` (default 1,000, 10,000 and 100,000), one engine holds ``n``
untriggered conditional orders on BTCUSDT of the default venue: STOP_MARKET
SELLs on the mark between 1% and 9% below it, STOP_MARKET BUYs the same above,
a tenth of them price-protected, plus 100 active trailing stops (10% callback). Then, timed:

* **quiet**: ``--updates`` mark updates alternating one tick up and down, which
  trigger nothing (each is a full ``engine.apply`` of ``SetMarkPrice``: the
  stage bisects its sorted lists and scans the 100 trailing stops);
* **one fires**: ``--updates`` mark updates, each moving the mark onto the
  level of the next-nearest stop so exactly one triggers (its MARKET child
  finds no liquidity and expires: the stage's own cost, not matching).

Flat figures across ``n`` mean the stage costs what triggers, not what rests.
The last line printed is one JSON object. Run: ``python benchmarks/triggers.py``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import tomllib

from perpx.engine.commands import (
    ConditionalType,
    CreateAccount,
    Deposit,
    PlaceConditionalOrder,
    SetMarkPrice,
    WorkingType,
)
from perpx.engine.config import DEFAULT_CONFIG_TOML, default_config, parse_config
from perpx.engine.engine import Engine
from perpx.engine.events import ConditionalOrderTriggered
from perpx.engine.values import AccountId, AssetId, MarketId, Side, TxId

MARKET = MarketId("BTCUSDT")
MARK = 300_000  # 30,000.0
TRAILING = 100


def build(n: int) -> tuple[Engine, list[int]]:
    """An engine with ``n`` resting stops and the sell-stop levels, nearest first."""
    data = tomllib.loads(DEFAULT_CONFIG_TOML)
    data["markets"]["BTCUSDT"]["max_algo_orders"] = n + TRAILING + 1
    engine = Engine(parse_config(data))
    ts = 1
    engine.apply(CreateAccount(ts_ns=ts, name="a"))
    account = AccountId(1)
    engine.apply(
        Deposit(ts_ns=ts, account_id=account, asset=AssetId("USDT"), amount_atoms=10**18, tx_id=TxId("d"))
    )
    engine.apply(SetMarkPrice(ts_ns=ts, market=MARKET, index_ticks=MARK, mark_ticks=MARK))
    sells: list[int] = []
    for i in range(n):
        offset = 3_000 + (i * 24_000) // n  # 1% .. 9% from the mark
        side = Side.SELL if i % 2 == 0 else Side.BUY
        trigger = MARK - offset if side is Side.SELL else MARK + offset
        if side is Side.SELL:
            sells.append(trigger)
        engine.apply(
            PlaceConditionalOrder(
                ts_ns=ts,
                account_id=account,
                market=MARKET,
                side=side,
                order_type=ConditionalType.STOP_MARKET,
                qty_lots=10,
                trigger_price_ticks=trigger,
                working_type=WorkingType.MARK_PRICE,
                price_protect=i % 10 == 0,
            )
        )
    for i in range(TRAILING):
        engine.apply(
            PlaceConditionalOrder(
                ts_ns=ts,
                account_id=account,
                market=MARKET,
                side=Side.SELL if i % 2 else Side.BUY,
                order_type=ConditionalType.TRAILING_STOP_MARKET,
                qty_lots=10,
                callback_rate_e8=10_000_000,  # 10%: never reached here
                working_type=WorkingType.MARK_PRICE,
            )
        )
    assert len(engine.triggers.orders) == n + TRAILING
    return engine, sorted(sells, reverse=True)


def timed_updates(engine: Engine, marks: list[int]) -> tuple[float, int]:
    fired = 0
    start = time.perf_counter()
    for i, mark in enumerate(marks):
        events = engine.apply(SetMarkPrice(ts_ns=2 + i, market=MARKET, index_ticks=mark, mark_ticks=mark))
        fired += sum(isinstance(e, ConditionalOrderTriggered) for e in events)
    return (time.perf_counter() - start) / len(marks) * 1e6, fired


def main() -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--updates", type=int, default=2_000)
    args = parser.parse_args()
    default_config()  # fail early on a broken default config
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        engine, sells = build(n)
        quiet_us, quiet_fired = timed_updates(engine, [MARK + (i % 2) for i in range(args.updates)])
        if quiet_fired:
            raise RuntimeError("a quiet update triggered an order")
        count = min(args.updates, len(sells))
        one_us, fired = timed_updates(engine, sells[:count])
        if fired != count:
            raise RuntimeError(f"{count} updates should have fired {count} stops, fired {fired}")
        rows.append(
            {"resting": n + TRAILING, "quiet_update_us": round(quiet_us, 2), "one_fires_us": round(one_us, 2)}
        )
        print(f"{n + TRAILING:>8} resting: quiet update {quiet_us:8.2f} us, one firing {one_us:8.2f} us")
    result = {
        "figure": "trigger_stage",
        "python": platform.python_version(),
        "updates": args.updates,
        "sizes": rows,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
