"""The ``Venue`` port: everything an algorithm may ask of a market, on any venue.

One interface, as hftbacktest's ``Bot`` and NautilusTrader's execution clients are one interface,
so the same strategy code runs in a backtest (:mod:`perpx.execution.inprocess`, the perpx engine
driven through its sequencer on simulated time) and live (:mod:`perpx.execution.ccxt_venue`, a
perpx server or any exchange ccxt reaches).

Units
-----
Prices are integer ticks and quantities integer lots of the market's :class:`MarketFilters`;
an implementation converts at its edge (ccxt speaks decimal strings). Times are nanoseconds
since the Unix epoch: simulated time in a backtest, the venue's time live.

Invariants an implementation keeps
----------------------------------
* Every child carries a client order id chosen by the caller (:func:`perpx.execution.ids.child_id`);
  :meth:`Venue.order` finds a child by that id after a restart, so a runner never sends a child
  twice.
* :meth:`Venue.place` never raises for a business refusal: a rejection comes back as a
  :class:`ChildAck` with ``accepted=False``, a code and a message. Transport failures raise
  :class:`VenueUnavailable`, and the caller retries with the *same* client order id.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Protocol

import msgspec

from perpx.execution.model import ParentSide


class VenueUnavailable(RuntimeError):
    """The venue could not be reached or answered nonsense; the outcome of the call is unknown."""


class MarketFilters(msgspec.Struct, frozen=True, kw_only=True):
    """The exchange filters a child must pass (Binance's PRICE_FILTER, LOT_SIZE, MIN_NOTIONAL)."""

    market: str
    tick_size: Decimal
    lot_size: Decimal
    min_qty_lots: int
    max_qty_lots: int
    min_notional: Decimal
    """Smallest price x quantity a child may have, in the quote asset."""
    maker_fee_bps: Decimal = Decimal(0)
    taker_fee_bps: Decimal = Decimal(0)

    def notional(self, qty_lots: int, price_ticks: int) -> Decimal:
        """Quote value of ``qty_lots`` at ``price_ticks``, exact."""
        return qty_lots * self.lot_size * price_ticks * self.tick_size


class BookLevel(msgspec.Struct, frozen=True, array_like=True):
    """One price level: integer price and the quantity resting there."""

    price_ticks: int
    qty_lots: int


class BookSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """The top of a market's book, best first on each side."""

    market: str
    ts_ns: int
    bids: tuple[BookLevel, ...]
    asks: tuple[BookLevel, ...]

    def touch(self, side: ParentSide) -> int | None:
        """The near touch for ``side`` (best bid for a buy, best ask for a sell), if any."""
        levels = self.bids if side is ParentSide.BUY else self.asks
        return levels[0].price_ticks if levels else None

    def far_touch(self, side: ParentSide) -> int | None:
        """The price ``side`` takes at (best ask for a buy, best bid for a sell), if any."""
        levels = self.asks if side is ParentSide.BUY else self.bids
        return levels[0].price_ticks if levels else None

    def touch_pair(self) -> tuple[int | None, int | None]:
        """``(best bid, best ask)``, either ``None`` when its side is empty."""
        return (
            self.bids[0].price_ticks if self.bids else None,
            self.asks[0].price_ticks if self.asks else None,
        )

    def mid_ticks(self) -> Decimal | None:
        """The mid in ticks (may be half a tick), or ``None`` with an empty side."""
        if not self.bids or not self.asks:
            return None
        return Decimal(self.bids[0].price_ticks + self.asks[0].price_ticks) / 2


class Prices(msgspec.Struct, frozen=True, kw_only=True):
    """The reference prices of a market; any may be unknown (``None``) on a fresh venue."""

    mark_ticks: int | None
    index_ticks: int | None
    last_ticks: int | None


class Candle(msgspec.Struct, frozen=True, kw_only=True):
    """One bar of the venue's own trades (Binance klines), the VWAP profile's raw material."""

    open_ns: int
    close_ns: int
    volume_lots: int
    open_ticks: int
    high_ticks: int
    low_ticks: int
    close_ticks: int


class PublicTrade(msgspec.Struct, frozen=True, kw_only=True):
    """One trade anyone could see on the tape (POV counts these)."""

    trade_id: str
    ts_ns: int
    price_ticks: int
    qty_lots: int


class ChildStatus(StrEnum):
    """Where a child order stands on the venue."""

    OPEN = "open"
    FILLED = "filled"
    CANCELED = "canceled"
    """Canceled or expired with a remainder (IOC remainder, post-only would-cross, STP)."""
    REJECTED = "rejected"


class TimeInForce(StrEnum):
    """How long a child lives: rest, take-or-expire, or rest without ever taking."""

    GTC = "GTC"
    IOC = "IOC"
    POST_ONLY = "GTX"


class ChildOrder(msgspec.Struct, frozen=True, kw_only=True):
    """A child order as the runner sends it; ``price_ticks`` ``None`` is a market order."""

    client_order_id: str
    parent_id: str
    """The parent's ``client_algo_id``: the tag that ties a child to its parent on every venue."""
    market: str
    side: ParentSide
    qty_lots: int
    price_ticks: int | None
    tif: TimeInForce = TimeInForce.GTC
    reduce_only: bool = False


class ChildAck(msgspec.Struct, frozen=True, kw_only=True):
    """The venue's answer to :meth:`Venue.place`: accepted (with its id) or rejected (with why)."""

    client_order_id: str
    accepted: bool
    order_id: str | None = None
    code: str | None = None
    message: str | None = None


class ChildState(msgspec.Struct, frozen=True, kw_only=True):
    """A child as the venue sees it now."""

    client_order_id: str
    order_id: str
    market: str
    side: ParentSide
    qty_lots: int
    filled_lots: int
    price_ticks: int | None
    status: ChildStatus

    @property
    def working_lots(self) -> int:
        """What can still fill: the remainder while open, zero once the child is done."""
        return self.qty_lots - self.filled_lots if self.status is ChildStatus.OPEN else 0


class Fill(msgspec.Struct, frozen=True, kw_only=True):
    """One execution of one child (an account trade)."""

    trade_id: str
    client_order_id: str
    ts_ns: int
    price_ticks: int
    qty_lots: int
    fee: Decimal
    """In the quote asset; negative for a rebate."""
    is_maker: bool


class Venue(Protocol):
    """What an algorithm may ask of a market; see the module docstring for units and invariants."""

    def now_ns(self) -> int:
        """The venue's time: simulated in a backtest, the exchange's clock live."""
        ...

    def filters(self, market: str) -> MarketFilters:
        """The market's tick, lot and notional filters and fees; raises ``KeyError`` for an unknown market."""
        ...

    def book(self, market: str, depth: int = 20) -> BookSnapshot:
        """The top ``depth`` levels of each side."""
        ...

    def prices(self, market: str) -> Prices:
        """Mark, index and last trade prices."""
        ...

    def candles(self, market: str, interval_s: int, since_ns: int, until_ns: int) -> list[Candle]:
        """Bars of ``interval_s`` opening in ``[since_ns, until_ns)``, oldest first."""
        ...

    def public_trades(self, market: str, since_ns: int) -> list[PublicTrade]:
        """Tape trades at or after ``since_ns``, oldest first (our own fills included)."""
        ...

    def place(self, child: ChildOrder) -> ChildAck:
        """Send ``child``; a refusal is a rejected ack, a transport failure :class:`VenueUnavailable`."""
        ...

    def cancel(self, market: str, client_order_id: str) -> bool:
        """Cancel a child; ``False`` when it was no longer open (filled, canceled or unknown)."""
        ...

    def order(self, market: str, client_order_id: str) -> ChildState | None:
        """A child by its client order id, open or done; ``None`` when the venue never saw it."""
        ...

    def open_orders(self, market: str) -> list[ChildState]:
        """Every open order of the account on ``market`` (children of any parent)."""
        ...

    def fills(self, market: str, since_ns: int) -> list[Fill]:
        """The account's fills at or after ``since_ns``, oldest first."""
        ...
