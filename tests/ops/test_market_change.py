"""Non-live market parameters changed on a running venue (``ChangeMarketParams``, ``engine/params.py``).

Rule rows: each rule an operator expects, its code and message; what the change rebuilds; replay
in a fresh process and snapshot/restore after a change reach the same state.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import msgspec
import pytest

from perpx.engine.codes import RejectCode
from perpx.engine.commands import AnyCommand, ChangeMarketParams, SetLeverage, UpdateMarketParams
from perpx.engine.config import MarketSpec, default_config, parse_config, parse_market_table
from perpx.engine.events import (
    CommandRejected,
    Event,
    FundingSettled,
    LeverageChanged,
    MarketParamsChanged,
    OrderCanceled,
)
from perpx.engine.params import CHANGEABLE, canonical, market_table, param_texts
from perpx.engine.state import encode_snapshot, restore, state_hash
from perpx.engine.values import MarketId
from perpx.testkit import START_NS, Venue
from tests.engine.helpers import BTC, venue
from tests.pricing.helpers import HOUR, priced_config, priced_venue, quote_all

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
LOW_BRACKETS = [
    {"notional_cap": "50000", "max_leverage": 50, "mmr": "0.01"},
    {"notional_cap": "20000000", "max_leverage": 20, "mmr": "0.025"},
]


def change(v: Venue, cancel: bool = False, **params: object) -> list[Event]:
    return change_text(v, {k: p if isinstance(p, str) else canonical(p) for k, p in params.items()}, cancel)


def change_text(v: Venue, text: dict[str, str], cancel: bool = False) -> list[Event]:
    command = ChangeMarketParams(
        ts_ns=v.tick(), market=MarketId(BTC), params=text, cancel_off_grid=cancel, operator="ops"
    )
    return list(v.apply(command))


def refused(events: list[Event]) -> CommandRejected:
    assert len(events) == 1 and isinstance(events[0], CommandRejected), events
    return events[0]


def trade(v: Venue, qty: str, price: str = "30000") -> None:
    v.place("a", BTC, "SELL", qty, price)
    v.place("b", BTC, "BUY", qty, price)


# ---------------------------------------------------------------------- the config's inverse


def _shipped_specs() -> list[tuple[MarketSpec, object]]:
    configs = [default_config(), priced_config()]
    data = tomllib.loads((SCENARIOS / "venue.toml").read_text())
    if "markets" in data:
        configs.append(parse_config(data))
    return [(spec, c.settlement.atom) for c in configs for spec in c.markets.values()]


@pytest.mark.parametrize(("spec", "atom"), _shipped_specs(), ids=lambda x: getattr(x, "market", ""))
def test_market_table_reads_back_to_the_same_spec(spec: MarketSpec, atom: object) -> None:
    # Arrange
    table = market_table(spec, atom)  # type: ignore[arg-type]
    # Act
    again = parse_market_table(spec.market, table, spec.settlement_asset, atom)  # type: ignore[arg-type]
    # Assert
    assert again == spec


# ---------------------------------------------------------------------- brackets and leverage


def test_bracket_change_applies_and_is_reported_as_config_text() -> None:
    # Arrange
    v = venue("a")
    before = v.hash()
    # Act
    events = change(v, brackets=LOW_BRACKETS)
    # Assert
    done = [e for e in events if isinstance(e, MarketParamsChanged)]
    assert len(done) == 1 and done[0].changes[0].param == "brackets"
    assert json.loads(done[0].changes[0].new) == LOW_BRACKETS
    spec = v.engine.specs[MarketId(BTC)]
    assert (spec.max_leverage, spec.brackets[0].mmr_e8, spec.default_leverage) == (50, 1_000_000, 20)
    assert set(v.engine.param_overrides[MarketId(BTC)]) == {"brackets"}
    assert v.hash() != before


def test_leverage_above_the_new_cap_is_clamped_with_a_leverage_event() -> None:
    # Arrange
    v = venue("a", "b")
    v.apply(SetLeverage(ts_ns=v.tick(), account_id=v.names["a"], market=MarketId(BTC), leverage=100))
    # Act
    events = change(v, brackets=LOW_BRACKETS)
    # Assert
    clamped = [e for e in events if isinstance(e, LeverageChanged)]
    assert [(e.account_id, e.leverage) for e in clamped] == [(v.names["a"], 50)]
    assert v.engine.accounts[v.names["a"]].positions[MarketId(BTC)].leverage == 50


def test_default_leverage_follows_the_new_cap_down_unless_set() -> None:
    # Arrange
    v = venue("a")
    tight = [{"notional_cap": "20000000", "max_leverage": 10, "mmr": "0.025"}]
    # Act
    change(v, brackets=tight)
    set_too = change(v, brackets=tight, default_leverage="5")
    # Assert
    assert not any(isinstance(e, CommandRejected) for e in set_too)
    assert v.engine.specs[MarketId(BTC)].default_leverage == 5


def test_brackets_that_put_an_account_under_maintenance_are_refused_naming_the_count() -> None:
    # Arrange: a and b hold 1 BTC at 30000 each with about 300 USDT of margin
    v = venue("a", "b", deposit="320")
    v.apply(SetLeverage(ts_ns=v.tick(), account_id=v.names["a"], market=MarketId(BTC), leverage=100))
    v.apply(SetLeverage(ts_ns=v.tick(), account_id=v.names["b"], market=MarketId(BTC), leverage=100))
    trade(v, "1")
    before = v.hash()
    harsh = [{"notional_cap": "20000000", "max_leverage": 20, "mmr": "0.025"}]
    # Act
    events = change(v, brackets=harsh)
    # Assert
    rejection = refused(events)
    assert rejection.code == RejectCode.BRACKETS_UNDER_MAINTENANCE
    assert "would put 2 account(s)" in rejection.message
    assert v.hash() == before


# ---------------------------------------------------------------------- resting orders and filters


def test_orders_the_new_min_notional_refuses_refuse_the_change_naming_how_many() -> None:
    # Arrange: two resting bids of 150 USDT
    v = venue("a")
    v.place("a", BTC, "BUY", "0.005", "30000")
    v.place("a", BTC, "BUY", "0.005", "29000")
    before = v.hash()
    # Act
    events = change(v, min_notional="500")
    # Assert
    rejection = refused(events)
    assert rejection.code == RejectCode.ORDERS_OFF_FILTER
    assert (
        rejection.message.startswith("2 resting order(s) and 0 conditional")
        and "cancelOffGrid" in rejection.message
    )
    assert v.hash() == before


def test_cancel_off_grid_cancels_the_refused_orders_then_applies() -> None:
    # Arrange
    v = venue("a")
    v.place("a", BTC, "BUY", "0.005", "30000")
    v.place("a", BTC, "BUY", "1", "29000")  # 29000 USDT: stays
    # Act
    events = change(v, cancel=True, min_notional="500")
    # Assert
    canceled = [e for e in events if isinstance(e, OrderCanceled)]
    assert [e.leaves_lots for e in canceled] == [5]
    assert isinstance(events[-1], MarketParamsChanged)
    assert len(v.engine.orders) == 1


@pytest.mark.parametrize(
    ("params", "code", "words"),
    [
        (
            {"tick_size": "0.05"},
            RejectCode.TICK_NOT_UNIT,
            "not a whole multiple of the market's price_unit 0.1",
        ),
        ({"lot_size": "0.0015"}, RejectCode.LOT_NOT_UNIT, "for instance 0.001 or 0.002"),
        ({"price_unit": "0.5"}, RejectCode.PARAM_FIXED, "price_unit cannot change"),
        ({"qty_unit": "0.01"}, RejectCode.PARAM_FIXED, "qty_unit cannot change"),
        ({"base": "XBT"}, RejectCode.PARAM_FIXED, "base cannot change"),
        ({"mark_policy": "ema"}, RejectCode.PARAM_FIXED, "hold state built on it"),
        ({"nonsense": "1"}, RejectCode.BAD_PARAMETER, "cannot be changed; changeable"),
        ({}, RejectCode.BAD_PARAMETER, "no parameter"),
        ({"brackets": "[]"}, RejectCode.BAD_PARAMETER, "list of 1 to 100 tiers"),
        ({"brackets": "{"}, RejectCode.BAD_PARAMETER, "not a JSON table"),
        (
            {"brackets": '[{"notional_cap": 5e4, "max_leverage": 50, "mmr": "0.01"}]'},
            RejectCode.BAD_PARAMETER,
            "write decimals as strings",
        ),
        (
            {"brackets": '[{"notional_cap": "1e999999", "max_leverage": 50, "mmr": "0.01"}]'},
            RejectCode.BAD_PARAMETER,
            "plain decimal",
        ),
        (
            {"brackets": '[{"notional_cap": "50000", "max_leverage": 100, "mmr": "0.5"}]'},
            RejectCode.BAD_PARAMETER,
            "mmr x max_leverage exceeds 1",
        ),
        (
            {"brackets": '[{"notional_cap": "50000", "max_leverage": true, "mmr": "0.01"}]'},
            RejectCode.BAD_PARAMETER,
            "brackets[0].max_leverage",
        ),
        ({"brackets": "[" + "1," * 20_000 + "1]"}, RejectCode.BAD_PARAMETER, "at most 20000"),
        ({"brackets": "[1, 2]"}, RejectCode.BAD_PARAMETER, "brackets[0] must be a table"),
        ({"brackets": '[{"notional_cap": "50000"}]'}, RejectCode.BAD_PARAMETER, "max_leverage is missing"),
        ({"index": "[]"}, RejectCode.BAD_PARAMETER, "must be a table"),
        (
            {"brackets": '[{"notional_cap": "50000", "max_leverage": 1e999, "mmr": "0.01"}]'},
            RejectCode.BAD_PARAMETER,
            "write decimals as strings",
        ),
        (
            {"brackets": '[{"notional_cap": "5", "max_leverage": ' + "9" * 5000 + ', "mmr": "0.01"}]'},
            RejectCode.BAD_PARAMETER,
            "not a JSON table",
        ),
        ({"funding_interval_hours": "5"}, RejectCode.BAD_PARAMETER, "must divide 24"),
        ({"funding_interval_hours": "-8"}, RejectCode.BAD_PARAMETER, "positive integer"),
        ({"funding_cap": "-0.01"}, RejectCode.BAD_PARAMETER, "plain decimal"),
        ({"funding_floor": "0.01"}, RejectCode.BAD_PARAMETER, "funding_floor <= 0"),
        ({"default_leverage": "126"}, RejectCode.BAD_PARAMETER, "default_leverage must be 1..125"),
        ({"index": canonical({"sources": {"a": 1}})}, RejectCode.INDEX_TABLE, "cannot add or remove"),
    ],
)
def test_bad_change_is_refused_with_its_code_and_changes_nothing(
    params: dict[str, str], code: RejectCode, words: str
) -> None:
    # Arrange
    v = venue("a")
    before = v.hash()
    # Act
    rejection = refused(change_text(v, params))
    # Assert
    assert (rejection.code, rejection.command) == (code, "ChangeMarketParams")
    assert words in rejection.message
    assert v.hash() == before


def test_live_change_after_a_bracket_change_keeps_the_bracket_override() -> None:
    # Arrange
    v = venue("a")
    change(v, brackets=LOW_BRACKETS)
    # Act
    v.apply(UpdateMarketParams(ts_ns=v.tick(), market=MarketId(BTC), params={"min_notional": "50"}))
    # Assert
    assert set(v.engine.param_overrides[MarketId(BTC)]) == {"brackets", "min_notional"}
    assert v.engine.specs[MarketId(BTC)].max_leverage == 50


def test_changing_back_to_the_config_values_leaves_no_override() -> None:
    # Arrange
    v = venue("a")
    configured = param_texts(v.spec(BTC), v.config.settlement.atom)["brackets"]
    change(v, brackets=LOW_BRACKETS)
    # Act
    change(v, brackets=configured, default_leverage="20")
    # Assert
    assert v.engine.param_overrides == {}


# ---------------------------------------------------------------------- index sources


FRESH = {"binance": "30000", "okx": "30010", "bybit": "30005"}


def test_removing_sources_below_quorum_is_refused() -> None:
    # Arrange: quorum 2 of 3 fresh sources
    v = priced_venue("a")
    quote_all(v, FRESH)
    index = market_table(v.spec(BTC), v.config.settlement.atom)["index"]
    index["sources"] = {"binance": 3, "newsource": 1}
    # Act
    rejection = refused(change(v, index=index))
    # Assert
    assert rejection.code == RejectCode.INDEX_QUORUM
    assert "hold 1 fresh quote(s) and need 2" in rejection.message


def test_removing_the_index_table_is_refused() -> None:
    # Arrange
    v = priced_venue("a")
    quote_all(v, FRESH)
    before = v.hash()
    # Act
    rejection = refused(change_text(v, {"index": "none"}))
    # Assert
    assert rejection.code == RejectCode.INDEX_TABLE and "cannot add or remove" in rejection.message
    assert v.hash() == before


def test_adding_a_source_keeps_quorum_and_a_removed_source_stops_counting() -> None:
    # Arrange
    v = priced_venue("a")
    quote_all(v, FRESH)
    index = market_table(v.spec(BTC), v.config.settlement.atom)["index"]
    index["sources"] = {"binance": 3, "okx": 2, "kraken": 1}
    # Act
    events = change(v, index=index)
    after = v.quote(BTC, "kraken", "30002")
    bybit = v.quote(BTC, "bybit", "30001")
    # Assert
    assert isinstance(events[-1], MarketParamsChanged)
    assert not any(isinstance(e, CommandRejected) for e in after)
    assert refused(list(bybit)).code == RejectCode.UNKNOWN_SOURCE
    state = v.engine.pricing.markets[MarketId(BTC)]
    assert sorted(state.quotes) == ["binance", "kraken", "okx"]
    assert MarketId(BTC) not in v.engine.index_stale


# ---------------------------------------------------------------------- funding


def test_funding_interval_change_takes_effect_from_the_next_settlement() -> None:
    # Arrange: 8-hour funding; change to 4 hours two hours into the first interval
    v = priced_venue("a")
    quote_all(v, FRESH)
    v.advance(to_ns=START_NS + 2 * HOUR)
    # Act
    change(v, funding_interval_hours="4")
    settled: list[int] = []
    for hour in range(3, 21):
        quote_all(v, FRESH)  # keep the index fresh
        events = v.advance(to_ns=START_NS + hour * HOUR)
        settled += [(e.funding_time_ns - START_NS) // HOUR for e in events if isinstance(e, FundingSettled)]
    # Assert: 8 (as scheduled), then every 4 hours; none doubled, none skipped
    assert settled == [8, 12, 16, 20]


def test_a_longer_funding_interval_starts_after_the_scheduled_settlement() -> None:
    # Arrange: 4-hour funding; change to 8 hours one hour in
    v = priced_venue("a", config=priced_config(risk={"funding_interval_hours": 4}))
    quote_all(v, FRESH)
    v.advance(to_ns=START_NS + HOUR)
    # Act
    change(v, funding_interval_hours="8")
    settled: list[int] = []
    for hour in range(2, 21):
        quote_all(v, FRESH)
        events = v.advance(to_ns=START_NS + hour * HOUR)
        settled += [(e.funding_time_ns - START_NS) // HOUR for e in events if isinstance(e, FundingSettled)]
    # Assert
    assert settled == [4, 12, 20]


def test_funding_cap_change_bounds_the_next_settlement_rate() -> None:
    # Arrange
    v = priced_venue("a")
    quote_all(v, FRESH)
    # Act
    change(v, funding_cap="0.0001", funding_floor="-0.0001", interest_rate="0.01")
    view = v.engine.pricing.view(MarketId(BTC))
    # Assert
    assert (view.funding_cap_e8, view.funding_floor_e8, view.interest_rate_e8) == (10_000, -10_000, 1_000_000)
    assert view.predicted_funding_rate_e8 == 10_000


# ---------------------------------------------------------------------- replay and snapshots


def _changed_venue() -> Venue:
    v = priced_venue("a", "b")
    quote_all(v, FRESH)
    v.place("a", BTC, "BUY", "0.005", "29000")
    trade(v, "0.5")
    index = market_table(v.spec(BTC), v.config.settlement.atom)["index"]
    index["sources"] = {"binance": 3, "okx": 2, "kraken": 1}
    change(v, cancel=True, brackets=LOW_BRACKETS, index=index, funding_interval_hours="4", min_notional="500")
    v.advance(3600)
    return v


def test_snapshot_after_a_change_restores_the_new_settings_and_the_same_hash() -> None:
    # Arrange
    v = _changed_venue()
    data = msgspec.json.decode(encode_snapshot(v.engine))
    # Act
    engine = restore(v.config, data)
    # Assert
    assert state_hash(engine) == v.hash()
    assert engine.specs == v.engine.specs
    assert engine.pricing.markets[MarketId(BTC)].spec == v.engine.specs[MarketId(BTC)]
    quote_all(v, FRESH)
    for command in v.journal[-3:]:
        engine.apply(command)
    assert state_hash(engine) == v.hash()


REPLAY = """
import sys, msgspec
from perpx.engine.commands import AnyCommand
from perpx.engine.engine import Engine
from perpx.engine.state import state_hash
from tests.pricing.helpers import priced_config
engine = Engine(priced_config())
for command in msgspec.msgpack.decode(sys.stdin.buffer.read(), type=list[AnyCommand]):
    engine.apply(command)
print(state_hash(engine))
"""


def test_replaying_the_journal_in_a_fresh_process_reproduces_the_change() -> None:
    # Arrange
    v = _changed_venue()
    journal = msgspec.msgpack.encode(v.journal)
    root = Path(__file__).resolve().parents[2]
    # Act
    done = subprocess.run(
        [sys.executable, "-c", REPLAY], input=journal, capture_output=True, cwd=root, timeout=120, check=True
    )
    # Assert
    assert done.stdout.decode().strip() == v.hash()


def test_command_round_trips_through_the_journal_encoding() -> None:
    # Arrange
    command = ChangeMarketParams(
        ts_ns=1, market=MarketId(BTC), params={"brackets": canonical(LOW_BRACKETS)}, cancel_off_grid=True
    )
    # Act
    decoded = msgspec.msgpack.decode(msgspec.msgpack.encode(command), type=AnyCommand)
    # Assert
    assert decoded == command


def test_every_changeable_param_has_config_text() -> None:
    # Arrange
    v = Venue()
    # Act
    texts = param_texts(v.spec(BTC), v.config.settlement.atom)
    # Assert
    assert tuple(texts) == CHANGEABLE
    assert texts["index"] == "none" and texts["funding_interval_hours"] == "8"


def test_a_restored_venue_gives_the_same_events_for_a_change_as_the_live_one() -> None:
    # Arrange: a has a record at the default leverage (a refused order made it), b one at 100x
    v = venue("a", "b")
    v.place("a", BTC, "BUY", "0.001", "30000")  # under min notional: refused, the record stays
    v.apply(SetLeverage(ts_ns=v.tick(), account_id=v.names["b"], market=MarketId(BTC), leverage=100))
    restored = restore(v.config, msgspec.json.decode(encode_snapshot(v.engine)))
    tight = canonical([{"notional_cap": "20000000", "max_leverage": 10, "mmr": "0.025"}])
    command = ChangeMarketParams(ts_ns=v.tick(), market=MarketId(BTC), params={"brackets": tight})
    # Act
    live = list(v.apply(command))
    again = list(restored.apply(command))
    # Assert: only b's clamp is an event; a's record follows the default as an absent one would
    assert live == again
    assert [(e.account_id, e.leverage) for e in live if isinstance(e, LeverageChanged)] == [
        (v.names["b"], 10)
    ]
    assert state_hash(restored) == v.hash()
