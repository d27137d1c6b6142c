"""Conditional orders in the snapshot and the state hash: a restored engine behaves identically."""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from perpx.engine import invariants
from perpx.engine.events import Event
from perpx.engine.state import encode_snapshot, restore, snapshot, state_hash
from perpx.testkit import Venue
from tests.engine.helpers import BTC

from .helpers import (
    LAST,
    MARK,
    algo_id,
    cancel_conditional,
    conditional,
    liquidity,
    move,
    trigger_venue,
    triggered,
)


def rich_state() -> Venue:
    """Every kind of untriggered order: stops, limits, a pending and an active trailing stop with a
    moved extreme, protected, close-position, client ids, and a gap in the algo ids."""
    v = trigger_venue("alice", "bob")
    liquidity(v)
    v.place("mm", BTC, "SELL", "0.02", "30000")
    v.place("alice", BTC, "BUY", "0.02", "30000")
    conditional(v, "alice", "SELL", "STOP_MARKET", None, "29500", close_position=True, client_id="sl")
    conditional(v, "alice", "SELL", "TAKE_PROFIT_MARKET", "0.01", "30600", reduce_only=True, client_id="tp")
    gone = algo_id(conditional(v, "bob", "BUY", "STOP_MARKET", "0.01", "30700"))
    conditional(v, "bob", "BUY", "STOP_MARKET", "0.01", "30400", working=MARK, price_protect=True)
    conditional(v, "bob", "SELL", "TRAILING_STOP_MARKET", "0.01", callback="1", stp="EXPIRE_MAKER")
    conditional(
        v, "bob", "BUY", "TRAILING_STOP_MARKET", "0.01", activation="29700", callback="0.5", working=MARK
    )
    conditional(v, "bob", "BUY", "STOP", "0.01", "33000", "33100", tif="IOC")  # never reached here
    cancel_conditional(v, "bob", gone)
    move(v, LAST, "30300")  # the active trailing stop's max moves to 30,300
    return v


def test_snapshot_holds_conditional_orders_canonically() -> None:
    v = rich_state()
    data = snapshot(v.engine)
    rows = data["triggers"]["orders"]
    assert [row[0] for row in rows] == sorted(row[0] for row in rows)
    assert data["triggers"]["next_algo_id"] == 8
    trailing = next(row for row in rows if row[4] == "TRAILING_STOP_MARKET" and row[13] is None)
    assert trailing[18:] == [True, 303_000]  # activated, extreme


def test_conditional_orders_change_the_hash() -> None:
    v = trigger_venue("alice")
    before = v.hash()
    algo = algo_id(conditional(v, "alice", "SELL", "STOP_MARKET", "0.01", "29500"))
    placed = v.hash()
    cancel_conditional(v, "alice", algo)
    assert len({before, placed, v.hash()}) == 3  # the id counter moved on


def test_a_restored_engine_behaves_identically() -> None:
    # Arrange
    v = rich_state()
    restored = restore(v.config, msgspec.json.decode(encode_snapshot(v.engine)))
    assert state_hash(restored) == v.hash()
    assert snapshot(restored) == snapshot(v.engine)
    invariants.check(restored)
    start = len(v.journal)
    # Act: drive the original through every trigger, replaying each command on the restored engine
    fired = []
    steps: list[Callable[[], list[Event]]] = [
        # trailing sell: floor(303,000 x 0.99) = 299,970 fires, sells into the 29,000 bid, which
        # fires Alice's close-position stop (29,500) in the next pass
        lambda: move(v, LAST, "29997"),
        lambda: move(v, MARK, "29650"),  # the trailing buy activates at 29,650
        # ceil(296,500 x 1.005) = 297,983: it fires, buys the 31,000 ask, which fires the
        # take-profit (30,600); Alice is flat by now, so its reduce-only order is refused
        lambda: move(v, MARK, "29800"),
        lambda: move(v, MARK, "30400"),  # the protected stop: |30,400 - 31,000| / 30,400 < 5%
    ]
    for step in steps:
        events = step()
        fired += [t.algo_id for t in triggered(events)]
        replayed = [restored.apply(command) for command in v.journal[start:]]
        start = len(v.journal)
        assert replayed[-1] == events
        invariants.check(restored)
        assert state_hash(restored) == v.hash()
    # Assert: everything fired, in the same way on both
    assert fired == [5, 1, 6, 2, 4]
    assert list(restored.triggers.orders) == [7]
