"""Index, mark and funding formulas: worked examples, by hand, against the code."""

from __future__ import annotations

import pytest

from perpx.engine.pricing.funding import (
    funding_rate_e8,
    impact_price_ticks,
    premium_e8,
    time_weighted_average_e8,
)
from perpx.engine.pricing.index import (
    DropReason,
    IndexPolicy,
    SourceQuote,
    compute_index,
    weighted_median_ticks,
)
from perpx.engine.pricing.mark import binance_mark_ticks, funding_basis_price_ticks, moving_basis_price_ticks

S = 1_000_000_000
WEIGHTS = {"binance": 3, "okx": 2, "bybit": 2}
PCT5 = 5_000_000  # 0.05 in _e8


def _quotes(**prices: int) -> dict[str, SourceQuote]:
    return {name: SourceQuote(price, 100 * S) for name, price in prices.items()}


def test_binance_index_is_the_weighted_mean_when_no_source_deviates() -> None:
    # (3 x 1000 + 2 x 1010 + 2 x 990) / 7 = 7000 / 7 = 1000
    result = compute_index(
        IndexPolicy.BINANCE, WEIGHTS, _quotes(binance=1000, okx=1010, bybit=990), 100 * S, 10 * S, 2, PCT5
    )
    assert result.price_ticks == 1000
    assert result.dropped == ()


def test_binance_index_gives_one_outlier_weight_zero() -> None:
    # median 1000; bybit at 1100 is 10% off -> weight 0; (3 x 1000 + 2 x 1002) / 5 = 1000.8 -> 1001
    result = compute_index(
        IndexPolicy.BINANCE, WEIGHTS, _quotes(binance=1000, okx=1002, bybit=1100), 100 * S, 10 * S, 2, PCT5
    )
    assert result.price_ticks == 1001
    assert result.dropped == (("bybit", DropReason.OUTLIER),)


def test_binance_index_falls_back_to_the_plain_median_with_two_outliers() -> None:
    weights = {"a": 1, "b": 1, "c": 1, "d": 1, "e": 5}
    quotes = _quotes(a=1000, b=1001, c=1002, d=2000, e=500)
    result = compute_index(IndexPolicy.BINANCE, weights, quotes, 100 * S, 10 * S, 2, PCT5)
    assert result.price_ticks == 1001
    assert len(result.used) == 5


def test_capped_index_clips_a_deviant_source_to_the_band() -> None:
    # median 1000, band [950, 1050]; 1000x outlier clipped to 1050: (3 x 1000 + 2 x 1000 + 2 x 1050) / 7 = 1014.28 -> 1014
    quotes = _quotes(binance=1000, okx=1000, bybit=1_000_000)
    result = compute_index(IndexPolicy.CAPPED, WEIGHTS, quotes, 100 * S, 10 * S, 2, PCT5)
    assert result.price_ticks == 1014
    assert ("bybit", DropReason.CAPPED) in result.dropped


def test_weighted_median_takes_the_first_price_reaching_half_the_weight() -> None:
    # sorted: 990 (2), 1000 (3), 1010 (2); total 7; cumulative 2, 5 >= 3.5 -> 1000
    assert weighted_median_ticks([(1010, 2), (990, 2), (1000, 3)]) == 1000


def test_stale_sources_count_as_absent_and_below_quorum_gives_no_price() -> None:
    quotes = {"binance": SourceQuote(1000, 80 * S), "okx": SourceQuote(1000, 99 * S)}
    result = compute_index(IndexPolicy.BINANCE, WEIGHTS, quotes, 100 * S, 10 * S, 2, PCT5)
    assert result.below_quorum
    assert ("binance", DropReason.STALE) in result.dropped and (
        "bybit",
        DropReason.NO_QUOTE,
    ) in result.dropped


def test_mark_is_the_median_of_funding_basis_moving_basis_and_last() -> None:
    # price1 = 1000 x (1 + 0.0001 x 4h/8h) = 1000.05 -> 1000; price2 = 1000 + mean(2, 4) = 1003; last 1010
    price1 = funding_basis_price_ticks(1000, 10_000, 4 * 3600 * S, 8 * 3600 * S)
    price2 = moving_basis_price_ticks(1000, [2, 4])
    assert (price1, price2) == (1000, 1003)
    assert binance_mark_ticks(price1, price2, 1010) == 1003
    assert binance_mark_ticks(price1, price2, None) == 1002  # mean of 1000 and 1003, half up


def test_funding_basis_price_with_a_large_rate_moves_with_time_to_funding() -> None:
    # 0.3% rate, 2h of 8h left: 20000 x (1 + 0.003 x 0.25) = 20015
    assert funding_basis_price_ticks(20_000, 300_000, 2 * 3600 * S, 8 * 3600 * S) == 20_015


def test_impact_price_walks_levels_and_takes_a_fraction_of_the_last() -> None:
    # take 1550 notional: 10 lots at 100 (1000), then 550/110 = 5 lots at 110; 1550 / 15 = 103.3 -> 103
    assert impact_price_ticks([(100, 10), (110, 10)], 1550, 1) == 103
    assert impact_price_ticks([(100, 1)], 1550, 1) is None


@pytest.mark.parametrize(
    ("bid", "ask", "index", "expected"),
    [
        (1010, 1020, 1000, 1_000_000),  # bid 1% over index: +1%
        (980, 990, 1000, -1_000_000),  # ask 1% under index: -1%
        (995, 1005, 1000, 0),  # index inside the impact spread: 0
    ],
)
def test_premium_is_zero_inside_the_impact_spread_and_signed_outside(
    bid: int, ask: int, index: int, expected: int
) -> None:
    assert premium_e8(bid, ask, index) == expected


def test_time_weighted_average_weighs_later_samples_more() -> None:
    # (1 x 0 + 2 x 0 + 3 x 600) / 6 = 300
    assert time_weighted_average_e8([0, 0, 600]) == 300
    assert time_weighted_average_e8([]) == 0


@pytest.mark.parametrize(
    ("average", "interval_h", "expected"),
    [
        (0, 8, 10_000),  # premium 0 -> interest 0.01%
        (30_000, 8, 10_000),  # within +/-0.05% of interest -> interest
        (100_000, 8, 50_000),  # 0.1% + clamp(0.01% - 0.1% = -0.09%, -0.05%) = 0.1% - 0.05% = 0.05%
        (100_000, 4, 25_000),  # same, scaled to a 4 h interval: 0.05% x 4/8
        (10_000_000, 8, 3_000_000),  # capped at 3%
    ],
)
def test_funding_rate_clamps_interest_minus_premium_scales_and_caps(
    average: int, interval_h: int, expected: int
) -> None:
    assert funding_rate_e8(average, 10_000, interval_h, 3_000_000, -3_000_000) == expected


@pytest.mark.parametrize(
    ("qty", "mark", "rate", "expected"),
    [
        (1_000, 300_400, 50_000, 1_502_000_000),  # long 1 BTC at 30,040.0, 0.05%: pays 15.02 USDT, exact
        (-1_000, 300_400, 50_000, -1_502_000_000),  # the short receives the same
        (70, 300_003, 12_345, 25_924_760),  # 25,924,759.245 -> a payer rounds up
        (-30, 300_003, 12_345, -11_110_611),  # -11,110,611.105 -> a receiver rounds toward zero
        (-30, 300_003, -12_345, 11_110_612),  # negative rate: the short pays, rounded up
        (30, 300_003, -12_345, -11_110_611),  # and the long receives, toward zero
        (1_000, 300_000, 0, 0),
    ],
)
def test_funding_payment_rounds_payers_up_and_receivers_toward_zero(
    qty: int, mark: int, rate: int, expected: int
) -> None:
    from perpx.engine.formulas import funding_payment_atoms

    assert funding_payment_atoms(qty, mark, 10_000, rate) == expected


def test_impact_notional_is_the_margin_notional_times_max_leverage() -> None:
    from perpx.engine.pricing.funding import impact_notional_atoms

    # 200 USDT / (1 / 125) = 25,000 USDT
    assert impact_notional_atoms(200 * 10**8, 125) == 25_000 * 10**8


def test_basis_in_half_ticks_keeps_the_half_tick_of_a_one_tick_spread() -> None:
    from perpx.engine.pricing.mark import basis_half_ticks, moving_basis_half_price_ticks

    # bid 300,000, ask 300,001: mid 300,000.5; index 299,990 -> basis 10.5 ticks = 21 half ticks
    assert basis_half_ticks(300_000, 300_001, 299_990) == 21
    # mean of 21 and 20 half ticks = 10.25 ticks -> 10; of 21 and 21 -> 10.5 -> 11 (half up)
    assert moving_basis_half_price_ticks(299_990, [21, 20]) == 300_000
    assert moving_basis_half_price_ticks(299_990, [21, 21]) == 300_001
    assert moving_basis_half_price_ticks(299_990, [-21, -21]) == 299_979  # -10.5 -> -11
    assert moving_basis_half_price_ticks(299_990, []) == 299_990


def test_impact_ask_of_25000_usdt_over_two_btc_levels() -> None:
    """docs/mechanics.md section 21: 0.5 BTC at 30,050.0 then 1 BTC at 30,060.0 -> 30,054.0."""
    assert impact_price_ticks([(300_500, 500), (300_600, 1_000)], 25_000 * 10**8, 10_000) == 300_540


def test_ema_after_150_s_of_400_then_150_s_of_0() -> None:
    """docs/mechanics.md section 20: 400 x e^-1 / (1 + e^-1) = 107.6 -> 108 ticks over the index."""
    from perpx.engine.pricing.mark import ema_basis_price_ticks, ema_seconds

    num, den = ema_seconds(0, 0, 800, 150)
    num, den = ema_seconds(num, den, 0, 150)
    assert (num, den) == (27_998_419_903, 130_132_459)
    assert ema_basis_price_ticks(300_000, num, den) == 300_108
