"""Trading fees: maker/taker rates by 30-day traded volume, rebates, the fee account.

Demo schedule (USDT volume over 30 days, maker / taker):
    0           0.02%   / 0.05%
    15,000,000  0.016%  / 0.04%
    250,000,000 -0.005% / 0.03%
A fill's fee uses the tier of the volume *before* the trade, on both sides; both sides' volume
counts, a self-trade's once. A maker rebate is paid only from fees the fee account holds.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from perpx.engine.values import NS_PER_DAY, AssetId
from perpx.testkit import START_NS, Venue

from .helpers import BTC, USDT, config_with, fills, rest, summary, venue

FEES = AssetId("USDT")

# a cheap second tier that a few trades reach, with a maker rebate and a taker rate
# that does not divide evenly: 100,000 USDT -> maker -0.005%, taker 0.045%
REBATE_TIERS = [
    {"min_30d_volume": "0", "maker": "0.0002", "taker": "0.0005"},
    {"min_30d_volume": "100000", "maker": "-0.00005", "taker": "0.00045"},
]


def trade(
    v: Venue,
    qty: str,
    price: str,
    maker: str = "m",
    taker: str = "t",
    side: str = "SELL",
    stp: str = "EXPIRE_MAKER",
) -> list[int]:
    """``maker`` rests ``side``, ``taker`` takes it; return [taker fee, maker fee] in atoms."""
    rest(v, maker, side, qty, price)
    events = v.place(taker, BTC, "BUY" if side == "SELL" else "SELL", qty, price, stp=stp)
    return [f.fee_atoms for f in fills(events)]


def test_the_base_tier_charges_taker_and_maker_and_the_fee_account_collects_both() -> None:
    # Arrange
    v = venue("m", "t")

    # Act
    fees = trade(v, "2", "30000")

    # Assert: 60000 USDT -> taker 0.05% = 30, maker 0.02% = 12 USDT
    assert fees == [30 * USDT, 12 * USDT]
    assert v.engine.fees_atoms[FEES] == 42 * USDT
    assert v.balance("t") == 100000 - 30
    assert v.balance("m") == 100000 - 12


@pytest.mark.parametrize(
    ("first_qty", "next_fees"),
    [
        # 499.999 x 30000 = 14,999,970 < 15M: still the base tier: 30000 -> 15 / 6 USDT
        ("499.999", [1_500_000_000, 600_000_000]),
        # 500 x 30000 = 15,000,000: second tier: 30000 -> 0.04% = 12, 0.016% = 4.8 USDT
        ("500", [1_200_000_000, 480_000_000]),
    ],
)
def test_the_fee_tier_switches_once_the_30_day_volume_reaches_its_threshold(
    first_qty: str, next_fees: list[int]
) -> None:
    # Arrange
    v = venue("m", "t", deposit="1000000")

    # Act
    first = trade(v, first_qty, "30000")
    second = trade(v, "1", "30000")

    # Assert: the fill that reaches the threshold still pays the old tier
    # 500 x 30000 = 15M: taker 7500, maker 3000 USDT
    if first_qty == "500":
        assert first == [7500 * USDT, 3000 * USDT]
    assert second == next_fees


def test_a_negative_maker_rate_is_a_rebate_credited_to_the_maker() -> None:
    # Arrange: 4 x 30000 = 120000 USDT of volume puts both accounts in the rebate tier
    v = venue("m", "t", config=config_with(fee_tiers=REBATE_TIERS))
    assert trade(v, "4", "30000") == [60 * USDT, 24 * USDT]
    maker_before = v.engine.accounts[v.names["m"]].balance(FEES)
    fees_before = v.engine.fees_atoms[FEES]

    # Act: 0.005 @ 30000.1 = 150.0005 USDT = 15_000_050_000 atoms
    fees = trade(v, "0.005", "30000.1")

    # Assert
    # maker: 15_000_050_000 x -0.00005 = -750_002.5 -> toward zero: -750_002 (a rebate)
    # taker: 15_000_050_000 x  0.00045 =  6_750_022.5 -> up: 6_750_023
    assert fees == [6_750_023, -750_002]
    assert v.engine.accounts[v.names["m"]].balance(FEES) == maker_before + 750_002
    assert v.engine.fees_atoms[FEES] == fees_before + 6_750_023 - 750_002


def test_the_fee_account_holds_exactly_the_sum_of_every_fill_fee() -> None:
    # Arrange
    v = venue("m", "t", "u", config=config_with(fee_tiers=REBATE_TIERS))
    charged: list[int] = []

    # Act: a mix of tiers, sides and prices
    charged += trade(v, "2", "30000")
    charged += trade(v, "2", "30000.1", maker="t", taker="u", side="BUY")
    charged += trade(v, "0.007", "29999.9", maker="t", taker="m")  # t is in the rebate tier by now
    charged += trade(v, "0.013", "30000.3", maker="u", taker="m")

    # Assert
    assert v.engine.fees_atoms[FEES] == sum(charged)
    assert any(fee < 0 for fee in charged)


@pytest.mark.parametrize(
    ("days_later", "fees_out"),
    [
        # the trade's day is still one of the 30 days ending today: 0.04% / 0.016%
        (29, [1_200_000_000, 480_000_000]),
        # 30 days later it has left the window: back to 0.05% / 0.02%
        (30, [1_500_000_000, 600_000_000]),
    ],
)
def test_volume_older_than_30_days_is_forgotten(days_later: int, fees_out: list[int]) -> None:
    # Arrange: 15M of volume on day 0 puts both accounts in the second tier
    v = venue("m", "t", deposit="1000000")
    trade(v, "500", "30000")

    # Act: trade 1 @ 30000 some days later (nothing traded in between)
    v.now_ns = START_NS + days_later * NS_PER_DAY
    fees = trade(v, "1", "30000")

    # Assert
    assert fees == fees_out


def test_a_self_trade_counts_its_volume_once() -> None:
    # Arrange: rebate schedule from 100,000 USDT; 1.7 x 30000 = 51,000 USDT traded with itself
    v = venue("a", "t", config=config_with(fee_tiers=REBATE_TIERS))
    trade(v, "1.7", "30000", maker="a", taker="a", stp="NONE")
    assert v.engine.accounts[v.names["a"]].volume_30d_atoms == 51_000 * USDT

    # Act: counted twice, the self-trade would have lifted a into the rebate tier
    events_fees = trade(v, "1", "30000", maker="a")

    # Assert: still the base tier: 30000 x 0.02% = 6 USDT
    assert events_fees[1] == 6 * USDT
    assert v.engine.accounts[v.names["a"]].volume_30d_atoms == (51_000 + 30_000) * USDT


def test_the_maker_side_of_a_self_trade_is_priced_on_the_volume_before_the_trade() -> None:
    # Arrange: a has traded 90,000 USDT; its self-trade of 30,000 crosses the 100,000 tier
    v = venue("a", "t", config=config_with(fee_tiers=REBATE_TIERS))
    trade(v, "3", "30000", maker="a")

    # Act
    fees = trade(v, "1", "30000", maker="a", taker="a", stp="NONE")

    # Assert: both legs at the base tier (taker 0.05% = 15, maker 0.02% = 6), not a rebate
    assert fees == [15 * USDT, 6 * USDT]
    assert v.engine.accounts[v.names["a"]].volume_30d_atoms == 120_000 * USDT


def test_a_maker_rebate_is_paid_only_from_fees_the_fee_account_holds() -> None:
    # Arrange: rebate tier from 0; the taker pays 0.045%, the maker gets 0.05% back (a schedule
    # the config refuses, set here directly): the fee account could not fund the whole rebate
    tiers = [{"min_30d_volume": "0", "maker": "-0.00005", "taker": "0.00045"}]
    v = venue("m", "t", config=config_with(fee_tiers=tiers))
    v.engine.fee_tiers = (replace(v.engine.fee_tiers[0], maker_e8=-50_000),)

    # Act: 30,000 USDT: taker pays 13.5, the rebate due is 15
    fees = trade(v, "1", "30000")

    # Assert: the maker gets what the fee account holds, and it ends at zero, never below
    assert fees == [1_350_000_000, -1_350_000_000]
    assert v.engine.fees_atoms[FEES] == 0


def test_fill_events_carry_the_fee_each_side_paid() -> None:
    # Arrange
    v = venue("m", "t")
    maker = rest(v, "m", "BUY", "0.01", "30000.1")

    # Act
    events = v.place("t", BTC, "SELL", "0.01", "30000.1")

    # Assert: 300.001 USDT: taker 0.15000050, maker 0.06000020 USDT
    assert summary(v, events, {maker: "M"})[1:] == [
        ("filled", maker + 1, "30000.1", "0.01", "taker", 15_000_050, 0),
        ("filled", "M", "30000.1", "0.01", "maker", 6_000_020, 0),
    ]
