"""Close-position, price protection, market modes and margin at the trigger, and cascades."""

from __future__ import annotations

from perpx.engine.codes import RejectCode
from perpx.engine.commands import MarketMode, SetMarketMode
from perpx.engine.events import (
    ConditionalExpireReason,
    ConditionalOrderAccepted,
    ConditionalOrderExpired,
    ConditionalOrderRejected,
    ConditionalOrderTriggered,
    OrderAccepted,
    OrderFilled,
    OrderRejected,
    PositionSettled,
)
from perpx.engine.values import MarketId
from perpx.testkit import Venue
from tests.engine.helpers import BTC, config_with, kinds

from .helpers import (
    LAST,
    MARK,
    algo_id,
    conditional,
    liquidity,
    move,
    open_ids,
    rejection,
    trade,
    trigger_venue,
    triggered,
)


def set_mode(v: Venue, mode: MarketMode, settle: str | None = None) -> list[object]:
    return list(
        v.apply(
            SetMarketMode(
                ts_ns=v.tick(),
                market=MarketId(BTC),
                mode=mode,
                settle_price_ticks=None if settle is None else v.ticks(BTC, settle),
            )
        )
    )


def go_long(v: Venue, name: str, qty: str, price: str = "30000") -> None:
    v.place("mm", BTC, "SELL", qty, price)
    v.place(name, BTC, "BUY", qty, price)


# ---------------------------------------------------------------------- close position


def test_close_position_closes_the_whole_position_as_it_is_at_the_trigger() -> None:
    # Arrange: Alice long 0.02, a close-position stop at 29,500; she then adds 0.01
    v = trigger_venue("alice")
    liquidity(v, bid="29400")
    go_long(v, "alice", "0.02")
    conditional(v, "alice", "SELL", "STOP_MARKET", None, "29500", close_position=True)
    go_long(v, "alice", "0.01")
    # Act
    events = move(v, LAST, "29500")
    # Assert: one reduce-only MARKET sell of 0.03, position flat
    [trig] = triggered(events)
    child = events[events.index(trig) + 1]
    assert isinstance(child, OrderAccepted)
    assert (child.qty_lots, child.reduce_only, child.order_type.value) == (30, True, "MARKET")
    assert v.position("alice", BTC) == 0


def test_close_position_expires_when_there_is_nothing_to_close() -> None:
    # Arrange: a close-position SELL (closes longs), but Alice is flat; Bob's closes longs while he is short
    v = trigger_venue("alice", "bob")
    liquidity(v)
    conditional(v, "alice", "SELL", "STOP_MARKET", None, "29500", close_position=True)
    v.place("mm", BTC, "BUY", "0.01", "30000")
    v.place("bob", BTC, "SELL", "0.01", "30000")
    conditional(v, "bob", "SELL", "TAKE_PROFIT_MARKET", None, "30500", close_position=True, working=MARK)
    # Act
    down = move(v, LAST, "29500")
    up = move(v, MARK, "30500")
    # Assert: expired with the price that triggered them; no order placed
    for events, name, price, closes in ((down, "alice", 295_000, "long"), (up, "bob", 305_000, "long")):
        expired = [e for e in events if isinstance(e, ConditionalOrderExpired)]
        assert [(e.account_id, e.reason, e.triggered_by_ticks) for e in expired] == [
            (v.names[name], ConditionalExpireReason.NO_POSITION, price)
        ]
        assert f"no {closes} position to close" in expired[0].message
        assert triggered(events) == []
    assert kinds(up) == ["MarkPriceSet", "ConditionalOrderExpired"]  # nothing was placed
    assert open_ids(v, "alice") == open_ids(v, "bob") == []


def test_close_position_goes_without_quantity_or_reduce_only_and_only_on_market_types() -> None:
    v = trigger_venue("alice")
    with_qty = conditional(v, "alice", "SELL", "STOP_MARKET", "0.01", "29500", close_position=True)
    with_ro = conditional(
        v, "alice", "SELL", "STOP_MARKET", None, "29500", close_position=True, reduce_only=True
    )
    on_limit = conditional(v, "alice", "SELL", "STOP", None, "29500", "29400", close_position=True)
    on_trailing = conditional(
        v, "alice", "SELL", "TRAILING_STOP_MARKET", None, callback="1", close_position=True
    )
    assert rejection(with_qty).code == RejectCode.QTY_WITH_CLOSE_POSITION
    assert rejection(with_ro).code == RejectCode.REDUCE_ONLY_CONFLICT
    assert rejection(on_limit).code == RejectCode.CLOSE_POSITION_TYPE
    assert rejection(on_trailing).code == RejectCode.CLOSE_POSITION_TYPE


# ---------------------------------------------------------------------- price protection


def test_price_protect_holds_the_order_while_mark_and_last_diverge() -> None:
    # Arrange: trigger_protect 1%; two stops at 29,700 on the last price, one protected
    v = trigger_venue("alice", config=config_with({"trigger_protect": "0.01"}))
    liquidity(v, bid="29600")  # the unprotected stop sells into it: the last price stays 29,600
    plain = algo_id(conditional(v, "alice", "SELL", "STOP_MARKET", "0.01", "29700"))
    guarded = algo_id(conditional(v, "alice", "SELL", "STOP_MARKET", "0.01", "29700", price_protect=True))
    # Act: last falls to 29,600 while the mark stays 30,000: |30,000 - 29,600| / 30,000 = 1.33% > 1%
    first = move(v, LAST, "29600")
    # Assert: only the unprotected stop fires
    assert [t.algo_id for t in triggered(first)] == [plain]
    assert open_ids(v, "alice") == [guarded]
    # Act: the mark comes down to 29,650; 50 / 29,650 = 0.17%: the protected one fires on the last price
    second = move(v, MARK, "29650")
    [trig] = triggered(second)
    assert (trig.algo_id, trig.triggered_by_ticks) == (guarded, v.ticks(BTC, "29600"))


def test_price_protect_threshold_itself_does_not_block() -> None:
    # |mark - last| / mark == trigger_protect exactly: allowed (only "more than" blocks)
    v = trigger_venue("alice", config=config_with({"trigger_protect": "0.01"}))
    liquidity(v)
    conditional(v, "alice", "SELL", "STOP_MARKET", "0.01", "29750", price_protect=True)
    assert len(triggered(move(v, LAST, "29700"))) == 1  # 300 / 30,000 = 1%


def test_a_protected_trailing_stop_ignores_prices_while_blocked() -> None:
    v = trigger_venue("alice", config=config_with({"trigger_protect": "0.01"}))
    liquidity(v)
    algo = algo_id(
        conditional(v, "alice", "SELL", "TRAILING_STOP_MARKET", "0.01", callback="1", price_protect=True)
    )
    move(v, LAST, "30500")  # 1.67% from the mark: hidden from the stop, its max stays 30,000
    assert v.engine.triggers.orders[algo].extreme_ticks == 300_000
    move(v, MARK, "30450")  # 0.16%: it sees 30,500 now
    assert v.engine.triggers.orders[algo].extreme_ticks == 305_000


# ---------------------------------------------------------------------- market modes and margin at the trigger


def test_halted_and_settled_markets_take_no_new_conditional_orders() -> None:
    v = trigger_venue("alice")
    set_mode(v, MarketMode.HALTED)
    halted = conditional(v, "alice", "SELL", "STOP_MARKET", "0.01", "29500")
    set_mode(v, MarketMode.SETTLED, settle="30000")
    settled = conditional(v, "alice", "SELL", "STOP_MARKET", "0.01", "29500")
    assert rejection(halted).code == RejectCode.MARKET_CLOSED
    assert rejection(settled).code == RejectCode.MARKET_SETTLED


def test_reduce_only_market_takes_only_reducing_conditional_orders() -> None:
    v = trigger_venue("alice")
    set_mode(v, MarketMode.REDUCE_ONLY)
    opening = conditional(v, "alice", "BUY", "STOP_MARKET", "0.01", "30500")
    reducing = conditional(v, "alice", "SELL", "STOP_MARKET", "0.01", "29500", reduce_only=True)
    closing = conditional(v, "alice", "SELL", "STOP_MARKET", None, "29500", close_position=True)
    assert rejection(opening).code == RejectCode.MARKET_REDUCE_ONLY
    assert isinstance(reducing[0], ConditionalOrderAccepted)
    assert isinstance(closing[0], ConditionalOrderAccepted)


def test_an_order_triggering_in_a_halted_market_is_rejected_with_the_reason() -> None:
    # Arrange: a mark-price stop; the market halts; the mark keeps moving
    v = trigger_venue("alice")
    algo = algo_id(conditional(v, "alice", "SELL", "STOP_MARKET", "0.01", "29500", working=MARK))
    set_mode(v, MarketMode.HALTED)
    # Act
    events = move(v, MARK, "29500")
    # Assert: triggered, the order refused by the market, and the conditional order says so
    assert kinds(events) == [
        "MarkPriceSet",
        "ConditionalOrderTriggered",
        "OrderRejected",
        "ConditionalOrderRejected",
    ]
    trig, refused, rejected = events[1], events[2], events[3]
    assert isinstance(trig, ConditionalOrderTriggered) and trig.order_id is None
    assert isinstance(refused, OrderRejected) and refused.code == RejectCode.MARKET_CLOSED
    assert isinstance(rejected, ConditionalOrderRejected)
    assert (rejected.algo_id, rejected.code) == (algo, RejectCode.MARKET_CLOSED)
    assert rejected.message.startswith(
        "triggered at 29500, but the order was refused: market BTCUSDT is halted"
    )
    assert open_ids(v, "alice") == []


def test_an_order_the_margin_cannot_carry_at_the_trigger_is_rejected() -> None:
    # Arrange: Alice has 200 USDT; a 1 BTC stop buy needs 1,500 USDT at 20x when it triggers
    v = trigger_venue("alice", deposit="200")
    liquidity(v)
    conditional(v, "alice", "BUY", "STOP_MARKET", "1", "30500", working=MARK)
    # Act
    events = move(v, MARK, "30500")
    # Assert
    rejected = [e for e in events if isinstance(e, ConditionalOrderRejected)]
    assert [e.code for e in rejected] == [RejectCode.MARGIN_INSUFFICIENT]
    assert "Margin is insufficient" in rejected[0].message


def test_settling_the_market_expires_its_conditional_orders_first() -> None:
    v = trigger_venue("alice")
    go_long(v, "alice", "0.01")
    a = algo_id(conditional(v, "alice", "SELL", "STOP_MARKET", "0.01", "29500", reduce_only=True))
    b = algo_id(conditional(v, "alice", "BUY", "TAKE_PROFIT_MARKET", "0.01", "29000"))
    events = set_mode(v, MarketMode.SETTLED, settle="30000")
    expired = [e for e in events if isinstance(e, ConditionalOrderExpired)]
    assert [(e.algo_id, e.reason) for e in expired] == [
        (a, ConditionalExpireReason.MARKET_SETTLED),
        (b, ConditionalExpireReason.MARKET_SETTLED),
    ]
    first_settlement = next(i for i, e in enumerate(events) if isinstance(e, PositionSettled))
    assert events.index(expired[-1]) < first_settlement
    assert open_ids(v, "alice") == []


# ---------------------------------------------------------------------- cascades


def test_a_stop_whose_fills_reach_another_stop_triggers_it_in_the_next_pass() -> None:
    # Arrange: asks 0.005 @ 30,200, 0.01 @ 30,500, 0.02 @ 30,600; stops on the last price
    v = trigger_venue("alice", "bob")
    for qty, price in (("0.005", "30200"), ("0.01", "30500"), ("0.02", "30600")):
        v.place("mm", BTC, "SELL", qty, price)
    a = algo_id(conditional(v, "alice", "BUY", "STOP_MARKET", "0.01", "30100"))
    b = algo_id(conditional(v, "bob", "BUY", "STOP_MARKET", "0.01", "30400"))
    # Act: one trade at 30,100 (mm bids it, tk sells into it... here tk lifts a new 30,100 ask)
    events = trade(v, "30100")
    # Assert: Alice's stop buys 0.005 @ 30,200 and 0.005 @ 30,500 -> last 30,500 -> Bob's stop fires
    fired = triggered(events)
    assert [(t.algo_id, t.triggered_by_ticks) for t in fired] == [(a, 301_000), (b, 305_000)]
    fills = [
        (e.account_id, e.price_ticks, e.qty_lots)
        for e in events
        if isinstance(e, OrderFilled) and not e.is_maker
    ]
    assert fills == [
        (v.names["tk"], 301_000, 5),
        (v.names["alice"], 302_000, 5),
        (v.names["alice"], 305_000, 5),
        (v.names["bob"], 305_000, 5),
        (v.names["bob"], 306_000, 5),
    ]
    # Bob's order comes after all of Alice's events
    assert events.index(fired[1]) > max(
        i for i, e in enumerate(events) if getattr(e, "account_id", None) == v.names["alice"]
    )


def test_orders_due_in_the_same_pass_fire_in_placement_order() -> None:
    # Arrange: three mark-price stops, placed in an order that is neither by level nor by account
    v = trigger_venue("alice", "bob")
    liquidity(v)
    first = algo_id(conditional(v, "alice", "SELL", "STOP_MARKET", "0.01", "29800", working=MARK))
    second = algo_id(conditional(v, "bob", "SELL", "STOP_MARKET", "0.01", "29900", working=MARK))
    third = algo_id(conditional(v, "alice", "SELL", "STOP_MARKET", "0.01", "29850", working=MARK))
    # Act: one mark move makes all three due
    events = move(v, MARK, "29700")
    # Assert
    assert [t.algo_id for t in triggered(events)] == [first, second, third]
