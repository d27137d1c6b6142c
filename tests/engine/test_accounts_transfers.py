"""Accounts, deposits and withdrawals.

Deposits and withdrawals are idempotent by ``tx_id``: a replayed id changes
nothing. A withdrawal may take only ``min(wallet, wallet + min(0, uPnL) - IM -
order IM)``: unrealised profit and margin in use stay on the venue.
"""

from __future__ import annotations

import pytest

from perpx.engine.codes import RejectCode
from perpx.engine.commands import CreateAccount, Deposit, Withdraw
from perpx.engine.events import AccountCreated, DepositApplied, TransferRejected, WithdrawalApplied
from perpx.engine.values import AccountId, AssetId, TxId

from .helpers import BTC, USDT, code_of, rest, venue

USDT_ID = AssetId("USDT")


def test_accounts_get_consecutive_ids_and_keep_their_names() -> None:
    # Arrange
    v = venue()

    # Act
    first = v.apply(CreateAccount(ts_ns=v.tick(), name="alice"))
    second = v.apply(CreateAccount(ts_ns=v.tick(), name="bob"))

    # Assert
    assert first == [AccountCreated(ts_ns=v.now_ns - 1_000_000, account_id=AccountId(1), name="alice")]
    assert second == [AccountCreated(ts_ns=v.now_ns, account_id=AccountId(2), name="bob")]


def test_a_deposit_credits_the_wallet_and_reports_the_new_balance() -> None:
    # Arrange
    v = venue("a", deposit="100")

    # Act
    events = v.deposit("a", "0.5", tx_id="tx-1")

    # Assert: 100.5 USDT = 10_050_000_000 atoms
    assert events == [
        DepositApplied(
            ts_ns=v.now_ns,
            account_id=v.names["a"],
            asset=USDT_ID,
            amount_atoms=50_000_000,
            tx_id=TxId("tx-1"),
            balance_atoms=10_050_000_000,
        )
    ]
    assert v.engine.deposits_atoms[USDT_ID] == 10_050_000_000


def test_a_deposit_applied_twice_is_rejected_and_changes_nothing() -> None:
    # Arrange
    v = venue("a", deposit=None)
    v.deposit("a", "250", tx_id="chain-tx-7")
    before = v.hash()

    # Act
    events = v.deposit("a", "250", tx_id="chain-tx-7")

    # Assert
    assert code_of(events) == RejectCode.DUPLICATE_TX
    assert v.hash() == before
    assert v.balance("a") == 250


def test_a_tx_id_is_unique_across_deposits_withdrawals_and_accounts() -> None:
    # Arrange
    v = venue("a", "b", deposit="100")
    v.deposit("a", "1", tx_id="shared")
    before = v.hash()

    # Act
    as_withdrawal = v.withdraw("a", "1", tx_id="shared")
    for_other_account = v.deposit("b", "1", tx_id="shared")

    # Assert
    assert code_of(as_withdrawal) == RejectCode.DUPLICATE_TX
    assert code_of(for_other_account) == RejectCode.DUPLICATE_TX
    assert v.hash() == before


def test_a_withdrawal_applied_twice_is_rejected_and_changes_nothing() -> None:
    # Arrange
    v = venue("a", deposit="100")
    first = v.withdraw("a", "40", tx_id="wd-9")
    before = v.hash()

    # Act
    second = v.withdraw("a", "40", tx_id="wd-9")

    # Assert
    assert isinstance(first[0], WithdrawalApplied)
    assert first[0].balance_atoms == 60 * USDT
    assert code_of(second) == RejectCode.DUPLICATE_TX
    assert v.hash() == before
    assert v.engine.withdrawals_atoms[USDT_ID] == 40 * USDT


@pytest.mark.parametrize("command", [Deposit, Withdraw])
@pytest.mark.parametrize(
    ("account_id", "asset", "amount", "tx_id", "code"),
    [
        (99, "USDT", 1, "t1", RejectCode.UNKNOWN_ACCOUNT),
        (1, "DOGE", 1, "t2", RejectCode.UNKNOWN_ASSET),
        (1, "USDT", 0, "t3", RejectCode.AMOUNT_NOT_POSITIVE),
        (1, "USDT", -5, "t4", RejectCode.AMOUNT_NOT_POSITIVE),
        (1, "USDT", 1, "", RejectCode.BAD_PARAMETER),
    ],
    ids=["unknown-account", "unknown-asset", "zero", "negative", "empty-tx-id"],
)
def test_a_malformed_transfer_is_rejected_with_its_code(
    command: type[Deposit] | type[Withdraw],
    account_id: int,
    asset: str,
    amount: int,
    tx_id: str,
    code: RejectCode,
) -> None:
    # Arrange
    v = venue("a", deposit="100")
    before = v.hash()

    # Act
    events = v.apply(
        command(
            ts_ns=v.tick(),
            account_id=AccountId(account_id),
            asset=AssetId(asset),
            amount_atoms=amount,
            tx_id=TxId(tx_id),
        )
    )

    # Assert
    assert code_of(events) == code
    assert isinstance(events[0], TransferRejected)
    assert v.hash() == before


def test_a_refused_transfer_does_not_use_up_its_tx_id() -> None:
    # Arrange: the first deposit names an unknown asset, so nothing happened
    v = venue("a", deposit=None)
    v.apply(
        Deposit(
            ts_ns=v.tick(), account_id=v.names["a"], asset=AssetId("DOGE"), amount_atoms=1, tx_id=TxId("t")
        )
    )

    # Act
    events = v.deposit("a", "5", tx_id="t")

    # Assert
    assert isinstance(events[0], DepositApplied)


def test_a_withdrawal_of_the_whole_free_wallet_succeeds_and_one_atom_more_fails() -> None:
    # Arrange
    v = venue("a", deposit="100")

    # Act
    too_much = v.withdraw("a", "100.00000001")
    exact = v.withdraw("a", "100")

    # Assert
    assert code_of(too_much) == RejectCode.BALANCE_INSUFFICIENT
    assert isinstance(exact[0], WithdrawalApplied)
    assert v.balance("a") == 0


def test_a_withdrawal_cannot_take_unrealised_profit() -> None:
    # Arrange: long 1 @ 30000 as taker (fee 15 USDT), then the mark rises to 31000
    v = venue("a", "cp")
    rest(v, "cp", "SELL", "1", "30000")
    v.place("a", BTC, "BUY", "1", "30000")
    v.mark(BTC, "31000")
    # wallet 100000 - 15 = 99985; uPnL +1000 (not withdrawable)
    # IM at the mark 31000 / 20 = 1550 -> withdrawable 99985 - 1550 = 98435 USDT
    risk = v.engine.risk(v.names["a"])
    assert risk.cross_unrealized_pnl_atoms == 1000 * USDT
    assert risk.withdrawable_atoms == 98435 * USDT

    # Act
    too_much = v.withdraw("a", "98435.00000001")
    exact = v.withdraw("a", "98435")

    # Assert
    assert code_of(too_much) == RejectCode.BALANCE_INSUFFICIENT
    assert isinstance(exact[0], WithdrawalApplied)
    assert v.balance("a") == 1550


def test_a_withdrawal_is_reduced_by_unrealised_loss() -> None:
    # Arrange: long 1 @ 30000 as taker (fee 15 USDT), then the mark falls to 29000
    v = venue("a", "cp")
    rest(v, "cp", "SELL", "1", "30000")
    v.place("a", BTC, "BUY", "1", "30000")
    v.mark(BTC, "29000")

    # Act
    # wallet 99985; uPnL -1000; IM 29000 / 20 = 1450 -> withdrawable 99985 - 1000 - 1450 = 97535
    too_much = v.withdraw("a", "97535.00000001")
    exact = v.withdraw("a", "97535")

    # Assert
    assert code_of(too_much) == RejectCode.BALANCE_INSUFFICIENT
    assert isinstance(exact[0], WithdrawalApplied)


def test_a_withdrawal_cannot_take_margin_reserved_by_open_orders() -> None:
    # Arrange: a bid of 2 @ 30000 reserves 60000 / 20 = 3000 USDT
    v = venue("a", deposit="10000")
    rest(v, "a", "BUY", "2", "30000")

    # Act
    too_much = v.withdraw("a", "7000.00000001")
    exact = v.withdraw("a", "7000")

    # Assert
    assert code_of(too_much) == RejectCode.BALANCE_INSUFFICIENT
    assert isinstance(exact[0], WithdrawalApplied)


def test_realised_profit_becomes_withdrawable_once_closed() -> None:
    # Arrange: long 1 @ 30000 as maker (fee 6), closed @ 31000 as maker (fee 6.2)
    v = venue("a", "cp")
    rest(v, "a", "BUY", "1", "30000")
    v.place("cp", BTC, "SELL", "1", "30000")
    v.mark(BTC, "31000")
    rest(v, "a", "SELL", "1", "31000")
    v.place("cp", BTC, "BUY", "1", "31000")

    # Act
    # wallet 100000 - 6 + 1000 - 6.2 = 100987.8 USDT, no position, no orders
    events = v.withdraw("a", "100987.8")

    # Assert
    assert isinstance(events[0], WithdrawalApplied)
    assert v.balance("a") == 0
