"""``perpx explain`` on Multi-Assets Mode and loans: the haircut margin, each conversion's
arithmetic, and a loan liquidation's close-factor steps."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from perpx.cli import app
from perpx.engine.commands import BorrowLoan, Command, CreateAccount, Deposit, SubmitAssetQuote
from perpx.engine.values import AccountId, TxId
from perpx.journal.store import open_store
from tests.lending.helpers import BTC, USDT, atoms
from tests.lending.test_replay import MULTI_ASSETS_TOML, START_NS, _multi_asset_commands


def _journal(directory: Path, commands: list[Command]) -> None:
    store, _ = open_store(directory, MULTI_ASSETS_TOML)
    for command in commands:
        store.submit(command)
    store.close()


def _explain(directory: Path, account: int) -> str:
    result = CliRunner().invoke(app, ["explain", "--data", str(directory), "--account", str(account)])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def test_explain_prints_the_haircut_margin_and_the_conversion_arithmetic(tmp_path: Path) -> None:
    # Arrange: alice (account 2) long 1 BTCUSDT margined by 1 BTC; both fall 1,000 a step
    _journal(tmp_path, _multi_asset_commands())
    # Act
    out = _explain(tmp_path, 2)
    # Assert
    for expected in (
        "account 2 | scope CROSS | BTCUSDT",
        "collateral (haircut)",
        "= wallet + collateral + uPnL",
        "Result: CLOSED",
        "converted",
        "to the insurance fund for",
        "x (1 - discount 1.0000%))",
        "sold = min(held, ceil(debt / price))",
        "in the margin (index x (1 - haircut))",
    ):
        assert expected in out, expected


def test_explain_prints_a_loan_liquidation_with_its_steps(tmp_path: Path) -> None:
    # Arrange: 39,000 USDT against 1 BTC; BTC falls to 42,800 (LTV 91.12%)
    t = START_NS
    commands: list[Command] = [
        CreateAccount(ts_ns=t + 1, name="lender"),
        CreateAccount(ts_ns=t + 2, name="alice"),
        Deposit(
            ts_ns=t + 3, account_id=AccountId(1), asset=USDT, amount_atoms=atoms("1000000"), tx_id=TxId("l")
        ),
        Deposit(ts_ns=t + 4, account_id=AccountId(2), asset=BTC, amount_atoms=atoms("1"), tx_id=TxId("a")),
        SubmitAssetQuote(ts_ns=t + 5, asset=BTC, source="binance", price_atoms=atoms("50000")),
        SubmitAssetQuote(ts_ns=t + 6, asset=BTC, source="okx", price_atoms=atoms("50000")),
        BorrowLoan(
            ts_ns=t + 7,
            account_id=AccountId(2),
            loan_asset=USDT,
            collateral_asset=BTC,
            loan_atoms=atoms("39000"),
        ),
        SubmitAssetQuote(ts_ns=t + 8, asset=BTC, source="binance", price_atoms=atoms("42800")),
        SubmitAssetQuote(ts_ns=t + 9, asset=BTC, source="okx", price_atoms=atoms("42800")),
    ]
    _journal(tmp_path, commands)
    # Act
    out = _explain(tmp_path, 2)
    # Assert: the two steps of docs/lending.md
    assert "LIQUIDATION of loan 1 (USDT against BTC)" in out
    assert "step 1: repaid 19500 USDT, sold 0.46471963 BTC" in out
    assert "step 2: repaid 9750 USDT, sold 0.23235982 BTC" in out
