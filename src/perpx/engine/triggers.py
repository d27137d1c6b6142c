"""Conditional (algo) orders: the book of untriggered orders and the stage that fires them.

A conditional order (``PlaceConditionalOrder``) waits off the book until a
price of its ``working_type`` (the mark, or the last trade) reaches its
trigger; then it places a plain order through the engine's normal path
(``Core.place``: filters, margin, matching), exactly as if its owner had
sent it at that moment. Binance USDS-M is the model (reference section 9).

Trigger rules
-------------
==========================  ===========================  ===========================
type                        BUY fires when               SELL fires when
==========================  ===========================  ===========================
STOP, STOP_MARKET           price >= trigger             price <= trigger
TAKE_PROFIT(_MARKET)        price <= trigger             price >= trigger
TRAILING_STOP_MARKET        active and price >=          active and price <=
                            ceil(min x (1 + rate))       floor(max x (1 - rate))
==========================  ===========================  ===========================

A trailing stop is *active* from placement (its extreme starts at the current
price) or, with an activation price, from the first observed price at or past
it (BUY: ``<= activation``, SELL: ``>= activation``); from then on its extreme
(the minimum for a BUY, the maximum for a SELL) follows every observed price.
The trailing trigger is rounded *away* from the extreme, so the order fires
only once the price has come back by at least the whole callback rate.

* An order that would fire (or a trailing stop that would activate) at the
  price it is placed against is refused with ``-2021`` "Order would immediately
  trigger", as Binance does; equality counts as firing.
* ``price_protect``: while ``|mark - last| / mark > trigger_protect`` (both
  prices known) such an order ignores prices altogether: it neither fires,
  activates, nor moves its trailing extreme.
* Prices are observed after each command's handler and after every pass of the
  consequence loop, i.e. after each order's fills, not between two fills of one
  order (one order's fills move the last price monotonically, so its final
  price is its extreme).
* Several orders due in one pass fire in ``algo_id`` (placement) order, each
  against the position its predecessors left; their children's trades are seen
  by the next pass, which may fire more (a cascade), until a pass fires nothing.

Efficiency
----------
:class:`TriggerIndex` keeps, per ``(market, working_type, price_protect,
direction)``, a sorted list of ``(key, algo_id)`` with ``key = -direction x
level``, so the orders due at a price are always a *suffix* (found by one
bisect and cut off by one slice). A pass over a market therefore costs
``O(log n + k)`` for ``k`` orders that fire, whatever ``n`` rest; a pending
(not yet active) trailing stop sits in the same lists keyed by its activation
price. Active trailing stops are different: every new extreme moves their
trigger, so they live in small groups per ``(market, working_type,
price_protect, side)``. Each group keeps the range of prices that changes
nothing for any member (no new extreme, nothing fires): a price inside it costs
``O(1)``; a price outside it (a new high for some SELL stop, a new low for some
BUY stop, or a trigger) scans the group, ``O(t)`` for its ``t`` stops. In a
market that keeps making new extremes that is every observation. Markets
holding no conditional order cost ``O(1)``; looking again at unchanged prices
(the confirming pass after one that fired) finds nothing and costs the bisects.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol

from perpx.engine import formulas
from perpx.engine.codes import RejectCode
from perpx.engine.commands import (
    CancelAllConditionalOrders,
    CancelConditionalOrder,
    ConditionalType,
    OrderType,
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
    RATE_SCALE,
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

RISE: Final = 1
"""Direction of a level that fires when the price rises to it (``price >= level``)."""
FALL: Final = -1
"""Direction of a level that fires when the price falls to it (``price <= level``)."""

MIN_CALLBACK_RATE_E8: Final = 100_000
"""0.1%: the smallest trailing callback rate."""
MAX_CALLBACK_RATE_E8: Final = 10_000_000
"""10%: the largest trailing callback rate."""

_LIMIT_TYPES: Final = (ConditionalType.STOP, ConditionalType.TAKE_PROFIT)
_STOP_TYPES: Final = (ConditionalType.STOP, ConditionalType.STOP_MARKET)
_CLOSE_POSITION_TYPES: Final = (ConditionalType.STOP_MARKET, ConditionalType.TAKE_PROFIT_MARKET)
_TRAILING: Final = ConditionalType.TRAILING_STOP_MARKET


class ConditionalOrder:
    """An untriggered conditional order, owned and mutated by the engine only.

    Fixed at placement except ``activated`` and ``extreme_ticks`` (trailing
    stops: whether the stop is active, and the lowest (BUY) or highest (SELL)
    price it has observed since it became active).
    """

    __slots__ = (
        "account_id",
        "activated",
        "activation_price_ticks",
        "algo_id",
        "callback_rate_e8",
        "client_algo_id",
        "close_position",
        "extreme_ticks",
        "market",
        "order_type",
        "price_protect",
        "price_ticks",
        "qty_lots",
        "reduce_only",
        "side",
        "stp",
        "tif",
        "trigger_price_ticks",
        "ts_ns",
        "working_type",
    )

    def __init__(
        self,
        algo_id: AlgoId,
        account_id: AccountId,
        market: MarketId,
        side: Side,
        order_type: ConditionalType,
        qty_lots: int | None,
        trigger_price_ticks: int | None,
        price_ticks: int | None,
        tif: TimeInForce,
        working_type: WorkingType,
        reduce_only: bool,
        close_position: bool,
        price_protect: bool,
        activation_price_ticks: int | None,
        callback_rate_e8: int | None,
        client_algo_id: ClientAlgoId | None,
        stp: StpMode,
        ts_ns: int,
    ) -> None:
        self.algo_id = algo_id
        self.account_id = account_id
        self.market = market
        self.side = side
        self.order_type = order_type
        self.qty_lots = qty_lots
        self.trigger_price_ticks = trigger_price_ticks
        self.price_ticks = price_ticks
        self.tif = tif
        self.working_type = working_type
        self.reduce_only = reduce_only
        self.close_position = close_position
        self.price_protect = price_protect
        self.activation_price_ticks = activation_price_ticks
        self.callback_rate_e8 = callback_rate_e8
        self.client_algo_id = client_algo_id
        self.stp = stp
        self.ts_ns = ts_ns
        self.activated = False
        self.extreme_ticks = 0

    @property
    def is_trailing(self) -> bool:
        return self.order_type is _TRAILING

    @property
    def child_type(self) -> OrderType:
        """The type of the order placed on triggering."""
        return OrderType.LIMIT if self.order_type in _LIMIT_TYPES else OrderType.MARKET

    def pending_level(self) -> tuple[int, int]:
        """``(level, direction)`` that fires a stop / take-profit or activates a pending trailing stop."""
        if self.is_trailing:
            assert self.activation_price_ticks is not None and not self.activated
            return self.activation_price_ticks, FALL if self.side is Side.BUY else RISE
        assert self.trigger_price_ticks is not None
        return self.trigger_price_ticks, level_direction(self.order_type, self.side)

    def trailing_level(self) -> int:
        """The trigger level of an active trailing stop (its extreme moved by the callback rate)."""
        assert self.callback_rate_e8 is not None and self.activated
        return trailing_trigger_ticks(self.side, self.extreme_ticks, self.callback_rate_e8)

    def __repr__(self) -> str:
        return (
            f"ConditionalOrder({self.algo_id} {self.order_type.value} {self.side.name}"
            f" {self.working_type.value} trigger={self.trigger_price_ticks} acct={self.account_id})"
        )


# ---------------------------------------------------------------------- trigger arithmetic


def level_direction(order_type: ConditionalType, side: Side) -> int:
    """``RISE`` for STOP BUY and TAKE_PROFIT SELL, ``FALL`` for STOP SELL and TAKE_PROFIT BUY."""
    return RISE if (order_type in _STOP_TYPES) == (side is Side.BUY) else FALL


def reached(level: int, direction: int, price: int) -> bool:
    """Whether ``price`` is at or past ``level`` in ``direction``."""
    return price >= level if direction == RISE else price <= level


def trailing_trigger_ticks(side: Side, extreme_ticks: int, callback_rate_e8: int) -> int:
    """Trigger price of an active trailing stop, rounded away from its extreme.

    BUY: ``ceil(min x (1 + rate))``; SELL: ``floor(max x (1 - rate))``. A price
    (a whole tick) reaches the rounded level exactly when it reaches the exact
    one, so the order fires only after the price has come back by the whole
    callback rate, never a fraction of a tick earlier.
    """
    if side is Side.BUY:
        return formulas.ceil_div(extreme_ticks * (RATE_SCALE + callback_rate_e8), RATE_SCALE)
    return (extreme_ticks * (RATE_SCALE - callback_rate_e8)) // RATE_SCALE


def protection_blocks(mark_ticks: int | None, last_ticks: int | None, trigger_protect_e8: int) -> bool:
    """True while mark and last diverge by more than ``trigger_protect`` (``|mark - last| / mark``).

    Exact in integers: ``|mark - last| x 10**8 > trigger_protect_e8 x mark``. With
    either price unknown nothing can be measured and nothing is blocked.
    """
    if mark_ticks is None or last_ticks is None:
        return False
    return abs(mark_ticks - last_ticks) * RATE_SCALE > trigger_protect_e8 * mark_ticks


# ---------------------------------------------------------------------- the index


class ConditionalIndex(Protocol):
    """Where untriggered orders wait; :meth:`observe` says which fire at a price."""

    def add(self, order: ConditionalOrder) -> None: ...

    def remove(self, order: ConditionalOrder) -> None: ...

    def holds(self, market: MarketId) -> bool: ...

    def observe(
        self, market: MarketId, working_type: WorkingType, price: int, protected_too: bool
    ) -> list[ConditionalOrder]:
        """Show ``price`` to the orders watching it; return those that fire, out of the index.

        Pending trailing stops that reach their activation price become active,
        and active ones move their extreme. ``protected_too=False`` hides the
        price from price-protected orders. The result is in ``algo_id`` order.
        """
        ...


LevelKey = tuple[MarketId, WorkingType, bool, int]
"""``(market, working_type, price_protect, direction)`` of one sorted level list."""
TrailingKey = tuple[MarketId, WorkingType, bool, int]
"""``(market, working_type, price_protect, side)`` of one group of active trailing stops."""

_UNBOUNDED: Final = (-(1 << 62), 1 << 62)


def quiet_range(order: ConditionalOrder) -> tuple[int, int]:
    """Prices (inclusive) at which an active trailing stop neither moves its extreme nor fires.

    SELL (max ``M``, level ``L``): ``L < price <= M``; BUY (min ``M``, level ``L``): ``M <= price < L``.
    """
    level = order.trailing_level()
    if order.side is Side.SELL:
        return level + 1, order.extreme_ticks
    return order.extreme_ticks, level - 1


class TriggerIndex:
    """Untriggered orders in sorted lists by level, and active trailing stops in small groups.

    ``levels[key]`` is sorted ``(-direction x level, algo_id)``: the entries due
    at ``price`` are those with ``entry >= (-direction x price,)``, a suffix.

    ``trailing[key]`` holds the active trailing stops of one market, working
    type, protection flag and side; ``quiet[key]`` is a price range inside every
    member's :func:`quiet_range`, so a price in it costs nothing. It is exact
    after each scan of the group, narrowed when a stop joins, and left as it
    is when one leaves (still safe, only narrower).
    """

    __slots__ = ("_orders_by_id", "counts", "levels", "quiet", "trailing")

    def __init__(self) -> None:
        self.levels: dict[LevelKey, list[tuple[int, AlgoId]]] = {}
        self.trailing: dict[TrailingKey, dict[AlgoId, ConditionalOrder]] = {}
        self.quiet: dict[TrailingKey, tuple[int, int]] = {}
        self.counts: dict[MarketId, int] = {}
        self._orders_by_id: dict[AlgoId, ConditionalOrder] = {}

    def add(self, order: ConditionalOrder) -> None:
        market = order.market
        self.counts[market] = self.counts.get(market, 0) + 1
        self._orders_by_id[order.algo_id] = order
        if order.is_trailing and order.activated:
            self._activate(order)
            return
        level, direction = order.pending_level()
        lkey = (market, order.working_type, order.price_protect, direction)
        insort(self.levels.setdefault(lkey, []), (-direction * level, order.algo_id))

    def _activate(self, order: ConditionalOrder) -> None:
        key = (order.market, order.working_type, order.price_protect, int(order.side))
        self.trailing.setdefault(key, {})[order.algo_id] = order
        lo, hi = self.quiet.get(key, _UNBOUNDED)
        own_lo, own_hi = quiet_range(order)
        self.quiet[key] = max(lo, own_lo), min(hi, own_hi)

    def remove(self, order: ConditionalOrder) -> None:
        market = order.market
        self.counts[market] -= 1
        del self._orders_by_id[order.algo_id]
        if order.is_trailing and order.activated:
            key = (market, order.working_type, order.price_protect, int(order.side))
            del self.trailing[key][order.algo_id]
            return
        level, direction = order.pending_level()
        entries = self.levels[(market, order.working_type, order.price_protect, direction)]
        entry = (-direction * level, order.algo_id)
        at = bisect_left(entries, entry)
        assert entries[at] == entry
        del entries[at]

    def holds(self, market: MarketId) -> bool:
        return self.counts.get(market, 0) > 0

    def observe(
        self, market: MarketId, working_type: WorkingType, price: int, protected_too: bool
    ) -> list[ConditionalOrder]:
        fired: list[ConditionalOrder] = []
        for protected in (False, True) if protected_too else (False,):
            for direction in (RISE, FALL):
                entries = self.levels.get((market, working_type, protected, direction))
                if not entries:
                    continue
                at = bisect_left(entries, (-direction * price,))
                if at == len(entries):
                    continue
                due = entries[at:]
                del entries[at:]
                for _key, algo_id in due:
                    order = self._orders_by_id[algo_id]
                    if order.is_trailing:  # reached its activation price: becomes active here
                        order.activated = True
                        order.extreme_ticks = price
                        self._activate(order)
                    else:
                        fired.append(order)
            for side in (Side.BUY, Side.SELL):
                key = (market, working_type, protected, int(side))
                group = self.trailing.get(key)
                if group:
                    lo, hi = self.quiet[key]
                    if not lo <= price <= hi:
                        fired.extend(self._scan(key, group, side, price))
        for order in fired:
            self.counts[market] -= 1
            del self._orders_by_id[order.algo_id]
        fired.sort(key=_by_algo_id)
        return fired

    def _scan(
        self, key: TrailingKey, group: dict[AlgoId, ConditionalOrder], side: Side, price: int
    ) -> list[ConditionalOrder]:
        """Move the group's extremes to ``price``, take out the stops it fires, recompute the quiet range."""
        done: list[ConditionalOrder] = []
        lo, hi = _UNBOUNDED
        sell = side is Side.SELL
        for order in group.values():
            if (price > order.extreme_ticks) if sell else (price < order.extreme_ticks):
                order.extreme_ticks = price
            elif reached(order.trailing_level(), FALL if sell else RISE, price):
                done.append(order)
                continue
            own_lo, own_hi = quiet_range(order)
            lo, hi = max(lo, own_lo), min(hi, own_hi)
        for order in done:
            del group[order.algo_id]
        self.quiet[key] = lo, hi
        return done


def _by_algo_id(order: ConditionalOrder) -> int:
    return order.algo_id


# ---------------------------------------------------------------------- the book and its stage


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
        is_limit = cmd.order_type in _LIMIT_TYPES
        if cmd.order_type is _TRAILING:
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
            if cmd.order_type not in _CLOSE_POSITION_TYPES:
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
        if cmd.order_type is _TRAILING:
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
            due.sort(key=_by_algo_id)
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
