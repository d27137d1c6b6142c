# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The order book and the pre-trade margin check of one market in C integers (prototype, issue 11).

A measured answer to "what does the engine cost when the hot path is native?": the same rules as
:mod:`perpx.engine` for the subset below, in ``cdef class``\\ es over C arrays and ``int64``
integers, driven from Python one command per call. It is not part of the installed engine:
``perpx.native.load()`` compiles it on demand (``benchmarks/native.py``,
``tests/native/test_native_differential.py``), and ``perpx.engine`` never imports it.

Subset covered (the rest is refused at the boundary with ``NativeUnsupported``)
-------------------------------------------------------------------------------
* one market of a :class:`~perpx.engine.config.VenueConfig`, its settlement asset only;
* ``CreateAccount``, ``Deposit``, ``SetMarkPrice``, ``PlaceOrder`` (LIMIT GTC / IOC, MARKET IOC;
  every STP mode; no reduce-only, no client order id), ``CancelOrder`` by order id;
* cross margin at the market's default leverage; fee tiers on the rolling 30-day volume;
* the placement stages of ``placing.place`` for that subset, in the same order with the same
  reject codes: filters, the margin check against the cross available balance (order margin
  increase plus open loss, max notional at leverage, open-interest cap), the bankruptcy check,
  the market take bound; matching in price-time priority with the fill guard and self-trade
  prevention; settlement of both sides (position, signed cost, realised PnL, fee, rebate capped
  by the fee account, volume); order margin recomputed for every position touched.

Not covered: liquidation, funding and index pricing, conditional orders, amend, withdrawals,
isolated margin, leverage changes, market modes, messages of refusals (codes only).

Integer ranges (guarded where values enter)
-------------------------------------------
Every Python int that enters is converted with a range check: outside ``int64`` it raises
``NativeRangeError`` naming the field. Prices outside ``[min_price, max_price]`` and quantities
outside ``[1, max_qty]`` are refused by the engine's own filters (with its codes) before any
product is formed. Products that can exceed ``int64`` (notional x rate, cost x lots, notional x
lots) are formed in ``__int128``; a result stored in the state (balances, cost, sums of resting
notional, fees, volume) must fit ``|x| <= 2**62`` or the command raises ``NativeRangeError``
*before* it changes anything (per-order bound) or, for sums that only a broken invariant could
push that far, stops with ``OverflowError``. An order's notional at its limit price (MARKET: at
its take bound) must be at most ``2**61`` atoms, a deposit at most ``2**61``, a mark at most the
market's ``max_price_ticks``: outside those the prototype refuses with ``NativeRangeError``.
"""

from libc.stdint cimport int32_t, int64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memmove, memset

cdef extern from *:
    ctypedef long long wide "__int128"

cdef extern from "Python.h":
    long long PyLong_AsLongLongAndOverflow(object, int*) except? -1


from perpx.native import NativeRangeError, NativeUnsupported


cdef int64_t RATE_SCALE = 100_000_000
cdef int64_t NS_PER_DAY = 86_400_000_000_000
cdef wide STATE_LIMIT = 4_611_686_018_427_387_904  # 2**62: the largest magnitude a stored money figure may take
cdef wide ORDER_LIMIT = 2_305_843_009_213_693_952  # 2**61: the largest notional of one order, or of one deposit

cdef enum:
    WINDOW_DAYS = 30

# Reject codes: perpx.engine.codes.RejectCode values (Binance USDS-M where Binance has one).
cdef enum:
    PRICE_FILTER = -1013
    BAD_SYMBOL = -1121
    BAD_PARAMETER = -1102
    QTY_NOT_POSITIVE = -4003
    PRICE_NOT_POSITIVE = -4001
    QTY_ABOVE_MAX = -4005
    PRICE_BELOW_MIN = -4024
    PRICE_ABOVE_MAX = -4025
    PERCENT_PRICE = -4016
    MIN_NOTIONAL = -4164
    MAX_OPEN_ORDERS = -2025
    MARKET_TAKE_BOUND = -4131
    MARGIN_INSUFFICIENT = -2019
    MAX_POSITION_AT_LEVERAGE = -2027
    UNKNOWN_ORDER = -2011
    UNKNOWN_ACCOUNT = -9001
    UNKNOWN_ASSET = -9002
    AMOUNT_NOT_POSITIVE = -9003
    DUPLICATE_TX = -9004
    MARKET_CLOSED = -9005
    OPEN_INTEREST_CAP = -9008
    BEYOND_BANKRUPTCY = -9010

# Self-trade prevention modes
cdef enum:
    STP_NONE = 0
    STP_EXPIRE_TAKER = 1
    STP_EXPIRE_MAKER = 2
    STP_EXPIRE_BOTH = 3

# Event kinds of the log, and expiry reasons (perpx.engine.events.ExpireReason)
cdef enum:
    EV_FILL = 1
    EV_EXPIRED = 2
    EV_CANCELED = 3
    WHY_IOC_REMAINDER = 1
    WHY_MARKET_TAKE_BOUND = 2
    WHY_NO_LIQUIDITY = 3
    WHY_STP_TAKER = 4
    WHY_STP_MAKER = 5
    WHY_BANKRUPTCY = 6

EXPIRE_REASONS = {
    WHY_IOC_REMAINDER: "IOC_REMAINDER",
    WHY_MARKET_TAKE_BOUND: "MARKET_TAKE_BOUND",
    WHY_NO_LIQUIDITY: "NO_LIQUIDITY",
    WHY_STP_TAKER: "STP_TAKER",
    WHY_STP_MAKER: "STP_MAKER",
    WHY_BANKRUPTCY: "BANKRUPTCY",
}


cdef struct OrderRec:
    int64_t order_id
    int64_t price_ticks
    int64_t qty_lots
    int64_t filled_lots
    int32_t account
    int32_t side  # +1 buy, -1 sell
    int32_t prev  # slots in the level's FIFO queue, -1 at either end; ``next`` also chains free slots
    int32_t next
    int32_t stp


cdef struct Level:
    int64_t key  # sign-adjusted price: +price for bids, -price for asks; ascending, best last
    int32_t head
    int32_t tail


cdef struct SideRec:
    Level* levels
    int32_t count
    int32_t capacity
    int64_t sign


cdef struct AccountRec:
    int64_t wallet_atoms
    int64_t qty_lots
    int64_t cost_atoms
    int64_t realized_pnl_atoms
    int64_t leverage
    int64_t buy_qty_lots
    int64_t buy_notional_atoms
    int64_t sell_qty_lots
    int64_t sell_notional_atoms
    int64_t order_margin_atoms
    int64_t open_orders
    int64_t volume_30d_atoms
    int64_t expired_through_day  # expiry already ran for this day
    int64_t volume_day[WINDOW_DAYS]  # ring by day % 30: the day each bucket holds
    int64_t volume_atoms[WINDOW_DAYS]
    bint has_position


cdef struct EventRec:
    int64_t kind
    int64_t trade_id
    int64_t order_id  # fill: the taker's
    int64_t other_id  # fill: the maker's
    int64_t account  # fill: the taker's
    int64_t other_account  # fill: the maker's
    int64_t price_ticks
    int64_t qty_lots  # expiry, cancel: leaves
    int64_t fee_atoms  # fill: the taker's; expiry: the reason
    int64_t other_fee_atoms
    int64_t realized_atoms
    int64_t other_realized_atoms


cdef inline int64_t _arg(object value, str name) except? -1:
    """A Python int as int64, or ``NativeRangeError`` naming ``name``; floats are a ``TypeError``."""
    cdef int overflow = 0
    cdef long long out = PyLong_AsLongLongAndOverflow(value, &overflow)
    if overflow:
        raise NativeRangeError(f"{name}={value} is outside the native prototype's int64 range")
    return out


cdef inline wide _floor_div(wide n, wide d):
    cdef wide q = n / d
    if n % d != 0 and n < 0:
        q -= 1
    return q


cdef inline wide _ceil_div(wide n, wide d):
    cdef wide q = n / d
    if n % d != 0 and n > 0:
        q += 1
    return q


cdef inline int64_t _stored(wide value) except? -1:
    """``value`` as a state figure; beyond ``2**62`` is a broken range invariant, not a refusal."""
    if value > STATE_LIMIT or value < -STATE_LIMIT:
        raise OverflowError("a native state figure left the +/-2**62 range (an invariant of the prototype)")
    return <int64_t>value


cdef inline int64_t _fee_atoms(int64_t notional, int64_t rate_e8):
    """formulas.fee_atoms: a charge rounds up, a rebate toward zero."""
    if rate_e8 >= 0:
        return <int64_t>_ceil_div(<wide>notional * rate_e8, RATE_SCALE)
    return -<int64_t>((<wide>notional * -rate_e8) / RATE_SCALE)


cdef inline int64_t _opening_notional(int64_t side_lots, int64_t side_notional, int64_t closable_lots):
    """accounts._opening_notional: the part of a side's notional beyond what closes the position, up."""
    if side_lots <= closable_lots:
        return 0
    if closable_lots == 0:
        return side_notional
    return <int64_t>_ceil_div(<wide>side_notional * (side_lots - closable_lots), side_lots)


cdef class NativeBook:
    """Bids and asks of one market: price levels in price-time priority over a pool of order slots.

    Invariants: each side's ``levels`` is sorted by sign-adjusted key, ascending, with no empty
    level (the best price is the last); an order's place in its level's linked queue is its time
    priority; ``slot_of[order_id]`` is the slot of every resting order and -1 for every other id.
    """

    cdef OrderRec* orders
    cdef int32_t capacity
    cdef int32_t free_slot
    cdef int32_t* slot_of
    cdef int64_t ids_capacity
    cdef SideRec sides[2]

    def __cinit__(self):
        self.capacity = 1024
        self.orders = <OrderRec*>malloc(self.capacity * sizeof(OrderRec))
        self.ids_capacity = 4096
        self.slot_of = <int32_t*>malloc(self.ids_capacity * sizeof(int32_t))
        if self.orders == NULL or self.slot_of == NULL:
            raise MemoryError()
        memset(self.slot_of, 0xFF, self.ids_capacity * sizeof(int32_t))
        self._chain_free(0)
        cdef int i
        for i in range(2):
            self.sides[i].capacity = 64
            self.sides[i].count = 0
            self.sides[i].sign = 1 if i == 0 else -1
            self.sides[i].levels = <Level*>malloc(64 * sizeof(Level))
            if self.sides[i].levels == NULL:
                raise MemoryError()

    def __dealloc__(self):
        free(self.orders)
        free(self.slot_of)
        free(self.sides[0].levels)
        free(self.sides[1].levels)

    cdef void _chain_free(self, int32_t first):
        cdef int32_t i
        for i in range(first, self.capacity - 1):
            self.orders[i].next = i + 1
        self.orders[self.capacity - 1].next = -1
        self.free_slot = first

    cdef int32_t new_order(self, int64_t order_id, int32_t account, int32_t side, int64_t price_ticks,
                           int64_t qty_lots, int32_t stp) except -1:
        """A slot for a new order (not yet queued); pointers into the pool are stale after this call."""
        cdef int32_t slot
        cdef int64_t ids
        cdef OrderRec* grown
        cdef int32_t* grown_ids
        cdef OrderRec* order
        if self.free_slot < 0:
            grown = <OrderRec*>realloc(self.orders, 2 * self.capacity * sizeof(OrderRec))
            if grown == NULL:
                raise MemoryError()
            self.orders = grown
            self.capacity *= 2
            self._chain_free(self.capacity // 2)
        if order_id >= self.ids_capacity:
            ids = self.ids_capacity
            while order_id >= ids:
                ids *= 2
            grown_ids = <int32_t*>realloc(self.slot_of, ids * sizeof(int32_t))
            if grown_ids == NULL:
                raise MemoryError()
            memset(grown_ids + self.ids_capacity, 0xFF, (ids - self.ids_capacity) * sizeof(int32_t))
            self.slot_of = grown_ids
            self.ids_capacity = ids
        slot = self.free_slot
        self.free_slot = self.orders[slot].next
        order = &self.orders[slot]
        order.order_id = order_id
        order.account = account
        order.side = side
        order.price_ticks = price_ticks
        order.qty_lots = qty_lots
        order.filled_lots = 0
        order.prev = -1
        order.next = -1
        order.stp = stp
        return slot

    cdef void release(self, int32_t slot):
        """Return a slot that is not queued (filled, cancelled or never rested) to the pool."""
        self.slot_of[self.orders[slot].order_id] = -1
        self.orders[slot].next = self.free_slot
        self.free_slot = slot

    cdef int32_t find_level(self, SideRec* side, int64_t key):
        """Index of the level with ``key``, or ``-(insertion point) - 1``."""
        cdef int32_t low = 0
        cdef int32_t high = side.count
        cdef int32_t middle
        # most activity is at the touch: look there before bisecting
        if high > 0 and side.levels[high - 1].key == key:
            return high - 1
        while low < high:
            middle = (low + high) >> 1
            if side.levels[middle].key < key:
                low = middle + 1
            else:
                high = middle
        if low < side.count and side.levels[low].key == key:
            return low
        return -low - 1

    cdef int rest(self, int32_t slot) except -1:
        """Queue the order in ``slot`` at the back of its price level (time priority)."""
        cdef OrderRec* order = &self.orders[slot]
        cdef SideRec* side = &self.sides[0 if order.side > 0 else 1]
        cdef int64_t key = order.price_ticks * side.sign
        cdef int32_t index = self.find_level(side, key)
        cdef Level* level
        cdef Level* grown
        if index < 0:
            index = -index - 1
            if side.count == side.capacity:
                grown = <Level*>realloc(side.levels, 2 * side.capacity * sizeof(Level))
                if grown == NULL:
                    raise MemoryError()
                side.levels = grown
                side.capacity *= 2
            if index < side.count:
                memmove(&side.levels[index + 1], &side.levels[index], (side.count - index) * sizeof(Level))
            side.count += 1
            level = &side.levels[index]
            level.key = key
            level.head = slot
            level.tail = slot
            order.prev = -1
        else:
            level = &side.levels[index]
            order.prev = level.tail
            self.orders[level.tail].next = slot
            level.tail = slot
        order.next = -1
        self.slot_of[order.order_id] = slot
        return 0

    cdef void unqueue(self, int32_t slot):
        """Take the order in ``slot`` out of its level (the level goes when it empties); slot kept."""
        cdef OrderRec* order = &self.orders[slot]
        cdef SideRec* side = &self.sides[0 if order.side > 0 else 1]
        cdef int32_t index = self.find_level(side, order.price_ticks * side.sign)
        cdef Level* level = &side.levels[index]
        if order.prev >= 0:
            self.orders[order.prev].next = order.next
        else:
            level.head = order.next
        if order.next >= 0:
            self.orders[order.next].prev = order.prev
        else:
            level.tail = order.prev
        if level.head < 0:
            side.count -= 1
            if index < side.count:
                memmove(&side.levels[index], &side.levels[index + 1], (side.count - index) * sizeof(Level))

    cdef inline int32_t head(self, int32_t side_sign):
        """Slot of the highest-priority order of the side an order of ``side_sign`` trades against."""
        cdef SideRec* side = &self.sides[1 if side_sign > 0 else 0]
        if side.count == 0:
            return -1
        return side.levels[side.count - 1].head

    cdef inline bint best_opposite(self, int32_t side_sign, int64_t* price_ticks):
        """The best price an order of ``side_sign`` could trade at; False when that side is empty."""
        cdef SideRec* side = &self.sides[1 if side_sign > 0 else 0]
        if side.count == 0:
            return False
        price_ticks[0] = side.levels[side.count - 1].key * side.sign
        return True

    def resting(self):
        """``[(order_id, account_id, side, price_ticks, leaves_lots), ...]``: bids then asks, each best
        level first and in queue order (``BookSide.orders`` of the engine)."""
        out = []
        cdef int i, n
        cdef int32_t slot
        cdef SideRec* side
        cdef OrderRec* order
        for i in range(2):
            side = &self.sides[i]
            for n in range(side.count - 1, -1, -1):
                slot = side.levels[n].head
                while slot >= 0:
                    order = &self.orders[slot]
                    out.append((order.order_id, order.account, order.side, order.price_ticks,
                                order.qty_lots - order.filled_lots))
                    slot = order.next
        return out

    def depth(self):
        """``(bids, asks)`` as ``[(price_ticks, total_leaves_lots), ...]`` from the best price outward."""
        books = []
        cdef int i, n
        cdef int32_t slot
        cdef int64_t total
        cdef SideRec* side
        for i in range(2):
            side = &self.sides[i]
            levels = []
            for n in range(side.count - 1, -1, -1):
                total = 0
                slot = side.levels[n].head
                while slot >= 0:
                    total += self.orders[slot].qty_lots - self.orders[slot].filled_lots
                    slot = self.orders[slot].next
                levels.append((side.levels[n].key * side.sign, total))
            books.append(levels)
        return books[0], books[1]


cdef class NativeEngine:
    """One market's book, accounts and margin check; ``apply(command)`` as ``Engine.apply`` does
    for the covered subset (module docstring), answering with an int instead of events:

    * ``PlaceOrder``: the new order id (> 0), or the negative ``RejectCode`` of its refusal;
    * ``CancelOrder``, ``Deposit``, ``SetMarkPrice``: 0, or the negative code;
    * ``CreateAccount``: the new account id.

    Fills, expiries and cancels go to an event log in C memory (``events()`` reads and clears it),
    so the hot path creates no Python object per event.
    """

    cdef readonly NativeBook book
    cdef AccountRec* accounts  # index = account id; slot 0 unused
    cdef readonly int32_t accounts_count
    cdef int32_t accounts_capacity
    cdef EventRec* log
    cdef int64_t log_count
    cdef int64_t log_capacity
    cdef readonly int64_t now_ns
    cdef readonly int64_t next_order_id
    cdef readonly int64_t next_trade_id
    cdef readonly int64_t mark_ticks
    cdef readonly int64_t index_ticks
    cdef readonly int64_t fees_atoms
    cdef readonly int64_t open_interest_lots
    cdef readonly int64_t deposits_atoms
    cdef bint has_mark
    # market spec, as C integers
    cdef int64_t contract_atoms
    cdef int64_t min_price_ticks
    cdef int64_t max_price_ticks
    cdef int64_t min_qty_lots
    cdef int64_t max_qty_lots
    cdef int64_t market_max_qty_lots
    cdef int64_t min_notional_atoms
    cdef int64_t percent_price_up_e8
    cdef int64_t percent_price_down_e8
    cdef int64_t market_take_bound_e8
    cdef int64_t max_open_orders
    cdef int64_t default_leverage
    cdef int64_t cap_atoms  # max notional at the default leverage
    cdef int64_t max_open_interest_lots  # -1: no cap
    cdef bint upnl_conservative
    cdef int64_t mark_index_band_e8
    cdef int64_t tiers_count
    cdef int64_t tier_volume_atoms[16]
    cdef int64_t tier_maker_e8[16]
    cdef int64_t tier_taker_e8[16]
    cdef int64_t max_fee_rate_e8
    cdef readonly object market
    cdef readonly object asset
    cdef object tx_ids
    cdef object place_type
    cdef object cancel_type
    cdef object create_type
    cdef object deposit_type
    cdef object mark_type
    cdef object market_order
    cdef object limit_order
    cdef object gtc
    cdef object ioc
    cdef object stp_modes
    cdef object clamp

    def __cinit__(self):
        self.accounts_capacity = 128
        self.accounts = <AccountRec*>malloc(self.accounts_capacity * sizeof(AccountRec))
        self.log_capacity = 4096
        self.log = <EventRec*>malloc(self.log_capacity * sizeof(EventRec))
        if self.accounts == NULL or self.log == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.accounts)
        free(self.log)

    def __init__(self, config, market):
        """The engine of ``market`` (a ``MarketId`` of ``config``, a ``VenueConfig``).

        Raises ``NativeRangeError`` when a figure of the market cannot be held in the prototype's
        ranges, ``NativeUnsupported`` for a market with index sources (its mark is not manual).
        """
        from perpx.engine import commands
        from perpx.engine.pricing.mark import clamp_to_index_band

        spec = config.markets[market]
        if spec.index is not None:
            raise NativeUnsupported(f"{market} takes its mark from index sources; the prototype needs a manual mark")
        self.book = NativeBook()
        self.market = market
        self.asset = config.settlement_asset
        self.tx_ids = set()
        self.accounts_count = 0
        self.log_count = 0
        self.now_ns = 0
        self.next_order_id = 1
        self.next_trade_id = 1
        self.has_mark = False
        self.fees_atoms = 0
        self.open_interest_lots = 0
        self.deposits_atoms = 0
        self.contract_atoms = _arg(spec.contract_atoms, "contract_atoms")
        self.min_price_ticks = _arg(spec.min_price_ticks, "min_price_ticks")
        self.max_price_ticks = _arg(spec.max_price_ticks, "max_price_ticks")
        self.min_qty_lots = _arg(spec.min_qty_lots, "min_qty_lots")
        self.max_qty_lots = _arg(spec.max_qty_lots, "max_qty_lots")
        self.market_max_qty_lots = _arg(spec.market_max_qty_lots, "market_max_qty_lots")
        self.min_notional_atoms = _arg(spec.min_notional_atoms, "min_notional_atoms")
        self.percent_price_up_e8 = _arg(spec.percent_price_up_e8, "percent_price_up_e8")
        self.percent_price_down_e8 = _arg(spec.percent_price_down_e8, "percent_price_down_e8")
        self.market_take_bound_e8 = _arg(spec.market_take_bound_e8, "market_take_bound_e8")
        self.max_open_orders = _arg(spec.max_open_orders, "max_open_orders")
        self.default_leverage = _arg(spec.default_leverage, "default_leverage")
        self.cap_atoms = _arg(spec.max_notional_at_leverage(spec.default_leverage), "max notional at leverage")
        cap = spec.risk.max_open_interest_lots
        self.max_open_interest_lots = -1 if cap is None else _arg(cap, "max_open_interest_lots")
        self.upnl_conservative = spec.risk.upnl_collateral_conservative
        self.mark_index_band_e8 = _arg(spec.risk.mark_index_band_e8, "mark_index_band_e8")
        if self.max_price_ticks > ORDER_LIMIT // 4 or self.cap_atoms > ORDER_LIMIT or self.contract_atoms <= 0:
            raise NativeRangeError(f"{market}: max_price or the notional cap is beyond the prototype's range")
        if len(config.fee_tiers) > 16:
            raise NativeUnsupported("more than 16 fee tiers")
        self.tiers_count = len(config.fee_tiers)
        self.max_fee_rate_e8 = 0
        for i, tier in enumerate(config.fee_tiers):
            self.tier_volume_atoms[i] = _arg(tier.min_30d_volume_atoms, "min_30d_volume_atoms")
            self.tier_maker_e8[i] = _arg(tier.maker_e8, "maker_e8")
            self.tier_taker_e8[i] = _arg(tier.taker_e8, "taker_e8")
            self.max_fee_rate_e8 = max(self.max_fee_rate_e8, self.tier_maker_e8[i], self.tier_taker_e8[i])
        self.place_type = commands.PlaceOrder
        self.cancel_type = commands.CancelOrder
        self.create_type = commands.CreateAccount
        self.deposit_type = commands.Deposit
        self.mark_type = commands.SetMarkPrice
        self.market_order = commands.OrderType.MARKET
        self.limit_order = commands.OrderType.LIMIT
        self.gtc = commands.TimeInForce.GTC
        self.ioc = commands.TimeInForce.IOC
        self.stp_modes = {
            commands.StpMode.NONE: STP_NONE,
            commands.StpMode.EXPIRE_TAKER: STP_EXPIRE_TAKER,
            commands.StpMode.EXPIRE_MAKER: STP_EXPIRE_MAKER,
            commands.StpMode.EXPIRE_BOTH: STP_EXPIRE_BOTH,
        }
        self.clamp = clamp_to_index_band

    # ------------------------------------------------------------------ the Python boundary

    def apply(self, command):
        """Apply one ``perpx.engine.commands`` command of the covered subset; see the class docstring.

        Raises ``NativeUnsupported`` for a command type or option outside the subset and
        ``NativeRangeError`` for an int outside the prototype's range; both leave the state as it was.
        """
        cdef int64_t ts_ns = _arg(command.ts_ns, "ts_ns")
        kind = type(command)
        if kind is self.place_type:
            if command.market != self.market:
                return self._reject_at(ts_ns, self._lookup_refusal(_arg(command.account_id, "account_id")))
            if command.reduce_only or command.client_order_id is not None:
                raise NativeUnsupported("reduce-only orders and client order ids are outside the native subset")
            order_type = command.order_type
            tif = command.tif
            if order_type is self.market_order:
                if tif is not self.ioc and tif is not self.gtc:
                    raise NativeUnsupported(f"a MARKET order with tif {tif} is outside the native subset")
            elif tif is not self.gtc and tif is not self.ioc:
                raise NativeUnsupported(f"tif {tif} is outside the native subset (GTC and IOC are covered)")
            price = command.price_ticks
            return self.place(
                ts_ns,
                _arg(command.account_id, "account_id"),
                _arg(command.side, "side"),
                order_type is self.market_order,
                tif is self.gtc,
                price is not None,
                0 if price is None else _arg(price, "price_ticks"),
                _arg(command.qty_lots, "qty_lots"),
                self.stp_modes[command.stp],
            )
        if kind is self.cancel_type:
            if command.market != self.market:
                return self._reject_at(ts_ns, self._lookup_refusal(_arg(command.account_id, "account_id")))
            if command.order_id is None:
                raise NativeUnsupported("cancel by client order id is outside the native subset")
            return self.cancel(ts_ns, _arg(command.account_id, "account_id"), _arg(command.order_id, "order_id"))
        if kind is self.create_type:
            return self.create_account(ts_ns)
        if kind is self.deposit_type:
            if command.asset != self.asset:
                return self._reject_at(ts_ns, UNKNOWN_ASSET)
            if not command.tx_id:
                return self._reject_at(ts_ns, BAD_PARAMETER)
            if command.tx_id in self.tx_ids:
                return self._reject_at(ts_ns, DUPLICATE_TX)
            code = self.deposit(ts_ns, _arg(command.account_id, "account_id"), _arg(command.amount_atoms, "amount_atoms"))
            if code == 0:
                self.tx_ids.add(command.tx_id)
            return code
        if kind is self.mark_type:
            if command.market != self.market:
                return self._reject_at(ts_ns, BAD_SYMBOL)
            index = _arg(command.index_ticks, "index_ticks")
            mark = _arg(command.mark_ticks, "mark_ticks")
            if mark <= 0 or index <= 0:
                return self._reject_at(ts_ns, PRICE_NOT_POSITIVE)
            return self.set_mark(ts_ns, index, self.clamp(mark, index, self.mark_index_band_e8))
        raise NativeUnsupported(f"{kind.__name__} is outside the native subset")

    def pack(self, commands):
        """``PlaceOrder`` and ``CancelOrder`` commands as one flat ``array('q')`` for :meth:`run_batch`.

        Eight int64 per command: kind (1 place, 2 cancel), ``ts_ns``, account id, side (cancel:
        order id), flags (1 MARKET, 2 GTC, 4 has a price), price, quantity, STP mode. The same
        boundary checks as :meth:`apply`, done once, before any command runs.
        """
        from array import array

        out = array("q")
        for command in commands:
            kind = type(command)
            if kind is self.place_type and command.market == self.market:
                if command.reduce_only or command.client_order_id is not None:
                    raise NativeUnsupported("reduce-only orders and client order ids are outside the native subset")
                tif = command.tif
                if tif is not self.gtc and tif is not self.ioc:
                    raise NativeUnsupported(f"tif {tif} is outside the native subset (GTC and IOC are covered)")
                price = command.price_ticks
                flags = (1 if command.order_type is self.market_order else 0) | (2 if tif is self.gtc else 0)
                out.extend((
                    1,
                    _arg(command.ts_ns, "ts_ns"),
                    _arg(command.account_id, "account_id"),
                    _arg(command.side, "side"),
                    flags | (0 if price is None else 4),
                    0 if price is None else _arg(price, "price_ticks"),
                    _arg(command.qty_lots, "qty_lots"),
                    self.stp_modes[command.stp],
                ))
            elif kind is self.cancel_type and command.market == self.market and command.order_id is not None:
                out.extend((
                    2,
                    _arg(command.ts_ns, "ts_ns"),
                    _arg(command.account_id, "account_id"),
                    _arg(command.order_id, "order_id"),
                    0, 0, 0, 0,
                ))
            else:
                raise NativeUnsupported(f"{kind.__name__} cannot be packed (places and cancels by id of {self.market})")
        return out

    def run_batch(self, const int64_t[::1] packed, int64_t[::1] answers):
        """Apply packed commands (:meth:`pack`) in one C loop: no Python object per command.

        ``answers[i]`` receives what :meth:`apply` would have returned for command ``i``. What this
        costs per command, against :meth:`apply`, is the price of the Python boundary. ``pack``
        checked every range; a buffer built otherwise that holds a bad side or kind stops at that
        command with the commands before it applied.
        """
        cdef Py_ssize_t count = packed.shape[0] // 8
        cdef Py_ssize_t i
        cdef const int64_t* c
        cdef int64_t flags
        if packed.shape[0] % 8 or answers.shape[0] < count:
            raise ValueError("packed holds 8 int64 per command and answers one per command")
        for i in range(count):
            c = &packed[8 * i]
            if c[0] == 1:
                flags = c[4]
                if c[3] != 1 and c[3] != -1:
                    raise NativeRangeError(f"side={c[3]} is neither +1 nor -1")
                answers[i] = self.place(c[1], c[2], c[3], flags & 1, flags & 2, flags & 4, c[5], c[6], <int>c[7])
            elif c[0] == 2:
                answers[i] = self.cancel(c[1], c[2], c[3])
            else:
                raise ValueError(f"command {i}: unknown packed kind {c[0]}")
        return count

    cdef int64_t _lookup_refusal(self, int64_t account_id):
        """``Core.lookup`` for a command naming another market: the unknown account is refused first."""
        return UNKNOWN_ACCOUNT if account_id < 1 or account_id > self.accounts_count else BAD_SYMBOL

    cdef int64_t _reject_at(self, int64_t ts_ns, int64_t code):
        self._advance(ts_ns)
        return code

    cdef inline void _advance(self, int64_t ts_ns):
        if ts_ns > self.now_ns:
            self.now_ns = ts_ns

    cpdef int64_t create_account(self, int64_t ts_ns) except? -1:
        """Open the next account (ids count from 1) with an empty wallet and no position."""
        self._advance(ts_ns)
        cdef AccountRec* grown
        cdef AccountRec* account
        cdef int i
        if self.accounts_count + 1 >= self.accounts_capacity:
            grown = <AccountRec*>realloc(self.accounts, 2 * self.accounts_capacity * sizeof(AccountRec))
            if grown == NULL:
                raise MemoryError()
            self.accounts = grown
            self.accounts_capacity *= 2
        self.accounts_count += 1
        account = &self.accounts[self.accounts_count]
        memset(account, 0, sizeof(AccountRec))
        account.leverage = self.default_leverage
        account.expired_through_day = -1
        for i in range(WINDOW_DAYS):
            account.volume_day[i] = -1
        return self.accounts_count

    cpdef int64_t deposit(self, int64_t ts_ns, int64_t account_id, int64_t amount_atoms) except? -1:
        """Credit the cross wallet (the tx id check is ``apply``'s); 0 or the negative code."""
        if amount_atoms > ORDER_LIMIT:
            raise NativeRangeError(f"amount_atoms={amount_atoms} is above the prototype's 2**61 per deposit")
        if 1 <= account_id <= self.accounts_count and (
            <wide>self.accounts[account_id].wallet_atoms + amount_atoms > STATE_LIMIT
            or <wide>self.deposits_atoms + amount_atoms > STATE_LIMIT
        ):
            raise NativeRangeError("the deposit would take a wallet or the deposit total beyond 2**62 atoms")
        self._advance(ts_ns)
        if account_id < 1 or account_id > self.accounts_count:
            return UNKNOWN_ACCOUNT
        if amount_atoms <= 0:
            return AMOUNT_NOT_POSITIVE
        cdef AccountRec* account = &self.accounts[account_id]
        account.wallet_atoms += amount_atoms
        self.deposits_atoms += amount_atoms
        return 0

    cpdef int64_t set_mark(self, int64_t ts_ns, int64_t index_ticks, int64_t mark_ticks) except? -1:
        """Adopt an index and an (already clamped) mark; ``NativeRangeError`` beyond ``max_price``."""
        if mark_ticks > self.max_price_ticks or index_ticks > self.max_price_ticks:
            raise NativeRangeError("the prototype keeps marks and indexes within the market's max_price")
        self._advance(ts_ns)
        if mark_ticks <= 0 or index_ticks <= 0:
            return PRICE_NOT_POSITIVE
        self.mark_ticks = mark_ticks
        self.index_ticks = index_ticks
        self.has_mark = True
        return 0

    # ------------------------------------------------------------------ fee tiers and margin figures

    cdef void _expire_volume(self, AccountRec* account):
        """Forget daily volume that left the 30-day window ending now (``Account.expire_volume``)."""
        cdef int64_t today = self.now_ns // NS_PER_DAY
        cdef int64_t oldest
        cdef int i
        if account.expired_through_day == today:
            return
        account.expired_through_day = today
        oldest = today - (WINDOW_DAYS - 1)
        for i in range(WINDOW_DAYS):
            if account.volume_day[i] >= 0 and account.volume_day[i] < oldest:
                account.volume_30d_atoms -= account.volume_atoms[i]
                account.volume_atoms[i] = 0
                account.volume_day[i] = -1

    cdef int _record_volume(self, AccountRec* account, int64_t notional_atoms) except -1:
        cdef int64_t today = self.now_ns // NS_PER_DAY
        cdef int slot = today % WINDOW_DAYS
        self._expire_volume(account)
        if account.volume_day[slot] != today:  # what it held left the window above
            account.volume_day[slot] = today
            account.volume_atoms[slot] = 0
        account.volume_atoms[slot] = _stored(<wide>account.volume_atoms[slot] + notional_atoms)
        account.volume_30d_atoms = _stored(<wide>account.volume_30d_atoms + notional_atoms)
        return 0

    cdef int _tier(self, AccountRec* account):
        """Index of the fee tier of the account's 30-day volume ending now (``Core.fee_rates``)."""
        self._expire_volume(account)
        cdef int chosen = 0
        cdef int i
        for i in range(self.tiers_count):
            if account.volume_30d_atoms >= self.tier_volume_atoms[i]:
                chosen = i
            else:
                break
        return chosen

    cdef inline wide _margin_balance(self, AccountRec* account):
        """Cross margin balance: wallet plus the position's unrealised PnL at the mark."""
        return <wide>account.wallet_atoms + <wide>account.qty_lots * self.mark_ticks * self.contract_atoms - account.cost_atoms

    cdef wide _available(self, AccountRec* account):
        """``margin.cross_available_atoms`` for one cross market."""
        cdef wide available = <wide>account.wallet_atoms - account.order_margin_atoms
        cdef wide qty = account.qty_lots
        cdef wide upnl, at_index, notional
        if qty == 0:
            return available
        upnl = qty * self.mark_ticks * self.contract_atoms - account.cost_atoms
        if self.upnl_conservative and self.index_ticks != self.mark_ticks:
            at_index = qty * self.index_ticks * self.contract_atoms - account.cost_atoms
            if at_index < upnl:
                upnl = at_index
        notional = (qty if qty > 0 else -qty) * self.mark_ticks * self.contract_atoms
        return available + upnl - _ceil_div(notional, account.leverage)

    cdef inline void _required_order_margin(self, AccountRec* account):
        """``Position.required_order_margin``: initial margin of the larger opening side, rounded up."""
        cdef int64_t qty = account.qty_lots
        cdef int64_t buy_open, sell_open, worst
        if account.buy_qty_lots <= 0:
            buy_open = 0
        elif qty >= 0:
            buy_open = account.buy_notional_atoms
        else:
            buy_open = _opening_notional(account.buy_qty_lots, account.buy_notional_atoms, -qty)
        if account.sell_qty_lots <= 0:
            sell_open = 0
        elif qty <= 0:
            sell_open = account.sell_notional_atoms
        else:
            sell_open = _opening_notional(account.sell_qty_lots, account.sell_notional_atoms, qty)
        worst = buy_open if buy_open > sell_open else sell_open
        account.order_margin_atoms = <int64_t>_ceil_div(worst, account.leverage) if worst else 0

    cdef inline int _add_exposure(self, AccountRec* account, int32_t side, int64_t price_ticks, int64_t lots) except -1:
        """Count ``lots`` of a resting order in its side's sums (negative removes)."""
        cdef wide notional = <wide>price_ticks * lots * self.contract_atoms
        if side > 0:
            account.buy_qty_lots += lots
            account.buy_notional_atoms = _stored(account.buy_notional_atoms + notional)
        else:
            account.sell_qty_lots += lots
            account.sell_notional_atoms = _stored(account.sell_notional_atoms + notional)
        return 0

    cdef int64_t _margin_refusal(self, AccountRec* account, int32_t side, int64_t price_ticks, int64_t add_lots,
                                 int64_t loss_price_ticks, wide* room, bint* has_room):
        """``placing.margin_refusal`` for a new order (nothing removed): 0 or the refusal's code.

        The worst-case notional is checked against the max notional at leverage, then the increase
        of the order margin plus the order's open loss against the cross available balance; ``room``
        is what that balance has left after the order when it had to be computed.
        """
        cdef wide contract = self.contract_atoms
        cdef wide buy_lots = account.buy_qty_lots
        cdef wide buy_notional = account.buy_notional_atoms
        cdef wide sell_lots = account.sell_qty_lots
        cdef wide sell_notional = account.sell_notional_atoms
        cdef wide add_notional = <wide>price_ticks * add_lots * contract
        cdef wide qty = account.qty_lots
        cdef wide long_lots, short_lots, buy_open, sell_open, larger, margin, lot_at_mark
        cdef wide buy_open_lots, sell_open_lots, buy_at_mark, sell_at_mark, long_side, short_side, worst
        cdef wide held, closing, gap, open_loss, needed, available
        has_room[0] = False
        if side > 0:
            buy_lots += add_lots
            buy_notional += add_notional
        else:
            sell_lots += add_lots
            sell_notional += add_notional
        long_lots = qty if qty > 0 else 0
        short_lots = -qty if qty < 0 else 0
        if buy_lots <= 0:
            buy_open = 0
        elif short_lots == 0:
            buy_open = buy_notional
        elif buy_lots <= short_lots:
            buy_open = 0
        else:
            buy_open = _ceil_div(buy_notional * (buy_lots - short_lots), buy_lots)
        if sell_lots <= 0:
            sell_open = 0
        elif long_lots == 0:
            sell_open = sell_notional
        elif sell_lots <= long_lots:
            sell_open = 0
        else:
            sell_open = _ceil_div(sell_notional * (sell_lots - long_lots), sell_lots)
        larger = buy_open if buy_open > sell_open else sell_open
        margin = _ceil_div(larger, account.leverage) if larger else 0
        lot_at_mark = <wide>self.mark_ticks * contract
        buy_open_lots = buy_lots - short_lots
        sell_open_lots = sell_lots - long_lots
        buy_at_mark = buy_open_lots * lot_at_mark if buy_open_lots > 0 else 0
        sell_at_mark = sell_open_lots * lot_at_mark if sell_open_lots > 0 else 0
        long_side = long_lots * lot_at_mark + (buy_open if buy_open > buy_at_mark else buy_at_mark)
        short_side = short_lots * lot_at_mark + (sell_open if sell_open > sell_at_mark else sell_at_mark)
        worst = long_side if long_side > short_side else short_side
        if worst > self.cap_atoms:
            return MAX_POSITION_AT_LEVERAGE
        held = account.qty_lots
        if side > 0 and held < 0:
            closing = -held
        elif side < 0 and held > 0:
            closing = held
        else:
            closing = 0
        if closing > add_lots:
            closing = add_lots
        gap = (<wide>loss_price_ticks - self.mark_ticks) * side
        open_loss = (add_lots - closing) * gap * contract if gap > 0 else 0
        needed = margin - account.order_margin_atoms + open_loss
        if needed > 0:
            available = self._available(account)
            if needed > available:
                return MARGIN_INSUFFICIENT
            room[0] = available - needed
            has_room[0] = True
        return 0

    cdef inline bint _solvent_after(self, AccountRec* account, int32_t side, int64_t lots, int64_t value_atoms,
                                    int64_t fee_atoms):
        """``matching.solvent_after`` for a cross position: the change of the margin balance is exact."""
        cdef wide delta = side * (<wide>lots * self.mark_ticks * self.contract_atoms - value_atoms) - fee_atoms
        return delta >= 0 or self._margin_balance(account) + delta >= 0

    cdef int64_t _solvent_lots(self, AccountRec* account, int32_t side, int64_t want_lots, int64_t price_ticks,
                               int64_t rate_e8):
        """``matching.solvent_lots``: the most of ``want_lots`` the taker can take at this price."""
        cdef int64_t low, high, middle, notional, fee
        notional = price_ticks * want_lots * self.contract_atoms
        fee = _fee_atoms(notional, rate_e8)
        if self._solvent_after(account, side, want_lots, notional, fee if fee > 0 else 0):
            return want_lots
        low = 0
        high = want_lots - 1
        while low < high:
            middle = (low + high + 1) // 2
            notional = price_ticks * middle * self.contract_atoms
            fee = _fee_atoms(notional, rate_e8)
            if self._solvent_after(account, side, middle, notional, fee if fee > 0 else 0):
                low = middle
            else:
                high = middle - 1
        return low

    cdef bint _self_trade_fits(self, AccountRec* account, int64_t lots, int64_t price_ticks, int64_t taker_rate_e8,
                               int64_t maker_rate_e8):
        """Both legs of a self-trade on one cross position: the margin balance moves by minus both fees."""
        cdef int64_t notional = price_ticks * lots * self.contract_atoms
        cdef int64_t taker_fee = _fee_atoms(notional, taker_rate_e8)
        cdef int64_t maker_fee = _fee_atoms(notional, maker_rate_e8)
        cdef wide delta = -(taker_fee if taker_fee > 0 else 0) - (maker_fee if maker_fee > 0 else 0)
        return delta >= 0 or self._margin_balance(account) + delta >= 0

    cdef int64_t _self_trade_lots(self, AccountRec* account, int64_t want_lots, int64_t price_ticks,
                                  int64_t taker_rate_e8, int64_t maker_rate_e8):
        """``matching.self_trade_lots`` for a cross position."""
        cdef int64_t low, high, middle
        if self._self_trade_fits(account, want_lots, price_ticks, taker_rate_e8, maker_rate_e8):
            return want_lots
        low = 0
        high = want_lots - 1
        while low < high:
            middle = (low + high + 1) // 2
            if self._self_trade_fits(account, middle, price_ticks, taker_rate_e8, maker_rate_e8):
                low = middle
            else:
                high = middle - 1
        return low

    # ------------------------------------------------------------------ placing and matching

    cpdef int64_t place(self, int64_t ts_ns, int64_t account_id, int64_t side, bint is_market, bint is_gtc,
                        bint has_price, int64_t price_ticks, int64_t qty_lots, int stp) except? -1:
        """Place an order (``placing.place`` for the subset); the order id or the negative code.

        ``side`` is +1 (buy) or -1 (sell); ``is_gtc`` False means IOC (a MARKET order is IOC
        either way); ``stp`` is 0 NONE, 1 EXPIRE_TAKER, 2 EXPIRE_MAKER, 3 EXPIRE_BOTH.
        """
        cdef AccountRec* account
        cdef int64_t mark, limit, reference, ceiling, floor, best, loss_price, notional, fee
        cdef int64_t order_id
        cdef wide wide_notional, room, worst
        cdef bint has_room, is_covered, has_best
        cdef int64_t code
        cdef int32_t slot
        if side != 1 and side != -1:
            raise NativeRangeError(f"side={side} is neither +1 nor -1")
        if stp < STP_NONE or stp > STP_EXPIRE_BOTH:
            raise NativeRangeError(f"stp={stp} is not a self-trade prevention mode")
        cdef int64_t clock_before = self.now_ns  # a range refusal leaves even the clock as it was
        self._advance(ts_ns)
        # 1. validate
        if account_id < 1 or account_id > self.accounts_count:
            return UNKNOWN_ACCOUNT
        if not self.has_mark:
            return MARKET_CLOSED
        mark = self.mark_ticks
        account = &self.accounts[account_id]
        if qty_lots <= 0:
            return QTY_NOT_POSITIVE
        if qty_lots < self.min_qty_lots:
            return PRICE_FILTER
        limit = self.market_max_qty_lots if is_market else self.max_qty_lots
        if qty_lots > limit:
            return QTY_ABOVE_MAX
        if is_market:
            if has_price:
                return BAD_PARAMETER
            reference = mark
        else:
            if not has_price:
                return BAD_PARAMETER
            if price_ticks <= 0:
                return PRICE_NOT_POSITIVE
            if price_ticks < self.min_price_ticks:
                return PRICE_BELOW_MIN
            if price_ticks > self.max_price_ticks:
                return PRICE_ABOVE_MAX
            if side > 0:
                ceiling = <int64_t>_floor_div(<wide>mark * self.percent_price_up_e8, RATE_SCALE)
                if price_ticks > ceiling:
                    return PERCENT_PRICE
            else:
                floor = <int64_t>_ceil_div(<wide>mark * self.percent_price_down_e8, RATE_SCALE)
                if price_ticks < floor:
                    return PERCENT_PRICE
            reference = price_ticks
        wide_notional = <wide>reference * qty_lots * self.contract_atoms
        if wide_notional < self.min_notional_atoms:
            return MIN_NOTIONAL
        if account.has_position and account.open_orders >= self.max_open_orders:
            return MAX_OPEN_ORDERS
        if is_market:
            price_ticks = <int64_t>(
                _floor_div(<wide>mark * (RATE_SCALE + side * self.market_take_bound_e8), RATE_SCALE) if side > 0
                else _ceil_div(<wide>mark * (RATE_SCALE + side * self.market_take_bound_e8), RATE_SCALE)
            )
            if price_ticks < 1:
                price_ticks = 1
        if <wide>price_ticks * qty_lots * self.contract_atoms > ORDER_LIMIT:
            self.now_ns = clock_before
            raise NativeRangeError(
                f"an order of {qty_lots} lots at {price_ticks} ticks is beyond the prototype's 2**61 atoms of notional"
            )
        account.has_position = True
        is_covered = False
        # 2. risk
        loss_price = price_ticks
        if is_market:
            has_best = self.book.best_opposite(<int32_t>side, &best)
            loss_price = mark if not has_best or (best - price_ticks) * side > 0 else best
        code = self._margin_refusal(account, <int32_t>side, price_ticks, qty_lots, loss_price, &room, &has_room)
        if code == 0 and self.max_open_interest_lots >= 0:
            code = self._open_interest_refusal(account, <int32_t>side, qty_lots)
        if code != 0:
            return code
        notional = price_ticks * qty_lots * self.contract_atoms
        if has_room and not is_market:
            # as placing.place: when the room left covers the worst loss against the mark at the
            # dearest fee, the bankruptcy check has nothing to find
            worst = side * (<wide>qty_lots * mark * self.contract_atoms - notional) - _ceil_div(
                <wide>notional * self.max_fee_rate_e8, RATE_SCALE
            )
            if room >= 0 and room + worst >= 0:
                is_covered = True
        if not is_market and not is_covered:
            fee = _fee_atoms(notional, self.tier_taker_e8[self._tier(account)])
            if not self._solvent_after(account, <int32_t>side, qty_lots, notional, fee if fee > 0 else 0):
                return BEYOND_BANKRUPTCY
        if is_market:
            if self.book.best_opposite(<int32_t>side, &best) and (best - price_ticks) * side > 0:
                return MARKET_TAKE_BOUND
        # 3. accept
        order_id = self.next_order_id
        slot = self.book.new_order(order_id, <int32_t>account_id, <int32_t>side, price_ticks, qty_lots, stp)
        self.next_order_id += 1
        # 4. match; 5. rest or expire; 6. post-trade
        self._execute(slot, is_market, is_gtc and not is_market)
        return order_id

    cdef int64_t _open_interest_refusal(self, AccountRec* account, int32_t side, int64_t qty_lots):
        cdef int64_t held = account.qty_lots
        cdef int64_t closing = 0
        if side > 0 and held < 0:
            closing = -held
        elif side < 0 and held > 0:
            closing = held
        if closing > qty_lots:
            closing = qty_lots
        if qty_lots - closing and self.open_interest_lots + (qty_lots - closing) > self.max_open_interest_lots:
            return OPEN_INTEREST_CAP
        return 0

    cdef int _execute(self, int32_t taker_slot, bint is_market, bint rests) except -1:
        """``matching.execute``: match at the head of the opposite side until the limit, then rest or expire."""
        cdef NativeBook book = self.book
        cdef OrderRec* taker = &book.orders[taker_slot]
        cdef int32_t side = taker.side
        cdef int64_t limit = taker.price_ticks
        cdef int32_t account_id = taker.account
        cdef int32_t stp = taker.stp
        cdef int32_t maker_slot
        cdef OrderRec* maker
        cdef int expired = 0
        cdef bint crossed_any = False
        cdef int64_t leaves
        cdef AccountRec* account
        while taker.qty_lots - taker.filled_lots > 0:
            maker_slot = book.head(side)
            if maker_slot < 0:
                break
            maker = &book.orders[maker_slot]
            if (maker.price_ticks - limit) * side > 0:
                crossed_any = True
                break
            if maker.account == account_id and stp != STP_NONE:
                if stp == STP_EXPIRE_MAKER or stp == STP_EXPIRE_BOTH:
                    self._expire_resting(maker_slot, WHY_STP_MAKER)
                if stp == STP_EXPIRE_TAKER or stp == STP_EXPIRE_BOTH:
                    expired = WHY_STP_TAKER
                    break
                continue
            if not self._match_one(taker_slot, maker_slot):
                expired = WHY_BANKRUPTCY
                break
        leaves = taker.qty_lots - taker.filled_lots
        if leaves > 0:
            if expired == 0 and rests:
                book.rest(taker_slot)
                account = &self.accounts[account_id]
                account.open_orders += 1
                self._add_exposure(account, side, limit, leaves)
                self._required_order_margin(account)
                return 0
            if expired == 0:
                if is_market:
                    expired = WHY_MARKET_TAKE_BOUND if crossed_any else WHY_NO_LIQUIDITY
                else:
                    expired = WHY_IOC_REMAINDER
            self._log(EV_EXPIRED, 0, taker.order_id, 0, account_id, 0, 0, leaves, expired, 0, 0, 0)
        book.release(taker_slot)
        return 0

    cdef int _expire_resting(self, int32_t slot, int64_t reason) except -1:
        """Unbook a resting order (STP or the fill guard), as ``Core.expire_order``."""
        cdef OrderRec* order = &self.book.orders[slot]
        cdef AccountRec* account = &self.accounts[order.account]
        cdef int64_t leaves = order.qty_lots - order.filled_lots
        self.book.unqueue(slot)
        self._add_exposure(account, order.side, order.price_ticks, -leaves)
        account.open_orders -= 1
        self._required_order_margin(account)
        self._log(EV_EXPIRED, 0, order.order_id, 0, order.account, 0, 0, leaves, reason, 0, 0, 0)
        self.book.release(slot)
        return 0

    cdef bint _match_one(self, int32_t taker_slot, int32_t maker_slot) except -1:
        """``matching.match_one``: trade at the maker's price as far as both owners stay solvent."""
        cdef OrderRec* taker = &self.book.orders[taker_slot]
        cdef OrderRec* maker = &self.book.orders[maker_slot]
        cdef int64_t taker_leaves = taker.qty_lots - taker.filled_lots
        cdef int64_t maker_leaves = maker.qty_lots - maker.filled_lots
        cdef int64_t qty = taker_leaves if taker_leaves < maker_leaves else maker_leaves
        cdef int64_t price = maker.price_ticks
        cdef AccountRec* taker_account = &self.accounts[taker.account]
        cdef AccountRec* maker_account = &self.accounts[maker.account]
        cdef int64_t taker_rate = self.tier_taker_e8[self._tier(taker_account)]
        cdef int64_t maker_rate = self.tier_maker_e8[self._tier(maker_account)]
        cdef int64_t lots, notional, fee, smaller
        if taker.account == maker.account:
            lots = self._self_trade_lots(taker_account, qty, price, taker_rate, maker_rate)
            if lots:
                self._trade(taker_slot, maker_slot, lots, price, taker_rate, maker_rate)
            return lots == qty
        notional = price * qty * self.contract_atoms
        fee = _fee_atoms(notional, maker_rate)
        if not self._solvent_after(maker_account, maker.side, qty, notional, fee if fee > 0 else 0):
            self._expire_resting(maker_slot, WHY_BANKRUPTCY)
            return True
        lots = self._solvent_lots(taker_account, taker.side, qty, price, taker_rate)
        if 0 < lots < qty:
            smaller = price * lots * self.contract_atoms
            fee = _fee_atoms(smaller, maker_rate)
            if not self._solvent_after(maker_account, maker.side, lots, smaller, fee if fee > 0 else 0):
                self._expire_resting(maker_slot, WHY_BANKRUPTCY)
                return False
        if lots:
            self._trade(taker_slot, maker_slot, lots, price, taker_rate, maker_rate)
        return lots == qty

    cdef int _trade(self, int32_t taker_slot, int32_t maker_slot, int64_t qty, int64_t price,
                    int64_t taker_rate_e8, int64_t maker_rate_e8) except -1:
        """``matching.trade``: both orders, both positions, fees; one fill record in the log."""
        cdef OrderRec* taker = &self.book.orders[taker_slot]
        cdef OrderRec* maker = &self.book.orders[maker_slot]
        cdef AccountRec* taker_account = &self.accounts[taker.account]
        cdef AccountRec* maker_account = &self.accounts[maker.account]
        cdef bint self_trade = taker.account == maker.account
        cdef int64_t trade_id = self.next_trade_id
        cdef int64_t notional = price * qty * self.contract_atoms
        cdef int64_t taker_fee, maker_fee, taker_realized, maker_realized
        cdef int64_t maker_id = maker.order_id
        cdef int32_t maker_account_id = maker.account
        self.next_trade_id += 1
        maker.filled_lots += qty
        taker.filled_lots += qty
        self._add_exposure(maker_account, maker.side, maker.price_ticks, -qty)
        if maker.filled_lots == maker.qty_lots:
            self.book.unqueue(maker_slot)
            maker_account.open_orders -= 1
            self.book.release(maker_slot)
        self._settle(taker_account, taker.side, qty, notional, taker_rate_e8, True, &taker_fee, &taker_realized)
        self._settle(maker_account, -taker.side, qty, notional, maker_rate_e8, not self_trade, &maker_fee,
                     &maker_realized)
        self._required_order_margin(maker_account)
        if not self_trade:
            self._required_order_margin(taker_account)
        self._log(EV_FILL, trade_id, taker.order_id, maker_id, taker.account, maker_account_id, price, qty,
                  taker_fee, maker_fee, taker_realized, maker_realized)
        return 0

    cdef int _settle(self, AccountRec* account, int32_t side, int64_t lots, int64_t notional, int64_t rate_e8,
                     bint counts_volume, int64_t* fee_out, int64_t* realized_out) except -1:
        """``matching.settle`` with ``accounts.position_change`` for a cross position."""
        cdef int64_t fee = _fee_atoms(notional, rate_e8)
        cdef int64_t held = self.fees_atoms if self.fees_atoms > 0 else 0
        cdef int64_t old = account.qty_lots
        cdef int64_t size = old if old > 0 else -old
        cdef int64_t closed, opened, closed_value, removed
        cdef int64_t realized = 0
        cdef wide wallet
        if fee < 0 and -fee > held:
            fee = -held
        wallet = -<wide>fee
        if old == 0 or (old > 0) == (side > 0):
            closed = 0
            opened = lots
        else:
            closed = lots if lots < size else size
            opened = lots - closed
        closed_value = notional if opened == 0 else <int64_t>((<wide>notional * closed) / lots)
        if closed:
            removed = account.cost_atoms if closed == size else <int64_t>((<wide>account.cost_atoms * closed) / size)
            realized = (closed_value if old > 0 else -closed_value) - removed
            account.cost_atoms -= removed
            account.qty_lots += closed * side
            wallet += realized
        if opened:
            account.cost_atoms = _stored(<wide>account.cost_atoms + side * (notional - closed_value))
            account.qty_lots += opened * side
        self.open_interest_lots += (account.qty_lots if account.qty_lots > 0 else 0) - (old if old > 0 else 0)
        account.realized_pnl_atoms = _stored(<wide>account.realized_pnl_atoms + realized)
        account.wallet_atoms = _stored(account.wallet_atoms + wallet)
        self.fees_atoms = _stored(<wide>self.fees_atoms + fee)
        if counts_volume:
            self._record_volume(account, notional)
        fee_out[0] = fee
        realized_out[0] = realized
        return 0

    cpdef int64_t cancel(self, int64_t ts_ns, int64_t account_id, int64_t order_id) except? -1:
        """Cancel a resting order of ``account_id`` (``amending.cancel``); 0 or the negative code."""
        cdef NativeBook book = self.book
        cdef int32_t slot
        cdef OrderRec* order
        cdef AccountRec* account
        cdef int64_t leaves
        self._advance(ts_ns)
        if account_id < 1 or account_id > self.accounts_count:
            return UNKNOWN_ACCOUNT
        if order_id < 1 or order_id >= book.ids_capacity:
            return UNKNOWN_ORDER
        slot = book.slot_of[order_id]
        if slot < 0 or book.orders[slot].account != account_id:
            return UNKNOWN_ORDER
        order = &book.orders[slot]
        account = &self.accounts[account_id]
        leaves = order.qty_lots - order.filled_lots
        book.unqueue(slot)
        self._add_exposure(account, order.side, order.price_ticks, -leaves)
        account.open_orders -= 1
        self._required_order_margin(account)
        self._log(EV_CANCELED, 0, order_id, 0, account_id, 0, 0, leaves, 0, 0, 0, 0)
        book.release(slot)
        return 0

    # ------------------------------------------------------------------ the event log and read-outs

    cdef inline int _log(self, int64_t kind, int64_t trade_id, int64_t order_id, int64_t other_id, int64_t account,
                         int64_t other_account, int64_t price_ticks, int64_t qty_lots, int64_t fee_atoms,
                         int64_t other_fee_atoms, int64_t realized_atoms, int64_t other_realized_atoms) except -1:
        cdef EventRec* grown
        cdef EventRec* event
        if self.log_count == self.log_capacity:
            grown = <EventRec*>realloc(self.log, 2 * self.log_capacity * sizeof(EventRec))
            if grown == NULL:
                raise MemoryError()
            self.log = grown
            self.log_capacity *= 2
        event = &self.log[self.log_count]
        event.kind = kind
        event.trade_id = trade_id
        event.order_id = order_id
        event.other_id = other_id
        event.account = account
        event.other_account = other_account
        event.price_ticks = price_ticks
        event.qty_lots = qty_lots
        event.fee_atoms = fee_atoms
        event.other_fee_atoms = other_fee_atoms
        event.realized_atoms = realized_atoms
        event.other_realized_atoms = other_realized_atoms
        self.log_count += 1
        return 0

    def events(self):
        """The logged events since the last call, oldest first, and clear the log:

        * ``("fill", trade_id, taker_order_id, maker_order_id, taker_account_id, maker_account_id,
          price_ticks, qty_lots, taker_fee_atoms, maker_fee_atoms, taker_realized_atoms,
          maker_realized_atoms)``;
        * ``("expired", order_id, account_id, leaves_lots, reason)`` (an ``ExpireReason`` value);
        * ``("canceled", order_id, account_id, leaves_lots)``.
        """
        out = []
        cdef int64_t i
        cdef EventRec* e
        for i in range(self.log_count):
            e = &self.log[i]
            if e.kind == EV_FILL:
                out.append(("fill", e.trade_id, e.order_id, e.other_id, e.account, e.other_account, e.price_ticks,
                            e.qty_lots, e.fee_atoms, e.other_fee_atoms, e.realized_atoms, e.other_realized_atoms))
            elif e.kind == EV_EXPIRED:
                out.append(("expired", e.order_id, e.account, e.qty_lots, EXPIRE_REASONS[e.fee_atoms]))
            else:
                out.append(("canceled", e.order_id, e.account, e.qty_lots))
        self.log_count = 0
        return out

    def clear_events(self):
        """Drop the logged events unread (a benchmark keeps the log from growing)."""
        self.log_count = 0

    def account(self, int64_t account_id):
        """One account's figures as a dict (``KeyError`` for an unknown id)."""
        if account_id < 1 or account_id > self.accounts_count:
            raise KeyError(account_id)
        cdef AccountRec* a = &self.accounts[account_id]
        return {
            "wallet_atoms": a.wallet_atoms,
            "qty_lots": a.qty_lots,
            "cost_atoms": a.cost_atoms,
            "realized_pnl_atoms": a.realized_pnl_atoms,
            "leverage": a.leverage,
            "order_margin_atoms": a.order_margin_atoms,
            "buy_qty_lots": a.buy_qty_lots,
            "buy_notional_atoms": a.buy_notional_atoms,
            "sell_qty_lots": a.sell_qty_lots,
            "sell_notional_atoms": a.sell_notional_atoms,
            "open_orders": a.open_orders,
            "volume_30d_atoms": a.volume_30d_atoms,
            "available_atoms": self._available(a),
        }
