"""Rejection codes of the venue, grouped by the stage that refuses.

Codes are Binance USDS-M's where Binance has one (so the REST adapter passes
them through unchanged); venue-specific refusals use the -9xxx range. A
rejection is data carried by an event, never an exception.
"""

from __future__ import annotations

from enum import IntEnum


class RejectCode(IntEnum):
    """Why a command was refused. The event's message says it for a person."""

    # request shape and filters
    PRICE_FILTER = -1013
    BAD_SYMBOL = -1121
    BAD_PARAMETER = -1102
    QTY_NOT_POSITIVE = -4003
    PRICE_NOT_POSITIVE = -4001
    QTY_ABOVE_MAX = -4005
    PRICE_BELOW_MIN = -4024
    PRICE_ABOVE_MAX = -4025
    PRICE_NOT_TICK = -4014
    QTY_NOT_STEP = -4023
    PERCENT_PRICE = -4016
    MIN_NOTIONAL = -4164
    DUPLICATE_CLIENT_ORDER_ID = -4116
    MAX_OPEN_ORDERS = -2025
    MARKET_TAKE_BOUND = -4131
    # matching outcomes refused up front
    FOK_NOT_FILLABLE = -5021
    POST_ONLY_WOULD_TAKE = -5022
    REDUCE_ONLY_REJECTED = -2022
    MARKET_REDUCE_ONLY = -4400
    # risk
    MARGIN_INSUFFICIENT = -2019
    BALANCE_INSUFFICIENT = -2018
    MAX_POSITION_AT_LEVERAGE = -2027
    LEVERAGE_INVALID = -4028
    MARGIN_TYPE_UNCHANGED = -4046
    MARGIN_TYPE_OPEN_ORDERS = -4047
    MARGIN_TYPE_POSITION = -4048
    ISOLATED_MARGIN_NO_POSITION = -4051
    ISOLATED_MARGIN_CROSS = -4052
    # orders
    UNKNOWN_ORDER = -2011
    ORDER_NOT_FOUND = -2013
    AMEND_BELOW_FILLED = -4030
    AMEND_NOTHING = -5027
    # conditional (algo) orders
    ORDER_WOULD_TRIGGER = -2021
    MAX_ALGO_ORDERS = -4045
    REDUCE_ONLY_CONFLICT = -4062
    CLOSE_POSITION_TYPE = -4136
    QTY_WITH_CLOSE_POSITION = -4137
    # venue-specific
    UNKNOWN_ACCOUNT = -9001
    UNKNOWN_ASSET = -9002
    AMOUNT_NOT_POSITIVE = -9003
    DUPLICATE_TX = -9004
    MARKET_CLOSED = -9005
    ACCOUNT_EXISTS = -9006
    CLOCK_BACKWARDS = -9007
    OPEN_INTEREST_CAP = -9008
    MARKET_SETTLED = -9009
    BEYOND_BANKRUPTCY = -9010
    """The order's price is beyond its owner's bankruptcy price for its quantity (``mechanics.md`` 29)."""
    # pricing (index sources and marks): -91xx
    UNKNOWN_SOURCE = -9101
    QUOTE_OUT_OF_ORDER = -9102
    MARK_FROM_INDEX = -9103
    # non-live market parameter changes (ChangeMarketParams): -9406..-9429
    PARAM_FIXED = -9406
    """A market parameter that no change may touch (base asset, price and quantity units)."""
    ORDERS_OFF_FILTER = -9407
    """Resting orders the new filters would refuse; the change names them unless told to cancel them."""
    BRACKETS_UNDER_MAINTENANCE = -9408
    """New brackets would put accounts at or over their maintenance margin."""
    INDEX_QUORUM = -9409
    """New index sources leave fewer fresh quotes than the quorum: the index would go stale at once."""
    INDEX_TABLE = -9410
    """A change would add or remove a market's index table (how its mark is priced)."""
    TICK_NOT_UNIT = -9411
    """A new tick size that is not a whole multiple of the market's price unit (fixed at listing)."""
    LOT_NOT_UNIT = -9412
    """A new lot size that is not a whole multiple of the market's quantity unit (fixed at listing)."""
    # collateral and secured loans: -9530..-9559
    NOT_LOANABLE = -9530
    NOT_COLLATERAL = -9531
    LOAN_ABOVE_INITIAL_LTV = -9532
    LENDER_INSUFFICIENT = -9533
    COLLATERAL_INDEX_STALE = -9534
    LOAN_NOT_FOUND = -9535
    REPAY_ABOVE_DEBT = -9536
    LENDING_NOT_CONFIGURED = -9537
    COLLATERAL_ABOVE_MAX = -9538
    LENDER_CANNOT_BORROW = -9539
    LOAN_AMOUNT_CHOICE = -9540
    """A borrow gives both or neither of the loan and the collateral amount."""
    LOAN_TOO_SMALL = -9541
    # Multi-Assets Mode: Binance's codes, and -9542..-9558
    MULTI_ASSETS_ISOLATED = -4167
    """Multi-Assets Mode cannot be turned on while a market of the account is set to isolated."""
    ISOLATED_IN_MULTI_ASSETS = -4168
    """A market cannot be set to isolated margin in Multi-Assets Mode."""
    MULTI_ASSETS_OPEN_ORDERS = -4170
    """Multi-Assets Mode changes only with no open order (and, here, no open position)."""
    MULTI_ASSETS_UNCHANGED = -4171
    """The account is already in the asked mode."""
    MULTI_ASSETS_NEGATIVE_BALANCE = -4172
    """Multi-Assets Mode cannot be turned off while the settlement balance is below zero."""
    COLLATERAL_STALE_FOR_RISK = -9542
    """An order or withdrawal needs collateral whose index is stale: it counts at zero until fresh."""
    # OTC block trades: -9560, -9561 and -9569 (the desk's adapter uses -9562 .. -9568 and -9570)
    BLOCK_SAME_ACCOUNT = -9560
    """A block trade needs two different accounts: the client's and the desk's."""
    BLOCK_QUOTE_ID = -9561
    """A block trade names the quote it settles (1 to 64 characters)."""
    BLOCK_INSURANCE_ACCOUNT = -9569
    """The insurance fund's account takes no block trades."""
    # OTC spot-style block trades (issue 21, spot pairs): -9571..-9579
    SPOT_BLOCK_BASE_ASSET = -9571
    """The base asset of a spot block trade must be a listed asset other than the settlement asset."""
    SPOT_BLOCK_FUNDS = -9572
    """A side of a spot block trade does not hold (or may not release) what it must deliver."""
    # parent orders of the algo service: Binance's algo codes where it has one, else -9580..-9599
    UNKNOWN_PARENT = -20124
    """Binance's "Invalid algo id or it has been completed." (developers.binance.com, error codes, 20xxx)."""
    BAD_CLIENT_ALGO_ID = -20130
    """Binance's "Invalid data sent for a parameter." for a ``clientAlgoId`` that is empty or too long."""
    DUPLICATE_CLIENT_ALGO_ID = -20132
    """Binance's "The client algo id is duplicated."."""
    NOT_THE_PARENTS = -9580
    """A child names a parent of another account or market, or one that no longer works."""
    PARENT_NOT_DONE = -9581
    """A parent cannot be FINISHED with lots unexecuted (it ends EXPIRED, saying why)."""
    # flows of the algo service: -9590..-9599
    UNKNOWN_FLOW = -9593
    """A flow command names no working flow of the account (or no flow at all)."""
    BAD_CLIENT_FLOW_ID = -9595
    """A ``clientFlowId`` empty, over 32 characters, or used before by the account."""
    BAD_FLOW_NODE = -9597
    """A node record with no node name or status (the flow runner always sends both)."""
