"""Money stress: a long seeded stream of adversarial commands; the venue's money rules hold after each.

The vocabulary is the liquidation property test's (:mod:`tests.liquidation.test_properties`):
trades between any two of six accounts (800 to 250,000 USDT), colluding rings at 125x that open at
the mark and close into the partner's bid at the percent-price band's edge, trades at the band's
edges, marks moved by up to 25% and set off their index, walks into liquidation over a quoted
book, limit and market orders, isolated margin, leverage, cancels, fund deposits; accounts are
topped up when they run dry. After **every** command the harness checks every invariant
(conservation, long = short, no live scope at or over 100%, no account holding nothing below zero,
the fund's equity not below zero, the fee account not below zero, every mark within its band);
every liquidation record is checked to add up, and the fund pays a deficit only inside a
liquidation of that account.

CI runs a short stream; the full run is opt-in (``--run-stress``, ``PERPX_STRESS=1`` or ``-m
stress``): ``PERPX_MONEY_STRESS_COMMANDS`` (default 1,000,000) and ``PERPX_MONEY_STRESS_SEED``.
The run prints what it exercised (liquidations, ADL legs, refusals beyond bankruptcy, ...), so a
stream that stopped doing anything is visible.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from typing import Any

import pytest

from perpx.engine.codes import RejectCode
from perpx.engine.events import (
    AdlStep,
    Event,
    ExpireReason,
    LiquidationExplained,
    MarkClamped,
    OrderExpired,
    OrderRejected,
    TakeoverStep,
)
from perpx.engine.values import MarketId

from .test_properties import (
    DEPOSITS,
    MARKETS,
    NAMES,
    START,
    build,
    check_fund_pays_only_in_liquidations,
    check_record,
    run,
)

LOTS = (20, 50, 100, 200, 400, 800, 1600, 4000)
CI_COMMANDS = 30_000


def random_action(rng: random.Random, v: Any) -> tuple[Any, ...]:
    """One action of the property test's vocabulary, drawn from ``rng``; marks drift back toward the start."""
    market = rng.choice(MARKETS)
    kind = rng.choices(
        (
            "trade",
            "edge",
            "ring",
            "mark",
            "skew",
            "walk",
            "quote",
            "max",
            "limit",
            "market",
            "leverage",
            "isolate",
            "adjust",
            "cancel",
            "fund",
        ),
        weights=(14, 6, 8, 10, 4, 2, 6, 4, 10, 6, 4, 2, 3, 4, 1),
    )[0]
    person, other = rng.randrange(6), rng.randrange(6)
    if kind == "trade":
        return ("trade", person, other, market, rng.choice(LOTS), rng.randint(-20, 20))
    if kind == "edge":
        return ("trade", person, other, market, rng.choice(LOTS), rng.choice((-50, -49, 49, 50)))
    if kind == "ring":
        return (
            "ring",
            rng.randrange(5),
            rng.randrange(5),
            market,
            rng.choice(LOTS),
            rng.choice((-50, -49, -30, 49, 50)),
        )
    if kind == "mark":
        drift = v.engine.marks[MarketId(market)] / START[market]
        low, high = (-250, 60) if drift > 1.6 else (-60, 250) if drift < 0.6 else (-60, 60)
        return ("mark", market, rng.randint(low, high) if rng.random() < 0.2 else rng.randint(-12, 8))
    if kind == "skew":
        return ("skew", market, rng.randint(-60, 60), rng.randint(-20, 20))
    if kind == "walk":
        return ("walk", market, rng.randint(2, 12), rng.choice((-3, -2, -1, 1, 2)), rng.choice(LOTS))
    if kind == "quote":
        return ("quote", market, rng.choice(LOTS), rng.randint(0, 12))
    if kind == "max":
        return ("max", rng.randrange(5), market, rng.choice(("buy", "sell")))
    if kind == "limit":
        return (
            "limit",
            person,
            market,
            rng.choice(("buy", "sell")),
            rng.randint(1, 3000),
            rng.randint(-40, 40),
        )
    if kind == "market":
        return ("market", person, market, rng.choice(("buy", "sell")), rng.randint(1, 3000))
    if kind == "leverage":
        return ("leverage", person, market, rng.choice((2, 5, 10, 20, 50, 125)))
    if kind == "isolate":
        return ("isolate", person, market)
    if kind == "adjust":
        return ("adjust", person, market, rng.randint(-500, 500))
    if kind == "cancel":
        return ("cancel", person, market)
    return ("fund", rng.randint(0, 2000))


def tally(counts: Counter[str], events: list[Event]) -> None:
    for event in events:
        if isinstance(event, LiquidationExplained):
            counts[f"liquidation {event.outcome}"] += 1
            for step in event.steps:
                if isinstance(step, AdlStep):
                    counts["adl legs"] += len(step.legs)
                elif isinstance(step, TakeoverStep):
                    counts["forced takeovers" if step.forced else "takeovers"] += 1
        elif isinstance(event, OrderRejected) and event.code == RejectCode.BEYOND_BANKRUPTCY:
            counts["refused beyond bankruptcy"] += 1
        elif isinstance(event, OrderExpired) and event.reason == ExpireReason.BANKRUPTCY:
            counts["expired at bankruptcy"] += 1
        elif isinstance(event, MarkClamped):
            counts["marks clamped"] += 1


def stream(commands: int, seed: int) -> Counter[str]:
    """Apply adversarial actions until ``commands`` commands ran; every check after every command."""
    rng = random.Random(seed)
    v = build({})
    counts: Counter[str] = Counter()
    start = len(v.journal)
    while len(v.journal) - start < commands:
        for name, deposit in zip(NAMES, DEPOSITS, strict=True):
            if v.engine.risk(v.names[name]).wallet_atoms < 100 * 10**8:
                v.deposit(name, deposit)
                counts["top-ups"] += 1
        for events in run(v, [random_action(rng, v)]):
            check_fund_pays_only_in_liquidations(events)
            tally(counts, events)
            for event in events:
                if isinstance(event, LiquidationExplained):
                    check_record(v, event)
    counts["commands"] = len(v.journal) - start
    assert v.engine.liquidation.due_by_full_scan() == []
    return counts


def test_a_short_adversarial_stream_keeps_every_money_rule() -> None:
    counts = stream(CI_COMMANDS, 20261202)
    print(dict(sorted(counts.items())))
    # the stream did what it is for: it liquidated, reached ADL and hit the bankruptcy guard
    assert counts["liquidation CLOSED"] > 0 and counts["adl legs"] > 0
    assert counts["refused beyond bankruptcy"] + counts["expired at bankruptcy"] > 0
    assert counts["marks clamped"] > 0


@pytest.mark.stress
def test_a_million_adversarial_commands_keep_every_money_rule() -> None:
    commands = int(os.environ.get("PERPX_MONEY_STRESS_COMMANDS", "1000000"))
    seed = int(os.environ.get("PERPX_MONEY_STRESS_SEED", "20260101"))
    counts = stream(commands, seed)
    print(dict(sorted(counts.items())))
    assert counts["commands"] >= commands
