"""Drive the real engine and the reference book model with the same commands and compare.

:class:`Differential` owns a :class:`~perpx.testkit.Venue` on a book-only venue
(:func:`book_config`: huge brackets, no min notional, a percent-price band so
wide it never refuses) and a :class:`~tests.engine.reference_book.ReferenceBook`.
Each command goes to both; the engine's events are folded into the model's
outcome vocabulary (:func:`outcomes`) so the two lists compare with ``==``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from fractions import Fraction

from perpx.engine.commands import (
    AmendOrder,
    CancelOrder,
    Command,
    OrderType,
    PlaceOrder,
    SetMarkPrice,
    StpMode,
    TimeInForce,
)
from perpx.engine.config import VenueConfig, parse_config
from perpx.engine.events import (
    CommandRejected,
    Event,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
)
from perpx.engine.values import AccountId, ClientOrderId, MarketId, OrderId, Side
from perpx.testkit import Venue
from tests.engine.reference_book import (
    Accepted,
    Amended,
    Canceled,
    Expired,
    Filled,
    Level,
    Outcome,
    ReferenceBook,
    Rejected,
)

MARKET = MarketId("TESTUSDT")
DEPOSIT = "10000000"
"""USDT per account: far more than any test order needs. Kept at 10**15 atoms because snapshots
encode integers in 64 bits, and the venue's total deposits (1,000 accounts in the stress test) must fit."""


def book_config(take_bound: str = "0.005", max_open_orders: int = 1_000_000) -> VenueConfig:
    """A one-market venue where only the book decides: tick 1, lot 1, no filter that can refuse.

    ``percent_price_up = 10`` and ``percent_price_down = 0.01`` put the band far
    from any price the tests use; ``min_notional = 0``; one bracket of 10**15
    USDT at 20x, so with :data:`DEPOSIT` margin never refuses.
    ``take_bound`` is kept tight on purpose so MARKET orders meet their bound.
    """
    text = f"""
[venue]
name = "differential"
settlement_asset = "USDT"
clock = "manual"

[assets.USDT]
decimals = 8

[[fee_tiers]]
min_30d_volume = "0"
maker = "0.0002"
taker = "0.0005"

[markets.{MARKET}]
base = "TEST"
tick_size = "1"
lot_size = "1"
min_qty = "1"
max_qty = "100000000"
market_max_qty = "100000000"
min_notional = "0"
min_price = "1"
max_price = "1000000000"
percent_price_up = "10"
percent_price_down = "0.01"
market_take_bound = "{take_bound}"
max_open_orders = {max_open_orders}

[[markets.{MARKET}.brackets]]
notional_cap = "1000000000000000"
max_leverage = 20
mmr = "0.01"
"""
    return parse_config(tomllib.loads(text))


def outcomes(events: Sequence[Event]) -> list[Outcome]:
    """The engine's order events in the model's vocabulary; a trade's two fills become one ``Filled``."""
    out: list[Outcome] = []
    pending: OrderFilled | None = None
    for e in events:
        if pending is not None:
            assert isinstance(e, OrderFilled) and e.is_maker and e.trade_id == pending.trade_id, (pending, e)
            assert (e.price_ticks, e.qty_lots) == (pending.price_ticks, pending.qty_lots), (pending, e)
            assert e.side is not pending.side, (pending, e)
            out.append(
                Filled(
                    e.trade_id,
                    e.price_ticks,
                    e.qty_lots,
                    pending.order_id,
                    e.order_id,
                    pending.leaves_lots,
                    e.leaves_lots,
                )
            )
            pending = None
        elif isinstance(e, OrderFilled):
            assert not e.is_maker, f"a trade starts with the taker's fill: {e}"
            pending = e
        elif isinstance(e, OrderAccepted):
            out.append(Accepted(e.order_id))
        elif isinstance(e, OrderRejected | CommandRejected):
            out.append(Rejected(e.code.name))
        elif isinstance(e, OrderExpired):
            out.append(Expired(e.order_id, e.leaves_lots, e.reason.value))
        elif isinstance(e, OrderCanceled):
            out.append(Canceled(e.order_id, e.leaves_lots))
        elif isinstance(e, OrderAmended):
            out.append(
                Amended(e.order_id, e.price_ticks, e.qty_lots, e.leaves_lots, e.priority_kept, e.reason)
            )
        else:
            raise AssertionError(f"unexpected event for a book command: {e}")
    assert pending is None, f"a taker fill without its maker fill: {pending}"
    return out


class Differential:
    """One engine (through a :class:`Venue`) and one reference model, fed the same commands."""

    def __init__(
        self,
        accounts: int,
        mark: int,
        take_bound: str = "0.005",
        *,
        journal: bool = True,
    ) -> None:
        """``journal=False`` sends trading commands straight to the engine (long runs keep no history).

        The venue does not check invariants itself: the tests choose when to.
        """
        self.config = book_config(take_bound)
        self.venue = Venue(self.config, check=False)
        self.model = ReferenceBook(mark, Fraction(take_bound))
        self.accounts: list[AccountId] = [self.venue.account(f"acct{i}", DEPOSIT) for i in range(accounts)]
        self.journal = journal
        self.set_mark(mark)

    def _apply(self, command: Command) -> list[Event]:
        if self.journal:
            return self.venue.apply(command)
        return self.venue.engine.apply(command)

    # ------------------------------------------------------------------ commands (engine, model)

    def set_mark(self, mark: int) -> None:
        self._apply(SetMarkPrice(ts_ns=self.venue.tick(), market=MARKET, index_ticks=mark, mark_ticks=mark))
        self.model.set_mark(mark)

    def place(
        self,
        account: AccountId,
        side: int,
        order_type: str,
        qty: int,
        price: int | None,
        tif: str,
        stp: str,
        reduce_only: bool = False,
        client_id: str | None = None,
    ) -> tuple[list[Outcome], list[Outcome]]:
        events = self._apply(
            PlaceOrder(
                ts_ns=self.venue.tick(),
                account_id=account,
                market=MARKET,
                side=Side(side),
                order_type=OrderType(order_type),
                qty_lots=qty,
                price_ticks=price,
                tif=TimeInForce(tif),
                reduce_only=reduce_only,
                client_order_id=None if client_id is None else ClientOrderId(client_id),
                stp=StpMode(stp),
            )
        )
        want = self.model.place(account, side, order_type, qty, price, tif, stp, reduce_only, client_id)
        return outcomes(events), want

    def cancel(
        self, account: AccountId, order_id: int | None, client_id: str | None = None
    ) -> tuple[list[Outcome], list[Outcome]]:
        events = self._apply(
            CancelOrder(
                ts_ns=self.venue.tick(),
                account_id=account,
                market=MARKET,
                order_id=None if order_id is None else OrderId(order_id),
                client_order_id=None if client_id is None else ClientOrderId(client_id),
            )
        )
        return outcomes(events), self.model.cancel(account, order_id, client_id)

    def amend(
        self, account: AccountId, order_id: int | None, price: int, qty: int, client_id: str | None = None
    ) -> tuple[list[Outcome], list[Outcome]]:
        events = self._apply(
            AmendOrder(
                ts_ns=self.venue.tick(),
                account_id=account,
                market=MARKET,
                price_ticks=price,
                qty_lots=qty,
                order_id=None if order_id is None else OrderId(order_id),
                client_order_id=None if client_id is None else ClientOrderId(client_id),
            )
        )
        return outcomes(events), self.model.amend(account, price, qty, order_id, client_id)

    # ------------------------------------------------------------------ state (engine side)

    def engine_l3(self, side: int) -> list[Level]:
        book_side = self.venue.engine.books[MARKET].side(Side(side))
        return [
            (price, [(o.order_id, o.leaves_lots) for o in book_side.levels[price].values()])
            for price, _ in book_side.depth()
        ]

    def engine_l2(self, side: int) -> list[tuple[int, int]]:
        return self.venue.engine.books[MARKET].side(Side(side)).depth()

    def engine_positions(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for account_id, account in self.venue.engine.accounts.items():
            position = account.positions.get(MARKET)
            if position is not None and position.qty_lots:
                out[account_id] = position.qty_lots
        return out

    def model_positions(self) -> dict[int, int]:
        return {a: q for a, q in self.model.positions.items() if q}
