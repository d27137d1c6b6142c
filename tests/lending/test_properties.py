"""Properties of the loan book over random sequences of prices, loans, repayments and time.

After every command: every engine invariant holds (conservation per asset counts loan
collateral), interest is never negative and accrual never lowers a debt, no loan is liquidated
below its liquidation LTV or on a stale index, and a refused command leaves the state hash unchanged.
At the end a snapshot restores to the same hash.
"""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings

from perpx.engine.commands import LtvDirection
from perpx.engine.events import CommandRejected, Event, LoanInterestAccrued, LoanLiquidated
from perpx.engine.state import restore, snapshot, state_hash
from tests.lending.helpers import BTC, LendingVenue

NAMES = ("alice", "bob", "carol")
amount = st.decimals(min_value="0.01", max_value="60000", places=2).map(str)
btc_amount = st.decimals(min_value="0.001", max_value="3", places=3).map(str)
actions = st.one_of(
    st.tuples(st.just("price"), st.integers(20_000, 70_000).map(str), st.booleans()),
    st.tuples(st.just("borrow"), st.sampled_from(NAMES), amount),
    st.tuples(st.just("borrow_collateral"), st.sampled_from(NAMES), btc_amount),
    st.tuples(st.just("repay"), st.sampled_from(NAMES), amount),
    st.tuples(st.just("repay_full"), st.sampled_from(NAMES), st.just("")),
    st.tuples(st.just("add"), st.sampled_from(NAMES), btc_amount),
    st.tuples(st.just("reduce"), st.sampled_from(NAMES), btc_amount),
    st.tuples(st.just("wait"), st.integers(1, 600), st.just("")),
)


def _act(lv: LendingVenue, action: tuple[str, Any, Any]) -> list[Event]:
    kind, a, b = action
    if kind == "price":
        return lv.price(a, sources=("binance", "okx") if b else ("binance",))
    if kind == "borrow":
        return lv.borrow(a, loan=b)
    if kind == "borrow_collateral":
        return lv.borrow(a, collateral=b)
    if kind == "repay":
        return lv.repay(a, b)
    if kind == "repay_full":
        return lv.repay(a, full=True)
    if kind == "add":
        return lv.adjust(a, b, LtvDirection.ADDITIONAL)
    if kind == "reduce":
        return lv.adjust(a, b, LtvDirection.REDUCED)
    return lv.venue.advance(int(a))


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(actions, min_size=5, max_size=40))
def test_loan_book_properties_hold_after_every_command(steps: list[tuple[str, Any, Any]]) -> None:
    lv = LendingVenue()  # checks every engine invariant after every command
    for name in NAMES:
        lv.borrower(name, btc="10", usdt="1000")
    lv.price("50000")
    lending = lv.venue.engine.lending
    terms = lv.config.lending.collateral[BTC]  # type: ignore[union-attr]
    for step in steps:
        debts_before = {loan_id: loan.debt_atoms for loan_id, loan in lending.loans.items()}
        hash_before = lv.venue.hash()
        events = _act(lv, step)
        for event in events:
            if isinstance(event, LoanInterestAccrued):
                assert event.interest_atoms >= 0
            if isinstance(event, LoanLiquidated):
                assert event.ltv_before_e8 >= terms.liquidation_ltv_e8
                assert lending.index_atoms(BTC) is not None  # never on a stale price
        if any(isinstance(e, LoanInterestAccrued) for e in events) and not any(
            isinstance(e, LoanLiquidated) for e in events
        ):
            for loan_id, debt in debts_before.items():
                if loan_id in lending.loans and step[0] == "wait":
                    assert lending.loans[loan_id].debt_atoms >= debt
        if step[0] != "price" and len(events) == 1 and isinstance(events[0], CommandRejected):
            assert lv.venue.hash() == hash_before
    assert state_hash(restore(lv.config, snapshot(lv.venue.engine))) == lv.venue.hash()
