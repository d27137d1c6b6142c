"""The pricing model's rules: spread grows with size, skew follows inventory, no price leaves the band."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from perpx.otc.config import PricingParams
from perpx.otc.lastlook import last_look
from perpx.otc.pricing import MarketInputs, QuoteSide, half_spread_bps, price_quote, range_bps

PARAMS = PricingParams(min_notional=Decimal(1000), max_notional=Decimal(10_000_000))


def _inputs(
    inventory_lots: int = 0, depth_lots: int = 50_000, range_bps: Decimal = Decimal(0)
) -> MarketInputs:
    return MarketInputs(
        index_ticks=300_000,  # 30000.0 at tick 0.1
        depth_bid_lots=depth_lots,
        depth_ask_lots=depth_lots,
        range_bps=range_bps,
        band_floor_ticks=285_000,
        band_ceiling_ticks=315_000,
        inventory_lots=inventory_lots,
        max_inventory_lots=20_000,
        tick_size=Decimal("0.1"),
        lot_size=Decimal("0.001"),
    )


@given(st.integers(1, 10**6), st.integers(1, 10**6), st.integers(1, 10**6))
def test_half_spread_never_decreases_with_size(small: int, extra: int, depth: int) -> None:
    smaller = half_spread_bps(small, depth, Decimal(3), Decimal(0), PARAMS)
    larger = half_spread_bps(small + extra, depth, Decimal(3), Decimal(0), PARAMS)
    assert smaller is not None and larger is not None
    assert larger >= smaller


@given(st.integers(-40_000, 40_000))
def test_skew_moves_both_prices_against_the_inventory(inventory: int) -> None:
    flat = price_quote(QuoteSide.TWO_WAY, 1000, _inputs(), Decimal(0), PARAMS)
    skewed = price_quote(QuoteSide.TWO_WAY, 1000, _inputs(inventory_lots=inventory), Decimal(0), PARAMS)

    if inventory > 0:
        assert skewed.centre_ticks < flat.centre_ticks
    elif inventory < 0:
        assert skewed.centre_ticks > flat.centre_ticks
    else:
        assert skewed.centre_ticks == flat.centre_ticks


@given(st.integers(1, 20_000), st.integers(-20_000, 20_000), st.integers(0, 500))
def test_priced_sides_lie_in_the_band_and_the_bid_is_below_the_ask(
    qty: int, inventory: int, vol: int
) -> None:
    quote = price_quote(
        QuoteSide.TWO_WAY, qty, _inputs(inventory_lots=inventory, range_bps=Decimal(vol)), Decimal(0), PARAMS
    )

    for side in (quote.bid, quote.ask):
        if side is not None and side.price_ticks is not None:
            assert 285_000 <= side.price_ticks <= 315_000
    if quote.bid and quote.ask and quote.bid.price_ticks and quote.ask.price_ticks:
        assert quote.bid.price_ticks < quote.ask.price_ticks


def test_quote_below_min_notional_is_refused_with_the_range() -> None:
    quote = price_quote(QuoteSide.BUY, 10, _inputs(), Decimal(0), PARAMS)  # 0.01 BTC = 300 USDT

    assert not quote.priced
    assert quote.refusal is not None and "1000 to 10000000" in quote.refusal


def test_side_that_would_breach_the_inventory_limit_is_refused_and_the_other_side_priced() -> None:
    quote = price_quote(QuoteSide.TWO_WAY, 5000, _inputs(inventory_lots=-18_000), Decimal(0), PARAMS)

    assert quote.ask is not None and quote.ask.price_ticks is None
    assert quote.ask.refusal is not None and "limit" in quote.ask.refusal
    assert quote.bid is not None and quote.bid.price_ticks is not None


def test_side_with_no_visible_depth_is_refused() -> None:
    quote = price_quote(QuoteSide.SELL, 1000, _inputs(depth_lots=0), Decimal(0), PARAMS)

    assert quote.bid is not None and quote.bid.price_ticks is None
    assert not quote.priced


def test_better_tier_gets_a_tighter_quote() -> None:
    standard = price_quote(QuoteSide.TWO_WAY, 1000, _inputs(), Decimal(0), PARAMS)
    gold = price_quote(QuoteSide.TWO_WAY, 1000, _inputs(), Decimal(-1), PARAMS)

    assert standard.ask and gold.ask and standard.bid and gold.bid
    assert gold.ask.half_spread_bps < standard.ask.half_spread_bps
    assert gold.ask.price_ticks is not None and standard.ask.price_ticks is not None
    assert gold.ask.price_ticks <= standard.ask.price_ticks


def test_wide_volatility_widens_the_quote_and_a_price_outside_the_band_is_refused() -> None:
    calm = price_quote(QuoteSide.BUY, 1000, _inputs(), Decimal(0), PARAMS)
    wild = price_quote(QuoteSide.BUY, 1000, _inputs(range_bps=Decimal(280)), Decimal(0), PARAMS)

    assert calm.ask is not None and calm.ask.price_ticks is not None
    assert wild.ask is not None and wild.ask.half_spread_bps > calm.ask.half_spread_bps
    params = PricingParams(max_spread_bps=Decimal(1000), min_notional=Decimal(0))
    beyond = price_quote(QuoteSide.BUY, 1000, _inputs(range_bps=Decimal(1500)), Decimal(0), params)
    assert beyond.ask is not None and beyond.ask.price_ticks is None
    assert beyond.ask.refusal is not None and "band" in beyond.ask.refusal


def test_range_is_high_minus_low_in_bps_of_the_index() -> None:
    assert range_bps([300_000, 300_300, 299_700], 300_000) == Decimal(20)
    assert range_bps([300_000], 300_000) == Decimal(0)


def test_last_look_rejects_only_moves_beyond_the_threshold_either_way() -> None:
    assert not last_look(300_000, 300_150, Decimal(5)).rejected  # 5 bps exactly
    assert last_look(300_000, 300_151, Decimal(5)).rejected
    assert last_look(300_000, 299_849, Decimal(5)).rejected
    assert last_look(300_000, 299_700, Decimal(5)).move_bps == Decimal(-10)
