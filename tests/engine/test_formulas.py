"""The money formulas and their rounding directions (``perpx.engine.formulas``).

Rates are ``_e8``: 0.0005 is 50_000. Each formula rounds the way its table in
the module says: charges and margins up, rebates and cost removal toward zero,
``cum`` down (a larger maintenance margin).
"""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perpx.engine import formulas
from perpx.engine.config import default_config
from perpx.engine.values import RATE_SCALE, MarketId

USDT = 10**8


@pytest.mark.parametrize(
    ("numerator", "denominator", "ceil", "trunc"),
    [(7, 2, 4, 3), (-7, 2, -3, -3), (6, 3, 2, 2), (-6, 3, -2, -2), (0, 5, 0, 0), (1, 10**8, 1, 0)],
)
def test_ceil_and_trunc_division(numerator: int, denominator: int, ceil: int, trunc: int) -> None:
    assert formulas.ceil_div(numerator, denominator) == ceil
    assert formulas.trunc_div(numerator, denominator) == trunc


@pytest.mark.parametrize(
    ("notional", "rate_e8", "fee"),
    [
        (100 * USDT, 50_000, 5_000_000),  # 100 USDT x 0.05% = 0.05 USDT, exact
        (3, 50_000_000, 2),  # 3 x 0.5 = 1.5 -> charge rounds up to 2
        (1, 1, 1),  # 1e-8 of an atom -> 1 atom
        (0, 50_000, 0),
        (3, -50_000_000, -1),  # rebate 1.5 -> toward zero: 1
        (1, -1, 0),  # a sub-atom rebate is not paid
        (100 * USDT, -5_000, -500_000),  # 100 USDT x -0.005% = -0.005 USDT, exact
        (15_000_050_000, -5_000, -750_002),  # -750_002.5 -> -750_002
        (15_000_050_000, 45_000, 6_750_023),  # 6_750_022.5 -> 6_750_023
    ],
)
def test_a_fee_is_rounded_up_and_a_rebate_toward_zero(notional: int, rate_e8: int, fee: int) -> None:
    assert formulas.fee_atoms(notional, rate_e8) == fee


@given(st.integers(0, 10**20), st.integers(-(10**6), 10**6))
def test_fee_rounding_is_at_most_one_atom_and_never_pays_out_more_than_earned(
    notional: int, rate_e8: int
) -> None:
    exact = notional * rate_e8  # in units of 1e-8 atom
    fee = formulas.fee_atoms(notional, rate_e8)
    # a charge rounds up and a rebate toward zero: both land in [exact, exact + 1 atom)
    assert 0 <= fee * RATE_SCALE - exact < RATE_SCALE
    assert (fee >= 0) == (rate_e8 >= 0 or fee == 0)


@pytest.mark.parametrize(
    ("amount", "rate_e8", "floor", "ceil"), [(1, 1, 0, 1), (-1, 1, -1, 0), (10**8, 3, 3, 3)]
)
def test_rate_multiplication_in_both_directions(amount: int, rate_e8: int, floor: int, ceil: int) -> None:
    assert formulas.mul_rate_floor(amount, rate_e8) == floor
    assert formulas.mul_rate_ceil(amount, rate_e8) == ceil


def test_notional_is_price_times_quantity_times_contract_atoms() -> None:
    # BTCUSDT: one lot (0.001) at one tick (0.1) is 0.0001 USDT = 10_000 atoms
    # 30000.0 x 1.5 = 45000 USDT
    assert formulas.notional_atoms(300_000, 1_500, 10_000) == 45_000 * USDT


@pytest.mark.parametrize(
    ("notional", "leverage", "margin"), [(10, 3, 4), (9, 3, 3), (20_010 * USDT, 20, 100_050_000_000)]
)
def test_initial_margin_rounds_up(notional: int, leverage: int, margin: int) -> None:
    assert formulas.initial_margin_atoms(notional, leverage) == margin


@pytest.mark.parametrize(
    ("notional", "mmr_e8", "cum", "mm"),
    [
        (50_000 * USDT, 400_000, 0, 200 * USDT),  # 50000 x 0.4%
        (100_000 * USDT, 500_000, 50 * USDT, 450 * USDT),  # 100000 x 0.5% - 50
        (3, 50_000_000, 0, 2),  # 1.5 -> up
        (1 * USDT, 400_000, 50 * USDT, 0),  # never negative
    ],
)
def test_maintenance_margin_is_notional_times_rate_minus_cum_rounded_up(
    notional: int, mmr_e8: int, cum: int, mm: int
) -> None:
    assert formulas.maintenance_margin_atoms(notional, mmr_e8, cum) == mm


def test_bracket_cum_matches_the_binance_faq_example() -> None:
    # Binance FAQ: tiers 0-50k @ 0.4%, 50k-250k @ 0.5%, 250k- @ 1%
    # cum_2 = 50,000 x (0.5% - 0.4%) + 0 = 50
    # cum_3 = 250,000 x (1% - 0.5%) + 50 = 1,300 USDT
    cum_2 = formulas.bracket_cum_atoms(50_000 * USDT, 500_000, 400_000, 0)
    cum_3 = formulas.bracket_cum_atoms(250_000 * USDT, 1_000_000, 500_000, cum_2)
    assert cum_2 == 50 * USDT
    assert cum_3 == 1_300 * USDT


def test_bracket_cum_rounds_down() -> None:
    # 3 atoms x (0.5 - 0) = 1.5 -> 1: a smaller cum is a larger maintenance margin
    assert formulas.bracket_cum_atoms(3, 50_000_000, 0, 0) == 1


@pytest.mark.parametrize("market", ["BTCUSDT", "ETHUSDT"])
def test_maintenance_margin_is_continuous_at_every_bracket_boundary(market: str) -> None:
    # At notional = floor_n, tier n-1's formula and tier n's give the same figure
    spec = default_config().markets[MarketId(market)]
    for lower, upper in pairwise(spec.brackets):
        boundary = upper.floor_atoms
        assert formulas.maintenance_margin_atoms(boundary, lower.mmr_e8, lower.cum_atoms) == (
            formulas.maintenance_margin_atoms(boundary, upper.mmr_e8, upper.cum_atoms)
        )


@pytest.mark.parametrize(
    ("cost", "closed", "qty", "removed"),
    [
        (10, 1, 3, 3),  # 3.33 -> 3
        (-10, 1, -3, -3),  # a short's cost: -3.33 -> -3, toward zero
        (10, 3, 3, 10),  # the last lot takes the remainder
        (-10, 3, -3, -10),
        (9_000_020_000_000, 1_000, 3_000, 3_000_006_666_666),
    ],
)
def test_cost_removed_is_rounded_toward_zero_and_the_remainder_leaves_with_the_last_lot(
    cost: int, closed: int, qty: int, removed: int
) -> None:
    assert formulas.cost_removed_atoms(cost, closed, qty) == removed


@given(st.integers(1, 10**6), st.integers(1, 10**9), st.lists(st.integers(1, 50), min_size=1, max_size=8))
def test_realised_pnl_over_a_positions_life_is_exact(lots: int, price: int, closes: list[int]) -> None:
    # a long of ``lots`` bought at ``price`` (cost = lots x price), closed in pieces at ``price + 1``
    cost, qty, total = lots * price, lots, 0
    for piece in [*closes, lots]:
        closed = min(piece, qty)
        if closed == 0:
            break
        removed = formulas.cost_removed_atoms(cost, closed, qty)
        total += formulas.realized_pnl_atoms(1, closed, price + 1, 1, removed)
        cost, qty = cost - removed, qty - closed
    assert (qty, cost, total) == (0, 0, lots)


@pytest.mark.parametrize(
    ("side", "closed", "price", "removed", "pnl"),
    [(1, 2, 11, 20, 2), (-1, 2, 9, -20, 2), (-1, 2, 11, -20, -2)],
    ids=["long-up", "short-down", "short-up"],
)
def test_realised_pnl_is_exit_proceeds_minus_cost_removed(
    side: int, closed: int, price: int, removed: int, pnl: int
) -> None:
    assert formulas.realized_pnl_atoms(side, closed, price, 1, removed) == pnl


@pytest.mark.parametrize(("qty", "cost", "mark", "upnl"), [(2, 20, 11, 2), (-2, -20, 11, -2), (0, 0, 11, 0)])
def test_unrealised_pnl_is_exact_on_the_mark(qty: int, cost: int, mark: int, upnl: int) -> None:
    assert formulas.unrealized_pnl_atoms(qty, cost, mark, 1) == upnl


@pytest.mark.parametrize(
    ("margin", "closed", "qty", "released"), [(100, 1, 3, 33), (100, 3, 3, 100), (-100, 1, 3, -33)]
)
def test_isolated_margin_released_is_rounded_toward_zero(
    margin: int, closed: int, qty: int, released: int
) -> None:
    assert formulas.isolated_margin_released_atoms(margin, closed, qty) == released


@pytest.mark.parametrize(
    ("mark", "multiplier_e8", "round_up", "edge"),
    [
        (300_003, 105_000_000, False, 315_003),  # BUY ceiling 315003.15 -> down
        (300_003, 95_000_000, True, 285_003),  # SELL floor 285002.85 -> up
        (300_000, 105_000_000, False, 315_000),  # exact either way
    ],
)
def test_the_price_band_edge_is_rounded_toward_the_mark(
    mark: int, multiplier_e8: int, round_up: bool, edge: int
) -> None:
    assert formulas.price_band_ticks(mark, multiplier_e8, round_up) == edge


@pytest.mark.parametrize(
    ("maintenance", "balance", "ratio"),
    [(0, 100, 0), (0, -5, 0), (5, 0, 2**62), (5, -1, 2**62), (1, 3, 33_333_334), (50, 100, 50_000_000)],
)
def test_margin_ratio(maintenance: int, balance: int, ratio: int) -> None:
    assert formulas.margin_ratio_e8(maintenance, balance) == ratio


EDGES = [
    0,
    1,
    2,
    3,
    2**30,
    3_000_000_000,
    2**31 - 1,
    2**31,
    2**32,
    3_037_000_499,
    3_037_000_500,
    2**61 - 1,
    2**61,
    2**62,
    2**63,
]
EDGES += [-e for e in EDGES] + [e + 1 for e in EDGES] + [e - 1 for e in EDGES]


@pytest.mark.parametrize("a", EDGES)
def test_mul_is_the_exact_product_at_every_edge_of_its_native_ranges(a: int) -> None:
    for b in EDGES:
        assert formulas.mul(a, b) == a * b


@given(
    a=st.integers(-(2**70), 2**70) | st.integers(-(2**33), 2**33),
    shift=st.integers(0, 70),
    b=st.integers(-(2**70), 2**70),
)
def test_mul_is_the_exact_product_of_any_two_integers(a: int, shift: int, b: int) -> None:
    assert formulas.mul(a, b >> shift) == a * (b >> shift)
    assert formulas.mul(b >> shift, a) == (b >> shift) * a


def test_mul_knows_whether_it_runs_compiled() -> None:
    assert (formulas.__file__ or "").endswith((".so", ".pyd")) == formulas.COMPILED
