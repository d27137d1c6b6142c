"""Trailing stops: activation, the running extreme, the callback level and its rounding."""

from __future__ import annotations

from perpx.engine.codes import RejectCode
from perpx.engine.events import ConditionalOrderAccepted, OrderAccepted
from perpx.engine.values import AlgoId
from perpx.testkit import Venue

from .helpers import LAST, MARK, algo_id, conditional, liquidity, move, rejection, trigger_venue, triggered


def extreme(v: Venue, algo: AlgoId) -> tuple[bool, int]:
    order = v.engine.triggers.orders[algo]
    return order.activated, order.extreme_ticks


def test_sell_trailing_without_activation_follows_the_high_and_fires_one_callback_below_it() -> None:
    # Arrange: last 30,000; a SELL trailing stop with a 1% callback is active at once, max 30,000
    v = trigger_venue("alice")
    liquidity(v)
    algo = algo_id(conditional(v, "alice", "SELL", "TRAILING_STOP_MARKET", "0.01", callback="1"))
    assert extreme(v, algo) == (True, 300_000)
    # Act / Assert: a new high moves the max; the level is floor(305,000 x 0.99) = 301,950 (30,195.0)
    assert triggered(move(v, LAST, "30500")) == []
    assert extreme(v, algo) == (True, 305_000)
    assert triggered(move(v, LAST, "30195.1")) == []
    fired = move(v, LAST, "30195")
    [trig] = triggered(fired)
    assert (trig.trigger_price_ticks, trig.triggered_by_ticks) == (301_950, 301_950)
    child = fired[fired.index(trig) + 1]
    assert isinstance(child, OrderAccepted) and child.order_id == trig.order_id


def test_buy_trailing_activates_at_its_activation_price_then_tracks_the_low() -> None:
    # Arrange: mark 30,000; BUY trailing on the mark, activation 29,500, callback 2%
    v = trigger_venue("alice")
    liquidity(v)
    algo = algo_id(
        conditional(
            v, "alice", "BUY", "TRAILING_STOP_MARKET", "0.01", activation="29500", callback="2", working=MARK
        )
    )
    # Act / Assert
    move(v, MARK, "29800")
    assert extreme(v, algo) == (False, 0)  # not yet at the activation price
    move(v, MARK, "29400")
    assert extreme(v, algo) == (True, 294_000)  # activated by 29,400: that is its first low
    move(v, MARK, "29300")
    assert extreme(v, algo) == (True, 293_000)
    # level = ceil(293,000 x 1.02) = 298,860 (29,886.0)
    assert triggered(move(v, MARK, "29885.9")) == []
    [trig] = triggered(move(v, MARK, "29886"))
    assert trig.trigger_price_ticks == 298_860


def test_activation_and_trigger_are_never_the_same_observation() -> None:
    # A price far through the activation activates the stop; it fires only on a later bounce
    v = trigger_venue("alice")
    liquidity(v)
    algo = algo_id(
        conditional(v, "alice", "SELL", "TRAILING_STOP_MARKET", "0.01", activation="30100", callback="0.1")
    )
    assert triggered(move(v, LAST, "30400")) == []
    assert extreme(v, algo) == (True, 304_000)
    # floor(304,000 x 0.999) = 303,696
    assert [t.trigger_price_ticks for t in triggered(move(v, LAST, "30369.6"))] == [303_696]


def test_the_rounding_example_of_the_docs() -> None:
    # SELL 1%: max 30,123.4 -> 301,234 x 0.99 = 298,221.66 ticks -> floor 298,221 = 29,822.1
    v = trigger_venue("alice")
    liquidity(v)
    conditional(v, "alice", "SELL", "TRAILING_STOP_MARKET", "0.01", callback="1")
    move(v, LAST, "30123.4")
    assert triggered(move(v, LAST, "29822.2")) == []
    [trig] = triggered(move(v, LAST, "29822.1"))
    assert (trig.trigger_price_ticks, trig.triggered_by_ticks) == (298_221, 298_221)


def test_an_activation_price_already_reached_is_refused() -> None:
    v = trigger_venue("alice")
    # BUY activates when the price falls to it: it must be below the current 30,000; SELL above
    for side, activation in (("BUY", "30000"), ("BUY", "30100"), ("SELL", "30000"), ("SELL", "29900")):
        events = conditional(
            v, "alice", side, "TRAILING_STOP_MARKET", "0.01", activation=activation, callback="1"
        )
        assert rejection(events).code == RejectCode.ORDER_WOULD_TRIGGER, (side, activation)
    accepted = conditional(
        v, "alice", "BUY", "TRAILING_STOP_MARKET", "0.01", activation="29900", callback="1"
    )
    assert isinstance(accepted[0], ConditionalOrderAccepted)


def test_callback_rate_must_be_from_a_tenth_of_a_percent_to_ten_percent() -> None:
    v = trigger_venue("alice")
    for rate in ("0.09", "10.01", None):
        events = conditional(v, "alice", "SELL", "TRAILING_STOP_MARKET", "0.01", callback=rate)
        assert rejection(events).code == RejectCode.BAD_PARAMETER
    for rate in ("0.1", "10"):
        events = conditional(v, "alice", "SELL", "TRAILING_STOP_MARKET", "0.01", callback=rate)
        assert isinstance(events[0], ConditionalOrderAccepted)


def test_a_trailing_stop_takes_no_trigger_price_and_others_take_no_callback() -> None:
    v = trigger_venue("alice")
    trailing = conditional(v, "alice", "SELL", "TRAILING_STOP_MARKET", "0.01", "29000", callback="1")
    stop = conditional(v, "alice", "SELL", "STOP_MARKET", "0.01", "29000", callback="1")
    assert rejection(trailing).code == RejectCode.BAD_PARAMETER
    assert rejection(stop).code == RejectCode.BAD_PARAMETER
