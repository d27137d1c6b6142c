"""Rule tables of Multi-Assets Mode: haircut margin, tiers, debt against collateral, withdrawals,
stale indexes, conversion at the index minus the discount, and the mode switch's refusals.

Worked numbers (1 BTC = 10**8 atoms, 1 USDT = 10**8 atoms): BTC at 50,000 with a 5% haircut
counts 47,500 USDT; the conversion discount is 1% (100 bps).
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from perpx.engine import formulas
from perpx.engine.codes import RejectCode
from perpx.engine.commands import MarginMode, SetMarginMode
from perpx.engine.config import ConfigError
from perpx.engine.events import (
    CollateralConverted,
    CommandRejected,
    Event,
    LiquidationExplained,
    MultiAssetsModeChanged,
    OrderAccepted,
    OrderRejected,
    TransferRejected,
    WithdrawalApplied,
)
from perpx.engine.liquidation.insurance import INSURANCE_ACCOUNT, fund_equity
from perpx.engine.state import restore, snapshot, state_hash
from perpx.engine.values import MarketId
from tests.lending.helpers import lending_config, of_type
from tests.lending.multi_assets import BTC, MARKET, USDT, MultiVenue, atoms, multi_assets_data

E8 = 10**8


def _code(events: Sequence[Event]) -> int | None:
    for event in events:
        if isinstance(event, CommandRejected | OrderRejected | TransferRejected):
            return int(event.code)
    return None


def _alice(btc: str = "1", usdt: str | None = None, fund: str = "100000", **config: object) -> MultiVenue:
    lv = MultiVenue(fund, **config)
    lv.borrower("alice", btc=btc, usdt=usdt)
    return lv


# ---------------------------------------------------------------- the haircut formula, tiered


@pytest.mark.parametrize(
    ("amount", "index", "tiers", "value"),
    [
        ("1", "50000", [(0, "0.05")], "47500"),  # one tier: index x (1 - 5%)
        ("2", "50000", [(0, "0")], "100000"),  # no haircut
        ("0", "50000", [(0, "0.05")], "0"),
        ("0.00000001", "50000", [(0, "0.05")], "0.00047500"),  # one atom: 0.000475 USDT, exact
        ("0.00000003", "0.3", [(0, "0.05")], "0"),  # 8.55e-9 USDT rounds down to 0
        # tiers: the first 10 BTC at 5%, the next 40 at 10%, beyond 50 at 20%
        ("10", "50000", [(0, "0.05"), (10, "0.1"), (50, "0.2")], "475000"),
        ("12", "50000", [(0, "0.05"), (10, "0.1"), (50, "0.2")], "565000"),  # 475,000 + 2 x 45,000
        ("60", "50000", [(0, "0.05"), (10, "0.1"), (50, "0.2")], "2675000"),  # 475k + 1.8M + 400k
    ],
)
def test_collateral_value_rule_table(
    amount: str, index: str, tiers: list[tuple[int, str]], value: str
) -> None:
    # Arrange
    rows = tuple((atoms(str(size)), atoms(haircut)) for size, haircut in tiers)
    # Act
    counted = formulas.collateral_value_atoms(atoms(amount), atoms(index), 8, rows)
    # Assert
    assert counted == atoms(value)


@pytest.mark.parametrize(
    ("debt", "index", "discount_bps", "sold", "proceeds"),
    [
        # price = 10,500 x 0.99 = 10,395; sold = ceil(10,033 / 10,395 BTC) = 0.96517557 (up)
        ("10033", "10500", 100, "0.96517557", "10033.00005015"),  # proceeds floor(sold x price)
        ("1", "50000", 0, "0.00002", "1"),
        ("1", "30000", 0, "0.00003334", "1.0002"),  # 1/30,000 = 0.0000333..., up
    ],
)
def test_conversion_at_index_minus_discount_rule_table(
    debt: str, index: str, discount_bps: int, sold: str, proceeds: str
) -> None:
    # Arrange
    price = formulas.conversion_price_atoms(atoms(index), discount_bps * 10**4)
    # Act
    needed = formulas.conversion_needed_atoms(atoms(debt), price, 8)
    got = formulas.conversion_proceeds_atoms(needed, price, 8)
    # Assert
    assert (needed, got) == (atoms(sold), atoms(proceeds))
    assert got >= atoms(debt)  # the sale always covers the debt it is made for


@pytest.mark.parametrize(
    ("tiers", "message"),
    [
        ([["1", "0.05"]], "must start at size 0"),
        ([["0", "0.05"], ["0", "0.1"]], "sizes must rise"),
        ([["0", "1"]], "below 1"),
        ([["0"]], "[size, haircut] pair"),
        ("0.05", "list of [size, haircut] pairs"),
    ],
)
def test_bad_haircut_tiers_are_refused_naming_the_key(tiers: object, message: str) -> None:
    # Arrange
    data = multi_assets_data(collateral_haircut=None, collateral_haircut_tiers=tiers)
    # Act / Assert
    with pytest.raises(ConfigError, match=r"assets\.BTC\.collateral_haircut_tiers") as raised:
        lending_config(data)
    assert message in str(raised.value)


def test_the_first_tier_is_the_assets_plain_haircut() -> None:
    # /fapi/v1/assetIndex shows it as bidBuffer
    config = lending_config(
        multi_assets_data(collateral_haircut=None, collateral_haircut_tiers=[["0", "0.07"], ["10", "0.1"]])
    )
    assert config.assets[BTC].collateral_haircut_e8 == atoms("0.07")


def test_haircut_and_tiers_together_are_refused() -> None:
    with pytest.raises(ConfigError, match="not both"):
        lending_config(multi_assets_data(collateral_haircut_tiers=[["0", "0.05"]]))


@pytest.mark.parametrize("bps", [-1, 10_000, "1.5"])
def test_bad_conversion_discount_is_refused(bps: object) -> None:
    with pytest.raises(ValueError, match="conversion_discount_bps"):
        lending_config(multi_assets_data(conversion_discount_bps=bps))


# ---------------------------------------------------------------- the mode switch


def test_mode_on_counts_collateral_at_index_less_haircut() -> None:
    # Arrange
    lv = _alice(btc="1")
    # Act
    events = lv.mode("alice")
    # Assert: 1 BTC x 50,000 x 95%
    (changed,) = of_type(events, MultiAssetsModeChanged)
    assert (changed.enabled, changed.collateral_atoms) == (True, atoms("47500"))
    risk = lv.venue.engine.risk(lv.venue.names["alice"])
    assert (risk.margin_balance_atoms, risk.available_atoms, risk.withdrawable_atoms) == (
        atoms("47500"),
        atoms("47500"),
        0,
    )


def test_tiered_haircut_values_a_large_holding_by_its_tiers() -> None:
    # Arrange: 12 BTC, the first 10 at 5%, beyond at 10%
    lv = _alice(btc="12", collateral_haircut=None, collateral_haircut_tiers=[["0", "0.05"], ["10", "0.1"]])
    # Act
    lv.mode("alice")
    # Assert
    assert lv.collateral("alice") == atoms("565000")


@pytest.mark.parametrize(
    ("arrange", "enable", "code"),
    [
        ("nothing", True, None),
        ("already on", True, RejectCode.MULTI_ASSETS_UNCHANGED),
        ("nothing", False, RejectCode.MULTI_ASSETS_UNCHANGED),
        ("open order", True, RejectCode.MULTI_ASSETS_OPEN_ORDERS),
        ("position", True, RejectCode.MULTI_ASSETS_OPEN_ORDERS),
        ("isolated", True, RejectCode.MULTI_ASSETS_ISOLATED),
        ("debt", False, RejectCode.MULTI_ASSETS_NEGATIVE_BALANCE),
    ],
)
def test_mode_switch_rule_table(arrange: str, enable: bool, code: RejectCode | None) -> None:
    # Arrange
    lv = _alice(btc="1", usdt="10000")
    if arrange == "already on":
        lv.mode("alice")
    elif arrange == "open order":
        lv.venue.place("alice", MARKET, "BUY", "0.01", "49000")
    elif arrange == "position":
        lv.trade("alice", "bob", "0.01", "50000")
    elif arrange == "isolated":
        lv.venue.apply(
            SetMarginMode(
                ts_ns=lv.venue.tick(),
                account_id=lv.venue.names["alice"],
                market=MarketId(MARKET),
                mode=MarginMode.ISOLATED,
            )
        )
    elif arrange == "debt":
        lv.venue.withdraw("alice", "10000")
        lv.mode("alice")
        lv.trade("alice", "bob", "0.1", "50000")
        lv.trade("bob", "alice", "0.1", "49000")  # a 100 USDT loss and fees: USDT below zero
        assert lv.balance("alice", USDT) < 0
    before = lv.venue.hash()
    # Act
    events = lv.mode("alice", enable)
    # Assert
    assert _code(events) == (None if code is None else int(code))
    if code is not None:
        assert lv.venue.hash() == before  # a refusal changes nothing


def test_isolated_margin_is_refused_in_the_mode() -> None:
    # Arrange
    lv = _alice()
    lv.mode("alice")
    # Act
    events = lv.venue.apply(
        SetMarginMode(
            ts_ns=lv.venue.tick(),
            account_id=lv.venue.names["alice"],
            market=MarketId(MARKET),
            mode=MarginMode.ISOLATED,
        )
    )
    # Assert
    assert _code(events) == int(RejectCode.ISOLATED_IN_MULTI_ASSETS)


# ---------------------------------------------------------------- margin and debt


def test_an_order_margined_by_btc_alone_is_refused_outside_the_mode_and_accepted_in_it() -> None:
    # Arrange: alice holds 1 BTC and no USDT
    lv = _alice(btc="1")
    # Act
    outside = lv.venue.place("alice", MARKET, "BUY", "0.1", "50000")
    lv.mode("alice")
    inside = lv.venue.place("alice", MARKET, "BUY", "0.1", "50000")
    # Assert
    assert _code(outside) == int(RejectCode.MARGIN_INSUFFICIENT)
    assert of_type(inside, OrderAccepted)


def test_realised_loss_takes_usdt_below_zero_as_a_debt_against_collateral() -> None:
    # Arrange: alice in the mode with 1 BTC (47,500 counted), long 1 BTC at 50,000 (taker fee 25)
    lv = _alice(btc="1")
    lv.mode("alice")
    lv.trade("alice", "bob", "1", "50000")
    # Act: she sells at 40,000 as maker (fee 8): loss 10,000
    lv.venue.mark(MARKET, "40000")
    lv.trade("bob", "alice", "1", "40000")
    # Assert: the debt stays (no deficit cover), backed by the collateral; invariants hold (testkit)
    assert lv.balance("alice", USDT) == -atoms("10033")
    assert lv.venue.engine.insurance_atoms.get(USDT, 0) == 0
    risk = lv.venue.engine.risk(lv.venue.names["alice"])
    assert risk.margin_balance_atoms == atoms("47500") - atoms("10033")


@pytest.mark.parametrize(
    ("amount", "code"),
    [
        ("0.5", None),  # 23,750 left counts against 2,500 of margin and 25 of debt
        ("0.94", None),  # 0.06 BTC = 2,850 >= 2,525
        ("0.95", int(RejectCode.BALANCE_INSUFFICIENT)),  # 0.05 BTC = 2,375 < 2,525
        ("1.01", int(RejectCode.BALANCE_INSUFFICIENT)),  # more than held
    ],
)
def test_withdrawing_collateral_keeps_the_initial_margin_rule_table(amount: str, code: int | None) -> None:
    # Arrange: alice long 1 BTCUSDT at 50,000, 20x: 2,500 initial margin, 25 USDT of fee debt
    lv = _alice(btc="1")
    lv.mode("alice")
    lv.trade("alice", "bob", "1", "50000")
    # Act
    events = lv.withdraw("alice", BTC, amount)
    # Assert
    assert _code(events) == code
    assert bool(of_type(events, WithdrawalApplied)) == (code is None)


def test_usdt_withdrawal_never_creates_a_debt() -> None:
    # Arrange: 100 USDT and 1 BTC, nothing in use
    lv = _alice(btc="1", usdt="100")
    lv.mode("alice")
    # Act
    too_much = lv.withdraw("alice", USDT, "100.00000001")
    all_of_it = lv.withdraw("alice", USDT, "100")
    # Assert
    assert _code(too_much) == int(RejectCode.BALANCE_INSUFFICIENT)
    assert of_type(all_of_it, WithdrawalApplied)


# ---------------------------------------------------------------- stale collateral index


def _stale(lv: MultiVenue) -> None:
    lv.venue.advance(31)  # past stale_after_s = 30: below the quorum of 2 sources
    lv.venue.mark(MARKET, "50000")
    assert lv.venue.engine.lending.index_atoms(BTC) is None


def test_stale_collateral_counts_zero_for_new_orders_with_its_own_code() -> None:
    # Arrange
    lv = _alice(btc="1")
    lv.mode("alice")
    _stale(lv)
    # Act
    events = lv.venue.place("alice", MARKET, "BUY", "0.1", "50000")
    # Assert
    assert _code(events) == int(RejectCode.COLLATERAL_STALE_FOR_RISK)
    (refused,) = of_type(events, OrderRejected)
    assert "BTC index is stale" in refused.message


def test_stale_collateral_refuses_a_withdrawal_it_would_be_needed_for() -> None:
    # Arrange
    lv = _alice(btc="1")
    lv.mode("alice")
    lv.trade("alice", "bob", "1", "50000")
    _stale(lv)
    # Act
    events = lv.withdraw("alice", BTC, "0.5")
    # Assert
    assert _code(events) == int(RejectCode.COLLATERAL_STALE_FOR_RISK)


def test_no_liquidation_and_no_conversion_on_a_stale_collateral_price() -> None:
    # Arrange: alice's debt of 10,033 against 1 BTC
    lv = _alice(btc="1")
    lv.mode("alice")
    lv.trade("alice", "bob", "1", "50000")
    lv.venue.mark(MARKET, "40000")
    lv.trade("bob", "alice", "1", "40000")
    # Act: one source quotes a crash (below quorum: stale), and time passes
    lv.venue.advance(31)
    events = lv.price("5000", sources=("binance",))
    # Assert: the value stays at the last fresh index; nothing is sold
    assert not of_type(events, CollateralConverted)
    assert lv.collateral("alice") == atoms("47500")
    assert lv.balance("alice", BTC) == atoms("1")


# ---------------------------------------------------------------- conversion


def test_debt_above_the_collateral_value_converts_at_index_minus_discount() -> None:
    # Arrange: the debt of 10,033 USDT
    lv = _alice(btc="1")
    lv.mode("alice")
    lv.trade("alice", "bob", "1", "50000")
    lv.venue.mark(MARKET, "40000")
    lv.trade("bob", "alice", "1", "40000")
    # Act: BTC to 10,500 (both sources): 1 BTC counts 9,975 < 10,033
    lv.price("10500")
    # Assert: sold ceil(10,033 / 10,395) BTC to the fund; the debt is paid
    events = lv.venue.engine.events
    assert lv.balance("alice", BTC) == atoms("1") - atoms("0.96517557")
    assert lv.balance("alice", USDT) == atoms("0.00005015")
    fund = lv.venue.engine.accounts[INSURANCE_ACCOUNT]
    assert fund.balance(BTC) == atoms("0.96517557")
    (record,) = of_type(list(events), LiquidationExplained)
    assert record.outcome == "COLLATERAL_CONVERTED"
    (step,) = record.steps
    assert (step.price_atoms, step.proceeds_atoms, step.debt_after_atoms) == (
        atoms("10395"),
        atoms("10033.00005015"),
        0,
    )


def test_a_fund_short_of_money_converts_only_what_it_can_pay_for() -> None:
    # Arrange: the same debt of 10,033, but the fund holds 1,000 USDT
    lv = _alice(btc="1", fund="1000")
    lv.mode("alice")
    lv.trade("alice", "bob", "1", "50000")
    lv.venue.mark(MARKET, "40000")
    lv.trade("bob", "alice", "1", "40000")
    # Act
    lv.price("10500")
    # Assert: floor(1,000 / 10,395) BTC sold for what the fund had; the rest of the debt waits,
    # still against the BTC she keeps (no deficit cover, the fund never below zero)
    sold = atoms("1000") * 10**8 // atoms("10395")
    assert lv.venue.engine.accounts[INSURANCE_ACCOUNT].balance(BTC) == sold == 9_620_009
    assert lv.balance("alice", BTC) == atoms("1") - sold
    assert lv.balance("alice", USDT) == -atoms("10033") + sold * atoms("10395") // 10**8
    assert 0 <= fund_equity(lv.venue.engine) < atoms("0.01")


def test_leaving_the_mode_stops_counting_collateral() -> None:
    # Arrange
    lv = _alice(btc="1")
    lv.mode("alice")
    # Act
    events = lv.mode("alice", False)
    # Assert
    (changed,) = of_type(events, MultiAssetsModeChanged)
    assert (changed.enabled, changed.collateral_atoms, lv.collateral("alice")) == (False, 0, 0)
    assert lv.venue.names["alice"] not in lv.venue.engine.multi_assets.holders[BTC]


def test_a_liquidated_position_leaves_a_debt_that_collateral_pays() -> None:
    # Arrange: alice long 1 at 50,000 margined by 1 BTC; BTC falls to 30,000 (28,500 counted)
    lv = _alice(btc="1")
    lv.mode("alice")
    lv.trade("alice", "bob", "1", "50000")
    lv.price("30000")
    # Act: the perp's mark falls to 21,500: margin balance 28,500 - 25 - 28,500 < maintenance
    events = lv.venue.mark(MARKET, "21500")
    # Assert: closed (the fund takes it over), then the collateral pays the debt
    records = of_type(list(events), LiquidationExplained)
    assert records and records[0].outcome == "CLOSED"
    conversions = of_type(list(events), CollateralConverted)
    assert conversions and conversions[0].price_atoms == atoms("29700")
    alice = lv.venue.engine.accounts[lv.venue.names["alice"]]
    assert not any(p.qty_lots for p in alice.positions.values())
    assert alice.balance(USDT) >= 0


# ---------------------------------------------------------------- state


def test_snapshot_and_restore_keep_the_mode_and_the_values() -> None:
    # Arrange
    lv = _alice(btc="1")
    lv.mode("alice")
    lv.trade("alice", "bob", "1", "50000")
    lv.price("45000")
    engine = lv.venue.engine
    # Act
    restored = restore(engine.config, snapshot(engine))
    # Assert
    assert state_hash(restored) == state_hash(engine)
    alice = lv.venue.names["alice"]
    assert (
        restored.accounts[alice].collateral_atoms == engine.accounts[alice].collateral_atoms == atoms("42750")
    )
    assert restored.multi_assets.is_enabled(alice)


def test_the_mode_changes_the_state_hash() -> None:
    # Arrange
    lv = _alice(btc="1")
    before = lv.venue.hash()
    # Act
    lv.mode("alice")
    # Assert
    assert lv.venue.hash() != before
