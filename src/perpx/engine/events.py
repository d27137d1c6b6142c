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
from perpx.engine.commands import (
    ConditionalType,
    LtvDirection,
    MarginMode,
    MarketMode,
    OrderType,
    ParentStatus,
    StpMode,
    TimeInForce,
    WorkingType,
)
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
    TradeId,
    TxId,
)


class ExpireReason(StrEnum):
    """Why an order left the book without being filled or cancelled by its owner."""

    IOC_REMAINDER = "IOC_REMAINDER"
    MARKET_TAKE_BOUND = "MARKET_TAKE_BOUND"
    NO_LIQUIDITY = "NO_LIQUIDITY"
    STP_TAKER = "STP_TAKER"
    STP_MAKER = "STP_MAKER"
    REDUCE_ONLY = "REDUCE_ONLY"
    BANKRUPTCY = "BANKRUPTCY"
    """Filling it (more) would have taken its owner's margin balance below zero (``mechanics.md`` 29)."""


class ConditionalExpireReason(StrEnum):
    """Why a conditional order ended without placing an order."""

    NO_POSITION = "NO_POSITION"
    """A close-position order triggered while there was no position on the side it closes."""
    MARKET_SETTLED = "MARKET_SETTLED"
    """Its market was settled (delisted) before it triggered."""


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


class ParamChange(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One market parameter before and after a change, as config-file text."""

    param: str
    old: str
    new: str


class MarketParamsChanged(Event, frozen=True, tag=True, kw_only=True, gc=False):
    """An operator changed market parameters (:class:`~perpx.engine.commands.UpdateMarketParams`)."""

    market: MarketId
    changes: tuple[ParamChange, ...]
    operator: str


class PositionSettled(Event, frozen=True, tag=True, kw_only=True, gc=False):
    """A position closed by the venue at the settlement price of a delisted market (no fee)."""

    account_id: AccountId
    market: MarketId
    qty_lots: int
    price_ticks: int
    realized_pnl_atoms: int


class SettlementLossShared(Event, frozen=True, tag=True, kw_only=True, gc=False):
    """A settlement deficit beyond the insurance fund's equity, shared by the settlement's winners.

    ``amount_atoms`` < 0: taken from ``account_id``, which realised a profit in the settlement of
    ``market`` (pro rata to it); > 0: paid to ``account_id``, which the settlement left below zero.
    """

    market: MarketId
    account_id: AccountId
    amount_atoms: int


class ClockAdvanced(Event, frozen=True, tag=True, kw_only=True, gc=False):
    pass


# Pricing events carry ``as_of_ns``, the venue time the value took effect: a clock jump that catches
# up with work due earlier (a quote turning stale, a funding boundary) reports each at its own time.


class IndexSource(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A spot source that counted in an index computation, at ``price_ticks``."""

    source: str
    price_ticks: int


class DroppedSource(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A spot source left out of (or clipped in) an index computation, and why.

    ``reason`` is ``NO_QUOTE`` (never quoted), ``STALE`` (older than
    ``stale_after_s``), ``OUTLIER`` (weight 0, binance policy) or ``CAPPED``
    (clipped to the band, capped policy; it still counts, at the band edge).
    """

    source: str
    reason: str


class IndexUpdated(Event, frozen=True, tag=True, kw_only=True, gc=False):
    """A market's index was recomputed (on a quote, or as a source went stale) and changed."""

    market: MarketId
    as_of_ns: int
    index_ticks: int
    used: tuple[IndexSource, ...]
    dropped: tuple[DroppedSource, ...]


class IndexStaleChanged(Event, frozen=True, tag=True, kw_only=True, gc=False):
    """A market lost (``stale``) or regained its index quorum.

    While stale the index and mark stay frozen at ``index_ticks`` / their last
    value, the market accepts only reduce-only orders, liquidations in it pause
    and no mark-basis or premium samples are taken.
    """

    market: MarketId
    as_of_ns: int
    stale: bool
    index_ticks: int | None
    fresh_sources: int
    min_sources: int
    dropped: tuple[DroppedSource, ...]


class MarkPriceUpdated(Event, frozen=True, tag=True, kw_only=True, gc=False):
    """The pricing engine moved a market's mark: ``median(funding_basis, moving_basis, last_trade)``.

    ``funding_basis_ticks`` is ``index x (1 + last rate x time to funding / interval)``,
    ``moving_basis_ticks`` is ``index + average basis`` (moving average, or EMA with
    ``mark_policy = "ema"``); ``last_trade_ticks`` is ``None`` before the first trade.
    """

    market: MarketId
    as_of_ns: int
    index_ticks: int
    mark_ticks: int
    funding_basis_ticks: int
    moving_basis_ticks: int
    last_trade_ticks: int | None


class MarkClamped(Event, frozen=True, tag=True, kw_only=True, gc=False):
    """The mark's inputs gave ``raw_mark_ticks``, outside ``index x (1 +/- band)``: the mark is the band's edge.

    Emitted when the clamp starts to bind or its result changes (``mechanics.md`` 20, "The band"). ``band_e8``
    is the market's ``mark_index_band``; ``mark_ticks`` is the mark adopted.
    """

    market: MarketId
    as_of_ns: int
    index_ticks: int
    raw_mark_ticks: int
    mark_ticks: int
    band_e8: int


class FundingPaid(Event, frozen=True, tag=True, kw_only=True, gc=False):
    """One position's funding at a settlement.

    ``amount_atoms`` is the change to the account's margin (Binance's FUNDING_FEE
    income sign): negative when the position paid, positive when it received.
    It is taken from or added to the cross wallet, or the position's isolated
    margin when ``isolated``.
    """

    account_id: AccountId
    market: MarketId
    funding_time_ns: int
    qty_lots: int
    mark_ticks: int
    rate_e8: int
    amount_atoms: int
    isolated: bool


class FundingSettled(Event, frozen=True, tag=True, kw_only=True, gc=False):
    """A market's funding interval ended at ``funding_time_ns``.

    ``rate_e8`` came from ``premium_samples`` samples averaging
    ``average_premium_e8``. Payers paid ``paid_atoms`` in total, receivers got
    ``received_atoms``; ``residue_atoms = paid - received`` (rounding, below one
    atom per position) went to the insurance fund. ``mark_ticks`` is ``None``
    when the market had no mark yet (and so no positions).
    """

    market: MarketId
    funding_time_ns: int
    rate_e8: int
    average_premium_e8: int
    premium_samples: int
    mark_ticks: int | None
    positions: int
    paid_atoms: int
    received_atoms: int
    residue_atoms: int
    next_funding_ns: int


class ConditionalOrderAccepted(Event, frozen=True, tag=True, kw_only=True, gc=False):
    """A conditional order now waits for its trigger.

    For a trailing stop, ``activation_price_ticks`` is the price it activates at, or ``None`` when
    it was active from placement (its running extreme then starts at ``reference_ticks``).
    ``reference_ticks`` is the ``working_type`` price it was checked against when placed.
    """

    algo_id: AlgoId
    account_id: AccountId
    market: MarketId
    side: Side
    order_type: ConditionalType
    qty_lots: int | None
    trigger_price_ticks: int | None
    price_ticks: int | None
    tif: TimeInForce
    working_type: WorkingType
    reduce_only: bool
    close_position: bool
    price_protect: bool
    activation_price_ticks: int | None
    callback_rate_e8: int | None
    client_algo_id: ClientAlgoId | None
    stp: StpMode
    reference_ticks: int


class ConditionalOrderRejected(Event, frozen=True, tag=True, kw_only=True, gc=False):
    """A conditional order refused when placed (``algo_id`` is ``None``), or refused by the market or by
    margin when it triggered (``algo_id`` names it; the child's ``OrderRejected`` comes just before)."""

    account_id: AccountId
    market: MarketId
    client_algo_id: ClientAlgoId | None
    algo_id: AlgoId | None
    code: RejectCode
    message: str


class ConditionalOrderTriggered(Event, frozen=True, tag=True, kw_only=True, gc=False):
    """A conditional order's trigger fired: ``triggered_by_ticks`` (a ``working_type`` price) reached
    ``trigger_price_ticks`` (for a trailing stop, the level its extreme and callback rate gave).

    The order it placed follows through the normal order path; ``order_id`` is that order's id, or
    ``None`` when the order was refused (a ``ConditionalOrderRejected`` then follows).
    """

    algo_id: AlgoId
    account_id: AccountId
    market: MarketId
    working_type: WorkingType
    trigger_price_ticks: int
    triggered_by_ticks: int
    order_id: OrderId | None


class ConditionalOrderCanceled(Event, frozen=True, tag=True, kw_only=True, gc=False):
    algo_id: AlgoId
    account_id: AccountId
    market: MarketId
    client_algo_id: ClientAlgoId | None


class ConditionalOrderExpired(Event, frozen=True, tag=True, kw_only=True, gc=False):
    """A conditional order ended without placing an order; ``triggered_by_ticks`` is set when it
    expired on triggering (a close-position order with nothing to close)."""

    algo_id: AlgoId
    account_id: AccountId
    market: MarketId
    reason: ConditionalExpireReason
    triggered_by_ticks: int | None
    message: str


class PositionFigures(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One position as a liquidation saw it, on the mark (see :class:`LiquidationExplained`).

    ``cost_atoms`` is the signed entry notional (entry price = cost / (qty x contract));
    ``bracket`` is the tier of ``notional_atoms`` with its ``mmr_e8`` and ``cum_atoms``;
    ``paused`` is set while the market's index is stale or the market is halted.
    """

    market: MarketId
    isolated: bool
    qty_lots: int
    cost_atoms: int
    index_ticks: int | None
    mark_ticks: int
    notional_atoms: int
    unrealized_pnl_atoms: int
    bracket: int
    mmr_e8: int
    cum_atoms: int
    maintenance_atoms: int
    isolated_margin_atoms: int
    paused: bool


class ScopeFigures(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Margin figures of a liquidation scope: a cross account, or one isolated position.

    ``wallet_atoms`` is the cross wallet (or the isolated margin; for the insurance fund its cash);
    ``margin_balance_atoms = wallet + unrealised PnL``; ``ratio_e8 = ceil(MM x 10**8 / margin balance)``,
    ``2**62`` when the margin balance is zero or negative; at ``10**8`` (100%) the scope is liquidated.
    In Multi-Assets Mode the cross margin balance adds ``collateral_atoms`` (the collateral assets at
    index x (1 - haircut)); the wallet is then the settlement balance alone, which may be negative.
    """

    wallet_atoms: int
    margin_balance_atoms: int
    maintenance_atoms: int
    ratio_e8: int
    positions: tuple[PositionFigures, ...]
    collateral_atoms: int = 0


class LiquidationFill(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    trade_id: TradeId
    maker_account_id: AccountId
    price_ticks: int
    qty_lots: int


class CancelStep(msgspec.Struct, frozen=True, tag=True, kw_only=True, gc=False):
    """The scope's open orders were cancelled; ``ratio_after_e8`` is the margin ratio recomputed after."""

    order_ids: tuple[OrderId, ...]
    ratio_after_e8: int


class OrderStep(msgspec.Struct, frozen=True, tag=True, kw_only=True, gc=False):
    """An IOC liquidation order limited at the bankruptcy price (``partial``: only as much as needed)."""

    order_id: OrderId
    market: MarketId
    side: Side
    partial: bool
    qty_lots: int
    bankruptcy_value_atoms: int
    limit_ticks: int
    filled_lots: int
    fills: tuple[LiquidationFill, ...]
    expired_lots: int


class MarginKeptStep(msgspec.Struct, frozen=True, tag=True, kw_only=True, gc=False):
    """A partial liquidation of an isolated position kept the margin its fills freed (moved back in)."""

    amount_atoms: int


class FeeStep(msgspec.Struct, frozen=True, tag=True, kw_only=True, gc=False):
    """Clearance fee: ``ceil(notional x rate)`` capped by ``surplus`` (what was left above bankruptcy)."""

    qty_lots: int
    notional_atoms: int
    rate_e8: int
    due_atoms: int
    surplus_atoms: int
    fee_atoms: int


class TakeoverStep(msgspec.Struct, frozen=True, tag=True, kw_only=True, gc=False):
    """The insurance fund took over ``qty_lots`` at the bankruptcy price (``value_atoms`` in all).

    ``loss_atoms`` is what the takeover cost the fund on the mark; the fund accepts what keeps its
    equity (``fund_equity_atoms`` before) at or above zero, and, where the market sets
    ``insurance_takeover_cap``, what keeps its position within the cap: ``capacity_lots`` is the
    lots the cap allowed (uncapped: the lots taken). ``forced`` when the fund had to take lots no
    ADL counterparty could. ``capped_lots`` is what the cap refused that the fund's equity would
    have covered: those lots go to ADL. A takeover the cap refuses entirely is still recorded, with
    ``qty_lots`` 0 (and no value or loss), so that ``perpx explain`` can say why ADL followed.
    """

    qty_lots: int
    value_atoms: int
    loss_atoms: int
    fund_equity_atoms: int
    capacity_lots: int
    forced: bool
    capped_lots: int = 0


class AdlLeg(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One counterparty closed by auto-deleveraging: its rank (1 = first) and score in the queue."""

    account_id: AccountId
    rank: int
    score: str
    quantile: int
    qty_lots: int
    value_atoms: int
    realized_pnl_atoms: int
    canceled_order_ids: tuple[OrderId, ...]


class AdlStep(msgspec.Struct, frozen=True, tag=True, kw_only=True, gc=False):
    """Auto-deleveraging of ``qty_lots`` the fund could not take, at the bankruptcy price.

    ``shortfall_atoms`` is the part of the deficit (on the mark) the counterparties bore.
    """

    qty_lots: int
    value_atoms: int
    shortfall_atoms: int
    ranking: str
    queue_size: int
    legs: tuple[AdlLeg, ...]


class DeficitStep(msgspec.Struct, frozen=True, tag=True, kw_only=True, gc=False):
    """The insurance fund paid an account's negative balance back toward zero, as far as its equity went.

    ``uncovered_atoms`` is what the fund could not cover (it never pays beyond its equity).
    """

    amount_atoms: int
    fund_cash_atoms: int
    uncovered_atoms: int = 0


class ConversionStep(msgspec.Struct, frozen=True, tag=True, kw_only=True, gc=False):
    """Multi-Assets Mode: collateral sold to the insurance fund at the index less the discount.

    ``price_atoms = floor(index_atoms x (1 - discount_e8))`` per whole unit; ``sold_atoms =
    ceil(debt x 10**decimals / price)`` (at most what the account holds, and at most what the
    fund's equity can pay for); ``proceeds_atoms = floor(sold x price / 10**decimals)`` goes to the
    account's settlement balance. ``haircut_value_atoms`` is what the sold collateral counted for
    in the margin before the sale.
    """

    asset: AssetId
    sold_atoms: int
    index_atoms: int
    discount_e8: int
    price_atoms: int
    proceeds_atoms: int
    haircut_value_atoms: int
    debt_before_atoms: int
    debt_after_atoms: int


LiquidationStepT = (
    CancelStep | OrderStep | MarginKeptStep | FeeStep | TakeoverStep | AdlStep | DeficitStep | ConversionStep
)


class LiquidationExplained(Event, frozen=True, tag=True, kw_only=True, gc=False):
    """Why and how a scope was liquidated: its inputs, every formula value, each action and its result.

    ``scope`` is ``CROSS``, an isolated market's name, or ``FUND`` (the insurance fund deleveraged
    because its equity fell below zero). ``market`` is the position acted on (``None`` when
    cancelling the scope's orders was enough). ``outcome``: ``ORDERS_CANCELED`` (cancelling was enough), ``PARTIAL``
    (reduced back under 100%), ``CLOSED`` (the whole position), ``FUND_DELEVERAGED``. ``bankruptcy_value_atoms`` / ``bankruptcy_price_ticks`` are of the
    position as the last order step saw it; ``liquidation_price_ticks`` is the displayed price
    (bracket loop) before the liquidation.
    """

    account_id: AccountId
    scope: str
    market: MarketId | None
    outcome: str
    threshold_e8: int
    before: ScopeFigures
    after: ScopeFigures
    liquidation_price_ticks: int | None
    bankruptcy_value_atoms: int | None
    bankruptcy_price_ticks: int | None
    liquidation_fee_e8: int
    partial_plan_lots: int
    steps: tuple[LiquidationStepT, ...]


class TransferReason(StrEnum):
    """Why the venue moved a position between accounts without the book."""

    INSURANCE_TAKEOVER = "INSURANCE_TAKEOVER"
    ADL = "ADL"


class PositionTransferred(Event, frozen=True, tag=True, kw_only=True, gc=False):
    """One side of a venue transfer at the bankruptcy price (no fee): insurance takeover or ADL.

    ``side`` is this account's side of the transfer; ``value_atoms`` its exact notional (rarely a
    whole number of ticks); ``position_lots`` the position after.
    """

    account_id: AccountId
    counterparty_id: AccountId
    market: MarketId
    reason: TransferReason
    side: Side
    qty_lots: int
    value_atoms: int
    realized_pnl_atoms: int
    position_lots: int


class BlockTradeBooked(Event, frozen=True, tag=True, kw_only=True, gc=False):
    """One side of an OTC block trade booked on the ledger (no book; ``perpx.engine.block``).

    Both sides share ``trade_id`` (from the venue's trade counter) and ``quote_id``; ``side`` is
    this account's, ``is_desk`` says whether it is the desk's side. ``fee_atoms`` as for a fill
    (the client pays the taker rate, the desk the maker rate); ``position_lots`` the position after.
    """

    trade_id: TradeId
    quote_id: str
    account_id: AccountId
    counterparty_id: AccountId
    market: MarketId
    side: Side
    price_ticks: int
    qty_lots: int
    is_desk: bool
    fee_atoms: int
    realized_pnl_atoms: int
    position_lots: int


class SpotBlockTradeBooked(Event, frozen=True, tag=True, kw_only=True, gc=False):
    """One side of a spot-style OTC block trade: wallets moved, no position (``perpx.engine.block``).

    Both sides share ``trade_id`` and ``quote_id``; ``side`` is this account's (``BUY`` received
    ``base_atoms`` of ``base_asset`` and paid ``quote_atoms`` of ``quote_asset``, the settlement
    asset). ``base_balance_atoms`` and ``quote_balance_atoms`` are this account's wallets after.
    """

    trade_id: TradeId
    quote_id: str
    account_id: AccountId
    counterparty_id: AccountId
    base_asset: AssetId
    quote_asset: AssetId
    side: Side
    base_atoms: int
    quote_atoms: int
    is_desk: bool
    base_balance_atoms: int
    quote_balance_atoms: int


class InsuranceFundChanged(Event, frozen=True, tag=True, kw_only=True, gc=False):
    """Cash moved between an account and the insurance fund: ``amount_atoms`` > 0 into the fund.

    ``reason`` is ``CLEARANCE_FEE`` (from the cross wallet, or the isolated margin of ``market``) or
    ``DEFICIT_COVER`` (to the cross wallet). ``fund_cash_atoms`` is the fund's cash after.
    """

    account_id: AccountId
    market: MarketId | None
    reason: str
    amount_atoms: int
    fund_cash_atoms: int


# ---------------------------------------------------------------- collateral and secured loans (issue 20)


class MultiAssetsModeChanged(Event, frozen=True, tag=True, kw_only=True, gc=False):
    """The account's Multi-Assets Mode is now ``enabled``; ``collateral_atoms`` is what its collateral
    counts for in the cross margin balance (index x (1 - haircut), 0 when off)."""

    account_id: AccountId
    enabled: bool
    collateral_atoms: int


class CollateralConverted(Event, frozen=True, tag=True, kw_only=True, gc=False):
    """A liquidation sold an account's collateral to the insurance fund to pay its settlement debt.

    The figures are the :class:`ConversionStep`'s; the fund's account receives ``sold_atoms`` of
    ``asset`` and pays ``proceeds_atoms`` of the settlement asset from its cash.
    """

    account_id: AccountId
    asset: AssetId
    sold_atoms: int
    index_atoms: int
    discount_e8: int
    price_atoms: int
    proceeds_atoms: int
    balance_atoms: int
    """The account's settlement balance after the conversion."""


class AssetIndexUpdated(Event, frozen=True, tag=True, kw_only=True, gc=False):
    """An asset's index after a quote: ``index_atoms`` is ``None`` while below quorum (stale)."""

    asset: AssetId
    index_atoms: int | None
    sources_used: int


class LoanBorrowed(Event, frozen=True, tag=True, kw_only=True, gc=False):
    """Money moved from the lender to the borrower; collateral moved into the loan."""

    loan_id: int
    account_id: AccountId
    lender_id: AccountId
    loan_asset: AssetId
    collateral_asset: AssetId
    loan_atoms: int
    collateral_atoms: int
    debt_atoms: int
    total_collateral_atoms: int
    ltv_e8: int


class LoanRepaid(Event, frozen=True, tag=True, kw_only=True, gc=False):
    """A repayment: interest first, then principal; ``closed`` when no debt is left."""

    loan_id: int
    account_id: AccountId
    loan_asset: AssetId
    collateral_asset: AssetId
    repaid_atoms: int
    interest_repaid_atoms: int
    principal_repaid_atoms: int
    collateral_returned_atoms: int
    debt_atoms: int
    collateral_atoms: int
    closed: bool


class LoanCollateralAdjusted(Event, frozen=True, tag=True, kw_only=True, gc=False):
    loan_id: int
    account_id: AccountId
    loan_asset: AssetId
    collateral_asset: AssetId
    direction: LtvDirection
    amount_atoms: int
    collateral_atoms: int
    ltv_before_e8: int
    ltv_after_e8: int


class LoanInterestAccrued(Event, frozen=True, tag=True, kw_only=True, gc=False):
    """Interest of every loan of ``loan_asset`` over ``minutes`` whole minutes, added to their debts."""

    loan_asset: AssetId
    minutes: int
    interest_atoms: int
    annual_rate_e8: int
    """The rate of the last minute accrued."""


class LoanMarginCalled(Event, frozen=True, tag=True, kw_only=True, gc=False):
    """A loan's LTV reached its margin-call level: add collateral or repay (once per crossing)."""

    loan_id: int
    account_id: AccountId
    loan_asset: AssetId
    collateral_asset: AssetId
    ltv_e8: int
    margin_call_ltv_e8: int
    liquidation_ltv_e8: int
    index_atoms: int


class LoanLiquidationStep(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    debt_repaid_atoms: int
    collateral_seized_atoms: int
    ltv_after_e8: int


class LoanLiquidated(Event, frozen=True, tag=True, kw_only=True, gc=False):
    """Collateral sold to the lender at the index in close-factor steps until the LTV is under the margin call.

    ``bad_debt_atoms`` is debt the collateral could not cover, written off as the lender's loss.
    """

    loan_id: int
    account_id: AccountId
    lender_id: AccountId
    loan_asset: AssetId
    collateral_asset: AssetId
    index_atoms: int
    ltv_before_e8: int
    liquidation_ltv_e8: int
    close_factor_e8: int
    penalty_e8: int
    steps: tuple[LoanLiquidationStep, ...]
    debt_repaid_atoms: int
    collateral_seized_atoms: int
    bad_debt_atoms: int
    collateral_returned_atoms: int
    debt_atoms: int
    collateral_atoms: int
    closed: bool


class ParentCreated(Event, frozen=True, tag=True, kw_only=True, gc=False):
    """The algo service's parent order ``parent_id`` is recorded (``CreateParent``)."""

    parent_id: ParentId
    account_id: AccountId
    market: MarketId
    side: Side
    qty_lots: int
    client_algo_id: ClientAlgoId
    algo_type: str


class ParentCancelRequested(Event, frozen=True, tag=True, kw_only=True, gc=False):
    parent_id: ParentId
    account_id: AccountId


class ParentEnded(Event, frozen=True, tag=True, kw_only=True, gc=False):
    """A parent ended; ``executed_lots`` is what its children executed, ``reason`` why it ended."""

    parent_id: ParentId
    account_id: AccountId
    status: ParentStatus
    executed_lots: int
    reason: str


class FlowOpened(Event, frozen=True, tag=True, kw_only=True, gc=False):
    """The venue's flow ``flow_id`` is recorded (``CreateFlow``)."""

    flow_id: int
    account_id: AccountId
    client_flow_id: str


class FlowNodeRecorded(Event, frozen=True, tag=True, kw_only=True, gc=False):
    """A node of flow ``flow_id`` went to ``status`` (``RecordFlowNode``)."""

    flow_id: int
    account_id: AccountId
    node: str
    status: str


class FlowCancelRequested(Event, frozen=True, tag=True, kw_only=True, gc=False):
    flow_id: int
    account_id: AccountId


class FlowEnded(Event, frozen=True, tag=True, kw_only=True, gc=False):
    """A flow ended, ``reason`` why."""

    flow_id: int
    account_id: AccountId
    status: ParentStatus
    reason: str


class Outcome(list[Event]):
    """Every event one command caused, in order, and which of them are the command's own answer.

    A list of events, as ``Engine.apply`` always returned, in three consecutive parts:

    * ``before``: work that was due by the command's time and ran first (index staleness, mark and
      premium samples, funding, and the triggers and liquidations those caused);
    * ``own``: the command's answer, from its handler (``OrderAccepted`` and its fills, or the
      refusal, for a ``PlaceOrder``): what an adapter replies with;
    * ``consequences``: what followed from it (conditional orders triggered, liquidations).

    Adapters read their answer from ``own`` and never guess it from the whole list.
    """

    __slots__ = ("own_end", "own_start")
    own_start: int
    own_end: int
    """Set by whoever fills the outcome (``Engine.apply``, :meth:`of`): no ``__init__`` of its own,
    so an outcome costs what a list costs to create, once per command."""

    @staticmethod
    def of(own: list[Event]) -> Outcome:
        """An outcome whose events are all the command's own (tests, fixtures)."""
        outcome = Outcome(own)
        outcome.own_start = 0
        outcome.own_end = len(outcome)
        return outcome

    @property
    def before(self) -> list[Event]:
        return self[: self.own_start]

    @property
    def own(self) -> list[Event]:
        return self[self.own_start : self.own_end]

    @property
    def consequences(self) -> list[Event]:
        return self[self.own_end :]


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
    | MarketParamsChanged
    | PositionSettled
    | SettlementLossShared
    | ClockAdvanced
    | IndexUpdated
    | IndexStaleChanged
    | MarkPriceUpdated
    | MarkClamped
    | FundingPaid
    | FundingSettled
    | ConditionalOrderAccepted
    | ConditionalOrderRejected
    | ConditionalOrderTriggered
    | ConditionalOrderCanceled
    | ConditionalOrderExpired
    | LiquidationExplained
    | PositionTransferred
    | InsuranceFundChanged
    | AssetIndexUpdated
    | LoanBorrowed
    | LoanRepaid
    | LoanCollateralAdjusted
    | LoanInterestAccrued
    | LoanMarginCalled
    | LoanLiquidated
    | MultiAssetsModeChanged
    | CollateralConverted
    | SpotBlockTradeBooked
    | ParentCreated
    | ParentCancelRequested
    | ParentEnded
    | FlowOpened
    | FlowNodeRecorded
    | FlowCancelRequested
    | FlowEnded
)
