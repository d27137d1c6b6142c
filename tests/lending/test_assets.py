"""Any listed asset moves through deposits and withdrawals as USDT does: idempotent, never below zero."""

from __future__ import annotations

from perpx.engine.codes import RejectCode
from perpx.engine.commands import Withdraw
from perpx.engine.events import DepositApplied, TransferRejected, WithdrawalApplied
from perpx.engine.values import TxId
from tests.lending.helpers import BTC, LendingVenue, atoms, of_type


def _withdraw(
    lv: LendingVenue, name: str, amount: str, tx: str
) -> list[TransferRejected | WithdrawalApplied]:
    events = lv.venue.apply(
        Withdraw(
            ts_ns=lv.venue.tick(),
            account_id=lv.venue.names[name],
            asset=BTC,
            amount_atoms=atoms(amount),
            tx_id=TxId(tx),
        )
    )
    return [e for e in events if isinstance(e, TransferRejected | WithdrawalApplied)]


def test_a_btc_deposit_with_a_seen_tx_id_changes_nothing() -> None:
    # Arrange
    lv = LendingVenue()
    lv.venue.account("alice", None)
    lv.venue._tx = 41
    first = lv.deposit("alice", BTC, "2")
    lv.venue._tx = 41  # the same tx id again
    before = lv.venue.hash()
    # Act
    again = lv.deposit("alice", BTC, "2")
    # Assert
    assert len(of_type(first, DepositApplied)) == 1
    (refused,) = of_type(again, TransferRejected)
    assert refused.code == RejectCode.DUPLICATE_TX
    assert lv.venue.hash() == before
    assert lv.balance("alice", BTC) == atoms("2")


def test_collateral_held_by_a_loan_cannot_be_withdrawn() -> None:
    # Arrange: 3 BTC, 1 of them posted to a loan
    lv = LendingVenue()
    lv.borrower("alice", btc="3")
    lv.price("50000")
    lv.borrow("alice", loan="39000")
    # Act
    too_much = _withdraw(lv, "alice", "2.00000001", "w1")
    enough = _withdraw(lv, "alice", "2", "w2")
    # Assert
    assert isinstance(too_much[0], TransferRejected) and too_much[0].code == RejectCode.BALANCE_INSUFFICIENT
    assert isinstance(enough[0], WithdrawalApplied)
    assert lv.balance("alice", BTC) == 0
    assert lv.venue.engine.lending.collateral_held() == {BTC: atoms("1")}
