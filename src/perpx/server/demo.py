"""``perpx serve --demo``: simulated spot sources, market makers and noise traders inside the server.

The demo runs as a sequencer driver: on its own schedule, on the sequencer
thread, it submits ordinary journaled commands (spot quotes for the index,
orders from its own accounts), exactly what an outside client could send. Its
randomness comes from one seeded generator, and its accounts are found again
by name after a restart, so a demo venue can be stopped and resumed.

It also creates one trader account with an API key (found again by name after
a restart) and prints the ccxt snippet that connects to it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal

from perpx.engine.commands import (
    CancelAllOrders,
    Command,
    CreateAccount,
    Deposit,
    OrderType,
    PlaceOrder,
    SetLeverage,
    SubmitSpotQuote,
    TimeInForce,
)
from perpx.engine.config import MarketSpec
from perpx.engine.engine import Engine
from perpx.engine.values import NS_PER_MS, AccountId, MarketId, Side, TxId, to_units
from perpx.server.context import ServerContext
from perpx.server.keys import ApiKey
from perpx.server.sequencer import Sequencer

START_PRICES = {"BTCUSDT": Decimal("60000"), "ETHUSDT": Decimal("3000")}
TRADER_NAME = "demo-trader"
TRADER_DEPOSIT = "100000"
AGENT_DEPOSIT = "5000000"


@dataclass
class DemoAgents:
    """Spot sources, makers and takers; ``run`` is called by the sequencer when ``due_ns`` passes."""

    ctx: ServerContext
    seed: int
    interval_ms: int = 250
    makers: dict[MarketId, list[AccountId]] = field(default_factory=dict)
    takers: list[AccountId] = field(default_factory=list)
    fair: dict[MarketId, Decimal] = field(default_factory=dict)
    trader_key: ApiKey | None = None
    _next_ns: int = 0
    _round: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    # ------------------------------------------------------------------ driver protocol

    def due_ns(self) -> int:
        return self._next_ns

    def run(self, sequencer: Sequencer, wall_ns: int) -> None:
        self._next_ns = wall_ns + self.interval_ms * NS_PER_MS
        self._round += 1
        engine = sequencer.engine
        commands: list[Command] = []
        for market, spec in engine.specs.items():
            commands.extend(self._quotes(sequencer, engine, market, spec))
        sequencer.apply_now(commands)
        commands = []
        for market, spec in engine.specs.items():
            commands.extend(self._make(sequencer, engine, market, spec))
            commands.extend(self._take(sequencer, market, spec))
        if commands:
            sequencer.apply_now(commands)

    # ------------------------------------------------------------------ setup

    def setup(self, sequencer: Sequencer) -> None:
        """Create (or find again by name) the agents' accounts and the demo trader's key."""
        engine = sequencer.engine
        asset = engine.asset
        atom = engine.config.settlement.atom
        by_name = {account.name: account_id for account_id, account in engine.accounts.items()}

        def account(name: str, deposit: str) -> AccountId:
            if name in by_name:
                return by_name[name]
            applied = sequencer.apply_now([CreateAccount(ts_ns=sequencer.stamp(), name=name)])
            account_id = AccountId(applied[0].events[0].account_id)  # type: ignore[attr-defined]
            sequencer.apply_now(
                [
                    Deposit(
                        ts_ns=sequencer.stamp(),
                        account_id=account_id,
                        asset=asset,
                        amount_atoms=to_units(deposit, atom, "deposit"),
                        tx_id=TxId(f"demo-seed-{name}"),
                    )
                ]
            )
            by_name[name] = account_id
            return account_id

        for market in engine.specs:
            self.makers[market] = [account(f"demo-mm-{market}-{i}", AGENT_DEPOSIT) for i in range(2)]
            mid = engine.marks.get(market)
            spec = engine.specs[market]
            self.fair[market] = (
                Decimal(mid) * spec.tick_size if mid else START_PRICES.get(market, Decimal("100"))
            )
        self.takers = [account(f"demo-taker-{i}", AGENT_DEPOSIT) for i in range(4)]
        for taker in self.takers:
            sequencer.apply_now(
                [
                    SetLeverage(ts_ns=sequencer.stamp(), account_id=taker, market=market, leverage=5)
                    for market in engine.specs
                ]
            )
        trader = account(TRADER_NAME, TRADER_DEPOSIT)
        keys = [key for key in self.ctx.keys.for_account(trader) if key.name == TRADER_NAME]
        self.trader_key = keys[0] if keys else self.ctx.keys.create(trader, TRADER_NAME, ("read", "trade"))

    # ------------------------------------------------------------------ behaviour

    def _quotes(
        self, sequencer: Sequencer, engine: Engine, market: MarketId, spec: MarketSpec
    ) -> list[Command]:
        """Each spot source quotes the fair price with its own small noise; the fair price walks."""
        fair = self.fair[market]
        fair *= Decimal(1 + self.rng.gauss(0, 0.0004))
        self.fair[market] = fair
        if spec.index is None:
            return []
        out: list[Command] = []
        for source in spec.index.weights:
            noisy = fair * Decimal(1 + self.rng.gauss(0, 0.0001))
            ticks = int((noisy / spec.tick_size).to_integral_value())
            out.append(
                SubmitSpotQuote(ts_ns=sequencer.stamp(), market=market, source=source, price_ticks=ticks)
            )
        return out

    def _make(
        self, sequencer: Sequencer, engine: Engine, market: MarketId, spec: MarketSpec
    ) -> list[Command]:
        """Makers requote five levels a side around the mark every few rounds."""
        if self._round % 4 != 1:
            return []
        mark = engine.marks.get(market)
        if mark is None:
            return []
        out: list[Command] = []
        notional = Decimal(3000)
        for i, maker in enumerate(self.makers[market]):
            out.append(CancelAllOrders(ts_ns=sequencer.stamp(), account_id=maker, market=market))
            for level in range(1, 6):
                offset = max(1, int(mark * (0.0002 * level + 0.0001 * i)))
                size = max(
                    spec.min_qty_lots,
                    int(notional * level / (Decimal(mark) * spec.tick_size) / spec.lot_size),
                )
                for side, price in ((Side.BUY, mark - offset), (Side.SELL, mark + offset)):
                    out.append(
                        PlaceOrder(
                            ts_ns=sequencer.stamp(),
                            account_id=maker,
                            market=market,
                            side=side,
                            order_type=OrderType.LIMIT,
                            qty_lots=size,
                            price_ticks=price,
                            tif=TimeInForce.GTC,
                        )
                    )
        return out

    def _take(self, sequencer: Sequencer, market: MarketId, spec: MarketSpec) -> list[Command]:
        """A noise trader sends a small market order now and then (reduce-only when it gets large)."""
        if self.rng.random() > 0.35:
            return []
        taker = self.rng.choice(self.takers)
        position = sequencer.engine.position(taker, market).qty_lots
        side = Side.BUY if self.rng.random() < 0.5 else Side.SELL
        mark = sequencer.engine.marks.get(market)
        if mark is None:
            return []
        lots = max(
            spec.min_qty_lots,
            int(Decimal(self.rng.uniform(150, 1500)) / (Decimal(mark) * spec.tick_size) / spec.lot_size),
        )
        reduce_only = abs(position) * Decimal(mark) * spec.tick_size * spec.lot_size > 50_000
        if reduce_only:
            side = Side.SELL if position > 0 else Side.BUY
        return [
            PlaceOrder(
                ts_ns=sequencer.stamp(),
                account_id=taker,
                market=market,
                side=side,
                order_type=OrderType.MARKET,
                qty_lots=lots,
                reduce_only=reduce_only,
            )
        ]

    # ------------------------------------------------------------------ announcement

    def snippet(self, rest_base: str, ws_base: str) -> str:
        """The Python that connects an unmodified ccxt to this demo venue."""
        key = self.trader_key
        assert key is not None
        return f'''
perpx demo: market makers and noise traders are trading BTCUSDT and ETHUSDT; index prices come from
four simulated spot sources. Connect with ccxt (pip install ccxt==4.5.90):

    import ccxt
    ex = ccxt.binanceusdm({{"apiKey": "{key.api_key}", "secret": "{key.secret}",
                           "options": {{"fetchCurrencies": False, "fetchOpenOrders": {{"warnWithoutSymbol": False}}}}}})
    base = "{rest_base}"
    ex.urls["api"] = {{k: base + p for k, p in [("fapiPublic", "/fapi/v1"), ("fapiPublicV2", "/fapi/v2"),
        ("fapiPublicV3", "/fapi/v3"), ("fapiPrivate", "/fapi/v1"), ("fapiPrivateV2", "/fapi/v2"),
        ("fapiPrivateV3", "/fapi/v3"), ("fapiData", "/futures/data")]}}
    ex.exceptions["exact"] = {{**ex.exceptions["exact"], **ex.exceptions["linear"]["exact"]}}
    print(ex.fetch_ticker("BTC/USDT:USDT")["last"], ex.fetch_balance()["USDT"])
    # ccxt.pro: ex.urls["api"]["ws"] = {{"linear": "{ws_base}"}}

(account {key.account_id}, {TRADER_DEPOSIT} USDT; keys are kept in the data directory)
'''


def attach_demo(ctx: ServerContext, seed: int) -> DemoAgents:
    """Set the demo up on the (not yet started) sequencer and register it as a driver."""
    demo = DemoAgents(ctx, seed)
    sequencer = ctx.seq
    if sequencer.engine.now_ns == 0:
        from perpx.engine.commands import AdvanceClock

        sequencer.apply_now([AdvanceClock(ts_ns=sequencer.wall_ns())])
    demo.setup(sequencer)
    sequencer.add_driver(demo)
    ctx.components["demo"] = _DemoComponent(demo)
    return demo


class _DemoComponent:
    """The demo as a context component (for the announcement); it reads no events."""

    def __init__(self, demo: DemoAgents) -> None:
        self.demo = demo

    def resume_seq(self) -> int | None:
        return None

    def on_applied(self, batch: object) -> None:
        return None

    def close(self) -> None:
        return None

    def snippet(self, rest_base: str, ws_base: str) -> str:
        return self.demo.snippet(rest_base, ws_base)
