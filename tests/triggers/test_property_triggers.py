"""Property: the sorted trigger index fires exactly what a scan-everything model fires, in order.

Two engines get the same random commands (conditional orders of every type, cancels, mark moves,
trades, market orders that sweep the book, liquidity, market modes): one with the real
:class:`~perpx.engine.triggers.TriggerIndex`, one with :class:`~tests.triggers.naive.NaiveIndex`.
After every command both must return the same events (so the same triggers, children, fills and
rejections, in the same order) and hold every invariant. Now and then the real engine is replaced
by its own snapshot, restored: it must carry on exactly as before.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perpx.engine import invariants
from perpx.engine.commands import (
    CancelAllConditionalOrders,
    CancelAllOrders,
    CancelConditionalOrder,
    Command,
    ConditionalType,
    CreateAccount,
    Deposit,
    MarketMode,
    OrderType,
    PlaceConditionalOrder,
    PlaceOrder,
    SetMarketMode,
    SetMarkPrice,
    StpMode,
    TimeInForce,
    WorkingType,
)
from perpx.engine.engine import Engine
from perpx.engine.events import ConditionalOrderTriggered, Event
from perpx.engine.state import encode_snapshot, restore, state_hash
from perpx.engine.values import AccountId, AlgoId, AssetId, ClientAlgoId, MarketId, Side, TxId
from tests.engine.helpers import BTC, USDT, config_with

from .naive import naive_engine

T = TypeVar("T")
MARKET = MarketId(BTC)
CONFIG = config_with({"trigger_protect": "0.01", "max_algo_orders": 12})
MM, TK, TRADERS = AccountId(1), AccountId(2), (AccountId(3), AccountId(4), AccountId(5))
TYPES = list(ConditionalType)


class Draw:
    """Where the random choices come from: Hypothesis (shrinks) or a seeded ``random.Random`` (long runs)."""

    def __init__(self, integer: Callable[[int, int], int]) -> None:
        self.integer = integer

    def choice(self, options: Sequence[T]) -> T:
        return options[self.integer(0, len(options) - 1)]

    def chance(self, percent: int) -> bool:
        return self.integer(0, 99) < percent


@dataclass
class Pair:
    """The real engine and the naive one, fed the same commands."""

    real: Engine = field(default_factory=lambda: Engine(CONFIG))
    naive: Engine = field(default_factory=lambda: naive_engine(CONFIG))
    now: int = 1_767_225_600_000_000_000
    fired: int = 0
    cascades: int = 0
    restores: int = 0

    def apply(self, command: Command) -> list[Event]:
        real = self.real.apply(command)
        naive = self.naive.apply(command)
        assert real == naive, (command, real, naive)
        invariants.check(self.real)
        invariants.check(self.naive)
        count = sum(isinstance(e, ConditionalOrderTriggered) for e in real)
        self.fired += count
        self.cascades += count > 1
        return real

    def ts(self) -> int:
        self.now += 1_000_000
        return self.now

    def restore_real(self) -> None:
        before = state_hash(self.real)
        self.real = restore(CONFIG, msgspec.json.decode(encode_snapshot(self.real)))
        assert state_hash(self.real) == before
        self.restores += 1

    @property
    def mark(self) -> int:
        return self.real.marks[MARKET]

    @property
    def last(self) -> int:
        return self.real.last_trade_ticks.get(MARKET, self.mark)


def limit(pair: Pair, account: AccountId, side: Side, lots: int, price: int, tif: TimeInForce) -> Command:
    return PlaceOrder(
        ts_ns=pair.ts(),
        account_id=account,
        market=MARKET,
        side=side,
        order_type=OrderType.LIMIT,
        qty_lots=lots,
        price_ticks=price,
        tif=tif,
    )


def setup(pair: Pair) -> None:
    for name in ("mm", "tk", "a", "b", "c"):
        pair.apply(CreateAccount(ts_ns=pair.ts(), name=name))
    for account in (MM, TK, *TRADERS):
        pair.apply(
            Deposit(
                ts_ns=pair.ts(),
                account_id=account,
                asset=AssetId("USDT"),
                amount_atoms=10_000_000 * USDT,
                tx_id=TxId(f"d{account}"),
            )
        )
    pair.apply(SetMarkPrice(ts_ns=pair.ts(), market=MARKET, index_ticks=300_000, mark_ticks=300_000))
    liquidity(pair)
    trade(pair, 300_000)


def liquidity(pair: Pair) -> None:
    """A fresh ladder of ``mm`` quotes around the mark (its old quotes canceled first)."""
    pair.apply(CancelAllOrders(ts_ns=pair.ts(), account_id=MM, market=MARKET))
    for k in range(1, 5):
        pair.apply(limit(pair, MM, Side.BUY, 20, pair.mark - 700 * k, TimeInForce.GTC))
        pair.apply(limit(pair, MM, Side.SELL, 20, pair.mark + 700 * k, TimeInForce.GTC))


def trade(pair: Pair, price: int) -> None:
    """``mm`` rests 0.005 at ``price``, ``tk`` takes it: the last price moves (if the book lets it)."""
    low, high = pair.mark * 951 // 1000 + 1, pair.mark * 1049 // 1000
    price = min(max(price, low), high)
    maker = Side.SELL if price >= pair.last else Side.BUY
    pair.apply(limit(pair, MM, maker, 5, price, TimeInForce.GTC))
    pair.apply(limit(pair, TK, maker.opposite, 5, price, TimeInForce.IOC))


def conditional(pair: Pair, draw: Draw) -> None:
    order_type = draw.choice(TYPES)
    side = draw.choice((Side.BUY, Side.SELL))
    working = draw.choice((WorkingType.MARK_PRICE, WorkingType.CONTRACT_PRICE))
    reference = pair.mark if working is WorkingType.MARK_PRICE else pair.last
    trailing = order_type is ConditionalType.TRAILING_STOP_MARKET
    is_limit = order_type in (ConditionalType.STOP, ConditionalType.TAKE_PROFIT)
    close = not is_limit and not trailing and draw.chance(15)
    trigger = None if trailing else reference + draw.integer(-4000, 4000)
    activation = reference + draw.integer(-3000, 3000) if trailing and draw.chance(50) else None
    price = None
    if is_limit:
        assert trigger is not None
        price = trigger + int(side) * draw.integer(-200, 600)
    pair.apply(
        PlaceConditionalOrder(
            ts_ns=pair.ts(),
            account_id=draw.choice(TRADERS),
            market=MARKET,
            side=side,
            order_type=order_type,
            qty_lots=None if close else draw.integer(5, 60),
            trigger_price_ticks=trigger,
            price_ticks=price,
            tif=draw.choice((TimeInForce.GTC, TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK))
            if is_limit
            else TimeInForce.GTC,
            working_type=working,
            reduce_only=not close and draw.chance(15),
            close_position=close,
            price_protect=draw.chance(30),
            activation_price_ticks=activation,
            callback_rate_e8=draw.choice((100_000, 300_000, 1_000_000)) if trailing else None,
            client_algo_id=draw.choice((None, None, ClientAlgoId("x"), ClientAlgoId("y"))),
            stp=draw.choice((StpMode.NONE, StpMode.EXPIRE_TAKER)),
        )
    )


ACTIONS = (
    ("cond",) * 6 + ("to_level",) * 3 + ("mark",) * 4 + ("trade",) * 4 + ("market",) * 2 + ("liquidity",) * 2
    + ("cancel", "cancel_all", "mode", "restore")
)  # fmt: skip


def to_level(pair: Pair, draw: Draw) -> None:
    """Move an open order's own price to its level (or trailing extreme), or a tick either side."""
    orders = pair.real.triggers.orders
    if not orders:
        return
    order = orders[draw.choice(sorted(orders))]
    if order.activated:  # an active trailing stop: its trigger level, or its extreme
        level = order.trailing_level() if draw.chance(50) else order.extreme_ticks
    else:
        level = order.pending_level()[0]
    price = level + draw.integer(-1, 1)
    if order.working_type is WorkingType.MARK_PRICE:
        pair.apply(SetMarkPrice(ts_ns=pair.ts(), market=MARKET, index_ticks=price, mark_ticks=price))
    else:
        trade(pair, price)


def step(pair: Pair, draw: Draw) -> None:
    action = draw.choice(ACTIONS)
    if action == "cond":
        conditional(pair, draw)
    elif action == "to_level":
        to_level(pair, draw)
    elif action == "mark":
        mark = min(max(pair.mark + draw.integer(-3000, 3000), 270_000), 330_000)
        pair.apply(SetMarkPrice(ts_ns=pair.ts(), market=MARKET, index_ticks=mark, mark_ticks=mark))
    elif action == "trade":
        trade(pair, pair.last + draw.integer(-3000, 3000))
    elif action == "market":
        pair.apply(
            PlaceOrder(
                ts_ns=pair.ts(),
                account_id=draw.choice(TRADERS),
                market=MARKET,
                side=draw.choice((Side.BUY, Side.SELL)),
                order_type=OrderType.MARKET,
                qty_lots=draw.integer(5, 60),
            )
        )
    elif action == "cancel":
        account = draw.choice(TRADERS)
        if draw.chance(50):
            command = CancelConditionalOrder(
                ts_ns=pair.ts(),
                account_id=account,
                market=MARKET,
                algo_id=AlgoId(draw.integer(1, pair.real.triggers.next_algo_id)),
            )
        else:
            command = CancelConditionalOrder(
                ts_ns=pair.ts(),
                account_id=account,
                market=MARKET,
                client_algo_id=draw.choice((ClientAlgoId("x"), ClientAlgoId("y"))),
            )
        pair.apply(command)
    elif action == "cancel_all":
        pair.apply(
            CancelAllConditionalOrders(ts_ns=pair.ts(), account_id=draw.choice(TRADERS), market=MARKET)
        )
    elif action == "liquidity":
        liquidity(pair)
    elif action == "mode":  # one step in a reduce-only or halted market, then back to normal
        mode = draw.choice((MarketMode.REDUCE_ONLY, MarketMode.HALTED))
        pair.apply(SetMarketMode(ts_ns=pair.ts(), market=MARKET, mode=mode))
        step(pair, draw)
        pair.apply(SetMarketMode(ts_ns=pair.ts(), market=MARKET, mode=MarketMode.NORMAL))
    else:
        pair.restore_real()


@settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_sorted_index_fires_exactly_what_the_naive_scan_fires(data: st.DataObject) -> None:
    draw = Draw(lambda lo, hi: data.draw(st.integers(lo, hi)))
    pair = Pair()
    setup(pair)
    for _ in range(40):
        step(pair, draw)
    assert state_hash(pair.real) == state_hash(pair.naive)


def test_a_long_seeded_run_with_many_triggers_and_cascades() -> None:
    rng = random.Random(20260101)
    pair = Pair()
    setup(pair)
    for _ in range(1500):
        step(pair, Draw(rng.randint))
    assert state_hash(pair.real) == state_hash(pair.naive)
    # the run exercised what it claims to: many triggers, cascades, restores
    assert pair.fired > 80, pair.fired
    assert pair.cascades > 10, pair.cascades
    assert pair.restores > 40, pair.restores
