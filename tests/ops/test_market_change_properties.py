"""Properties of ``ChangeMarketParams`` over generated venues and bracket tables.

Whatever the positions, leverages, resting orders and new brackets: the change applies or is
refused with one of its codes; a refusal changes nothing; an applied change leaves no leverage
above the new cap, liquidates nobody, keeps the engine's invariants (checked after every command
by the test venue) and restores from a snapshot to the same state.
"""

from __future__ import annotations

import msgspec
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from perpx.engine.codes import RejectCode
from perpx.engine.commands import ChangeMarketParams, SetLeverage
from perpx.engine.events import CommandRejected, MarketParamsChanged
from perpx.engine.params import canonical
from perpx.engine.state import encode_snapshot, restore, state_hash
from perpx.engine.values import MarketId
from tests.engine.helpers import BTC, venue

REFUSALS = {RejectCode.BRACKETS_UNDER_MAINTENANCE, RejectCode.ORDERS_OFF_FILTER, RejectCode.BAD_PARAMETER}


@st.composite
def bracket_tables(draw: st.DrawFn) -> list[dict[str, object]]:
    """Valid bracket tables: caps rising, leverage not rising, mmr not falling, mmr x leverage <= 1."""
    tiers = draw(st.integers(1, 4))
    caps = sorted(draw(st.lists(st.integers(1, 400), min_size=tiers, max_size=tiers, unique=True)))
    leverages = sorted(draw(st.lists(st.integers(1, 125), min_size=tiers, max_size=tiers)), reverse=True)
    rows, mmr = [], 0
    for cap, leverage in zip(caps, leverages, strict=True):
        top = min(99_999_999, 100_000_000 // leverage)
        mmr = draw(st.sampled_from([max(mmr, 400_000), top]) | st.integers(max(mmr, 1), top))
        rows.append(
            {"notional_cap": str(cap * 50_000), "max_leverage": leverage, "mmr": f"{mmr / 100_000_000:.8f}"}
        )
    return rows


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    deposits=st.lists(st.sampled_from(["320", "1000", "100000"]), min_size=2, max_size=2),
    leverages=st.lists(st.sampled_from([125, 100, 20]), min_size=2, max_size=2),
    qty=st.sampled_from(["0.01", "0.5", "1", "1"]),
    brackets=bracket_tables(),
    min_notional=st.sampled_from([None, "50", "5000"]),
    cancel=st.booleans(),
)
@example(
    deposits=["320", "320"],
    leverages=[100, 100],
    qty="1",
    brackets=[{"notional_cap": "20000000", "max_leverage": 20, "mmr": "0.05"}],
    min_notional=None,
    cancel=False,
)  # both accounts would be under maintenance: refused
def test_a_change_applies_whole_or_not_at_all_and_never_liquidates(
    deposits: list[str],
    leverages: list[int],
    qty: str,
    brackets: list[dict[str, object]],
    min_notional: str | None,
    cancel: bool,
) -> None:
    # Arrange: a sells qty to b at 30000 (when their margin allows), b leaves a bid resting
    v = venue()
    for name, deposit, leverage in zip(("a", "b"), deposits, leverages, strict=True):
        v.account(name, deposit)
        v.apply(
            SetLeverage(ts_ns=v.tick(), account_id=v.names[name], market=MarketId(BTC), leverage=leverage)
        )
    v.place("a", BTC, "SELL", qty, "30000")
    v.place("b", BTC, "BUY", qty, "30000")
    v.place("b", BTC, "BUY", "0.01", "29000")
    params = {"brackets": canonical(brackets)}
    if min_notional is not None:
        params["min_notional"] = min_notional
    before = v.hash()
    # Act
    events = list(
        v.apply(
            ChangeMarketParams(ts_ns=v.tick(), market=MarketId(BTC), params=params, cancel_off_grid=cancel)
        )
    )
    # Assert
    last = events[-1]
    if isinstance(last, CommandRejected):
        assert len(events) == 1 and last.code in REFUSALS, events
        assert v.hash() == before
        return
    assert isinstance(events[-1], MarketParamsChanged) or any(
        isinstance(e, MarketParamsChanged) for e in events
    )
    assert not [e for e in events if "Liquidat" in type(e).__name__ or "Takeover" in type(e).__name__]
    cap = v.engine.specs[MarketId(BTC)].max_leverage
    assert all(p.leverage <= cap for p in v.engine.market_positions[MarketId(BTC)].values())
    restored = restore(v.config, msgspec.json.decode(encode_snapshot(v.engine)))
    assert state_hash(restored) == v.hash()
