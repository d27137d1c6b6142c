"""The simulator's driving surface: a cast's agents and spot sources, run on the caller's clock.

Every caller that wants the risk lab's market on a venue drives it through a :class:`SimDriver`:
the simulator's runner (on a simulated clock, :mod:`perpx.sim.runner`) and the server's demo (on
wall time, through the sequencer, :mod:`perpx.server.demo`). A driver knows nothing of either:

::

    driver = SimDriver(cast, engine, seed=7, submit=submit, clock=stamp, start_ns=now_ns)
    driver.open()                          # agents open and fund their accounts, through submit
    while running:                         # whenever now_ns reaches driver.due_ns():
        for work in driver.due(now_ns):    # spot quotes and agent turns due by now_ns, in order
            apply(work.commands())         # apply them before asking for the next piece of work

Inputs
------
=============  ========================================================================================
input          what it is
=============  ========================================================================================
``cast``       the processes, sources and agents, in the scenario file's keys (:class:`~.cast.Cast`)
``engine``     the venue, read only: agents read books, prices and accounts from it
``seed``       every generator is derived from it (:mod:`perpx.sim.seeds`)
``submit``     sends one command and returns its events; the driver uses it for what it must see
               answered before it goes on: account openings, their set-up commands, top-ups
``clock``      the ``ts_ns`` to stamp the next command with; called once per quote and once per turn
``start_ns``   time zero of the price processes and of the first schedule
``now_ns``     (argument of :meth:`SimDriver.due`) the schedule's time: what is due, and the time
               price processes are read at (``now_ns - start_ns`` in seconds)
=============  ========================================================================================

The driver does no I/O, reads no clock and draws only from generators derived from ``seed``; what a
caller applies and when is the caller's. The same cast, seed, times and venue give the same
commands.

The schedule
------------
=======  ===============================================================================================
work     when
=======  ===============================================================================================
quote    each source every ``every_s``, from ``start_ns``; a quote made at ``t`` reaches the venue at
         ``t + latency_s`` (stamped when made, so a late quote is already old, as a slow feed is)
turn     each agent every ``interval_s``, from a phase in its first interval drawn from its own
         generator after its set-up
=======  ===============================================================================================

Work comes in schedule order: by due time, a time's quotes before its turns, then in the order it
was scheduled. A piece of work's next one is due one interval after it, or one interval after
``now_ns`` when the caller fell behind (a stalled clock restarts the phase instead of catching up).

Invariants: an agent's commands name only accounts it opened itself (:class:`AgentError`
otherwise); an :class:`AgentTurn` reads the venue when its :meth:`~AgentTurn.commands` is called,
so the caller applies everything yielded before it first.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal

from perpx.engine.commands import Command, Deposit, SubmitSpotQuote
from perpx.engine.engine import Engine
from perpx.engine.values import AccountId, MarketId, TxId
from perpx.sim.agents import Agent, AgentContext, AgentError, Submit, build_agents
from perpx.sim.cast import Cast
from perpx.sim.seeds import derive_rng
from perpx.sim.sources import NS_PER_S, PriceProcess, Source, build_process, parse_faults, price_to_ticks

Clock = Callable[[], int]
"""Returns the ``ts_ns`` to stamp the next command with (a simulated clock, or a sequencer's stamp)."""

NEVER_NS = 2**63 - 1
""":meth:`SimDriver.due_ns` when nothing is scheduled."""


@dataclass(frozen=True, slots=True)
class SpotQuote:
    """A spot quote reaching the venue now; ``faulty`` when an outlier fault of its source shaped it."""

    command: SubmitSpotQuote
    faulty: bool

    def commands(self) -> list[Command]:
        """The quote, as the one command to apply."""
        return [self.command]


class AgentTurn:
    """One agent's turn, made when asked: :meth:`commands` acts on the venue as it is at that call.

    A turn whose commands are never asked for is skipped. ``agent`` is the agent itself, for the
    simulator's own observers.
    """

    __slots__ = ("_act", "agent")

    def __init__(self, agent: Agent, act: Callable[[], list[Command]]) -> None:
        self.agent = agent
        self._act = act

    @property
    def name(self) -> str:
        return self.agent.name

    @property
    def accounts(self) -> tuple[AccountId, ...]:
        """The accounts the agent trades (those it opened)."""
        return tuple(self.agent.accounts)

    def commands(self) -> list[Command]:
        """Top the agent's accounts up (when the driver does), then the commands it sends now, in order.

        Raises
        ------
        AgentError
            If a command names an account the agent did not open.
        """
        return self._act()


class SimDriver:
    """A cast's spot sources and agents on a venue, on the caller's clock (see the module docstring).

    Parameters
    ----------
    cast
        The price processes, sources and agents.
    engine
        The venue, read only.
    seed
        Seed of every price process, source and agent.
    submit
        Applies one command and returns its events.
    clock
        The ``ts_ns`` of the next command.
    start_ns
        Time zero of the price processes and of the first schedule.
    accounts_by_name
        Accounts of an earlier run on this venue, by name: an agent opening an account of one of
        these names takes it over instead of creating another.
    top_up_below
        When set, a flat account of an agent whose wallet is below this share of the agent's
        ``deposit`` is topped back up to it, before each of its turns and when it is taken over.

    Raises
    ------
    AgentError
        If an agent table is unusable.
    SourceError
        If a price process or a source's faults are unusable.

    The simulator's own observers also read ``agents``, ``sources`` and ``contexts`` (an agent's
    :class:`~perpx.sim.agents.AgentContext` by name); other callers need only the methods.
    """

    def __init__(
        self,
        cast: Cast,
        engine: Engine,
        *,
        seed: int,
        submit: Submit,
        clock: Clock,
        start_ns: int,
        accounts_by_name: Mapping[str, AccountId] | None = None,
        top_up_below: Decimal | None = None,
    ) -> None:
        self.engine = engine
        self.seed = seed
        self.submit = submit
        self.clock = clock
        self.start_ns = start_ns
        self.top_up_below = top_up_below
        self._earlier_accounts = dict(accounts_by_name or {})
        processes: dict[str, PriceProcess] = {
            market: build_process(spec, derive_rng(seed, f"price/{market}"), cast.base_dir)
            for market, spec in cast.prices.items()
        }
        self.processes = processes
        """Each market's fair price process (a scripted path carries what the seed drew for it)."""
        self.sources: list[Source] = [
            Source(
                name=str(row["name"]),
                market=str(row["market"]),
                process=processes[str(row["market"])],
                rng=derive_rng(seed, f"source/{row['name']}/{row['market']}"),
                every_s=float(row.get("every_s", 1.0)),
                latency_s=float(row.get("latency_s", 0.0)),
                noise_bps=float(row.get("noise_bps", 0.0)),
                faults=parse_faults(row.get("faults", []), f"sources[{number}]"),
                controlled=bool(row.get("controlled", False)),
            )
            for number, row in enumerate(cast.sources)
        ]
        self.agents: list[Agent] = build_agents(cast.agents, cast.scale)
        self.contexts: dict[str, AgentContext] = {}
        self.fair_prices: dict[str, float] = {}
        """Each market's fair price when its sources last quoted (updated in place)."""
        self.faulty_quotes_made = 0
        """Quotes made while an outlier fault was active, delivered or not yet."""
        self.reused_accounts = 0
        """Accounts taken over from ``accounts_by_name``."""
        self.scheduled = 0
        """Pieces of work scheduled so far (quotes made and in flight, turns)."""
        self._quotes: list[tuple[int, int, Source | SpotQuote]] = []
        self._turns: list[tuple[int, int, Agent]] = []

    # ------------------------------------------------------------------ set-up

    def open(self) -> None:
        """Set every agent up through ``submit``, in cast order, and schedule the sources and turns.

        Each agent opens (or takes over) and funds its accounts, then its set-up commands are
        submitted one by one. Call it once, before asking for work.

        Raises
        ------
        AgentError
            If the venue refuses to open an account, or a set-up command names another's account.
        """
        for agent in self.agents:
            rng = derive_rng(self.seed, f"agent/{agent.name}")
            ctx = _ResumingContext(self, rng, self.clock())
            self.contexts[agent.name] = ctx
            for command in _own(agent, agent.setup(ctx)):
                self.submit(command)
            phase_ns = int(rng.random() * agent.interval_s * NS_PER_S) + 1
            self._schedule_turn(self.start_ns + phase_ns, agent)
        for source in self.sources:
            self._schedule_quote(self.start_ns, source)

    def agent_accounts(self) -> dict[str, tuple[AccountId, ...]]:
        """Every agent's accounts, by agent name, in cast order."""
        return {agent.name: tuple(agent.accounts) for agent in self.agents}

    # ------------------------------------------------------------------ the schedule

    def due_ns(self) -> int:
        """When the next piece of work is due (:data:`NEVER_NS` when none is scheduled)."""
        quote_ns = self._quotes[0][0] if self._quotes else NEVER_NS
        turn_ns = self._turns[0][0] if self._turns else NEVER_NS
        return min(quote_ns, turn_ns)

    def due(self, now_ns: int) -> Iterator[SpotQuote | AgentTurn]:
        """Every quote and turn due by ``now_ns``, in schedule order, made as of ``now_ns``."""
        quotes, turns = self._quotes, self._turns
        while True:
            quote_ns = quotes[0][0] if quotes else NEVER_NS
            turn_ns = turns[0][0] if turns else NEVER_NS
            if quote_ns <= now_ns and quote_ns <= turn_ns:
                quote = self._next_quote(now_ns)
                if quote is not None:
                    yield quote
            elif turn_ns <= now_ns:
                yield self._next_turn(now_ns)
            else:
                return

    def quotes_due(self, now_ns: int) -> Iterator[SpotQuote]:
        """Only the quotes due by ``now_ns`` (a caller with work of its own between quotes and turns)."""
        quotes = self._quotes
        while quotes and quotes[0][0] <= now_ns:
            quote = self._next_quote(now_ns)
            if quote is not None:
                yield quote

    def turns_due(self, now_ns: int) -> Iterator[AgentTurn]:
        """Only the agent turns due by ``now_ns``."""
        turns = self._turns
        while turns and turns[0][0] <= now_ns:
            yield self._next_turn(now_ns)

    def _next_quote(self, now_ns: int) -> SpotQuote | None:
        # one piece of quote work: a quote in flight arrives, or a source quotes (delivered now or later)
        due_ns, _, work = heapq.heappop(self._quotes)
        if isinstance(work, SpotQuote):
            return work
        source = work
        t_s = (now_ns - self.start_ns) / NS_PER_S
        price = source.quote(t_s)
        self.fair_prices[source.market] = source.process.price_at(t_s)
        self._schedule_quote(_following(due_ns, source.every_s, now_ns), source)
        if price is None:
            return None
        market = MarketId(source.market)
        ticks = price_to_ticks(price, self.engine.specs[market].tick_size)
        command = SubmitSpotQuote(ts_ns=self.clock(), market=market, source=source.name, price_ticks=ticks)
        quote = SpotQuote(command, faulty=source.outlier_factor(t_s) != 1.0)
        self.faulty_quotes_made += quote.faulty
        latency_ns = int(source.latency_s * NS_PER_S)
        if latency_ns <= 0:
            return quote
        self._schedule_quote(now_ns + latency_ns, quote)
        return None

    def _next_turn(self, now_ns: int) -> AgentTurn:
        # the next turn is scheduled first, so an agent that raises keeps its schedule
        due_ns, _, agent = heapq.heappop(self._turns)
        self._schedule_turn(_following(due_ns, agent.interval_s, now_ns), agent)
        return AgentTurn(agent, lambda: self._act(agent))

    def _act(self, agent: Agent) -> list[Command]:
        ctx = self.contexts[agent.name]
        ctx.now_ns = self.clock()
        if self.top_up_below is not None:
            deposit_atoms = ctx.atoms(agent.params["deposit"])
            for account_id in agent.accounts:
                top_up = self._top_up(account_id, deposit_atoms, ctx.now_ns)
                if top_up is not None:
                    self.submit(top_up)
        return _own(agent, agent.act(ctx, ctx.now_ns))

    def _take_over(self, account_id: AccountId, deposit_atoms: int, ts_ns: int) -> None:
        self.reused_accounts += 1
        top_up = self._top_up(account_id, deposit_atoms, ts_ns)
        if top_up is not None:
            self.submit(top_up)

    def _top_up(self, account_id: AccountId, deposit_atoms: int, ts_ns: int) -> Deposit | None:
        # None unless the driver tops up and the account is known, flat, and below the share
        account = self.engine.accounts.get(account_id)
        if account is None or self.top_up_below is None:
            return None
        balance = account.balance(self.engine.asset)
        flat = not any(p.qty_lots for p in account.positions.values())
        if not flat or balance >= deposit_atoms * self.top_up_below:
            return None
        return Deposit(
            ts_ns=ts_ns,
            account_id=account_id,
            asset=self.engine.asset,
            amount_atoms=deposit_atoms - balance,
            tx_id=TxId(f"top-up-{account_id}-{ts_ns}"),
        )

    def _schedule_quote(self, at_ns: int, work: Source | SpotQuote) -> None:
        self.scheduled += 1
        heapq.heappush(self._quotes, (at_ns, self.scheduled, work))

    def _schedule_turn(self, at_ns: int, agent: Agent) -> None:
        self.scheduled += 1
        heapq.heappush(self._turns, (at_ns, self.scheduled, agent))


class _ResumingContext(AgentContext):
    """An agent's context whose ``open_account`` takes over an account of the same name from an earlier run."""

    def __init__(self, driver: SimDriver, rng: random.Random, now_ns: int) -> None:
        super().__init__(driver.engine, driver.submit, rng, now_ns)
        self._driver = driver

    def open_account(self, name: str, deposit: object) -> AccountId:
        """The account named ``name`` from an earlier run (topped up when the driver does), else a new one."""
        found = self._driver._earlier_accounts.get(name)
        if found is None:
            return super().open_account(name, deposit)
        self._driver._take_over(found, self.atoms(deposit), self.now_ns)
        return found


def _own(agent: Agent, commands: list[Command]) -> list[Command]:
    """``commands``, once every account they name is one of ``agent``'s own."""
    for command in commands:
        account = getattr(command, "account_id", None)
        if account is not None and account not in agent.accounts:
            raise AgentError(
                f"agent {agent.name!r} sent {type(command).__name__} for account {account},"
                f" which is not one of its own ({agent.accounts})"
            )
    return commands


def _following(due_ns: int, every_s: float, now_ns: int) -> int:
    """The next due time: one interval after ``due_ns``, or after ``now_ns`` when that has passed."""
    step = int(every_s * NS_PER_S)
    following = due_ns + step
    return following if following > now_ns else now_ns + step


__all__ = ["NEVER_NS", "AgentTurn", "Cast", "Clock", "SimDriver", "SpotQuote", "Submit"]
