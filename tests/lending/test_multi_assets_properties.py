"""Properties of Multi-Assets Mode over random prices, trades, collateral moves and time.

After every command every engine invariant holds (the testkit checks them: conservation per
asset with multi-asset accounts and the fund's converted collateral, every collateral figure
equal to its balances at the kept prices, no unbacked negative wallet). Besides: no collateral is
converted and no collateral value moves while the BTC index is stale, and a snapshot restores to
the same hash. The mode is switched on and off along the way.
"""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings

from perpx.engine.events import CollateralConverted, Event, LiquidationExplained
from perpx.engine.state import restore, snapshot, state_hash
from tests.lending.multi_assets import BTC, MARKET, MultiVenue

NAMES = ("alice", "carol")
actions = st.one_of(
    st.tuples(st.just("btc"), st.integers(2_000, 80_000).map(str), st.booleans()),
    st.tuples(st.just("mark"), st.integers(-20, 8), st.just("")),
    st.tuples(st.just("buy"), st.sampled_from(NAMES), st.sampled_from(("0.5", "1", "2", "3"))),
    st.tuples(st.just("sell"), st.sampled_from(NAMES), st.sampled_from(("0.5", "1", "2", "3"))),
    st.tuples(st.just("withdraw"), st.sampled_from(NAMES), st.sampled_from(("0.01", "0.3", "1"))),
    st.tuples(st.just("deposit"), st.sampled_from(NAMES), st.sampled_from(("0.01", "0.3", "1"))),
    st.tuples(st.just("mode"), st.sampled_from(NAMES), st.booleans()),
    st.tuples(st.just("wait"), st.integers(1, 60), st.just("")),
)


def _act(lv: MultiVenue, action: tuple[str, Any, Any]) -> list[Event]:
    kind, a, b = action
    venue = lv.venue
    mark = venue.engine.marks[venue.spec(MARKET).market]
    price = str(mark * venue.spec(MARKET).tick_size)
    if kind == "btc":
        return lv.price(a, sources=("binance", "okx") if b else ("binance",))
    if kind == "mark":
        moved = max(1000, int(mark * venue.spec(MARKET).tick_size) * (100 + int(a)) // 100)
        return venue.mark(MARKET, str(moved))
    if kind == "buy":
        venue.place("bob", MARKET, "SELL", b, price)
        return venue.place(a, MARKET, "BUY", b, price)
    if kind == "sell":
        venue.place("bob", MARKET, "BUY", b, price)
        return venue.place(a, MARKET, "SELL", b, price)
    if kind == "withdraw":
        return lv.withdraw(a, BTC, b)
    if kind == "deposit":
        return lv.deposit(a, BTC, b)
    if kind == "mode":
        return lv.mode(a, b)
    return venue.advance(int(a))


@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(actions, min_size=20, max_size=50))
def test_multi_asset_accounts_conserve_every_asset_and_never_convert_on_a_stale_price(
    steps: list[tuple[str, Any, Any]],
) -> None:
    lv = MultiVenue()  # every engine invariant after every command
    for name in NAMES:
        lv.borrower(name, btc="2", usdt="500")
        lv.mode(name)
    engine = lv.venue.engine
    for step in steps:
        values_before = {n: lv.collateral(n) for n in NAMES}
        balances_before = {n: lv.balance(n, BTC) for n in NAMES}
        events = _act(lv, step)
        fresh = engine.lending.index_atoms(BTC) is not None
        for event in events:
            if isinstance(event, CollateralConverted):
                assert fresh
            if isinstance(event, LiquidationExplained) and event.outcome == "COLLATERAL_CONVERTED":
                assert fresh
        if not fresh and step[0] in ("btc", "mark", "wait"):
            for name in NAMES:  # a stale index never moves what collateral counts for
                if lv.balance(name, BTC) == balances_before[name] and engine.multi_assets.is_enabled(
                    lv.venue.names[name]
                ):
                    assert lv.collateral(name) == values_before[name]
    assert state_hash(restore(lv.config, snapshot(engine))) == lv.venue.hash()
