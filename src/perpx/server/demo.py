"""``perpx serve --demo``: the risk lab's spot sources and agents, trading live inside the server.

The demo is one sequencer :class:`~perpx.server.sequencer.Driver`. The sources and agents are the
simulator's, driven through its public surface (:class:`perpx.sim.SimDriver`) on wall time: the
venue sequencer's stamp is the driver's clock and ``apply`` its submit. In the sequencer's pipeline,
when its next piece of work is due, the demo applies ordinary journaled commands, exactly what an
outside client could send:

==========  =====================================================================================
work        what happens
==========  =====================================================================================
quote       every source due now reads its market's price process at ``t_s`` (seconds since the
            demo started) and the quotes go in as one batch of ``SubmitSpotQuote``
agent turn  an agent due now (its own ``interval_s``) is topped up when it is flat and half down,
            then ``act`` runs and its commands go in as one batch (one journal commit)
status      once a minute, a log line: trades, liquidations, index prices
==========  =====================================================================================

The cast (price processes, sources, agents) is :data:`CAST_FILE`; every agent row is built once per
market (:meth:`DemoCast.cast`). Randomness: one generator per price process, source and agent,
derived from ``seed`` as the simulator derives them (:mod:`perpx.sim.seeds`). Wall-clock timing
makes a demo run itself unrepeatable; its journal still replays to the same state hash, like any
other.

Restarts
--------
Agent accounts are named ``demo-...``. On set-up, every such account (but the demo trader's) has
its open orders cancelled, so a restart never leaves the previous run's quotes resting in the
book. Agents then find their accounts again by name and reuse them (topping up a flat account that
is half down), and the price processes resume from the venue's last index price. The demo trader
account and its API key are found again by name as well; the printed ccxt snippet connects to it.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from typing import Any

from perpx.engine.commands import AdvanceClock, CancelAllOrders, Command, CreateAccount, Deposit
from perpx.engine.engine import Engine
from perpx.engine.events import AccountCreated, Event, FundingSettled, LiquidationExplained, OrderFilled
from perpx.engine.liquidation.insurance import INSURANCE_ACCOUNT
from perpx.engine.values import AccountId, MarketId, TxId, format_units
from perpx.sequencing import Applied, Sequencer
from perpx.server.context import ServerContext
from perpx.server.keys import ApiKey
from perpx.sim import Cast, SimDriver, SpotQuote

log = logging.getLogger("perpx.demo")

CAST_FILE = "data/demo_agents.toml"
AGENT_PREFIX = "demo-"
TRADER_NAME = "demo-trader"
TRADER_DEPOSIT = "100000"
REFILL_BELOW = Decimal("0.5")
"""A flat agent whose wallet fell below this share of its deposit is topped back up to it."""
STATUS_EVERY_NS = 60 * 1_000_000_000


@dataclass(frozen=True)
class DemoCast:
    """The demo's price processes, sources and agent rows, as :data:`CAST_FILE` writes them."""

    prices: Mapping[str, Mapping[str, Any]]
    sources: Mapping[str, Mapping[str, Any]]
    agents: list[dict[str, Any]]
    insurance_fund: str = "0"

    @classmethod
    def parse(cls, text: str) -> DemoCast:
        """The cast a TOML text describes (tables as in :data:`CAST_FILE`)."""
        doc = tomllib.loads(text)
        return cls(
            prices=doc.get("prices", {}),
            sources=doc.get("sources", {}),
            agents=list(doc.get("agents", [])),
            insurance_fund=str(doc.get("insurance", {}).get("fund", "0")),
        )

    @classmethod
    def embedded(cls) -> DemoCast:
        """The cast shipped with perpx (:data:`CAST_FILE`)."""
        return cls.parse(resources.files("perpx").joinpath(CAST_FILE).read_text())

    def agent_rows(self, markets: list[MarketId]) -> list[dict[str, Any]]:
        """Every row once per market (of its own ``markets`` when it has them), named ``demo-<name>-<market>``."""
        rows: list[dict[str, Any]] = []
        for market in markets:
            for number, row in enumerate(self.agents):
                if "markets" in row and market not in row["markets"]:
                    continue
                name = str(row.get("name", f"{row.get('kind', 'agent')}-{number}"))
                rows.append({**row, "name": f"{AGENT_PREFIX}{name}-{market}", "markets": [str(market)]})
        return rows

    def cast(self, engine: Engine) -> Cast:
        """The simulator's cast for this venue, in the scenario file's keys.

        Every market with index sources and a price table (its own, or ``default``) gets a price
        process that resumes from the venue's index (else mark) price, and one source row per index
        source, with that name's ``[sources.<name>]`` table (or ``default``). A market with no
        start price, index or mark gets no process, and its sources stay silent.
        """
        prices: dict[str, Mapping[str, Any]] = {}
        sources: list[Mapping[str, Any]] = []
        for market, spec in engine.specs.items():
            if spec.index is None:
                continue  # a market without index sources is priced by its admin, not by the demo
            table = self.prices.get(market) or self.prices.get("default")
            if table is None:
                continue
            resume = engine.indexes.get(market) or engine.marks.get(market)
            if resume is not None:
                start: str | None = str(resume * spec.tick_size)
            else:
                start = str(table["start"]) if "start" in table else None
            if start is None:
                log.warning("demo: %s has no start price, index or mark; its sources stay silent", market)
                continue
            prices[market] = {**table, "start": start}
            for name in spec.index.weights:
                row = self.sources.get(name) or self.sources.get("default", {})
                sources.append({**row, "name": name, "market": market})
        return Cast(prices=prices, sources=sources, agents=self.agent_rows(list(engine.specs)))


@dataclass
class DemoStats:
    """What the demo has seen since it started (every batch, the demo's and the clients')."""

    trades: int = 0
    liquidations: int = 0
    funding_settlements: int = 0
    names: dict[AccountId, str] = field(default_factory=dict)

    def observe(self, batch: list[Applied]) -> None:
        for applied in batch:
            for event in applied.events:
                if type(event) is OrderFilled:
                    self.trades += not event.is_maker
                elif type(event) is LiquidationExplained and event.outcome in ("PARTIAL", "CLOSED"):
                    self.liquidations += 1
                    log.info(
                        "demo: liquidated account %d (%s) in %s: %s",
                        event.account_id,
                        self.names.get(event.account_id, "?"),
                        event.market,
                        event.outcome,
                    )
                elif type(event) is FundingSettled:
                    self.funding_settlements += 1


class DemoDriver:
    """Spot sources and agents on wall-clock schedules; the sequencer calls ``run`` when ``due_ns`` passes.

    Parameters
    ----------
    ctx
        The open venue (its sequencer not started yet when :meth:`setup` runs).
    seed
        Seed of every price process, source and agent.
    cast
        What to run (default: the embedded :data:`CAST_FILE`).
    """

    def __init__(self, ctx: ServerContext, seed: int, cast: DemoCast | None = None) -> None:
        self.ctx = ctx
        self.seed = seed
        self.cast = cast if cast is not None else DemoCast.embedded()
        self.stats = DemoStats()
        self.sim: SimDriver | None = None
        self.agent_accounts: dict[str, tuple[AccountId, ...]] = {}
        self.trader_key: ApiKey | None = None
        self.cancelled_orders = 0
        self.reused_accounts = 0
        self.started_ns = 0
        self._status_due_ns = 0

    # ------------------------------------------------------------------ set-up

    def setup(self, sequencer: Sequencer) -> None:
        """Cancel the previous run's agent orders, fund the insurance fund, open the agents' accounts."""
        engine = sequencer.engine
        self.started_ns = sequencer.stamp()
        by_name: dict[str, AccountId] = {}
        for account_id, account in engine.accounts.items():
            by_name.setdefault(account.name, account_id)
        self._cancel_stale_orders(sequencer)
        fund = int(Decimal(self.cast.insurance_fund) / engine.config.settlement.atom)
        if fund > 0:
            seed_fund = Deposit(
                ts_ns=sequencer.stamp(),
                account_id=INSURANCE_ACCOUNT,
                asset=engine.asset,
                amount_atoms=fund,
                tx_id=TxId("demo-insurance-seed"),  # a transfer id seen before changes nothing
            )
            sequencer.apply([seed_fund])

        def submit(command: Command) -> list[Event]:
            return sequencer.apply_one(command)

        cast = self.cast.cast(engine)
        sim = SimDriver(
            cast,
            engine,
            seed=self.seed,
            submit=submit,
            clock=sequencer.stamp,
            start_ns=self.started_ns,
            accounts_by_name=by_name,
            top_up_below=REFILL_BELOW,
        )
        sim.open()
        self.sim = sim
        self.agent_accounts = sim.agent_accounts()
        self.reused_accounts = sim.reused_accounts
        for name, accounts in self.agent_accounts.items():
            for account_id in accounts:
                self.stats.names[account_id] = name
        self._status_due_ns = self.started_ns + STATUS_EVERY_NS
        self.trader_key = self._trader(sequencer, by_name)
        log.info(
            "demo: %d agents (%d accounts reused), %d sources; cancelled %d resting orders of a previous run",
            len(self.agent_accounts),
            self.reused_accounts,
            len(cast.sources),
            self.cancelled_orders,
        )

    def _cancel_stale_orders(self, sequencer: Sequencer) -> None:
        engine = sequencer.engine
        ts_ns = sequencer.stamp()
        cancels: list[Command] = []
        for account_id, account in engine.accounts.items():
            if not account.name.startswith(AGENT_PREFIX) or account.name == TRADER_NAME:
                continue
            for market, position in account.positions.items():
                if position.open_orders:
                    self.cancelled_orders += len(position.open_orders)
                    cancels.append(CancelAllOrders(ts_ns=ts_ns, account_id=account_id, market=market))
        if cancels:
            sequencer.apply(cancels)

    def _trader(self, sequencer: Sequencer, by_name: dict[str, AccountId]) -> ApiKey:
        trader = by_name.get(TRADER_NAME)
        if trader is None:
            engine = sequencer.engine
            created = sequencer.apply([CreateAccount(ts_ns=sequencer.stamp(), name=TRADER_NAME)])
            account = next(e for e in created[0].events if isinstance(e, AccountCreated))
            trader = account.account_id
            deposit = Deposit(
                ts_ns=sequencer.stamp(),
                account_id=trader,
                asset=engine.asset,
                amount_atoms=int(Decimal(TRADER_DEPOSIT) / engine.config.settlement.atom),
                tx_id=TxId(f"demo-seed-{TRADER_NAME}"),
            )
            sequencer.apply([deposit])
        keys = [key for key in self.ctx.keys.for_account(trader) if key.name == TRADER_NAME]
        return keys[0] if keys else self.ctx.keys.create(trader, TRADER_NAME, ("read", "trade"))

    # ------------------------------------------------------------------ driver protocol

    def due_ns(self) -> int:
        return min(self._sim().due_ns(), self._status_due_ns)

    def run(self, sequencer: Sequencer, wall_ns: int) -> None:
        """Apply every quote and turn due by ``wall_ns``, then log the status when it is due.

        Quotes due together go in as one batch; a turn applies the quotes before it first, so the
        agent acts on the index they made.
        """
        quotes: list[Command] = []
        for work in self._sim().due(wall_ns):
            if isinstance(work, SpotQuote):
                quotes.append(work.command)
                continue
            if quotes:
                batch, quotes = quotes, []
                sequencer.apply(batch)
            commands = work.commands()
            if commands:
                sequencer.apply(commands)
        if quotes:
            sequencer.apply(quotes)
        if self._status_due_ns <= wall_ns:
            following = self._status_due_ns + STATUS_EVERY_NS
            # keep the minute's phase; after a stall, restart it from now instead of catching up
            self._status_due_ns = following if following > wall_ns else wall_ns + STATUS_EVERY_NS
            self._status(sequencer.engine)

    def _sim(self) -> SimDriver:
        if self.sim is None:
            raise RuntimeError("the demo is not set up yet")
        return self.sim

    def _status(self, engine: Engine) -> None:
        prices = ", ".join(
            f"{market} {index * spec.tick_size}"
            for market, spec in engine.specs.items()
            if (index := engine.indexes.get(market)) is not None
        )
        log.info(
            "demo: %d trades, %d liquidations, %d funding settlements since start; index %s",
            self.stats.trades,
            self.stats.liquidations,
            self.stats.funding_settlements,
            prices or "not set",
        )

    # ------------------------------------------------------------------ announcement

    def trader_balance(self, engine: Engine) -> str:
        """The demo trader's wallet balance, e.g. ``"99871.2 USDT"`` (a query: in the sequencer's pipeline)."""
        key = self.trader_key
        if key is None:
            raise RuntimeError("the demo is not set up yet")
        account = engine.accounts[key.account_id]
        return f"{format_units(account.balance(engine.asset), engine.config.settlement.atom)} {engine.asset}"

    def snippet(self, rest_base: str, ws_base: str, balance: str) -> str:
        """The Python that connects an unmodified ccxt to this demo venue (``balance``: the trader's, now)."""
        key = self.trader_key
        if key is None:
            raise RuntimeError("the demo is not set up yet")
        return f'''
perpx demo: market makers, noise, momentum and leveraged traders and a funding arbitrageur are trading
BTCUSDT and ETHUSDT; index prices come from four simulated spot sources. Connect with ccxt
(pip install ccxt==4.5.90):

    from perpx.client import connect
    ex = connect("{rest_base}", "{key.api_key}", "{key.secret}")
    print(ex.fetch_ticker("BTC/USDT:USDT")["last"], ex.fetch_balance()["USDT"])
    # ccxt.pro (asyncio, WebSocket {ws_base}): perpx.client.connect_pro with the same arguments

(account {key.account_id}, balance {balance}; a run resumes from its data directory, keys included)
'''


class DemoComponent:
    """The demo as a context component: the announcement, and counts of what it saw."""

    def __init__(self, driver: DemoDriver) -> None:
        self.driver = driver

    def resume_seq(self) -> int | None:
        return None

    def on_applied(self, batch: list[Applied]) -> None:
        self.driver.stats.observe(batch)

    def close(self) -> None:
        return None

    def trader_balance(self, engine: Engine) -> str:
        return self.driver.trader_balance(engine)

    def snippet(self, rest_base: str, ws_base: str, balance: str) -> str:
        return self.driver.snippet(rest_base, ws_base, balance)


def attach_demo(ctx: ServerContext, seed: int, cast: DemoCast | None = None) -> DemoDriver:
    """Set the demo up on the (not yet started) sequencer and register it as a driver and component."""
    front = ctx.seq
    sequencer = front.core
    if sequencer.engine.now_ns == 0:
        sequencer.apply([AdvanceClock(ts_ns=front.wall_ns())])
    driver = DemoDriver(ctx, seed, cast)
    component = DemoComponent(driver)
    sequencer.add_listener(component.on_applied)
    driver.setup(sequencer)
    front.add_driver(driver)
    ctx.components.demo = component
    return driver
