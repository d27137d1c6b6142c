"""A simulated desk day: client agents send RFQs over a risk-lab market, the desk quotes and hedges.

The market is a risk-lab scenario (``scenarios/calm_day.toml`` by default: spot sources, market
makers, noise, momentum and leveraged traders) run by :class:`~perpx.sim.runner.simulation.Simulation`
on its simulated clock, journaled into ``OUT`` (``OUT/journal.log``, ``OUT/config.toml`` with an
``[otc]`` section). On top of it:

* the **desk** (:class:`~perpx.otc.desk.Desk`) quotes from its own funded account, its store in
  ``OUT/otc.sqlite``;
* **clients**, one account each, in three tiers, send RFQs at exponential intervals (mean
  ``rfq_interval_s`` over all clients), for a side drawn at random (a fifth of them two-way) and a
  size drawn log-normally around ``median_qty`` base units (realistic blocks: a few times the
  venue's top-of-book size), and accept when the quoted half-spread is within their own tolerance,
  after a think time of 0.2 to ``max_think_s`` seconds (a slow client finds its quote expired;
  one whose index moved finds it last-looked);
* the **hedger** (:class:`~perpx.otc.hedging.Hedger`) applies each symbol's policy after every
  booked trade and works its hedges on the book through the execution engine;
* with ``loans`` > 0, a **loan book** (:class:`LoanBook`): the market's base asset becomes loan
  collateral priced from the market's index every 15 s, the desk becomes the venue's USDT lender,
  and that many borrowers borrow from it in the first minutes (so the report shows interest
  income, and in a crash liquidation penalties and bad debt).

Everything random comes from generators seeded by ``(seed, purpose)``, so a seed gives the same day.
At the end the working hedges are cancelled and ``perpx desk report`` is written to ``OUT/report``.
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from perpx.engine.commands import AdvanceClock, BorrowLoan, CreateAccount, Deposit, SubmitAssetQuote
from perpx.engine.events import AccountCreated
from perpx.engine.values import AccountId, AssetId, MarketId, Side, TxId
from perpx.execution.inprocess import EngineVenue
from perpx.journal.store import open_store
from perpx.otc.config import parse_otc
from perpx.otc.desk import Desk
from perpx.otc.errors import OtcError
from perpx.otc.hedging import Hedger
from perpx.otc.pricing import QuoteSide
from perpx.otc.report import build_report, write_report
from perpx.otc.store import OtcStore
from perpx.sim.runner.simulation import START_NS, Simulation
from perpx.sim.scenario import (
    Scenario,
    apply_overrides,
    dump_toml,
    load_scenario,
    read_document,
    scenario_from_document,
)

NS_PER_S = 1_000_000_000
HEDGE_PERIOD_S = 5

DEFAULT_OTC: dict[str, Any] = {
    "quote_ttl_ms": 3000,
    "last_look_bps": "3",
    "min_notional": "20000",
    "max_notional": "2000000",
    "base_spread_bps": "5",
    "depth_spread_bps": "3",
    "depth_band_bps": "60",
    "vol_spread_mult": "0.5",
    "vol_window_s": 300,
    "skew_bps": "8",
    "max_spread_bps": "60",
    "tiers": {"standard": "0", "silver": "-0.5", "gold": "-1"},
}
"""The desk's ``[otc]`` section for the day (the desk and client accounts are filled in)."""
CLIENT_TIERS = ("gold", "silver", "silver", "standard", "standard", "standard")


@dataclass(frozen=True, slots=True)
class DayPlan:
    """The day's knobs."""

    scenario: Path
    seed: int = 1
    hours: float = 2.0
    rfq_interval_s: float = 20.0
    median_qty: Decimal = Decimal("1.5")
    max_think_s: float = 4.0
    hedge: str = "threshold"
    hedge_threshold: str = "3"
    max_inventory: str = "15"
    desk_deposit: str = "5000000"
    client_deposit: str = "3000000"
    loans: int = 0
    """Borrowers the desk lends to (it is then the venue's lender: ``[lending]``); 0: no loan book."""


def _open(sim: Simulation, name: str, deposit: str) -> AccountId:
    created = next(
        e for e in sim.submit(CreateAccount(ts_ns=sim.now_ns, name=name)) if isinstance(e, AccountCreated)
    )
    atom = sim.engine.config.settlement.atom
    sim.submit(
        Deposit(
            ts_ns=sim.now_ns,
            account_id=created.account_id,
            asset=sim.engine.asset,
            amount_atoms=int(Decimal(deposit) / atom),
            tx_id=TxId(f"otc-day-{name}"),
        )
    )
    return created.account_id


def run_day(plan: DayPlan, out: Path) -> dict[str, Any]:
    """Run the day into ``out`` (module docstring) and return the report's summary.

    Raises
    ------
    ValueError
        If ``out`` already holds a journal, or the scenario has no market.
    """
    if (out / "journal.log").exists():
        raise ValueError(f"{out} already holds a run (journal.log); give a new directory")
    loaded = load_scenario(plan.scenario, {"run.duration_s": int(plan.hours * 3600)})
    market = MarketId(sorted(loaded.config.markets)[0])
    probe = Simulation(loaded, plan.seed)
    probe.setup()
    desk_id = probe.engine.next_account_id  # the next account the same setup opens: the desk's
    if plan.loans:
        loaded = _with_loan_book(plan, desk_id, str(market))
    clients = {desk_id + 1 + i: tier for i, tier in enumerate(CLIENT_TIERS)}
    otc = {
        **DEFAULT_OTC,
        "desk_account": desk_id,
        "clients": {str(account): tier for account, tier in clients.items()},
        "markets": {
            str(market): {
                "hedge": plan.hedge,
                "hedge_threshold": plan.hedge_threshold,
                "max_inventory": plan.max_inventory,
                "hedge_algo": "TWAP",
                "hedge_duration_s": 120,
            }
        },
    }
    config_doc = dict(loaded.doc["config"])
    config_doc["venue"] = {**config_doc.get("venue", {}), "durability": "none"}
    config_doc["otc"] = otc
    store, _ = open_store(out, dump_toml(config_doc))
    desk_store = OtcStore.in_dir(out)
    try:
        sim = Simulation(loaded, plan.seed, store)
        sim.setup()
        otc_config = parse_otc(config_doc, tuple(str(m) for m in loaded.config.markets))
        assert otc_config is not None
        desk = Desk(otc_config, desk_store)
        sim.sequencer.add_listener(desk.history.observe)
        if _open(sim, "otc-desk", plan.desk_deposit) != desk_id:
            raise ValueError(
                "the desk's account id differs from the probe's: the scenario's setup is not deterministic"
            )
        for i, _tier in enumerate(CLIENT_TIERS):
            _open(sim, f"otc-client-{i + 1}", plan.client_deposit)
        venue = EngineVenue(sim.sequencer, AccountId(desk_id), lambda: sim.now_ns)
        hedger = Hedger(venue, desk_store, dict(otc_config.markets))
        lending = LoanBook(sim, market, plan) if plan.loans else None
        _trade_day(sim, desk, hedger, market, sorted(clients), plan, lending)
        hedger.stop_all("the day ended")
        sim.submit(AdvanceClock(ts_ns=sim.now_ns))
    finally:
        desk_store.close()
        store.close()
    return write_report(build_report(out), out / "report")


def _trade_day(
    sim: Simulation,
    desk: Desk,
    hedger: Hedger,
    market: MarketId,
    clients: list[int],
    plan: DayPlan,
    lending: LoanBook | None = None,
) -> None:
    arrivals = random.Random(f"{plan.seed}/otc/arrivals")
    sizes = random.Random(f"{plan.seed}/otc/sizes")
    minds = random.Random(f"{plan.seed}/otc/clients")
    tolerance = {c: minds.uniform(6.0, 16.0) for c in clients}
    end_ns = START_NS + sim.duration_ns
    spec = sim.engine.specs[market]
    pending: list[tuple[int, int, str, int, Side]] = []  # (accept at, order, quote id, client, two-way side)
    next_rfq = sim.now_ns + int(arrivals.expovariate(1 / plan.rfq_interval_s) * NS_PER_S)
    order = 0
    while True:
        wake = hedger.next_wake_ns()
        at = min(next_rfq, pending[0][0] if pending else end_ns, wake if wake is not None else end_ns, end_ns)
        if lending is not None:
            at = min(at, lending.next_ns)
        sim.advance_to(at)
        sim.now_ns = max(sim.now_ns, at)
        if at >= end_ns:
            return
        if lending is not None and lending.next_ns <= sim.now_ns:
            lending.turn()
        hedger.step_due(sim.now_ns)
        while pending and pending[0][0] <= sim.now_ns:
            _, _, quote_id, client, wanted = heapq.heappop(pending)
            _accept(sim, desk, hedger, market, quote_id, client, wanted)
        if next_rfq <= sim.now_ns:
            client = clients[arrivals.randrange(len(clients))]
            qty = Decimal(str(round(float(plan.median_qty) * math.exp(sizes.gauss(0, 0.6)), 3)))
            lots = max(spec.min_qty_lots, int(qty / spec.lot_size))
            draw = sizes.random()
            side = QuoteSide.TWO_WAY if draw < 0.2 else QuoteSide.BUY if draw < 0.6 else QuoteSide.SELL
            try:
                quote = desk.request(sim.engine, client, market, side, lots)
            except OtcError:
                quote = None
            if quote is not None:
                halves = [Decimal(t) for t in (quote.bid_half_bps, quote.ask_half_bps) if t]
                if halves and min(halves) <= Decimal(str(tolerance[client])):
                    think = minds.uniform(0.2, plan.max_think_s)
                    order += 1
                    wanted = Side.BUY if minds.random() < 0.5 else Side.SELL  # a two-way quote's chosen side
                    at = sim.now_ns + int(think * NS_PER_S)
                    heapq.heappush(pending, (at, order, quote.quote_id, client, wanted))
            next_rfq = sim.now_ns + max(1, int(arrivals.expovariate(1 / plan.rfq_interval_s) * NS_PER_S))


def _accept(
    sim: Simulation, desk: Desk, hedger: Hedger, market: MarketId, quote_id: str, client: int, wanted: Side
) -> None:
    record = desk.store.quote(quote_id)
    if record is None:
        return
    side = None
    if record.requested == QuoteSide.TWO_WAY.value:
        priced = [
            s
            for s, ticks in ((Side.BUY, record.ask_ticks), (Side.SELL, record.bid_ticks))
            if ticks is not None
        ]
        side = wanted if wanted in priced else priced[0]
    try:
        plan = desk.prepare_accept(sim.engine, client, quote_id, side)
        command = desk.command(plan, sim.now_ns)
    except OtcError:
        return
    booked = desk.settle(plan, command, sim.submit(command))
    if booked.trade_id is not None:
        hedger.review(sim.engine, str(market), f"after {quote_id}")


# ---------------------------------------------------------------------- the loan book

PRICE_EVERY_S = 15
"""The BTC asset index follows the perpetual's index at this period (one source, ``sim``)."""
LENDING_SOURCE = "sim"


def _with_loan_book(plan: DayPlan, desk_id: int, market: str) -> Scenario:
    """The scenario with the market's base asset as collateral and the desk as the USDT lender."""
    doc = apply_overrides(read_document(plan.scenario), {"run.duration_s": int(plan.hours * 3600)})
    config = doc["config"]
    base = str(config["markets"][market]["base"])
    config.setdefault("assets", {})[base] = {
        "decimals": 8,
        "max_collateral": "1000",
        "index": {
            "policy": "binance",
            "sources": {LENDING_SOURCE: 1},
            "stale_after_s": 120,
            "min_sources": 1,
        },
    }
    config["lending"] = {
        "lender_account": desk_id,
        "loanable": {
            str(config["venue"]["settlement_asset"]): {
                "base_rate": "0.05",
                "kink": "0.8",
                "rate_at_kink": "0.1",
                "max_rate": "1",
            }
        },
        "collateral": {
            base: {
                "initial_ltv": "0.78",
                "margin_call_ltv": "0.85",
                "liquidation_ltv": "0.91",
                "close_factor": "0.5",
                "liquidation_penalty": "0.02",
            }
        },
    }
    return scenario_from_document(doc, plan.scenario.resolve().parent, plan.scenario)


class LoanBook:
    """The day's borrowers: each posts collateral and borrows from the desk; the collateral's index follows the market.

    Borrowers open in the first minutes with 1 to 8 units of the base asset at an LTV drawn from 0.5
    to 0.77 (one per ``PRICE_EVERY_S``); a crash takes the riskier ones to margin calls and liquidation.
    """

    def __init__(self, sim: Simulation, market: MarketId, plan: DayPlan) -> None:
        self.sim = sim
        self.market = market
        self.asset = AssetId(str(sim.engine.specs[market].base))
        self.draws = random.Random(f"{plan.seed}/otc/loans")
        self.waiting = plan.loans
        self.next_ns = sim.now_ns
        self.opened = 0

    def turn(self) -> None:
        """Quote the collateral's index, then open the next borrower's loan (if any wait)."""
        sim = self.sim
        spec = sim.engine.specs[self.market]
        index = sim.engine.indexes.get(self.market)
        atom = sim.engine.config.settlement.atom
        if index is not None:
            price_atoms = int(Decimal(index) * spec.tick_size / atom)
            sim.submit(
                SubmitAssetQuote(
                    ts_ns=sim.now_ns, asset=self.asset, source=LENDING_SOURCE, price_atoms=price_atoms
                )
            )
            if self.waiting:
                self._open(price_atoms)
        self.next_ns = sim.now_ns + PRICE_EVERY_S * NS_PER_S

    def _open(self, price_atoms: int) -> None:
        sim = self.sim
        self.waiting -= 1
        self.opened += 1
        created = next(
            e
            for e in sim.submit(CreateAccount(ts_ns=sim.now_ns, name=f"otc-borrower-{self.opened}"))
            if isinstance(e, AccountCreated)
        )
        units = Decimal(self.draws.randint(1, 8))
        collateral_atoms = int(units * 10**8)
        sim.submit(
            Deposit(
                ts_ns=sim.now_ns,
                account_id=created.account_id,
                asset=self.asset,
                amount_atoms=collateral_atoms,
                tx_id=TxId(f"otc-day-borrower-{self.opened}"),
            )
        )
        ltv = Decimal(str(round(self.draws.uniform(0.5, 0.77), 4)))
        loan_atoms = int(units * price_atoms * ltv)
        sim.submit(
            BorrowLoan(
                ts_ns=sim.now_ns,
                account_id=created.account_id,
                loan_asset=sim.engine.asset,
                collateral_asset=self.asset,
                loan_atoms=loan_atoms,
                collateral_atoms=collateral_atoms,
            )
        )
