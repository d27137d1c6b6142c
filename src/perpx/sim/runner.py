"""Run a scenario on the real engine, on a simulated clock, and collect what happened.

The loop
--------
The runner owns one simulated clock and a queue of timed work, processed in ``(time, priority,
insertion)`` order, so ties break the same way in every process:

=========  ==============================================================================
priority   work
=========  ==============================================================================
0          a spot quote reaching the venue (made ``latency_s`` earlier, stamped with that time)
1          a scripted event (``[[events]]``)
2          an agent's turn (every ``interval_s``, from a seeded phase in the first interval)
3          a sample: ``AdvanceClock``, one row of every series, and every ``check_every_s`` the
           engine's invariant checks and an audit of every account
=========  ==============================================================================

Determinism: the engine reads no clock and draws nothing; every random number here comes from a
``random.Random`` derived from ``(seed, purpose)`` (:func:`derive_rng`), one per price process,
source and agent; commands are stamped from the simulated clock. The wall clock is read only for
``wall_seconds`` and the progress bar. So the same scenario and seed give the same commands,
events and state hash in any process.

Where things go (``out_dir``)
-----------------------------
::

    DIR/summary.json      the summary (:data:`SUMMARY_FIELDS` and more, assertions included)
    DIR/series.json       series, venue series and markers (:func:`load_result` reads it back)
    DIR/journal/          the venue data directory: config.toml, journal.log, snapshots/
                          perpx replay DIR/journal            reproduces the state hash
                          perpx explain --data DIR/journal --account N   explains a liquidation
    DIR/report.html, *.png  when :mod:`perpx.sim.report` is installed

The journal's ``config.toml`` is the scenario's venue config with ``durability = "none"`` (a
simulation needs no fsync; the state it replays to is the same). With ``out_dir=None`` (sweeps) the
engine runs in memory with no journal at all.

Money in the summary: fields named ``*_atoms`` are exact integers of the settlement asset; the
issue's named fields (``bad_debt``, ``insurance_fund_min``, ...) are the same amounts in settlement
units as floats, for reading and plotting.
"""

from __future__ import annotations

import heapq
import json
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path
from typing import Any

from perpx.engine import formulas, invariants
from perpx.engine.commands import (
    AdvanceClock,
    Command,
    Deposit,
    MarketMode,
    SetMarketMode,
    SubmitSpotQuote,
)
from perpx.engine.engine import Engine
from perpx.engine.events import (
    AdlStep,
    CommandRejected,
    DepositApplied,
    Event,
    FundingPaid,
    FundingSettled,
    IndexUpdated,
    InsuranceFundChanged,
    LiquidationExplained,
    MarkPriceUpdated,
    OrderFilled,
    OrderRejected,
    OrderStep,
    PositionSettled,
    PositionTransferred,
    SettlementLossShared,
    TakeoverStep,
    TransferRejected,
    WithdrawalApplied,
)
from perpx.engine.liquidation.insurance import INSURANCE_ACCOUNT, fund_equity
from perpx.engine.state import state_hash
from perpx.engine.values import AccountId, MarketId, TxId
from perpx.journal.store import Store, open_store
from perpx.sim.agents import Adversary, Agent, AgentContext, AgentError, MarketMaker, build_agents
from perpx.sim.assertions import evaluate
from perpx.sim.result import SUMMARY_FIELDS, Marker, RunResult
from perpx.sim.scenario import (
    Scenario,
    ScenarioError,
    apply_overrides,
    dump_toml,
    load_scenario,
    scenario_from_document,
)
from perpx.sim.sources import NS_PER_S, PriceProcess, Source, build_process, parse_faults, price_to_ticks

START_NS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z, as perpx.testkit
JOURNAL_DIR = "journal"
SUMMARY_FILE = "summary.json"
SERIES_FILE = "series.json"
DEPTH_BAND_E8 = 2_000_000  # book depth is counted within 2% of the mark


_QUOTE, _EVENT, _AGENT, _SAMPLE = 0, 1, 2, 3


class RunError(RuntimeError):
    """A run that cannot start (for example an output directory that already holds a run)."""


def derive_rng(seed: int, purpose: str) -> random.Random:
    """A generator for one purpose (``"agent/mm-1"``, ``"source/binance/BTCUSDT"``) of one seed.

    ``random.Random`` seeded with a string hashes it with SHA-512, so the stream does not depend on
    ``PYTHONHASHSEED`` or on the order generators are made in.
    """
    return random.Random(f"perpx-sim/{seed}/{purpose}")


class _Ledger:
    """One account's money from its own events: what it could have realised, and what it took out."""

    __slots__ = ("deposits", "realized", "withdrawn")

    def __init__(self) -> None:
        self.deposits = 0
        self.withdrawn = 0
        self.realized = 0  # realised PnL + funding - fees - clearance fees + deficit cover

    @property
    def equity(self) -> int:
        return self.deposits - self.withdrawn + self.realized


class Simulation:
    """One run of one scenario with one seed; :func:`run_scenario` is the usual entry point."""

    def __init__(self, scenario: Scenario, seed: int, store: Store | None = None) -> None:
        self.scenario = scenario
        self.seed = seed
        self.store = store
        self.engine = store.engine if store is not None else Engine(scenario.config)
        self.config = self.engine.config
        self.atom = self.config.settlement.atom
        self.now_ns = START_NS
        self.duration_ns = int(scenario.duration_s * NS_PER_S)
        self._heap: list[tuple[int, int, int, Any]] = []
        self._seq = 0
        # sources and prices
        self.processes: dict[str, PriceProcess] = {
            market: build_process(spec, derive_rng(seed, f"price/{market}"), scenario.base_dir)
            for market, spec in scenario.prices.items()
        }
        self.sources: list[Source] = [
            Source(
                name=str(row["name"]),
                market=str(row["market"]),
                process=self.processes[str(row["market"])],
                rng=derive_rng(seed, f"source/{row['name']}/{row['market']}"),
                every_s=float(row.get("every_s", 1.0)),
                latency_s=float(row.get("latency_s", 0.0)),
                noise_bps=float(row.get("noise_bps", 0.0)),
                faults=parse_faults(row.get("faults", []), f"sources[{number}]"),
                controlled=bool(row.get("controlled", False)),
            )
            for number, row in enumerate(scenario.sources)
        ]
        self.fair: dict[str, float] = {}
        self.faulty_quote: dict[tuple[str, str], bool] = {}
        # agents
        self.agents: list[Agent] = build_agents(scenario.agents, scenario.scale)
        self.contexts: dict[str, AgentContext] = {}
        self.owner: dict[AccountId, str] = {}
        # counters
        self.commands = 0
        self.events = 0
        self.trades = 0
        self.volume_atoms = 0
        self.rejections: dict[str, int] = {}
        self.liquidations = 0
        self.liquidation_records = 0
        self.liquidated_notional_atoms = 0
        self.liquidated_accounts: dict[AccountId, None] = {}
        self.adl_legs = 0
        self.adl_notional_atoms = 0
        self.adl_borne_atoms = 0
        self.adl_shortfall_atoms = 0
        self.takeovers = 0
        self.takeover_loss_atoms = 0
        self.deficit_covered_atoms = 0
        self.funding_paid_atoms = 0
        self.funding_settlements = 0
        self.max_funding_rate_e8 = 0
        self.max_gap_bps = 0.0
        self.max_fair_gap_bps = 0.0
        self.faulty_quotes_used = 0
        self.faulty_quotes_sent = 0
        self.liquidations_from_faulty = 0
        self.invariant_checks = 0
        self.invariant_violations = 0
        self.invariant_messages: list[str] = []
        self.accounts_below_zero = 0
        self.min_wallet_atoms = 0
        self.withdrawable_audits = 0
        self.withdrawable_excess_max = -(2**62)
        self.withdrawn_excess_max = -(2**62)
        self.attacker_upnl_max = 0
        self.attacker_refused = 0
        self.ledgers: dict[AccountId, _Ledger] = {}
        self.fund_start = 0
        self.fund_min = 0
        self.per_market: dict[str, dict[str, int]] = {
            str(m): {"liquidations": 0, "adl_events": 0, "trades": 0} for m in self.engine.specs
        }
        # outputs
        self.series: dict[str, dict[str, list[float]]] = {
            str(m): {
                k: []
                for k in (
                    "t_s",
                    "index",
                    "mark",
                    "last",
                    "open_interest",
                    "funding_rate",
                    "bid_depth",
                    "ask_depth",
                    "fair",
                )
            }
            for m in self.engine.specs
        }
        self.venue_series: dict[str, list[float]] = {"t_s": [], "insurance_fund": []}
        self.markers: list[Marker] = []
        self.on_progress: Callable[[float, int], None] | None = None
        self._dispatch: dict[type, Callable[[Any], None]] = {
            OrderFilled: self._on_fill,
            OrderRejected: self._on_rejected,
            CommandRejected: self._on_rejected,
            TransferRejected: self._on_transfer_rejected,
            LiquidationExplained: self._on_liquidation,
            FundingSettled: self._on_funding_settled,
            FundingPaid: self._on_funding_paid,
            PositionTransferred: self._on_transfer,
            PositionSettled: self._on_settled,
            SettlementLossShared: self._on_loss_shared,
            InsuranceFundChanged: self._on_insurance,
            DepositApplied: self._on_deposit,
            WithdrawalApplied: self._on_withdrawal,
            MarkPriceUpdated: self._on_mark,
            IndexUpdated: self._on_index,
        }

    # ------------------------------------------------------------------ plumbing

    def t_s(self) -> float:
        return (self.now_ns - START_NS) / NS_PER_S

    def units(self, atoms: int) -> float:
        return float(Decimal(atoms) * self.atom)

    def submit(self, command: Command) -> list[Event]:
        """Journal (when there is a journal) and apply one command; observe its events."""
        if self.store is not None:
            self.store.writer.append(command)
        events = self.engine.apply(command)
        self.commands += 1
        self.events += len(events)
        dispatch = self._dispatch
        for event in events:
            handler = dispatch.get(type(event))
            if handler is not None:
                handler(event)
        return events

    def _agent_submit(self, agent: Agent) -> Callable[[Command], list[Event]]:
        def submit(command: Command) -> list[Event]:
            account = getattr(command, "account_id", None)
            if account is not None and account not in agent.accounts:
                raise AgentError(
                    f"agent {agent.name!r} sent {type(command).__name__} for account {account},"
                    f" which is not one of its own ({agent.accounts})"
                )
            return self.submit(command)

        return submit

    def _push(self, at_ns: int, priority: int, payload: Any) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at_ns, priority, self._seq, payload))

    def _ledger(self, account: AccountId) -> _Ledger:
        ledger = self.ledgers.get(account)
        if ledger is None:
            ledger = self.ledgers[account] = _Ledger()
        return ledger

    # ------------------------------------------------------------------ event observers

    def _on_fill(self, e: OrderFilled) -> None:
        ledger = self._ledger(e.account_id)
        ledger.realized += e.realized_pnl_atoms - e.fee_atoms
        if not e.is_maker:
            self.trades += 1
            self.per_market[e.market]["trades"] += 1
            self.volume_atoms += formulas.notional_atoms(
                e.price_ticks, e.qty_lots, self.engine.specs[e.market].contract_atoms
            )

    def _on_rejected(self, e: OrderRejected | CommandRejected) -> None:
        key = f"{e.code.name}"
        self.rejections[key] = self.rejections.get(key, 0) + 1

    def _on_transfer_rejected(self, e: TransferRejected) -> None:
        key = f"{e.code.name}"
        self.rejections[key] = self.rejections.get(key, 0) + 1
        owner = self.owner.get(e.account_id)
        if owner is not None and owner.startswith("attacker:"):
            self.attacker_refused += 1

    def _on_deposit(self, e: DepositApplied) -> None:
        self._ledger(e.account_id).deposits += e.amount_atoms

    def _on_withdrawal(self, e: WithdrawalApplied) -> None:
        ledger = self._ledger(e.account_id)
        ledger.withdrawn += e.amount_atoms
        # what it has taken out in all, against what it could have realised before this withdrawal
        self.withdrawn_excess_max = max(
            self.withdrawn_excess_max, ledger.withdrawn - (ledger.deposits + max(0, ledger.realized))
        )

    def _on_funding_paid(self, e: FundingPaid) -> None:
        self._ledger(e.account_id).realized += e.amount_atoms

    def _on_transfer(self, e: PositionTransferred) -> None:
        self._ledger(e.account_id).realized += e.realized_pnl_atoms

    def _on_settled(self, e: PositionSettled) -> None:
        self._ledger(e.account_id).realized += e.realized_pnl_atoms

    def _on_loss_shared(self, e: SettlementLossShared) -> None:
        self._ledger(e.account_id).realized += e.amount_atoms

    def _on_insurance(self, e: InsuranceFundChanged) -> None:
        if e.account_id != INSURANCE_ACCOUNT:
            self._ledger(e.account_id).realized -= e.amount_atoms
        if e.reason == "DEFICIT_COVER":
            self.deficit_covered_atoms += -e.amount_atoms

    def _on_mark(self, e: MarkPriceUpdated) -> None:
        if e.index_ticks > 0:
            gap = abs(e.mark_ticks - e.index_ticks) * 10_000 / e.index_ticks
            self.max_gap_bps = max(self.max_gap_bps, gap)

    def _on_index(self, e: IndexUpdated) -> None:
        capped = {d.source for d in e.dropped if d.reason == "CAPPED"}
        if any(self.faulty_quote.get((e.market, u.source)) and u.source not in capped for u in e.used):
            self.faulty_quotes_used += 1
        fair = self.fair.get(e.market)
        if fair:
            price = e.index_ticks * float(self.engine.specs[e.market].tick_size)
            self.max_fair_gap_bps = max(self.max_fair_gap_bps, abs(price - fair) * 10_000 / fair)

    def _on_funding_settled(self, e: FundingSettled) -> None:
        self.funding_paid_atoms += e.paid_atoms
        self.funding_settlements += 1
        self.max_funding_rate_e8 = max(self.max_funding_rate_e8, abs(e.rate_e8))
        spec = self.engine.specs[e.market]
        mark = 0.0 if e.mark_ticks is None else e.mark_ticks * float(spec.tick_size)
        self.markers.append(
            Marker(self.t_s(), e.market, "funding", mark, e.rate_e8 / 1e8, self.units(e.paid_atoms), 0)
        )

    def _on_liquidation(self, e: LiquidationExplained) -> None:
        self.liquidation_records += 1
        market = e.market
        if market is None:
            return
        spec = self.engine.specs[market]
        figures = next((p for p in e.before.positions if p.market == market), None)
        if figures is None or figures.qty_lots == 0:
            return
        sign = 1 if figures.qty_lots > 0 else -1
        mark = figures.mark_ticks
        lot_atoms = mark * spec.contract_atoms
        tick = float(spec.tick_size)
        lot_size = float(spec.lot_size)
        t_s = self.t_s()
        closed = taken_lots = adl_lots = taken_value = adl_value = covered = 0
        for step in e.steps:
            if isinstance(step, OrderStep):
                closed += step.filled_lots
            elif isinstance(step, TakeoverStep):
                taken_lots += step.qty_lots
                taken_value += step.value_atoms
                covered += step.loss_atoms
                self.takeovers += 1
                self.takeover_loss_atoms += step.loss_atoms
                self.markers.append(
                    Marker(
                        t_s,
                        market,
                        "insurance_takeover",
                        step.value_atoms / max(1, step.qty_lots * spec.contract_atoms) * tick,
                        step.qty_lots * lot_size,
                        self.units(step.value_atoms),
                        int(e.account_id),
                    )
                )
            elif isinstance(step, AdlStep):
                adl_lots += step.qty_lots
                adl_value += step.value_atoms
                self.adl_shortfall_atoms += step.shortfall_atoms
                for leg in step.legs:
                    self.adl_legs += 1
                    self.per_market[market]["adl_events"] += 1
                    self.adl_notional_atoms += leg.value_atoms
                    self.adl_borne_atoms += sign * (leg.value_atoms - leg.qty_lots * lot_atoms)
                    self.markers.append(
                        Marker(
                            t_s,
                            market,
                            "adl",
                            leg.value_atoms / max(1, leg.qty_lots * spec.contract_atoms) * tick,
                            leg.qty_lots * lot_size,
                            self.units(leg.value_atoms),
                            int(leg.account_id),
                        )
                    )
        if e.outcome not in ("PARTIAL", "CLOSED"):
            return
        lots = closed + taken_lots + adl_lots
        notional = lots * lot_atoms
        self.liquidations += 1
        self.per_market[market]["liquidations"] += 1
        self.liquidated_accounts[e.account_id] = None
        self.liquidated_notional_atoms += notional
        self.markers.append(
            Marker(
                t_s,
                market,
                "liquidation",
                mark * tick,
                lots * lot_size,
                self.units(notional),
                int(e.account_id),
            )
        )
        view = self.engine.pricing.view(market)
        capped = {s for s, reason in view.sources_dropped if reason == "CAPPED"}
        if any(self.faulty_quote.get((market, s)) and s not in capped for s, _ in view.sources_used):
            self.liquidations_from_faulty += 1

    # ------------------------------------------------------------------ the run

    def setup(self) -> None:
        """Seed the insurance fund, open the agents' accounts, and queue the first work."""
        fund = self.scenario.insurance_fund
        amount = int(Decimal(fund) / self.atom)
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
        for agent in self.agents:
            rng = derive_rng(self.seed, f"agent/{agent.name}")
            ctx = AgentContext(self.engine, self._agent_submit(agent), rng, self.now_ns)
            # account creation goes through the plain submit (the agent owns no account yet)
            ctx.submit = self.submit
            for command in agent.setup(ctx):
                self._agent_submit(agent)(command)
            ctx.submit = self._agent_submit(agent)
            self.contexts[agent.name] = ctx
            label = f"attacker:{agent.name}" if isinstance(agent, Adversary) else agent.name
            for account in agent.accounts:
                self.owner[account] = label
            phase_ns = int(rng.random() * agent.interval_s * NS_PER_S) + 1
            self._push(self.now_ns + phase_ns, _AGENT, agent)
        for source in self.sources:
            self._push(self.now_ns, _QUOTE, ("make", source))
        for event in self.scenario.events:
            self._push(START_NS + int(event.at_s * NS_PER_S), _EVENT, event)
        self._push(self.now_ns, _SAMPLE, 0)
        self.fund_start = self.fund_min = fund_equity(self.engine)

    def run(self) -> None:
        """Process queued work in time order until the scenario's duration."""
        end_ns = START_NS + self.duration_ns
        heap = self._heap
        while heap and heap[0][0] <= end_ns:
            at_ns, priority, _, payload = heapq.heappop(heap)
            self.now_ns = max(self.now_ns, at_ns)
            if priority == _QUOTE:
                self._quote(payload)
            elif priority == _AGENT:
                self._agent_turn(payload)
            elif priority == _SAMPLE:
                self._sample(payload)
            else:
                self._scripted(payload)
        self.now_ns = end_ns
        self._sample(-1)
        if self.store is not None:
            self.store.writer.commit()

    def _quote(self, payload: tuple[str, Any]) -> None:
        kind, item = payload
        if kind == "deliver":
            command, faulty = item
            self.faulty_quote[(command.market, command.source)] = faulty
            self.submit(command)
            return
        source: Source = item
        t_s = self.t_s()
        price = source.quote(t_s)
        self.fair[source.market] = source.process.price_at(t_s)
        self._push(self.now_ns + int(source.every_s * NS_PER_S), _QUOTE, ("make", source))
        if price is None:
            return
        market = MarketId(source.market)
        ticks = price_to_ticks(price, self.engine.specs[market].tick_size)
        command = SubmitSpotQuote(ts_ns=self.now_ns, market=market, source=source.name, price_ticks=ticks)
        faulty = source.outlier_factor(t_s) != 1.0
        self.faulty_quotes_sent += faulty
        latency_ns = int(source.latency_s * NS_PER_S)
        if latency_ns <= 0:
            self.faulty_quote[(source.market, source.name)] = faulty
            self.submit(command)
        else:
            self._push(self.now_ns + latency_ns, _QUOTE, ("deliver", (command, faulty)))

    def _agent_turn(self, agent: Agent) -> None:
        ctx = self.contexts[agent.name]
        ctx.now_ns = self.now_ns
        for command in agent.act(ctx, self.now_ns):
            ctx.submit(command)
        if isinstance(agent, Adversary):
            self._audit(agent.accounts, attacker=True)
        self._push(self.now_ns + int(agent.interval_s * NS_PER_S), _AGENT, agent)

    def _scripted(self, event: Any) -> None:
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
            self.submit(
                Deposit(
                    ts_ns=self.now_ns,
                    account_id=INSURANCE_ACCOUNT,
                    asset=self.engine.asset,
                    amount_atoms=int(Decimal(str(params["amount"])) / self.atom),
                    tx_id=TxId(f"insurance-{self._seq}"),
                )
            )

    def _audit(self, accounts: list[AccountId] | None, attacker: bool = False) -> None:
        """Withdrawable against realised equity (from events) and wallets below zero."""
        engine = self.engine
        ids = accounts if accounts is not None else [a for a in engine.accounts if a != INSURANCE_ACCOUNT]
        below = 0
        for account_id in ids:
            risk = engine.risk(account_id)
            ledger = self._ledger(account_id)
            self.withdrawable_audits += 1
            self.withdrawable_excess_max = max(
                self.withdrawable_excess_max, risk.withdrawable_atoms - ledger.equity
            )
            wallet = risk.wallet_atoms
            lowest = (
                min(wallet, *(p.isolated_margin_atoms for p in risk.positions)) if risk.positions else wallet
            )
            self.min_wallet_atoms = min(self.min_wallet_atoms, lowest)
            if lowest < 0:
                below += 1
            if attacker:
                self.attacker_upnl_max = max(self.attacker_upnl_max, risk.cross_unrealized_pnl_atoms)
        self.accounts_below_zero = max(self.accounts_below_zero, below)

    def _sample(self, number: int) -> None:
        engine = self.engine
        if number >= 0:
            self.submit(AdvanceClock(ts_ns=self.now_ns))
            self._push(self.now_ns + int(self.scenario.sample_s * NS_PER_S), _SAMPLE, number + 1)
        t_s = self.t_s()
        for market, spec in engine.specs.items():
            row = self.series[market]
            tick = float(spec.tick_size)
            lot = float(spec.lot_size)
            index = engine.indexes.get(market)
            mark = engine.marks.get(market)
            last = engine.last_trade_ticks.get(market)
            rate = engine.pricing.predicted_funding_rate_e8(market)
            row["t_s"].append(t_s)
            row["index"].append(math.nan if index is None else index * tick)
            row["mark"].append(math.nan if mark is None else mark * tick)
            row["last"].append(math.nan if last is None else last * tick)
            row["open_interest"].append(engine.open_interest_lots[market] * lot)
            row["funding_rate"].append(math.nan if rate is None else rate / 1e8)
            bid, ask = self._depth(market, mark)
            row["bid_depth"].append(bid * lot)
            row["ask_depth"].append(ask * lot)
            row["fair"].append(self.fair.get(market, math.nan))
        equity = fund_equity(engine)
        self.fund_min = min(self.fund_min, equity)
        self.venue_series["t_s"].append(t_s)
        self.venue_series["insurance_fund"].append(self.units(equity))
        every = max(1, round(self.scenario.check_every_s / self.scenario.sample_s))
        if number < 0 or number % every == 0:
            problems = invariants.violations(engine)
            self.invariant_checks += 1
            self.invariant_violations += len(problems)
            for problem in problems:
                if len(self.invariant_messages) < 20:
                    self.invariant_messages.append(f"t={t_s:.0f}s: {problem}")
            self._audit(None)
        if self.on_progress is not None:
            self.on_progress(t_s, self.events)

    def _depth(self, market: MarketId, mark: int | None) -> tuple[int, int]:
        if mark is None:
            return 0, 0
        book = self.engine.books[market]
        low = mark - mark * DEPTH_BAND_E8 // 10**8
        high = mark + mark * DEPTH_BAND_E8 // 10**8
        out = []
        for side in (book.bids, book.asks):
            total = 0
            for key in reversed(side.keys):
                price = key * side.sign
                if not low <= price <= high:
                    break
                total += sum(o.leaves_lots for o in side.levels[price].values())
            out.append(total)
        return out[0], out[1]

    # ------------------------------------------------------------------ results

    def summary(self, wall_seconds: float) -> dict[str, Any]:
        """The run's figures; money as settlement units (floats) and exact ``*_atoms`` integers."""
        engine = self.engine
        end_equity = fund_equity(engine)
        negative_end = 0
        for account_id, account in engine.accounts.items():
            if account_id != INSURANCE_ACCOUNT:
                negative_end += max(0, -account.balance(engine.asset))
        bad_debt = self.adl_shortfall_atoms + max(0, -end_equity) + negative_end
        attackers = [a for a in self.agents if isinstance(a, Adversary)]
        attacker_accounts = [acct for a in attackers for acct in a.accounts]
        attacker_deposits = sum(self._ledger(a).deposits for a in attacker_accounts)
        attacker_withdrawn = sum(self._ledger(a).withdrawn for a in attacker_accounts)
        attacker_realized = sum(self._ledger(a).realized for a in attacker_accounts)
        makers = [a for a in self.agents if isinstance(a, MarketMaker)]
        summary: dict[str, Any] = {
            "scenario": self.scenario.name,
            "seed": self.seed,
            "state_hash": state_hash(engine),
            "commands": self.commands,
            "events": self.events,
            "sim_seconds": self.duration_ns / NS_PER_S,
            "wall_seconds": round(wall_seconds, 3),
            "commands_per_second": round(self.commands / wall_seconds, 1) if wall_seconds > 0 else 0.0,
            "settlement_asset": str(engine.asset),
            "accounts": len(engine.accounts) - (1 if INSURANCE_ACCOUNT in engine.accounts else 0),
            "agents": len(self.agents),
            "trades": self.trades,
            "volume": self.units(self.volume_atoms),
            "volume_atoms": self.volume_atoms,
            "rejections": dict(sorted(self.rejections.items())),
            "liquidations": self.liquidations,
            "liquidation_records": self.liquidation_records,
            "liquidated_accounts": len(self.liquidated_accounts),
            "liquidated_notional": self.units(self.liquidated_notional_atoms),
            "liquidated_notional_atoms": self.liquidated_notional_atoms,
            "insurance_fund_start": self.units(self.fund_start),
            "insurance_fund_min": self.units(self.fund_min),
            "insurance_fund_end": self.units(end_equity),
            "insurance_fund_start_atoms": self.fund_start,
            "insurance_fund_min_atoms": self.fund_min,
            "insurance_fund_end_atoms": end_equity,
            "insurance_takeovers": self.takeovers,
            "insurance_takeover_loss": self.units(self.takeover_loss_atoms),
            "deficit_covered": self.units(self.deficit_covered_atoms),
            "adl_events": self.adl_legs,
            "adl_notional": self.units(self.adl_notional_atoms),
            "adl_notional_atoms": self.adl_notional_atoms,
            "adl_shortfall": self.units(self.adl_shortfall_atoms),
            "adl_shortfall_atoms": self.adl_shortfall_atoms,
            "adl_borne_atoms": self.adl_borne_atoms,
            "bad_debt": self.units(bad_debt),
            "bad_debt_atoms": bad_debt,
            "max_mark_index_gap_bps": round(self.max_gap_bps, 4),
            "max_index_fair_gap_bps": round(self.max_fair_gap_bps, 4),
            "funding_paid": self.units(self.funding_paid_atoms),
            "funding_paid_atoms": self.funding_paid_atoms,
            "funding_settlements": self.funding_settlements,
            "max_funding_rate": self.max_funding_rate_e8 / 1e8,
            "faulty_quotes_sent": self.faulty_quotes_sent,
            "faulty_quotes_used": self.faulty_quotes_used,
            "liquidations_from_faulty_sources": self.liquidations_from_faulty,
            "accounts_below_zero": self.accounts_below_zero,
            "min_wallet": self.units(self.min_wallet_atoms),
            "withdrawable_audits": self.withdrawable_audits,
            "withdrawable_excess_max_atoms": self.withdrawable_excess_max if self.withdrawable_audits else 0,
            "withdrawn_excess_max_atoms": self.withdrawn_excess_max
            if self.withdrawn_excess_max > -(2**62)
            else 0,
            "attacker_deposits": self.units(attacker_deposits),
            "attacker_withdrawn": self.units(attacker_withdrawn),
            "attacker_realized_pnl": self.units(attacker_realized),
            "attacker_unrealized_pnl_max": self.units(self.attacker_upnl_max),
            "attacker_withdrawals_refused": self.attacker_refused,
            "maker_withdrawals": sum(m.withdrawals for m in makers),
            "invariant_checks": self.invariant_checks,
            "invariant_violations": self.invariant_violations,
            "invariant_messages": list(self.invariant_messages),
            "markets": self.per_market,
        }
        summary["assertions"] = evaluate(self.scenario.assertions, summary)
        return summary


# ---------------------------------------------------------------------------------------------- entry points


def _resolve(scenario: Scenario | str | Path, overrides: Mapping[str, object] | None) -> Scenario:
    if isinstance(scenario, Scenario):
        if not overrides:
            return scenario
        return scenario_from_document(
            apply_overrides(scenario.doc, overrides), scenario.base_dir, scenario.path
        )
    return load_scenario(scenario, overrides)


def run_scenario(
    scenario: Scenario | str | Path,
    seed: int,
    out_dir: Path | None,
    *,
    overrides: Mapping[str, object] | None = None,
    progress: bool = False,
    write_outputs: bool = True,
) -> RunResult:
    """Run ``scenario`` with ``seed`` and return its :class:`~perpx.sim.result.RunResult`.

    Parameters
    ----------
    scenario
        A loaded scenario, or the path of a scenario file.
    seed
        Seed of every random draw of the run.
    out_dir
        Where to write the journal, ``summary.json``, ``series.json`` and the report; ``None`` runs
        in memory without a journal (the fast path for sweeps).
    overrides
        Dotted paths to set in the scenario document first (:func:`~perpx.sim.scenario.apply_overrides`).
    progress
        Show a rich progress bar (simulated time, events/s) on the terminal.
    write_outputs
        With ``out_dir``, write the files (``False``: only the journal).

    Raises
    ------
    ScenarioError
        If the scenario or an override is unusable.
    RunError
        If ``out_dir`` already holds a run's journal.
    """
    loaded = _resolve(scenario, overrides)
    store: Store | None = None
    if out_dir is not None:
        out_dir = Path(out_dir)
        journal = out_dir / JOURNAL_DIR
        if (journal / "journal.log").exists():
            raise RunError(
                f"{out_dir} already holds a run ({journal}/journal.log); give a new --out directory"
            )
        config = dict(loaded.doc["config"])
        config["venue"] = {**config.get("venue", {}), "durability": "none"}
        store, _ = open_store(journal, dump_toml(config))
    try:
        sim = Simulation(loaded, seed, store)
    except (AgentError, ValueError) as exc:
        if store is not None:
            store.close(snapshot_on_close=False)
        raise ScenarioError(str(exc)) from exc
    started = time.perf_counter()
    if progress:
        _run_with_progress(sim)
    else:
        sim.setup()
        sim.run()
    if store is not None:
        store.close()
    wall = time.perf_counter() - started
    result = RunResult(
        scenario=loaded.name,
        seed=seed,
        summary=sim.summary(wall),
        series=sim.series,
        venue_series=sim.venue_series,
        markers=sim.markers,
    )
    if out_dir is not None and write_outputs:
        write_result(result, out_dir)
    return result


def _run_with_progress(sim: Simulation) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    total = sim.duration_ns / NS_PER_S
    started = time.perf_counter()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:>8.0f} / {task.total:.0f} simulated s"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        transient=False,
    ) as bar:
        task = bar.add_task(sim.scenario.name, total=total, rate="")

        def report(t_s: float, events: int) -> None:
            wall = time.perf_counter() - started
            rate = f"{events / wall:,.0f} events/s" if wall > 0 else ""
            bar.update(task, completed=t_s, rate=rate)

        sim.on_progress = report
        sim.setup()
        sim.run()
        bar.update(task, completed=total)


def write_result(result: RunResult, out_dir: Path) -> None:
    """Write ``summary.json`` and ``series.json`` to ``out_dir``, then the report when available."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / SUMMARY_FILE).write_text(json.dumps(result.summary, indent=2, allow_nan=False) + "\n")
    series = {
        "scenario": result.scenario,
        "seed": result.seed,
        "series": {
            m: {k: [_json_float(v) for v in vs] for k, vs in cols.items()}
            for m, cols in result.series.items()
        },
        "venue_series": {k: [_json_float(v) for v in vs] for k, vs in result.venue_series.items()},
        "markers": [asdict(m) for m in result.markers],
    }
    (out_dir / SERIES_FILE).write_text(json.dumps(series, allow_nan=False) + "\n")
    try:
        from perpx.sim import report
    except ImportError:
        return
    write_report = getattr(report, "write_report", None)
    if write_report is not None:
        write_report(result, out_dir)


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else value


def load_result(out_dir: Path) -> RunResult:
    """The :class:`RunResult` a run wrote to ``out_dir`` (``null`` series values come back as ``nan``)."""
    summary = json.loads((out_dir / SUMMARY_FILE).read_text())
    data = json.loads((out_dir / SERIES_FILE).read_text())

    def floats(values: list[float | None]) -> list[float]:
        return [math.nan if v is None else float(v) for v in values]

    return RunResult(
        scenario=data["scenario"],
        seed=int(data["seed"]),
        summary=summary,
        series={m: {k: floats(v) for k, v in cols.items()} for m, cols in data["series"].items()},
        venue_series={k: floats(v) for k, v in data["venue_series"].items()},
        markers=[Marker(**m) for m in data["markers"]],
    )


__all__ = [
    "JOURNAL_DIR",
    "START_NS",
    "SUMMARY_FIELDS",
    "RunError",
    "ScenarioError",
    "Simulation",
    "derive_rng",
    "load_result",
    "run_scenario",
    "write_result",
]
