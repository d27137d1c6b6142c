"""Properties of index, mark and funding: outliers never steer the index, funding sums to zero."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perpx.engine import formulas
from perpx.engine.commands import AdvanceClock, MarginMode, SetMarginMode
from perpx.engine.events import FundingPaid, FundingSettled
from perpx.engine.pricing import funding, mark
from perpx.engine.pricing.index import IndexPolicy, SourceQuote, compute_index, weighted_mean_ticks
from perpx.engine.values import RATE_SCALE, AccountId, MarketId
from perpx.testkit import Venue
from tests.pricing.helpers import BTC, S, boundary, of, priced_config, settlement_balances

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
WEIGHTS = {"binance": 3, "okx": 2, "bybit": 2, "coinbase": 1}
PCT5 = 5_000_000
NOW = 1_000 * S


def _quotes(prices: dict[str, int]) -> dict[str, SourceQuote]:
    return {source: SourceQuote(price, NOW) for source, price in prices.items()}


honest_prices = st.fixed_dictionaries({source: st.integers(995_000, 1_005_000) for source in WEIGHTS})
"""Four honest sources within 1% of each other (ticks)."""
deviant_factor = st.one_of(
    st.integers(107, 100_000).map(lambda pct: Decimal(pct) / 100),  # 7% up .. 1000x
    st.integers(1, 93).map(lambda pct: Decimal(pct) / 100),  # 7% down .. 1/100
)


@SETTINGS
@given(honest=honest_prices, deviant=st.sampled_from(sorted(WEIGHTS)), factor=deviant_factor)
def test_binance_policy_index_ignores_one_outlier_whatever_its_size(
    honest: dict[str, int], deviant: str, factor: Decimal
) -> None:
    prices = dict(honest)
    prices[deviant] = max(1, int(prices[deviant] * factor))
    result = compute_index(IndexPolicy.BINANCE, WEIGHTS, _quotes(prices), NOW, 10 * S, 2, PCT5)
    others = [(p, WEIGHTS[s]) for s, p in honest.items() if s != deviant]
    assert result.price_ticks == weighted_mean_ticks(others)
    assert [s for s, _ in result.dropped] == [deviant]


@SETTINGS
@given(honest=honest_prices, deviant=st.sampled_from(sorted(WEIGHTS)), factor=deviant_factor)
def test_capped_policy_index_is_the_same_for_any_size_of_outlier_and_stays_in_the_band(
    honest: dict[str, int], deviant: str, factor: Decimal
) -> None:
    def index(multiplier: Decimal) -> int:
        prices = dict(honest)
        prices[deviant] = max(1, int(prices[deviant] * multiplier))
        result = compute_index(IndexPolicy.CAPPED, WEIGHTS, _quotes(prices), NOW, 10 * S, 2, PCT5)
        assert result.price_ticks is not None
        return result.price_ticks

    extreme = Decimal(1000) if factor > 1 else Decimal(1) / 1000
    value = index(factor)
    assert value == index(extreme)  # 7% off or 1000x off: clipped to the same band edge
    low, high = min(honest.values()), max(honest.values())
    assert low * (RATE_SCALE - PCT5) // RATE_SCALE <= value <= high * (RATE_SCALE + PCT5) // RATE_SCALE


@settings(max_examples=25, deadline=None)
@given(
    honest=st.tuples(st.integers(299_000, 301_000), st.integers(299_000, 301_000)),
    up=st.booleans(),
)
def test_a_1000x_source_never_moves_the_mark(honest: tuple[int, int], up: bool) -> None:
    v = Venue(priced_config())
    v.quote(BTC, "binance", str(Decimal(honest[0]) / 10))
    v.quote(BTC, "okx", str(Decimal(honest[1]) / 10))
    mark_before = v.engine.marks[MarketId(BTC)]
    crazy = Decimal(honest[0]) * 100 if up else Decimal(honest[0]) / 10_000
    v.quote(BTC, "bybit", str(crazy.quantize(Decimal("0.1")) or Decimal("0.1")))
    # 3 sources: the median is an honest one; the 1000x one is > 5% off and gets weight 0
    assert v.engine.marks[MarketId(BTC)] == mark_before
    assert MarketId(BTC) not in v.engine.index_stale


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    trades=st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(5, 400)), min_size=1, max_size=10
    ),
    isolated=st.frozensets(st.integers(0, 5), max_size=3),
    price=st.integers(200_000, 400_000),
    interest=st.integers(-50_000, 50_000),
    hours=st.sampled_from([1, 2, 4, 8]),
    boundaries=st.integers(1, 3),
)
def test_funding_sums_to_zero_over_random_positions(
    trades: list[tuple[int, int, int]],
    isolated: frozenset[int],
    price: int,
    interest: int,
    hours: int,
    boundaries: int,
) -> None:
    config = priced_config(
        risk={"interest_rate": str(Decimal(interest) / RATE_SCALE), "funding_interval_hours": hours},
        index={"stale_after_s": 86_400},
    )
    v = Venue(config)
    names = [f"t{i}" for i in range(6)]
    for name in names:
        v.account(name, "10000000")
    for i in sorted(isolated):
        v.apply(
            SetMarginMode(
                ts_ns=v.tick(), account_id=v.names[names[i]], market=MarketId(BTC), mode=MarginMode.ISOLATED
            )
        )
    text = str(Decimal(price) / 10)
    for source in ("binance", "okx", "bybit"):
        v.quote(BTC, source, text)
    for buyer, seller, lots in trades:
        if buyer == seller:
            continue
        qty = str(Decimal(lots) / 1000)
        v.place(names[seller], BTC, "sell", qty, text)
        v.place(names[buyer], BTC, "buy", qty, text)
    positions = {a: p.qty_lots for a, p in v.engine.market_positions[MarketId(BTC)].items() if p.qty_lots}
    wallets = {a: v.engine.accounts[a].balance(v.engine.asset) for a in positions}
    margins = {a: v.engine.market_positions[MarketId(BTC)][a].isolated_margin_atoms for a in positions}
    insurance = v.engine.insurance_atoms.get(v.engine.asset, 0)
    events = v.apply(AdvanceClock(ts_ns=boundary(boundaries, hours)))
    settled = of(events, FundingSettled)
    assert len(settled) == boundaries
    settlement_balances(events)
    rate = funding.funding_rate_e8(0, interest, hours, 3_000_000, -3_000_000)
    residue = 0
    for settlement in settled:
        assert settlement.rate_e8 == rate and settlement.mark_ticks == price
        assert settlement.positions == len(positions)
        residue += settlement.residue_atoms
    assert v.engine.insurance_atoms.get(v.engine.asset, 0) == insurance + residue
    paid: dict[AccountId, int] = {}
    for event in of(events, FundingPaid):
        expected = formulas.funding_payment_atoms(positions[event.account_id], price, 10_000, rate)
        assert event.amount_atoms == -expected
        exact = Decimal(positions[event.account_id] * price * 10_000 * rate) / RATE_SCALE
        assert -event.amount_atoms >= exact  # a payer never pays less, a receiver never gets more
        assert abs(-event.amount_atoms - exact) < 1
        assert event.isolated == (names.index(v.engine.accounts[event.account_id].name) in isolated)
        paid[event.account_id] = paid.get(event.account_id, 0) + event.amount_atoms
    for account_id, amount in paid.items():
        wallet = v.engine.accounts[account_id].balance(v.engine.asset)
        margin = v.engine.market_positions[MarketId(BTC)][account_id].isolated_margin_atoms
        if names.index(v.engine.accounts[account_id].name) in isolated:
            assert (wallet, margin) == (wallets[account_id], margins[account_id] + amount)
        else:
            assert (wallet, margin) == (wallets[account_id] + amount, margins[account_id])


@SETTINGS
@given(samples=st.lists(st.integers(-3_000_000, 3_000_000), max_size=60))
def test_running_twa_equals_the_list_average(samples: list[int]) -> None:
    num = count = 0
    for sample in samples:
        num, count = funding.twa_add(num, count, sample)
    assert funding.twa_e8(num, count) == funding.time_weighted_average_e8(samples)


@SETTINGS
@given(sample=st.integers(-1_000_000, 1_000_000), before=st.lists(st.integers(-5_000, 5_000), max_size=8))
def test_adding_equal_samples_at_once_equals_adding_them_one_by_one(sample: int, before: list[int]) -> None:
    num = count = 0
    for value in before:
        num, count = funding.twa_add(num, count, value)
    batch = funding.twa_add(num, count, sample, 37)
    single = (num, count)
    for _ in range(37):
        single = funding.twa_add(*single, sample)
    assert batch == single


@SETTINGS
@given(
    samples=st.lists(st.one_of(st.none(), st.integers(-2_000, 2_000)), min_size=1, max_size=20),
    runs=st.lists(st.integers(1, 30), min_size=20, max_size=20),
)
def test_ema_of_a_run_of_seconds_equals_the_seconds_one_by_one(
    samples: list[int | None], runs: list[int]
) -> None:
    batch = single = (0, 0)
    for sample, run in zip(samples, runs, strict=False):
        batch = mark.ema_seconds(*batch, sample, run)
        for _ in range(run):
            single = mark.ema_seconds(*single, sample, 1)
    assert batch == single


def test_ema_of_a_constant_basis_is_that_basis() -> None:
    num, den = mark.ema_seconds(0, 0, 801, 500)
    assert mark.ema_basis_price_ticks(300_000, num, den) == 300_401  # 801 half ticks = 400.5 -> 401 (half up)
    num, den = mark.ema_seconds(0, 0, -801, 500)
    assert mark.ema_basis_price_ticks(300_000, num, den) == 299_599  # -400.5 -> -401 (half away from zero)
    assert mark.ema_basis_price_ticks(300_000, 0, 0) == 300_000


def test_an_ema_left_without_samples_decays_to_exactly_nothing() -> None:
    num, den = mark.ema_seconds(0, 0, -5_000, 10)
    num, den = mark.ema_seconds(num, den, None, mark.EMA_HORIZON_S)
    assert (num, den) == (0, 0)
