"""Market parameter changes while the venue runs (``UpdateMarketParams``): apply, refuse, snapshot."""

from __future__ import annotations

import msgspec
import pytest

from perpx.engine.codes import RejectCode
from perpx.engine.commands import AnyCommand, MarketMode, SetMarketMode, UpdateMarketParams
from perpx.engine.config import MARKET_PARAMS, market_params
from perpx.engine.events import Event, MarketParamsChanged, ParamChange
from perpx.engine.state import encode_snapshot, restore, snapshot, state_hash
from perpx.engine.values import MarketId
from perpx.testkit import Venue

from .helpers import BTC, code_of, venue


def update(v: Venue, operator: str = "ops", **params: str) -> list[Event]:
    return v.apply(UpdateMarketParams(ts_ns=v.tick(), market=MarketId(BTC), params=params, operator=operator))


def test_update_min_notional_applies_and_is_reported_with_old_and_new_values() -> None:
    # Arrange
    v = venue("a")
    before = v.hash()
    # Act
    events = update(v, min_notional="50", max_open_orders="3")
    # Assert
    assert events == [
        MarketParamsChanged(
            ts_ns=v.now_ns,
            market=MarketId(BTC),
            changes=(
                ParamChange(param="max_open_orders", old="200", new="3"),
                ParamChange(param="min_notional", old="100", new="50"),
            ),
            operator="ops",
        )
    ]
    assert v.engine.specs[MarketId(BTC)].min_notional_atoms == v.atoms("50")
    assert v.engine.param_overrides == {MarketId(BTC): {"max_open_orders": "3", "min_notional": "50"}}
    assert v.hash() != before


def test_lowered_min_notional_accepts_an_order_the_config_refused() -> None:
    # Arrange: 0.002 BTC at 30000 is 60 USDT, under the configured 100
    v = venue("a")
    refused = v.place("a", BTC, "BUY", "0.002", "30000")
    # Act
    update(v, min_notional="50")
    accepted = v.place("a", BTC, "BUY", "0.002", "30000")
    # Assert
    assert code_of(refused) == RejectCode.MIN_NOTIONAL
    assert type(accepted[0]).__name__ == "OrderAccepted"


def test_max_open_orders_limit_applies_to_new_orders() -> None:
    # Arrange
    v = venue("a")
    update(v, max_open_orders="1")
    v.place("a", BTC, "BUY", "0.01", "29000")
    # Act
    second = v.place("a", BTC, "BUY", "0.01", "29000")
    # Assert
    assert code_of(second) == RejectCode.MAX_OPEN_ORDERS


@pytest.mark.parametrize(
    ("params", "why"),
    [
        ({"tick_size": "1"}, "cannot be changed"),
        ({"min_notional": "-1"}, "plain non-negative decimal"),
        ({"min_notional": "abc"}, "plain non-negative decimal"),
        ({"min_notional": "NaN"}, "plain non-negative decimal"),
        ({"min_notional": "1e999999999"}, "plain non-negative decimal"),
        ({"max_open_interest": "None"}, "plain non-negative decimal"),
        ({"min_notional": "0.000000001"}, "not a multiple"),
        ({"percent_price_up": "0.9"}, "percent_price_up > 1"),
        ({"market_take_bound": "1"}, "between 0 and 1"),
        ({"max_open_orders": "0"}, "positive integer"),
        ({"max_open_orders": "1.5"}, "positive integer"),
        ({"max_open_orders": "1" * 12}, "positive integer"),
        ({"min_qty": "2000"}, "min_qty <= max_qty"),
        ({"max_open_interest": "0"}, "must be positive"),
        ({"liquidation_fee": "1"}, "between 0 and 1"),
        ({}, "no parameter"),
    ],
)
def test_invalid_change_is_refused_and_changes_nothing(params: dict[str, str], why: str) -> None:
    # Arrange
    v = venue("a")
    before = v.hash()
    spec = v.engine.specs[MarketId(BTC)]
    # Act
    events = update(v, **params)
    # Assert
    assert code_of(events) == RejectCode.BAD_PARAMETER
    assert why in getattr(events[0], "message", "")
    assert v.engine.specs[MarketId(BTC)] is spec
    assert v.hash() == before


def test_change_on_unknown_or_settled_market_is_refused() -> None:
    # Arrange
    v = venue("a")
    unknown = v.apply(
        UpdateMarketParams(ts_ns=v.tick(), market=MarketId("DOGEUSDT"), params={"min_notional": "5"})
    )
    v.apply(
        SetMarketMode(
            ts_ns=v.tick(), market=MarketId(BTC), mode=MarketMode.SETTLED, settle_price_ticks=300000
        )
    )
    # Act
    settled = update(v, min_notional="5")
    # Assert
    assert code_of(unknown) == RejectCode.BAD_SYMBOL
    assert code_of(settled) == RejectCode.MARKET_SETTLED


def test_setting_a_param_back_to_its_config_value_restores_the_original_hash() -> None:
    # Arrange
    v = venue("a")
    original = v.hash()
    update(v, min_notional="50", max_open_interest="10")
    changed = v.hash()
    # Act
    update(v, min_notional="100", max_open_interest="none")
    # Assert
    assert changed != original
    assert v.engine.param_overrides == {}
    assert v.hash() == original


def test_snapshot_restore_keeps_changed_params_and_the_hash() -> None:
    # Arrange
    v = venue("a", "b")
    update(v, min_notional="50", liquidation_fee="0.01", percent_price_up="1.1")
    v.place("a", BTC, "BUY", "0.002", "30000")
    # Act
    restored = restore(v.config, msgspec.json.decode(encode_snapshot(v.engine)))
    # Assert
    assert state_hash(restored) == v.hash()
    assert restored.specs == v.engine.specs
    assert restored.param_overrides == v.engine.param_overrides
    assert msgspec.json.decode(msgspec.json.encode(snapshot(restored)["market_params"])) == [
        [BTC, [["liquidation_fee", "0.01"], ["min_notional", "50"], ["percent_price_up", "1.1"]]]
    ]


def test_snapshot_mid_stream_then_replay_gives_the_uninterrupted_hash() -> None:
    # Arrange: a snapshot after a change, then more commands, including another change
    v = venue("a", "b")
    update(v, min_notional="50")
    taken = len(v.journal)
    state = msgspec.json.decode(encode_snapshot(v.engine))
    update(v, max_open_orders="2", min_notional="20")
    v.place("a", BTC, "BUY", "0.001", "30000")
    # Act
    engine = restore(v.config, state)
    for command in v.journal[taken:]:
        engine.apply(command)
    # Assert
    assert state_hash(engine) == v.hash()


def test_command_and_event_round_trip_through_the_journal_encoding() -> None:
    # Arrange
    command = UpdateMarketParams(
        ts_ns=1, market=MarketId(BTC), params={"min_notional": "5"}, operator="alice", wall_ns=2
    )
    # Act
    decoded = msgspec.msgpack.decode(msgspec.msgpack.encode(command), type=AnyCommand)
    # Assert
    assert decoded == command


def test_market_params_lists_every_changeable_param_as_config_text() -> None:
    # Arrange
    v = Venue()
    # Act
    params = market_params(v.spec(BTC), v.config.settlement.atom)
    # Assert
    assert tuple(params) == MARKET_PARAMS
    assert params["percent_price_up"] == "1.05"
    assert params["max_open_interest"] == "none"
    assert params["min_notional"] == "100"
