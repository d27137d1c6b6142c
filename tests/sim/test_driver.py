"""The public driving surface: a cast's sources and agents on any caller's clock, through ``perpx.sim``.

Most tests drive a cast the simplest way a caller can: a bare engine, ``engine.apply`` as the
submit function, a clock the test sets, and every piece of work applied when it is due.
"""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import pytest

from perpx.engine import invariants
from perpx.engine.commands import Command, Deposit, SubmitSpotQuote, Withdraw
from perpx.engine.config import VenueConfig, parse_config
from perpx.engine.engine import Engine
from perpx.engine.values import AccountId, TxId
from perpx.sim import AgentTurn, Cast, SimDriver, SpotQuote
from perpx.sim.agents import Agent, AgentContext, AgentError
from perpx.sim.scenario import load_scenario
from perpx.testkit import Venue

ROOT = Path(__file__).resolve().parents[2]
START_NS = 1_767_225_600_000_000_000
NS = 1_000_000_000


class ManualClock:
    """The clock a test moves by hand; the driver reads it as the stamp of its next command."""

    def __init__(self, now_ns: int = START_NS) -> None:
        self.now_ns = now_ns

    def __call__(self) -> int:
        return self.now_ns


def bare_driver(cast: Cast, config: VenueConfig, seed: int, clock: ManualClock) -> SimDriver:
    """A driver of ``cast`` on a fresh engine, ``engine.apply`` its submit function."""
    engine = Engine(config)
    return SimDriver(cast, engine, seed=seed, submit=engine.apply, clock=clock, start_ns=START_NS)


def drive_bare(
    cast: Cast, config: VenueConfig, seed: int, seconds: float
) -> tuple[list[tuple[str, Command]], SimDriver]:
    """Drive ``cast`` for ``seconds`` on a fresh engine; every command applied, with who sent it."""
    clock = ManualClock()
    driver = bare_driver(cast, config, seed, clock)
    driver.open()
    sent: list[tuple[str, Command]] = []
    while (due_ns := driver.due_ns()) <= START_NS + seconds * NS:
        clock.now_ns = due_ns
        for work in driver.due(due_ns):
            sender = work.name if isinstance(work, AgentTurn) else "quote"
            for command in work.commands():
                sent.append((sender, command))
                driver.engine.apply(command)
    return sent, driver


def manual_mark_venue() -> Venue:
    """The scenarios' venue with a manual mark (no index sources), so a test sets prices directly."""
    data = tomllib.loads((ROOT / "scenarios" / "venue.toml").read_text())
    del data["markets"]["BTCUSDT"]["index"]
    return Venue(config=parse_config(data), check=True)


def venue_driver(v: Venue, *rows: dict[str, Any], **options: Any) -> tuple[SimDriver, ManualClock]:
    """A driver of agents only (no sources) on a test venue, with its clock."""
    clock = ManualClock(v.now_ns)
    cast = Cast(prices={}, sources=[], agents=list(rows))
    return SimDriver(cast, v.engine, seed=1, submit=v.apply, clock=clock, start_ns=v.now_ns, **options), clock


class _Thief(Agent):
    kind: ClassVar[str] = "thief"

    def act(self, ctx: AgentContext, now_ns: int) -> list[Command]:
        victim = AccountId(self.account_id - 1)
        return [
            Withdraw(ts_ns=now_ns, account_id=victim, asset=ctx.engine.asset, amount_atoms=1, tx_id=TxId("x"))
        ]


# ---------------------------------------------------------------------------------------------- a whole cast


def test_a_scenarios_cast_on_a_bare_engine_trades_only_each_agents_own_accounts() -> None:
    # Arrange
    scenario = load_scenario(ROOT / "scenarios" / "flash_crash.toml", {"run.duration_s": 400})

    # Act
    sent, driver = drive_bare(scenario.cast, scenario.config, seed=2, seconds=400)

    # Assert
    accounts = driver.agent_accounts()
    with_account = [(sender, c) for sender, c in sent if getattr(c, "account_id", None) is not None]
    assert len(with_account) > 1000
    assert all(c.account_id in accounts[sender] for sender, c in with_account)  # type: ignore[attr-defined]
    assert {sender for sender, _ in with_account} == set(accounts)
    assert any(isinstance(c, SubmitSpotQuote) for _, c in sent)
    assert invariants.violations(driver.engine) == []


def test_the_same_cast_seed_and_times_give_the_same_commands() -> None:
    # Arrange
    scenario = load_scenario(ROOT / "scenarios" / "calm_day.toml")

    # Act
    first, _ = drive_bare(scenario.cast, scenario.config, seed=5, seconds=60)
    again, _ = drive_bare(scenario.cast, scenario.config, seed=5, seconds=60)
    other, _ = drive_bare(scenario.cast, scenario.config, seed=6, seconds=60)

    # Assert
    assert first == again
    assert first != other


# ---------------------------------------------------------------------------------------------- the schedule


def test_a_caller_that_falls_behind_gets_each_piece_of_work_once_and_a_new_phase() -> None:
    # Arrange: one source every second, one agent every second, nothing done for 5.5 s
    scenario = load_scenario(ROOT / "scenarios" / "calm_day.toml")
    cast = Cast(
        prices=scenario.prices,
        sources=[{"name": "binance", "market": "BTCUSDT", "every_s": 1}],
        agents=[{"kind": "noise_trader", "name": "noise", "interval_s": 1}],
    )
    clock = ManualClock()
    driver = bare_driver(cast, scenario.config, 1, clock)
    driver.open()
    clock.now_ns = now_ns = START_NS + 5 * NS + NS // 2

    # Act
    work = list(driver.due(now_ns))

    # Assert: the quote due at the start comes before the turn due in the first second
    assert [type(w) for w in work] == [SpotQuote, AgentTurn]
    assert driver.due_ns() == now_ns + NS


def test_quotes_due_and_turns_due_split_the_same_work_as_due() -> None:
    # Arrange
    scenario = load_scenario(ROOT / "scenarios" / "calm_day.toml")
    both = bare_driver(scenario.cast, scenario.config, 3, ManualClock())
    split = bare_driver(scenario.cast, scenario.config, 3, ManualClock())
    both.open()
    split.open()
    times = [START_NS + n * NS for n in range(1, 6)]

    # Act
    from_due = [w.commands() for t in times for w in both.due(t) if isinstance(w, SpotQuote)]
    from_split = [q.commands() for t in times for q in split.quotes_due(t)]
    turns = [turn.name for turn in split.turns_due(times[-1])]

    # Assert
    assert from_due == from_split and len(from_split) > 10
    assert turns and set(turns) <= set(split.agent_accounts())


def test_a_turn_acts_when_its_commands_are_asked_for_not_when_it_is_yielded() -> None:
    # Arrange
    v = manual_mark_venue()
    v.mark("BTCUSDT", "60000")
    driver, clock = venue_driver(v, {"kind": "market_maker", "name": "mm", "deposit": "5000000", "levels": 2})
    driver.open()
    (turn,) = list(driver.turns_due(v.now_ns + 60 * NS))

    # Act
    clock.now_ns = v.now_ns + 90 * NS
    commands = turn.commands()

    # Assert
    assert turn.name == "mm" and turn.accounts == driver.agent_accounts()["mm"]
    assert commands and {c.ts_ns for c in commands} == {clock.now_ns}


def test_a_command_for_another_agents_account_is_refused_before_anything_is_applied() -> None:
    # Arrange
    v = manual_mark_venue()
    driver, _ = venue_driver(v, {"kind": "noise_trader", "name": "victim"})
    driver.agents.append(_Thief("thief", {}))
    driver.open()
    applied = len(v.journal)
    (theft,) = [turn for turn in driver.turns_due(v.now_ns + 10 * NS) if turn.name == "thief"]

    # Act, Assert
    with pytest.raises(AgentError, match="not one of its own"):
        theft.commands()
    assert len(v.journal) == applied


# ---------------------------------------------------------------------------------------------- an earlier run's accounts


@pytest.mark.parametrize(
    ("balance", "holds_position", "topped_up"),
    [
        ("400", False, "600"),  # flat and more than half down: back to the deposit
        ("600", False, None),  # flat, less than half down
        ("400", True, None),  # half down but holding a position
    ],
)
def test_an_earlier_runs_account_is_taken_over_and_topped_up_only_when_flat_and_half_down(
    balance: str, holds_position: bool, topped_up: str | None
) -> None:
    # Arrange
    v = manual_mark_venue()
    v.mark("BTCUSDT", "60000")
    v.account("mm", balance)
    if holds_position:
        v.account("other", "1000000")
        v.place("other", "BTCUSDT", "sell", "0.01", "60000")
        v.place("mm", "BTCUSDT", "buy", "0.005")
    accounts = len(v.engine.accounts)
    driver, _ = venue_driver(
        v,
        {"kind": "market_maker", "name": "mm", "deposit": "1000"},
        accounts_by_name={"mm": v.names["mm"]},
        top_up_below=Decimal("0.5"),
    )
    before = len(v.journal)

    # Act
    driver.open()

    # Assert
    assert driver.agent_accounts() == {"mm": (v.names["mm"],)} and driver.reused_accounts == 1
    assert len(v.engine.accounts) == accounts
    top_ups = [c.amount_atoms for c in v.journal[before:] if isinstance(c, Deposit)]
    assert top_ups == ([] if topped_up is None else [v.atoms(topped_up)])
