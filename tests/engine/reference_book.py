"""A naive reference model of one market's order book and matching, written apart from the engine.

It exists to be obviously right, not fast: the book is two plain lists of
orders in arrival order (arrival order *is* time priority), every question is
a linear scan, and fill-or-kill is decided by running the order as IOC on a
deep copy of the whole model and looking at what is left. It imports nothing
from :mod:`perpx`; a differential test drives it and the engine with the same
commands and compares what comes out.

Modelled
--------
* LIMIT and MARKET orders; a MARKET order's limit is the take bound
  ``mark x (1 +/- market_take_bound)`` rounded toward the mark, and a MARKET
  order is refused when the other side has orders but none within that bound;
* time in force GTC, IOC, FOK (all or nothing at once, else rejected), GTX
  (post only: rejected if it would take);
* self-trade prevention, the incoming order's mode deciding: NONE trades,
  EXPIRE_TAKER stops the incoming order, EXPIRE_MAKER expires the resting
  order and goes on, EXPIRE_BOTH does both;
* reduce-only orders over positions that are plain signed lot counts: refused
  when there is nothing to reduce, cut to the position on arrival, and every
  resting one shrunk or expired (in order id order) whenever a trade leaves it
  larger than, or on the wrong side of, its account's position;
* client order ids (unique among an account's resting orders), cancel by id or
  client id, amend (price and *total* quantity; the queue place is kept only for
  a same-price size decrease; otherwise the order goes to the back of its new
  level and trades at once if it crosses; a reduce-only order's new quantity is
  first cut to its fills plus the position, as on arrival, and an amend that
  the cut leaves changing nothing is refused as such);
* sequential order ids (given on acceptance only) and trade ids.

Deliberately not modelled
-------------------------
Money: margin, fees, PnL, leverage, brackets, balances. Filters: tick, lot,
min/max quantity, min notional, percent-price band, max open orders. A test
that drives this model must keep every order clear of those (huge deposits,
wide bands, no min notional), so that none of them ever refuses.

Events are plain tuples-like dataclasses, one kind per outcome, so a test can
compare them with the engine's events field for field.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from fractions import Fraction

BUY = 1
SELL = -1

LIMIT = "LIMIT"
MARKET = "MARKET"

GTC = "GTC"
IOC = "IOC"
FOK = "FOK"
GTX = "GTX"

STP_NONE = "NONE"
EXPIRE_TAKER = "EXPIRE_TAKER"
EXPIRE_MAKER = "EXPIRE_MAKER"
EXPIRE_BOTH = "EXPIRE_BOTH"


# --------------------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class Accepted:
    order_id: int


@dataclass(frozen=True)
class Rejected:
    """A refused place or amend (``OrderRejected``) or cancel (``CommandRejected``): the code's name."""

    code: str


@dataclass(frozen=True)
class Filled:
    """One trade: at the maker's price, taker and maker order ids and what each has left."""

    trade_id: int
    price: int
    qty: int
    taker_id: int
    maker_id: int
    taker_leaves: int
    maker_leaves: int


@dataclass(frozen=True)
class Expired:
    order_id: int
    leaves: int
    reason: str


@dataclass(frozen=True)
class Canceled:
    order_id: int
    leaves: int


@dataclass(frozen=True)
class Amended:
    order_id: int
    price: int
    qty: int
    leaves: int
    priority_kept: bool
    reason: str


Outcome = Accepted | Rejected | Filled | Expired | Canceled | Amended


@dataclass(slots=True)
class RefOrder:
    order_id: int
    account: int
    side: int
    order_type: str
    tif: str
    stp: str
    price: int
    qty: int
    reduce_only: bool
    client_id: str | None
    filled: int = 0

    @property
    def leaves(self) -> int:
        return self.qty - self.filled

    def copy(self) -> RefOrder:
        return RefOrder(
            self.order_id,
            self.account,
            self.side,
            self.order_type,
            self.tif,
            self.stp,
            self.price,
            self.qty,
            self.reduce_only,
            self.client_id,
            self.filled,
        )


Level = tuple[int, list[tuple[int, int]]]
"""``(price, [(order_id, leaves), ...])`` with the orders in queue order."""


def _sign(x: int) -> int:
    return (x > 0) - (x < 0)


def market_limit(mark: int, side: int, take_bound: Fraction) -> int:
    """The worst price a MARKET order may trade at: the take bound, rounded toward the mark, at least 1."""
    if side == BUY:
        return max(1, math.floor(mark * (1 + take_bound)))
    return max(1, math.ceil(mark * (1 - take_bound)))


class ReferenceBook:
    """One market: resting orders, positions in lots, the mark (for MARKET limits only)."""

    def __init__(self, mark: int, take_bound: Fraction) -> None:
        self.mark = mark
        self.take_bound = take_bound
        self.bids: list[RefOrder] = []  # arrival order; priority is (price, arrival)
        self.asks: list[RefOrder] = []
        self.positions: dict[int, int] = {}
        self.next_order_id = 1
        self.next_trade_id = 1
        self.out: list[Outcome] = []

    # ------------------------------------------------------------------ reading

    def side_list(self, side: int) -> list[RefOrder]:
        return self.bids if side == BUY else self.asks

    def resting(self) -> list[RefOrder]:
        return self.bids + self.asks

    def find(self, account: int, order_id: int | None, client_id: str | None) -> RefOrder | None:
        for order in self.resting():
            if order.account != account:
                continue
            if order_id is not None:
                if order.order_id == order_id:
                    return order
            elif client_id is not None and order.client_id == client_id:
                return order
        return None

    def best(self, side: int) -> RefOrder | None:
        """The highest-priority resting order of ``side``: best price, then earliest arrival."""
        chosen: RefOrder | None = None
        for order in self.side_list(side):
            if chosen is None or (order.price - chosen.price) * side > 0:
                chosen = order
        return chosen

    def position(self, account: int) -> int:
        return self.positions.get(account, 0)

    def l3(self, side: int) -> list[Level]:
        """Levels best first, each with its orders in queue (arrival) order."""
        prices = sorted({o.price for o in self.side_list(side)}, reverse=side == BUY)
        return [
            (price, [(o.order_id, o.leaves) for o in self.side_list(side) if o.price == price])
            for price in prices
        ]

    def l2(self, side: int) -> list[tuple[int, int]]:
        return [(price, sum(leaves for _, leaves in orders)) for price, orders in self.l3(side)]

    # ------------------------------------------------------------------ commands

    def set_mark(self, mark: int) -> None:
        self.mark = mark

    def place(
        self,
        account: int,
        side: int,
        order_type: str,
        qty: int,
        price: int | None,
        tif: str = GTC,
        stp: str = STP_NONE,
        reduce_only: bool = False,
        client_id: str | None = None,
    ) -> list[Outcome]:
        self.out = []
        if order_type == MARKET and tif == GTX:
            return self._reject("BAD_PARAMETER")
        if client_id is not None and any(
            o.account == account and o.client_id == client_id for o in self.resting()
        ):
            return self._reject("DUPLICATE_CLIENT_ORDER_ID")
        if order_type == MARKET:
            limit = market_limit(self.mark, side, self.take_bound)
        else:
            assert price is not None
            limit = price
        effective = qty
        if reduce_only:
            pos = self.position(account)
            if pos == 0 or _sign(pos) == side:
                return self._reject("REDUCE_ONLY_REJECTED")
            effective = min(qty, abs(pos))
        if (
            order_type == MARKET
            and self._opp(side)
            and not any(self._crosses(side, limit, m) for m in self._opp(side))
        ):
            return self._reject("MARKET_TAKE_BOUND")
        if (
            order_type == MARKET
            and self._opp(side)
            and not any(self._crosses(side, limit, m) for m in self._opp(side))
        ):
            return self._reject("MARKET_TAKE_BOUND")
        if tif == GTX and order_type == LIMIT and any(self._crosses(side, limit, m) for m in self._opp(side)):
            return self._reject("POST_ONLY_WOULD_TAKE")
        order = RefOrder(
            order_id=self.next_order_id,
            account=account,
            side=side,
            order_type=order_type,
            tif=tif,
            stp=stp,
            price=limit,
            qty=qty,
            reduce_only=reduce_only,
            client_id=client_id,
        )
        if tif == FOK and not self._fills_in_full(order, effective):
            return self._reject("FOK_NOT_FILLABLE")
        self.next_order_id += 1
        self.out.append(Accepted(order.order_id))
        if effective < qty:
            self._trim(order, effective)
        self._take_then_rest(order)
        return self.out

    def cancel(
        self, account: int, order_id: int | None = None, client_id: str | None = None
    ) -> list[Outcome]:
        self.out = []
        order = self.find(account, order_id, client_id)
        if order is None:
            return self._reject("UNKNOWN_ORDER")
        self._remove(order)
        self.out.append(Canceled(order.order_id, order.leaves))
        return self.out

    def amend(
        self, account: int, price: int, qty: int, order_id: int | None = None, client_id: str | None = None
    ) -> list[Outcome]:
        self.out = []
        order = self.find(account, order_id, client_id)
        if order is None:
            return self._reject("ORDER_NOT_FOUND")
        if order.reduce_only:  # as on arrival: never more than the position it closes
            qty = min(qty, order.filled + abs(self.position(account)))
        if price == order.price and qty == order.qty:
            return self._reject("AMEND_NOTHING")
        if qty <= order.filled:
            return self._reject("AMEND_BELOW_FILLED")
        crosses = any(self._crosses(order.side, price, m) for m in self._opp(order.side))
        if crosses and order.tif == GTX:
            return self._reject("POST_ONLY_WOULD_TAKE")
        keep = price == order.price and qty < order.qty
        if keep:
            order.qty = qty
        else:
            self._remove(order)  # to the back of the (new) level, or into the matcher
            order.price = price
            order.qty = qty
        self.out.append(Amended(order.order_id, price, qty, order.leaves, keep, "CLIENT"))
        if keep:
            self._trim_account(account)
        elif crosses:
            self._take_then_rest(order)
        else:
            self.side_list(order.side).append(order)
            self._trim_account(account)
        return self.out

    # ------------------------------------------------------------------ matching

    def _opp(self, side: int) -> list[RefOrder]:
        return self.side_list(-side)

    @staticmethod
    def _crosses(side: int, limit: int, maker: RefOrder) -> bool:
        return (limit - maker.price) * side >= 0

    def clone(self) -> ReferenceBook:
        """An independent copy: same orders (copied), queues, positions, mark and counters."""
        twin = copy.copy(self)
        twin.bids = [o.copy() for o in self.bids]
        twin.asks = [o.copy() for o in self.asks]
        twin.positions = dict(self.positions)
        twin.out = []
        return twin

    def _fills_in_full(self, order: RefOrder, effective: int) -> bool:
        """Fill or kill: run the order as IOC on a copy of everything; did it fill in full?"""
        trial = self.clone()
        probe = order.copy()
        probe.qty = effective
        probe.tif = IOC
        trial._take(probe)
        return probe.leaves == 0

    def _take(self, taker: RefOrder) -> str | None:
        """Trade ``taker`` against the book; the STP expiry reason if self-trade prevention stopped it."""
        while taker.leaves > 0:
            maker = self.best(-taker.side)
            if maker is None or not self._crosses(taker.side, taker.price, maker):
                return None
            if maker.account == taker.account and taker.stp != STP_NONE:
                if taker.stp in (EXPIRE_MAKER, EXPIRE_BOTH):
                    self._remove(maker)
                    self.out.append(Expired(maker.order_id, maker.leaves, "STP_MAKER"))
                if taker.stp in (EXPIRE_TAKER, EXPIRE_BOTH):
                    return "STP_TAKER"
                continue
            qty = min(taker.leaves, maker.leaves)
            taker.filled += qty
            maker.filled += qty
            self.positions[taker.account] = self.position(taker.account) + taker.side * qty
            self.positions[maker.account] = self.position(maker.account) + maker.side * qty
            self.out.append(
                Filled(
                    self.next_trade_id,
                    maker.price,
                    qty,
                    taker.order_id,
                    maker.order_id,
                    taker.leaves,
                    maker.leaves,
                )
            )
            self.next_trade_id += 1
            if maker.leaves == 0:
                self._remove(maker)
            self._trim_account(maker.account)
            if taker.account != maker.account:
                self._trim_account(taker.account)
        return None

    def _take_then_rest(self, order: RefOrder) -> None:
        stopped = self._take(order)
        if order.leaves == 0:
            return
        if stopped is None and order.order_type == LIMIT and order.tif in (GTC, GTX):
            self.side_list(order.side).append(order)
            if order.reduce_only:
                self._trim_account(order.account)
            return
        if stopped is not None:
            reason = stopped
        elif order.order_type == MARKET:
            reason = "MARKET_TAKE_BOUND" if self._opp(order.side) else "NO_LIQUIDITY"
        else:
            reason = "IOC_REMAINDER"
        self.out.append(Expired(order.order_id, order.leaves, reason))

    # ------------------------------------------------------------------ reduce-only upkeep

    def _trim(self, order: RefOrder, leaves: int) -> None:
        order.qty = order.filled + leaves
        self.out.append(Amended(order.order_id, order.price, order.qty, leaves, True, "REDUCE_ONLY_TRIM"))

    def _trim_account(self, account: int) -> None:
        """Keep every resting reduce-only order of ``account`` within its position, in order id order."""
        pos = self.position(account)
        mine = sorted(
            (o for o in self.resting() if o.account == account and o.reduce_only), key=lambda o: o.order_id
        )
        for order in mine:
            if pos == 0 or order.side == _sign(pos):
                self._remove(order)
                self.out.append(Expired(order.order_id, order.leaves, "REDUCE_ONLY"))
            elif order.leaves > abs(pos):
                self._trim(order, abs(pos))

    # ------------------------------------------------------------------ plumbing

    def _remove(self, order: RefOrder) -> None:
        queue = self.side_list(order.side)
        for i, o in enumerate(queue):
            if o.order_id == order.order_id:
                del queue[i]
                return
        raise AssertionError(f"order {order.order_id} is not resting")

    def _reject(self, code: str) -> list[Outcome]:
        self.out.append(Rejected(code))
        return self.out
