"""The venue engine: a deterministic state machine, ``apply(command) -> events``.

The engine reads no clock, draws no random number and does no I/O. Time comes
in ``command.ts_ns``; ids come from counters in the state. The same commands
in the same order give the same events and the same state hash in any process.

A new order goes through these stages, in this order (``_place``):

1. **validate**  account, market, filters (tick, lot, min/max qty, min
   notional, percent-price band, open-order count, client order id);
2. **risk**      reduce-only direction, max position at leverage, initial
   margin of the order against the cross available balance;
3. **accept**    the order gets its id; ``OrderAccepted``;
4. **match**     against the opposite side in price-time priority, with
   self-trade prevention; each trade **settles** both sides at once
   (position, realised PnL, fee, fee account, volume);
5. **rest or expire** the remainder per time in force;
6. **post-trade** reduce-only orders of every touched position are trimmed to
   their position, and order margins are recomputed.

Business refusals are events with codes (state unchanged). A broken invariant
is a bug: the checker raises and the process stops; recovery replays the
journal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from perpx.engine import formulas
from perpx.engine.accounts import (
    Account,
    Position,
    apply_position_change,
    position_change,
    preview_position_change,
)
from perpx.engine.book import Order, OrderBook
from perpx.engine.codes import RejectCode
from perpx.engine.commands import (
    AdjustIsolatedMargin,
    AdvanceClock,
    AmendOrder,
    CancelAllOrders,
    CancelOrder,
    Command,
    CreateAccount,
    Deposit,
    MarginMode,
    MarketMode,
    OrderType,
    PlaceOrder,
    SetLeverage,
    SetMarginMode,
    SetMarketMode,
    SetMarkPrice,
    StpMode,
    TimeInForce,
    UpdateMarketParams,
    Withdraw,
)
from perpx.engine.config import (
    ConfigError,
    FeeTier,
    MarketSpec,
    VenueConfig,
    market_params,
    with_market_params,
)
from perpx.engine.events import (
    AccountCreated,
    ClockAdvanced,
    CommandRejected,
    DepositApplied,
    Event,
    ExpireReason,
    IsolatedMarginAdjusted,
    LeverageChanged,
    MarginModeChanged,
    MarkClamped,
    MarketModeChanged,
    MarketParamsChanged,
    MarkPriceSet,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    Outcome,
    ParamChange,
    PositionSettled,
    SettlementLossShared,
    TransferRejected,
    WithdrawalApplied,
)
from perpx.engine.liquidation import Liquidation
from perpx.engine.liquidation.insurance import INSURANCE_ACCOUNT, fund_equity, move_cash
from perpx.engine.margin import (
    AccountRisk,
    account_risk,
    cross_available_atoms,
    cross_margin_balance_atoms,
    isolated_margin_balance_atoms,
    position_risk,
)
from perpx.engine.pricing.mark import clamp_to_index_band
from perpx.engine.pricing.stage import PricingStage
from perpx.engine.stages import ConsequenceStage
from perpx.engine.triggers import Triggers
from perpx.engine.values import (
    RATE_SCALE,
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


class Engine:
    """All venue state and the rules that change it.

    Parameters
    ----------
    config
        The venue's markets, assets and fee schedule.

    Invariants
    ----------
    See :mod:`perpx.engine.invariants`; they hold after every ``apply``.
    """

    def __init__(self, config: VenueConfig) -> None:
        self.config = config
        self.asset: AssetId = config.settlement_asset
        self.specs: dict[MarketId, MarketSpec] = dict(config.markets)
        self.param_overrides: dict[MarketId, dict[str, str]] = {}
        """Market parameters an operator changed from the config's values (config-file text), by market."""
        self.fee_tiers: tuple[FeeTier, ...] = config.fee_tiers
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
        self.consequences: list[ConsequenceStage] = []
        self._price_moved: dict[MarketId, None] = {}
        self._events: list[Event] = []
        self._touched: dict[Position, None] = {}
        self._handlers: dict[type, Callable[[Any], None]] = {
            CreateAccount: self._create_account,
            Deposit: self._deposit,
            Withdraw: self._withdraw,
            PlaceOrder: self._place,
            CancelOrder: self._cancel,
            CancelAllOrders: self._cancel_all,
            AmendOrder: self._amend,
            SetLeverage: self._set_leverage,
            SetMarginMode: self._set_margin_mode,
            AdjustIsolatedMargin: self._adjust_isolated_margin,
            SetMarkPrice: self._set_mark_price,
            SetMarketMode: self._set_market_mode,
            UpdateMarketParams: self._update_market_params,
            AdvanceClock: self._advance_clock,
        }
        # conditional orders: their commands, and the first consequence stage (they fire before liquidation)
        self.triggers = Triggers(self)
        self._handlers.update(self.triggers.handlers())
        self.consequences.insert(0, self.triggers)
        # liquidation, insurance fund and ADL: the last consequence stage (liquidation/stage.py).
        # risk_dirty: accounts whose margin changed other than by a mark (fills, transfers,
        # funding, isolated margin); the stage re-bands and rechecks them.
        self.risk_dirty: dict[AccountId, None] = {}
        self.fee_free_order_id: OrderId | None = None  # the liquidation order being matched pays no fee
        self.liquidation = Liquidation(self)
        self.consequences.append(self.liquidation)
        # index, mark and funding of the markets with index sources (pricing/stage.py)
        self.pricing = PricingStage(self)
        self._handlers.update(self.pricing.handlers())

    # ------------------------------------------------------------------ entry point

    def apply(self, command: Command) -> Outcome:
        """Apply one command and return the events it caused, in order, its own answer marked out."""
        events = Outcome()
        self._events = events
        if type(command) is AdvanceClock and command.ts_ns < self.now_ns:
            self._reject_command(
                command,
                None,
                RejectCode.CLOCK_BACKWARDS,
                f"venue time is already {self.now_ns} ns; the clock only moves forward",
            )
            self.commands_applied += 1
            events.own_end = len(events)
            return events
        self.now_ns = max(self.now_ns, command.ts_ns)
        # 0. time: index staleness, mark and premium samples, funding due by now, before the command
        if self.now_ns >= self.pricing.due_ns:
            self.pricing.catch_up(self.now_ns)
            if self.consequences and (self._price_moved or self.risk_dirty):
                self._run_consequences()
            self._price_moved.clear()
        handler = self._handlers.get(type(command))
        if handler is None:
            raise TypeError(f"unknown command type {type(command).__name__}")
        events.own_start = len(events)
        handler(command)
        events.own_end = len(events)
        # 7. consequences: conditional orders and liquidations, until nothing more is due
        if self.consequences and (self._price_moved or self.risk_dirty):
            self._run_consequences()
        self._price_moved.clear()
        self.commands_applied += 1
        return events

    def _run_consequences(self) -> None:
        """Run every consequence stage over the markets whose prices moved, until all are quiet.

        A stage may place orders whose trades move prices again (a stop that
        triggers a stop, a liquidation that crosses another account's threshold);
        the loop runs until a full pass does nothing. Its bound is a safety net
        against a stage that keeps reporting work: hitting it is a bug.
        """
        for _ in range(10_000):
            acted = False
            for stage in self.consequences:
                if stage.run(self._price_moved):
                    acted = True
            if not acted:
                return
        raise RuntimeError("consequence stages did not settle after 10,000 passes")

    def price_moved(self, market: MarketId) -> None:
        """Mark ``market`` for the consequence stages (its mark or last price changed)."""
        self._price_moved[market] = None

    def set_mark(self, market: MarketId, index_ticks: int, mark_ticks: int) -> None:
        """Adopt a new index and mark price (from a command or the pricing stage)."""
        self.indexes[market] = index_ticks
        if self.marks.get(market) != mark_ticks:
            self.marks[market] = mark_ticks
            self._price_moved[market] = None

    def reduce_only_mode(self, market: MarketId) -> bool:
        """True when the market accepts only reduce-only orders (by mode, or while its index is stale)."""
        return self.modes[market] is MarketMode.REDUCE_ONLY or market in self.index_stale

    # ------------------------------------------------------------------ queries

    def risk(self, account_id: AccountId) -> AccountRisk:
        """Margin figures of an account on the current mark prices."""
        return account_risk(self.accounts[account_id], self.asset, self.specs, self.marks, self.indexes)

    def position(self, account_id: AccountId, market: MarketId) -> Position:
        """The account's position in ``market`` (created with default settings if new)."""
        return self._position(self.accounts[account_id], market)

    # ------------------------------------------------------------------ accounts and transfers

    def _create_account(self, cmd: CreateAccount) -> None:
        account_id = AccountId(self.next_account_id)
        self.next_account_id += 1
        self.accounts[account_id] = Account(account_id, cmd.name)
        self._events.append(AccountCreated(ts_ns=self.now_ns, account_id=account_id, name=cmd.name))

    def _transfer_refusal(self, cmd: Deposit | Withdraw) -> tuple[RejectCode, str] | None:
        if cmd.account_id not in self.accounts:
            return RejectCode.UNKNOWN_ACCOUNT, f"account {cmd.account_id} does not exist"
        if cmd.asset not in self.config.assets:
            return RejectCode.UNKNOWN_ASSET, f"asset {cmd.asset} is not listed on this venue"
        if cmd.amount_atoms <= 0:
            return RejectCode.AMOUNT_NOT_POSITIVE, "amount must be greater than zero"
        if not cmd.tx_id:
            return RejectCode.BAD_PARAMETER, "a transfer needs a non-empty tx_id"
        if cmd.tx_id in self.tx_ids:
            return RejectCode.DUPLICATE_TX, f"tx_id {cmd.tx_id} was already applied; nothing changed"
        return None

    def _reject_transfer(self, cmd: Deposit | Withdraw, code: RejectCode, message: str) -> None:
        self._events.append(
            TransferRejected(
                ts_ns=self.now_ns,
                account_id=cmd.account_id,
                asset=cmd.asset,
                amount_atoms=cmd.amount_atoms,
                tx_id=cmd.tx_id,
                code=code,
                message=message,
            )
        )

    def _deposit(self, cmd: Deposit) -> None:
        refusal = self._transfer_refusal(cmd)
        if refusal is not None:
            self._reject_transfer(cmd, *refusal)
            return
        self.tx_ids[cmd.tx_id] = cmd.account_id
        balance = self.accounts[cmd.account_id].credit(cmd.asset, cmd.amount_atoms)
        self.risk_dirty[cmd.account_id] = None
        self.deposits_atoms[cmd.asset] = self.deposits_atoms.get(cmd.asset, 0) + cmd.amount_atoms
        self._events.append(
            DepositApplied(
                ts_ns=self.now_ns,
                account_id=cmd.account_id,
                asset=cmd.asset,
                amount_atoms=cmd.amount_atoms,
                tx_id=cmd.tx_id,
                balance_atoms=balance,
            )
        )

    def _withdraw(self, cmd: Withdraw) -> None:
        refusal = self._transfer_refusal(cmd)
        if refusal is not None:
            self._reject_transfer(cmd, *refusal)
            return
        account = self.accounts[cmd.account_id]
        if cmd.asset == self.asset:
            free = self.risk(cmd.account_id).withdrawable_atoms
        else:
            free = account.balance(cmd.asset)
        if cmd.amount_atoms > free:
            self._reject_transfer(
                cmd,
                RejectCode.BALANCE_INSUFFICIENT,
                f"withdrawable balance is {self._money(free)}; unrealised profit and margin in use cannot be withdrawn",
            )
            return
        self.tx_ids[cmd.tx_id] = cmd.account_id
        balance = account.credit(cmd.asset, -cmd.amount_atoms)
        self.risk_dirty[cmd.account_id] = None
        self.withdrawals_atoms[cmd.asset] = self.withdrawals_atoms.get(cmd.asset, 0) + cmd.amount_atoms
        self._events.append(
            WithdrawalApplied(
                ts_ns=self.now_ns,
                account_id=cmd.account_id,
                asset=cmd.asset,
                amount_atoms=cmd.amount_atoms,
                tx_id=cmd.tx_id,
                balance_atoms=balance,
            )
        )

    # ------------------------------------------------------------------ helpers

    def _position(self, account: Account, market: MarketId) -> Position:
        position = account.positions.get(market)
        if position is None:
            position = account.positions[market] = Position(
                account.account_id, market, self.specs[market].default_leverage
            )
            self.market_positions[market][account.account_id] = position
        return position

    def _money(self, atoms: int) -> str:
        """``atoms`` of the settlement asset as text a person reads: ``"20 USDT"``."""
        return f"{format_units(atoms, self.config.settlement.atom)} {self.asset}"

    def _price(self, spec: MarketSpec, ticks: int) -> str:
        return format_units(ticks, spec.tick_size)

    def _reject_command(
        self, cmd: Command, account_id: AccountId | None, code: RejectCode, message: str
    ) -> None:
        self._events.append(
            CommandRejected(
                ts_ns=self.now_ns,
                account_id=account_id,
                command=type(cmd).__name__,
                code=code,
                message=message,
            )
        )

    def _reject_order(
        self,
        cmd: PlaceOrder | AmendOrder,
        code: RejectCode,
        message: str,
        order_id: OrderId | None = None,
    ) -> None:
        self._events.append(
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

    def _lookup(
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
            self._reject_order(cmd, code, message)
        else:
            self._reject_command(cmd, cmd.account_id, code, message)
        return None

    def _price_filter(
        self, spec: MarketSpec, side: Side, price_ticks: int, mark: int
    ) -> tuple[RejectCode, str] | None:
        if price_ticks <= 0:
            return RejectCode.PRICE_NOT_POSITIVE, "price must be greater than zero"
        if price_ticks < spec.min_price_ticks:
            return (
                RejectCode.PRICE_BELOW_MIN,
                f"price is below the minimum of {self._price(spec, spec.min_price_ticks)}",
            )
        if price_ticks > spec.max_price_ticks:
            return (
                RejectCode.PRICE_ABOVE_MAX,
                f"price is above the maximum of {self._price(spec, spec.max_price_ticks)}",
            )
        if side is Side.BUY:
            ceiling = formulas.price_band_ticks(mark, spec.percent_price_up_e8, round_up=False)
            if price_ticks > ceiling:
                return (
                    RejectCode.PERCENT_PRICE,
                    f"a buy price can't be higher than {self._price(spec, ceiling)} (mark x percent_price_up)",
                )
        else:
            floor = formulas.price_band_ticks(mark, spec.percent_price_down_e8, round_up=True)
            if price_ticks < floor:
                return (
                    RejectCode.PERCENT_PRICE,
                    f"a sell price can't be lower than {self._price(spec, floor)} (mark x percent_price_down)",
                )
        return None

    def _fee_rates(self, account: Account) -> FeeTier:
        account.expire_volume(self.now_ns)  # the tier is of the 30 days ending now
        volume = account.volume_30d_atoms
        chosen = self.fee_tiers[0]
        for tier in self.fee_tiers:
            if volume >= tier.min_30d_volume_atoms:
                chosen = tier
            else:
                break
        return chosen

    # ------------------------------------------------------------------ orders: place

    def _place(self, cmd: PlaceOrder) -> None:
        # 1. validate
        found = self._lookup(cmd)
        if found is None:
            return
        account, spec = found
        refusal = self._mode_refusal(cmd.market, cmd.reduce_only)
        if refusal is not None:
            self._reject_order(cmd, *refusal)
            return
        mark = self.marks.get(cmd.market)
        if mark is None:
            self._reject_order(cmd, RejectCode.MARKET_CLOSED, f"market {cmd.market} has no mark price yet")
            return
        refusal = self._order_filters(cmd, account, spec, mark)
        if refusal is not None:
            self._reject_order(cmd, *refusal)
            return
        position = self._position(account, cmd.market)
        is_market = cmd.order_type is OrderType.MARKET
        if is_market:
            bound = formulas.price_band_ticks(
                mark, RATE_SCALE + cmd.side * spec.market_take_bound_e8, round_up=cmd.side is Side.SELL
            )
            price_ticks = max(bound, 1)
        else:
            assert cmd.price_ticks is not None
            price_ticks = cmd.price_ticks
        qty_lots = cmd.qty_lots

        # 2. risk
        if cmd.reduce_only:
            if position.qty_lots == 0 or (position.qty_lots > 0) == (cmd.side is Side.BUY):
                self._reject_order(
                    cmd,
                    RejectCode.REDUCE_ONLY_REJECTED,
                    "a reduce-only order must be opposite to an open position",
                )
                return
            qty_lots = min(qty_lots, abs(position.qty_lots))
        else:
            loss_price = price_ticks
            if is_market:
                best = self.books[cmd.market].opposite(cmd.side).best_price()
                loss_price = mark if best is None or (best - price_ticks) * cmd.side > 0 else best
            refusal = self._margin_refusal(
                account, position, spec, cmd.side, price_ticks, qty_lots, 0, 0, loss_price
            )
            if refusal is None:
                refusal = self._open_interest_refusal(spec, position, cmd.side, qty_lots)
            if refusal is not None:
                self._reject_order(cmd, *refusal)
                return
        if not is_market:
            refusal = self._bankruptcy_refusal(
                account, position, spec, cmd.side, price_ticks, qty_lots, cmd.tif
            )
            if refusal is not None:
                self._reject_order(cmd, *refusal)
                return
        book = self.books[cmd.market]
        if is_market:
            best = book.opposite(cmd.side).best_price()
            if best is not None and (best - price_ticks) * cmd.side > 0:
                self._reject_order(
                    cmd,
                    RejectCode.MARKET_TAKE_BOUND,
                    f"the best counter price {self._price(spec, best)} is beyond the market take bound"
                    f" {self._price(spec, price_ticks)} (mark +/- market_take_bound); nothing can fill",
                )
                return
        if cmd.tif is TimeInForce.GTX and not is_market:
            best = book.opposite(cmd.side).best_price()
            if best is not None and (best - price_ticks) * cmd.side <= 0:
                self._reject_order(
                    cmd,
                    RejectCode.POST_ONLY_WOULD_TAKE,
                    "the post-only order would trade at once, so it was rejected",
                )
                return
        if cmd.tif is TimeInForce.FOK and self._fillable_lots(book, cmd, price_ticks, qty_lots) < qty_lots:
            self._reject_order(
                cmd, RejectCode.FOK_NOT_FILLABLE, "the fill-or-kill order could not be filled in full at once"
            )
            return

        # 3. accept
        order = Order(
            OrderId(self.next_order_id),
            cmd.account_id,
            cmd.market,
            cmd.side,
            cmd.order_type,
            cmd.tif,
            price_ticks,
            cmd.qty_lots,
            cmd.reduce_only,
            cmd.client_order_id,
            cmd.stp,
            self.now_ns,
        )
        self.next_order_id += 1
        self._events.append(
            OrderAccepted(
                ts_ns=self.now_ns,
                order_id=order.order_id,
                account_id=order.account_id,
                market=order.market,
                side=order.side,
                order_type=order.order_type,
                tif=order.tif,
                price_ticks=None if is_market else price_ticks,
                qty_lots=order.qty_lots,
                reduce_only=order.reduce_only,
                client_order_id=order.client_order_id,
                stp=order.stp,
            )
        )
        if qty_lots < order.qty_lots:
            self._trim(order, qty_lots, "REDUCE_ONLY_TRIM")

        # 4. match, settling each trade; 5. rest or expire; 6. post-trade
        self._execute(order, book, spec, position)

    def _mode_refusal(self, market: MarketId, reduce_only: bool) -> tuple[RejectCode, str] | None:
        mode = self.modes[market]
        if mode is MarketMode.SETTLED:
            return RejectCode.MARKET_SETTLED, f"market {market} is settled (delisted); it accepts no orders"
        if mode is MarketMode.HALTED:
            return RejectCode.MARKET_CLOSED, f"market {market} is halted: only cancels are accepted"
        if not reduce_only and self.reduce_only_mode(market):
            why = "its index is stale" if market in self.index_stale else "it is in reduce-only mode"
            return (
                RejectCode.MARKET_REDUCE_ONLY,
                f"market {market} accepts only reduce-only orders while {why}; send the order with reduceOnly",
            )
        return None

    def _open_interest_refusal(
        self, spec: MarketSpec, position: Position, side: Side, qty_lots: int
    ) -> tuple[RejectCode, str] | None:
        """Refuse an order whose opening part could lift open interest over the market's cap."""
        cap = spec.risk.max_open_interest_lots
        if cap is None:
            return None
        held = position.qty_lots
        closing = min(
            qty_lots,
            -held if side is Side.BUY and held < 0 else held if side is Side.SELL and held > 0 else 0,
        )
        opening = qty_lots - closing
        current = self.open_interest_lots[spec.market]
        if opening and current + opening > cap:
            return (
                RejectCode.OPEN_INTEREST_CAP,
                f"open interest in {spec.market} is {format_units(current, spec.lot_size)} of a cap of"
                f" {format_units(cap, spec.lot_size)}; this order could open {format_units(opening, spec.lot_size)} more",
            )
        return None

    def _order_filters(
        self, cmd: PlaceOrder, account: Account, spec: MarketSpec, mark: int
    ) -> tuple[RejectCode, str] | None:
        qty = cmd.qty_lots
        is_market = cmd.order_type is OrderType.MARKET
        if qty <= 0:
            return RejectCode.QTY_NOT_POSITIVE, "quantity must be greater than zero"
        if qty < spec.min_qty_lots:
            return (
                RejectCode.PRICE_FILTER,
                f"Filter failure: LOT_SIZE (quantity below min_qty {spec.min_qty_lots} lots)",
            )
        limit = spec.market_max_qty_lots if is_market else spec.max_qty_lots
        if qty > limit:
            kind = "market_max_qty" if is_market else "max_qty"
            return RejectCode.QTY_ABOVE_MAX, f"quantity is greater than {kind} ({limit} lots)"
        if is_market:
            if cmd.price_ticks is not None:
                return RejectCode.BAD_PARAMETER, "a MARKET order takes no price"
            if cmd.tif is TimeInForce.GTX:
                return RejectCode.BAD_PARAMETER, "a MARKET order cannot be post-only"
            reference = mark
        else:
            if cmd.price_ticks is None:
                return RejectCode.BAD_PARAMETER, "a LIMIT order needs a price"
            refusal = self._price_filter(spec, cmd.side, cmd.price_ticks, mark)
            if refusal is not None:
                return refusal
            reference = cmd.price_ticks
        if not cmd.reduce_only:
            notional = formulas.notional_atoms(reference, qty, spec.contract_atoms)
            if notional < spec.min_notional_atoms:
                return (
                    RejectCode.MIN_NOTIONAL,
                    f"Order's notional must be no smaller than {self._money(spec.min_notional_atoms)}"
                    " (unless you choose reduce only)",
                )
        position = account.positions.get(cmd.market)
        if position is not None and len(position.open_orders) >= spec.max_open_orders:
            return (
                RejectCode.MAX_OPEN_ORDERS,
                f"reached the limit of {spec.max_open_orders} open orders in this market",
            )
        if cmd.client_order_id is not None:
            if not cmd.client_order_id or len(cmd.client_order_id) > 36:
                return RejectCode.BAD_PARAMETER, "client order id must be 1 to 36 characters"
            if cmd.client_order_id in account.client_orders:
                return (
                    RejectCode.DUPLICATE_CLIENT_ORDER_ID,
                    f"client order id {cmd.client_order_id} is already used by an open order",
                )
        return None

    def _margin_refusal(
        self,
        account: Account,
        position: Position,
        spec: MarketSpec,
        side: Side,
        price_ticks: int,
        add_lots: int,
        removed_lots: int,
        removed_price_ticks: int = 0,
        loss_price_ticks: int | None = None,
    ) -> tuple[RejectCode, str] | None:
        """Check the cost of ``position`` if ``add_lots`` at ``price_ticks`` were added.

        ``removed_lots`` at ``removed_price_ticks`` leave the same side first (an amend). The cost
        is the increase of the position's order margin plus the order's *open loss* (Binance):
        the part of ``add_lots`` that opens exposure, times how far ``loss_price_ticks`` (the limit
        price; for a MARKET order the best counter price) is worse than the mark
        (``formulas.open_loss_atoms``, ``mechanics.md`` 12.3).
        """
        contract = spec.contract_atoms
        sign = 1 if side is Side.BUY else -1
        before = position.order_margin_atoms
        add_notional = price_ticks * add_lots * contract
        removed_notional = removed_price_ticks * removed_lots * contract
        if sign > 0:
            position.buy_qty_lots += add_lots - removed_lots
            position.buy_notional_atoms += add_notional - removed_notional
        else:
            position.sell_qty_lots += add_lots - removed_lots
            position.sell_notional_atoms += add_notional - removed_notional
        try:
            after = position.required_order_margin()
            worst_notional = position.worst_case_notional(self.marks[spec.market], contract)
        finally:
            if sign > 0:
                position.buy_qty_lots -= add_lots - removed_lots
                position.buy_notional_atoms -= add_notional - removed_notional
            else:
                position.sell_qty_lots -= add_lots - removed_lots
                position.sell_notional_atoms -= add_notional - removed_notional
        cap = spec.max_notional_at_leverage(position.leverage)
        if worst_notional > cap:
            return (
                RejectCode.MAX_POSITION_AT_LEVERAGE,
                f"position and open orders would reach {self._money(worst_notional)} of notional;"
                f" the maximum at {position.leverage}x is {self._money(cap)}",
            )
        mark = self.marks[spec.market]
        held = position.qty_lots
        closing = min(add_lots, -held if sign > 0 and held < 0 else held if sign < 0 and held > 0 else 0)
        open_loss = formulas.open_loss_atoms(
            side,
            add_lots - closing,
            price_ticks if loss_price_ticks is None else loss_price_ticks,
            mark,
            contract,
        )
        needed = after - before + open_loss
        if needed > 0:
            available = cross_available_atoms(account, self.asset, self.specs, self.marks, self.indexes)
            if needed > available:
                loss = f" (with {self._money(open_loss)} of open loss against the mark)" if open_loss else ""
                return (
                    RejectCode.MARGIN_INSUFFICIENT,
                    f"Margin is insufficient: the order needs {self._money(needed)}{loss},"
                    f" {self._money(max(available, 0))} is available",
                )
        return None

    def _fillable_lots(self, book: OrderBook, cmd: PlaceOrder, limit_ticks: int, want_lots: int) -> int:
        """Lots the order could take at once, honouring its limit, self-trade prevention and the fill guard.

        The sweep is followed as matching would run it: a resting reduce-only order shrinks or
        expires as the fills before it shrink its owner's position, a maker the fill guard would
        expire is passed over, and the taker stops where the guard would stop it (section 29 of
        ``mechanics.md``). Positions are followed through the sweep with the same pure
        :func:`~perpx.engine.accounts.position_change` the fills apply; fee rates are those before
        the sweep (a tier reached inside it lowers later fees, never raises them).
        """
        total = 0
        spec = self.specs[cmd.market]
        contract = spec.contract_atoms
        taker_account = self.accounts[cmd.account_id]
        taker_rate = self._fee_rates(taker_account).taker_e8
        sim: dict[AccountId, _Swept] = {}  # positions as the sweep so far would leave them
        for maker in book.opposite(cmd.side).orders():
            if (maker.price_ticks - limit_ticks) * cmd.side > 0:
                break
            if maker.account_id == cmd.account_id and cmd.stp is not StpMode.NONE:
                if cmd.stp is StpMode.EXPIRE_MAKER:
                    continue
                break
            maker_state = self._swept(sim, maker.account_id, cmd.market)
            take = min(maker.leaves_lots, want_lots - total)
            if maker.reduce_only:
                take = min(take, max(-maker.side * maker_state.qty_lots, 0))
            if not take:
                continue
            notional = formulas.notional_atoms(maker.price_ticks, take, contract)
            maker_account = self.accounts[maker.account_id]
            maker_fee = max(0, formulas.fee_atoms(notional, self._fee_rates(maker_account).maker_e8))
            maker_after = maker_state.then(maker.side, take, notional, maker_fee)
            if maker.account_id != cmd.account_id:
                if not self._swept_solvent(maker_account, cmd.market, spec, maker_after):
                    continue  # matching would expire this maker and go on
                taker_state = self._swept(sim, cmd.account_id, cmd.market)
            else:
                taker_state = maker_after  # a self-trade: both legs on the one position
            taker_fee = max(0, formulas.fee_atoms(notional, taker_rate))
            taker_after = taker_state.then(cmd.side, take, notional, taker_fee)
            if not self._swept_solvent(taker_account, cmd.market, spec, taker_after):
                break  # matching would stop the taker at this level
            sim[maker.account_id] = maker_after
            sim[cmd.account_id] = taker_after
            total += take
            if total >= want_lots:
                break
        return total

    def _swept(self, sim: dict[AccountId, _Swept], account_id: AccountId, market: MarketId) -> _Swept:
        state = sim.get(account_id)
        if state is None:
            state = _Swept.of(self._position(self.accounts[account_id], market))
        return state

    def _swept_solvent(self, account: Account, market: MarketId, spec: MarketSpec, state: _Swept) -> bool:
        position = self._position(account, market)
        return self._solvent(
            account,
            position,
            spec,
            state.qty_lots,
            state.cost_atoms,
            state.isolated_margin_atoms,
            state.wallet_atoms,
            state.released_atoms,
        )

    def _execute(self, taker: Order, book: OrderBook, spec: MarketSpec, taker_position: Position) -> None:
        """Match ``taker`` (4), then rest or expire its remainder (5), then post-trade (6)."""
        touched = self._touched
        touched[taker_position] = None
        opposite = book.opposite(taker.side)
        side_sign = int(taker.side)
        limit = taker.price_ticks
        expired: ExpireReason | None = None
        crossed_any = False
        while taker.leaves_lots > 0:
            maker = opposite.head()
            if maker is None:
                break
            if (maker.price_ticks - limit) * side_sign > 0:
                crossed_any = True
                break
            if maker.account_id == taker.account_id and taker.stp is not StpMode.NONE:
                stp = taker.stp
                if stp is StpMode.EXPIRE_MAKER or stp is StpMode.EXPIRE_BOTH:
                    self._expire_resting(maker, book, ExpireReason.STP_MAKER)
                if stp is StpMode.EXPIRE_TAKER or stp is StpMode.EXPIRE_BOTH:
                    expired = ExpireReason.STP_TAKER
                    break
                continue
            if not self._match_one(taker, maker, book, spec):
                expired = ExpireReason.BANKRUPTCY
                break

        # 5. rest or expire
        leaves = taker.leaves_lots
        if leaves > 0:
            if (
                expired is None
                and taker.order_type is OrderType.LIMIT
                and (taker.tif is TimeInForce.GTC or taker.tif is TimeInForce.GTX)
            ):
                self._book(taker, book)
                if taker.reduce_only:
                    self._trim_reduce_only(taker_position)
            else:
                if expired is None:
                    if taker.order_type is OrderType.MARKET:
                        expired = ExpireReason.MARKET_TAKE_BOUND if crossed_any else ExpireReason.NO_LIQUIDITY
                    else:
                        expired = ExpireReason.IOC_REMAINDER
                self._events.append(
                    OrderExpired(
                        ts_ns=self.now_ns,
                        order_id=taker.order_id,
                        account_id=taker.account_id,
                        market=taker.market,
                        leaves_lots=leaves,
                        reason=expired,
                    )
                )
        # 6. post-trade
        self._post_trade()

    def _expire_resting(self, order: Order, book: OrderBook, reason: ExpireReason) -> None:
        self._unbook(order, book)
        self._events.append(
            OrderExpired(
                ts_ns=self.now_ns,
                order_id=order.order_id,
                account_id=order.account_id,
                market=order.market,
                leaves_lots=order.leaves_lots,
                reason=reason,
            )
        )

    # ------------------------------------------------------------------ the fill guard (mechanics.md 29)

    def _match_one(self, taker: Order, maker: Order, book: OrderBook, spec: MarketSpec) -> bool:
        """Trade ``taker`` against the head ``maker`` as far as both owners stay solvent; False stops the taker.

        No voluntary fill lowers a scope's margin balance below zero. A maker whose fill would is
        expired (``BANKRUPTCY``) and matching goes on; a taker fills the most lots it can at this
        price and stops there. A liquidation order (fee-free) is exempt as a taker: its limit is
        its bankruptcy price already. The fee tiers of both sides are those before the trade.
        """
        qty = min(taker.leaves_lots, maker.leaves_lots)
        price = maker.price_ticks
        contract = spec.contract_atoms
        taker_account = self.accounts[taker.account_id]
        maker_account = self.accounts[maker.account_id]
        taker_position = taker_account.positions[taker.market]
        maker_position = maker_account.positions[maker.market]
        liquidating = taker.order_id == self.fee_free_order_id
        taker_rate = 0 if liquidating else self._fee_rates(taker_account).taker_e8
        maker_rate = self._fee_rates(maker_account).maker_e8
        if maker_position is taker_position:
            lots = self._self_trade_lots(
                taker_account, taker_position, spec, taker.side, qty, price, taker_rate, maker_rate
            )
            if lots:
                self._trade(taker, maker, book, spec, lots, price, taker_rate, maker_rate)
            return lots == qty
        notional = formulas.notional_atoms(price, qty, contract)
        maker_fee = max(0, formulas.fee_atoms(notional, maker_rate))
        if not self._solvent_after(maker_account, maker_position, spec, maker.side, qty, notional, maker_fee):
            self._expire_resting(maker, book, ExpireReason.BANKRUPTCY)
            return True
        lots = qty
        if not liquidating:
            lots = self._solvent_lots(taker_account, taker_position, spec, taker.side, qty, price, taker_rate)
            if 0 < lots < qty:
                smaller = formulas.notional_atoms(price, lots, contract)
                fee = max(0, formulas.fee_atoms(smaller, maker_rate))
                if not self._solvent_after(
                    maker_account, maker_position, spec, maker.side, lots, smaller, fee
                ):
                    self._expire_resting(maker, book, ExpireReason.BANKRUPTCY)
                    return False
        if lots:
            self._trade(taker, maker, book, spec, lots, price, taker_rate, maker_rate)
        return lots == qty

    def _solvent_after(
        self,
        account: Account,
        position: Position,
        spec: MarketSpec,
        side: Side,
        lots: int,
        value_atoms: int,
        fee_atoms: int,
    ) -> bool:
        """Whether trading ``lots`` for ``value_atoms`` and ``fee_atoms`` keeps ``position``'s scopes solvent.

        A cross fill changes its scope's margin balance by exactly ``side x (lots x mark x contract -
        value) - fee`` (the realised part and the uPnL part of a close add up to that, whatever the
        split), so it needs no preview; an isolated fill moves margin between scopes and is previewed.
        """
        if position.margin_mode is not MarginMode.ISOLATED:
            mark = self.marks[position.market]
            delta = side * (lots * mark * spec.contract_atoms - value_atoms) - fee_atoms
            return (
                delta >= 0
                or cross_margin_balance_atoms(account, self.asset, self.specs, self.marks) + delta >= 0
            )
        change = preview_position_change(position, side, lots, value_atoms, fee_atoms)
        return self._solvent(
            account,
            position,
            spec,
            change.qty_lots,
            change.cost_atoms,
            change.isolated_margin_atoms,
            change.wallet_atoms,
            change.released_atoms,
        )

    def _solvent(
        self,
        account: Account,
        position: Position,
        spec: MarketSpec,
        qty_after: int,
        cost_after: int,
        isolated_after: int,
        wallet_delta: int,
        released_atoms: int,
    ) -> bool:
        """Whether ``position`` becoming ``(qty_after, cost_after, isolated_after)`` and the cross
        wallet moving by ``wallet_delta`` (fees included) leaves every scope it touches at a margin
        balance of zero or more, or no lower than before (``mechanics.md`` 29).

        An isolated close that would release a negative amount (its loss beyond the position's own
        margin, taken from the cross wallet) is never solvent: isolated means the loss stops there.

        The margin balance itself (a sum over the account's positions) is only computed when the
        change lowers it: a fill better than the mark by more than its fee needs no sum at all.
        """
        mark = self.marks[position.market]
        upnl_delta = (qty_after - position.qty_lots) * mark * spec.contract_atoms - (
            cost_after - position.cost_atoms
        )
        if position.margin_mode is MarginMode.ISOLATED:
            if released_atoms < 0:
                return False
            own = isolated_after - position.isolated_margin_atoms + upnl_delta
            if own < 0 and isolated_margin_balance_atoms(position, spec, mark) + own < 0:
                return False
            if wallet_delta < 0:
                return (
                    cross_margin_balance_atoms(account, self.asset, self.specs, self.marks) + wallet_delta
                    >= 0
                )
            return True
        delta = wallet_delta + upnl_delta
        return (
            delta >= 0 or cross_margin_balance_atoms(account, self.asset, self.specs, self.marks) + delta >= 0
        )

    def _solvent_lots(
        self,
        account: Account,
        position: Position,
        spec: MarketSpec,
        side: Side,
        want_lots: int,
        price_ticks: int,
        fee_rate_e8: int,
    ) -> int:
        """The most of ``want_lots`` that can trade at ``price_ticks`` keeping ``position``'s scopes solvent."""
        contract = spec.contract_atoms

        def solvent(lots: int) -> bool:
            notional = formulas.notional_atoms(price_ticks, lots, contract)
            fee = max(0, formulas.fee_atoms(notional, fee_rate_e8))
            return self._solvent_after(account, position, spec, side, lots, notional, fee)

        if solvent(want_lots):
            return want_lots
        low, high = 0, want_lots - 1  # the answer lies in [low, high]; 0 always qualifies
        while low < high:
            middle = (low + high + 1) // 2
            if solvent(middle):
                low = middle
            else:
                high = middle - 1
        return low

    def _self_trade_lots(
        self,
        account: Account,
        position: Position,
        spec: MarketSpec,
        taker_side: Side,
        want_lots: int,
        price_ticks: int,
        taker_rate_e8: int,
        maker_rate_e8: int,
    ) -> int:
        """The most of ``want_lots`` an account can trade with itself (STP ``NONE``) and stay solvent.

        Both legs change the same position, one after the other: the taker's, then the maker's.
        """
        contract = spec.contract_atoms
        isolated = position.margin_mode is MarginMode.ISOLATED

        def solvent(lots: int) -> bool:
            notional = formulas.notional_atoms(price_ticks, lots, contract)
            first = preview_position_change(
                position, taker_side, lots, notional, max(0, formulas.fee_atoms(notional, taker_rate_e8))
            )
            second = position_change(
                first.qty_lots,
                first.cost_atoms,
                first.isolated_margin_atoms,
                isolated,
                position.leverage,
                Side(-taker_side),
                lots,
                notional,
                max(0, formulas.fee_atoms(notional, maker_rate_e8)),
            )
            return self._solvent(
                account,
                position,
                spec,
                second.qty_lots,
                second.cost_atoms,
                second.isolated_margin_atoms,
                first.wallet_atoms + second.wallet_atoms,
                min(first.released_atoms, second.released_atoms, 0),
            )

        if solvent(want_lots):
            return want_lots
        low, high = 0, want_lots - 1
        while low < high:
            middle = (low + high + 1) // 2
            if solvent(middle):
                low = middle
            else:
                high = middle - 1
        return low

    def _bankruptcy_refusal(
        self,
        account: Account,
        position: Position,
        spec: MarketSpec,
        side: Side,
        price_ticks: int,
        lots: int,
        tif: TimeInForce,
    ) -> tuple[RejectCode, str] | None:
        """Refuse a limit price beyond the owner's bankruptcy price for ``lots`` (placement and amendment).

        The fee counted is the taker's (a post-only order's: the maker's), the one a fill at once pays.
        """
        contract = spec.contract_atoms
        rates = self._fee_rates(account)
        fee_rate_e8 = rates.maker_e8 if tif is TimeInForce.GTX else rates.taker_e8
        notional = formulas.notional_atoms(price_ticks, lots, contract)
        fee = formulas.fee_atoms(notional, fee_rate_e8)
        if self._solvent_after(account, position, spec, side, lots, notional, fee if fee > 0 else 0):
            return None  # the usual case: no bisection, no closure

        def solvent(ticks: int) -> bool:
            notional = formulas.notional_atoms(ticks, lots, contract)
            fee = max(0, formulas.fee_atoms(notional, fee_rate_e8))
            return self._solvent_after(account, position, spec, side, lots, notional, fee)

        # the worst price that still keeps the owner solvent: buying, the highest; selling, the lowest
        if side is Side.BUY:
            low, high = spec.min_price_ticks - 1, price_ticks - 1
            while low < high:
                middle = (low + high + 1) // 2
                if solvent(middle):
                    low = middle
                else:
                    high = middle - 1
            found = low >= spec.min_price_ticks
        else:
            low, high = price_ticks + 1, spec.max_price_ticks + 1
            while low < high:
                middle = (low + high) // 2
                if solvent(middle):
                    high = middle
                else:
                    low = middle + 1
            found = low <= spec.max_price_ticks
            high = low
        scope = "isolated position" if position.is_isolated else "account"
        where = (
            f"the bankruptcy price for {format_units(lots, spec.lot_size)} is {self._price(spec, low if side is Side.BUY else high)}"
            if found
            else f"no price keeps the {scope} solvent for {format_units(lots, spec.lot_size)}"
        )
        return (
            RejectCode.BEYOND_BANKRUPTCY,
            f"filling this order at {self._price(spec, price_ticks)} would take the {scope}'s margin balance"
            f" below zero; {where}: use a better price or a smaller quantity",
        )

    def _trade(
        self,
        taker: Order,
        maker: Order,
        book: OrderBook,
        spec: MarketSpec,
        qty: int,
        price: int,
        taker_rate_e8: int,
        maker_rate_e8: int,
    ) -> None:
        """Settle one trade of ``qty`` at the maker's ``price``: both orders, both positions, fees.

        A self-trade (STP ``NONE``) moves no price: it never sets the last-trade input of the mark.
        """
        self_trade = maker.account_id == taker.account_id
        if not self_trade and self.last_trade_ticks.get(maker.market) != price:
            self.last_trade_ticks[maker.market] = price
            self._price_moved[maker.market] = None
        trade_id = TradeId(self.next_trade_id)
        self.next_trade_id += 1
        maker.filled_lots += qty
        taker.filled_lots += qty
        maker_account = self.accounts[maker.account_id]
        maker_position = maker_account.positions[maker.market]
        if not maker.reduce_only:
            maker_position.add_exposure(maker, -qty, spec.contract_atoms)
        if maker.leaves_lots == 0:
            book.side(maker.side).remove(maker)
            self._forget(maker, maker_position)
        taker_account = self.accounts[taker.account_id]
        taker_position = taker_account.positions[taker.market]
        notional = formulas.notional_atoms(price, qty, spec.contract_atoms)
        self._events.append(
            self._settle(
                taker_account,
                taker_position,
                taker,
                qty,
                price,
                notional,
                trade_id,
                False,
                taker_rate_e8,
                True,
            )
        )
        self._events.append(
            self._settle(
                maker_account,
                maker_position,
                maker,
                qty,
                price,
                notional,
                trade_id,
                True,
                maker_rate_e8,
                not self_trade,
            )
        )
        self._touched[maker_position] = None
        # a fill may shrink a position below a resting reduce-only order of the same account
        self._trim_reduce_only(maker_position)
        if taker_position is not maker_position:
            self._trim_reduce_only(taker_position)

    def _settle(
        self,
        account: Account,
        position: Position,
        order: Order,
        qty: int,
        price: int,
        notional: int,
        trade_id: TradeId,
        is_maker: bool,
        rate_e8: int,
        counts_volume: bool,
    ) -> OrderFilled:
        """One side of a trade: position, realised PnL, fee (from the isolated margin of an isolated
        position), fee account, 30-day volume (once per trade for a self-trade).

        A maker rebate is paid only as far as the fee account holds it: the fee account never
        goes below zero (it collected the taker's fee of the same trade first).
        """
        asset = self.asset
        fee = formulas.fee_atoms(notional, rate_e8)
        if fee < 0:
            fee = -min(-fee, max(0, self.fees_atoms.get(asset, 0)))
        self.risk_dirty[account.account_id] = None
        side = order.side
        realized, oi_delta = apply_position_change(account, position, asset, side, qty, notional, fee)
        if oi_delta:
            self.open_interest_lots[position.market] += oi_delta
        self.fees_atoms[asset] = self.fees_atoms.get(asset, 0) + fee
        if counts_volume:
            account.record_volume(self.now_ns, notional)
        return OrderFilled(
            ts_ns=self.now_ns,
            trade_id=trade_id,
            order_id=order.order_id,
            account_id=order.account_id,
            market=order.market,
            side=side,
            price_ticks=price,
            qty_lots=qty,
            leaves_lots=order.leaves_lots,
            is_maker=is_maker,
            fee_atoms=fee,
            realized_pnl_atoms=realized,
            position_lots=position.qty_lots,
        )

    def _book(self, order: Order, book: OrderBook) -> None:
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
        self._touched[position] = None

    def _unbook(self, order: Order, book: OrderBook) -> None:
        """Take a resting ``order`` off the book and out of every index."""
        book.side(order.side).remove(order)
        position = self.accounts[order.account_id].positions[order.market]
        if not order.reduce_only:
            position.add_exposure(order, -order.leaves_lots, self.specs[order.market].contract_atoms)
        self._forget(order, position)
        self._touched[position] = None

    def _forget(self, order: Order, position: Position) -> None:
        del self.orders[order.order_id]
        del position.open_orders[order.order_id]
        if order.reduce_only:
            del position.reduce_only_orders[order.order_id]
        if order.client_order_id is not None:
            del self.accounts[order.account_id].client_orders[order.client_order_id]

    def _trim(self, order: Order, leaves_lots: int, reason: str) -> None:
        """Shrink a reduce-only order to ``leaves_lots`` (it keeps its queue place)."""
        order.qty_lots = order.filled_lots + leaves_lots
        self._events.append(
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

    def _trim_reduce_only(self, position: Position) -> None:
        """Keep every resting reduce-only order of ``position`` within it: shrink or expire."""
        if not position.reduce_only_orders:
            return
        size = abs(position.qty_lots)
        closing_side = Side.SELL if position.qty_lots > 0 else Side.BUY
        book = self.books[position.market]
        for _, order in sorted(position.reduce_only_orders.items()):
            if size == 0 or order.side is not closing_side:
                self._unbook(order, book)
                self._events.append(
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
                self._trim(order, size, "REDUCE_ONLY_TRIM")

    def _post_trade(self) -> None:
        """Recompute order margin of every position this command touched."""
        touched = self._touched
        if not touched:
            return
        for position in touched:
            position.order_margin_atoms = position.required_order_margin()
        touched.clear()

    # ------------------------------------------------------------------ orders: cancel and amend

    def _find_order(
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

    def _cancel(self, cmd: CancelOrder) -> None:
        found = self._lookup(cmd)
        if found is None:
            return
        account, _spec = found
        if cmd.order_id is None and cmd.client_order_id is None:
            self._reject_command(
                cmd, cmd.account_id, RejectCode.BAD_PARAMETER, "give an order id or a client order id"
            )
            return
        order = self._find_order(account, cmd.market, cmd.order_id, cmd.client_order_id)
        if order is None:
            self._reject_command(
                cmd,
                cmd.account_id,
                RejectCode.UNKNOWN_ORDER,
                "Unknown order sent: no such open order in this market",
            )
            return
        self._cancel_one(order)
        self._post_trade()

    def _cancel_one(self, order: Order) -> None:
        self._unbook(order, self.books[order.market])
        self._events.append(
            OrderCanceled(
                ts_ns=self.now_ns,
                order_id=order.order_id,
                account_id=order.account_id,
                market=order.market,
                leaves_lots=order.leaves_lots,
            )
        )

    def _cancel_all(self, cmd: CancelAllOrders) -> None:
        found = self._lookup(cmd)
        if found is None:
            return
        account, _spec = found
        position = account.positions.get(cmd.market)
        if position is None:
            return
        for _, order in sorted(position.open_orders.items()):
            self._cancel_one(order)
        self._post_trade()

    def _amend(self, cmd: AmendOrder) -> None:
        found = self._lookup(cmd)
        if found is None:
            return
        account, spec = found
        order_for_mode = self._find_order(account, cmd.market, cmd.order_id, cmd.client_order_id)
        refusal = self._mode_refusal(cmd.market, order_for_mode is not None and order_for_mode.reduce_only)
        if refusal is not None:
            self._reject_order(cmd, refusal[0], refusal[1], cmd.order_id)
            return
        order = self._find_order(account, cmd.market, cmd.order_id, cmd.client_order_id)
        if order is None:
            self._reject_order(
                cmd, RejectCode.ORDER_NOT_FOUND, "Order does not exist: no such open order", cmd.order_id
            )
            return
        mark = self.marks[cmd.market]
        new_price = cmd.price_ticks
        new_qty = cmd.qty_lots
        position = account.positions[cmd.market]
        if order.reduce_only:
            # as at placement: a reduce-only order never exceeds the position it closes
            new_qty = min(new_qty, order.filled_lots + abs(position.qty_lots))
        if new_price == order.price_ticks and new_qty == order.qty_lots:
            self._reject_order(
                cmd, RejectCode.AMEND_NOTHING, "No need to modify the order: nothing changed", order.order_id
            )
            return
        refusal = self._price_filter(spec, order.side, new_price, mark)
        if refusal is None:
            if new_qty <= order.filled_lots:
                refusal = (
                    RejectCode.AMEND_BELOW_FILLED,
                    f"new quantity must exceed the {order.filled_lots} lots already filled",
                )
            elif new_qty > spec.max_qty_lots:
                refusal = (
                    RejectCode.QTY_ABOVE_MAX,
                    f"quantity is greater than max_qty ({spec.max_qty_lots} lots)",
                )
            elif new_qty < spec.min_qty_lots:
                refusal = RejectCode.PRICE_FILTER, "Filter failure: LOT_SIZE (quantity below min_qty)"
            elif (
                not order.reduce_only and new_price * new_qty * spec.contract_atoms < spec.min_notional_atoms
            ):
                refusal = (
                    RejectCode.MIN_NOTIONAL,
                    f"Order's notional must be no smaller than {self._money(spec.min_notional_atoms)}",
                )
        book = self.books[cmd.market]
        crosses = False
        if refusal is None:
            best = book.opposite(order.side).best_price()
            crosses = best is not None and (best - new_price) * order.side <= 0
            if crosses and order.tif is TimeInForce.GTX:
                refusal = RejectCode.POST_ONLY_WOULD_TAKE, "the amended post-only order would trade at once"
        new_leaves = new_qty - order.filled_lots
        if refusal is None and not order.reduce_only:
            refusal = self._margin_refusal(
                account,
                position,
                spec,
                order.side,
                new_price,
                new_leaves,
                order.leaves_lots,
                order.price_ticks,
            )
        if refusal is None:
            refusal = self._bankruptcy_refusal(
                account, position, spec, order.side, new_price, new_leaves, order.tif
            )
        if refusal is not None:
            self._reject_order(cmd, refusal[0], refusal[1], order.order_id)
            return
        keep_priority = new_price == order.price_ticks and new_qty < order.qty_lots
        if keep_priority:
            if not order.reduce_only:
                position.add_exposure(order, new_qty - order.qty_lots, spec.contract_atoms)
            order.qty_lots = new_qty
        else:
            self._unbook(order, book)
            order.price_ticks = new_price
            order.qty_lots = new_qty
        self._events.append(
            OrderAmended(
                ts_ns=self.now_ns,
                order_id=order.order_id,
                account_id=order.account_id,
                market=order.market,
                price_ticks=new_price,
                qty_lots=new_qty,
                leaves_lots=order.leaves_lots,
                priority_kept=keep_priority,
                reason="CLIENT",
            )
        )
        self._touched[position] = None
        if keep_priority:
            self._trim_reduce_only(position)
            self._post_trade()
            return
        if crosses:
            self._execute(order, book, spec, position)
        else:
            self._book(order, book)
            self._trim_reduce_only(position)
            self._post_trade()

    # ------------------------------------------------------------------ settings

    def _set_leverage(self, cmd: SetLeverage) -> None:
        found = self._lookup(cmd)
        if found is None:
            return
        account, spec = found
        if not 1 <= cmd.leverage <= spec.max_leverage:
            self._reject_command(
                cmd,
                cmd.account_id,
                RejectCode.LEVERAGE_INVALID,
                f"Leverage {cmd.leverage} is not valid: use 1 to {spec.max_leverage}",
            )
            return
        position = self._position(account, cmd.market)
        cap = spec.max_notional_at_leverage(cmd.leverage)
        worst = position.worst_case_notional(self.marks.get(cmd.market, 0), spec.contract_atoms)
        if worst > cap:
            self._reject_command(
                cmd,
                cmd.account_id,
                RejectCode.MAX_POSITION_AT_LEVERAGE,
                f"position and open orders ({self._money(worst)}) exceed the maximum of {self._money(cap)} at {cmd.leverage}x",
            )
            return
        old = position.leverage
        position.leverage = cmd.leverage
        order_margin_before = position.order_margin_atoms
        position.order_margin_atoms = position.required_order_margin()
        if cmd.leverage < old:
            if position.is_isolated and position.qty_lots:
                risk = position_risk(position, spec, self.marks[cmd.market])
                short = risk.initial_margin_atoms - position.isolated_margin_atoms
                if short > 0:
                    position.leverage = old
                    position.order_margin_atoms = order_margin_before
                    self._reject_command(
                        cmd,
                        cmd.account_id,
                        RejectCode.MARGIN_INSUFFICIENT,
                        f"isolated margin is {self._money(short)} short of the initial margin at {cmd.leverage}x;"
                        " add isolated margin first",
                    )
                    return
            if self.risk(account.account_id).available_atoms < 0:
                position.leverage = old
                position.order_margin_atoms = order_margin_before
                self._reject_command(
                    cmd,
                    cmd.account_id,
                    RejectCode.MARGIN_INSUFFICIENT,
                    f"Margin is insufficient for {cmd.leverage}x: the available balance would fall below zero",
                )
                return
        self._events.append(
            LeverageChanged(
                ts_ns=self.now_ns,
                account_id=account.account_id,
                market=cmd.market,
                leverage=cmd.leverage,
                max_notional_atoms=cap,
            )
        )

    def _set_margin_mode(self, cmd: SetMarginMode) -> None:
        found = self._lookup(cmd)
        if found is None:
            return
        account, _spec = found
        position = self._position(account, cmd.market)
        if position.margin_mode is cmd.mode:
            self._reject_command(
                cmd, cmd.account_id, RejectCode.MARGIN_TYPE_UNCHANGED, "No need to change margin type."
            )
            return
        if position.open_orders:
            self._reject_command(
                cmd,
                cmd.account_id,
                RejectCode.MARGIN_TYPE_OPEN_ORDERS,
                "Margin type cannot be changed if there exists open orders.",
            )
            return
        if position.qty_lots:
            self._reject_command(
                cmd,
                cmd.account_id,
                RejectCode.MARGIN_TYPE_POSITION,
                "Margin type cannot be changed if there exists position.",
            )
            return
        if position.isolated_margin_atoms:
            account.credit(self.asset, position.isolated_margin_atoms)
            position.isolated_margin_atoms = 0
        position.margin_mode = cmd.mode
        self._events.append(
            MarginModeChanged(
                ts_ns=self.now_ns, account_id=account.account_id, market=cmd.market, mode=cmd.mode
            )
        )

    def _adjust_isolated_margin(self, cmd: AdjustIsolatedMargin) -> None:
        found = self._lookup(cmd)
        if found is None:
            return
        account, spec = found
        position = account.positions.get(cmd.market)
        if position is None or not position.is_isolated:
            self._reject_command(
                cmd,
                cmd.account_id,
                RejectCode.ISOLATED_MARGIN_CROSS,
                "the position is not in isolated margin mode",
            )
            return
        if position.qty_lots == 0:
            self._reject_command(
                cmd,
                cmd.account_id,
                RejectCode.ISOLATED_MARGIN_NO_POSITION,
                "isolated margin can only be adjusted on an open position",
            )
            return
        if cmd.delta_atoms == 0:
            self._reject_command(
                cmd, cmd.account_id, RejectCode.AMOUNT_NOT_POSITIVE, "the amount must not be zero"
            )
            return
        if cmd.delta_atoms > 0:
            available = self.risk(account.account_id).available_atoms
            if cmd.delta_atoms > available:
                self._reject_command(
                    cmd,
                    cmd.account_id,
                    RejectCode.MARGIN_INSUFFICIENT,
                    f"the cross wallet has {self._money(max(available, 0))} available",
                )
                return
        else:
            risk = position_risk(position, spec, self.marks[cmd.market])
            removable = (
                position.isolated_margin_atoms + min(0, risk.unrealized_pnl_atoms) - risk.initial_margin_atoms
            )
            if -cmd.delta_atoms > removable:
                self._reject_command(
                    cmd,
                    cmd.account_id,
                    RejectCode.MARGIN_INSUFFICIENT,
                    f"at most {self._money(max(removable, 0))} can be removed while keeping initial margin",
                )
                return
        account.credit(self.asset, -cmd.delta_atoms)
        position.isolated_margin_atoms += cmd.delta_atoms
        self.risk_dirty[account.account_id] = None
        self._events.append(
            IsolatedMarginAdjusted(
                ts_ns=self.now_ns,
                account_id=account.account_id,
                market=cmd.market,
                delta_atoms=cmd.delta_atoms,
                isolated_margin_atoms=position.isolated_margin_atoms,
            )
        )

    # ------------------------------------------------------------------ prices and time

    def _set_mark_price(self, cmd: SetMarkPrice) -> None:
        spec = self.specs.get(cmd.market)
        if spec is None:
            self._reject_command(
                cmd, None, RejectCode.BAD_SYMBOL, f"market {cmd.market} is not listed on this venue"
            )
            return
        if cmd.mark_ticks <= 0 or cmd.index_ticks <= 0:
            self._reject_command(
                cmd, None, RejectCode.PRICE_NOT_POSITIVE, "index and mark prices must be positive"
            )
            return
        if self.pricing.priced(cmd.market):
            self._reject_command(
                cmd,
                None,
                RejectCode.MARK_FROM_INDEX,
                f"market {cmd.market} takes its mark from its index sources; send SubmitSpotQuote instead",
            )
            return
        band = spec.risk.mark_index_band_e8
        mark_ticks = clamp_to_index_band(cmd.mark_ticks, cmd.index_ticks, band)
        self.set_mark(cmd.market, cmd.index_ticks, mark_ticks)
        self._events.append(
            MarkPriceSet(
                ts_ns=self.now_ns, market=cmd.market, index_ticks=cmd.index_ticks, mark_ticks=mark_ticks
            )
        )
        if mark_ticks != cmd.mark_ticks:
            self._events.append(
                MarkClamped(
                    ts_ns=self.now_ns,
                    market=cmd.market,
                    as_of_ns=self.now_ns,
                    index_ticks=cmd.index_ticks,
                    raw_mark_ticks=cmd.mark_ticks,
                    mark_ticks=mark_ticks,
                    band_e8=band,
                )
            )

    def _set_market_mode(self, cmd: SetMarketMode) -> None:
        spec = self.specs.get(cmd.market)
        if spec is None:
            self._reject_command(
                cmd, None, RejectCode.BAD_SYMBOL, f"market {cmd.market} is not listed on this venue"
            )
            return
        previous = self.modes[cmd.market]
        if previous is MarketMode.SETTLED:
            self._reject_command(
                cmd, None, RejectCode.MARKET_SETTLED, f"market {cmd.market} is settled; its mode is final"
            )
            return
        if cmd.mode is MarketMode.SETTLED:
            price = cmd.settle_price_ticks
            if price is None or not spec.min_price_ticks <= price <= spec.max_price_ticks:
                self._reject_command(
                    cmd, None, RejectCode.BAD_PARAMETER, "settling a market needs a valid settle_price_ticks"
                )
                return
            self._settle_market(cmd.market, spec, price)
        elif cmd.settle_price_ticks is not None:
            self._reject_command(
                cmd, None, RejectCode.BAD_PARAMETER, "settle_price_ticks goes only with mode SETTLED"
            )
            return
        self.modes[cmd.market] = cmd.mode
        self._events.append(
            MarketModeChanged(ts_ns=self.now_ns, market=cmd.market, mode=cmd.mode, previous=previous)
        )
        if previous is MarketMode.HALTED:
            self.price_moved(cmd.market)  # trading resumes: paused liquidations there are due again

    def _update_market_params(self, cmd: UpdateMarketParams) -> None:
        spec = self.specs.get(cmd.market)
        if spec is None:
            self._reject_command(
                cmd, None, RejectCode.BAD_SYMBOL, f"market {cmd.market} is not listed on this venue"
            )
            return
        if self.modes[cmd.market] is MarketMode.SETTLED:
            self._reject_command(
                cmd,
                None,
                RejectCode.MARKET_SETTLED,
                f"market {cmd.market} is settled; it has no live parameters",
            )
            return
        if not cmd.params:
            self._reject_command(cmd, None, RejectCode.BAD_PARAMETER, "no parameter to change was given")
            return
        atom = self.config.settlement.atom
        try:
            changed = with_market_params(spec, atom, cmd.params)
        except ConfigError as exc:
            self._reject_command(cmd, None, RejectCode.BAD_PARAMETER, str(exc))
            return
        old, new = market_params(spec, atom), market_params(changed, atom)
        configured = market_params(self.config.markets[cmd.market], atom)
        self.specs[cmd.market] = changed
        overrides = {name: text for name, text in sorted(new.items()) if text != configured[name]}
        if overrides:
            self.param_overrides[cmd.market] = overrides
        else:
            self.param_overrides.pop(cmd.market, None)
        self._events.append(
            MarketParamsChanged(
                ts_ns=self.now_ns,
                market=cmd.market,
                changes=tuple(ParamChange(param=n, old=old[n], new=new[n]) for n in sorted(cmd.params)),
                operator=cmd.operator,
            )
        )

    def _settle_market(self, market: MarketId, spec: MarketSpec, price_ticks: int) -> None:
        """Cancel every order and close every position at ``price_ticks``, without fees.

        Long and short open interest are equal, so the realised PnL of all
        positions sums to minus their total cost: conservation holds exactly.
        A settlement price beyond an account's bankruptcy price leaves it below
        zero: :meth:`_share_settlement_deficits` pays that back.
        """
        self.triggers.expire_market(market)
        book = self.books[market]
        for side in (book.bids, book.asks):
            for order in list(side.orders()):
                self._cancel_one(order)
        contract = spec.contract_atoms
        profits: dict[AccountId, int] = {}
        for account_id in sorted(self.accounts):
            account = self.accounts[account_id]
            position = account.positions.get(market)
            if position is None or position.qty_lots == 0:
                continue
            qty = position.qty_lots
            closing_side = Side.SELL if qty > 0 else Side.BUY
            value = formulas.notional_atoms(price_ticks, abs(qty), contract)
            realized, oi_delta = apply_position_change(
                account, position, self.asset, closing_side, abs(qty), value
            )
            self.open_interest_lots[market] += oi_delta
            self.risk_dirty[account_id] = None
            if realized > 0 and account_id != INSURANCE_ACCOUNT:
                profits[account_id] = realized
            self._events.append(
                PositionSettled(
                    ts_ns=self.now_ns,
                    account_id=account_id,
                    market=market,
                    qty_lots=qty,
                    price_ticks=price_ticks,
                    realized_pnl_atoms=realized,
                )
            )
        self._post_trade()
        self._share_settlement_deficits(market, profits)

    def _share_settlement_deficits(self, market: MarketId, profits: dict[AccountId, int]) -> None:
        """Pay back every account a settlement left below zero: the fund first, the winners after.

        An account holding nothing with a negative wallet is covered by the insurance fund as far as
        the fund's equity goes (``DEFICIT_COVER``); the rest is taken from the accounts that realised
        a profit in this settlement, pro rata to that profit (largest remainder, ties by account id)
        and never more than it, as auto-deleveraging takes a shortfall from the winning side
        (``SettlementLossShared``). The fund never pays beyond its equity.
        """
        deficits: dict[AccountId, int] = {}
        for account_id in sorted(self.accounts):
            if account_id == INSURANCE_ACCOUNT:
                continue
            account = self.accounts[account_id]
            wallet = account.balance(self.asset)
            if wallet < 0 and all(
                not p.qty_lots and not p.isolated_margin_atoms for p in account.positions.values()
            ):
                covered = min(-wallet, max(0, fund_equity(self)))
                move_cash(self, account, market, -covered, "DEFICIT_COVER", False)
                if covered < -wallet:
                    deficits[account_id] = -wallet - covered
        if not deficits or not profits:
            return
        pool = sum(profits.values())
        total = min(sum(deficits.values()), pool)
        shares = {account_id: total * profit // pool for account_id, profit in profits.items()}
        short = total - sum(shares.values())
        by_remainder = sorted(profits, key=lambda a: (-(total * profits[a] % pool), a))
        for account_id in by_remainder[:short]:
            shares[account_id] += 1
        for account_id, share in shares.items():
            if share:
                self.accounts[account_id].credit(self.asset, -share)
                self.risk_dirty[account_id] = None
                self._events.append(
                    SettlementLossShared(
                        ts_ns=self.now_ns, market=market, account_id=account_id, amount_atoms=-share
                    )
                )
        for account_id, deficit in deficits.items():
            paid = min(deficit, total)
            total -= paid
            if paid:
                self.accounts[account_id].credit(self.asset, paid)
                self._events.append(
                    SettlementLossShared(
                        ts_ns=self.now_ns, market=market, account_id=account_id, amount_atoms=paid
                    )
                )

    def _advance_clock(self, cmd: AdvanceClock) -> None:
        self._events.append(ClockAdvanced(ts_ns=self.now_ns))


class _Swept:
    """A position as a sweep being planned would leave it (FOK): figures, cross-wallet change, worst release."""

    __slots__ = (
        "cost_atoms",
        "isolated",
        "isolated_margin_atoms",
        "leverage",
        "qty_lots",
        "released_atoms",
        "wallet_atoms",
    )

    def __init__(
        self,
        qty_lots: int,
        cost_atoms: int,
        isolated_margin_atoms: int,
        isolated: bool,
        leverage: int,
        wallet_atoms: int,
        released_atoms: int,
    ) -> None:
        self.qty_lots = qty_lots
        self.cost_atoms = cost_atoms
        self.isolated_margin_atoms = isolated_margin_atoms
        self.isolated = isolated
        self.leverage = leverage
        self.wallet_atoms = wallet_atoms
        self.released_atoms = released_atoms

    @staticmethod
    def of(position: Position) -> _Swept:
        return _Swept(
            position.qty_lots,
            position.cost_atoms,
            position.isolated_margin_atoms,
            position.margin_mode is MarginMode.ISOLATED,
            position.leverage,
            0,
            0,
        )

    def then(self, side: Side, lots: int, value_atoms: int, fee_atoms: int) -> _Swept:
        """The state after one more fill, as :func:`~perpx.engine.accounts.position_change` computes it."""
        change = position_change(
            self.qty_lots,
            self.cost_atoms,
            self.isolated_margin_atoms,
            self.isolated,
            self.leverage,
            side,
            lots,
            value_atoms,
            fee_atoms,
        )
        return _Swept(
            change.qty_lots,
            change.cost_atoms,
            change.isolated_margin_atoms,
            self.isolated,
            self.leverage,
            self.wallet_atoms + change.wallet_atoms,
            min(self.released_atoms, change.released_atoms),
        )
