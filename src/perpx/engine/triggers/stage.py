"""The conditional-order book and its stage: placing, cancelling, firing, snapshot and restore."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from perpx.engine import formulas
from perpx.engine.codes import RejectCode
from perpx.engine.commands import (
    CancelAllConditionalOrders,
    CancelConditionalOrder,
    ConditionalType,
    PlaceConditionalOrder,
    PlaceOrder,
    StpMode,
    TimeInForce,
    WorkingType,
)
from perpx.engine.config import MarketSpec
from perpx.engine.events import (
    CommandRejected,
    ConditionalExpireReason,
    ConditionalOrderAccepted,
    ConditionalOrderCanceled,
    ConditionalOrderExpired,
    ConditionalOrderRejected,
    ConditionalOrderTriggered,
    OrderRejected,
)
from perpx.engine.values import (
    AccountId,
    AlgoId,
    ClientAlgoId,
    MarketId,
    OrderId,
    Side,
    format_units,
)

if TYPE_CHECKING:
    from perpx.engine.core import Core
from perpx.engine.triggers.index import ConditionalIndex, TriggerIndex, by_algo_id
from perpx.engine.triggers.order import (
    CLOSE_POSITION_TYPES,
    FALL,
    LIMIT_TYPES,
    MAX_CALLBACK_RATE_E8,
    MIN_CALLBACK_RATE_E8,
    RISE,
    TRAILING,
    ConditionalOrder,
    level_direction,
    protection_blocks,
    reached,
)


class Triggers:
    """Every untriggered conditional order of the venue, its commands, and the stage that fires them.

    Registered as the engine's first consequence stage: after a command moved
    a market's mark or last price, :meth:`run` fires what is due there.
    """

    def __init__(self, engine: Core) -> None:
        self.engine = engine
        self.orders: dict[AlgoId, ConditionalOrder] = {}
        self.by_account: dict[AccountId, dict[AlgoId, ConditionalOrder]] = {}
        self.client_ids: dict[AccountId, dict[ClientAlgoId, AlgoId]] = {}
        self.counts: dict[tuple[AccountId, MarketId], int] = {}
        self.index: ConditionalIndex = TriggerIndex()
        self.next_algo_id = 1

    def handlers(self) -> dict[type, Callable[[Any], None]]:
        """The engine commands this module handles."""
        return {
            PlaceConditionalOrder: self._place,
            CancelConditionalOrder: self._cancel,
            CancelAllConditionalOrders: self._cancel_all,
        }

    # ------------------------------------------------------------------ queries

    def open_orders(self, account_id: AccountId, market: MarketId | None = None) -> list[ConditionalOrder]:
        """The account's untriggered conditional orders (in ``market`` if given), in ``algo_id`` order."""
        mine = self.by_account.get(account_id, {})
        return [mine[a] for a in sorted(mine) if market is None or mine[a].market == market]

    def find(
        self,
        account_id: AccountId,
        algo_id: AlgoId | None = None,
        client_algo_id: ClientAlgoId | None = None,
    ) -> ConditionalOrder | None:
        """One of the account's untriggered conditional orders, by id or client id."""
        if algo_id is None and client_algo_id is not None:
            algo_id = self.client_ids.get(account_id, {}).get(client_algo_id)
        if algo_id is None:
            return None
        return self.by_account.get(account_id, {}).get(algo_id)

    def price_of(self, market: MarketId, working_type: WorkingType) -> int | None:
        """The current price a ``working_type`` order in ``market`` watches (``None`` before the first)."""
        if working_type is WorkingType.MARK_PRICE:
            return self.engine.marks.get(market)
        return self.engine.last_trade_ticks.get(market)

    # ------------------------------------------------------------------ place

    def _place(self, cmd: PlaceConditionalOrder) -> None:
        engine = self.engine
        account = engine.accounts.get(cmd.account_id)
        spec = engine.specs.get(cmd.market)
        if account is None:
            self._refuse(cmd, RejectCode.UNKNOWN_ACCOUNT, f"account {cmd.account_id} does not exist")
            return
        if spec is None:
            self._refuse(cmd, RejectCode.BAD_SYMBOL, f"market {cmd.market} is not listed on this venue")
            return
        refusal = engine.mode_refusal(cmd.market, cmd.reduce_only or cmd.close_position)
        if refusal is None:
            refusal = self._shape_refusal(cmd, spec)
        if refusal is None:
            refusal = self._account_refusal(cmd, spec)
        reference = self.price_of(cmd.market, cmd.working_type)
        if refusal is None and reference is None:
            which = "mark price" if cmd.working_type is WorkingType.MARK_PRICE else "last trade price"
            refusal = (
                RejectCode.MARKET_CLOSED,
                f"market {cmd.market} has no {which} yet, so a {cmd.working_type.value} trigger"
                " cannot be checked against it",
            )
        if refusal is not None:
            self._refuse(cmd, *refusal)
            return
        assert reference is not None
        refusal = self._immediate_refusal(cmd, spec, reference)
        if refusal is not None:
            self._refuse(cmd, *refusal)
            return

        order = ConditionalOrder(
            AlgoId(self.next_algo_id),
            cmd.account_id,
            cmd.market,
            cmd.side,
            cmd.order_type,
            cmd.qty_lots,
            cmd.trigger_price_ticks,
            cmd.price_ticks,
            cmd.tif,
            cmd.working_type,
            cmd.reduce_only,
            cmd.close_position,
            cmd.price_protect,
            cmd.activation_price_ticks,
            cmd.callback_rate_e8,
            cmd.client_algo_id,
            cmd.stp,
            engine.now_ns,
        )
        self.next_algo_id += 1
        if order.is_trailing and order.activation_price_ticks is None:
            order.activated = True  # active from placement, its extreme starts at the current price
            order.extreme_ticks = reference
        self._remember(order)
        engine.emit(
            ConditionalOrderAccepted(
                ts_ns=engine.now_ns,
                algo_id=order.algo_id,
                account_id=order.account_id,
                market=order.market,
                side=order.side,
                order_type=order.order_type,
                qty_lots=order.qty_lots,
                trigger_price_ticks=order.trigger_price_ticks,
                price_ticks=order.price_ticks,
                tif=order.tif,
                working_type=order.working_type,
                reduce_only=order.reduce_only,
                close_position=order.close_position,
                price_protect=order.price_protect,
                activation_price_ticks=order.activation_price_ticks,
                callback_rate_e8=order.callback_rate_e8,
                client_algo_id=order.client_algo_id,
                stp=order.stp,
                reference_ticks=reference,
            )
        )

    def _shape_refusal(self, cmd: PlaceConditionalOrder, spec: MarketSpec) -> tuple[RejectCode, str] | None:
        """Refuse parameters that do not fit the order type, or prices and sizes outside the filters."""
        kind = cmd.order_type.value
        is_limit = cmd.order_type in LIMIT_TYPES
        if cmd.order_type is TRAILING:
            if cmd.trigger_price_ticks is not None:
                return (
                    RejectCode.BAD_PARAMETER,
                    f"a {kind} order takes activation_price and callback_rate, not a trigger price",
                )
            rate = cmd.callback_rate_e8
            if rate is None or not MIN_CALLBACK_RATE_E8 <= rate <= MAX_CALLBACK_RATE_E8:
                return (
                    RejectCode.BAD_PARAMETER,
                    f"a {kind} order needs a callback rate from 0.1% to 10%"
                    f" ({MIN_CALLBACK_RATE_E8} to {MAX_CALLBACK_RATE_E8} e8)",
                )
        else:
            if cmd.trigger_price_ticks is None:
                return RejectCode.BAD_PARAMETER, f"a {kind} order needs a trigger price"
            if cmd.activation_price_ticks is not None or cmd.callback_rate_e8 is not None:
                return (
                    RejectCode.BAD_PARAMETER,
                    "activation_price and callback_rate go only with TRAILING_STOP_MARKET",
                )
        if is_limit and cmd.price_ticks is None:
            return RejectCode.BAD_PARAMETER, f"a {kind} order needs a limit price"
        if not is_limit:
            if cmd.price_ticks is not None:
                return RejectCode.BAD_PARAMETER, f"a {kind} order takes no limit price"
            if cmd.tif is TimeInForce.GTX:
                return (
                    RejectCode.BAD_PARAMETER,
                    f"a {kind} order places a MARKET order: it cannot be post-only",
                )
        for what, ticks in (
            ("trigger price", cmd.trigger_price_ticks),
            ("activation price", cmd.activation_price_ticks),
            ("price", cmd.price_ticks),
        ):
            if ticks is not None:
                refusal = self._price_range_refusal(spec, what, ticks)
                if refusal is not None:
                    return refusal
        if cmd.close_position:
            if cmd.order_type not in CLOSE_POSITION_TYPES:
                return (
                    RejectCode.CLOSE_POSITION_TYPE,
                    f"close_position goes only with STOP_MARKET or TAKE_PROFIT_MARKET, not {kind}",
                )
            if cmd.qty_lots is not None:
                return (
                    RejectCode.QTY_WITH_CLOSE_POSITION,
                    "a close_position order closes the whole position: send it without a quantity",
                )
            if cmd.reduce_only:
                return (
                    RejectCode.REDUCE_ONLY_CONFLICT,
                    "a close_position order only ever reduces: send it without reduce_only",
                )
            return None
        qty = cmd.qty_lots
        if qty is None:
            return RejectCode.BAD_PARAMETER, f"a {kind} order needs a quantity (or close_position)"
        if qty <= 0:
            return RejectCode.QTY_NOT_POSITIVE, "quantity must be greater than zero"
        if qty % spec.lot_step_lots:
            return (
                RejectCode.QTY_NOT_STEP,
                f"Quantity not increased by step size: the quantity must be a multiple of {spec.filter_lot_size:f}"
                " (or use close_position)",
            )
        if qty < spec.min_qty_lots:
            return (
                RejectCode.PRICE_FILTER,
                f"Filter failure: LOT_SIZE (quantity below min_qty {format_units(spec.min_qty_lots, spec.lot_size)})",
            )
        limit = spec.max_qty_lots if is_limit else spec.market_max_qty_lots
        if qty > limit:
            name = "max_qty" if is_limit else "market_max_qty"
            return (
                RejectCode.QTY_ABOVE_MAX,
                f"quantity is greater than {name} ({format_units(limit, spec.lot_size)})",
            )
        if not cmd.reduce_only:
            at = cmd.price_ticks if is_limit else (cmd.trigger_price_ticks or cmd.activation_price_ticks)
            if at is not None:
                notional = formulas.notional_atoms(at, qty, spec.contract_atoms)
                if notional < spec.min_notional_atoms:
                    return (
                        RejectCode.MIN_NOTIONAL,
                        f"Order's notional must be no smaller than {self.engine.money(spec.min_notional_atoms)}"
                        " (unless you choose reduce only)",
                    )
        return None

    def _price_range_refusal(self, spec: MarketSpec, what: str, ticks: int) -> tuple[RejectCode, str] | None:
        if ticks <= 0:
            return RejectCode.PRICE_NOT_POSITIVE, f"{what} must be greater than zero"
        if ticks % spec.tick_step_ticks:
            return (
                RejectCode.PRICE_NOT_TICK,
                f"Price not increased by tick size: the {what} must be a multiple of {spec.filter_tick_size:f}",
            )
        if ticks < spec.min_price_ticks:
            return (
                RejectCode.PRICE_BELOW_MIN,
                f"{what} is below the minimum of {format_units(spec.min_price_ticks, spec.tick_size)}",
            )
        if ticks > spec.max_price_ticks:
            return (
                RejectCode.PRICE_ABOVE_MAX,
                f"{what} is above the maximum of {format_units(spec.max_price_ticks, spec.tick_size)}",
            )
        return None

    def _account_refusal(self, cmd: PlaceConditionalOrder, spec: MarketSpec) -> tuple[RejectCode, str] | None:
        """Refuse a duplicate or malformed client algo id, or one order past the account's limit."""
        limit = spec.risk.max_algo_orders
        if self.counts.get((cmd.account_id, cmd.market), 0) >= limit:
            return (
                RejectCode.MAX_ALGO_ORDERS,
                f"Reach max stop order limit: {limit} open conditional orders in {cmd.market};"
                " cancel one first",
            )
        client = cmd.client_algo_id
        if client is not None:
            if not client or len(client) > 36:
                return RejectCode.BAD_PARAMETER, "client algo id must be 1 to 36 characters"
            if client in self.client_ids.get(cmd.account_id, {}):
                return (
                    RejectCode.DUPLICATE_CLIENT_ORDER_ID,
                    f"client algo id {client} is already used by an open conditional order",
                )
        return None

    def _immediate_refusal(
        self, cmd: PlaceConditionalOrder, spec: MarketSpec, reference: int
    ) -> tuple[RejectCode, str] | None:
        """Refuse a trigger (or trailing activation) that the current price already reaches."""
        if cmd.order_type is TRAILING:
            if cmd.activation_price_ticks is None:
                return None
            level, direction = cmd.activation_price_ticks, FALL if cmd.side is Side.BUY else RISE
            what = "activation price"
        else:
            assert cmd.trigger_price_ticks is not None
            level, direction = cmd.trigger_price_ticks, level_direction(cmd.order_type, cmd.side)
            what = "trigger price"
        if not reached(level, direction, reference):
            return None
        need = "above" if direction == RISE else "below"
        watched = "mark price" if cmd.working_type is WorkingType.MARK_PRICE else "last price"
        return (
            RejectCode.ORDER_WOULD_TRIGGER,
            f"Order would immediately trigger: the {what} of a {cmd.side.name} {cmd.order_type.value}"
            f" must be {need} the current {watched} {format_units(reference, spec.tick_size)}",
        )

    def _refuse(self, cmd: PlaceConditionalOrder, code: RejectCode, message: str) -> None:
        engine = self.engine
        engine.emit(
            ConditionalOrderRejected(
                ts_ns=engine.now_ns,
                account_id=cmd.account_id,
                market=cmd.market,
                client_algo_id=cmd.client_algo_id,
                algo_id=None,
                code=code,
                message=message,
            )
        )

    # ------------------------------------------------------------------ cancel

    def _cancel(self, cmd: CancelConditionalOrder) -> None:
        refusal = self._scope_refusal(cmd)
        if refusal is None and cmd.algo_id is None and cmd.client_algo_id is None:
            refusal = RejectCode.BAD_PARAMETER, "give an algo id or a client algo id"
        order = None
        if refusal is None:
            order = self.find(cmd.account_id, cmd.algo_id, cmd.client_algo_id)
            if order is None or order.market != cmd.market:
                refusal = (
                    RejectCode.UNKNOWN_ORDER,
                    "Unknown order sent: no such open conditional order in this market",
                )
        if refusal is not None:
            self._reject_command(cmd, *refusal)
            return
        assert order is not None
        self.cancel_one(order)

    def _cancel_all(self, cmd: CancelAllConditionalOrders) -> None:
        refusal = self._scope_refusal(cmd)
        if refusal is not None:
            self._reject_command(cmd, *refusal)
            return
        for order in self.open_orders(cmd.account_id, cmd.market):
            self.cancel_one(order)

    def cancel_one(self, order: ConditionalOrder) -> None:
        """Cancel an untriggered order (a client's cancel, or the venue's, e.g. before a liquidation)."""
        self.index.remove(order)
        self._forget(order)
        engine = self.engine
        engine.emit(
            ConditionalOrderCanceled(
                ts_ns=engine.now_ns,
                algo_id=order.algo_id,
                account_id=order.account_id,
                market=order.market,
                client_algo_id=order.client_algo_id,
            )
        )

    def expire_market(self, market: MarketId) -> None:
        """Expire every untriggered order in ``market`` (it is being settled), in ``algo_id`` order."""
        engine = self.engine
        for algo_id in sorted(self.orders):
            order = self.orders[algo_id]
            if order.market != market:
                continue
            self.index.remove(order)
            self._forget(order)
            engine.emit(
                ConditionalOrderExpired(
                    ts_ns=engine.now_ns,
                    algo_id=order.algo_id,
                    account_id=order.account_id,
                    market=market,
                    reason=ConditionalExpireReason.MARKET_SETTLED,
                    triggered_by_ticks=None,
                    message=f"market {market} was settled before the order triggered",
                )
            )

    def _scope_refusal(
        self, cmd: CancelConditionalOrder | CancelAllConditionalOrders
    ) -> tuple[RejectCode, str] | None:
        if cmd.account_id not in self.engine.accounts:
            return RejectCode.UNKNOWN_ACCOUNT, f"account {cmd.account_id} does not exist"
        if cmd.market not in self.engine.specs:
            return RejectCode.BAD_SYMBOL, f"market {cmd.market} is not listed on this venue"
        return None

    def _reject_command(
        self, cmd: CancelConditionalOrder | CancelAllConditionalOrders, code: RejectCode, message: str
    ) -> None:
        engine = self.engine
        engine.emit(
            CommandRejected(
                ts_ns=engine.now_ns,
                account_id=cmd.account_id,
                command=type(cmd).__name__,
                code=code,
                message=message,
            )
        )

    # ------------------------------------------------------------------ the consequence stage

    def run(self, moved: Mapping[MarketId, None]) -> bool:
        """Fire the orders due in the ``moved`` markets; True if any fired (or expired on firing)."""
        engine = self.engine
        index = self.index
        acted = False
        for market in tuple(moved):
            if not index.holds(market):
                continue
            mark = engine.marks.get(market)
            last = engine.last_trade_ticks.get(market)
            protected_too = not protection_blocks(mark, last, engine.specs[market].risk.trigger_protect_e8)
            due: list[ConditionalOrder] = []
            if mark is not None:
                due.extend(index.observe(market, WorkingType.MARK_PRICE, mark, protected_too))
            if last is not None:
                due.extend(index.observe(market, WorkingType.CONTRACT_PRICE, last, protected_too))
            if not due:
                continue
            due.sort(key=by_algo_id)
            for order in due:
                price = mark if order.working_type is WorkingType.MARK_PRICE else last
                assert price is not None
                self._fire(order, price)
            acted = True
        return acted

    def _fire(self, order: ConditionalOrder, price: int) -> None:
        """Place the order's child through the engine's normal path, or expire it if there is nothing to do."""
        self._forget(order)
        engine = self.engine
        events = engine.events
        spec = engine.specs[order.market]
        level = order.trailing_level() if order.is_trailing else order.trigger_price_ticks
        assert level is not None
        qty = order.qty_lots
        reduce_only = order.reduce_only
        if order.close_position:
            position = engine.accounts[order.account_id].positions.get(order.market)
            held = 0 if position is None else position.qty_lots
            if held * order.side >= 0:  # a SELL closes a long, a BUY a short
                closes = "long" if order.side is Side.SELL else "short"
                events.append(
                    ConditionalOrderExpired(
                        ts_ns=engine.now_ns,
                        algo_id=order.algo_id,
                        account_id=order.account_id,
                        market=order.market,
                        reason=ConditionalExpireReason.NO_POSITION,
                        triggered_by_ticks=price,
                        message=f"triggered at {format_units(price, spec.tick_size)}, but there was no"
                        f" {closes} position to close",
                    )
                )
                return
            qty = min(abs(held), spec.market_max_qty_lots)
            reduce_only = True
        assert qty is not None
        child = PlaceOrder(
            ts_ns=engine.now_ns,
            account_id=order.account_id,
            market=order.market,
            side=order.side,
            order_type=order.child_type,
            qty_lots=qty,
            price_ticks=order.price_ticks,
            tif=order.tif,
            reduce_only=reduce_only,
            client_order_id=None,
            stp=order.stp,
        )
        at = len(events)
        child_id = engine.next_order_id
        engine.place(child)
        placed = engine.next_order_id != child_id
        events.insert(
            at,
            ConditionalOrderTriggered(
                ts_ns=engine.now_ns,
                algo_id=order.algo_id,
                account_id=order.account_id,
                market=order.market,
                working_type=order.working_type,
                trigger_price_ticks=level,
                triggered_by_ticks=price,
                order_id=OrderId(child_id) if placed else None,
            ),
        )
        if placed:
            return
        refused = events[-1]
        assert isinstance(refused, OrderRejected), refused
        events.append(
            ConditionalOrderRejected(
                ts_ns=engine.now_ns,
                account_id=order.account_id,
                market=order.market,
                client_algo_id=order.client_algo_id,
                algo_id=order.algo_id,
                code=refused.code,
                message=f"triggered at {format_units(price, spec.tick_size)}, but the order was refused:"
                f" {refused.message}",
            )
        )

    # ------------------------------------------------------------------ bookkeeping

    def _remember(self, order: ConditionalOrder) -> None:
        self.orders[order.algo_id] = order
        self.by_account.setdefault(order.account_id, {})[order.algo_id] = order
        scope = (order.account_id, order.market)
        self.counts[scope] = self.counts.get(scope, 0) + 1
        if order.client_algo_id is not None:
            self.client_ids.setdefault(order.account_id, {})[order.client_algo_id] = order.algo_id
        self.index.add(order)

    def _forget(self, order: ConditionalOrder) -> None:
        """Drop ``order`` from every map but the index (which has already let it go)."""
        del self.orders[order.algo_id]
        mine = self.by_account[order.account_id]
        del mine[order.algo_id]
        if not mine:
            del self.by_account[order.account_id]
        scope = (order.account_id, order.market)
        self.counts[scope] -= 1
        if not self.counts[scope]:
            del self.counts[scope]
        if order.client_algo_id is not None:
            clients = self.client_ids[order.account_id]
            del clients[order.client_algo_id]
            if not clients:
                del self.client_ids[order.account_id]

    # ------------------------------------------------------------------ state

    def snapshot(self) -> dict[str, Any]:
        """Canonical plain data: the id counter and every order (with trailing state) by ``algo_id``."""
        rows = []
        for algo_id in sorted(self.orders):
            o = self.orders[algo_id]
            rows.append(
                [
                    o.algo_id,
                    o.account_id,
                    o.market,
                    int(o.side),
                    o.order_type.value,
                    o.qty_lots,
                    o.trigger_price_ticks,
                    o.price_ticks,
                    o.tif.value,
                    o.working_type.value,
                    o.reduce_only,
                    o.close_position,
                    o.price_protect,
                    o.activation_price_ticks,
                    o.callback_rate_e8,
                    o.client_algo_id,
                    o.stp.value,
                    o.ts_ns,
                    o.activated,
                    o.extreme_ticks,
                ]
            )
        return {"next_algo_id": self.next_algo_id, "orders": rows}

    def restore(self, data: Mapping[str, Any]) -> None:
        """Load :meth:`snapshot` data into this (empty) book."""
        assert not self.orders
        self.next_algo_id = data["next_algo_id"]
        for row in data["orders"]:
            order = ConditionalOrder(
                AlgoId(row[0]),
                AccountId(row[1]),
                MarketId(row[2]),
                Side(row[3]),
                ConditionalType(row[4]),
                row[5],
                row[6],
                row[7],
                TimeInForce(row[8]),
                WorkingType(row[9]),
                row[10],
                row[11],
                row[12],
                row[13],
                row[14],
                None if row[15] is None else ClientAlgoId(row[15]),
                StpMode(row[16]),
                row[17],
            )
            order.activated = row[18]
            order.extreme_ticks = row[19]
            self._remember(order)
