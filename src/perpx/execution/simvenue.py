"""What every execution backtest shares: a funded account on a scenario's market, quotes, and TCA.

Both backtests (one parent, :mod:`perpx.execution.backtest`; a strategy document,
:mod:`perpx.execution.flows.backtest`) run a risk-lab scenario's simulation on its simulated clock,
open and fund an ``algo`` account, let the market run before trading, sample the top of book at
every wake-up, and benchmark fills against the arrival price over the market's tape. This module is
that part, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from perpx.engine.commands import CreateAccount, Deposit
from perpx.engine.events import AccountCreated
from perpx.engine.values import AccountId, TxId
from perpx.execution.inprocess import EngineVenue
from perpx.execution.model import ParentSide
from perpx.execution.venue import Fill, MarketFilters, PublicTrade
from perpx.sim.runner.simulation import START_NS, Simulation
from perpx.sim.scenario import Scenario
from perpx.tca.analysis import Analysis, analyse
from perpx.tca.inputs import Fill as TcaFill
from perpx.tca.inputs import ParentOrder as TcaOrder
from perpx.tca.inputs import Quote, Trade
from perpx.tca.inputs import Side as TcaSide

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000


@dataclass
class SimMarket:
    """A started simulation with a funded account trading on it through :class:`EngineVenue`."""

    sim: Simulation
    venue: EngineVenue
    end_of_run_ns: int
    """When the scenario's duration is over."""

    @classmethod
    def open(cls, scenario: Scenario, seed: int | None, deposit: str, tx_id: str) -> SimMarket:
        """Set the scenario up (seed ``None``: the scenario's own) and fund an ``algo`` account."""
        sim = Simulation(scenario, scenario.default_seed if seed is None else seed)
        sim.setup()
        venue = EngineVenue(sim.sequencer, open_account(sim, deposit, tx_id), lambda: sim.now_ns)
        return cls(sim, venue, START_NS + sim.duration_ns)

    def advance_to(self, target_ns: int) -> None:
        """Run the market up to ``target_ns`` and put the clock there (never back)."""
        self.sim.advance_to(target_ns)
        self.sim.now_ns = max(self.sim.now_ns, target_ns)

    @property
    def now_ns(self) -> int:
        return self.sim.now_ns


def open_account(sim: Simulation, deposit: str, tx_id: str) -> AccountId:
    """Create the ``algo`` account and deposit ``deposit`` of the settlement asset."""
    events = sim.submit(CreateAccount(ts_ns=sim.now_ns, name="algo"))
    created = next(e for e in events if isinstance(e, AccountCreated))
    atom = sim.engine.config.settlement.atom
    sim.submit(
        Deposit(
            ts_ns=sim.now_ns,
            account_id=created.account_id,
            asset=sim.engine.asset,
            amount_atoms=int(Decimal(deposit) / atom),
            tx_id=TxId(tx_id),
        )
    )
    return created.account_id


def sample_quote(venue: EngineVenue, market: str, quotes: list[Quote]) -> None:
    """Append the top of ``market``'s book now, when both sides have one."""
    bid, ask = venue.book(market, 1).touch_pair()
    if bid is not None and ask is not None:
        tick = venue.filters(market).tick_size
        quotes.append(Quote(venue.now_ns() // NS_PER_MS, bid * tick, ask * tick))


def fills_tca(
    filters: MarketFilters,
    side: ParentSide,
    qty_lots: int,
    arrival: Decimal,
    window_ns: tuple[int, int],
    fills: list[Fill],
    tape: list[PublicTrade],
    quotes: list[Quote],
) -> Analysis:
    """TCA of ``fills`` for an order of ``qty_lots`` decided and arriving at ``arrival`` (a price),
    over ``window_ns`` (start, end), against ``tape`` (our own trades marked by trade id) and ``quotes``."""
    f = filters
    own = {fill.trade_id for fill in fills}
    start_ns, end_ns = window_ns
    order = TcaOrder(
        side=TcaSide.BUY if side is ParentSide.BUY else TcaSide.SELL,
        qty=qty_lots * f.lot_size,
        decision_price=arrival,
        arrival_price=arrival,
        start_ms=start_ns // NS_PER_MS,
        end_ms=end_ns // NS_PER_MS,
    )
    return analyse(
        order,
        [
            TcaFill(
                fill.ts_ns // NS_PER_MS,
                fill.price_ticks * f.tick_size,
                fill.qty_lots * f.lot_size,
                fill.fee,
                fill.is_maker,
                int(fill.trade_id),
            )
            for fill in fills
        ],
        [
            Trade(
                t.ts_ns // NS_PER_MS,
                t.price_ticks * f.tick_size,
                t.qty_lots * f.lot_size,
                int(t.trade_id),
                t.trade_id in own,
            )
            for t in tape
        ],
        quotes,
    )
