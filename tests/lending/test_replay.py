"""Replay of a journal with loans in a fresh process reproduces interest to the atom (same state hash)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from perpx.engine.commands import (
    AdvanceClock,
    BorrowLoan,
    Command,
    CreateAccount,
    Deposit,
    OrderType,
    PlaceOrder,
    RepayLoan,
    SetMarkPrice,
    SetMultiAssetsMode,
    SubmitAssetQuote,
)
from perpx.engine.config import DEFAULT_CONFIG_TOML
from perpx.engine.events import CollateralConverted, LoanInterestAccrued
from perpx.engine.lending.formulas import NS_PER_MINUTE
from perpx.engine.state import state_hash
from perpx.engine.values import AccountId, AssetId, MarketId, Side, TxId
from perpx.journal.store import open_store
from perpx.lending.venue import LENDING_TOML
from tests.lending.helpers import BTC, USDT, atoms

START_NS = 1_767_225_600_000_000_000
MULTI_ASSETS_TOML = DEFAULT_CONFIG_TOML + LENDING_TOML.replace(
    'max_collateral = "100"\n', 'max_collateral = "100"\nconversion_discount_bps = 100\n'
)


def _commands() -> list[Command]:
    t = START_NS
    commands: list[Command] = [
        CreateAccount(ts_ns=t + 1, name="lender"),
        CreateAccount(ts_ns=t + 2, name="alice"),
        Deposit(
            ts_ns=t + 3, account_id=AccountId(1), asset=USDT, amount_atoms=atoms("1000000"), tx_id=TxId("l")
        ),
        Deposit(ts_ns=t + 4, account_id=AccountId(2), asset=BTC, amount_atoms=atoms("3"), tx_id=TxId("a")),
    ]
    for minute in range(0, 240, 7):  # quotes every 7 minutes, a loan action now and then
        now = t + minute * NS_PER_MINUTE + 5_000_000
        price = atoms(str(50_000 - 40 * minute))
        commands.append(SubmitAssetQuote(ts_ns=now, asset=BTC, source="binance", price_atoms=price))
        commands.append(
            SubmitAssetQuote(ts_ns=now + 1, asset=BTC, source="okx", price_atoms=price + atoms("3"))
        )
        if minute % 35 == 0:
            commands.append(
                BorrowLoan(
                    ts_ns=now + 2,
                    account_id=AccountId(2),
                    loan_asset=USDT,
                    collateral_asset=BTC,
                    loan_atoms=atoms("5000.12345678"),
                )
            )
        if minute % 49 == 0:
            commands.append(
                RepayLoan(
                    ts_ns=now + 3,
                    account_id=AccountId(2),
                    loan_asset=USDT,
                    collateral_asset=BTC,
                    repay_atoms=atoms("777"),
                )
            )
    commands.append(AdvanceClock(ts_ns=t + 2 * 86_400_000_000_000))
    return commands


def test_replay_of_loans_in_a_fresh_process_gives_the_same_hash(tmp_path: Path) -> None:
    # Arrange: a journal with borrows, repayments, falling prices and two days of interest
    store, _ = open_store(tmp_path, DEFAULT_CONFIG_TOML + LENDING_TOML)
    accrued = 0
    for command in _commands():
        accrued += sum(e.interest_atoms for e in store.submit(command) if isinstance(e, LoanInterestAccrued))
    expected = state_hash(store.engine)
    store.close()
    assert accrued > 0
    # Act
    out = subprocess.run(
        [sys.executable, "-m", "perpx", "replay", str(tmp_path)],
        env=dict(os.environ, PYTHONHASHSEED="12345"),
        capture_output=True,
        text=True,
        check=True,
        timeout=240,
    ).stdout
    # Assert
    replayed = next(line.split()[-1] for line in out.splitlines() if line.startswith("state hash"))
    assert replayed == expected
    assert AssetId("BTC") in store.engine.lending.collateral_held()


def _multi_asset_commands() -> list[Command]:
    """Alice trades BTCUSDT margined by BTC alone in Multi-Assets Mode; BTC falls until she is liquidated."""
    t = START_NS
    market = MarketId("BTCUSDT")

    def order(ts: int, account: int, side: Side, qty_lots: int, price_ticks: int) -> PlaceOrder:
        return PlaceOrder(
            ts_ns=ts,
            account_id=AccountId(account),
            market=market,
            side=side,
            order_type=OrderType.LIMIT,
            qty_lots=qty_lots,
            price_ticks=price_ticks,
        )

    commands: list[Command] = [
        CreateAccount(ts_ns=t + 1, name="lender"),
        CreateAccount(ts_ns=t + 2, name="alice"),
        CreateAccount(ts_ns=t + 3, name="bob"),
        Deposit(ts_ns=t + 4, account_id=AccountId(2), asset=BTC, amount_atoms=atoms("1"), tx_id=TxId("a")),
        Deposit(
            ts_ns=t + 5, account_id=AccountId(3), asset=USDT, amount_atoms=atoms("1000000"), tx_id=TxId("b")
        ),
        Deposit(
            ts_ns=t + 6, account_id=AccountId(0), asset=USDT, amount_atoms=atoms("100000"), tx_id=TxId("f")
        ),
        SetMarkPrice(ts_ns=t + 7, market=market, index_ticks=500_000, mark_ticks=500_000),
        SubmitAssetQuote(ts_ns=t + 8, asset=BTC, source="binance", price_atoms=atoms("50000")),
        SubmitAssetQuote(ts_ns=t + 9, asset=BTC, source="okx", price_atoms=atoms("50000")),
        SetMultiAssetsMode(ts_ns=t + 10, account_id=AccountId(2), enabled=True),
        order(t + 11, 3, Side.SELL, 1000, 500_000),
        order(t + 12, 2, Side.BUY, 1000, 500_000),
    ]
    ts = t + 13
    for step in range(1, 30):  # BTC and the perp fall 1,000 a step, quoted by both sources
        price = 50_000 - 1_000 * step
        commands.append(
            SubmitAssetQuote(ts_ns=ts, asset=BTC, source="binance", price_atoms=atoms(str(price)))
        )
        commands.append(
            SubmitAssetQuote(ts_ns=ts + 1, asset=BTC, source="okx", price_atoms=atoms(str(price)))
        )
        commands.append(
            SetMarkPrice(ts_ns=ts + 2, market=market, index_ticks=price * 10, mark_ticks=price * 10)
        )
        ts += 3
    return commands


def test_replay_with_multi_assets_mode_in_a_fresh_process_gives_the_same_hash(tmp_path: Path) -> None:
    # Arrange: a journal where a BTC-margined account is liquidated and its collateral converted
    store, _ = open_store(tmp_path, MULTI_ASSETS_TOML)
    converted = 0
    for command in _multi_asset_commands():
        converted += sum(1 for e in store.submit(command) if isinstance(e, CollateralConverted))
    expected = state_hash(store.engine)
    store.close()
    assert converted > 0
    # Act
    out = subprocess.run(
        [sys.executable, "-m", "perpx", "replay", str(tmp_path)],
        env=dict(os.environ, PYTHONHASHSEED="777"),
        capture_output=True,
        text=True,
        check=True,
        timeout=240,
    ).stdout
    # Assert
    replayed = next(line.split()[-1] for line in out.splitlines() if line.startswith("state hash"))
    assert replayed == expected
