"""Events: what happened, in the past tense.

The engine answers every command with a list of these, in the order they
happened. Events are immutable ``msgspec`` structs; read models, streams and
the wire adapters are built from them alone. A refused command produces a
``*Rejected`` event with a :class:`~perpx.engine.codes.RejectCode` and a
message a person can act on; the state is then unchanged.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec

from perpx.engine.codes import RejectCode
from perpx.engine.commands import MarginMode, MarketMode, OrderType, StpMode, TimeInForce
from perpx.engine.values import AccountId, AssetId, ClientOrderId, MarketId, OrderId, Side, TradeId, TxId


class ExpireReason(StrEnum):
    """Why an order left the book without being filled or cancelled by its owner."""

    IOC_REMAINDER = "IOC_REMAINDER"
    MARKET_TAKE_BOUND = "MARKET_TAKE_BOUND"
    NO_LIQUIDITY = "NO_LIQUIDITY"
    STP_TAKER = "STP_TAKER"
    STP_MAKER = "STP_MAKER"
    REDUCE_ONLY = "REDUCE_ONLY"


class Event(msgspec.Struct, frozen=True, tag=True, kw_only=True, gc=False):
    """Base of every event; ``ts_ns`` is the time of the command that caused it."""

    ts_ns: int


class AccountCreated(Event, frozen=True, tag=True, kw_only=True, gc=False):
    account_id: AccountId
    name: str


class DepositApplied(Event, frozen=True, tag=True, kw_only=True, gc=False):
    account_id: AccountId
    asset: AssetId
    amount_atoms: int
    tx_id: TxId
    balance_atoms: int


class WithdrawalApplied(Event, frozen=True, tag=True, kw_only=True, gc=False):
    account_id: AccountId
    asset: AssetId
    amount_atoms: int
    tx_id: TxId
    balance_atoms: int


class TransferRejected(Event, frozen=True, tag=True, kw_only=True, gc=False):
    """A deposit or withdrawal that changed nothing (``DUPLICATE_TX`` for a replayed ``tx_id``)."""

    account_id: AccountId
    asset: AssetId
    amount_atoms: int
    tx_id: TxId
    code: RejectCode
    message: str


class OrderAccepted(Event, frozen=True, tag=True, kw_only=True, gc=False):
    order_id: OrderId
    account_id: AccountId
    market: MarketId
    side: Side
    order_type: OrderType
    tif: TimeInForce
    price_ticks: int | None
    qty_lots: int
    reduce_only: bool
    client_order_id: ClientOrderId | None
    stp: StpMode


class OrderRejected(Event, frozen=True, tag=True, kw_only=True, gc=False):
    """A place or amend refused; for an amend ``order_id`` names the untouched order."""

    account_id: AccountId
    market: MarketId
    client_order_id: ClientOrderId | None
    order_id: OrderId | None
    code: RejectCode
    message: str


class OrderFilled(Event, frozen=True, tag=True, kw_only=True, gc=False):
    """One side of one trade. A trade emits the taker's fill, then the maker's, same ``trade_id``."""

    trade_id: TradeId
    order_id: OrderId
    account_id: AccountId
    market: MarketId
    side: Side
    price_ticks: int
    qty_lots: int
    leaves_lots: int
    is_maker: bool
    fee_atoms: int
    realized_pnl_atoms: int
    position_lots: int


class OrderCanceled(Event, frozen=True, tag=True, kw_only=True, gc=False):
    order_id: OrderId
    account_id: AccountId
    market: MarketId
    leaves_lots: int


class OrderExpired(Event, frozen=True, tag=True, kw_only=True, gc=False):
    order_id: OrderId
    account_id: AccountId
    market: MarketId
    leaves_lots: int
    reason: ExpireReason


class OrderAmended(Event, frozen=True, tag=True, kw_only=True, gc=False):
    """An order's price or size changed; ``priority_kept`` says whether it kept its queue place."""

    order_id: OrderId
    account_id: AccountId
    market: MarketId
    price_ticks: int
    qty_lots: int
    leaves_lots: int
    priority_kept: bool
    reason: str


class LeverageChanged(Event, frozen=True, tag=True, kw_only=True, gc=False):
    account_id: AccountId
    market: MarketId
    leverage: int
    max_notional_atoms: int


class MarginModeChanged(Event, frozen=True, tag=True, kw_only=True, gc=False):
    account_id: AccountId
    market: MarketId
    mode: MarginMode


class IsolatedMarginAdjusted(Event, frozen=True, tag=True, kw_only=True, gc=False):
    account_id: AccountId
    market: MarketId
    delta_atoms: int
    isolated_margin_atoms: int


class CommandRejected(Event, frozen=True, tag=True, kw_only=True, gc=False):
    """A non-order command refused; ``command`` is its type name."""

    account_id: AccountId | None
    command: str
    code: RejectCode
    message: str


class MarkPriceSet(Event, frozen=True, tag=True, kw_only=True, gc=False):
    market: MarketId
    index_ticks: int
    mark_ticks: int


class MarketModeChanged(Event, frozen=True, tag=True, kw_only=True, gc=False):
    market: MarketId
    mode: MarketMode
    previous: MarketMode


class PositionSettled(Event, frozen=True, tag=True, kw_only=True, gc=False):
    """A position closed by the venue at the settlement price of a delisted market (no fee)."""

    account_id: AccountId
    market: MarketId
    qty_lots: int
    price_ticks: int
    realized_pnl_atoms: int


class ClockAdvanced(Event, frozen=True, tag=True, kw_only=True, gc=False):
    pass


AnyEvent = (
    AccountCreated
    | DepositApplied
    | WithdrawalApplied
    | TransferRejected
    | OrderAccepted
    | OrderRejected
    | OrderFilled
    | OrderCanceled
    | OrderExpired
    | OrderAmended
    | LeverageChanged
    | MarginModeChanged
    | IsolatedMarginAdjusted
    | CommandRejected
    | MarkPriceSet
    | MarketModeChanged
    | PositionSettled
    | ClockAdvanced
)
