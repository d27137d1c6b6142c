"""``sessionLossLimit`` measures trading loss: money moved in or out during the day is not P&L.

The engine keeps each account's net transfers (deposits minus withdrawals, loan payouts and
repayments, collateral posted and returned); the guard's session loss is
``(equity_start - transfers_start) - (equity_now - transfers_now)``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from perpx.agents.guard import session_loss_atoms
from perpx.engine.commands import (
    AdjustLoanCollateral,
    BorrowLoan,
    Command,
    CreateAccount,
    Deposit,
    LtvDirection,
    RepayLoan,
    SubmitAssetQuote,
    Withdraw,
)
from perpx.engine.config import DEFAULT_CONFIG_TOML
from perpx.engine.state import restore, snapshot, state_hash
from perpx.engine.values import AccountId, TxId
from perpx.journal.store import open_store
from perpx.lending.venue import LENDING_TOML
from tests.lending.helpers import BTC, USDT, LendingVenue, atoms
from tests.server.inprocess import in_process_venue

from .helpers import BTC as BTCUSDT
from .helpers import limit, new_agent


def equity_and_transfers(lv: LendingVenue, name: str) -> tuple[int, int]:
    """What the guard reads: settlement-asset equity (wallet + unrealised + isolated) and net transfers."""
    engine = lv.venue.engine
    account_id = lv.venue.names[name]
    risk = engine.risk(account_id)
    equity = risk.wallet_atoms + risk.cross_unrealized_pnl_atoms + risk.isolated_margin_atoms
    return equity, engine.accounts[account_id].net_transfers.get(USDT, 0)


def losing_trader() -> LendingVenue:
    """``agent`` buys 0.01 BTCUSDT at 60,000 from ``maker``; BTC collateral for a loan is priced."""
    lv = LendingVenue()
    lv.venue.account("maker")
    lv.borrower("agent", btc="1", usdt="1000")
    lv.price("60000")
    lv.venue.mark("BTCUSDT", "60000")
    lv.venue.place("maker", "BTCUSDT", "SELL", "0.01", "60000")
    lv.venue.place("agent", "BTCUSDT", "BUY", "0.01", "60000")
    return lv


def fall_then_deposit(lv: LendingVenue) -> None:
    lv.venue.mark("BTCUSDT", "54000")
    lv.venue.deposit("agent", "1000")


def withdraw(lv: LendingVenue) -> None:
    lv.venue.withdraw("agent", "300")


def fall_then_borrow(lv: LendingVenue) -> None:
    lv.venue.mark("BTCUSDT", "54000")
    lv.borrow("agent", loan="5000")


def borrow_then_repay(lv: LendingVenue) -> None:
    lv.borrow("agent", loan="5000")
    lv.repay("agent", "2000")


@pytest.mark.parametrize(
    ("flow", "loss_usdt"),
    [
        pytest.param(fall_then_deposit, "60", id="deposit_after_a_loss_does_not_hide_it"),
        pytest.param(withdraw, "0", id="withdrawal_is_not_a_loss"),
        pytest.param(fall_then_borrow, "60", id="loan_payout_is_not_a_gain"),
        pytest.param(borrow_then_repay, "0", id="loan_repayment_is_not_a_loss"),
    ],
)
def test_session_loss_counts_trading_loss_only(flow: Callable[[LendingVenue], None], loss_usdt: str) -> None:
    lv = losing_trader()
    start = equity_and_transfers(lv, "agent")

    flow(lv)
    now = equity_and_transfers(lv, "agent")

    assert session_loss_atoms(*start, *now) == atoms(loss_usdt)


def test_net_transfers_follow_every_flow_and_survive_a_snapshot() -> None:
    lv = losing_trader()
    lv.venue.deposit("agent", "250")
    lv.venue.withdraw("agent", "100")
    lv.borrow("agent", loan="5000")
    lv.repay("agent", "1000")
    loan = lv.loan("agent")
    assert loan is not None
    engine = lv.venue.engine
    agent, lender = lv.venue.names["agent"], lv.venue.names["lender"]

    restored = restore(engine.config, snapshot(engine))

    assert engine.accounts[agent].net_transfers[USDT] == atoms("1000") + atoms("250") - atoms("100") + atoms(
        "5000"
    ) - atoms("1000")
    assert engine.accounts[agent].net_transfers[BTC] == atoms("1") - loan.collateral_atoms
    assert engine.accounts[lender].net_transfers[USDT] == atoms("1000000") - atoms("5000") + atoms("1000")
    assert restored.accounts[agent].net_transfers == engine.accounts[agent].net_transfers
    for asset in (USDT, BTC):  # loans move money between accounts: the venue-wide total is what came in
        total = sum(account.net_transfers.get(asset, 0) for account in engine.accounts.values())
        held = engine.lending.collateral_held().get(asset, 0)
        assert total == engine.deposits_atoms.get(asset, 0) - engine.withdrawals_atoms.get(asset, 0) - held
    assert state_hash(restored) == state_hash(engine)


def test_snapshot_from_before_the_transfer_total_loads_with_zero() -> None:
    lv = losing_trader()
    engine = lv.venue.engine
    old = snapshot(engine)
    del old["net_transfers"]

    restored = restore(engine.config, old)

    assert all(not account.net_transfers for account in restored.accounts.values())
    assert "net_transfers" not in snapshot(restored)


def test_money_moved_in_and_out_again_leaves_no_transfer_total_in_the_snapshot() -> None:
    lv = LendingVenue()
    lv.venue.account("agent", None)
    lv.venue.deposit("agent", "10")
    lv.venue.withdraw("agent", "10")
    lender_only = [[1, [("USDT", atoms("1000000"))]]]

    assert lv.venue.engine.accounts[lv.venue.names["agent"]].net_transfers == {}
    assert snapshot(lv.venue.engine)["net_transfers"] == lender_only


def test_deposit_after_a_loss_does_not_lift_the_session_loss_limit_on_rest(tmp_path: Path) -> None:
    with in_process_venue(tmp_path / "data") as venue:
        venue.mark(BTCUSDT, "60000")
        _, agent = new_agent(venue, "deposit-loser", limits={"sessionLossLimit": "50"})
        maker = venue.trader("deposit-maker")
        venue.ok("POST", "/fapi/v1/order", maker, limit("SELL", "0.01", "60000"))
        venue.ok("POST", "/fapi/v1/order", agent, limit("BUY", "0.01", "60000"))
        venue.mark(BTCUSDT, "54000")
        deposited = venue.admin(
            "POST",
            "/deposits",
            {"accountId": agent.account_id, "asset": "USDT", "amount": "1000", "txId": "top-up"},
        )

        refused = venue.refused("POST", "/fapi/v1/order", agent, limit("BUY", "0.002", "54000"))

    assert deposited.status_code == 200, deposited.text
    assert refused[1] == -9301 and "sessionLossLimit" in refused[2] and "attempted 60" in refused[2]


def test_withdrawal_is_not_counted_as_a_session_loss_on_rest(tmp_path: Path) -> None:
    with in_process_venue(tmp_path / "data") as venue:
        venue.mark(BTCUSDT, "60000")
        _, agent = new_agent(venue, "withdrawer", limits={"sessionLossLimit": "50"})
        venue.ok("POST", "/fapi/v1/order", agent, limit("BUY", "0.002", "59000"))  # the day starts here
        withdrawn = venue.admin(
            "POST",
            "/withdrawals",
            {"accountId": agent.account_id, "asset": "USDT", "amount": "5000", "txId": "take-out"},
        )

        placed = venue.ok("POST", "/fapi/v1/order", agent, limit("BUY", "0.002", "59000"))

    assert withdrawn.status_code == 200, withdrawn.text
    assert placed["status"] == "NEW"


def test_replay_in_a_fresh_process_gives_the_same_hash_with_the_transfer_totals(tmp_path: Path) -> None:
    # Arrange: a journal of every flow the total counts
    t = 1_767_225_600_000_000_000
    alice = AccountId(2)
    commands: list[Command] = [
        CreateAccount(ts_ns=t + 1, name="lender"),
        CreateAccount(ts_ns=t + 2, name="alice"),
        Deposit(
            ts_ns=t + 3, account_id=AccountId(1), asset=USDT, amount_atoms=atoms("1000000"), tx_id=TxId("l")
        ),
        Deposit(ts_ns=t + 4, account_id=alice, asset=BTC, amount_atoms=atoms("3"), tx_id=TxId("a-btc")),
        Deposit(ts_ns=t + 5, account_id=alice, asset=USDT, amount_atoms=atoms("700"), tx_id=TxId("a-usdt")),
        Withdraw(ts_ns=t + 6, account_id=alice, asset=USDT, amount_atoms=atoms("200"), tx_id=TxId("a-out")),
        SubmitAssetQuote(ts_ns=t + 7, asset=BTC, source="binance", price_atoms=atoms("50000")),
        SubmitAssetQuote(ts_ns=t + 8, asset=BTC, source="okx", price_atoms=atoms("50000")),
        BorrowLoan(
            ts_ns=t + 9, account_id=alice, loan_asset=USDT, collateral_asset=BTC, loan_atoms=atoms("5000")
        ),
        AdjustLoanCollateral(
            ts_ns=t + 10,
            account_id=alice,
            loan_asset=USDT,
            collateral_asset=BTC,
            amount_atoms=atoms("0.1"),
            direction=LtvDirection.ADDITIONAL,
        ),
        RepayLoan(
            ts_ns=t + 11, account_id=alice, loan_asset=USDT, collateral_asset=BTC, repay_atoms=atoms("1200")
        ),
    ]
    store, _ = open_store(tmp_path, DEFAULT_CONFIG_TOML + LENDING_TOML)
    for command in commands:
        store.submit(command)
    expected = state_hash(store.engine)
    totals = snapshot(store.engine)["net_transfers"]
    held = store.engine.lending.loan_of(alice, USDT, BTC)
    assert held is not None
    held_btc = held.collateral_atoms
    store.close()
    # Act
    out = subprocess.run(
        [sys.executable, "-m", "perpx", "replay", str(tmp_path)],
        env=dict(os.environ, PYTHONHASHSEED="4321"),
        capture_output=True,
        text=True,
        check=True,
        timeout=240,
    ).stdout
    # Assert
    replayed = next(line.split()[-1] for line in out.splitlines() if line.startswith("state hash"))
    assert replayed == expected
    assert dict(totals)[alice] == [
        ("BTC", atoms("3") - held_btc),  # collateral posted and not yet returned left the wallet
        ("USDT", atoms("700") - atoms("200") + atoms("5000") - atoms("1200")),
    ]
