"""``perpx explain`` over a real journal, and the new state through snapshots and restores."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from perpx.cli import app
from perpx.engine.commands import (
    CreateAccount,
    Deposit,
    OrderType,
    PlaceOrder,
    SetMarkPrice,
)
from perpx.engine.config import DEFAULT_CONFIG_TOML
from perpx.engine.engine import Engine
from perpx.engine.liquidation import INSURANCE_ACCOUNT
from perpx.engine.state import encode_snapshot, restore, snapshot, state_hash
from perpx.engine.values import AccountId, AssetId, MarketId, Side, TxId
from perpx.journal.store import open_store, recover

from .helpers import BTC, make_venue, records, seed_fund, trade

MARKET = MarketId(BTC)


def crash_journal(directory: Path) -> None:
    """mm, a (long 1 BTC with 2,000), s (short); a bid of 0.3 at 28,500; the mark gaps to 28,000."""
    store, _ = open_store(directory, DEFAULT_CONFIG_TOML)
    ts = [1_767_225_600_000_000_000]

    def at() -> int:
        ts[0] += 1_000_000
        return ts[0]

    for name in ("mm", "a", "s"):
        store.submit(CreateAccount(ts_ns=at(), name=name))
    for account, amount in ((1, 1_000_000), (2, 2_000), (3, 100_000)):
        store.submit(
            Deposit(
                ts_ns=at(),
                account_id=AccountId(account),
                asset=AssetId("USDT"),
                amount_atoms=amount * 10**8,
                tx_id=TxId(f"d{account}"),
            )
        )
    store.submit(SetMarkPrice(ts_ns=at(), market=MARKET, index_ticks=300_000, mark_ticks=300_000))
    for account, side, lots, price in (
        (3, Side.SELL, 1_000, 300_000),
        (2, Side.BUY, 1_000, 300_000),
        (1, Side.BUY, 300, 285_000),
    ):
        store.submit(
            PlaceOrder(
                ts_ns=at(),
                account_id=AccountId(account),
                market=MARKET,
                side=side,
                order_type=OrderType.LIMIT,
                qty_lots=lots,
                price_ticks=price,
            )
        )
    store.submit(SetMarkPrice(ts_ns=at(), market=MARKET, index_ticks=280_100, mark_ticks=280_000))
    store.close()


def test_explain_prints_the_liquidated_accounts_record(tmp_path: Path) -> None:
    crash_journal(tmp_path)
    result = CliRunner().invoke(app, ["explain", "--data", str(tmp_path), "--account", "2"])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    for expected in (
        "account 2 | scope CROSS | BTCUSDT",
        "liquidated",
        "MarkPriceSet",  # the price inputs
        "margin balance -15 USDT",
        "maintenance margin (MM) 112 USDT",
        "infinite (margin balance <= 0)",
        "liquidation price 28127.6",
        "bankruptcy value 28015 USDT",
        "IOC SELL 1 limited at the bankruptcy price 28015",
        "filled 0.3 at 28500 against account 1",
        "clearance fee 145.5 USDT",
        "insurance fund took over 0.7 at the bankruptcy price 28015",
        "Result: CLOSED",
    ):
        assert expected in out, expected


def test_explain_shows_an_adl_counterparty_its_part(tmp_path: Path) -> None:
    crash_journal(tmp_path)  # the fund had 145.5 and took it all: no ADL; account 3 saw nothing
    result = CliRunner().invoke(app, ["explain", "--data", str(tmp_path), "--account", "3"])
    assert result.exit_code == 0
    assert "never liquidated nor auto-deleveraged" in result.output


def test_explain_of_a_deleveraged_counterparty(tmp_path: Path) -> None:
    # isolated: no surplus, empty fund -> the short is deleveraged; it sees the record too
    from perpx.engine.commands import MarginMode, SetMarginMode

    store, _ = open_store(tmp_path, DEFAULT_CONFIG_TOML)
    ts = [1_767_225_600_000_000_000]

    def at() -> int:
        ts[0] += 1_000_000
        return ts[0]

    for name in ("a", "s"):
        store.submit(CreateAccount(ts_ns=at(), name=name))
    for account, amount in ((1, 1_600), (2, 100_000)):
        store.submit(
            Deposit(
                ts_ns=at(),
                account_id=AccountId(account),
                asset=AssetId("USDT"),
                amount_atoms=amount * 10**8,
                tx_id=TxId(f"d{account}"),
            )
        )
    store.submit(SetMarkPrice(ts_ns=at(), market=MARKET, index_ticks=300_000, mark_ticks=300_000))
    store.submit(SetMarginMode(ts_ns=at(), account_id=AccountId(1), market=MARKET, mode=MarginMode.ISOLATED))
    for account, side in ((2, Side.SELL), (1, Side.BUY)):
        store.submit(
            PlaceOrder(
                ts_ns=at(),
                account_id=AccountId(account),
                market=MARKET,
                side=side,
                order_type=OrderType.LIMIT,
                qty_lots=1_000,
                price_ticks=300_000,
            )
        )
    store.submit(SetMarkPrice(ts_ns=at(), market=MARKET, index_ticks=280_000, mark_ticks=280_000))
    store.close()
    result = CliRunner().invoke(app, ["explain", "--data", str(tmp_path), "--account", "2"])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "ADL counterparty of account 1" in out
    assert "auto-deleveraged 1 the fund could not take" in out
    assert "<- this account" in out


def test_recover_hands_every_replayed_commands_events_to_an_observer(tmp_path: Path) -> None:
    crash_journal(tmp_path)
    from perpx.journal.store import read_config

    seen: list[int] = []
    _engine, report = recover(
        tmp_path,
        read_config(tmp_path),
        use_snapshots=False,
        observe=lambda seq, _c, _e: seen.append(seq),
    )
    assert seen == list(range(1, report.last_seq + 1))


def test_a_snapshot_keeps_the_funds_account_and_restores_the_bands() -> None:
    v = make_venue(mm="1000000", a="2000", s="100000")
    empty = snapshot(v.engine)
    assert INSURANCE_ACCOUNT not in [row[0] for row in empty["accounts"]]  # empty: left out
    trade(v, "a", "s", "1", "30000")
    seed_fund(v, "1000")
    assert records(v.mark(BTC, "27900"))  # the fund takes the position over
    data = snapshot(v.engine)
    assert INSURANCE_ACCOUNT in [row[0] for row in data["accounts"]]
    twin = restore(v.config, data)
    assert state_hash(twin) == state_hash(v.engine)
    assert encode_snapshot(twin) == encode_snapshot(v.engine)
    assert twin.liquidation.insurance_fund() == v.engine.liquidation.insurance_fund()
    held = {
        account_id: tuple(m for m, p in account.positions.items() if p.qty_lots)
        for account_id, account in v.engine.accounts.items()
        if account_id != INSURANCE_ACCOUNT and any(p.qty_lots for p in account.positions.values())
    }
    assert twin.liquidation.watch.markets_of == held  # bands rebuilt for every holder
    # both engines behave identically from here: the fund's position is deleveraged on a further drop
    command = SetMarkPrice(ts_ns=v.tick(), market=MARKET, index_ticks=270_000, mark_ticks=270_000)
    assert twin.apply(command) == v.engine.apply(command)
    assert state_hash(twin) == state_hash(v.engine)


def test_a_fresh_engine_hashes_as_before_the_fund_existed() -> None:
    # the empty fund account is not in the snapshot, so data directories written before it restore
    engine = Engine(make_venue().config)
    assert INSURANCE_ACCOUNT in engine.accounts
    assert all(row[0] != INSURANCE_ACCOUNT for row in snapshot(engine)["accounts"])
