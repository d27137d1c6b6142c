"""A conditional order and the arithmetic of its trigger: direction, reached, trailing, protection."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from perpx.engine import formulas
from perpx.engine.commands import (
    ConditionalType,
    OrderType,
    StpMode,
    TimeInForce,
    WorkingType,
)
from perpx.engine.values import (
    RATE_SCALE,
    AccountId,
    AlgoId,
    ClientAlgoId,
    MarketId,
    Side,
)

if TYPE_CHECKING:
    pass

RISE: Final = 1
"""Direction of a level that fires when the price rises to it (``price >= level``)."""
FALL: Final = -1
"""Direction of a level that fires when the price falls to it (``price <= level``)."""

MIN_CALLBACK_RATE_E8: Final = 100_000
"""0.1%: the smallest trailing callback rate."""
MAX_CALLBACK_RATE_E8: Final = 10_000_000
"""10%: the largest trailing callback rate."""

LIMIT_TYPES: Final = (ConditionalType.STOP, ConditionalType.TAKE_PROFIT)
STOP_TYPES: Final = (ConditionalType.STOP, ConditionalType.STOP_MARKET)
CLOSE_POSITION_TYPES: Final = (ConditionalType.STOP_MARKET, ConditionalType.TAKE_PROFIT_MARKET)
TRAILING: Final = ConditionalType.TRAILING_STOP_MARKET


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
        return self.order_type is TRAILING

    @property
    def child_type(self) -> OrderType:
        """The type of the order placed on triggering."""
        return OrderType.LIMIT if self.order_type in LIMIT_TYPES else OrderType.MARKET

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
    return RISE if (order_type in STOP_TYPES) == (side is Side.BUY) else FALL


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
