"""Property tests: the real engine against a naive reference model, command by command.

:class:`BookMachine` places, cancels and amends random orders on a book-only
venue (money can never refuse there, see :func:`~tests.engine.differential.book_config`)
and after every command asserts that the engine and
:class:`~tests.engine.reference_book.ReferenceBook` produced the same outcomes
(acceptances with the same order ids, fills with the same trade id, price,
quantity, taker and maker ids, the same rejections, expirations, cancels and
amends, in the same order), then the same L3 book (order ids per level in
queue order, with their remaining quantity) and the same positions, and that
:func:`perpx.engine.invariants.check` holds.

:class:`MarginMachine` trades on the demo venue with small deposits, moving
marks, leverage, margin modes, isolated margin, transfers and reduce-only
orders; after every step it checks the engine's invariants, that no fill of a
reduce-only order ever grows or flips its position, and that a refused command
left the state hash unchanged.

At teardown both machines snapshot and restore the engine (same state hash),
then send the original and the restored engine the same sweep of the books and
require the same events, and replay the journal into a fresh engine (same hash).

Both machines run derandomized, so the suite is deterministic.
"""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from perpx.engine import invariants
from perpx.engine.commands import (
    AdjustIsolatedMargin,
    AmendOrder,
    CancelAllOrders,
    CancelOrder,
    Command,
    CreateAccount,
    Deposit,
    MarginMode,
    OrderType,
    PlaceOrder,
    SetLeverage,
    SetMarginMode,
    SetMarkPrice,
    StpMode,
    TimeInForce,
    Withdraw,
)
from perpx.engine.config import VenueConfig, default_config
from perpx.engine.engine import Engine
from perpx.engine.events import (
    CommandRejected,
    Event,
    InsuranceFundChanged,
    LiquidationExplained,
    OrderAccepted,
    OrderFilled,
    OrderRejected,
    TransferRejected,
)
from perpx.engine.state import restore, snapshot, state_hash
from perpx.engine.values import AccountId, AssetId, MarketId, OrderId, Side, TxId
from perpx.testkit import Venue
from tests.engine import reference_book as ref
from tests.engine.differential import Differential, book_config
from tests.engine.reference_book import Outcome, RefOrder

USDT = 10**8
"""Atoms per USDT."""
MARK = 1000
ACCOUNTS = 3
CLIENT_IDS = ("c1", "c2")

SIDES = st.sampled_from([ref.BUY, ref.SELL])
ORDER_TYPES = st.sampled_from([ref.LIMIT] * 5 + [ref.MARKET])
TIFS = st.sampled_from([ref.GTC, ref.GTC, ref.IOC, ref.FOK, ref.GTX])
STPS = st.sampled_from([ref.STP_NONE, ref.STP_NONE, ref.EXPIRE_TAKER, ref.EXPIRE_MAKER, ref.EXPIRE_BOTH])
PRICES = st.integers(MARK - 8, MARK + 8)
QTYS = st.integers(1, 12)
REDUCE_ONLY = st.sampled_from([False, False, False, True])
MAYBE_CLIENT_ID = st.sampled_from([None, None, None, *CLIENT_IDS])

SETTINGS = settings(
    max_examples=600,
    stateful_step_count=40,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def assert_same(what: str, got: object, want: object) -> None:
    assert got == want, f"{what}\n  engine: {got}\n  model:  {want}"


def assert_snapshot_round_trip(config: VenueConfig, venue: Venue) -> None:
    """Snapshot, restore, compare hashes; then both engines must answer the same commands identically.

    The follow-up commands sweep every book from both sides with MARKET
    orders of a fresh, rich account, so the restored queues, indexes and
    reduce-only orders are exercised, not just hashed. Finally the venue's
    journal, replayed into a new engine, must reach the same state.
    """
    engine = venue.engine
    restored = restore(config, snapshot(engine))
    assert state_hash(restored) == state_hash(engine)
    invariants.check(restored)
    ts = venue.tick()
    sweeper = AccountId(engine.next_account_id)
    commands: list[Command] = [
        CreateAccount(ts_ns=ts, name="sweeper"),
        Deposit(
            ts_ns=ts,
            account_id=sweeper,
            asset=config.settlement_asset,
            amount_atoms=10**9 * USDT,
            tx_id=TxId("sweeper-deposit"),
        ),
    ]
    for market, spec in sorted(config.markets.items()):
        for side in (Side.BUY, Side.SELL):
            depth = sum(lots for _, lots in engine.books[market].opposite(side).depth())
            if market not in engine.marks or depth == 0:
                continue
            commands.append(
                PlaceOrder(
                    ts_ns=ts,
                    account_id=sweeper,
                    market=market,
                    side=side,
                    order_type=OrderType.MARKET,
                    qty_lots=min(depth, spec.market_max_qty_lots),
                    tif=TimeInForce.IOC,
                )
            )
    for command in commands:
        assert restored.apply(command) == engine.apply(command), command
    assert state_hash(restored) == state_hash(engine)
    invariants.check(engine)
    replayed = Engine(config)
    for command in [*venue.journal, *commands]:
        replayed.apply(command)
    assert state_hash(replayed) == state_hash(engine)


# =============================================================================== book vs model


class BookMachine(RuleBasedStateMachine):
    """Random order flow on the engine and the reference model; everything observable must agree."""

    def __init__(self) -> None:
        super().__init__()
        self.diff = Differential(ACCOUNTS, MARK)

    def _check(self, what: str, result: tuple[list[Outcome], list[Outcome]]) -> None:
        got, want = result
        assert_same(what, got, want)

    def _account(self, index: int) -> AccountId:
        return self.diff.accounts[index]

    def _resting(self) -> list[RefOrder]:
        return sorted(self.diff.model.resting(), key=lambda o: o.order_id)

    def _place(
        self,
        who: int,
        side: int,
        order_type: str,
        qty: int,
        price: int,
        tif: str,
        stp: str,
        reduce_only: bool,
        client_id: str | None,
    ) -> None:
        limit = price if order_type == ref.LIMIT else None
        self._check(
            f"place {who} {side} {order_type} {qty}@{limit} {tif} {stp} ro={reduce_only} cid={client_id}",
            self.diff.place(
                self._account(who), side, order_type, qty, limit, tif, stp, reduce_only, client_id
            ),
        )

    @rule(
        who=st.integers(0, ACCOUNTS - 1),
        side=SIDES,
        order_type=ORDER_TYPES,
        qty=QTYS,
        price=PRICES,
        tif=TIFS,
        stp=STPS,
        reduce_only=REDUCE_ONLY,
        client_id=MAYBE_CLIENT_ID,
    )
    def place(
        self,
        who: int,
        side: int,
        order_type: str,
        qty: int,
        price: int,
        tif: str,
        stp: str,
        reduce_only: bool,
        client_id: str | None,
    ) -> None:
        self._place(who, side, order_type, qty, price, tif, stp, reduce_only, client_id)

    @rule(
        who=st.integers(0, ACCOUNTS - 1),
        side=SIDES,
        qty=QTYS,
        depth=st.integers(1, 8),
        client_id=MAYBE_CLIENT_ID,
    )
    def place_passive(self, who: int, side: int, qty: int, depth: int, client_id: str | None) -> None:
        """A GTC order on its own side of the mark: builds the book."""
        self._place(who, side, ref.LIMIT, qty, MARK - side * depth, ref.GTC, ref.STP_NONE, False, client_id)

    @rule(
        who=st.integers(0, ACCOUNTS - 1),
        side=SIDES,
        order_type=ORDER_TYPES,
        qty=st.integers(1, 30),
        reach=st.integers(0, 8),
        tif=TIFS,
        stp=STPS,
        reduce_only=REDUCE_ONLY,
    )
    def place_aggressive(
        self,
        who: int,
        side: int,
        order_type: str,
        qty: int,
        reach: int,
        tif: str,
        stp: str,
        reduce_only: bool,
    ) -> None:
        """An order priced through the mark: takes liquidity, often several levels and several makers."""
        self._place(who, side, order_type, qty, MARK + side * reach, tif, stp, reduce_only, None)

    @rule(
        data=st.data(),
        who=st.integers(0, ACCOUNTS - 1),
        side=SIDES,
        delta=st.sampled_from([-1, 0, 0, 1]),
        stp=STPS,
        reduce_only=st.sampled_from([False, False, False, True]),
    )
    def fok_at_the_edge(
        self, data: st.DataObject, who: int, side: int, delta: int, stp: str, reduce_only: bool
    ) -> None:
        """A FOK sized at the edge of the visible liquidity up to one of the opposite levels.

        Visible is not always fillable (self-trade prevention, reduce-only
        makers shrinking as their owners' positions do), so the edge is where
        fill-or-kill decisions go wrong.
        """
        levels = self.diff.model.l2(-side)
        if not levels:
            return
        depth = data.draw(st.integers(1, len(levels)), label="levels")
        visible = sum(lots for _, lots in levels[:depth])
        price = levels[depth - 1][0]
        self._place(who, side, ref.LIMIT, max(1, visible + delta), price, ref.FOK, stp, reduce_only, None)

    @rule(
        data=st.data(),
        extra=st.sampled_from([0, 0, 1, 3, 10]),
        price_move=st.integers(-4, 4),
        tif=TIFS,
        stp=STPS,
    )
    def reduce_position(self, data: st.DataObject, extra: int, price_move: int, tif: str, stp: str) -> None:
        """A reduce-only order against an open position, often larger than it (it is cut to the position)."""
        open_positions = sorted(self.diff.model_positions().items())
        if not open_positions:
            return
        account, lots = data.draw(st.sampled_from(open_positions), label="position")
        side = ref.SELL if lots > 0 else ref.BUY
        self._place(
            self.diff.accounts.index(AccountId(account)),
            side,
            ref.LIMIT,
            abs(lots) + extra,
            MARK + price_move,
            tif,
            stp,
            True,
            None,
        )

    @rule(
        data=st.data(),
        plain_qty=st.integers(1, 6),
        plain_away=st.integers(0, 6),
        reduce_away=st.integers(0, 6),
    )
    def close_in_layers(self, data: st.DataObject, plain_qty: int, plain_away: int, reduce_away: int) -> None:
        """A position holder rests a plain order and a reduce-only order for the whole position, both closing.

        The plain order's fill shrinks the position, which must shrink the
        reduce-only order behind or ahead of it (and matters to FOK takers).
        """
        open_positions = sorted(self.diff.model_positions().items())
        if not open_positions:
            return
        account, lots = data.draw(st.sampled_from(open_positions), label="position")
        who = self.diff.accounts.index(AccountId(account))
        side = ref.SELL if lots > 0 else ref.BUY
        best = self.diff.model.best(-side)
        touch = best.price if best is not None else MARK
        for qty, away, reduce_only in ((plain_qty, plain_away, False), (abs(lots), reduce_away, True)):
            price = max(1, touch - side * (1 + away))  # never crossing: rests on its own side
            self._place(who, side, ref.LIMIT, qty, price, ref.GTC, ref.STP_NONE, reduce_only, None)

    @rule(data=st.data(), whose=st.sampled_from(["owner"] * 6 + ["other", "unknown", "client_id"]))
    def cancel(self, data: st.DataObject, whose: str) -> None:
        resting = self._resting()
        if whose == "client_id" or (whose in ("owner", "other") and not resting):
            who = data.draw(st.integers(0, ACCOUNTS - 1), label="who")
            client_id = data.draw(st.sampled_from(CLIENT_IDS), label="client_id")
            self._check(
                f"cancel cid={client_id} by {who}", self.diff.cancel(self._account(who), None, client_id)
            )
            return
        if whose == "unknown":
            who = data.draw(st.integers(0, ACCOUNTS - 1), label="who")
            order_id = data.draw(st.integers(1, self.diff.model.next_order_id + 1), label="order_id")
            self._check(f"cancel {order_id} by {who}", self.diff.cancel(self._account(who), order_id))
            return
        order = data.draw(st.sampled_from(resting), label="order")
        account = order.account if whose == "owner" else data.draw(st.sampled_from(self.diff.accounts))
        self._check(f"cancel {order!r} by {account}", self.diff.cancel(AccountId(account), order.order_id))

    @rule(
        data=st.data(),
        whose=st.sampled_from(["owner"] * 6 + ["other", "unknown", "client_id"]),
        price_move=st.sampled_from([0, 0, 0, -1, 1, -3, 3, -6, 6, -10, 10]),
        qty=st.integers(1, 16),
        same_qty=st.booleans(),
    )
    def amend(self, data: st.DataObject, whose: str, price_move: int, qty: int, same_qty: bool) -> None:
        resting = self._resting()
        if whose == "unknown" or not resting:
            who = data.draw(st.integers(0, ACCOUNTS - 1), label="who")
            order_id = data.draw(st.integers(1, self.diff.model.next_order_id + 1), label="order_id")
            price = MARK + price_move
            self._check(
                f"amend {order_id} by {who} to {qty}@{price}",
                self.diff.amend(self._account(who), order_id, price, qty),
            )
            return
        order = data.draw(st.sampled_from(resting), label="order")
        if same_qty and price_move:
            qty = order.qty
        price = max(1, order.price + price_move)
        what = f"amend {order!r} to {qty}@{price} ({whose})"
        if whose == "client_id" and order.client_id is not None:
            result = self.diff.amend(AccountId(order.account), None, price, qty, order.client_id)
        elif whose == "other":
            other = data.draw(st.sampled_from(self.diff.accounts), label="who")
            result = self.diff.amend(AccountId(other), order.order_id, price, qty)
        else:
            result = self.diff.amend(AccountId(order.account), order.order_id, price, qty)
        self._check(what, result)

    @rule(mark=st.integers(MARK - 10, MARK + 10))
    def move_mark(self, mark: int) -> None:
        self.diff.set_mark(mark)

    @invariant()
    def same_book(self) -> None:
        for side in (ref.BUY, ref.SELL):
            assert_same(f"L3 side {side}", self.diff.engine_l3(side), self.diff.model.l3(side))

    @invariant()
    def same_positions(self) -> None:
        assert_same("positions", self.diff.engine_positions(), self.diff.model_positions())

    @invariant()
    def engine_invariants_hold(self) -> None:
        invariants.check(self.diff.venue.engine)

    def teardown(self) -> None:
        assert_snapshot_round_trip(self.diff.config, self.diff.venue)


TestBookAgainstModel = BookMachine.TestCase
TestBookAgainstModel.settings = SETTINGS


# =============================================================================== positions and margin

BTC = MarketId("BTCUSDT")
ETH = MarketId("ETHUSDT")
BASE_MARKS = {BTC: 300_000, ETH: 200_000}  # 30000.0 and 2000.00 in ticks
# lot range per market: from just above min notional to a size the small wallets can't carry
LOTS = {BTC: (4, 1_000), ETH: (10, 12_000)}
MARKETS = st.sampled_from([BTC, BTC, ETH])
MARGIN_ACCOUNTS = 4
WHO = st.integers(0, MARGIN_ACCOUNTS - 1)


class MarginMachine(RuleBasedStateMachine):
    """Trading with real margin: small wallets, leverage, modes, marks; invariants and reduce-only only."""

    def __init__(self) -> None:
        super().__init__()
        self.config = default_config()
        self.venue = Venue(self.config, check=False)
        for market, ticks in BASE_MARKS.items():
            self.venue.apply(
                SetMarkPrice(ts_ns=self.venue.tick(), market=market, index_ticks=ticks, mark_ticks=ticks)
            )
        self.accounts = [
            self.venue.account(f"m{i}", str(deposit))
            for i, deposit in enumerate((1_000, 5_000, 20_000, 100_000)[:MARGIN_ACCOUNTS])
        ]
        self.reduce_only_ids: set[OrderId] = set()
        self.tx = 0

    # ------------------------------------------------------------------ plumbing

    @property
    def engine(self) -> Engine:
        return self.venue.engine

    def _apply(self, command: Command) -> list[Event]:
        hash_before = state_hash(self.engine)
        events = self.venue.apply(command)
        if events and all(isinstance(e, OrderRejected | CommandRejected | TransferRejected) for e in events):
            assert state_hash(self.engine) == hash_before, f"a refusal changed the state: {events}"
        liquidated = {e.account_id for e in events if isinstance(e, LiquidationExplained)}
        for event in events:
            if isinstance(event, InsuranceFundChanged) and event.reason == "DEFICIT_COVER":
                assert event.account_id in liquidated, f"the fund paid outside a liquidation: {events}"
            if isinstance(event, OrderAccepted) and event.reduce_only:
                self.reduce_only_ids.add(event.order_id)
            if isinstance(event, OrderFilled) and event.order_id in self.reduce_only_ids:
                after = event.position_lots
                before = after - int(event.side) * event.qty_lots
                assert before != 0, f"reduce-only fill on a flat position: {event}"
                assert abs(after) < abs(before), f"reduce-only fill grew the position: {event}"
                assert after == 0 or (after > 0) == (before > 0), (
                    f"reduce-only fill flipped the position: {event}"
                )
        return events

    def _mark(self, market: MarketId) -> int:
        return self.engine.marks[market]

    def _lots(self, market: MarketId, size: int) -> int:
        """``size`` 0..100 spread over the market's lot range, small sizes likelier."""
        low, high = LOTS[market]
        return low + (high - low) * size * size // 10_000

    def _position_lots(self, who: int, market: MarketId) -> int:
        return self.engine.position(self.accounts[who], market).qty_lots

    def _resting(self) -> list[tuple[MarketId, OrderId, AccountId]]:
        return sorted((o.market, o.order_id, o.account_id) for o in self.engine.orders.values())

    def _order(
        self,
        who: int,
        market: MarketId,
        side: Side,
        qty: int,
        price: int | None,
        tif: TimeInForce = TimeInForce.GTC,
        reduce_only: bool = False,
        stp: StpMode = StpMode.NONE,
    ) -> None:
        self._apply(
            PlaceOrder(
                ts_ns=self.venue.tick(),
                account_id=self.accounts[who],
                market=market,
                side=side,
                order_type=OrderType.LIMIT if price is not None else OrderType.MARKET,
                qty_lots=qty,
                price_ticks=price,
                tif=tif,
                reduce_only=reduce_only,
                stp=stp,
            )
        )

    # ------------------------------------------------------------------ order rules

    @rule(
        who=WHO,
        market=MARKETS,
        side=st.sampled_from(list(Side)),
        size=st.integers(0, 100),
        bps=st.integers(1, 40),
        tif=st.sampled_from([TimeInForce.GTC, TimeInForce.GTC, TimeInForce.GTX]),
        reduce_only=st.sampled_from([False, False, False, True]),
    )
    def quote(
        self, who: int, market: MarketId, side: Side, size: int, bps: int, tif: TimeInForce, reduce_only: bool
    ) -> None:
        """A resting order a little inside its own side of the mark."""
        price = self._mark(market) * (10_000 - side * bps) // 10_000
        self._order(who, market, side, self._lots(market, size), price, tif, reduce_only)

    @rule(
        who=WHO,
        market=MARKETS,
        side=st.sampled_from(list(Side)),
        size=st.integers(0, 100),
        reach_bps=st.sampled_from([None, 0, 10, 40, 200]),
        tif=st.sampled_from([TimeInForce.GTC, TimeInForce.IOC, TimeInForce.IOC, TimeInForce.FOK]),
        reduce_only=st.sampled_from([False, False, True]),
        stp=st.sampled_from(list(StpMode)),
    )
    def take(
        self,
        who: int,
        market: MarketId,
        side: Side,
        size: int,
        reach_bps: int | None,
        tif: TimeInForce,
        reduce_only: bool,
        stp: StpMode,
    ) -> None:
        """An order through the mark (``reach_bps=None``: a MARKET order)."""
        price = None if reach_bps is None else self._mark(market) * (10_000 + side * reach_bps) // 10_000
        self._order(who, market, side, self._lots(market, size), price, tif, reduce_only, stp)

    @rule(
        who=WHO,
        market=st.sampled_from([BTC, ETH]),
        extra=st.sampled_from([0, 0, 1, 50]),
        price_bps=st.sampled_from([None, None, -20, 0, 20]),
        tif=st.sampled_from([TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK]),
    )
    def close_position(
        self, who: int, market: MarketId, extra: int, price_bps: int | None, tif: TimeInForce
    ) -> None:
        """A reduce-only order against the position, often larger than it."""
        lots = self._position_lots(who, market)
        if lots == 0:
            return
        side = Side.SELL if lots > 0 else Side.BUY
        price = None if price_bps is None else self._mark(market) * (10_000 + side * price_bps) // 10_000
        self._order(who, market, side, abs(lots) + extra, price, tif, reduce_only=True)

    @precondition(lambda self: bool(self.engine.orders))
    @rule(data=st.data(), all_of_account=st.sampled_from([False, False, False, True]))
    def cancel(self, data: st.DataObject, all_of_account: bool) -> None:
        market, order_id, account_id = data.draw(st.sampled_from(self._resting()), label="order")
        if all_of_account:
            self._apply(CancelAllOrders(ts_ns=self.venue.tick(), account_id=account_id, market=market))
        else:
            self._apply(
                CancelOrder(ts_ns=self.venue.tick(), account_id=account_id, market=market, order_id=order_id)
            )

    @precondition(lambda self: bool(self.engine.orders))
    @rule(data=st.data(), bps=st.integers(-60, 60), scale=st.sampled_from([0.5, 1.0, 1.0, 2.0, 5.0]))
    def amend(self, data: st.DataObject, bps: int, scale: float) -> None:
        """New size and price, maybe crossing; reduce-only orders included."""
        market, order_id, account_id = data.draw(st.sampled_from(self._resting()), label="order")
        order = self.engine.orders[order_id]
        self._apply(
            AmendOrder(
                ts_ns=self.venue.tick(),
                account_id=account_id,
                market=market,
                order_id=order_id,
                price_ticks=self._mark(market) * (10_000 + bps) // 10_000,
                qty_lots=max(1, int(order.qty_lots * scale)),
            )
        )

    @precondition(lambda self: any(o.reduce_only for o in self.engine.orders.values()))
    @rule(data=st.data(), scale=st.sampled_from([1, 2, 5]), through_bps=st.sampled_from([0, 10, 50]))
    def amend_reduce_only_through_the_book(self, data: st.DataObject, scale: int, through_bps: int) -> None:
        """A resting reduce-only order amended larger and across the best opposite price: it may only close."""
        resting = sorted((o.order_id, o.market) for o in self.engine.orders.values() if o.reduce_only)
        order_id, market = data.draw(st.sampled_from(resting), label="order")
        order = self.engine.orders[order_id]
        best = self.engine.books[market].opposite(order.side).best_price()
        if best is None:
            best = self._mark(market)
        self._apply(
            AmendOrder(
                ts_ns=self.venue.tick(),
                account_id=order.account_id,
                market=market,
                order_id=order_id,
                price_ticks=best * (10_000 + order.side * through_bps) // 10_000,
                qty_lots=order.qty_lots * scale + scale,
            )
        )

    @rule(
        who=WHO,
        partner=WHO,
        market=st.sampled_from([BTC, ETH]),
        size=st.integers(0, 100),
        edge_bps=st.sampled_from([499, 500, 300]),
        short=st.booleans(),
        sweep=st.booleans(),
    )
    def ring(
        self, who: int, partner: int, market: MarketId, size: int, edge_bps: int, short: bool, sweep: bool
    ) -> None:
        """A colluding pair: ``who`` opens at 125x at the mark, ``partner`` bids (offers) at the band's
        edge, ``who`` closes into it with a limit, or sweeps with a MARKET order."""
        if who == partner:
            return
        account_id, lots, mark = self.accounts[who], self._lots(market, size), self._mark(market)
        opening = Side.SELL if short else Side.BUY
        self._apply(SetLeverage(ts_ns=self.venue.tick(), account_id=account_id, market=market, leverage=125))
        self._order(3 if who != 3 else partner, market, Side(-opening), lots, mark)
        self._order(who, market, opening, lots, mark)
        edge = mark * (10_000 - opening * edge_bps) // 10_000
        self._order(partner, market, opening, lots, edge)
        self._order(who, market, Side(-opening), lots, None if sweep else edge)

    # ------------------------------------------------------------------ prices, settings, money

    @rule(
        who=WHO,
        market=st.sampled_from([BTC, ETH]),
        what=st.sampled_from(
            ["mark", "mark", "mark", "skew", "leverage", "leverage", "mode", "isolated", "transfer"]
        ),
        mark_bps=st.integers(-600, 600),
        leverage=st.sampled_from([1, 2, 5, 10, 20, 50, 125, 200]),
        mode=st.sampled_from(list(MarginMode)),
        usdt=st.sampled_from([-5_000, -500, -50, -1, 1, 50, 500, 1_000]),
    )
    def change(
        self,
        who: int,
        market: MarketId,
        what: str,
        mark_bps: int,
        leverage: int,
        mode: MarginMode,
        usdt: int,
    ) -> None:
        """Everything but orders: the mark, leverage, margin mode, isolated margin, deposits and withdrawals."""
        account_id, ts = self.accounts[who], self.venue.tick()
        command: Command
        if what == "mark":
            ticks = BASE_MARKS[market] * (10_000 + mark_bps) // 10_000
            command = SetMarkPrice(ts_ns=ts, market=market, index_ticks=ticks, mark_ticks=ticks)
        elif what == "skew":  # a mark off its index: the engine holds it within the band
            index = self.engine.indexes[market]
            command = SetMarkPrice(
                ts_ns=ts,
                market=market,
                index_ticks=index,
                mark_ticks=index * (10_000 + mark_bps // 5) // 10_000,
            )
        elif what == "leverage":
            command = SetLeverage(ts_ns=ts, account_id=account_id, market=market, leverage=leverage)
        elif what == "mode":
            command = SetMarginMode(ts_ns=ts, account_id=account_id, market=market, mode=mode)
        elif what == "isolated":
            command = AdjustIsolatedMargin(
                ts_ns=ts, account_id=account_id, market=market, delta_atoms=usdt * USDT
            )
        else:
            self.tx += 1
            asset, tx_id = AssetId(self.config.settlement_asset), TxId(f"tx-{self.tx}")
            if usdt > 0:
                command = Deposit(
                    ts_ns=ts, account_id=account_id, asset=asset, amount_atoms=usdt * USDT, tx_id=tx_id
                )
            else:
                command = Withdraw(
                    ts_ns=ts, account_id=account_id, asset=asset, amount_atoms=-usdt * USDT, tx_id=tx_id
                )
        self._apply(command)

    @invariant()
    def engine_invariants_hold(self) -> None:
        invariants.check(self.engine)

    def teardown(self) -> None:
        assert_snapshot_round_trip(self.config, self.venue)


TestMarginInvariants = MarginMachine.TestCase
TestMarginInvariants.settings = settings(SETTINGS, max_examples=400, stateful_step_count=60)


def test_book_config_never_refuses_on_money() -> None:
    """The book-only venue's premise: the band and brackets are far from anything the tests do."""
    spec = book_config().markets[MarketId("TESTUSDT")]
    assert spec.min_notional_atoms == 0
    assert spec.max_notional_at_leverage(spec.default_leverage) >= 10**15 * USDT


# =============================================================================== regressions
# Shrunk examples the machines found, kept as plain tests (each also checked against the model).


def _run(diff: Differential, steps: list[tuple[str, tuple[object, ...]]]) -> list[Outcome]:
    """Apply ``(kind, args)`` steps to engine and model, asserting each agrees; return the last outcomes."""
    last: list[Outcome] = []
    for kind, args in steps:
        result = getattr(diff, kind)(*args)
        assert_same(f"{kind}{args}", *result)
        last = result[0]
    for side in (ref.BUY, ref.SELL):
        assert_same("L3", diff.engine_l3(side), diff.model.l3(side))
    invariants.check(diff.venue.engine)
    return last


@pytest.mark.parametrize("depth_at_999", [2, 12])
def test_reduce_only_fok_is_judged_on_its_cut_quantity(depth_at_999: int) -> None:
    """A reduce-only FOK larger than the position is cut to it, and fill-or-kill applies to the cut size.

    Found by :class:`BookMachine`: the engine compared what it could fill
    (counted only up to the cut size) with the *uncut* quantity, so the answer
    depended on how the liquidity happened to be split into orders.
    """
    diff = Differential(3, MARK)
    a, b, c = diff.accounts
    g, n = ref.GTC, ref.STP_NONE
    last = _run(
        diff,
        [
            ("place", (a, ref.SELL, ref.LIMIT, 2, 1000, g, n)),
            ("place", (b, ref.BUY, ref.LIMIT, 2, 1000, g, n)),  # b is long 2
            ("place", (c, ref.BUY, ref.LIMIT, depth_at_999, 999, g, n)),
            ("place", (c, ref.BUY, ref.LIMIT, 10, 998, g, n)),
            ("place", (b, ref.SELL, ref.LIMIT, 5, 998, ref.FOK, n, True)),
        ],
    )
    assert [type(o).__name__ for o in last] == ["Accepted", "Amended", "Filled"]
    assert diff.engine_positions().get(b, 0) == 0


def test_fok_counts_a_reduce_only_maker_shrinking_during_the_sweep() -> None:
    """A maker's earlier fill shrinks its position, which trims its reduce-only order further down.

    a is short 5 with a bid of 3 at 999 and a reduce-only bid of 5 at 998; a
    FOK sell of 8 would fill 3, then meet the reduce-only bid cut to 2: only 5
    of 8 can fill, so it must be rejected, not partially filled.
    """
    diff = Differential(3, MARK)
    a, b, c = diff.accounts
    g, n = ref.GTC, ref.STP_NONE
    last = _run(
        diff,
        [
            ("place", (a, ref.SELL, ref.LIMIT, 5, 1000, g, n)),
            ("place", (b, ref.BUY, ref.LIMIT, 5, 1000, g, n)),  # a is short 5
            ("place", (a, ref.BUY, ref.LIMIT, 5, 998, g, n, True)),
            ("place", (a, ref.BUY, ref.LIMIT, 3, 999, g, n)),
            ("place", (c, ref.SELL, ref.LIMIT, 8, 998, ref.FOK, n)),
        ],
    )
    assert last == [ref.Rejected("FOK_NOT_FILLABLE")]


def test_crossing_amend_of_reduce_only_order_never_flips_the_position() -> None:
    """Amending a reduce-only order up in size and through the book trades at most the position."""
    diff = Differential(3, MARK)
    a, b, c = diff.accounts
    g, n = ref.GTC, ref.STP_NONE
    _run(
        diff,
        [
            ("place", (a, ref.SELL, ref.LIMIT, 5, 1000, g, n)),
            ("place", (b, ref.BUY, ref.LIMIT, 5, 1000, g, n)),  # b is long 5
            ("place", (b, ref.SELL, ref.LIMIT, 5, 1005, g, n, True)),
            ("place", (c, ref.BUY, ref.LIMIT, 30, 995, g, n)),
            ("amend", (b, 3, 995, 20)),
        ],
    )
    assert diff.engine_positions().get(b, 0) == 0
    assert diff.engine_l3(ref.BUY) == [(995, [(4, 25)])]
