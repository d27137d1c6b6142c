"""Every conditional type x side x working type: when it fires, what it places, and when it is refused.

Prices start at 30,000 (mark and last). A RISE order (STOP BUY, TAKE_PROFIT SELL) triggers at
30,100, a FALL order (STOP SELL, TAKE_PROFIT BUY) at 29,900. The price first moves to 30,050 /
29,950 (nothing), the *other* price moves past the trigger (nothing: it watches only its own), then
its own price reaches the trigger exactly (it fires, equality included).
"""

from __future__ import annotations

import pytest

from perpx.engine.codes import RejectCode
from perpx.engine.commands import ConditionalType, OrderType, WorkingType
from perpx.engine.events import (
    ConditionalOrderAccepted,
    ConditionalOrderTriggered,
    OrderAccepted,
    OrderFilled,
)
from perpx.engine.triggers import FALL, RISE, level_direction, reached, trailing_trigger_ticks
from perpx.engine.values import OrderId, Side

from .helpers import (
    LAST,
    MARK,
    algo_id,
    conditional,
    liquidity,
    move,
    open_ids,
    rejection,
    trigger_venue,
    triggered,
)

STOP_AND_TP = [
    ConditionalType.STOP,
    ConditionalType.STOP_MARKET,
    ConditionalType.TAKE_PROFIT,
    ConditionalType.TAKE_PROFIT_MARKET,
]
CASES = [(t, s, w) for t in STOP_AND_TP for s in ("BUY", "SELL") for w in (MARK, LAST)]


def rises(order_type: ConditionalType, side: str) -> bool:
    """STOP BUY and TAKE_PROFIT SELL fire on the way up; the other two on the way down."""
    is_stop = order_type in (ConditionalType.STOP, ConditionalType.STOP_MARKET)
    return is_stop == (side == "BUY")


def other(working: WorkingType) -> WorkingType:
    return LAST if working is MARK else MARK


@pytest.mark.parametrize(("order_type", "side", "working"), CASES, ids=str)
def test_fires_exactly_when_its_own_price_reaches_the_trigger(
    order_type: ConditionalType, side: str, working: WorkingType
) -> None:
    # Arrange
    v = trigger_venue("alice")
    liquidity(v)
    up = rises(order_type, side)
    trigger, near, beyond = ("30100", "30050", "30200") if up else ("29900", "29950", "29800")
    is_limit = order_type in (ConditionalType.STOP, ConditionalType.TAKE_PROFIT)
    limit = ("30150" if side == "BUY" else "29850") if is_limit else None
    events = conditional(v, "alice", side, order_type, "0.01", trigger, limit, working=working)
    algo = algo_id(events)
    # Act / Assert: nearly there, and the other price past it: nothing
    assert triggered(move(v, working, near)) == []
    assert triggered(move(v, other(working), beyond)) == []
    assert open_ids(v, "alice") == [algo]
    fired = move(v, working, trigger)
    child_id = v.engine.next_order_id - 1  # the triggered order is the last one accepted
    # Assert
    trig = triggered(fired)
    assert trig == [
        ConditionalOrderTriggered(
            ts_ns=v.engine.now_ns,
            algo_id=algo,
            account_id=v.names["alice"],
            market=v.spec("BTCUSDT").market,
            working_type=working,
            trigger_price_ticks=v.ticks("BTCUSDT", trigger),
            triggered_by_ticks=v.ticks("BTCUSDT", trigger),
            order_id=OrderId(child_id),
        )
    ]
    child = fired[fired.index(trig[0]) + 1]
    assert isinstance(child, OrderAccepted)
    assert child.order_id == child_id
    assert child.side is Side[side]
    assert child.order_type is (OrderType.LIMIT if is_limit else OrderType.MARKET)
    assert child.qty_lots == v.lots("BTCUSDT", "0.01")
    assert open_ids(v, "alice") == []


@pytest.mark.parametrize(("order_type", "side", "working"), CASES, ids=str)
def test_a_trigger_the_current_price_already_reaches_is_refused(
    order_type: ConditionalType, side: str, working: WorkingType
) -> None:
    # Arrange: the current price is 30,000; a trigger *at* it counts as reached
    v = trigger_venue("alice")
    up = rises(order_type, side)
    wrong_side = "29990" if up else "30010"
    limit = "30000" if order_type in (ConditionalType.STOP, ConditionalType.TAKE_PROFIT) else None
    # Act
    at_price = conditional(v, "alice", side, order_type, "0.01", "30000", limit, working=working)
    past = conditional(v, "alice", side, order_type, "0.01", wrong_side, limit, working=working)
    # Assert
    for events in (at_price, past):
        refused = rejection(events)
        assert refused.code == RejectCode.ORDER_WOULD_TRIGGER
        assert refused.message.startswith("Order would immediately trigger")
    assert ("above" if up else "below") in rejection(past).message


def test_the_immediate_trigger_message_quoted_in_the_docs() -> None:
    v = trigger_venue("alice")
    refused = rejection(conditional(v, "alice", "BUY", "STOP_MARKET", "0.01", "29990"))
    assert refused.message == (
        "Order would immediately trigger: the trigger price of a BUY STOP_MARKET must be"
        " above the current last price 30000"
    )


def test_the_refusal_is_against_the_orders_own_working_type() -> None:
    # Arrange: mark 30,000 but last 30,300
    v = trigger_venue("alice")
    move(v, LAST, "30300")
    # Act: a STOP BUY at 30,200 is past the last price but not the mark
    on_last = conditional(v, "alice", "BUY", "STOP_MARKET", "0.01", "30200", working=LAST)
    on_mark = conditional(v, "alice", "BUY", "STOP_MARKET", "0.01", "30200", working=MARK)
    # Assert
    assert rejection(on_last).code == RejectCode.ORDER_WOULD_TRIGGER
    accepted = on_mark[0]
    assert isinstance(accepted, ConditionalOrderAccepted)
    assert accepted.reference_ticks == v.ticks("BTCUSDT", "30000")


def test_the_triggered_market_order_trades_through_the_normal_path() -> None:
    # Arrange: Alice is long 0.01 from 30,000 and protects it with a stop-loss at 29,500
    v = trigger_venue("alice")
    liquidity(v, bid="29400")
    v.place("mm", "BTCUSDT", "SELL", "0.01", "30000")
    v.place("alice", "BTCUSDT", "BUY", "0.01", "30000")
    conditional(v, "alice", "SELL", "STOP_MARKET", "0.01", "29500", reduce_only=True)
    # Act: the last price falls to 29,500
    events = move(v, LAST, "29500")
    # Assert: the stop sells her 0.01 into the 29,400 bid, fee and PnL as for any taker
    fills = [e for e in events if isinstance(e, OrderFilled) and e.account_id == v.names["alice"]]
    assert [(f.price_ticks, f.qty_lots, f.is_maker, f.position_lots) for f in fills] == [
        (v.ticks("BTCUSDT", "29400"), 10, False, 0)
    ]
    assert fills[0].realized_pnl_atoms == -6 * 10**8  # (29,400 - 30,000) x 0.01 = -6 USDT
    assert v.engine.last_trade_ticks[v.spec("BTCUSDT").market] == v.ticks("BTCUSDT", "29400")


def test_direction_table() -> None:
    assert level_direction(ConditionalType.STOP, Side.BUY) == RISE
    assert level_direction(ConditionalType.STOP_MARKET, Side.SELL) == FALL
    assert level_direction(ConditionalType.TAKE_PROFIT, Side.BUY) == FALL
    assert level_direction(ConditionalType.TAKE_PROFIT_MARKET, Side.SELL) == RISE
    assert reached(100, RISE, 100) and reached(100, RISE, 101) and not reached(100, RISE, 99)
    assert reached(100, FALL, 100) and reached(100, FALL, 99) and not reached(100, FALL, 101)


def test_trailing_trigger_rounds_away_from_the_extreme() -> None:
    # SELL, max 30,123.4, 1%: 301,234 x 0.99 = 298,221.66 ticks -> 298,221 (29,822.1)
    assert trailing_trigger_ticks(Side.SELL, 301_234, 1_000_000) == 298_221
    # BUY, min 29,876.5, 1%: 298,765 x 1.01 = 301,752.65 ticks -> 301,753 (30,175.3)
    assert trailing_trigger_ticks(Side.BUY, 298_765, 1_000_000) == 301_753
    # exact products are not moved
    assert trailing_trigger_ticks(Side.SELL, 300_000, 1_000_000) == 297_000
    assert trailing_trigger_ticks(Side.BUY, 300_000, 1_000_000) == 303_000
