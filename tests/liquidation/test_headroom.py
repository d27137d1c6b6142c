"""The headroom shortcut of the liquidation check changes nothing (Hypothesis).

``Engine.headroom_atoms`` lets :meth:`RiskWatch.check` skip the exact sum over an account's
positions after a fill (``liquidation/watch.py``). Its invariant, ``(10**8 - 1) x H <=`` the cross
slack on the current marks, is part of :mod:`perpx.engine.invariants`, which ``Venue`` checks
after every command. Here the same random streams (trades, mark moves, isolated margin, leverage,
liquidations, ADL; and, on a venue priced from spot quotes, funding) are replayed with the
shortcut on and forced off: every command gives the same events and the engines the same state
hash, so the same accounts are liquidated at the same commands.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from perpx.engine import formulas
from perpx.engine.commands import Command
from perpx.engine.config import VenueConfig
from perpx.engine.engine import Engine
from perpx.engine.events import FundingPaid, LiquidationExplained
from perpx.engine.state import state_hash
from perpx.engine.values import RATE_SCALE, AccountId
from perpx.testkit import Venue
from tests.pricing.helpers import HOUR, SOURCES, priced_config

from .test_properties import CONFIGS, SETTINGS, action, build, run


def replay_both_ways(config: VenueConfig, journal: list[Command]) -> tuple[int, int]:
    """Replay ``journal`` with the shortcut on and off; assert equal events and hashes.

    Returns how many checks the shortcut answered and how many liquidations ran.
    """
    on, off = Engine(config), Engine(config)
    off.liquidation.watch.shortcut = False
    answered = liquidations = 0
    for command in journal:
        known = sum(1 for h in on.headroom_atoms.values() if h >= 0)
        events_on = list(on.apply(command))
        events_off = list(off.apply(command))
        assert events_on == events_off, command
        answered += known
        liquidations += sum(isinstance(e, LiquidationExplained) for e in events_on)
    assert state_hash(on) == state_hash(off)
    return answered, liquidations


@SETTINGS
@given(config=CONFIGS, actions=st.lists(action, min_size=20, max_size=50))
def test_the_shortcut_liquidates_the_same_accounts_at_the_same_commands(
    config: dict[str, Any], actions: list[tuple[Any, ...]]
) -> None:
    v = build(config)  # checks the headroom invariant after every command
    run(v, actions)
    replay_both_ways(v.config, list(v.journal))


def test_the_shortcut_is_used_and_liquidations_happen_in_a_long_stream() -> None:
    # a fixed, busy stream: the comparison is not about a shortcut that never fires
    import random

    rng = random.Random(11)
    v = build({})
    actions: list[tuple[Any, ...]] = []
    for _ in range(300):
        kind = rng.random()
        market = rng.choice(("BTCUSDT", "ETHUSDT"))
        if kind < 0.55:
            actions.append(
                ("trade", rng.randint(0, 5), rng.randint(0, 5), market, rng.choice((20, 100, 400, 1600)), 0)
            )
        elif kind < 0.75:
            actions.append(("max", rng.randint(0, 4), market, rng.choice(("buy", "sell"))))
        elif kind < 0.95:
            actions.append(("mark", market, rng.randint(-40, 30)))
        else:
            actions.append(("isolate", rng.randint(0, 5), market))
    run(v, actions)
    answered, liquidations = replay_both_ways(v.config, list(v.journal))
    assert answered > 100 and liquidations > 0


FUNDED = ("a", "b", "c", "d")
funding_action = st.one_of(
    st.tuples(
        st.just("trade"), st.integers(0, 3), st.integers(0, 3), st.sampled_from(("1", "5", "20", "60"))
    ),
    st.tuples(st.just("quote"), st.integers(-30, 30)),
    st.tuples(st.just("advance"), st.integers(0, 9)),
)


@SETTINGS
@given(actions=st.lists(funding_action, min_size=10, max_size=40))
def test_the_shortcut_changes_nothing_across_funding(actions: list[tuple[Any, ...]]) -> None:
    config = priced_config(risk={"default_leverage": 50})
    v = Venue(config)
    market = "BTCUSDT"
    price = 30_000
    for source in SOURCES:
        v.quote(market, source, str(price))
    for name, deposit in zip(FUNDED, ("3000", "6000", "20000", "400000"), strict=True):
        v.account(name, deposit)
    for act in actions:
        if act[0] == "trade" and act[1] != act[2]:
            v.place(FUNDED[act[2]], market, "sell", act[3], str(price))
            v.place(FUNDED[act[1]], market, "buy", act[3], str(price))
        elif act[0] == "quote":
            price = price * (1000 + act[1]) // 1000
            for source in SOURCES:
                v.quote(market, source, str(price))
        elif act[0] == "advance" and act[1]:
            v.advance(act[1] * HOUR // 10**9)
            for source in SOURCES:  # fresh quotes: the index is live again
                v.quote(market, source, str(price))
    replay_both_ways(v.config, list(v.journal))


def exact_headroom(engine: Engine, account_id: AccountId) -> int:
    """``floor(slack / (10**8 - 1))`` of the account's cross scope, summed from scratch."""
    account = engine.accounts[account_id]
    balance, bound = account.balance(engine.asset), 0
    for market, position in account.positions.items():
        contract, mark = engine.specs[market].contract_atoms, engine.marks[market]
        if position.qty_lots:
            balance += position.qty_lots * mark * contract - position.cost_atoms
            bound += formulas.maintenance_bound_e8(
                abs(position.qty_lots) * mark * contract, engine.liquidation.watch.bounds[market]
            )
    return formulas.safety_slack_e8(balance, bound) // (RATE_SCALE - 1)


def test_a_fill_moves_the_headroom_and_funding_has_it_computed_again() -> None:
    v = Venue(priced_config(risk={"default_leverage": 50}))
    for source in SOURCES:
        v.quote("BTCUSDT", source, "30000")
    v.account("a", "3000")
    v.account("b", "400000")
    v.place("b", "BTCUSDT", "sell", "2", "30000")
    v.place("a", "BTCUSDT", "buy", "2", "30000")
    assert set(v.engine.headroom_atoms) == {v.names["a"], v.names["b"]}
    for source in SOURCES:
        v.quote("BTCUSDT", source, "30100")  # the mark moves: every headroom is dropped
    assert not v.engine.headroom_atoms
    a = v.names["a"]
    v.place("b", "BTCUSDT", "sell", "1", "30100")
    v.place("a", "BTCUSDT", "buy", "1", "30100")
    assert v.engine.headroom_atoms[a] == exact_headroom(v.engine, a)  # set by the exact check
    v.place("b", "BTCUSDT", "sell", "1", "30100")
    v.place("a", "BTCUSDT", "buy", "1", "30100")  # moved by the fill: below the exact figure
    assert 0 <= v.engine.headroom_atoms[a] < exact_headroom(v.engine, a)
    events = v.advance(9 * HOUR // 10**9)
    assert any(isinstance(e, FundingPaid) and e.account_id == a for e in events)
    assert v.engine.headroom_atoms[a] == exact_headroom(v.engine, a)  # dropped, then computed again
