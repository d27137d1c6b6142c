"""Rule tables of secured loans: LTV thresholds, interest to the atom, margin calls, liquidation steps.

The worked examples are computed by hand in the comments (1 BTC = 10**8 atoms, 1 USDT = 10**8
atoms; initial/margin-call/liquidation LTV 78/85/91%, close factor 50%, penalty 2%).
"""

from __future__ import annotations

import pytest

from perpx.engine.codes import RejectCode
from perpx.engine.commands import LtvDirection
from perpx.engine.events import (
    LoanBorrowed,
    LoanCollateralAdjusted,
    LoanInterestAccrued,
    LoanLiquidated,
    LoanMarginCalled,
    LoanRepaid,
)
from perpx.engine.lending import formulas
from perpx.engine.state import restore, snapshot, state_hash
from tests.lending.helpers import (
    BTC,
    USDT,
    LendingVenue,
    atoms,
    lending_config,
    lending_data,
    of_type,
    rejection,
)


def _venue(price: str = "50000") -> LendingVenue:
    lv = LendingVenue()
    lv.borrower("alice")
    lv.price(price)
    return lv


# ---------------------------------------------------------------- borrowing and the initial LTV


@pytest.mark.parametrize(
    ("loan", "collateral", "code"),
    [
        ("39000", None, None),  # exactly 78% of 1 BTC at 50,000 when collateral is computed
        (None, "1", None),  # collateral 1 BTC -> loan 39,000
        ("39000", "1", None),  # both: a custom LTV of exactly 78%
        ("39000.00000001", "1", RejectCode.LOAN_ABOVE_INITIAL_LTV),
        ("20000", "1", None),  # both: a custom LTV of 40%
        (None, None, RejectCode.LOAN_AMOUNT_CHOICE),
        ("0", None, RejectCode.AMOUNT_NOT_POSITIVE),
        ("-5", None, RejectCode.AMOUNT_NOT_POSITIVE),
        ("2000000", None, RejectCode.BALANCE_INSUFFICIENT),  # needs 51.28 BTC, alice has 10
        (None, "0.000000001", None),  # below one atom of BTC is refused at the edge; here it rounds
    ],
)
def test_borrow_rule_table(loan: str | None, collateral: str | None, code: RejectCode | None) -> None:
    # Arrange
    lv = _venue()
    if collateral == "0.000000001":
        collateral = "0.00000001"  # one atom: worth 0.0005 USDT, 78% of it is 39,000 atoms of USDT
    # Act
    events = lv.borrow("alice", loan=loan, collateral=collateral)
    # Assert
    refused = rejection(events)
    assert (None if refused is None else refused[0]) == (None if code is None else int(code))


def test_borrow_by_loan_amount_posts_the_collateral_the_initial_ltv_needs() -> None:
    # Arrange: 39,000 USDT at 78% of a 50,000 BTC needs exactly 1 BTC
    lv = _venue()
    # Act
    events = lv.borrow("alice", loan="39000")
    # Assert
    (borrowed,) = of_type(events, LoanBorrowed)
    assert (borrowed.loan_atoms, borrowed.collateral_atoms, borrowed.ltv_e8) == (
        atoms("39000"),
        atoms("1"),
        78_000_000,
    )
    assert lv.balance("alice", USDT) == atoms("39000")
    assert lv.balance("alice", BTC) == atoms("9")
    assert lv.balance("lender", USDT) == atoms("961000")


def test_borrow_collateral_rounds_up_for_the_borrower() -> None:
    # Arrange: 100 USDT / 0.78 / 50,000 = 0.002564102564... BTC -> 256411 atoms (up)
    lv = _venue()
    # Act
    (borrowed,) = of_type(lv.borrow("alice", loan="100"), LoanBorrowed)
    # Assert
    assert borrowed.collateral_atoms == 256_411


def test_second_borrow_above_the_initial_ltv_is_refused() -> None:
    # Arrange: a loan at 78% whose collateral then fell 10%
    lv = _venue()
    lv.borrow("alice", loan="39000")
    lv.price("45000")  # LTV 86.67%: margin call, not liquidation
    before = lv.venue.hash()
    # Act: 1 more USDT against 1 atom more BTC would leave the loan far above 78%
    events = lv.borrow("alice", loan="1")
    # Assert
    refused = rejection(events)
    assert refused is not None and refused[0] == RejectCode.LOAN_ABOVE_INITIAL_LTV
    assert "above the initial LTV 78.00%" in refused[1]
    assert lv.venue.hash() == before


def test_borrow_more_than_the_lender_has_is_refused() -> None:
    # Arrange: the lender has 1,000,000 USDT; 80 BTC at 50,000 x 78% would lend 3,120,000
    lv = _venue()
    lv.deposit("alice", BTC, "90")
    # Act
    events = lv.borrow("alice", collateral="80")
    # Assert
    refused = rejection(events)
    assert refused is not None and refused[0] == RejectCode.LENDER_INSUFFICIENT
    assert lv.loan("alice") is None


def test_collateral_above_the_per_account_cap_is_refused() -> None:
    # Arrange: max_collateral is 100 BTC
    lv = _venue("1000")
    lv.deposit("alice", BTC, "200")
    # Act
    events = lv.borrow("alice", collateral="150")
    # Assert
    refused = rejection(events)
    assert refused is not None and refused[0] == RejectCode.COLLATERAL_ABOVE_MAX


def test_borrow_on_a_below_quorum_index_is_refused() -> None:
    # Arrange: quorum is 2 sources; only one has quoted
    lv = LendingVenue()
    lv.borrower("alice")
    lv.price("50000", sources=("binance",))
    # Act
    events = lv.borrow("alice", loan="1000")
    # Assert
    refused = rejection(events)
    assert refused is not None and refused[0] == RejectCode.COLLATERAL_INDEX_STALE
    assert lv.venue.engine.lending.stale_assets() == [BTC]


def test_borrow_on_a_stale_index_is_refused() -> None:
    # Arrange: both quotes are older than stale_after_s = 30
    lv = _venue()
    lv.venue.advance(31)
    # Act
    events = lv.borrow("alice", loan="1000")
    # Assert
    refused = rejection(events)
    assert refused is not None and refused[0] == RejectCode.COLLATERAL_INDEX_STALE


@pytest.mark.parametrize(
    ("who", "loan_asset", "code"),
    [
        ("lender", "USDT", RejectCode.LENDER_CANNOT_BORROW),
        ("alice", "BTC", RejectCode.NOT_LOANABLE),
    ],
)
def test_borrow_by_the_lender_or_of_an_unloanable_asset_is_refused(
    who: str, loan_asset: str, code: RejectCode
) -> None:
    from perpx.engine.commands import BorrowLoan
    from perpx.engine.values import AssetId

    # Arrange
    lv = _venue()
    lv.deposit("lender", BTC, "5")
    # Act
    events = lv.venue.apply(
        BorrowLoan(
            ts_ns=lv.venue.tick(),
            account_id=lv.venue.names[who],
            loan_asset=AssetId(loan_asset),
            collateral_asset=BTC,
            loan_atoms=atoms("10"),
        )
    )
    # Assert
    refused = rejection(events)
    assert refused is not None and refused[0] == code


# ---------------------------------------------------------------- repay and adjust


def test_partial_repay_returns_collateral_pro_rata_and_full_repay_closes_the_loan() -> None:
    # Arrange
    lv = _venue()
    lv.borrow("alice", loan="39000")
    # Act: repay a quarter (no minute has passed: no interest)
    (partial,) = of_type(lv.repay("alice", "9750"), LoanRepaid)
    (full,) = of_type(lv.repay("alice", full=True), LoanRepaid)
    # Assert
    assert (partial.collateral_returned_atoms, partial.debt_atoms, partial.closed) == (
        atoms("0.25"),
        atoms("29250"),
        False,
    )
    assert (full.repaid_atoms, full.collateral_returned_atoms, full.closed) == (
        atoms("29250"),
        atoms("0.75"),
        True,
    )
    assert lv.loan("alice") is None
    assert lv.balance("alice", BTC) == atoms("10")
    assert lv.balance("lender", USDT) == atoms("1000000")


def test_repay_without_collateral_return_lowers_the_ltv() -> None:
    lv = _venue()
    lv.borrow("alice", loan="39000")
    (repaid,) = of_type(lv.repay("alice", "19500", collateral_return=False), LoanRepaid)
    assert repaid.collateral_atoms == atoms("1")
    assert lv.venue.engine.lending.ltv_e8(lv.loan("alice")) == 39_000_000  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("amount", "code"),
    [("39000.00000001", RejectCode.REPAY_ABOVE_DEBT), ("0", RejectCode.AMOUNT_NOT_POSITIVE)],
)
def test_bad_repayments_are_refused(amount: str, code: RejectCode) -> None:
    lv = _venue()
    lv.borrow("alice", loan="39000")
    before = lv.venue.hash()
    refused = rejection(lv.repay("alice", amount))
    assert refused is not None and refused[0] == code
    assert lv.venue.hash() == before


def test_repay_of_no_loan_is_refused() -> None:
    lv = _venue()
    refused = rejection(lv.repay("alice", "1"))
    assert refused is not None and refused[0] == RejectCode.LOAN_NOT_FOUND


def test_adjust_ltv_adds_and_takes_back_collateral_within_the_initial_ltv() -> None:
    # Arrange: 39,000 against 1 BTC (78%)
    lv = _venue()
    lv.borrow("alice", loan="39000")
    # Act
    (added,) = of_type(lv.adjust("alice", "1", LtvDirection.ADDITIONAL), LoanCollateralAdjusted)
    (taken,) = of_type(lv.adjust("alice", "0.5", LtvDirection.REDUCED), LoanCollateralAdjusted)
    too_much = rejection(lv.adjust("alice", "0.6", LtvDirection.REDUCED))  # 0.9 BTC left: 86.67%
    # Assert
    assert (added.ltv_before_e8, added.ltv_after_e8) == (78_000_000, 39_000_000)
    assert (taken.collateral_atoms, taken.ltv_after_e8) == (atoms("1.5"), 52_000_000)
    assert too_much is not None and too_much[0] == RejectCode.LOAN_ABOVE_INITIAL_LTV


# ---------------------------------------------------------------- interest


def test_interest_worked_example_to_the_atom() -> None:
    # Arrange: 10,000 USDT borrowed; the lender keeps 990,000, so utilisation is 1% (1,000,000 e8)
    # rate = 5% + (10% - 5%) x 1% / 80% = 5.0625% a year (5,062,500 e8)
    # minute 1: ceil(10,000e8 x 5,062,500 / (1e8 x 525,600)) = ceil(96,318.49...) = 96,319 atoms
    # minute 2: utilisation floor(1,000,000.95) = 1,000,000, same rate;
    #           ceil((10,000e8 + 96,319) x 5,062,500 / 5.256e13) = ceil(96,318.50) = 96,319 atoms
    lv = _venue()
    lv.borrow("alice", loan="10000")
    # Act: to two whole minutes after the start (the borrow happened a few ms into minute 0)
    events = lv.venue.advance(
        to_ns=lv.venue.now_ns - lv.venue.now_ns % formulas.NS_PER_MINUTE + 2 * formulas.NS_PER_MINUTE
    )
    # Assert
    (accrued,) = of_type(events, LoanInterestAccrued)
    assert (accrued.minutes, accrued.interest_atoms, accrued.annual_rate_e8) == (2, 192_638, 5_062_500)
    loan = lv.loan("alice")
    assert loan is not None and loan.debt_atoms == atoms("10000") + 192_638


def test_interest_accrued_in_one_jump_equals_interest_accrued_minute_by_minute() -> None:
    # Arrange
    one, many = _venue(), _venue()
    one.borrow("alice", loan="30000")
    many.borrow("alice", loan="30000")
    start = one.venue.now_ns - one.venue.now_ns % formulas.NS_PER_MINUTE
    # Act
    one.venue.advance(to_ns=start + 90 * formulas.NS_PER_MINUTE)
    for minute in range(1, 91):
        many.venue.advance(to_ns=start + minute * formulas.NS_PER_MINUTE)
    # Assert
    assert one.loan("alice").debt_atoms == many.loan("alice").debt_atoms  # type: ignore[union-attr]
    assert one.venue.hash() == many.venue.hash()


@pytest.mark.parametrize(
    ("utilisation_e8", "rate_e8"),
    [
        (0, 5_000_000),
        (40_000_000, 7_500_000),
        (80_000_000, 10_000_000),
        (90_000_000, 55_000_000),
        (100_000_000, 100_000_000),
    ],
)
def test_rate_curve_rule_table(utilisation_e8: int, rate_e8: int) -> None:
    spec = LendingVenue().config.lending.loanable[USDT]  # type: ignore[union-attr]
    assert formulas.annual_rate_e8(spec, utilisation_e8) == rate_e8


# ---------------------------------------------------------------- margin call and liquidation


def test_margin_call_fires_once_per_crossing() -> None:
    # Arrange: 39,000 against 1 BTC; at 45,500 the LTV is 85.71%
    lv = _venue()
    lv.borrow("alice", loan="39000")
    # Act
    first = lv.price("45500")
    again = lv.price("45400")
    lv.price("50000")  # back under 85%
    third = lv.price("45500")
    # Assert
    assert [e.ltv_e8 for e in of_type(first, LoanMarginCalled)] == [85_714_286]
    assert of_type(again, LoanMarginCalled) == []
    assert len(of_type(third, LoanMarginCalled)) == 1


def test_liquidation_worked_example_in_close_factor_steps() -> None:
    # Arrange: 39,000 against 1 BTC; BTC to 42,800 -> LTV 91.12% >= 91%
    # step 1: repay 19,500; seize 19,500 x 1.02 / 42,800 = 0.464719626.. -> 46,471,963 atoms (up)
    #         left 0.53528037 BTC (22,910.00 USDT) against 19,500: LTV 85.12% >= 85%
    # step 2: repay 9,750; seize 9,750 x 1.02 / 42,800 = 0.232359813.. -> 23,235,982 atoms
    #         left 0.30292055 BTC (12,965.00 USDT) against 9,750: LTV 75.21% < 85%: stop
    lv = _venue()
    lv.borrow("alice", loan="39000")
    # Act
    events = lv.price("42800")
    # Assert
    (liquidated,) = of_type(events, LoanLiquidated)
    assert [(s.debt_repaid_atoms, s.collateral_seized_atoms) for s in liquidated.steps] == [
        (atoms("19500"), 46_471_963),
        (atoms("9750"), 23_235_982),
    ]
    assert (liquidated.debt_atoms, liquidated.collateral_atoms) == (atoms("9750"), 30_292_055)
    assert (liquidated.bad_debt_atoms, liquidated.closed) == (0, False)
    assert liquidated.steps[-1].ltv_after_e8 < 85_000_000
    assert lv.balance("lender", BTC) == 46_471_963 + 23_235_982


def test_liquidation_that_exhausts_the_collateral_leaves_bad_debt_to_the_lender() -> None:
    # Arrange: BTC falls to 30,000 (LTV 130%, above 1 / (1 + 2%) = 98.04%: a partial step would
    # raise the LTV, so one step repays all it can). 1 BTC (30,000 USDT) covers 30,000 / 1.02 =
    # 29,411.76470588 USDT (down); the rest, 9,588.23529412 USDT, is the lender's bad debt
    data = lending_data()
    data["assets"]["BTC"]["index"].update(sources={"binance": 1}, min_sources=1)
    lv = LendingVenue(lending_config(data))
    lv.borrower("alice")
    lv.price("50000", sources=("binance",))
    lv.borrow("alice", loan="39000")
    # Act: one quote, one move of the index
    events = lv.price("30000", sources=("binance",))
    # Assert
    (liquidated,) = of_type(events, LoanLiquidated)
    assert [s.collateral_seized_atoms for s in liquidated.steps] == [100_000_000]
    assert liquidated.steps[-1].debt_repaid_atoms == 2_941_176_470_588
    assert liquidated.bad_debt_atoms == atoms("9588.23529412")
    assert liquidated.closed and lv.loan("alice") is None
    assert lv.venue.engine.lending.bad_debt_atoms == {USDT: atoms("9588.23529412")}


@pytest.mark.parametrize(
    ("price", "first_repaid"),
    [
        ("39780.1", "19500"),  # LTV just under 1 / 1.02: a close-factor step lowers it
        ("39780", "39000"),  # LTV exactly 1 / 1.02: the step repays the whole debt (100% close factor)
        ("35000", "39000"),
    ],
)
def test_close_factor_is_100_percent_at_or_above_one_over_one_plus_penalty(
    price: str, first_repaid: str
) -> None:
    # Arrange: 39,000 USDT against 1 BTC, penalty 2%
    data = lending_data()
    data["assets"]["BTC"]["index"].update(sources={"binance": 1}, min_sources=1)
    lv = LendingVenue(lending_config(data))
    lv.borrower("alice")
    lv.price("50000", sources=("binance",))
    lv.borrow("alice", loan="39000")
    # Act
    events = lv.price(price, sources=("binance",))
    # Assert
    (liquidated,) = of_type(events, LoanLiquidated)
    first = liquidated.steps[0]
    expected = atoms(first_repaid)
    if first_repaid == "39000":  # all of it, as far as the collateral covers it at the penalty
        expected = min(expected, atoms("1") * atoms(price) * 100 // (102 * atoms("1")))
    assert first.debt_repaid_atoms == expected
    if first_repaid == "19500":
        assert first.ltv_after_e8 < liquidated.ltv_before_e8  # the step lowered the LTV


def test_no_liquidation_just_below_the_liquidation_ltv() -> None:
    # 39,000 / 0.91 = 42,857.142857...: at 42,857.15 the LTV is just under 91%
    lv = _venue()
    lv.borrow("alice", loan="39000")
    events = lv.price("42857.15")
    assert of_type(events, LoanLiquidated) == []
    assert len(of_type(events, LoanMarginCalled)) == 1


def test_no_liquidation_on_a_stale_index() -> None:
    # Arrange: one source crashes while the other has gone quiet past stale_after_s
    lv = _venue()
    lv.borrow("alice", loan="39000")
    lv.venue.advance(31)
    # Act: only one fresh source, below the quorum of 2
    events = lv.price("30000", sources=("binance",))
    # Assert
    assert of_type(events, LoanLiquidated) == []
    assert lv.loan("alice") is not None
    # and once both sources are fresh, the loan is liquidated
    assert len(of_type(lv.price("30000"), LoanLiquidated)) == 1


def test_snapshot_and_restore_keep_the_loan_book_and_its_hash() -> None:
    # Arrange
    lv = _venue()
    lv.borrow("alice", loan="30000")
    lv.venue.advance(150)
    engine = lv.venue.engine
    # Act
    restored = restore(lv.config, snapshot(engine))
    # Assert
    assert state_hash(restored) == state_hash(engine)
    kept = restored.lending.loan_of(lv.venue.names["alice"], USDT, BTC)
    original = lv.loan("alice")
    assert kept is not None and original is not None
    assert kept.debt_atoms == original.debt_atoms
