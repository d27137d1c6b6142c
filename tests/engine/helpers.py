"""Shared vocabulary of the engine rule tables: venues, event summaries, book tables.

Prices and quantities in summaries are the market's decimal text (``"30000"``,
``"0.5"``), money is integer atoms of the settlement asset (1 USDT = 10**8
atoms), so a rule table reads like an exchange's trade blotter.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from typing import Any

from perpx.engine.config import DEFAULT_CONFIG_TOML, VenueConfig, parse_config
from perpx.engine.events import (
    CommandRejected,
    Event,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    TransferRejected,
)
from perpx.engine.values import format_units
from perpx.testkit import Venue, accepted_id, normalize_table

BTC = "BTCUSDT"
USDT = 10**8
"""Atoms in one USDT (the demo venue's settlement asset has 8 decimals)."""


def default_data() -> dict[str, Any]:
    """The demo venue's TOML as a mutable mapping, for tests that change one key."""
    return tomllib.loads(DEFAULT_CONFIG_TOML)


def config_with(
    market: Mapping[str, Any] | None = None,
    fee_tiers: Sequence[Mapping[str, str]] | None = None,
) -> VenueConfig:
    """The demo venue with BTCUSDT keys and/or the fee schedule replaced."""
    data = default_data()
    if market:
        data["markets"][BTC].update(market)
    if fee_tiers is not None:
        data["fee_tiers"] = [dict(row) for row in fee_tiers]
    return parse_config(data)


def venue(
    *names: str,
    deposit: str | None = "100000",
    mark: str | None = "30000",
    config: VenueConfig | None = None,
) -> Venue:
    """A venue with the BTCUSDT mark set and one funded account per name."""
    v = Venue(config) if config is not None else Venue()
    if mark is not None:
        v.mark(BTC, mark)
    for name in names:
        v.account(name, deposit)
    return v


def table(text: str) -> str:
    return normalize_table(text)


def book(v: Venue, market: str = BTC) -> str:
    return normalize_table(v.book_table(market))


def summary(
    v: Venue,
    events: Sequence[Event],
    ids: Mapping[int, str] | None = None,
    market: str = BTC,
) -> list[tuple[Any, ...]]:
    """Each order event as a short tuple; prices and quantities as decimal text.

    ``ids`` renames order ids (``{7: "A"}``) so tables can name orders by role.

    ========================  ==========================================================
    event                     tuple
    ========================  ==========================================================
    ``OrderAccepted``         ``("accepted", order_id, qty)``
    ``OrderRejected``         ``("rejected", code)``
    ``OrderFilled``           ``("filled", order_id, price, qty, "maker"|"taker", fee, pnl)``
    ``OrderExpired``          ``("expired", order_id, leaves, reason)``
    ``OrderCanceled``         ``("canceled", order_id, leaves)``
    ``OrderAmended``          ``("amended", order_id, price, qty, leaves, priority_kept, reason)``
    ========================  ==========================================================
    """
    spec = v.spec(market)

    def px(ticks: int) -> str:
        return format_units(ticks, spec.tick_size)

    def qty(lots: int) -> str:
        return format_units(lots, spec.lot_size)

    names = dict(ids or {})

    def oid(order_id: int | None) -> int | str | None:
        return None if order_id is None else names.get(order_id, order_id)

    out: list[tuple[Any, ...]] = []
    for e in events:
        if isinstance(e, OrderAccepted):
            out.append(("accepted", oid(e.order_id), qty(e.qty_lots)))
        elif isinstance(e, OrderRejected):
            out.append(("rejected", e.code))
        elif isinstance(e, OrderFilled):
            role = "maker" if e.is_maker else "taker"
            out.append(
                (
                    "filled",
                    oid(e.order_id),
                    px(e.price_ticks),
                    qty(e.qty_lots),
                    role,
                    e.fee_atoms,
                    e.realized_pnl_atoms,
                )
            )
        elif isinstance(e, OrderExpired):
            out.append(("expired", oid(e.order_id), qty(e.leaves_lots), e.reason))
        elif isinstance(e, OrderCanceled):
            out.append(("canceled", oid(e.order_id), qty(e.leaves_lots)))
        elif isinstance(e, OrderAmended):
            out.append(
                (
                    "amended",
                    oid(e.order_id),
                    px(e.price_ticks),
                    qty(e.qty_lots),
                    qty(e.leaves_lots),
                    e.priority_kept,
                    e.reason,
                )
            )
        else:
            out.append((type(e).__name__,))
    return out


def kinds(events: Sequence[Event]) -> list[str]:
    return [type(e).__name__ for e in events]


def fills(events: Sequence[Event]) -> list[OrderFilled]:
    return [e for e in events if isinstance(e, OrderFilled)]


def code_of(events: Sequence[Event]) -> int:
    """The code of the one rejection in ``events`` (fails if there is not exactly one event)."""
    assert len(events) == 1, events
    event = events[0]
    assert isinstance(event, OrderRejected | CommandRejected | TransferRejected), event
    return event.code


def order_ids(v: Venue, market: str = BTC) -> dict[str, list[int]]:
    """Resting order ids per side in priority order (best level first, FIFO within)."""
    b = v.engine.books[v.spec(market).market]
    return {
        "bids": [o.order_id for o in b.bids.orders()],
        "asks": [o.order_id for o in b.asks.orders()],
    }


def rest(v: Venue, name: str, side: str, qty: str, price: str, **kwargs: Any) -> int:
    """Place a limit order that is expected to be accepted; return its order id."""
    return accepted_id(v.place(name, BTC, side, qty, price, **kwargs))


def next_id(v: Venue) -> int:
    """The order id the engine will give the next accepted order."""
    return v.engine.next_order_id
