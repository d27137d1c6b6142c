"""Worked examples of the liquidation formulas (docs/mechanics.md, "Liquidation" sections).

BTCUSDT brackets of the demo venue: [0, 50k) 0.4% cum 0 | [50k, 250k) 0.5% cum 50 |
[250k, 3M) 1% cum 1,300 | [3M, 20M) 2.5% cum 46,300. ``contract_atoms`` = 10,000: one lot
(0.001 BTC) at one tick (0.1 USDT), so a 1 BTC position moves ``10**7`` atoms per tick.
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from perpx.engine import formulas as f
from perpx.engine.config import default_config
from perpx.engine.values import RATE_SCALE

from .helpers import USDT

SPEC = default_config().markets["BTCUSDT"]  # type: ignore[index]
TIERS = tuple((b.floor_atoms, b.cap_atoms, b.mmr_e8, b.cum_atoms) for b in SPEC.brackets)
BOUNDS = tuple((b.mmr_e8, b.cum_atoms) for b in SPEC.brackets)
C = SPEC.contract_atoms
BTC_LOTS = 1_000


def test_cum_of_the_third_tier_is_binances_faq_example() -> None:
    # FAQ: cum_3 = 250,000 x (1% - 0.5%) + 50 = 1,300 USDT
    assert SPEC.brackets[2].cum_atoms == 1_300 * USDT
    assert f.bracket_cum_atoms(250_000 * USDT, 1_000_000, 500_000, 50 * USDT) == 1_300 * USDT


# ------------------------------------------------------------------ bankruptcy price


def test_bankruptcy_value_of_a_cross_long() -> None:
    # long 1 BTC at 30,000 (cost 30,000 USDT), wallet 1,985 USDT, no other position: W' = 1,985
    value = f.bankruptcy_value_atoms(1, 30_000 * USDT, 1_985 * USDT)
    assert value == 28_015 * USDT  # = C - W'
    assert f.bankruptcy_limit_ticks(value, BTC_LOTS, C, 1) == 280_150  # 28,015.0 exactly


def test_bankruptcy_value_of_an_isolated_short() -> None:
    # short 1 BTC at 30,000 (cost -30,000 USDT), isolated margin 1,500: V = W' + |C| = 31,500
    value = f.bankruptcy_value_atoms(-1, -30_000 * USDT, 1_500 * USDT)
    assert value == 31_500 * USDT
    assert f.bankruptcy_limit_ticks(value, BTC_LOTS, C, -1) == 315_000


def test_bankruptcy_limit_rounds_toward_the_account() -> None:
    value = 2_801_512_345_678  # 28,015.12345678 USDT for 1 BTC: between ticks 280,151 and 280,152
    assert f.bankruptcy_limit_ticks(value, BTC_LOTS, C, 1) == 280_152  # a long sells no lower than this
    assert f.bankruptcy_limit_ticks(value, BTC_LOTS, C, -1) == 280_151  # a short buys no higher
    # a short whose wallet is so negative no price saves it: the limit is not positive
    assert (
        f.bankruptcy_limit_ticks(
            f.bankruptcy_value_atoms(-1, -30_000 * USDT, -40_000 * USDT), BTC_LOTS, C, -1
        )
        < 0
    )


def test_pro_rata_shares_of_a_bankruptcy_value() -> None:
    # 0.7 of a 1 BTC bankruptcy value of 28,015 USDT; and 1 of 3 lots of 10.00000001 USDT both ways
    assert f.pro_rata_atoms(28_015 * USDT, 700, 1_000, round_up=True) == 19_610_50_000_000
    assert f.pro_rata_atoms(1_000_000_001, 1, 3, round_up=True) == 333_333_334
    assert f.pro_rata_atoms(1_000_000_001, 1, 3, round_up=False) == 333_333_333
    assert f.pro_rata_atoms(1_000_000_001, 3, 3, round_up=False) == 1_000_000_001  # the whole is exact


def test_realized_pnl_at_a_value() -> None:
    # a long of cost 30,000 closed for 28,015: -1,985; a short of cost -30,000 bought back for 31,500: -1,500
    assert f.realized_value_pnl_atoms(1, 28_015 * USDT, 30_000 * USDT) == -1_985 * USDT
    assert f.realized_value_pnl_atoms(-1, 31_500 * USDT, -30_000 * USDT) == -1_500 * USDT


# ------------------------------------------------------------------ clearance fee


@pytest.mark.parametrize(
    ("surplus", "fee"),
    [
        (10_000 * USDT, 350 * USDT),  # plenty left above bankruptcy: the whole 1.25% of 28,000
        (145_50_000_000, 145_50_000_000),  # 145.5 USDT left: that much
        (0, 0),  # closed exactly at bankruptcy
        (-5, 0),  # never below zero
    ],
)
def test_clearance_fee_is_capped_by_what_is_left(surplus: int, fee: int) -> None:
    assert f.clearance_fee_atoms(28_000 * USDT, 1_250_000, surplus) == fee


def test_clearance_fee_rounds_up() -> None:
    # 0.001 BTC at 28,000.3 = 28.0003 USDT x 1.25% = 0.3500037500 USDT -> 35,000,376 atoms (exact 35,000,375)
    assert f.clearance_fee_atoms(2_800_030_000, 1_250_000, 10**12) == 35_000_375
    assert f.clearance_fee_atoms(2_800_030_001, 1_250_000, 10**12) == 35_000_376


# ------------------------------------------------------------------ liquidation price with the bracket loop


def lp(side: int, lots: int, cost_usdt: int, other_usdt: int) -> tuple[int | None, int]:
    return f.liquidation_price_ticks(side, lots, cost_usdt * USDT, other_usdt * USDT, C, TIERS)


def test_isolated_long_in_tier_1() -> None:
    # (30,000 - 1,500 - 0) / (1 x (1 - 0.4%)) = 28,614.4578... -> rounded up (toward the mark) 28,614.5
    assert Fraction(28_500) / Fraction(996, 1000) == Fraction(2_375_000, 83)
    assert lp(1, BTC_LOTS, 30_000, 1_500) == (286_145, 0)


def test_isolated_short_in_tier_1() -> None:
    # (1,500 + 0 + 30,000) / (1 x (1 + 0.4%)) = 31,374.5019... -> rounded down 31,374.5
    assert lp(-1, BTC_LOTS, -30_000, 1_500) == (313_745, 0)


def test_the_tier_is_the_one_holding_the_notional_at_the_liquidation_price() -> None:
    # long 2 BTC at 30,000 (60,000: tier 2 now), isolated margin 12,000.
    # tier 2: (60,000 - 12,000 - 50) / (2 x 0.995) = 24,095.48 -> notional 48,190.95: not in [50k, 250k)
    # tier 1: (60,000 - 12,000 - 0) / (2 x 0.996) = 24,096.39 -> notional 48,192.77: in [0, 50k): kept
    assert lp(1, 2 * BTC_LOTS, 60_000, 12_000) == (240_964, 0)


def test_a_tier_4_position_liquidates_in_tier_3() -> None:
    # long 100 BTC at 30,000 (3,000,000: the cap of tier 3 is exclusive, so tier 4 now), margin 600,000
    # tier 4: (3M - 600k - 46,300) / (100 x 0.975) = 24,140.51 -> notional 2.41M: not in [3M, 20M)
    # tier 3: (3M - 600k - 1,300) / (100 x 0.99) = 24,229.29 -> notional 2.42M: in [250k, 3M): kept
    assert SPEC.bracket_for_notional(3_000_000 * USDT).tier == 4
    assert lp(1, 100 * BTC_LOTS, 3_000_000, 600_000) == (242_293, 2)


def test_no_liquidation_price_when_the_margin_covers_the_whole_position() -> None:
    assert lp(1, BTC_LOTS, 30_000, 40_000) == (None, 0)  # displayed as "--"


def test_at_the_liquidation_price_the_ratio_crosses_100_percent() -> None:
    # the displayed price is rounded toward the mark: one tick past it the position is liquidated
    for side, lots, cost, margin in (
        (1, BTC_LOTS, 30_000, 1_500),
        (1, 2 * BTC_LOTS, 60_000, 12_000),
        (-1, BTC_LOTS, -30_000, 1_500),
    ):
        ticks, _ = lp(side, lots, cost, margin)
        assert ticks is not None

        def ratio(
            mark: int, lots: int = lots, side: int = side, cost: int = cost, margin: int = margin
        ) -> int:
            notional = mark * lots * C
            bracket = SPEC.bracket_for_notional(notional)
            mm = f.maintenance_margin_atoms(notional, bracket.mmr_e8, bracket.cum_atoms)
            balance = margin * USDT + f.unrealized_pnl_atoms(side * lots, cost * USDT, mark, C)
            return f.margin_ratio_e8(mm, balance)

        assert ratio(ticks + side) < RATE_SCALE <= ratio(ticks - side)


# ------------------------------------------------------------------ safety band


def test_maintenance_bound_exceeds_the_maintenance_margin() -> None:
    for notional in (
        0,
        1,
        4_999_999_990_000,
        5_000_000_000_000,
        25_000_000_000_000,
        300_000_000_000_000,
        10**16,
    ):
        bracket = SPEC.bracket_for_notional(notional)
        mm = f.maintenance_margin_atoms(notional, bracket.mmr_e8, bracket.cum_atoms)
        assert mm * RATE_SCALE < f.maintenance_bound_e8(notional, BOUNDS)
    # 1 BTC at 30,000: tier 1's line 30,000 x 0.4% = 120 USDT, plus one atom's worth
    assert f.maintenance_bound_e8(3_000_000_000_000, BOUNDS) == 120 * USDT * RATE_SCALE + RATE_SCALE


def test_slack_and_band() -> None:
    # long 1 BTC at 30,000 with 1,500 USDT of margin: slack ~ (1,500 - 120) x 10**8
    slack = f.safety_slack_e8(1_500 * USDT, f.maintenance_bound_e8(3_000_000_000_000, BOUNDS))
    assert slack == (RATE_SCALE - 1) * 1_500 * USDT - 120 * USDT * RATE_SCALE - RATE_SCALE
    # one tick against 1 BTC costs 0.1 USDT of margin balance: 13,799 ticks (1,379.9 USDT) of room
    assert f.band_ticks(slack, BTC_LOTS, C, 0) == 13_799
    # a short also pays the bound's growth (up to the top tier's 2.5%) on the way up
    assert f.band_ticks(slack, BTC_LOTS, C, 2_500_000) == 13_463  # 13,799.99 / 1.025 = 13,463.4
