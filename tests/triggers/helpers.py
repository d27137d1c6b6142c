"""Vocabulary of the conditional-order tests: place and cancel in trader terms, move the prices.

A test venue has the market-maker ``mm`` and the taker ``tk`` beside the
accounts under test. :func:`trade` prints one 0.005 BTC trade between them at a
price (so it moves the last price and nothing else), :func:`move_mark` moves the
mark alone, and :func:`liquidity` rests 1 BTC a side far from the action, for
triggered MARKET orders to fill against.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from perpx.engine.commands import (
    CancelAllConditionalOrders,
    CancelConditionalOrder,
    ConditionalType,
    PlaceConditionalOrder,
    StpMode,
    TimeInForce,
    WorkingType,
)
from perpx.engine.events import (
    ConditionalOrderAccepted,
    ConditionalOrderRejected,
    ConditionalOrderTriggered,
    Event,
)
from perpx.engine.values import AlgoId, ClientAlgoId, MarketId, Side, to_rate_e8
from perpx.testkit import Venue
from tests.engine.helpers import BTC, venue

MARK = WorkingType.MARK_PRICE
LAST = WorkingType.CONTRACT_PRICE


def trigger_venue(*names: str, price: str = "30000", **kwargs: Any) -> Venue:
    """Mark and last price at ``price``, ``mm``/``tk`` and the named accounts funded, liquidity resting."""
    v = venue("mm", "tk", *names, mark=price, **kwargs)
    trade(v, price)
    return v


def liquidity(v: Venue, bid: str = "29000", ask: str = "31000", qty: str = "1") -> None:
    v.place("mm", BTC, "BUY", qty, bid)
    v.place("mm", BTC, "SELL", qty, ask)


def trade(v: Venue, price: str, qty: str = "0.005") -> list[Event]:
    """One trade between ``mm`` (maker) and ``tk`` (taker) at ``price``; returns the taker's events."""
    last = v.engine.last_trade_ticks.get(MarketId(BTC))
    up = last is None or v.ticks(BTC, price) >= last
    maker, taker = ("SELL", "BUY") if up else ("BUY", "SELL")
    v.place("mm", BTC, maker, qty, price)
    return v.place("tk", BTC, taker, qty, price, tif="IOC")


def move_mark(v: Venue, price: str) -> list[Event]:
    return v.mark(BTC, price)


def move(v: Venue, working: WorkingType, price: str) -> list[Event]:
    """Move the price ``working`` orders watch (the mark, or the last trade) to ``price``."""
    return move_mark(v, price) if working is MARK else trade(v, price)


def conditional(
    v: Venue,
    name: str,
    side: str,
    order_type: ConditionalType | str,
    qty: str | None = "0.01",
    trigger: str | None = None,
    price: str | None = None,
    *,
    working: WorkingType = LAST,
    reduce_only: bool = False,
    close_position: bool = False,
    price_protect: bool = False,
    activation: str | None = None,
    callback: str | None = None,
    client_id: str | None = None,
    tif: str = "GTC",
    stp: str = "NONE",
) -> list[Event]:
    """Place a conditional order; ``callback`` is in percent (``"1"`` = 1%), as Binance sends it."""
    return v.apply(
        PlaceConditionalOrder(
            ts_ns=v.tick(),
            account_id=v.names[name],
            market=MarketId(BTC),
            side=Side[side.upper()],
            order_type=ConditionalType(order_type),
            qty_lots=None if qty is None else v.lots(BTC, qty),
            trigger_price_ticks=None if trigger is None else v.ticks(BTC, trigger),
            price_ticks=None if price is None else v.ticks(BTC, price),
            tif=TimeInForce(tif),
            working_type=working,
            reduce_only=reduce_only,
            close_position=close_position,
            price_protect=price_protect,
            activation_price_ticks=None if activation is None else v.ticks(BTC, activation),
            callback_rate_e8=None if callback is None else to_rate_e8(Decimal(callback) / 100, "callback"),
            client_algo_id=None if client_id is None else ClientAlgoId(client_id),
            stp=StpMode(stp),
        )
    )


def cancel_conditional(
    v: Venue, name: str, algo_id: int | None = None, client_id: str | None = None
) -> list[Event]:
    return v.apply(
        CancelConditionalOrder(
            ts_ns=v.tick(),
            account_id=v.names[name],
            market=MarketId(BTC),
            algo_id=None if algo_id is None else AlgoId(algo_id),
            client_algo_id=None if client_id is None else ClientAlgoId(client_id),
        )
    )


def cancel_all_conditional(v: Venue, name: str) -> list[Event]:
    return v.apply(CancelAllConditionalOrders(ts_ns=v.tick(), account_id=v.names[name], market=MarketId(BTC)))


def algo_id(events: list[Event]) -> AlgoId:
    """The algo id of the one ``ConditionalOrderAccepted`` in ``events``."""
    accepted = [e for e in events if isinstance(e, ConditionalOrderAccepted)]
    assert len(accepted) == 1, events
    return accepted[0].algo_id


def rejection(events: list[Event]) -> ConditionalOrderRejected:
    assert len(events) == 1 and isinstance(events[0], ConditionalOrderRejected), events
    return events[0]


def triggered(events: list[Event]) -> list[ConditionalOrderTriggered]:
    return [e for e in events if isinstance(e, ConditionalOrderTriggered)]


def open_ids(v: Venue, name: str) -> list[int]:
    return [o.algo_id for o in v.engine.triggers.open_orders(v.names[name], MarketId(BTC))]
