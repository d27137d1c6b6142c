"""Commands: what a client asks the venue to do, in the imperative.

Commands are immutable ``msgspec`` structs with a type tag, so the journal can
store and replay them byte for byte. Every command carries ``ts_ns``, the time
the sequencer stamped at the edge; the engine never reads a clock. Prices and
quantities are already integer ticks and lots: adapters parse the wire's
decimal strings before a command exists.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec

from perpx.engine.values import (
    AccountId,
    AlgoId,
    AssetId,
    ClientAlgoId,
    ClientOrderId,
    MarketId,
    OrderId,
    ParentId,
    Side,
    TxId,
)


class OrderType(StrEnum):
    """How an order prices itself: at a limit, or against the book up to the take bound."""

    LIMIT = "LIMIT"
    MARKET = "MARKET"


class TimeInForce(StrEnum):
    """How long an order may live: rest (GTC), take and expire (IOC), all or none (FOK), post only (GTX)."""

    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    GTX = "GTX"


class StpMode(StrEnum):
    """Self-trade prevention, decided by the incoming (taker) order's mode."""

    NONE = "NONE"
    EXPIRE_TAKER = "EXPIRE_TAKER"
    EXPIRE_MAKER = "EXPIRE_MAKER"
    EXPIRE_BOTH = "EXPIRE_BOTH"


class MarginMode(StrEnum):
    """Whether a market's position shares the cross wallet or holds its own margin."""

    CROSS = "CROSS"
    ISOLATED = "ISOLATED"


class MarketMode(StrEnum):
    """What a market accepts: everything, only position-reducing orders, only cancels, or nothing (settled)."""

    NORMAL = "NORMAL"
    REDUCE_ONLY = "REDUCE_ONLY"
    HALTED = "HALTED"
    SETTLED = "SETTLED"


class ConditionalType(StrEnum):
    """The conditional (algo) order types; each becomes a LIMIT or MARKET order when it triggers.

    STOP / STOP_MARKET fire a BUY when the price rises to the trigger and a SELL when it falls to it;
    TAKE_PROFIT / TAKE_PROFIT_MARKET the reverse; TRAILING_STOP_MARKET follows the price's extreme.
    """

    STOP = "STOP"
    STOP_MARKET = "STOP_MARKET"
    TAKE_PROFIT = "TAKE_PROFIT"
    TAKE_PROFIT_MARKET = "TAKE_PROFIT_MARKET"
    TRAILING_STOP_MARKET = "TRAILING_STOP_MARKET"


class WorkingType(StrEnum):
    """The price a conditional order watches: the mark, or the last trade (Binance's default)."""

    MARK_PRICE = "MARK_PRICE"
    CONTRACT_PRICE = "CONTRACT_PRICE"


class Command(msgspec.Struct, frozen=True, tag=True, kw_only=True, gc=False):
    """Base of every command; ``ts_ns`` is stamped once by the sequencer."""

    ts_ns: int


class CreateAccount(Command, frozen=True, tag=True, kw_only=True, gc=False):
    """Open a trading account; the engine assigns the next ``AccountId``."""

    name: str = ""


class Deposit(Command, frozen=True, tag=True, kw_only=True, gc=False):
    """Credit ``amount_atoms``; a ``tx_id`` seen before changes nothing."""

    account_id: AccountId
    asset: AssetId
    amount_atoms: int
    tx_id: TxId


class Withdraw(Command, frozen=True, tag=True, kw_only=True, gc=False):
    """Debit ``amount_atoms`` if it is withdrawable; a ``tx_id`` seen before changes nothing."""

    account_id: AccountId
    asset: AssetId
    amount_atoms: int
    tx_id: TxId


class PlaceOrder(Command, frozen=True, tag=True, kw_only=True, gc=False):
    """Submit a new order. ``price_ticks`` is ``None`` for MARKET orders."""

    account_id: AccountId
    market: MarketId
    side: Side
    order_type: OrderType
    qty_lots: int
    price_ticks: int | None = None
    tif: TimeInForce = TimeInForce.GTC
    reduce_only: bool = False
    client_order_id: ClientOrderId | None = None
    stp: StpMode = StpMode.EXPIRE_MAKER


class CancelOrder(Command, frozen=True, tag=True, kw_only=True, gc=False):
    """Cancel one open order, by ``order_id`` or by ``client_order_id``."""

    account_id: AccountId
    market: MarketId
    order_id: OrderId | None = None
    client_order_id: ClientOrderId | None = None


class CancelAllOrders(Command, frozen=True, tag=True, kw_only=True, gc=False):
    """Cancel every open order of the account in ``market``."""

    account_id: AccountId
    market: MarketId


class AmendOrder(Command, frozen=True, tag=True, kw_only=True, gc=False):
    """Change an open order's price and total quantity (Binance modify-order semantics).

    Time priority is kept only when the price is unchanged and the quantity
    decreases; otherwise the order goes to the back of its (new) level and may
    trade at once if the new price crosses.
    """

    account_id: AccountId
    market: MarketId
    price_ticks: int
    qty_lots: int
    order_id: OrderId | None = None
    client_order_id: ClientOrderId | None = None


class SetLeverage(Command, frozen=True, tag=True, kw_only=True, gc=False):
    """Set the account's leverage in ``market`` (1 .. the first bracket's maximum)."""

    account_id: AccountId
    market: MarketId
    leverage: int


class SetMarginMode(Command, frozen=True, tag=True, kw_only=True, gc=False):
    """Switch the market's margin mode; only with no position and no open orders there."""

    account_id: AccountId
    market: MarketId
    mode: MarginMode


class AdjustIsolatedMargin(Command, frozen=True, tag=True, kw_only=True, gc=False):
    """Move margin between the cross wallet and an isolated position (+ adds, - removes)."""

    account_id: AccountId
    market: MarketId
    delta_atoms: int


class SetMarkPrice(Command, frozen=True, tag=True, kw_only=True, gc=False):
    """Set a market's index and mark price directly (tests, simulation, until the pricing engine)."""

    market: MarketId
    index_ticks: int
    mark_ticks: int


class SetMarketMode(Command, frozen=True, tag=True, kw_only=True, gc=False):
    """Change what a market accepts. ``SETTLED`` closes every position at ``settle_price_ticks``
    (a delisting) and cancels every order; it is final."""

    market: MarketId
    mode: MarketMode
    settle_price_ticks: int | None = None


class UpdateMarketParams(Command, frozen=True, tag=True, kw_only=True, gc=False):
    """Change some of a market's filters and limits while the venue runs (an operator's action).

    ``params`` maps names of :data:`perpx.engine.config.MARKET_PARAMS` to config-file text
    (``{"min_notional": "50", "max_open_orders": "100"}``); they are checked by the config's own
    rules, all or none applied. ``operator`` and ``wall_ns`` say who asked and when by the wall
    clock; the engine only records them (the journal is the audit trail).
    """

    market: MarketId
    params: dict[str, str]
    operator: str = ""
    wall_ns: int = 0


class ChangeMarketParams(Command, frozen=True, tag=True, kw_only=True, gc=False):
    """Change any changeable parameter of a market, live or not (an approved proposal's apply).

    ``params`` maps names of :data:`perpx.engine.params.CHANGEABLE` to config-file text; the
    structured ones (``brackets``, ``index``) are their config table as JSON text. The engine
    re-reads the market with the change by the config's own rules, checks the venue rules of
    :mod:`perpx.engine.params` and applies all or nothing. ``cancel_off_grid`` lets it cancel the
    resting orders the new filters would refuse instead of refusing the change.
    """

    market: MarketId
    params: dict[str, str]
    cancel_off_grid: bool = False
    operator: str = ""
    wall_ns: int = 0


class PlaceConditionalOrder(Command, frozen=True, tag=True, kw_only=True, gc=False):
    """Submit a conditional (algo) order; it rests off the book until its trigger fires.

    ``trigger_price_ticks`` is required for every type but TRAILING_STOP_MARKET, which takes
    ``callback_rate_e8`` (0.1% .. 10%) and an optional ``activation_price_ticks`` (default: the
    current price of ``working_type``). ``price_ticks`` is the limit of STOP / TAKE_PROFIT only.
    ``close_position`` (STOP_MARKET / TAKE_PROFIT_MARKET) closes the whole position at the trigger
    and goes without ``qty_lots`` and ``reduce_only``. See :mod:`perpx.engine.triggers`.
    """

    account_id: AccountId
    market: MarketId
    side: Side
    order_type: ConditionalType
    qty_lots: int | None = None
    trigger_price_ticks: int | None = None
    price_ticks: int | None = None
    tif: TimeInForce = TimeInForce.GTC
    working_type: WorkingType = WorkingType.CONTRACT_PRICE
    reduce_only: bool = False
    close_position: bool = False
    price_protect: bool = False
    activation_price_ticks: int | None = None
    callback_rate_e8: int | None = None
    client_algo_id: ClientAlgoId | None = None
    stp: StpMode = StpMode.EXPIRE_MAKER


class CancelConditionalOrder(Command, frozen=True, tag=True, kw_only=True, gc=False):
    """Cancel one untriggered conditional order, by ``algo_id`` or by ``client_algo_id``."""

    account_id: AccountId
    market: MarketId
    algo_id: AlgoId | None = None
    client_algo_id: ClientAlgoId | None = None


class CancelAllConditionalOrders(Command, frozen=True, tag=True, kw_only=True, gc=False):
    """Cancel every untriggered conditional order of the account in ``market``."""

    account_id: AccountId
    market: MarketId


class SubmitSpotQuote(Command, frozen=True, tag=True, kw_only=True, gc=False):
    """One spot source's price for a market's index; ``ts_ns`` is the quote's time.

    ``source`` is a name from the market's ``[markets.X.index] sources``; the
    edge converts the source's decimal price into ticks of the market.
    """

    market: MarketId
    source: str
    price_ticks: int


class AdvanceClock(Command, frozen=True, tag=True, kw_only=True, gc=False):
    """Move venue time to ``ts_ns``; time-driven work (funding, triggers) hangs off this."""


# ---------------------------------------------------------------- collateral and secured loans (issue 20)


class LtvDirection(StrEnum):
    """Which way a collateral adjustment moves: Binance's ``direction`` of ``adjust/ltv``."""

    ADDITIONAL = "ADDITIONAL"
    REDUCED = "REDUCED"


class SubmitAssetQuote(Command, frozen=True, tag=True, kw_only=True, gc=False):
    """One spot source's price of an asset, in settlement atoms per whole unit, for its index."""

    asset: AssetId
    source: str
    price_atoms: int


class BorrowLoan(Command, frozen=True, tag=True, kw_only=True, gc=False):
    """Borrow ``loan_asset`` against ``collateral_asset``: give one or both of the two amounts.

    With ``loan_atoms`` the collateral is what the initial LTV needs; with ``collateral_atoms``
    the loan is the most the initial LTV allows; with both, a custom LTV (at most the initial
    LTV). A second borrow on the same pair adds to the
    account's one loan of that pair.
    """

    account_id: AccountId
    loan_asset: AssetId
    collateral_asset: AssetId
    loan_atoms: int | None = None
    collateral_atoms: int | None = None


class RepayLoan(Command, frozen=True, tag=True, kw_only=True, gc=False):
    """Repay ``repay_atoms`` of a loan (or all of it with ``full_repayment``).

    ``collateral_return``: release collateral pro rata to the debt repaid; otherwise keep it and
    lower the LTV. A full repayment always returns all collateral and closes the loan.
    """

    account_id: AccountId
    loan_asset: AssetId
    collateral_asset: AssetId
    repay_atoms: int = 0
    collateral_return: bool = True
    full_repayment: bool = False


class AdjustLoanCollateral(Command, frozen=True, tag=True, kw_only=True, gc=False):
    """Add collateral to a loan, or take some back while its LTV stays within the initial LTV."""

    account_id: AccountId
    loan_asset: AssetId
    collateral_asset: AssetId
    amount_atoms: int
    direction: LtvDirection


class BookBlockTrade(Command, frozen=True, tag=True, kw_only=True, gc=False):
    """Book an OTC block trade between a client and the desk at an agreed price, away from the book.

    ``side`` is the client's; the desk takes the other side. Both sides pass the margin checks of
    any order and the fill guard of any fill (``perpx.engine.block``); the price must lie within
    the market's price band around the mark. ``quote_id`` names the desk's quote it settles.
    """

    client_id: AccountId
    desk_id: AccountId
    market: MarketId
    side: Side
    qty_lots: int
    price_ticks: int
    quote_id: str


class BookSpotBlockTrade(Command, frozen=True, tag=True, kw_only=True, gc=False):
    """Book a spot-style OTC block trade: ``base_atoms`` of ``base_asset`` against ``quote_atoms`` of
    the settlement asset, moved between the client's and the desk's wallets, all or nothing.

    ``side`` is the client's: ``BUY`` receives the base asset and pays the settlement asset. No
    position, no fee (the desk earns its spread in the price), no margin effect beyond the wallets
    and the Multi-Assets collateral revaluation (``perpx.engine.block``).
    """

    client_id: AccountId
    desk_id: AccountId
    base_asset: AssetId
    side: Side
    base_atoms: int
    quote_atoms: int
    quote_id: str


class SetMultiAssetsMode(Command, frozen=True, tag=True, kw_only=True, gc=False):
    """Turn Multi-Assets Mode on or off for an account (Binance ``multiAssetsMargin``).

    In the mode, every collateral asset the account holds counts in its cross margin balance at
    index x (1 - haircut), and its settlement balance may go below zero (a debt against that
    collateral). Refused with open orders or positions, and with a market set to isolated.
    """

    account_id: AccountId
    enabled: bool


# ---------------------------------------------------------------- parent orders of the algo service (issue 14)


class ParentStatus(StrEnum):
    """Binance's ``algoStatus`` of a parent order; EXPIRED is an end with a remainder (the reason says why)."""

    WORKING = "WORKING"
    FINISHED = "FINISHED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"


class CreateParent(Command, frozen=True, tag=True, kw_only=True, gc=False):
    """Record a parent order the algo service will work; the engine assigns the next ``ParentId``.

    ``client_algo_id`` is unique per account for the venue's life (Binance's ``-20132``);
    ``algo_type`` is Binance's ``TWAP`` / ``VP`` or the perpx algorithm's name in upper case.
    """

    account_id: AccountId
    market: MarketId
    side: Side
    qty_lots: int
    client_algo_id: ClientAlgoId
    algo_type: str


class CancelParent(Command, frozen=True, tag=True, kw_only=True, gc=False):
    """The owner asks to cancel a working parent; the service cancels its children, then finishes it."""

    account_id: AccountId
    parent_id: ParentId


class FinishParent(Command, frozen=True, tag=True, kw_only=True, gc=False):
    """End a working parent: FINISHED (every lot executed), CANCELLED or EXPIRED, with the reason."""

    parent_id: ParentId
    status: ParentStatus
    reason: str


class PlaceChildOrder(Command, frozen=True, tag=True, kw_only=True, gc=False):
    """``order``, sent by the algo service for working parent ``parent_id`` (the explicit link).

    The order goes through the normal path; its fills count in the parent's executed quantity.
    ``order.ts_ns`` equals ``ts_ns``.
    """

    parent_id: ParentId
    order: PlaceOrder


# ---------------------------------------------------------------- flows of the algo service (issue 14, flows)


class CreateFlow(Command, frozen=True, tag=True, kw_only=True, gc=False):
    """Record a strategy document's flow the venue will run; the engine assigns the next flow id.

    ``client_flow_id`` (1..32 characters) is unique per account for the venue's life: the flow's
    order ids derive from it.
    """

    account_id: AccountId
    client_flow_id: str
    name: str
    """The strategy document's name (what the flow runner's journal names it by)."""


class RecordFlowNode(Command, frozen=True, tag=True, kw_only=True, gc=False):
    """One node of a working flow changed state (the flow runner's journal line, in the engine's journal).

    ``status`` is the runner's node status (``working``, ``filled``, ...), ``arrival_price`` its
    benchmark as a decimal string (empty when none). A replay rebuilds every node's state, so a
    restarted venue resumes the flow without firing a node twice.
    """

    flow_id: int
    node: str
    status: str
    reason: str
    arrival_price: str = ""


class CancelFlow(Command, frozen=True, tag=True, kw_only=True, gc=False):
    """The owner asks to cancel a working flow; the service cancels its nodes, then finishes it."""

    account_id: AccountId
    flow_id: int


class FinishFlow(Command, frozen=True, tag=True, kw_only=True, gc=False):
    """End a working flow: FINISHED (every node ended), CANCELLED or EXPIRED, with the reason."""

    flow_id: int
    status: ParentStatus
    reason: str


AnyCommand = (
    CreateAccount
    | Deposit
    | Withdraw
    | PlaceOrder
    | CancelOrder
    | CancelAllOrders
    | AmendOrder
    | SetLeverage
    | SetMarginMode
    | AdjustIsolatedMargin
    | SetMarkPrice
    | SetMarketMode
    | UpdateMarketParams
    | ChangeMarketParams
    | AdvanceClock
    | SubmitSpotQuote
    | PlaceConditionalOrder
    | CancelConditionalOrder
    | CancelAllConditionalOrders
    | SubmitAssetQuote
    | BorrowLoan
    | RepayLoan
    | AdjustLoanCollateral
    | BookBlockTrade
    | BookSpotBlockTrade
    | SetMultiAssetsMode
    | CreateParent
    | CancelParent
    | FinishParent
    | PlaceChildOrder
    | CreateFlow
    | RecordFlowNode
    | CancelFlow
    | FinishFlow
)
