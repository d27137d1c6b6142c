"""Positions, realised PnL, cross and isolated margin, leverage, and order margin.

Money in atoms (1 USDT = 10**8). Positions carry a signed entry cost, so the
weighted entry price is exact; realised PnL = exit proceeds - cost removed,
where the cost removed is rounded toward zero and the remainder leaves with the
last lot. Margin is Binance USDS-M's: IM = notional / leverage on the mark,
orders reserve IM of the larger side's opening part.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from perpx.engine.codes import RejectCode
from perpx.engine.commands import AdjustIsolatedMargin, MarginMode, SetLeverage, SetMarginMode
from perpx.engine.events import (
    CommandRejected,
    Event,
    IsolatedMarginAdjusted,
    LeverageChanged,
    MarginModeChanged,
)
from perpx.engine.values import MarketId
from perpx.testkit import Venue

from .helpers import BTC, USDT, code_of, fills, kinds, next_id, rest, summary, venue

MARKET = MarketId(BTC)


def set_leverage(v: Venue, name: str, leverage: int) -> list[Event]:
    return v.apply(SetLeverage(ts_ns=v.tick(), account_id=v.names[name], market=MARKET, leverage=leverage))


def set_mode(v: Venue, name: str, mode: MarginMode) -> list[Event]:
    return v.apply(SetMarginMode(ts_ns=v.tick(), account_id=v.names[name], market=MARKET, mode=mode))


def adjust(v: Venue, name: str, usdt: str) -> list[Event]:
    delta = v.atoms(usdt.lstrip("-")) * (-1 if usdt.startswith("-") else 1)
    return v.apply(
        AdjustIsolatedMargin(ts_ns=v.tick(), account_id=v.names[name], market=MARKET, delta_atoms=delta)
    )


def buy_from(v: Venue, name: str, qty: str, price: str, maker: str = "cp") -> None:
    """``name`` takes an offer of ``qty`` @ ``price`` that ``maker`` rests first."""
    rest(v, maker, "SELL", qty, price)
    v.place(name, BTC, "BUY", qty, price)


def sell_to(v: Venue, name: str, qty: str, price: str, maker: str = "cp") -> list[Event]:
    """``name`` hits a bid of ``qty`` @ ``price`` that ``maker`` rests first; the taker's events."""
    rest(v, maker, "BUY", qty, price)
    return v.place(name, BTC, "SELL", qty, price)


# ---------------------------------------------------------------------------- positions and PnL


def test_entry_is_the_weighted_average_and_pnl_is_realised_on_reduce_and_flip() -> None:
    # Arrange
    v = venue("a", "cp")
    position = v.engine.position(v.names["a"], MARKET)

    # Act 1: buy 1 @ 30000 and 1 @ 31000
    buy_from(v, "a", "1", "30000")
    buy_from(v, "a", "1", "31000")

    # Assert: cost 61000 USDT on 2 BTC -> entry 30500
    assert (position.qty_lots, position.cost_atoms) == (2000, 61000 * USDT)

    # Act 2: the market rises; sell 1.5 @ 32000
    v.mark(BTC, "31000")
    reduce = sell_to(v, "a", "1.5", "32000")

    # Assert: PnL = 1.5 x 32000 - 61000 x 1.5 / 2 = 48000 - 45750 = 2250 USDT
    assert fills(reduce)[0].realized_pnl_atoms == 2250 * USDT
    assert (position.qty_lots, position.cost_atoms) == (500, 15250 * USDT)

    # Act 3: back to 30000; sell 1 @ 29000 closes 0.5 and opens 0.5 short
    v.mark(BTC, "30000")
    flip = sell_to(v, "a", "1", "29000")

    # Assert: PnL = 0.5 x 29000 - 15250 = -750 USDT; new short cost -0.5 x 29000 = -14500
    assert fills(flip)[0].realized_pnl_atoms == -750 * USDT
    assert fills(flip)[0].position_lots == -500
    assert (position.qty_lots, position.cost_atoms) == (-500, -14500 * USDT)
    assert position.realized_pnl_atoms == 1500 * USDT
    # taker fees 0.05% of 30000 + 31000 + 48000 + 29000 = 138000 USDT -> 69 USDT
    assert v.balance("a") == 100000 + 1500 - 69


def test_the_sub_atom_remainder_of_the_entry_cost_is_realised_with_the_last_lot() -> None:
    # Arrange: 1 @ 30000 + 2 @ 30000.1 -> cost 9_000_020_000_000 atoms for 3 BTC
    v = venue("a", "cp")
    buy_from(v, "a", "1", "30000")
    buy_from(v, "a", "2", "30000.1")
    position = v.engine.position(v.names["a"], MARKET)
    assert position.cost_atoms == 9_000_020_000_000

    # Act: close 1, then 2, both at 30000
    first = sell_to(v, "a", "1", "30000")
    rest_ = sell_to(v, "a", "2", "30000")

    # Assert
    # 1st: cost removed trunc(9_000_020_000_000 / 3) = 3_000_006_666_666 -> PnL 3e12 - that = -6_666_666
    # 2nd: the remaining 6_000_013_333_334 -> PnL 6e12 - that = -13_333_334
    # total -20_000_000 atoms = -0.2 USDT = 2 BTC x -0.1, exactly
    assert fills(first)[0].realized_pnl_atoms == -6_666_666
    assert fills(rest_)[0].realized_pnl_atoms == -13_333_334
    assert (position.qty_lots, position.cost_atoms, position.realized_pnl_atoms) == (0, 0, -20_000_000)


def test_a_short_gains_when_it_buys_back_lower() -> None:
    # Arrange: short 2 @ 30000
    v = venue("a", "cp")
    sell_to(v, "a", "2", "30000")
    order = next_id(v) + 1

    # Act: buy back 2 @ 29000 as taker
    rest(v, "cp", "SELL", "2", "29000")
    events = v.place("a", BTC, "BUY", "2", "29000")

    # Assert: PnL = 2 x (30000 - 29000) = 2000 USDT; taker fee 58000 x 0.05% = 29 USDT
    assert summary(v, events, {order: "A"})[1] == (
        "filled",
        "A",
        "29000",
        "2",
        "taker",
        2_900_000_000,
        2000 * USDT,
    )


# ---------------------------------------------------------------------------- cross and isolated


def test_isolated_margin_is_moved_on_fill_and_released_on_close() -> None:
    # Arrange
    v = venue("a", "cp")
    assert kinds(set_mode(v, "a", MarginMode.ISOLATED)) == ["MarginModeChanged"]
    position = v.engine.position(v.names["a"], MARKET)

    # Act 1: buy 1 @ 30000 at 20x as taker
    buy_from(v, "a", "1", "30000")

    # Assert: IM 30000 / 20 = 1500 moves out of the wallet; the fee 15 is paid from the isolated margin
    assert position.isolated_margin_atoms == 1485 * USDT
    assert v.balance("a") == 100000 - 1500

    # Act 2: mark 31000, close half @ 31000
    v.mark(BTC, "31000")
    half = sell_to(v, "a", "0.5", "31000")

    # Assert: fee 15500 x 0.05% = 7.75 from the isolated margin (1477.25); the closed half takes its
    # share of it (738.625) and its PnL 0.5 x 1000 = 500 to the wallet; the other half keeps 738.625
    assert fills(half)[0].realized_pnl_atoms == 500 * USDT
    assert position.isolated_margin_atoms == Decimal("738.625") * USDT
    assert v.balance("a") == 100000 - 1500 + Decimal("1238.625")

    # Act 3: close the rest
    sell_to(v, "a", "0.5", "31000")

    # Assert: all of it returns: 1000 + 500 PnL; the wallet ends at 100000 + 1000 PnL - fees 30.5
    assert position.isolated_margin_atoms == 0
    assert v.balance("a") == 100000 + 1000 - 15 - 2 * Decimal("7.75")


def test_a_cross_position_keeps_its_margin_in_the_wallet() -> None:
    # Arrange
    v = venue("a", "cp")

    # Act
    buy_from(v, "a", "1", "30000")

    # Assert: nothing moves but the fee; IM 1500 is counted, not moved
    position = v.engine.position(v.names["a"], MARKET)
    assert position.isolated_margin_atoms == 0
    assert v.balance("a") == 100000 - 15
    assert v.engine.risk(v.names["a"]).cross_initial_margin_atoms == 1500 * USDT


def test_isolated_margin_can_be_added_and_removed_down_to_initial_margin() -> None:
    # Arrange: isolated long 1 @ 30000: isolated margin 1500 (IM at the mark) - 15 fee = 1485
    v = venue("a", "cp")
    set_mode(v, "a", MarginMode.ISOLATED)
    buy_from(v, "a", "1", "30000")

    # Act
    added = adjust(v, "a", "115")
    too_much = adjust(v, "a", "-100.00000001")
    removed = adjust(v, "a", "-100")

    # Assert
    assert isinstance(added[0], IsolatedMarginAdjusted)
    assert added[0].isolated_margin_atoms == 1600 * USDT
    assert code_of(too_much) == RejectCode.MARGIN_INSUFFICIENT
    assert isinstance(removed[0], IsolatedMarginAdjusted)
    assert removed[0].isolated_margin_atoms == 1500 * USDT
    assert v.balance("a") == 100000 - 1500 - 115 + 100


def test_removable_isolated_margin_is_reduced_by_unrealised_loss() -> None:
    # Arrange: isolated long 1 @ 30000 (1500 - 15 fee), 2000 added (3485), mark down to 29000
    v = venue("a", "cp")
    set_mode(v, "a", MarginMode.ISOLATED)
    buy_from(v, "a", "1", "30000")
    adjust(v, "a", "2000")
    v.mark(BTC, "29000")

    # Act
    # removable = 3485 + (-1000) - IM 29000 / 20 (1450) = 1035
    too_much = adjust(v, "a", "-1035.00000001")
    exact = adjust(v, "a", "-1035")

    # Assert
    assert code_of(too_much) == RejectCode.MARGIN_INSUFFICIENT
    assert isinstance(exact[0], IsolatedMarginAdjusted)
    assert exact[0].isolated_margin_atoms == 2450 * USDT


def test_isolated_margin_added_is_limited_by_the_cross_available_balance() -> None:
    # Arrange: isolated long 1 @ 30000 leaves 100000 - 1500 = 98500 in the cross wallet (the fee
    # is paid from the isolated margin)
    v = venue("a", "cp")
    set_mode(v, "a", MarginMode.ISOLATED)
    buy_from(v, "a", "1", "30000")

    # Act
    too_much = adjust(v, "a", "98500.00000001")
    exact = adjust(v, "a", "98500")

    # Assert
    assert code_of(too_much) == RejectCode.MARGIN_INSUFFICIENT
    assert kinds(exact) == ["IsolatedMarginAdjusted"]
    assert v.balance("a") == 0


@pytest.mark.parametrize(
    ("mode", "have_position", "delta", "code"),
    [
        (MarginMode.CROSS, True, "10", RejectCode.ISOLATED_MARGIN_CROSS),
        (MarginMode.ISOLATED, False, "10", RejectCode.ISOLATED_MARGIN_NO_POSITION),
        (MarginMode.ISOLATED, True, "0", RejectCode.AMOUNT_NOT_POSITIVE),
    ],
    ids=["cross-position", "no-position", "zero"],
)
def test_adjusting_isolated_margin_is_refused(
    mode: MarginMode, have_position: bool, delta: str, code: RejectCode
) -> None:
    # Arrange
    v = venue("a", "cp")
    if mode is MarginMode.ISOLATED:
        set_mode(v, "a", mode)
    if have_position:
        buy_from(v, "a", "1", "30000")
    before = v.hash()

    # Act
    events = adjust(v, "a", delta)

    # Assert
    assert code_of(events) == code
    assert v.hash() == before


def test_margin_mode_change_to_the_same_mode_is_refused() -> None:
    # Arrange
    v = venue("a")

    # Act
    events = set_mode(v, "a", MarginMode.CROSS)

    # Assert
    assert code_of(events) == RejectCode.MARGIN_TYPE_UNCHANGED


def test_margin_mode_change_is_refused_with_open_orders() -> None:
    # Arrange
    v = venue("a")
    rest(v, "a", "BUY", "1", "29000")

    # Act
    events = set_mode(v, "a", MarginMode.ISOLATED)

    # Assert
    assert code_of(events) == RejectCode.MARGIN_TYPE_OPEN_ORDERS


def test_margin_mode_change_is_refused_with_a_position() -> None:
    # Arrange
    v = venue("a", "cp")
    buy_from(v, "a", "1", "30000")

    # Act
    events = set_mode(v, "a", MarginMode.ISOLATED)

    # Assert
    assert code_of(events) == RejectCode.MARGIN_TYPE_POSITION


def test_margin_mode_change_back_to_cross_once_flat() -> None:
    # Arrange: an isolated position opened and closed
    v = venue("a", "cp")
    set_mode(v, "a", MarginMode.ISOLATED)
    buy_from(v, "a", "1", "30000")
    sell_to(v, "a", "1", "30000")

    # Act
    events = set_mode(v, "a", MarginMode.CROSS)

    # Assert
    assert events == [
        MarginModeChanged(ts_ns=v.now_ns, account_id=v.names["a"], market=MARKET, mode=MarginMode.CROSS)
    ]


# ---------------------------------------------------------------------------- leverage


@pytest.mark.parametrize(
    ("leverage", "cap_usdt"),
    [(1, 20_000_000), (20, 20_000_000), (21, 3_000_000), (50, 3_000_000), (100, 250_000), (125, 50_000)],
)
def test_leverage_within_the_brackets_is_accepted_with_its_notional_cap(leverage: int, cap_usdt: int) -> None:
    # Arrange: brackets cap 50k @125x, 250k @100x, 3M @50x, 20M @20x
    v = venue("a")

    # Act
    events = set_leverage(v, "a", leverage)

    # Assert
    assert events == [
        LeverageChanged(
            ts_ns=v.now_ns,
            account_id=v.names["a"],
            market=MARKET,
            leverage=leverage,
            max_notional_atoms=cap_usdt * USDT,
        )
    ]


@pytest.mark.parametrize("leverage", [0, -1, 126])
def test_leverage_outside_1_to_the_first_bracket_maximum_is_refused(leverage: int) -> None:
    # Arrange
    v = venue("a")

    # Act
    events = set_leverage(v, "a", leverage)

    # Assert
    assert code_of(events) == RejectCode.LEVERAGE_INVALID
    assert v.engine.position(v.names["a"], MARKET).leverage == 20


@pytest.mark.parametrize(
    ("qty", "price", "outcome"),
    [
        ("1.666", "30000", "OrderAccepted"),  # 49980 <= 50000
        ("1.667", "30000", "OrderRejected"),  # 50010 > 50000
        ("1.7", "29000", "OrderRejected"),  # 49300 at its price, but 51000 at the mark 30000
    ],
)
def test_an_order_may_not_take_the_position_beyond_the_cap_at_its_leverage(
    qty: str, price: str, outcome: str
) -> None:
    # Arrange: 125x allows 50000 USDT of notional
    v = venue("a")
    set_leverage(v, "a", 125)

    # Act
    events = v.place("a", BTC, "BUY", qty, price)

    # Assert
    assert kinds(events) == [outcome]
    if outcome == "OrderRejected":
        assert summary(v, events) == [("rejected", RejectCode.MAX_POSITION_AT_LEVERAGE)]


def test_the_cap_counts_the_position_and_the_open_orders_together() -> None:
    # Arrange: 125x; long 1 (30000) and a bid of 0.6 (18000): 48000 of the 50000
    v = venue("a", "cp")
    set_leverage(v, "a", 125)
    buy_from(v, "a", "1", "30000")
    rest(v, "a", "BUY", "0.6", "30000")

    # Act: another 0.1 would make 1.7 x 30000 = 51000
    events = v.place("a", BTC, "BUY", "0.1", "29000")

    # Assert
    assert summary(v, events) == [("rejected", RejectCode.MAX_POSITION_AT_LEVERAGE)]


def test_raising_leverage_is_refused_when_the_position_exceeds_the_new_cap() -> None:
    # Arrange: long 2 @ 30000 = 60000 at 20x
    v = venue("a", "cp")
    buy_from(v, "a", "2", "30000")

    # Act
    at_125 = set_leverage(v, "a", 125)  # cap 50000
    at_100 = set_leverage(v, "a", 100)  # cap 250000

    # Assert
    assert code_of(at_125) == RejectCode.MAX_POSITION_AT_LEVERAGE
    assert kinds(at_100) == ["LeverageChanged"]


def test_lowering_leverage_is_refused_when_the_margin_would_not_be_there() -> None:
    # Arrange: 2000 USDT; a bid of 1 @ 30000 reserves 30000 / 20 = 1500
    v = venue("a", deposit="2000")
    rest(v, "a", "BUY", "1", "30000")

    # Act: at 10x it would need 3000 > 2000; at 15x 2000 exactly
    at_10 = set_leverage(v, "a", 10)
    at_15 = set_leverage(v, "a", 15)

    # Assert
    assert code_of(at_10) == RejectCode.MARGIN_INSUFFICIENT
    assert isinstance(at_15[0], LeverageChanged)
    assert v.engine.risk(v.names["a"]).order_margin_atoms == 2000 * USDT


# ---------------------------------------------------------------------------- initial margin of orders


@pytest.mark.parametrize(
    ("qty", "outcome"),
    [
        ("0.666", "OrderAccepted"),  # 19980 / 20 = 999 <= 1000
        ("0.667", "OrderRejected"),  # 20010 / 20 = 1000.5 > 1000
    ],
)
def test_an_order_needs_its_initial_margin_available(qty: str, outcome: str) -> None:
    # Arrange
    v = venue("a", deposit="1000")

    # Act
    events = v.place("a", BTC, "BUY", qty, "30000")

    # Assert
    assert kinds(events) == [outcome]
    if outcome == "OrderRejected":
        assert summary(v, events) == [("rejected", RejectCode.MARGIN_INSUFFICIENT)]


def test_order_margin_is_the_larger_sides_opening_part() -> None:
    # Arrange: long 1 @ 30000 (as maker, fee 6)
    v = venue("a", "cp")
    rest(v, "a", "BUY", "1", "30000")
    v.place("cp", BTC, "SELL", "1", "30000")

    # Act: sell 3 @ 31000 and buy 1 @ 29000
    rest(v, "a", "SELL", "3", "31000")
    rest(v, "a", "BUY", "1", "29000")

    # Assert
    # buys open 1 x 29000 = 29000; sells: 1 of 3 closes the long, 2/3 of 93000 = 62000 opens
    # reserve max(29000, 62000) / 20 = 3100 USDT
    position = v.engine.position(v.names["a"], MARKET)
    assert position.order_margin_atoms == 3100 * USDT
    assert v.engine.risk(v.names["a"]).available_atoms == (100000 - 6 - 1500 - 3100) * USDT


def test_orders_that_only_close_the_position_reserve_nothing() -> None:
    # Arrange: long 2
    v = venue("a", "cp")
    buy_from(v, "a", "2", "30000")

    # Act: ordinary (not reduce-only) sells adding up to the position
    rest(v, "a", "SELL", "1", "31000")
    rest(v, "a", "SELL", "1", "32000")

    # Assert
    assert v.engine.position(v.names["a"], MARKET).order_margin_atoms == 0


def test_bids_and_offers_of_a_flat_account_reserve_only_the_larger_side() -> None:
    # Arrange
    v = venue("a")

    # Act
    rest(v, "a", "BUY", "1", "29000")
    rest(v, "a", "SELL", "1", "31000")

    # Assert: max(29000, 31000) / 20 = 1550, not (29000 + 31000) / 20
    assert v.engine.position(v.names["a"], MARKET).order_margin_atoms == 1550 * USDT


def test_an_order_that_closes_needs_no_margin_even_when_none_is_available() -> None:
    # Arrange: 1600 USDT; long 1 @ 30000 as taker: wallet 1585, IM 1500, available 85
    v = venue("a", "cp", deposit="1600")
    v.deposit("cp", "100000")
    buy_from(v, "a", "1", "30000")

    # Act
    events = v.place("a", BTC, "SELL", "1", "31000")

    # Assert
    assert kinds(events) == ["OrderAccepted"]
    assert v.engine.risk(v.names["a"]).available_atoms == 85 * USDT


def test_refusals_of_settings_commands_are_command_rejections() -> None:
    # Arrange
    v = venue("a")

    # Act
    events = set_leverage(v, "a", 0)

    # Assert
    assert isinstance(events[0], CommandRejected)
    assert events[0].command == "SetLeverage"


def test_lowering_the_leverage_of_an_isolated_position_needs_its_margin_first() -> None:
    # Arrange: isolated long 1 @ 30000 at 20x holds 1500 - 15 fee = 1485 USDT
    v = venue("a", "cp")
    set_mode(v, "a", MarginMode.ISOLATED)
    buy_from(v, "a", "1", "30000")

    # Act: 10x needs 30000 / 10 = 3000 in the position
    refused = set_leverage(v, "a", 10)
    adjust(v, "a", "1515")
    accepted = set_leverage(v, "a", 10)

    # Assert
    assert code_of(refused) == RejectCode.MARGIN_INSUFFICIENT
    assert kinds(accepted) == ["LeverageChanged"]
    assert v.engine.position(v.names["a"], MARKET).isolated_margin_atoms == 3000 * USDT


@pytest.mark.parametrize(
    ("first", "second", "outcome"),
    [
        # 1.6 @ 30000 (48000) then 0.05 @ 31000 (1550): 49550 <= 50000
        (("1.6", "30000"), ("0.05", "31000"), "OrderAccepted"),
        # 1.6 @ 31000 (49600) then 0.05 @ 30000 (1500): 51100 > 50000, whichever arrives first
        (("1.6", "31000"), ("0.05", "30000"), "OrderRejected"),
        (("0.05", "30000"), ("1.6", "31000"), "OrderRejected"),
        (("0.05", "31000"), ("1.6", "30000"), "OrderAccepted"),
    ],
)
def test_the_cap_does_not_depend_on_the_order_the_orders_arrive_in(
    first: tuple[str, str], second: tuple[str, str], outcome: str
) -> None:
    # Arrange: 125x allows 50000 USDT; the mark is 30000
    v = venue("a")
    set_leverage(v, "a", 125)
    assert kinds(v.place("a", BTC, "BUY", *first)) == ["OrderAccepted"]

    # Act
    events = v.place("a", BTC, "BUY", *second)

    # Assert
    assert kinds(events) == [outcome]
