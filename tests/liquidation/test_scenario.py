"""A -30% move through a thin book: partial liquidation, insurance takeover, then ADL, in that order.

BTCUSDT with ``liquidation_fee = 0.2%`` (so partial liquidation is possible in tier 2) and
``percent_price_down = 0.5`` (so a bid can rest at the post-crash price before the crash).
At 30,000: P long 5 BTC with 45,430 USDT, T long 1 with 8,700, A long 2 with 17,000; two shorts;
the fund holds 500; one bid of 1 BTC at 20,990. The mark drops to 21,000 in one update.

* P: margin balance 45,430 - 45,000 = 430 against MM 105,000 x 0.5% - 50 = 475 (110.5%): each
  BTC sold at 20,990 frees 105 of MM and costs 42 of fee and 10 of slippage, so 45 / 53 = 0.85 BTC
  restore it. The bid takes them. (PARTIAL)
* T: 8,700 - 9,000 = -300, bankrupt at 21,300; the bid left (20,990) is below that, so the fund
  takes the whole BTC at 21,300 (300 of loss on the mark). (takeover)
* A: 17,000 - 18,000 = -1,000, bankrupt at 21,500 (500 a BTC). The fund has 235.7 of equity left
  (500 + 35.7 of P's fee - 300): it takes 0.471 BTC; the other 1.529 BTC are auto-deleveraged
  against the short at the top of the queue. (takeover, then ADL)

Least distressed first: P (110%), then T (hole 300), then A (hole 1,000).
"""

from __future__ import annotations

from perpx.engine import invariants
from perpx.engine.events import (
    AdlStep,
    LiquidationExplained,
    OrderStep,
    PositionTransferred,
    TakeoverStep,
    TransferReason,
)
from perpx.engine.values import MarketId

from .helpers import BTC, USDT, liq_config, make_venue, qty, records, seed_fund, steps, trade, wallet


def test_a_30_percent_move_shows_partial_liquidation_then_takeover_then_adl() -> None:
    v = make_venue(
        liq_config(liquidation_fee="0.002", percent_price_down="0.5"),
        mm="1000000",
        p="45505",
        t="8715",
        a="17030",
        s1="200000",
        s2="20000",
    )
    trade(v, "p", "s1", "5", "30000")
    trade(v, "t", "s1", "1", "30000")
    trade(v, "a", "s2", "2", "30000")
    seed_fund(v, "500")
    v.place("mm", BTC, "buy", "1", "20990")
    assert (wallet(v, "p"), wallet(v, "t"), wallet(v, "a")) == (45_430 * USDT, 8_700 * USDT, 17_000 * USDT)

    events = v.mark(BTC, "21000")  # -30%
    invariants.check(v.engine)

    p, t, a = records(events)
    names = {v.names[n]: n for n in v.names}
    assert [names[r.account_id] for r in (p, t, a)] == ["p", "t", "a"]

    # 1. partial: 0.85 BTC into the bid, and the ratio is back under 100%
    assert p.outcome == "PARTIAL" and p.partial_plan_lots == 850
    assert p.before.ratio_e8 == 110_465_117 and p.after.ratio_e8 < 100_000_000
    assert steps(p, OrderStep)[0].filled_lots == 850 and qty(v, "p") == 4_150

    # 2. takeover: the book has nothing left at or above T's bankruptcy price 21,300
    assert t.outcome == "CLOSED" and steps(t, OrderStep)[0].filled_lots == 0
    (taken,) = steps(t, TakeoverStep)
    assert (taken.qty_lots, taken.value_atoms, taken.loss_atoms) == (1_000, 21_300 * USDT, 300 * USDT)
    assert not steps(t, AdlStep) and wallet(v, "t") == 0

    # 3. the fund takes what its equity covers, ADL the rest
    (partly,) = steps(a, TakeoverStep)
    assert (partly.fund_equity_atoms, partly.qty_lots) == (23_570_000_000, 471)  # 235.7 USDT: 0.471 BTC
    (deleveraged,) = steps(a, AdlStep)
    assert deleveraged.qty_lots == 1_529 and deleveraged.legs[0].account_id == v.names["s2"]
    assert deleveraged.shortfall_atoms == 764_50_000_000  # 1.529 x 500
    assert wallet(v, "a") == 0 and qty(v, "a") == 0

    # in that order in the event stream too
    kinds: list[str] = []
    for event in events:
        if isinstance(event, PositionTransferred) and event.account_id in (v.names["t"], v.names["a"]):
            kinds.append(event.reason.value)
        elif isinstance(event, LiquidationExplained):
            kinds.append(event.outcome)
    assert kinds == [
        "PARTIAL",
        TransferReason.INSURANCE_TAKEOVER.value,
        "CLOSED",
        TransferReason.INSURANCE_TAKEOVER.value,
        TransferReason.ADL.value,
        "CLOSED",
    ]

    # the fund holds 1.471 BTC and what is left of its equity; long = short
    fund = v.engine.liquidation.insurance_fund()
    assert fund.positions == {MarketId(BTC): 1_471} and fund.equity_atoms == 20_000_000  # 0.2 USDT
    assert v.engine.liquidation.due_by_full_scan() == []
