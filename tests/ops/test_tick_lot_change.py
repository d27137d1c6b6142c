"""Tick and lot size changes on a listed market: a change of the filters, never of the units.

Rule rows for ``tick_size`` and ``lot_size`` in ``ChangeMarketParams`` (``engine/params.py``): resting
orders off the new grid refuse the change or are cancelled with ``cancel_off_grid``; a size that is
not a whole multiple of the market's unit is refused with its own code; orders placed and amended
after the change are held to the new grid; positions keep their units; replay in a fresh process
and a restore from a snapshot reach the same state.
"""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from perpx.engine.codes import RejectCode
from perpx.engine.commands import ChangeMarketParams
from perpx.engine.config import ConfigError, default_config, parse_config, parse_market_table
from perpx.engine.events import (
    CommandRejected,
    ConditionalOrderCanceled,
    ConditionalOrderRejected,
    Event,
    MarketParamsChanged,
    OrderAccepted,
    OrderCanceled,
    OrderRejected,
)
from perpx.engine.params import market_table
from perpx.engine.state import encode_snapshot, restore, state_hash
from perpx.engine.values import MarketId
from perpx.ops.proposals import dry_run
from perpx.testkit import Venue
from tests.engine.helpers import BTC, code_of, venue
from tests.triggers.helpers import MARK, conditional


def change(v: Venue, cancel: bool = False, **params: str) -> list[Event]:
    return change_text(v, params, cancel)


def change_text(v: Venue, params: dict[str, str], cancel: bool = False) -> list[Event]:
    command = ChangeMarketParams(
        ts_ns=v.tick(), market=MarketId(BTC), params=params, cancel_off_grid=cancel, operator="ops"
    )
    return list(v.apply(command))


def refused(events: list[Event]) -> CommandRejected:
    assert len(events) == 1 and isinstance(events[0], CommandRejected), events
    return events[0]


def message(events: list[Event]) -> str:
    assert len(events) == 1 and isinstance(events[0], OrderRejected), events
    return events[0].message


def accepted(events: list[Event]) -> bool:
    return any(isinstance(e, OrderAccepted) for e in events)


# ---------------------------------------------------------------------- units and filters


def test_a_coarser_tick_is_a_filter_over_the_unchanged_price_unit() -> None:
    # Arrange
    v = venue("a")
    # Act
    events = change(v, tick_size="0.5", lot_size="0.01")
    # Assert
    spec = v.engine.specs[MarketId(BTC)]
    assert isinstance(events[-1], MarketParamsChanged)
    assert [(c.param, c.old, c.new) for c in events[-1].changes] == [
        ("lot_size", "0.001", "0.01"),
        ("tick_size", "0.1", "0.5"),
    ]
    assert (spec.tick_size, spec.lot_size) == (Decimal("0.1"), Decimal("0.001"))
    assert (spec.tick_step_ticks, spec.lot_step_lots) == (5, 10)
    assert (spec.filter_tick_size, spec.filter_lot_size) == (Decimal("0.5"), Decimal("0.010"))
    assert v.engine.param_overrides[MarketId(BTC)] == {"lot_size": "0.01", "tick_size": "0.5"}


def test_a_config_may_declare_a_finer_price_unit_than_its_tick() -> None:
    # Arrange
    table = market_table(default_config().markets[MarketId(BTC)], Decimal("0.00000001"))
    table["price_unit"], table["tick_size"] = "0.01", "0.1"
    # Act
    spec = parse_market_table(BTC, table, default_config().settlement_asset, Decimal("0.00000001"))
    # Assert
    assert (spec.tick_size, spec.tick_step_ticks, spec.filter_tick_size) == (
        Decimal("0.01"),
        10,
        Decimal("0.10"),
    )
    assert market_table(spec, Decimal("0.00000001"))["price_unit"] == "0.01"


@pytest.mark.parametrize(
    ("unit", "tick", "says"),
    [
        ("0.03", "0.1", "tick_size = 0.1 is not a whole multiple of the market's price_unit 0.03"),
        ("0.5", "0.1", "is not a whole multiple"),
        ("0", "0.1", "price_unit must be positive"),
    ],
)
def test_a_config_tick_off_its_price_unit_is_refused_naming_both(unit: str, tick: str, says: str) -> None:
    # Arrange
    text = default_config().raw
    data = msgspec.json.decode(msgspec.json.encode(text))
    data["markets"]["BTCUSDT"].update({"price_unit": unit, "tick_size": tick})
    # Act
    with pytest.raises(ConfigError) as raised:
        parse_config(data)
    # Assert
    assert says in str(raised.value)


@pytest.mark.parametrize(
    ("params", "code", "says"),
    [
        ({"tick_size": "0.05"}, RejectCode.TICK_NOT_UNIT, "price_unit 0.1 (from 1 to 1000000 units)"),
        ({"tick_size": "0.25"}, RejectCode.TICK_NOT_UNIT, "for instance 0.2 or 0.3"),
        ({"tick_size": "1000000.1"}, RejectCode.TICK_NOT_UNIT, "from 1 to 1000000 units"),
        ({"lot_size": "0.0015"}, RejectCode.LOT_NOT_UNIT, "qty_unit 0.001"),
        ({"tick_size": "-1"}, RejectCode.BAD_PARAMETER, "plain decimal"),
        ({"tick_size": "0"}, RejectCode.TICK_NOT_UNIT, "tick_size = 0 is not a whole multiple"),
        ({"lot_size": "1e3"}, RejectCode.BAD_PARAMETER, "plain decimal"),
        ({"price_unit": "0.5"}, RejectCode.PARAM_FIXED, "price_unit cannot change"),
        ({"qty_unit": "0.01"}, RejectCode.PARAM_FIXED, "qty_unit cannot change"),
    ],
)
def test_a_size_off_the_unit_is_refused_with_its_code_and_changes_nothing(
    params: dict[str, str], code: RejectCode, says: str
) -> None:
    # Arrange
    v = venue("a")
    before = v.hash()
    # Act
    rejection = refused(change_text(v, params))
    # Assert
    assert rejection.code == code and says in rejection.message
    assert v.hash() == before


# ---------------------------------------------------------------------- resting orders


def test_tick_coarser_refuses_while_orders_rest_off_the_new_grid_naming_how_many() -> None:
    # Arrange: 30000.1 and 29999.9 are off a 0.5 grid, 30000.0 is on it
    v = venue("a")
    for price in ("30000.1", "29999.9", "30000.0"):
        v.place("a", BTC, "BUY", "0.01", price)
    before = v.hash()
    # Act
    rejection = refused(change(v, tick_size="0.5"))
    # Assert
    assert rejection.code == RejectCode.ORDERS_OFF_FILTER
    assert rejection.message.startswith("2 resting order(s)") and "tick, step" in rejection.message
    assert v.hash() == before


def test_tick_coarser_with_cancel_off_grid_cancels_the_off_grid_orders_only() -> None:
    # Arrange
    v = venue("a")
    for price in ("30000.1", "30000.0"):
        v.place("a", BTC, "BUY", "0.01", price)
    # Act
    events = change(v, cancel=True, tick_size="0.5")
    # Assert
    canceled = [e.order_id for e in events if isinstance(e, OrderCanceled)]
    assert len(canceled) == 1 and isinstance(events[-1], MarketParamsChanged)
    assert [o.price_ticks for o in v.engine.orders.values()] == [300_000]


def test_lot_coarser_refuses_or_cancels_orders_off_the_new_step() -> None:
    # Arrange: 0.015 is off a 0.01 step, 0.02 is on it
    v = venue("a")
    v.place("a", BTC, "BUY", "0.015", "30000")
    v.place("a", BTC, "BUY", "0.02", "30000")
    # Act
    first = refused(change(v, lot_size="0.01"))
    events = change(v, cancel=True, lot_size="0.01")
    # Assert
    assert first.code == RejectCode.ORDERS_OFF_FILTER and first.message.startswith("1 resting order(s)")
    assert [e.leaves_lots for e in events if isinstance(e, OrderCanceled)] == [15]
    assert [o.qty_lots for o in v.engine.orders.values()] == [20]


def test_a_coarser_lot_with_a_new_min_notional_counts_both_kinds_of_order() -> None:
    # Arrange: one order under 500 USDT on the step, one over it off the step
    v = venue("a")
    v.place("a", BTC, "BUY", "0.01", "30000")  # 300 USDT
    v.place("a", BTC, "BUY", "0.025", "30000")  # 750 USDT, off a 0.01 step
    v.place("a", BTC, "BUY", "0.02", "30000")  # 600 USDT: stays
    # Act
    rejection = refused(change(v, lot_size="0.01", min_notional="500"))
    # Assert
    assert rejection.message.startswith("2 resting order(s)")


def test_conditional_orders_off_the_new_grid_are_counted_then_cancelled_with_cancel_off_grid() -> None:
    # Arrange: a stop-limit with its limit off a 0.5 tick, a stop-market on it
    v = venue("a")
    conditional(v, "a", "BUY", "STOP", "0.01", trigger="31000", price="31000.1", working=MARK)
    conditional(v, "a", "BUY", "STOP_MARKET", "0.01", trigger="31000.5", working=MARK)
    assert len(v.engine.triggers.orders) == 2
    # Act
    first = refused(change(v, tick_size="0.5"))
    events = change(v, cancel=True, tick_size="0.5")
    # Assert
    assert first.message.startswith("0 resting order(s) and 1 conditional order(s)")
    assert len([e for e in events if isinstance(e, ConditionalOrderCanceled)]) == 1
    assert [o.trigger_price_ticks for o in v.engine.triggers.orders.values()] == [310_005]


def test_a_conditional_order_off_the_new_grid_is_refused_when_placed() -> None:
    # Arrange
    v = venue("a")
    change(v, tick_size="0.5", lot_size="0.01")
    # Act
    off_tick = conditional(v, "a", "BUY", "STOP_MARKET", "0.01", trigger="31000.1", working=MARK)
    off_step = conditional(v, "a", "BUY", "STOP_MARKET", "0.015", trigger="31000.5", working=MARK)
    on_grid = conditional(v, "a", "BUY", "STOP_MARKET", "0.01", trigger="31000.5", working=MARK)
    # Assert
    assert [e.code for e in off_tick + off_step if isinstance(e, ConditionalOrderRejected)] == [
        RejectCode.PRICE_NOT_TICK,
        RejectCode.QTY_NOT_STEP,
    ]
    assert not any(isinstance(e, ConditionalOrderRejected) for e in on_grid)


# ---------------------------------------------------------------------- after the change


def test_after_a_tick_change_an_order_on_the_new_grid_is_accepted_and_one_on_the_old_is_refused() -> None:
    # Arrange
    v = venue("a")
    change(v, tick_size="0.5", lot_size="0.01")
    # Act
    on_grid = v.place("a", BTC, "BUY", "0.01", "30000.5")
    off_tick = v.place("a", BTC, "BUY", "0.01", "30000.1")
    off_step = v.place("a", BTC, "BUY", "0.015", "30000.5")
    # Assert
    assert accepted(list(on_grid))
    assert code_of(list(off_tick)) == RejectCode.PRICE_NOT_TICK
    assert code_of(list(off_step)) == RejectCode.QTY_NOT_STEP
    assert "multiple of 0.5" in message(list(off_tick))
    assert "multiple of 0.010" in message(list(off_step))


def test_an_amend_off_the_new_grid_is_refused() -> None:
    # Arrange
    v = venue("a")
    change(v, tick_size="0.5", lot_size="0.01")
    order_id = next(
        e.order_id for e in v.place("a", BTC, "BUY", "0.01", "30000") if isinstance(e, OrderAccepted)
    )
    # Act
    price = v.amend("a", BTC, order_id, "29999.9", "0.01")
    qty = v.amend("a", BTC, order_id, "30000", "0.015")
    moved = v.amend("a", BTC, order_id, "29999.5", "0.02")
    # Assert
    assert code_of(list(price)) == RejectCode.PRICE_NOT_TICK
    assert code_of(list(qty)) == RejectCode.QTY_NOT_STEP
    assert not any(isinstance(e, CommandRejected) for e in moved)


def test_a_position_off_the_new_step_can_still_be_closed_whole_reduce_only() -> None:
    # Arrange: a is long 0.015 BTC, then the step becomes 0.01
    v = venue("a", "b")
    v.place("a", BTC, "BUY", "0.015", "30000")
    v.place("b", BTC, "SELL", "0.015", "30000")
    change(v, lot_size="0.01")
    v.place("b", BTC, "BUY", "0.02", "30000")
    # Act
    part = v.place("a", BTC, "SELL", "0.005", "30000", reduce_only=True)
    whole = v.place("a", BTC, "SELL", "0.015", "30000", reduce_only=True)
    # Assert
    assert code_of(list(part)) == RejectCode.QTY_NOT_STEP
    assert not any(isinstance(e, CommandRejected) for e in whole)
    assert v.position("a", BTC) == 0


def test_changing_back_to_the_listed_sizes_leaves_no_override() -> None:
    # Arrange
    v = venue("a")
    change(v, tick_size="0.5", lot_size="0.01")
    # Act
    change(v, tick_size="0.1", lot_size="0.001")
    # Assert
    assert v.engine.param_overrides == {}
    assert v.engine.specs[MarketId(BTC)] == v.spec(BTC)


# ---------------------------------------------------------------------- replay and snapshots


def _changed_venue() -> Venue:
    v = venue("a", "b")
    v.place("a", BTC, "BUY", "0.015", "29000.1")
    v.place("a", BTC, "BUY", "0.5", "30000")
    v.place("b", BTC, "SELL", "0.3", "30000")
    change(v, cancel=True, tick_size="0.5", lot_size="0.01")
    v.place("b", BTC, "SELL", "0.1", "30000.5")
    return v


def test_snapshot_after_a_tick_change_restores_the_filters_and_the_same_hash() -> None:
    # Arrange
    v = _changed_venue()
    data = msgspec.json.decode(encode_snapshot(v.engine))
    # Act
    engine = restore(v.config, data)
    # Assert
    assert state_hash(engine) == v.hash()
    assert engine.specs[MarketId(BTC)] == v.engine.specs[MarketId(BTC)]
    assert engine.specs[MarketId(BTC)].tick_step_ticks == 5


REPLAY = """
import sys, msgspec
from perpx.engine.commands import AnyCommand
from perpx.engine.config import default_config
from perpx.engine.engine import Engine
from perpx.engine.state import state_hash
engine = Engine(default_config())
for command in msgspec.msgpack.decode(sys.stdin.buffer.read(), type=list[AnyCommand]):
    engine.apply(command)
spec = engine.specs["BTCUSDT"]
print(state_hash(engine), spec.tick_step_ticks, spec.lot_step_lots)
"""


def test_replaying_across_a_tick_change_in_a_fresh_process_reaches_the_same_state() -> None:
    # Arrange
    v = _changed_venue()
    journal = msgspec.msgpack.encode(v.journal)
    root = Path(__file__).resolve().parents[2]
    # Act
    done = subprocess.run(
        [sys.executable, "-c", REPLAY], input=journal, capture_output=True, cwd=root, timeout=120, check=True
    )
    # Assert
    assert done.stdout.decode().split() == [v.hash(), "5", "10"]


# ---------------------------------------------------------------------- the simulator


def test_the_dry_run_simulator_trades_on_the_proposed_grid() -> None:
    # Arrange: mark_walk walks the book; on a 0.5 tick and 0.01 step its agents must still trade
    proposed = {"tick_size": "0.5", "lot_size": "0.01"}
    # Act
    result = dry_run(BTC, {"tick_size": "0.1", "lot_size": "0.001"}, proposed, ["mark_walk"])
    # Assert: the walk happens on both grids (a simulator off the grid would leave the gap at 0)
    row = result["results"]["mark_walk"]
    assert row["current"]["max_mark_index_gap_bps"] > 100
    assert row["proposed"]["max_mark_index_gap_bps"] > 100
