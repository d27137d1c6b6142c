"""The venue's state and the primitives every stage works through.

:class:`Core` holds all state (accounts, books, marks, counters, the events of the command being
applied) and the operations that keep it consistent: emitting events, new ids, booking and
unbooking orders, trimming reduce-only orders, recomputing order margin, cancelling, and the two
entry points the consequence stages need, :meth:`Core.place` (the whole order path) and
:meth:`Core.match` (matching that returns its fills). The stages (pricing, conditional orders,
liquidation) take a ``Core`` and use nothing else of the engine; the handlers of commands live
in one module per concern (``placing``, ``matching``, ``amending``, ``transfers``, ``settings``,
``markets``), and :class:`~perpx.engine.engine.Engine` wires them in one ordered pipeline.
"""

from __future__ import annotations

from typing import Final

from perpx.engine import matching, placing
from perpx.engine.accounts import (
    Account,
    Position,
)
from perpx.engine.book import Order, OrderBook
from perpx.engine.codes import RejectCode
from perpx.engine.collateral import MultiAssets
from perpx.engine.commands import (
    AdjustIsolatedMargin,
    AmendOrder,
    CancelAllOrders,
    CancelOrder,
    Command,
    MarketMode,
    PlaceOrder,
    SetLeverage,
    SetMarginMode,
)
from perpx.engine.config import (
    FeeTier,
    MarketSpec,
    VenueConfig,
)
from perpx.engine.events import (
    CommandRejected,
    Event,
    ExpireReason,
    OrderAmended,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    Outcome,
)
from perpx.engine.margin import (
    AccountRisk,
    account_risk,
)
from perpx.engine.pricing.index import SourceQuote
from perpx.engine.values import (
    AccountId,
    AssetId,
    ClientOrderId,
    MarketId,
    OrderId,
    Side,
    TradeId,
    TxId,
    format_units,
)

# Enum members as module constants: one global read each (mypyc: C constants), not an enum lookup.
_BUY: Final = Side.BUY
_SELL: Final = Side.SELL
_REDUCE_ONLY: Final = MarketMode.REDUCE_ONLY
_SETTLED: Final = MarketMode.SETTLED
_HALTED: Final = MarketMode.HALTED


class Core:
    """All venue state and the primitives that change it consistently.

    Invariants
    ----------
    See :mod:`perpx.engine.invariants`; they hold after every ``Engine.apply``.
    """

    def __init__(self, config: VenueConfig) -> None:
        self.config = config
        self.asset: AssetId = config.settlement_asset
        self.specs: dict[MarketId, MarketSpec] = dict(config.markets)
        self.param_overrides: dict[MarketId, dict[str, str]] = {}
        """Market parameters an operator changed from the config's values (config-file text), by market."""
        self.fee_tiers: tuple[FeeTier, ...] = config.fee_tiers
        self.max_fee_rate_e8 = max(max(t.maker_e8, t.taker_e8, 0) for t in config.fee_tiers)
        """The dearest rate any fill can pay: a bound the placement check can use without a tier."""
        self.books: dict[MarketId, OrderBook] = {m: OrderBook(m) for m in config.markets}
        self.marks: dict[MarketId, int] = {}
        self.indexes: dict[MarketId, int] = {}
        self.accounts: dict[AccountId, Account] = {}
        self.orders: dict[OrderId, Order] = {}
        self.tx_ids: dict[TxId, AccountId] = {}
        self.deposits_atoms: dict[AssetId, int] = {}
        self.withdrawals_atoms: dict[AssetId, int] = {}
        self.fees_atoms: dict[AssetId, int] = {}
        self.insurance_atoms: dict[AssetId, int] = {}
        self.now_ns = 0
        self.next_account_id = 1
        self.next_order_id = 1
        self.next_trade_id = 1
        self.commands_applied = 0
        self.last_trade_ticks: dict[MarketId, int] = {}
        self.modes: dict[MarketId, MarketMode] = {m: MarketMode.NORMAL for m in config.markets}
        self.index_stale: dict[MarketId, None] = {}
        self.open_interest_lots: dict[MarketId, int] = {m: 0 for m in config.markets}
        self.market_positions: dict[MarketId, dict[AccountId, Position]] = {m: {} for m in config.markets}
        """Every position record of each market, by account (flat ones too): funding settles these."""
        self.risk_dirty: dict[AccountId, None] = {}
        """Accounts whose margin changed other than by a mark (fills, transfers, funding, isolated
        margin): the liquidation stage re-bands and rechecks them. Only :meth:`margin_changed` and a
        fill's settlement (``matching.settle``, which keeps ``headroom_atoms`` up to date) add to it."""
        self.headroom_atoms: dict[AccountId, int] = {}
        """Per account without an isolated position, a lower bound ``H`` of its cross scope's safety
        slack on the current marks: ``(10**8 - 1) x H <= (10**8 - 1) x margin balance - sum of
        maintenance bounds`` (``liquidation/watch.py``). Set by the exact check, moved by each fill by
        an amount that keeps it a lower bound, dropped by any other change of the account's margin
        and cleared by any mark change. While ``H >= 0`` the account needs no exact check."""
        self.events = Outcome()
        self.events.own_start = self.events.own_end = 0
        """The events of the command being applied (``Engine.apply`` starts a new one per command)."""
        self.moved: dict[MarketId, None] = {}
        """Markets whose mark or last price moved during this command: the consequence stages look there."""
        self._touched: dict[Position, None] = {}
        self.asset_quotes: dict[AssetId, dict[str, SourceQuote]] = {}
        """Spot quotes of each asset's index sources (``SubmitAssetQuote``; the lending stage keeps them)."""
        self.multi_assets = MultiAssets(self)
        """Multi-Assets Mode: accounts in it, collateral prices, who holds what (:mod:`.collateral`)."""

    # ------------------------------------------------------------------ the stages' interface

    def emit(self, event: Event) -> None:
        """Record ``event`` as the next event of the command being applied."""
        self.events.append(event)

    def new_order_id(self) -> OrderId:
        """The next order id, from the counter in the state."""
        order_id = OrderId(self.next_order_id)
        self.next_order_id += 1
        return order_id

    def new_trade_id(self) -> TradeId:
        trade_id = TradeId(self.next_trade_id)
        self.next_trade_id += 1
        return trade_id

    def new_account_id(self) -> AccountId:
        account_id = AccountId(self.next_account_id)
        self.next_account_id += 1
        return account_id

    def touch(self, position: Position) -> None:
        """Recompute ``position``'s order margin at the next :meth:`post_trade`."""
        self._touched[position] = None

    def place(self, cmd: PlaceOrder) -> None:
        """Place an order through every stage of the normal path (a triggered conditional order's child)."""
        placing.place(self, cmd)

    def match(self, taker: Order, position: Position) -> list[OrderFilled]:
        """Match ``taker`` (already accepted) against its book, rest or expire the rest, post-trade.

        Returns every ``OrderFilled`` it caused, taker's and makers', in order (a liquidation
        records its fills from them). A ``fee_free`` order pays no trading fee.
        """
        start = len(self.events)
        matching.execute(self, taker, self.books[taker.market], self.specs[taker.market], position)
        return [e for e in self.events[start:] if isinstance(e, OrderFilled)]

    def price_moved(self, market: MarketId) -> None:
        """Mark ``market`` for the consequence stages (its mark or last price changed)."""
        self.moved[market] = None

    def set_mark(self, market: MarketId, index_ticks: int, mark_ticks: int) -> None:
        """Adopt a new index and mark price (from a command or the pricing stage)."""
        self.indexes[market] = index_ticks
        if self.marks.get(market) != mark_ticks:
            self.marks[market] = mark_ticks
            self.moved[market] = None
            self.headroom_atoms.clear()  # every slack moved with the mark

    def margin_changed(self, account_id: AccountId) -> None:
        """Note that ``account_id``'s margin changed other than by a fill: the liquidation stage rechecks it."""
        self.risk_dirty[account_id] = None
        self.headroom_atoms.pop(account_id, None)

    def reduce_only_mode(self, market: MarketId) -> bool:
        """True when the market accepts only reduce-only orders (by mode, or while its index is stale)."""
        return self.modes[market] is _REDUCE_ONLY or market in self.index_stale

    def risk(self, account_id: AccountId) -> AccountRisk:
        """Margin figures of an account on the current mark prices."""
        return account_risk(self.accounts[account_id], self.asset, self.specs, self.marks, self.indexes)

    def position(self, account_id: AccountId, market: MarketId) -> Position:
        """The account's position in ``market`` (created with default settings if new)."""
        return self.position_record(self.accounts[account_id], market)

    def position_record(self, account: Account, market: MarketId) -> Position:
        position = account.positions.get(market)
        if position is None:
            position = account.positions[market] = Position(
                account.account_id, market, self.specs[market].default_leverage
            )
            self.market_positions[market][account.account_id] = position
        return position

    def money(self, atoms: int) -> str:
        """``atoms`` of the settlement asset as text a person reads: ``"20 USDT"``."""
        return f"{format_units(atoms, self.config.settlement.atom)} {self.asset}"

    def price_text(self, spec: MarketSpec, ticks: int) -> str:
        return format_units(ticks, spec.tick_size)

    def reject_command(
        self, cmd: Command, account_id: AccountId | None, code: RejectCode, message: str
    ) -> None:
        self.emit(
            CommandRejected(
                ts_ns=self.now_ns,
                account_id=account_id,
                command=type(cmd).__name__,
                code=code,
                message=message,
            )
        )

    def reject_order(
        self,
        cmd: PlaceOrder | AmendOrder,
        code: RejectCode,
        message: str,
        order_id: OrderId | None = None,
    ) -> None:
        self.emit(
            OrderRejected(
                ts_ns=self.now_ns,
                account_id=cmd.account_id,
                market=cmd.market,
                client_order_id=cmd.client_order_id,
                order_id=order_id,
                code=code,
                message=message,
            )
        )

    def lookup(
        self,
        cmd: PlaceOrder
        | AmendOrder
        | CancelOrder
        | CancelAllOrders
        | SetLeverage
        | SetMarginMode
        | AdjustIsolatedMargin,
    ) -> tuple[Account, MarketSpec] | None:
        """The command's account and market, or ``None`` after emitting the rejection."""
        account = self.accounts.get(cmd.account_id)
        spec = self.specs.get(cmd.market)
        if account is not None and spec is not None:
            return account, spec
        if account is None:
            code, message = RejectCode.UNKNOWN_ACCOUNT, f"account {cmd.account_id} does not exist"
        else:
            code, message = RejectCode.BAD_SYMBOL, f"market {cmd.market} is not listed on this venue"
        if isinstance(cmd, PlaceOrder | AmendOrder):
            self.reject_order(cmd, code, message)
        else:
            self.reject_command(cmd, cmd.account_id, code, message)
        return None

    def fee_rates(self, account: Account) -> FeeTier:
        account.expire_volume(self.now_ns)  # the tier is of the 30 days ending now
        volume = account.volume_30d_atoms
        chosen = self.fee_tiers[0]
        for tier in self.fee_tiers:
            if volume >= tier.min_30d_volume_atoms:
                chosen = tier
            else:
                break
        return chosen

    def mode_refusal(self, market: MarketId, reduce_only: bool) -> tuple[RejectCode, str] | None:
        mode = self.modes[market]
        if mode is _SETTLED:
            return RejectCode.MARKET_SETTLED, f"market {market} is settled (delisted); it accepts no orders"
        if mode is _HALTED:
            return RejectCode.MARKET_CLOSED, f"market {market} is halted: only cancels are accepted"
        if not reduce_only and self.reduce_only_mode(market):
            why = "its index is stale" if market in self.index_stale else "it is in reduce-only mode"
            return (
                RejectCode.MARKET_REDUCE_ONLY,
                f"market {market} accepts only reduce-only orders while {why}; send the order with reduceOnly",
            )
        return None

    def expire_order(self, order: Order, book: OrderBook, reason: ExpireReason) -> None:
        self.unbook(order, book)
        self.emit(
            OrderExpired(
                ts_ns=self.now_ns,
                order_id=order.order_id,
                account_id=order.account_id,
                market=order.market,
                leaves_lots=order.leaves_lots,
                reason=reason,
            )
        )

    def book_order(self, order: Order, book: OrderBook) -> None:
        """Rest ``order`` and count it in its owner's indexes and exposure."""
        book.side(order.side).add(order)
        self.orders[order.order_id] = order
        account = self.accounts[order.account_id]
        position = account.positions[order.market]
        position.open_orders[order.order_id] = order
        if order.client_order_id is not None:
            account.client_orders[order.client_order_id] = order.order_id
        if order.reduce_only:
            position.reduce_only_orders[order.order_id] = order
        else:
            position.add_exposure(order, order.leaves_lots, self.specs[order.market].contract_atoms)
        self.touch(position)

    def unbook(self, order: Order, book: OrderBook) -> None:
        """Take a resting ``order`` off the book and out of every index."""
        book.side(order.side).remove(order)
        position = self.accounts[order.account_id].positions[order.market]
        if not order.reduce_only:
            position.add_exposure(order, -order.leaves_lots, self.specs[order.market].contract_atoms)
        self.forget_order(order, position)
        self.touch(position)

    def forget_order(self, order: Order, position: Position) -> None:
        """Drop a filled or removed order from every index (the book side already let it go)."""
        del self.orders[order.order_id]
        del position.open_orders[order.order_id]
        if order.reduce_only:
            del position.reduce_only_orders[order.order_id]
        if order.client_order_id is not None:
            del self.accounts[order.account_id].client_orders[order.client_order_id]

    def trim(self, order: Order, leaves_lots: int, reason: str) -> None:
        """Shrink a reduce-only order to ``leaves_lots`` (it keeps its queue place)."""
        order.qty_lots = order.filled_lots + leaves_lots
        self.emit(
            OrderAmended(
                ts_ns=self.now_ns,
                order_id=order.order_id,
                account_id=order.account_id,
                market=order.market,
                price_ticks=order.price_ticks,
                qty_lots=order.qty_lots,
                leaves_lots=leaves_lots,
                priority_kept=True,
                reason=reason,
            )
        )

    def trim_reduce_only(self, position: Position) -> None:
        """Keep every resting reduce-only order of ``position`` within it: shrink or expire."""
        if not position.reduce_only_orders:
            return
        size = position.qty_lots if position.qty_lots >= 0 else -position.qty_lots
        closing_side = _SELL if position.qty_lots > 0 else _BUY
        book = self.books[position.market]
        for _, order in sorted(position.reduce_only_orders.items()):
            if size == 0 or order.side is not closing_side:
                self.unbook(order, book)
                self.emit(
                    OrderExpired(
                        ts_ns=self.now_ns,
                        order_id=order.order_id,
                        account_id=order.account_id,
                        market=order.market,
                        leaves_lots=order.leaves_lots,
                        reason=ExpireReason.REDUCE_ONLY,
                    )
                )
            elif order.leaves_lots > size:
                self.trim(order, size, "REDUCE_ONLY_TRIM")

    def post_trade(self) -> None:
        """Recompute order margin of every position this command touched."""
        touched = self._touched
        if not touched:
            return
        for position in touched:
            position.order_margin_atoms = position.required_order_margin()
        touched.clear()

    def find_order(
        self,
        account: Account,
        market: MarketId,
        order_id: OrderId | None,
        client_order_id: ClientOrderId | None,
    ) -> Order | None:
        if order_id is None and client_order_id is not None:
            order_id = account.client_orders.get(client_order_id)
        if order_id is None:
            return None
        order = self.orders.get(order_id)
        if order is None or order.account_id != account.account_id or order.market != market:
            return None
        return order

    def cancel_order(self, order: Order) -> None:
        self.unbook(order, self.books[order.market])
        self.emit(
            OrderCanceled(
                ts_ns=self.now_ns,
                order_id=order.order_id,
                account_id=order.account_id,
                market=order.market,
                leaves_lots=order.leaves_lots,
            )
        )
