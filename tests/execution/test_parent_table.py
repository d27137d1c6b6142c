"""Rules of the engine's parent-order table (``perpx.engine.parents``): what it records and refuses.

Each rule is a row or a test; every refusal leaves the state hash unchanged, and a journal replay in
a fresh engine (and a snapshot round trip) rebuilds the table exactly.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perpx.engine.codes import RejectCode
from perpx.engine.commands import (
    CancelParent,
    Command,
    CreateParent,
    FinishParent,
    MarketMode,
    OrderType,
    ParentStatus,
    PlaceChildOrder,
    PlaceOrder,
    SetMarketMode,
    TimeInForce,
)
from perpx.engine.engine import Engine
from perpx.engine.events import (
    CommandRejected,
    OrderAccepted,
    OrderFilled,
    OrderRejected,
    ParentCancelRequested,
    ParentCreated,
    ParentEnded,
)
from perpx.engine.state import restore, snapshot, state_hash
from perpx.engine.values import AccountId, ClientAlgoId, ClientOrderId, MarketId, OrderId, ParentId, Side
from perpx.testkit import Venue

BTC = MarketId("BTCUSDT")


@pytest.fixture
def venue() -> Venue:
    venue = Venue()
    venue.account("maker", "1000000")
    venue.account("taker", "1000000")
    venue.account("other", "1000000")
    venue.mark("BTCUSDT", "50000")
    venue.place("maker", "BTCUSDT", "SELL", "0.05", "50000")
    venue.place("maker", "BTCUSDT", "SELL", "0.05", "50001")
    return venue


def _create(
    venue: Venue, name: str = "taker", client: str = "p1", lots: int = 100, **extra: object
) -> Command:
    fields: dict[str, object] = {
        "ts_ns": venue.tick(),
        "account_id": venue.names[name],
        "market": BTC,
        "side": Side.BUY,
        "qty_lots": lots,
        "client_algo_id": ClientAlgoId(client),
        "algo_type": "TWAP",
        **extra,
    }
    return CreateParent(**fields)  # type: ignore[arg-type]


def _child(
    venue: Venue, parent_id: int, n: int, lots: int, name: str = "taker", market: str = "BTCUSDT"
) -> Command:
    ts = venue.tick()
    order = PlaceOrder(
        ts_ns=ts,
        account_id=venue.names[name],
        market=MarketId(market),
        side=Side.BUY,
        order_type=OrderType.MARKET,
        qty_lots=lots,
        tif=TimeInForce.IOC,
        client_order_id=ClientOrderId(f"p1-c{n}"),
    )
    return PlaceChildOrder(ts_ns=ts, parent_id=ParentId(parent_id), order=order)


def _created(venue: Venue, **kwargs: object) -> ParentId:
    events = venue.apply(_create(venue, **kwargs))  # type: ignore[arg-type]
    created = [e for e in events if isinstance(e, ParentCreated)]
    assert len(created) == 1, events
    return created[0].parent_id


def test_a_parent_is_created_working_with_the_next_id(venue: Venue) -> None:
    first = _created(venue)
    second = _created(venue, client="p2")

    assert (first, second) == (1, 2)
    row = venue.engine.parents.rows[first]
    assert (row.status, row.executed_lots, row.qty_lots, row.client_algo_id) == (
        ParentStatus.WORKING,
        0,
        100,
        "p1",
    )


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"name": "missing"}, RejectCode.UNKNOWN_ACCOUNT),
        ({"market": MarketId("NOPEUSDT")}, RejectCode.BAD_SYMBOL),
        ({"lots": 0}, RejectCode.QTY_NOT_POSITIVE),
        ({"lots": -5}, RejectCode.QTY_NOT_POSITIVE),
        ({"client": ""}, RejectCode.BAD_CLIENT_ALGO_ID),
        ({"client": "x" * 33}, RejectCode.BAD_CLIENT_ALGO_ID),
    ],
)
def test_a_parent_that_breaks_a_rule_is_refused_and_changes_nothing(
    venue: Venue, change: dict[str, object], code: RejectCode
) -> None:
    venue.names["missing"] = AccountId(999)
    before = venue.hash()

    events = venue.apply(_create(venue, **change))  # type: ignore[arg-type]

    refusals = [e for e in events if isinstance(e, CommandRejected)]
    assert [r.code for r in refusals] == [code] and refusals[0].message
    assert venue.hash() == before and not venue.engine.parents.rows


def test_a_client_algo_id_is_used_once_per_account(venue: Venue) -> None:
    _created(venue)
    before = venue.hash()

    events = venue.apply(_create(venue))

    assert [e.code for e in events if isinstance(e, CommandRejected)] == [RejectCode.DUPLICATE_CLIENT_ALGO_ID]
    assert venue.hash() == before
    assert _created(venue, name="other") == 2  # another account's ids are its own


def test_a_parent_in_a_halted_market_is_refused(venue: Venue) -> None:
    venue.apply(SetMarketMode(ts_ns=venue.tick(), market=BTC, mode=MarketMode.HALTED))

    events = venue.apply(_create(venue))

    assert [e.code for e in events if isinstance(e, CommandRejected)] == [RejectCode.MARKET_CLOSED]


def test_children_fills_count_in_the_parents_executed_lots(venue: Venue) -> None:
    parent_id = _created(venue, lots=80)

    venue.apply(_child(venue, parent_id, 0, 30))
    venue.apply(_child(venue, parent_id, 1, 50))  # takes 20 at 50000 and 30 at 50001

    row = venue.engine.parents.rows[parent_id]
    assert row.executed_lots == 80
    assert not venue.engine.parents.children  # IOC children left the book


def test_a_resting_childs_maker_fills_count_later(venue: Venue) -> None:
    parent_id = _created(venue, client="p1", lots=10)
    ts = venue.tick()
    order = PlaceOrder(
        ts_ns=ts,
        account_id=venue.names["taker"],
        market=BTC,
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        qty_lots=10,
        price_ticks=venue.ticks("BTCUSDT", "49000"),
        client_order_id=ClientOrderId("p1-c0"),
    )
    venue.apply(PlaceChildOrder(ts_ns=ts, parent_id=parent_id, order=order))
    assert venue.engine.parents.rows[parent_id].executed_lots == 0

    venue.place("other", "BTCUSDT", "SELL", "0.004", "49000")  # 4 lots against the resting child

    assert venue.engine.parents.rows[parent_id].executed_lots == 4
    assert len(venue.engine.parents.children) == 1


@pytest.mark.parametrize("who", ["other_account", "unknown_parent", "ended_parent"])
def test_a_child_of_a_parent_it_does_not_belong_to_is_refused(venue: Venue, who: str) -> None:
    parent_id = _created(venue)
    if who == "ended_parent":
        venue.apply(
            FinishParent(ts_ns=venue.tick(), parent_id=parent_id, status=ParentStatus.EXPIRED, reason="x")
        )
    before = venue.hash()
    child = _child(
        venue,
        parent_id + 5 if who == "unknown_parent" else parent_id,
        0,
        10,
        name="other" if who == "other_account" else "taker",
    )

    events = venue.apply(child)

    assert [e.code for e in events if isinstance(e, OrderRejected)] == [RejectCode.NOT_THE_PARENTS]
    assert venue.hash() == before


def test_cancel_is_recorded_then_the_parent_ends_cancelled(venue: Venue) -> None:
    parent_id = _created(venue)
    taker = venue.names["taker"]

    refused = venue.apply(
        CancelParent(ts_ns=venue.tick(), account_id=venue.names["other"], parent_id=parent_id)
    )
    asked = venue.apply(CancelParent(ts_ns=venue.tick(), account_id=taker, parent_id=parent_id))
    ended = venue.apply(
        FinishParent(
            ts_ns=venue.tick(), parent_id=parent_id, status=ParentStatus.CANCELLED, reason="by the client"
        )
    )
    again = venue.apply(CancelParent(ts_ns=venue.tick(), account_id=taker, parent_id=parent_id))

    assert [e.code for e in refused if isinstance(e, CommandRejected)] == [RejectCode.UNKNOWN_PARENT]
    assert any(isinstance(e, ParentCancelRequested) for e in asked)
    assert [(e.status, e.reason) for e in ended if isinstance(e, ParentEnded)] == [
        (ParentStatus.CANCELLED, "by the client")
    ]
    assert [e.code for e in again if isinstance(e, CommandRejected)] == [RejectCode.UNKNOWN_PARENT]
    assert venue.engine.parents.rows[parent_id].status is ParentStatus.CANCELLED


def test_finished_needs_every_lot_executed(venue: Venue) -> None:
    parent_id = _created(venue, lots=30)
    venue.apply(_child(venue, parent_id, 0, 20))

    early = venue.apply(
        FinishParent(ts_ns=venue.tick(), parent_id=parent_id, status=ParentStatus.FINISHED, reason="done")
    )
    venue.apply(_child(venue, parent_id, 1, 10))
    done = venue.apply(
        FinishParent(ts_ns=venue.tick(), parent_id=parent_id, status=ParentStatus.FINISHED, reason="done")
    )

    assert [e.code for e in early if isinstance(e, CommandRejected)] == [RejectCode.PARENT_NOT_DONE]
    assert [(e.status, e.executed_lots) for e in done if isinstance(e, ParentEnded)] == [
        (ParentStatus.FINISHED, 30)
    ]


def test_a_replay_and_a_snapshot_rebuild_the_table_exactly(venue: Venue) -> None:
    parent_id = _created(venue, lots=80)
    venue.apply(_child(venue, parent_id, 0, 30))
    _created(venue, client="p2", lots=10)
    venue.apply(CancelParent(ts_ns=venue.tick(), account_id=venue.names["taker"], parent_id=ParentId(2)))
    venue.apply(
        FinishParent(ts_ns=venue.tick(), parent_id=ParentId(2), status=ParentStatus.CANCELLED, reason="c")
    )

    replayed = Engine(venue.config)
    for command in venue.journal:
        replayed.apply(command)
    restored = restore(venue.config, snapshot(venue.engine))

    assert state_hash(replayed) == state_hash(venue.engine) == state_hash(restored)
    for engine in (replayed, restored):
        rows = {p: r.to_row() for p, r in engine.parents.rows.items()}
        assert rows == {p: r.to_row() for p, r in venue.engine.parents.rows.items()}
        assert engine.parents.by_client == venue.engine.parents.by_client


def test_the_table_changes_the_state_hash_and_an_empty_one_does_not(venue: Venue) -> None:
    data = snapshot(venue.engine)
    assert "parents" not in data  # a snapshot from before the table loads as an empty one
    before = venue.hash()

    _created(venue)

    assert venue.hash() != before
    assert not restore(venue.config, data).parents.rows


@settings(max_examples=30, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 40), min_size=1, max_size=6),
    resting=st.lists(st.booleans(), min_size=6, max_size=6),
    sells=st.lists(st.integers(1, 30), max_size=4),
)
def test_executed_lots_is_the_sum_of_the_childrens_fills(
    sizes: list[int], resting: list[bool], sells: list[int]
) -> None:
    venue = Venue()
    for name in ("maker", "taker", "other"):
        venue.account(name, "1000000")
    venue.mark("BTCUSDT", "50000")
    venue.place("maker", "BTCUSDT", "SELL", "0.05", "50000")
    parent_id = _created(venue, lots=sum(sizes))
    child_ids: set[OrderId] = set()
    for n, lots in enumerate(sizes):
        ts = venue.tick()
        order = PlaceOrder(
            ts_ns=ts,
            account_id=venue.names["taker"],
            market=BTC,
            side=Side.BUY,
            order_type=OrderType.LIMIT,
            qty_lots=lots,
            price_ticks=venue.ticks("BTCUSDT", "49000" if resting[n] else "50000"),
            tif=TimeInForce.GTC if resting[n] else TimeInForce.IOC,
            client_order_id=ClientOrderId(f"p1-c{n}"),
        )
        for event in venue.apply(PlaceChildOrder(ts_ns=ts, parent_id=parent_id, order=order)):
            if isinstance(event, OrderAccepted):
                child_ids.add(event.order_id)
    for lots in sells:
        venue.place("other", "BTCUSDT", "SELL", str(Decimal(lots) / 1000), "49000")

    filled = 0
    replayed = Engine(venue.config)
    for command in venue.journal:
        for event in replayed.apply(command):
            if isinstance(event, OrderFilled) and event.order_id in child_ids:
                filled += event.qty_lots
    assert venue.engine.parents.rows[parent_id].executed_lots == filled
    assert replayed.parents.rows[parent_id].executed_lots == filled
