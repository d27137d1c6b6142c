"""The simulation loop: one scenario, one seed, the real engine on a simulated clock.

The loop owns the simulated clock. Its cast (spot sources and agents) is a
:class:`~perpx.sim.driver.SimDriver` on that clock; the loop adds the scenario's scripted events
and its samples, and at each time it does the work due in this order, so ties break the same way
in every process:

=====  ===========================================================================================
order  work
=====  ===========================================================================================
1      spot quotes reaching the venue (the driver's; made ``latency_s`` earlier, stamped with that time)
2      scripted events (``[[events]]``), in file order
3      agent turns (the driver's), each audited afterwards when the agent is an adversary
4      a sample: ``AdvanceClock``, one row of every series, and every ``check_every_s`` the
       engine's invariant checks and an audit of every account
=====  ===========================================================================================

Every command goes through :meth:`Simulation.submit`, to the venue's
:class:`~perpx.sequencing.Sequencer` (journaled when there is a journal, then applied), and its
events are counted by :class:`~perpx.sim.runner.metrics.RunMetrics`.

Determinism: the engine reads no clock and draws nothing; every random number comes from a
generator derived from ``(seed, purpose)`` (:mod:`perpx.sim.seeds`); commands are stamped from the
simulated clock. So the same scenario and seed give the same commands, events and state hash in
any process.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from perpx.engine import formulas
from perpx.engine.commands import (
    AdvanceClock,
    Command,
    Deposit,
    MarketMode,
    SetMarketMode,
    SubmitAssetQuote,
)
from perpx.engine.engine import Engine
from perpx.engine.events import Event
from perpx.engine.liquidation.insurance import INSURANCE_ACCOUNT, fund_cash, fund_equity
from perpx.engine.values import AssetId, MarketId, TxId
from perpx.journal.store import Store
from perpx.sequencing import Sequencer
from perpx.sim.agents import Adversary, MarketMaker
from perpx.sim.driver import NEVER_NS, AgentTurn, SimDriver, SpotQuote
from perpx.sim.runner.metrics import RunMetrics
from perpx.sim.runner.series import SeriesRecorder
from perpx.sim.runner.summary import summarise
from perpx.sim.scenario import Scenario, ScriptedEvent
from perpx.sim.seeds import derive_rng
from perpx.sim.sources import NS_PER_S, ScriptedPath, price_to_ticks

START_NS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z, as perpx.testkit

_EVENT, _SAMPLE = 0, 1


class Simulation:
    """One run of one scenario with one seed; :func:`~perpx.sim.runner.run_scenario` is the usual entry point.

    ``store`` None runs the engine in memory, without a journal. Call :meth:`setup`, then
    :meth:`run`, then :meth:`summary`.

    Raises
    ------
    AgentError, SourceError
        If the scenario's agents or sources are unusable.
    """

    def __init__(self, scenario: Scenario, seed: int, store: Store | None = None) -> None:
        self.scenario = scenario
        self.seed = seed
        self.store = store
        self.sequencer = Sequencer(store=store) if store is not None else Sequencer(Engine(scenario.config))
        self.engine = self.sequencer.engine
        self.now_ns = START_NS
        self.duration_ns = int(scenario.duration_s * NS_PER_S)
        self.commands = 0
        self.events = 0
        self.driver = SimDriver(
            scenario.cast,
            self.engine,
            seed=seed,
            # looked up at each call, so a caller that wraps ``submit`` sees the agents' commands too
            submit=lambda command: self.submit(command),  # noqa: PLW0108
            clock=lambda: self.now_ns,
            start_ns=START_NS,
        )
        self.agents = self.driver.agents
        self.metrics = RunMetrics(self.engine, self.t_s, self.driver.fair_prices)
        self.recorder = SeriesRecorder(self.engine)
        self.on_progress: Callable[[float, int], None] | None = None
        self._work: list[tuple[int, int, int, Any]] = []
        self._scheduled = 0
        self._last_quotes: dict[tuple[str, str], float] = {}
        """``(market, source)`` -> the price of its last delivered quote (for the report's charts)."""

    def t_s(self) -> float:
        """Simulated seconds since the start."""
        return (self.now_ns - START_NS) / NS_PER_S

    def submit(self, command: Command) -> list[Event]:
        """Journal (when there is a journal) and apply one command; count its events."""
        events = self.sequencer.apply_one(command)
        self.commands += 1
        self.events += len(events)
        self.metrics.observe(events)
        return events

    # ------------------------------------------------------------------ the run

    def setup(self) -> None:
        """Seed the insurance fund, open the agents' accounts, and schedule the first work."""
        amount = int(Decimal(self.scenario.insurance_fund) / self.metrics.atom)
        if amount > 0:
            self.submit(
                Deposit(
                    ts_ns=self.now_ns,
                    account_id=INSURANCE_ACCOUNT,
                    asset=self.engine.asset,
                    amount_atoms=amount,
                    tx_id=TxId("insurance-seed"),
                )
            )
        self.driver.open()
        for agent in self.agents:
            label = f"attacker:{agent.name}" if isinstance(agent, Adversary) else agent.name
            for account in agent.accounts:
                self.metrics.owner[account] = label
        for market, process in sorted(self.driver.processes.items()):
            if isinstance(process, ScriptedPath):
                for name, drawn in sorted(process.draws.items()):
                    self.metrics.draws[f"prices.{market}.{name}"] = drawn
        for number, scripted in enumerate(self.scenario.events):
            event = scripted
            bounds = scripted.params.get("factor_range")
            if scripted.action == "depth" and bounds is not None:
                # the seed draws this run's depth factor from the range the scenario states
                drawn = derive_rng(self.seed, f"event/{number}").uniform(float(bounds[0]), float(bounds[1]))
                self.metrics.draws[f"events.{number}.factor"] = drawn
                event = ScriptedEvent(scripted.at_s, scripted.action, {**scripted.params, "factor": drawn})
            self._schedule(START_NS + int(event.at_s * NS_PER_S), _EVENT, event)
        self._schedule(self.now_ns, _SAMPLE, 0)
        self.metrics.fund_start = self.metrics.fund_min = fund_equity(self.engine)
        self.metrics.fund_cash_min = self.metrics.fund_start

    def run(self) -> None:
        """Do the work due, time by time in the module's order, until the scenario's duration."""
        end_ns = START_NS + self.duration_ns
        self.advance_to(end_ns)
        self.now_ns = end_ns
        self._sample(-1)

    def advance_to(self, end_ns: int) -> None:
        """Do the work due up to and including ``end_ns`` (callers that interleave their own
        commands, such as an execution backtest, step the simulation with this)."""
        driver, work = self.driver, self._work
        while True:
            at_ns = min(driver.due_ns(), work[0][0] if work else NEVER_NS)
            if at_ns > end_ns:
                break
            self.now_ns = max(self.now_ns, at_ns)
            for quote in driver.quotes_due(self.now_ns):
                self._deliver(quote)
            while work and work[0][0] <= self.now_ns and work[0][1] == _EVENT:
                self._scripted(heapq.heappop(work)[3])
            for turn in driver.turns_due(self.now_ns):
                self._turn(turn)
            while work and work[0][0] <= self.now_ns:
                self._sample(heapq.heappop(work)[3])

    def summary(self, wall_seconds: float) -> dict[str, Any]:
        """The run's figures (:mod:`~perpx.sim.runner.summary`), assertions evaluated."""
        return summarise(
            self.scenario,
            self.seed,
            self.engine,
            self.metrics,
            self.agents,
            commands=self.commands,
            events=self.events,
            sim_seconds=self.duration_ns / NS_PER_S,
            faulty_quotes_sent=self.driver.faulty_quotes_made,
            wall_seconds=wall_seconds,
        )

    def _schedule(self, at_ns: int, kind: int, payload: Any) -> None:
        self._scheduled += 1
        heapq.heappush(self._work, (at_ns, kind, self._scheduled, payload))

    def _deliver(self, quote: SpotQuote) -> None:
        command = quote.command
        self.metrics.faulty_at_venue[(command.market, command.source)] = quote.faulty
        spec = self.engine.specs[command.market]
        tick = float(spec.tick_size)
        self._last_quotes[(str(command.market), command.source)] = command.price_ticks * tick
        self.submit(command)
        for asset, market in self.scenario.collateral.items():  # the same quote for the asset's index
            index = self.engine.config.assets[AssetId(asset)].index
            if market == command.market and index is not None and command.source in index.weights:
                price = Decimal(command.price_ticks) * spec.tick_size / self.engine.config.settlement.atom
                self.submit(
                    SubmitAssetQuote(
                        ts_ns=command.ts_ns,
                        asset=AssetId(asset),
                        source=command.source,
                        price_atoms=int(price),
                    )
                )

    def _turn(self, turn: AgentTurn) -> None:
        for command in turn.commands():
            self.submit(command)
        if isinstance(turn.agent, Adversary):
            self.metrics.audit(turn.accounts, attacker=True)

    def _scripted(self, event: ScriptedEvent) -> None:
        params = event.params
        if event.action in ("depth", "agent_param"):
            prefix = params.get("agents")
            key = "depth_factor" if event.action == "depth" else str(params["key"])
            value = params["factor"] if event.action == "depth" else params["value"]
            for agent in self.agents:
                chosen = agent.name.startswith(prefix) if prefix else isinstance(agent, MarketMaker)
                if not chosen:
                    continue
                agent.params[key] = value
                if key == "depth_factor" and isinstance(agent, MarketMaker):
                    agent.depth_factor = float(value)
        elif event.action == "market_mode":
            market = MarketId(str(params["market"]))
            settle = params.get("settle_price")
            self.submit(
                SetMarketMode(
                    ts_ns=self.now_ns,
                    market=market,
                    mode=MarketMode[str(params["mode"])],
                    settle_price_ticks=None
                    if settle is None
                    else price_to_ticks(str(settle), self.engine.specs[market].tick_size),
                )
            )
        elif event.action == "insurance_deposit":
            # numbered by the work scheduled so far (the loop's and the driver's): unique per time
            number = self._scheduled + self.driver.scheduled
            self.submit(
                Deposit(
                    ts_ns=self.now_ns,
                    account_id=INSURANCE_ACCOUNT,
                    asset=self.engine.asset,
                    amount_atoms=int(Decimal(str(params["amount"])) / self.metrics.atom),
                    tx_id=TxId(f"insurance-{number}"),
                )
            )

    def _sample(self, number: int) -> None:
        # number -1 is the last sample, at the end: nothing is applied or scheduled after it
        if number >= 0:
            self.submit(AdvanceClock(ts_ns=self.now_ns))
            self._schedule(self.now_ns + int(self.scenario.sample_s * NS_PER_S), _SAMPLE, number + 1)
        t_s = self.t_s()
        equity = fund_equity(self.engine)
        self.metrics.fund_min = min(self.metrics.fund_min, equity)
        position = self._sample_fund()
        self.recorder.record(
            t_s,
            self.driver.fair_prices,
            self.metrics.units(equity),
            self._last_quotes,
            self.metrics.units(position),
        )
        every = max(1, round(self.scenario.check_every_s / self.scenario.sample_s))
        if number < 0 or number % every == 0:
            self.metrics.check_invariants()
            self.metrics.audit(None)
        if self.on_progress is not None:
            self.on_progress(t_s, self.events)

    def _sample_fund(self) -> int:
        """The fund's cash (no mark-to-market) and the notional of the positions it holds, at a sample.

        Returns that notional (atoms).
        """
        engine, metrics = self.engine, self.metrics
        fund = engine.accounts[INSURANCE_ACCOUNT]
        metrics.fund_cash_min = min(metrics.fund_cash_min, fund_cash(engine) + fund.balance(engine.asset))
        notional = 0
        for market, position in fund.positions.items():
            if position.qty_lots:
                spec = engine.specs[market]
                notional += formulas.notional_atoms(
                    engine.marks[market], abs(position.qty_lots), spec.contract_atoms
                )
        metrics.fund_position_notional_max = max(metrics.fund_position_notional_max, notional)
        return notional


__all__ = ["START_NS", "Simulation"]
