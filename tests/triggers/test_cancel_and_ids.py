"""Cancel (one, by client id, all), client algo id rules, the per-account limit, and the queries."""

from __future__ import annotations

import msgspec

from perpx.engine.codes import RejectCode
from perpx.engine.commands import (
    AnyCommand,
    CancelAllConditionalOrders,
    CancelConditionalOrder,
    ConditionalType,
    MarketMode,
    PlaceConditionalOrder,
    SetMarketMode,
    WorkingType,
)
from perpx.engine.events import (
    AnyEvent,
    CommandRejected,
    ConditionalOrderAccepted,
    ConditionalOrderCanceled,
    Event,
)
from perpx.engine.values import AccountId, AlgoId, ClientAlgoId, MarketId, Side
from tests.engine.helpers import BTC, config_with

from .helpers import (
    algo_id,
    cancel_all_conditional,
    cancel_conditional,
    conditional,
    move,
    open_ids,
    rejection,
    trigger_venue,
    triggered,
)


def command_code(events: list[Event]) -> int:
    assert len(events) == 1 and isinstance(events[0], CommandRejected), events
    return events[0].code


def test_cancel_by_algo_id_then_again_is_unknown() -> None:
    v = trigger_venue("alice")
    algo = algo_id(conditional(v, "alice", "SELL", "STOP_MARKET", "0.01", "29500", client_id="sl-1"))
    canceled = cancel_conditional(v, "alice", algo)
    assert canceled == [
        ConditionalOrderCanceled(
            ts_ns=v.engine.now_ns,
            algo_id=algo,
            account_id=v.names["alice"],
            market=MarketId(BTC),
            client_algo_id=ClientAlgoId("sl-1"),
        )
    ]
    assert command_code(cancel_conditional(v, "alice", algo)) == RejectCode.UNKNOWN_ORDER
    assert open_ids(v, "alice") == []


def test_cancel_by_client_id_and_the_id_is_free_again() -> None:
    v = trigger_venue("alice")
    first = algo_id(conditional(v, "alice", "SELL", "STOP_MARKET", "0.01", "29500", client_id="sl"))
    canceled = cancel_conditional(v, "alice", client_id="sl")
    assert [e.algo_id for e in canceled if isinstance(e, ConditionalOrderCanceled)] == [first]
    again = algo_id(conditional(v, "alice", "SELL", "STOP_MARKET", "0.01", "29500", client_id="sl"))
    assert again == first + 1


def test_cancel_needs_an_id_and_only_finds_the_accounts_own_orders_in_that_market() -> None:
    v = trigger_venue("alice", "bob")
    algo = algo_id(conditional(v, "alice", "SELL", "STOP_MARKET", "0.01", "29500", client_id="x"))
    assert command_code(cancel_conditional(v, "alice")) == RejectCode.BAD_PARAMETER
    assert command_code(cancel_conditional(v, "bob", algo)) == RejectCode.UNKNOWN_ORDER
    assert command_code(cancel_conditional(v, "bob", client_id="x")) == RejectCode.UNKNOWN_ORDER
    other_market = v.apply(
        CancelConditionalOrder(
            ts_ns=v.tick(), account_id=v.names["alice"], market=MarketId("ETHUSDT"), algo_id=algo
        )
    )
    assert command_code(other_market) == RejectCode.UNKNOWN_ORDER
    unknown = v.apply(
        CancelConditionalOrder(ts_ns=v.tick(), account_id=AccountId(99), market=MarketId(BTC), algo_id=algo)
    )
    assert command_code(unknown) == RejectCode.UNKNOWN_ACCOUNT
    assert open_ids(v, "alice") == [algo]


def test_cancel_all_cancels_the_accounts_orders_in_the_market_in_algo_id_order() -> None:
    v = trigger_venue("alice", "bob")
    mine = [
        algo_id(conditional(v, "alice", "SELL", "STOP_MARKET", "0.01", "29500")),
        algo_id(
            conditional(v, "alice", "BUY", "STOP_MARKET", "0.01", "30500", working=WorkingType.MARK_PRICE)
        ),
    ]
    theirs = algo_id(conditional(v, "bob", "SELL", "STOP_MARKET", "0.01", "29500"))
    events = cancel_all_conditional(v, "alice")
    assert [e.algo_id for e in events if isinstance(e, ConditionalOrderCanceled)] == mine
    assert open_ids(v, "bob") == [theirs]
    assert cancel_all_conditional(v, "alice") == []
    # a canceled order never fires
    assert triggered(move(v, WorkingType.MARK_PRICE, "30600")) == []


def test_cancels_are_accepted_in_a_halted_market() -> None:
    v = trigger_venue("alice")
    algo = algo_id(conditional(v, "alice", "SELL", "STOP_MARKET", "0.01", "29500"))
    v.apply(SetMarketMode(ts_ns=v.tick(), market=MarketId(BTC), mode=MarketMode.HALTED))
    assert isinstance(cancel_conditional(v, "alice", algo)[0], ConditionalOrderCanceled)


def test_client_algo_id_is_unique_among_the_accounts_open_conditional_orders() -> None:
    v = trigger_venue("alice", "bob")
    conditional(v, "alice", "SELL", "STOP_MARKET", "0.01", "29500", client_id="tp")
    duplicate = conditional(v, "alice", "BUY", "STOP_MARKET", "0.01", "30500", client_id="tp")
    assert rejection(duplicate).code == RejectCode.DUPLICATE_CLIENT_ORDER_ID
    assert rejection(duplicate).client_algo_id == "tp"
    # another account may use it; a triggered order frees it
    assert isinstance(
        conditional(v, "bob", "SELL", "STOP_MARKET", "0.01", "29500", client_id="tp")[0],
        ConditionalOrderAccepted,
    )
    v.place("mm", BTC, "BUY", "1", "29000")
    move(v, WorkingType.CONTRACT_PRICE, "29500")
    assert isinstance(
        conditional(v, "alice", "SELL", "STOP_MARKET", "0.01", "28800", client_id="tp")[0],
        ConditionalOrderAccepted,
    )


def test_client_algo_id_length() -> None:
    v = trigger_venue("alice")
    for bad in ("", "x" * 37):
        assert rejection(
            conditional(v, "alice", "SELL", "STOP_MARKET", "0.01", "29500", client_id=bad)
        ).code == (RejectCode.BAD_PARAMETER)
    ok = conditional(v, "alice", "SELL", "STOP_MARKET", "0.01", "29500", client_id="x" * 36)
    assert isinstance(ok[0], ConditionalOrderAccepted)


def test_max_algo_orders_per_account_and_market() -> None:
    v = trigger_venue("alice", "bob", config=config_with({"max_algo_orders": 2}))
    first = algo_id(conditional(v, "alice", "SELL", "STOP_MARKET", "0.01", "29500"))
    conditional(v, "alice", "SELL", "STOP_MARKET", "0.01", "29400")
    refused = rejection(conditional(v, "alice", "SELL", "STOP_MARKET", "0.01", "29300"))
    assert refused.code == RejectCode.MAX_ALGO_ORDERS
    assert "Reach max stop order limit" in refused.message
    assert isinstance(
        conditional(v, "bob", "SELL", "STOP_MARKET", "0.01", "29500")[0], ConditionalOrderAccepted
    )
    cancel_conditional(v, "alice", first)
    assert isinstance(
        conditional(v, "alice", "SELL", "STOP_MARKET", "0.01", "29300")[0], ConditionalOrderAccepted
    )


def test_shape_refusals() -> None:
    v = trigger_venue("alice")
    # (type, qty, trigger, limit price, tif) -> code
    cases: list[tuple[str, str | None, str | None, str | None, str, RejectCode]] = [
        ("STOP_MARKET", "0.01", None, None, "GTC", RejectCode.BAD_PARAMETER),  # no trigger
        ("STOP", "0.01", "29500", None, "GTC", RejectCode.BAD_PARAMETER),  # no limit price
        ("STOP_MARKET", "0.01", "29500", "29400", "GTC", RejectCode.BAD_PARAMETER),  # a limit price
        ("STOP_MARKET", "0.01", "29500", None, "GTX", RejectCode.BAD_PARAMETER),  # post-only MARKET
        ("STOP_MARKET", None, "29500", None, "GTC", RejectCode.BAD_PARAMETER),  # no quantity
        ("STOP_MARKET", "0", "29500", None, "GTC", RejectCode.QTY_NOT_POSITIVE),
        ("STOP_MARKET", "121", "29500", None, "GTC", RejectCode.QTY_ABOVE_MAX),  # market_max_qty 120
        ("STOP_MARKET", "0.001", "29500", None, "GTC", RejectCode.MIN_NOTIONAL),
        ("STOP_MARKET", "0.01", "0", None, "GTC", RejectCode.PRICE_NOT_POSITIVE),
    ]
    for order_type, qty, trigger, price, tif, code in cases:
        events = conditional(v, "alice", "SELL", order_type, qty, trigger, price, tif=tif)
        assert rejection(events).code == code, (order_type, qty, trigger, price, tif)
    # a reduce-only order is exempt from min notional; a LIMIT variant may be 1000 BTC, a MARKET one 120
    assert isinstance(
        conditional(v, "alice", "SELL", "STOP_MARKET", "0.001", "29500", reduce_only=True)[0],
        ConditionalOrderAccepted,
    )
    assert isinstance(
        conditional(v, "alice", "SELL", "STOP", "121", "29500", "29400")[0], ConditionalOrderAccepted
    )


def test_no_reference_price_yet() -> None:
    # A venue with a mark but no trade yet: a CONTRACT_PRICE trigger cannot be checked
    from tests.engine.helpers import venue

    v = venue("alice")
    events = conditional(v, "alice", "SELL", "STOP_MARKET", "0.01", "29500")
    assert rejection(events).code == RejectCode.MARKET_CLOSED
    assert "no last trade price yet" in rejection(events).message
    marked = conditional(v, "alice", "SELL", "STOP_MARKET", "0.01", "29500", working=WorkingType.MARK_PRICE)
    assert isinstance(marked[0], ConditionalOrderAccepted)


def test_queries_for_the_rest_adapter() -> None:
    v = trigger_venue("alice", "bob")
    a = algo_id(conditional(v, "alice", "SELL", "STOP_MARKET", "0.01", "29500", client_id="a1"))
    b = algo_id(conditional(v, "alice", "BUY", "TAKE_PROFIT", "0.01", "29000", "29000"))
    algo_id(conditional(v, "bob", "SELL", "STOP_MARKET", "0.01", "29500"))
    triggers = v.engine.triggers
    alice = v.names["alice"]
    assert [o.algo_id for o in triggers.open_orders(alice)] == [a, b]
    assert [o.algo_id for o in triggers.open_orders(alice, MarketId("ETHUSDT"))] == []
    found = triggers.find(alice, client_algo_id=ClientAlgoId("a1"))
    assert found is not None and found.algo_id == a and found.trigger_price_ticks == 295_000
    assert triggers.find(alice, AlgoId(b)) is triggers.orders[b]
    assert triggers.find(v.names["bob"], AlgoId(a)) is None


def test_the_new_commands_and_events_round_trip_through_msgpack() -> None:
    commands = [
        PlaceConditionalOrder(
            ts_ns=1,
            account_id=AccountId(1),
            market=MarketId(BTC),
            side=Side.SELL,
            order_type=ConditionalType.TRAILING_STOP_MARKET,
            qty_lots=10,
            callback_rate_e8=1_000_000,
            client_algo_id=ClientAlgoId("t"),
        ),
        CancelConditionalOrder(ts_ns=2, account_id=AccountId(1), market=MarketId(BTC), algo_id=AlgoId(1)),
        CancelAllConditionalOrders(ts_ns=3, account_id=AccountId(1), market=MarketId(BTC)),
    ]
    decoded = msgspec.msgpack.decode(msgspec.msgpack.encode(commands), type=list[AnyCommand])
    assert decoded == commands
    v = trigger_venue("alice")
    events = conditional(v, "alice", "SELL", "STOP_MARKET", "0.01", "29500")
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(events), type=list[AnyEvent]) == events
