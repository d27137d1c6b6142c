"""The safety-band index against a full scan, over a seeded population and many mark moves.

Each round moves one mark *behind the stage's back*, asks the index which scopes are now at or
over 100% (flush, pop the crossed band edges, check those exactly) and compares with a check of
every account; then lets the stage liquidate (a real command) so the population evolves:
positions shrink, the fund takes over, ADL closes counterparties, and bands are recomputed at
whatever marks each account last changed at. The two answers must be equal every time.
"""

from __future__ import annotations

import random

from perpx.engine import invariants
from perpx.engine.commands import (
    AdvanceClock,
    CreateAccount,
    Deposit,
    MarginMode,
    OrderType,
    PlaceOrder,
    SetLeverage,
    SetMarginMode,
    SetMarkPrice,
)
from perpx.engine.engine import Engine
from perpx.engine.events import AccountCreated, LiquidationExplained
from perpx.engine.values import AccountId, AssetId, MarketId, Side, TxId

from .helpers import liq_config
from .test_properties import watch_due

MARKETS = (MarketId("BTCUSDT"), MarketId("ETHUSDT"))
START = {MarketId("BTCUSDT"): 300_000, MarketId("ETHUSDT"): 200_000}


class Clock:
    def __init__(self) -> None:
        self.now = 1_767_225_600_000_000_000

    def __call__(self) -> int:
        self.now += 1_000_000
        return self.now


def population(rng: random.Random, accounts: int) -> tuple[Engine, Clock]:
    engine = Engine(liq_config(liquidation_fee="0.003", percent_price_down="0.5", percent_price_up="1.5"))
    tick = Clock()
    for market, mark in START.items():
        engine.apply(SetMarkPrice(ts_ns=tick(), market=market, index_ticks=mark, mark_ticks=mark))

    def new_account(amount: int) -> AccountId:
        created = engine.apply(CreateAccount(ts_ns=tick(), name=""))[0]
        assert isinstance(created, AccountCreated)
        engine.apply(
            Deposit(
                ts_ns=tick(),
                account_id=created.account_id,
                asset=AssetId("USDT"),
                amount_atoms=amount * 10**8,
                tx_id=TxId(f"d{created.account_id}"),
            )
        )
        return created.account_id

    whale = new_account(10**9)
    for _ in range(accounts):
        account = new_account(rng.choice((500, 2_000, 10_000, 50_000)))
        for market in rng.sample(MARKETS, rng.choice((1, 1, 2))):
            if rng.random() < 0.4:
                engine.apply(
                    SetMarginMode(ts_ns=tick(), account_id=account, market=market, mode=MarginMode.ISOLATED)
                )
            leverage = rng.choice((2, 5, 10, 20))
            engine.apply(SetLeverage(ts_ns=tick(), account_id=account, market=market, leverage=leverage))
            spec = engine.specs[market]
            mark = engine.marks[market]
            available = engine.risk(account).available_atoms
            lots = available * leverage * rng.randint(3, 9) // 10 // (mark * spec.contract_atoms)
            if lots <= 0:
                continue
            side = rng.choice((Side.BUY, Side.SELL))
            for who, how in ((whale, side.opposite), (account, side)):
                engine.apply(
                    PlaceOrder(
                        ts_ns=tick(),
                        account_id=who,
                        market=market,
                        side=how,
                        order_type=OrderType.LIMIT,
                        qty_lots=lots,
                        price_ticks=mark,
                    )
                )
        if rng.random() < 0.3:  # some resting liquidity for liquidation orders
            market = rng.choice(MARKETS)
            mark = engine.marks[market]
            side = rng.choice((Side.BUY, Side.SELL))
            price = mark * (1000 - side * rng.randint(5, 120)) // 1000
            engine.apply(
                PlaceOrder(
                    ts_ns=tick(),
                    account_id=whale,
                    market=market,
                    side=side,
                    order_type=OrderType.LIMIT,
                    qty_lots=rng.randint(10, 3_000),
                    price_ticks=price,
                )
            )
    invariants.check(engine)
    return engine, tick


def test_the_index_and_a_full_scan_agree_over_a_population_and_many_moves() -> None:
    rng = random.Random(20260101)
    engine, tick = population(rng, 250)
    liquidations = due_seen = candidates = 0
    for _ in range(60):
        market = rng.choice(MARKETS)
        new = engine.marks[market] * (1000 + rng.randint(-45, 45)) // 1000
        engine.set_mark(market, new, new)  # behind the stage's back (index too: the mark stays in its band)
        full = engine.liquidation.due_by_full_scan()
        popped: set[AccountId] = set()
        assert watch_due(engine, (market,), popped) == full
        due_seen += len(full)
        candidates += len(popped)
        # the candidates the index handed out are re-banded, as the stage would; then the stage runs
        for account_id in popped:
            engine.liquidation.watch.check(engine.accounts[account_id])
        engine.price_moved(market)
        events = engine.apply(AdvanceClock(ts_ns=tick()))
        liquidations += sum(isinstance(e, LiquidationExplained) for e in events)
        invariants.check(engine)
        assert engine.liquidation.due_by_full_scan() == []
    assert due_seen > 20 and liquidations > 20  # the comparison was not about empty sets
    assert candidates < 60 * 250 // 4  # and the index looked at a fraction of the accounts
