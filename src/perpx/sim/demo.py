"""A short simulated trading session: market makers, noise takers, a drifting mark price.

Agents use only the public command interface with their own accounts, and
draw their randomness from one seeded ``random.Random`` here (outside the
engine), so the same seed always gives the same journal and state hash.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal

from perpx.engine import invariants
from perpx.engine.commands import (
    AdvanceClock,
    CancelAllOrders,
    Command,
    CreateAccount,
    Deposit,
    OrderType,
    PlaceOrder,
    SetLeverage,
    SetMarkPrice,
    SubmitSpotQuote,
    TimeInForce,
)
from perpx.engine.config import MarketSpec
from perpx.engine.events import AccountCreated, Event, OrderFilled, OrderRejected
from perpx.engine.state import state_hash
from perpx.engine.values import NS_PER_MS, AccountId, AssetId, MarketId, Side, TxId, to_units
from perpx.journal.store import Store
from perpx.sequencing import Sequencer

START_PRICES = {"BTCUSDT": "60000", "ETHUSDT": "3000"}


@dataclass
class SessionSummary:
    """What happened in a session, as plain numbers."""

    seed: int
    commands: int
    events: int
    trades: int
    rejections: int
    volume_atoms: int
    fees_atoms: int
    invariant_checks: int
    state_hash: str
    last_marks: dict[str, Decimal]


class DemoSession:
    """Drives a :class:`Store` with a few market makers and noise traders on every market."""

    def __init__(self, store: Store, seed: int, makers: int = 3, takers: int = 6) -> None:
        self.store = store
        self.sequencer = Sequencer(store=store)
        self.engine = store.engine
        self.rng = random.Random(seed)
        self.seed = seed
        self.now_ns = max(self.engine.now_ns, 1_767_225_600_000_000_000)
        self.makers: list[AccountId] = []
        self.takers: list[AccountId] = []
        self.n_makers = makers
        self.n_takers = takers
        self.commands = 0
        self.events = 0
        self.trades = 0
        self.rejections = 0
        self.volume_atoms = 0
        self.checks = 0
        self.mark_ticks: dict[MarketId, int] = {}

    def _submit(self, command: Command) -> list[Event]:
        events = self.sequencer.apply_one(command)
        self.commands += 1
        self.events += len(events)
        for event in events:
            if isinstance(event, OrderFilled) and not event.is_maker:
                self.trades += 1
                spec = self.engine.specs[event.market]
                self.volume_atoms += event.price_ticks * event.qty_lots * spec.contract_atoms
            elif isinstance(event, OrderRejected):
                self.rejections += 1
        return events

    def _ts(self) -> int:
        self.now_ns += self.rng.randint(1, 50) * NS_PER_MS
        return self.now_ns

    def setup(self) -> None:
        """Open and fund the agents' accounts and set opening marks."""
        asset = AssetId(self.engine.asset)
        atom = self.engine.config.settlement.atom
        for index in range(self.n_makers + self.n_takers):
            is_maker = index < self.n_makers
            name = f"{'maker' if is_maker else 'taker'}-{index}"
            created = self._submit(CreateAccount(ts_ns=self._ts(), name=name))[0]
            assert isinstance(created, AccountCreated)
            account_id = created.account_id
            (self.makers if is_maker else self.takers).append(account_id)
            amount = to_units("5000000" if is_maker else "200000", atom, "deposit")
            self._submit(
                Deposit(
                    ts_ns=self._ts(),
                    account_id=account_id,
                    asset=asset,
                    amount_atoms=amount,
                    tx_id=TxId(f"demo-{self.seed}-{account_id}"),
                )
            )
            for market in self.engine.specs:
                self._submit(SetLeverage(ts_ns=self._ts(), account_id=account_id, market=market, leverage=10))
        for market, spec in self.engine.specs.items():
            start = START_PRICES.get(market, "100")
            self.mark_ticks[market] = to_units(start, spec.tick_size, "price")
            self._set_mark(market)

    def _set_mark(self, market: MarketId) -> None:
        """Move the market's fair price: spot quotes for a priced market, a manual mark otherwise."""
        mark = self.mark_ticks[market]
        index = self.engine.specs[market].index
        if index is None:
            self._submit(SetMarkPrice(ts_ns=self._ts(), market=market, index_ticks=mark, mark_ticks=mark))
            return
        for source in index.weights:
            # each source quotes within a few ticks of the others, as real spot venues do
            quote = max(1, mark + self.rng.randint(-3, 3))
            self._submit(SubmitSpotQuote(ts_ns=self._ts(), market=market, source=source, price_ticks=quote))
        self._submit(AdvanceClock(ts_ns=self._ts()))
        # the makers quote around the venue's own mark once the pricing engine has one
        self.mark_ticks[market] = self.engine.marks.get(market, mark)

    def step(self) -> None:
        """One round: the mark drifts, makers requote, a few takers trade."""
        for market, spec in self.engine.specs.items():
            mark = self.mark_ticks[market]
            move = round(self.rng.gauss(0, 0.0008) * mark)
            self.mark_ticks[market] = max(spec.min_price_ticks, mark + move)
            self._set_mark(market)
            for maker in self.makers:
                self._quote(maker, market, spec)
            for taker in self.rng.sample(self.takers, k=2):
                self._take(taker, market, spec)

    def _quote(self, maker: AccountId, market: MarketId, spec: MarketSpec) -> None:
        self._submit(CancelAllOrders(ts_ns=self._ts(), account_id=maker, market=market))
        mark = self.mark_ticks[market]
        inventory = self.engine.accounts[maker].positions[market].qty_lots
        lot_notional = mark * spec.contract_atoms
        base_lots = max(spec.min_qty_lots, spec.min_notional_atoms // max(lot_notional, 1) + 1)
        skew = -inventory // 4
        for level in range(1, 4):
            offset = max(1, mark * level * 5 // 10_000)
            size = base_lots * self.rng.randint(1, 5)
            for side, price in ((Side.BUY, mark - offset), (Side.SELL, mark + offset)):
                qty = max(base_lots, size + (skew if side is Side.BUY else -skew))
                self._submit(
                    PlaceOrder(
                        ts_ns=self._ts(),
                        account_id=maker,
                        market=market,
                        side=side,
                        order_type=OrderType.LIMIT,
                        qty_lots=qty,
                        price_ticks=price,
                        tif=TimeInForce.GTC,
                    )
                )

    def _take(self, taker: AccountId, market: MarketId, spec: MarketSpec) -> None:
        mark = self.mark_ticks[market]
        position = self.engine.accounts[taker].positions.get(market)
        held = position.qty_lots if position is not None else 0
        lot_notional = mark * spec.contract_atoms
        base_lots = max(spec.min_qty_lots, spec.min_notional_atoms // max(lot_notional, 1) + 1)
        side = Side.BUY if self.rng.random() < 0.5 else Side.SELL
        reduce = held != 0 and self.rng.random() < 0.3
        if reduce:
            side = Side.SELL if held > 0 else Side.BUY
        self._submit(
            PlaceOrder(
                ts_ns=self._ts(),
                account_id=taker,
                market=market,
                side=side,
                order_type=OrderType.MARKET,
                qty_lots=base_lots * self.rng.randint(1, 8),
                reduce_only=reduce,
            )
        )

    def run(self, steps: int, check_every: int = 1) -> SessionSummary:
        """Set up, run ``steps`` rounds, checking invariants every ``check_every`` rounds."""
        self.setup()
        for index in range(steps):
            self.step()
            if check_every and index % check_every == 0:
                invariants.check(self.engine)
                self.checks += 1
        invariants.check(self.engine)
        self.checks += 1
        return SessionSummary(
            seed=self.seed,
            commands=self.commands,
            events=self.events,
            trades=self.trades,
            rejections=self.rejections,
            volume_atoms=self.volume_atoms,
            fees_atoms=self.engine.fees_atoms.get(self.engine.asset, 0),
            invariant_checks=self.checks,
            state_hash=state_hash(self.engine),
            last_marks={
                m: Decimal(t) * self.engine.specs[m].tick_size for m, t in sorted(self.mark_ticks.items())
            },
        )
