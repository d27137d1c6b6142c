"""Agents: built from config tables, trading only their own accounts, reacting to the market as designed."""

from __future__ import annotations

import random
import tomllib
from pathlib import Path
from typing import Any, ClassVar

import pytest

from perpx.engine.commands import CancelAllOrders, Command, PlaceOrder, SetLeverage, SubmitSpotQuote, Withdraw
from perpx.engine.config import parse_config
from perpx.engine.values import AccountId, MarketId, Side
from perpx.sim.agents import (
    Agent,
    AgentContext,
    AgentError,
    Attacker,
    LeveragedTaker,
    MarketMaker,
    NoiseTrader,
    build_agents,
)
from perpx.sim.runner import Simulation
from perpx.sim.scenario import load_scenario
from perpx.testkit import Venue

ROOT = Path(__file__).resolve().parents[2]
BTC = MarketId("BTCUSDT")
NS = 1_000_000_000


def _venue() -> Venue:
    """The scenarios' venue with a manual mark (no index sources), so a test sets prices directly."""
    data = tomllib.loads((ROOT / "scenarios" / "venue.toml").read_text())
    del data["markets"]["BTCUSDT"]["index"]
    return Venue(config=parse_config(data), check=True)


def _ctx(v: Venue, seed: int = 1) -> AgentContext:
    return AgentContext(v.engine, v.apply, random.Random(seed), v.now_ns)


def _spread_ticks(commands: list[Command]) -> int:
    orders = [c for c in commands if isinstance(c, PlaceOrder)]
    bid = max(o.price_ticks or 0 for o in orders if o.side is Side.BUY)
    ask = min(o.price_ticks or 0 for o in orders if o.side is Side.SELL)
    return ask - bid


def test_build_agents_expands_counts_and_scales_them() -> None:
    rows: list[dict[str, Any]] = [
        {"kind": "noise_trader", "name": "n", "count": 3},
        {"kind": "whale", "name": "w"},
    ]
    assert [a.name for a in build_agents(rows)] == ["n-1", "n-2", "n-3", "w"]
    assert len(build_agents(rows, scale=2.0)) == 7


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"kind": "banker"}], "kind was 'banker'"),
        ([{"kind": "whale", "size": 1}], "no parameter 'size'"),
        ([{"kind": "whale", "name": "w"}, {"kind": "whale", "name": "w"}], "used twice"),
        ([{"kind": "attacker"}], "sources must name"),
        ([{"kind": "market_maker", "interval_s": 0}], "interval_s"),
    ],
)
def test_bad_agent_tables_are_refused(rows: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(AgentError, match=message):
        build_agents(rows)


def test_market_maker_quotes_both_sides_inside_the_band_and_widens_when_volatility_rises() -> None:
    # Arrange
    v = _venue()
    v.account("taker")
    v.mark("BTCUSDT", "60000")
    maker = MarketMaker("mm", {"deposit": "5000000", "levels": 3, "calm_vol_bps": 2, "withdraw_vol_bps": 500})
    ctx = _ctx(v)
    for command in maker.setup(ctx):
        v.apply(command)
    for _ in range(5):  # a calm history
        calm = maker.act(ctx, v.tick())
    # Act: prices now swing 0.5% every call
    for i in range(6):
        v.mark("BTCUSDT", "60300" if i % 2 else "59700")
        wild = maker.act(ctx, v.tick())
    # Assert
    assert sum(isinstance(c, PlaceOrder) for c in calm) == 6
    assert _spread_ticks(wild) > 5 * _spread_ticks(calm)
    assert maker.last_widen[BTC] > 1.0


def test_market_maker_withdraws_above_its_volatility_limit() -> None:
    v = _venue()
    v.mark("BTCUSDT", "60000")
    maker = MarketMaker("mm", {"deposit": "5000000", "withdraw_vol_bps": 20, "withdraw_s": 60})
    ctx = _ctx(v)
    maker.setup(ctx)
    for command in maker.act(ctx, v.tick()):
        v.apply(command)
    for i in range(4):
        v.mark("BTCUSDT", "61000" if i % 2 else "59000")
        commands = maker.act(ctx, v.tick())
        for command in commands:
            v.apply(command)
    assert [type(c) for c in commands] in ([CancelAllOrders], [])
    assert maker.withdrawals == 1 and v.engine.books[BTC].bids.best_price() is None


def test_market_maker_leans_against_its_inventory() -> None:
    # Arrange: the maker is long 5 BTC
    v = _venue()
    v.account("seller", "10000000")
    v.mark("BTCUSDT", "60000")
    maker = MarketMaker("mm", {"deposit": "5000000", "max_inventory": "400000", "skew_bps": 20})
    ctx = _ctx(v)
    maker.setup(ctx)
    flat = maker.act(ctx, v.tick())
    v.apply(ctx.limit_order(maker.account_id, BTC, Side.BUY, 5000, 600000))
    v.place("seller", "BTCUSDT", "sell", "5", "60000")
    # Act
    long = maker.act(ctx, v.tick())

    # Assert: lower quotes, smaller bids than asks
    def best(commands: list[Command], side: Side) -> PlaceOrder:
        rows = [c for c in commands if isinstance(c, PlaceOrder) and c.side is side]
        return (
            max(rows, key=lambda o: o.price_ticks or 0)
            if side is Side.BUY
            else min(rows, key=lambda o: o.price_ticks or 0)
        )

    assert best(long, Side.SELL).price_ticks < best(flat, Side.SELL).price_ticks  # type: ignore[operator]
    assert best(long, Side.BUY).qty_lots < best(long, Side.SELL).qty_lots


def test_leveraged_taker_draws_its_leverage_from_the_distribution_and_opens_once() -> None:
    v = _venue()
    v.account("mm", "10000000")
    v.mark("BTCUSDT", "60000")
    v.place("mm", "BTCUSDT", "sell", "50", "60010")
    agent = LeveragedTaker("lev", {"leverages": [7, 9], "leverage_weights": [0, 1], "entry_end_s": 0})
    ctx = _ctx(v)
    setup = agent.setup(ctx)
    for command in setup:
        v.apply(command)
    first = agent.act(ctx, v.tick())
    for command in first:
        v.apply(command)
    assert [c.leverage for c in setup if isinstance(c, SetLeverage)] == [9]
    assert len(first) == 1 and isinstance(first[0], PlaceOrder)
    assert agent.act(ctx, v.tick()) == []  # holds its position


def test_attacker_quotes_its_sources_pumped_inside_the_window_and_tries_to_withdraw() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "mark_manipulation.toml", {"run.duration_s": 200})
    sim = Simulation(scenario, 1)
    sim.setup()
    sim.run()
    attacker = next(a for a in sim.agents if isinstance(a, Attacker))
    ctx = sim.driver.contexts[attacker.name]
    commands = attacker.act(ctx, sim.now_ns)
    quotes = [c for c in commands if isinstance(c, SubmitSpotQuote)]
    assert {q.source for q in quotes} == {"thin_a", "thin_b"}
    assert attacker.base_ticks is not None and quotes[0].price_ticks > attacker.base_ticks * 2
    assert attacker.withdraw_attempts >= 2
    assert sim.engine.marks[MarketId("MNGOUSDT")] > attacker.base_ticks * 2


class _Rogue(Agent):
    kind: ClassVar[str] = "rogue"

    def act(self, ctx: AgentContext, now_ns: int) -> list[Command]:
        victim = AccountId(self.account_id - 1)
        return [
            Withdraw(
                ts_ns=now_ns, account_id=victim, asset=ctx.engine.asset, amount_atoms=1, tx_id=ctx.tx_id("x")
            )
        ]


def test_a_command_for_another_agents_account_is_stopped() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "calm_day.toml", {"run.duration_s": 30})
    sim = Simulation(scenario, 1)
    sim.agents.append(_Rogue("rogue", {}))
    sim.setup()
    with pytest.raises(AgentError, match="not one of its own"):
        sim.run()


def test_a_noise_traders_activity_cycle_is_busiest_at_the_top_of_the_period() -> None:
    trader = NoiseTrader("noise", {"trade_prob": 0.5, "activity_amplitude": 0.8, "activity_period_s": 3600})
    hour_ns = 3600 * 1_000_000_000

    assert trader.trade_probability(5 * hour_ns) == pytest.approx(0.9)
    assert trader.trade_probability(5 * hour_ns + hour_ns // 2) == pytest.approx(0.1)
    assert NoiseTrader("flat", {"trade_prob": 0.5}).trade_probability(hour_ns // 2) == 0.5
