"""Index, mark and funding through the engine: quotes -> index -> mark -> funding payments.

Every venue here checks every invariant after every command (``Venue(check=True)``).
Prices are ticks of BTCUSDT (tick 0.1: 300,000 ticks = 30,000.0 USDT), money is atoms
(1 USDT = 10**8), rates ``_e8`` (0.05% = 50,000).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from perpx.config_file import load_config
from perpx.engine.codes import RejectCode
from perpx.engine.commands import AdvanceClock, SetMarkPrice, SubmitSpotQuote
from perpx.engine.events import (
    ClockAdvanced,
    CommandRejected,
    DroppedSource,
    FundingPaid,
    FundingSettled,
    IndexSource,
    IndexStaleChanged,
    IndexUpdated,
    MarkPriceUpdated,
    OrderRejected,
)
from perpx.engine.state import restore, snapshot, state_hash
from perpx.engine.values import MarketId
from perpx.testkit import START_NS, Venue
from tests.engine.helpers import code_of
from tests.pricing.helpers import (
    BTC,
    ETH,
    HOUR,
    S,
    boundary,
    of,
    priced_config,
    priced_venue,
    quote_all,
    settlement_balances,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "venue.toml"
FAIR = {"binance": "30000", "okx": "30010", "bybit": "29990"}
"""Weighted mean (3 x 300,000 + 2 x 300,100 + 2 x 299,900) / 7 = 300,000 ticks exactly."""
LONG_LIVED = {"stale_after_s": 86_400}
"""Quotes that stay fresh for a day, so a test can jump hours without re-quoting."""


def _market() -> MarketId:
    return MarketId(BTC)


def _worked_example() -> Venue:
    """Carol long 1 BTC from Dave at 30,040.0; Bob quotes 30,030.0 / 30,050.0 (1 BTC each)."""
    v = priced_venue("carol", "dave", "bob", config=priced_config(index=LONG_LIVED))
    quote_all(v, FAIR)
    v.place("carol", BTC, "buy", "1", "30040")
    v.place("dave", BTC, "sell", "1", "30040")
    v.place("bob", BTC, "buy", "1", "30030")
    v.place("bob", BTC, "sell", "1", "30050")
    return v


# ---------------------------------------------------------------------------------------- config


def test_example_config_parses_with_the_issue_keys() -> None:
    config = load_config(EXAMPLE)
    btc = config.markets[MarketId(BTC)]
    eth = config.markets[MarketId(ETH)]
    assert btc.index is not None and eth.index is not None
    assert dict(btc.index.weights) == {"binance": 3, "bybit": 2, "okx": 2}
    assert (btc.index.policy, btc.index.stale_after_ns, btc.index.min_sources, btc.index.outlier_e8) == (
        "binance",
        10 * S,
        2,
        5_000_000,
    )
    assert eth.index.policy == "capped" and eth.risk.mark_policy == "ema"
    risk = btc.risk
    assert (
        risk.funding_interval_hours,
        risk.interest_rate_e8,
        risk.funding_cap_e8,
        risk.funding_floor_e8,
    ) == (
        8,
        10_000,
        3_000_000,
        -3_000_000,
    )
    assert (risk.premium_sample_s, risk.mark_basis_window_s, risk.liquidation_fee_e8) == (5, 30, 1_250_000)
    assert risk.impact_margin_notional_atoms == 200 * 10**8
    assert eth.risk.funding_interval_hours == 4


def test_example_config_runs_a_venue_with_both_markets_priced() -> None:
    v = Venue(load_config(EXAMPLE))
    quote_all(v, FAIR)
    events = quote_all(v, {"binance": "2000", "okx": "2000.5", "bybit": "1999.5", "coinbase": "2000"}, ETH)
    assert of(events, IndexUpdated)[-1].index_ticks == 200_000
    assert v.engine.marks[MarketId(BTC)] == 300_000
    assert v.engine.marks[MarketId(ETH)] == 200_000
    assert v.engine.pricing.impact_notional_atoms(MarketId(BTC)) == 25_000 * 10**8  # 200 x 125x
    assert v.engine.pricing.impact_notional_atoms(MarketId(ETH)) == 20_000 * 10**8  # 200 x 100x


# ---------------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("market", "source", "price", "code"),
    [
        ("DOGEUSDT", "okx", 1, RejectCode.BAD_SYMBOL),
        (BTC, "kraken", 300_000, RejectCode.UNKNOWN_SOURCE),
        (ETH, "okx", 200_000, RejectCode.UNKNOWN_SOURCE),  # ETHUSDT has no [index]: manual mark
        (BTC, "okx", 0, RejectCode.PRICE_NOT_POSITIVE),
        (BTC, "okx", -5, RejectCode.PRICE_NOT_POSITIVE),
    ],
)
def test_a_quote_the_venue_cannot_use_is_refused_with_a_code(
    market: str, source: str, price: int, code: RejectCode
) -> None:
    v = priced_venue()
    events = v.apply(
        SubmitSpotQuote(ts_ns=v.tick(), market=MarketId(market), source=source, price_ticks=price)
    )
    assert code_of(events) == code
    assert isinstance(events[0], CommandRejected) and events[0].command == "SubmitSpotQuote"
    assert not v.engine.pricing.markets[_market()].quotes


def test_refusal_messages_say_what_to_do() -> None:
    v = priced_venue()
    unknown = v.apply(SubmitSpotQuote(ts_ns=v.tick(), market=_market(), source="kraken", price_ticks=1))
    assert isinstance(unknown[0], CommandRejected)
    assert (
        unknown[0].message
        == "'kraken' is not an index source of BTCUSDT; its sources are binance, bybit, okx"
    )
    manual = v.apply(SubmitSpotQuote(ts_ns=v.tick(), market=MarketId(ETH), source="okx", price_ticks=1))
    assert isinstance(manual[0], CommandRejected) and "SetMarkPrice" in manual[0].message


def test_an_older_quote_from_the_same_source_is_refused() -> None:
    v = priced_venue()
    v.quote(BTC, "okx", "30000")
    late = SubmitSpotQuote(ts_ns=v.now_ns - 1, market=_market(), source="okx", price_ticks=300_100)
    assert code_of(v.apply(late)) == RejectCode.QUOTE_OUT_OF_ORDER


def test_set_mark_price_is_refused_on_a_market_priced_from_its_index_and_still_works_elsewhere() -> None:
    v = priced_venue()
    events = v.apply(SetMarkPrice(ts_ns=v.tick(), market=_market(), index_ticks=300_000, mark_ticks=300_000))
    assert code_of(events) == RejectCode.MARK_FROM_INDEX
    assert v.mark(ETH, "2000")[0].__class__.__name__ == "MarkPriceSet"
    assert v.engine.marks[MarketId(ETH)] == 200_000


def test_a_market_without_a_quorum_yet_has_no_mark_and_takes_no_orders() -> None:
    v = priced_venue("alice")
    events = v.quote(BTC, "binance", "30000")
    stale = of(events, IndexStaleChanged)
    assert stale and stale[0].stale and stale[0].index_ticks is None and stale[0].fresh_sources == 1
    assert MarketId(BTC) not in v.engine.marks
    rejected = v.place("alice", BTC, "buy", "0.01", "30000", reduce_only=True)
    assert code_of(rejected) == RejectCode.MARKET_CLOSED


# ---------------------------------------------------------------------------------------- index


def test_index_is_the_weighted_mean_and_the_event_lists_sources_used_and_missing() -> None:
    v = priced_venue()
    events = quote_all(v, FAIR)
    first, last = of(events, IndexUpdated)[0], of(events, IndexUpdated)[-1]
    # binance and okx only: (3 x 300,000 + 2 x 300,100) / 5 = 300,040
    assert first.index_ticks == 300_040
    assert first.dropped == (DroppedSource(source="bybit", reason="NO_QUOTE"),)
    assert last.index_ticks == 300_000
    assert last.used == (
        IndexSource(source="binance", price_ticks=300_000),
        IndexSource(source="bybit", price_ticks=299_900),
        IndexSource(source="okx", price_ticks=300_100),
    )
    assert last.dropped == ()
    assert v.engine.indexes[_market()] == 300_000
    view = v.engine.pricing.view(_market())
    assert view.sources_used == (("binance", 300_000), ("bybit", 299_900), ("okx", 300_100))
    assert view.sources_dropped == ()


def test_a_quote_that_changes_nothing_emits_no_index_event() -> None:
    v = priced_venue()
    quote_all(v, FAIR)
    assert of(v.quote(BTC, "okx", "30010"), IndexUpdated) == []


@pytest.mark.parametrize("factor", ["1.06", "1.5", "1000"])
def test_binance_policy_an_outlier_source_has_no_influence(factor: str) -> None:
    """An outlier (> 5% from the median) gets weight 0: the index is that of the other sources."""
    from decimal import Decimal

    v = priced_venue()
    quote_all(v, FAIR)
    events = v.quote(BTC, "bybit", str(Decimal("29990") * Decimal(factor)))
    update = of(events, IndexUpdated)[-1]
    assert update.index_ticks == 300_040  # (3 x 300,000 + 2 x 300,100) / 5, as if bybit were absent
    assert update.dropped == (DroppedSource(source="bybit", reason="OUTLIER"),)
    assert v.engine.marks[_market()] == 300_040


@pytest.mark.parametrize("factor", ["1.06", "1000"])
def test_capped_policy_clips_any_outlier_to_the_same_band_edge(factor: str) -> None:
    """Capped: a deviant is clipped to median x (1 + 5%), however far it is: 6% and 1000x move the
    index by the same bounded amount (its weight share x 5%)."""
    from decimal import Decimal

    v = priced_venue(config=priced_config(index={"policy": "capped"}))
    quote_all(v, FAIR)
    update = of(v.quote(BTC, "bybit", str(Decimal("30000") * Decimal(factor))), IndexUpdated)[-1]
    # median 300,100 (of 300,000, 300,100, deviant); band edge floor(300,100 x 1.05) = 315,105
    # (3 x 300,000 + 2 x 300,100 + 2 x 315,105) / 7 = 2,130,410 / 7 = 304,344.3 -> 304,344
    assert update.index_ticks == 304_344
    assert update.dropped == (DroppedSource(source="bybit", reason="CAPPED"),)


def test_two_outliers_fall_back_to_the_plain_median() -> None:
    v = priced_venue(
        config=priced_config(index={"sources": {"a": 1, "b": 1, "c": 1, "d": 1, "e": 5}, "min_sources": 3})
    )
    quote_all(v, {"a": "1000", "b": "1000.1", "c": "1000.2", "d": "2000", "e": "500"})
    assert v.engine.indexes[_market()] == 10_001  # median of five, the heavy e=500 ignored


def test_weighted_median_policy() -> None:
    v = priced_venue(config=priced_config(index={"policy": "weighted_median"}))
    quote_all(v, {"binance": "30000", "okx": "30100", "bybit": "29000"})
    # sorted 29,000 (2), 30,000 (3), 30,100 (2): cumulative 2, 5 >= 3.5 -> 30,000
    assert v.engine.indexes[_market()] == 300_000


# ---------------------------------------------------------------------------------------- staleness


def test_a_stale_source_drops_out_and_the_index_moves_to_the_fresh_ones() -> None:
    v = priced_venue()
    quote_all(v, FAIR)
    binance_ts = v.engine.pricing.markets[_market()].quotes["binance"].ts_ns
    v.now_ns = binance_ts + 5 * S
    v.quote(BTC, "okx", "30010")
    v.quote(BTC, "bybit", "29990")
    events = v.advance(to_ns=binance_ts + 10 * S + 1)
    update = of(events, IndexUpdated)[0]
    assert update.as_of_ns == binance_ts + 10 * S + 1  # stale from the nanosecond after 10 s
    assert update.index_ticks == 300_000  # (2 x 300,100 + 2 x 299,900) / 4
    assert update.dropped == (DroppedSource(source="binance", reason="STALE"),)
    assert MarketId(BTC) not in v.engine.index_stale


def test_below_quorum_the_index_and_mark_freeze_and_the_market_is_reduce_only_until_quorum_returns() -> None:
    v = priced_venue("alice", "bob")
    quote_all(v, FAIR)
    v.place("alice", BTC, "buy", "0.1", "30000")
    v.place("bob", BTC, "sell", "0.1", "30000")
    mark_before = v.engine.marks[_market()]
    last_quote = v.engine.pricing.markets[_market()].quotes["bybit"].ts_ns
    events = v.advance(60)
    went = of(events, IndexStaleChanged)
    assert len(went) == 1 and went[0].stale and went[0].fresh_sources == 1 and went[0].min_sources == 2
    assert went[0].index_ticks == v.engine.indexes[_market()]
    assert went[0].as_of_ns < last_quote + 10 * S + 2
    assert MarketId(BTC) in v.engine.index_stale and v.engine.reduce_only_mode(_market())
    assert code_of(v.place("alice", BTC, "buy", "0.1", "30000")) == RejectCode.MARKET_REDUCE_ONLY
    # a reduce-only order is still accepted
    assert not of(v.place("alice", BTC, "sell", "0.05", "30100", reduce_only=True), OrderRejected)
    v.advance(30)
    assert v.engine.marks[_market()] == mark_before  # frozen, even as the clock runs
    # a lone fresh quote, far away, moves nothing: still below quorum
    assert of(v.quote(BTC, "okx", "35000"), IndexStaleChanged) == []
    assert v.engine.indexes[_market()] == went[0].index_ticks
    assert v.engine.marks[_market()] == mark_before
    back = v.quote(BTC, "binance", "35000")
    recovered = of(back, IndexStaleChanged)
    assert len(recovered) == 1 and not recovered[0].stale and recovered[0].index_ticks == 350_000
    assert of(back, IndexUpdated)[0].index_ticks == 350_000
    assert MarketId(BTC) not in v.engine.index_stale and not v.engine.reduce_only_mode(_market())
    assert not of(v.place("alice", BTC, "buy", "0.1", "34000"), OrderRejected)


def test_a_stale_index_takes_no_premium_or_basis_samples() -> None:
    v = _worked_example()
    state = v.engine.pricing.markets[_market()]
    v.advance(60)
    assert state.premium_count == 12  # samples every 5 s
    assert len(state.basis) == 30  # one a second, in the 30 s window
    # let the quotes go stale (the worked example keeps them fresh for a day)
    v.advance(to_ns=v.now_ns + 86_400 * S)
    assert MarketId(BTC) in v.engine.index_stale
    count = state.premium_count
    v.advance(3_600)
    assert state.premium_count == count
    assert state.basis == []


# ---------------------------------------------------------------------------------------- mark


def test_mark_without_trade_or_book_is_the_index() -> None:
    v = priced_venue()
    events = quote_all(v, FAIR)
    update = of(events, MarkPriceUpdated)[-1]
    assert (update.index_ticks, update.mark_ticks) == (300_000, 300_000)
    assert (update.funding_basis_ticks, update.moving_basis_ticks, update.last_trade_ticks) == (
        300_000,
        300_000,
        None,
    )


def test_mark_is_the_median_of_funding_basis_moving_basis_and_last_trade() -> None:
    """Worked example (docs/mechanics.md, mark price).

    index 300,000; book 300,300 / 300,500 -> basis = mid - index = 400 every second;
    price1 = 300,000 x (1 + 0 x ...) = 300,000 (no funding yet); price2 = 300,000 + 400 = 300,400;
    last trade 300,400; mark = median(300,000, 300,400, 300,400) = 300,400.
    """
    v = _worked_example()
    events = v.advance(1)
    update = of(events, MarkPriceUpdated)[-1]
    assert (update.funding_basis_ticks, update.moving_basis_ticks, update.last_trade_ticks) == (
        300_000,
        300_400,
        300_400,
    )
    assert update.mark_ticks == 300_400
    view = v.engine.pricing.view(_market())
    assert (view.index_ticks, view.mark_ticks, view.funding_basis_ticks, view.moving_basis_ticks) == (
        300_000,
        300_400,
        300_000,
        300_400,
    )


def test_moving_basis_averages_the_samples_of_the_window_only() -> None:
    v = _worked_example()
    v.advance(40)  # 40 samples of +400, 30 kept
    state = v.engine.pricing.markets[_market()]
    assert len(state.basis) == 30 and {sample for _, sample in state.basis} == {800}  # half ticks
    # Bob lifts his bid by 20.0: mid 300,400, basis 400 -> 500 ... (300,500 + 300,500) / 2 - 300,000 = 500
    v.cancel_all("bob", BTC)
    v.place("bob", BTC, "buy", "1", "30045")
    v.place("bob", BTC, "sell", "1", "30055")
    v.advance(10)  # 10 samples of 500, 20 of 400 in the window: mean 433.3 -> 433
    assert v.engine.pricing.view(_market()).moving_basis_ticks == 300_433
    v.advance(30)
    assert v.engine.pricing.view(_market()).moving_basis_ticks == 300_500


def test_a_one_sided_book_samples_a_zero_basis_and_price2_falls_back_to_the_index() -> None:
    v = priced_venue("carol", "dave", config=priced_config(index=LONG_LIVED))
    quote_all(v, FAIR)
    v.place("carol", BTC, "buy", "1", "30040")  # bids only
    v.advance(60)
    view = v.engine.pricing.view(_market())
    samples = v.engine.pricing.markets[_market()].basis
    assert len(samples) == 30 and {sample for _, sample in samples} == {0}  # the 30 s window, all zero
    assert view.moving_basis_ticks == 300_000
    # no trade yet: the mark is the median (mean) of two equal prices
    assert view.mark_ticks == 300_000


def test_without_a_trade_the_mark_is_the_mean_of_price1_and_price2() -> None:
    v = priced_venue("bob", config=priced_config(index=LONG_LIVED))
    quote_all(v, FAIR)
    v.place("bob", BTC, "buy", "1", "30030")
    v.place("bob", BTC, "sell", "1", "30051")
    v.advance(1)  # basis (300,300 + 300,510) / 2 - 300,000 = 405; price2 = 300,405; price1 = 300,000
    view = v.engine.pricing.view(_market())
    assert (view.funding_basis_ticks, view.moving_basis_ticks, view.last_trade_ticks) == (
        300_000,
        300_405,
        None,
    )
    assert view.mark_ticks == 300_203  # (300,000 + 300,405) / 2 = 300,202.5, half up


def test_ema_policy_smooths_the_basis_and_converges_to_a_constant_basis() -> None:
    v = priced_venue(
        "carol", "dave", "bob", config=priced_config(risk={"mark_policy": "ema"}, index=LONG_LIVED)
    )
    quote_all(v, FAIR)
    v.place("bob", BTC, "buy", "1", "30030")
    v.place("bob", BTC, "sell", "1", "30050")
    v.advance(1)
    # one sample of 400: the EMA is that sample
    assert v.engine.pricing.view(_market()).moving_basis_ticks == 300_400
    v.cancel_all("bob", BTC)
    v.place("bob", BTC, "buy", "1", "29990")
    v.place("bob", BTC, "sell", "1", "30010")
    # basis 0 from now on; after 150 s (one time constant) the EMA of the basis is
    # 400 x (1 - 1/e)-ish weight on the old value... computed exactly in integers:
    v.advance(150)
    ema = v.engine.pricing.view(_market()).moving_basis_ticks
    assert ema is not None and 300_000 < ema < 300_400
    # float reference: num/den after one sample of 400 then 150 of 0
    import math

    d = math.exp(-1 / 150)
    reference = 400 * d**150 / (d**150 + sum(d**k for k in range(150)))
    assert ema == 300_000 + round(reference)
    v.advance(6_000)  # 40 time constants later only the new basis counts
    assert v.engine.pricing.view(_market()).moving_basis_ticks == 300_000


# ---------------------------------------------------------------------------------------- funding


def test_funding_worked_example_end_to_end() -> None:
    """Worked example (docs/mechanics.md, funding).

    impact notional 200 x 125 = 25,000 USDT: impact bid 30,030.0, impact ask 30,050.0 (one level
    each); premium = (300,300 - 300,000) / 300,000 = 0.1% = 100,000 e8 in every sample; 5,760
    samples by 08:00 (every 5 s); average 0.1%; rate = 0.1% + clamp(0.01% - 0.1%, +/-0.05%) = 0.05%;
    mark at 08:00 = 300,400 (30,040.0); Carol (long 1 BTC) pays 1 x 30,040 x 0.05% = 15.02 USDT to Dave.
    """
    v = _worked_example()
    view = v.engine.pricing.view(_market())
    assert view.next_funding_ns == boundary(1)
    assert view.predicted_funding_rate_e8 == 10_000  # no samples yet: the interest rate
    v.advance(to_ns=boundary(1) - 1)
    view = v.engine.pricing.view(_market())
    assert (view.premium_samples, view.average_premium_e8, view.last_premium_e8) == (5_759, 100_000, 100_000)
    assert view.predicted_funding_rate_e8 == 50_000
    events = v.advance(to_ns=boundary(1))
    paid = of(events, FundingPaid)
    assert [(e.account_id, e.qty_lots, e.mark_ticks, e.rate_e8, e.amount_atoms) for e in paid] == [
        (v.names["carol"], 1_000, 300_400, 50_000, -1_502_000_000),
        (v.names["dave"], -1_000, 300_400, 50_000, 1_502_000_000),
    ]
    (settled,) = of(events, FundingSettled)
    assert (settled.rate_e8, settled.average_premium_e8, settled.premium_samples) == (50_000, 100_000, 5_760)
    assert (settled.paid_atoms, settled.received_atoms, settled.residue_atoms) == (
        1_502_000_000,
        1_502_000_000,
        0,
    )
    assert settled.next_funding_ns == boundary(2) and settled.funding_time_ns == boundary(1)
    settlement_balances(events)
    view = v.engine.pricing.view(_market())
    assert (view.last_funding_rate_e8, view.next_funding_ns, view.premium_samples) == (50_000, boundary(2), 0)
    # price1 now carries the last rate over the whole next interval: 300,000 x (1 + 0.05%) = 300,150
    assert view.funding_basis_ticks == 300_150
    v.advance(4 * 3_600)  # half way: 300,000 x (1 + 0.05% x 4/8) = 300,075
    assert v.engine.pricing.view(_market()).funding_basis_ticks == 300_075


def test_funding_is_settled_before_a_command_stamped_after_the_boundary() -> None:
    """No AdvanceClock at the boundary: the first command after it settles first, on the old positions."""
    v = _worked_example()
    v.advance(to_ns=boundary(1) - 10 * S)
    v.now_ns = boundary(1) + 5 * S
    events = v.place("bob", BTC, "sell", "1", "30030")  # takes his own bid: STP NONE, trades with himself
    assert type(events[0]).__name__ == "FundingPaid"
    settled = of(events, FundingSettled)[0]
    assert settled.positions == 2 and settled.funding_time_ns == boundary(1)


def test_a_negative_rate_makes_shorts_pay() -> None:
    v = priced_venue("carol", "dave", "bob", config=priced_config(index=LONG_LIVED))
    quote_all(v, FAIR)
    v.place("carol", BTC, "buy", "1", "29970")
    v.place("dave", BTC, "sell", "1", "29970")
    v.place("bob", BTC, "buy", "1", "29950")
    v.place("bob", BTC, "sell", "1", "29970")
    # premium = -(300,000 - 299,700) / 300,000 = -0.1%; rate = -0.1% + clamp(0.11%, +/-0.05%) = -0.05%
    events = v.advance(to_ns=boundary(1))
    paid = {e.account_id: e.amount_atoms for e in of(events, FundingPaid)}
    mark = of(events, FundingSettled)[0].mark_ticks
    assert of(events, FundingSettled)[0].rate_e8 == -50_000
    assert mark is not None
    assert paid[v.names["dave"]] == -(1_000 * mark * 10_000 * 50_000 // 10**8)
    assert paid[v.names["carol"]] == -paid[v.names["dave"]]


def test_funding_of_an_isolated_position_moves_its_isolated_margin_only() -> None:
    from perpx.engine.commands import MarginMode, SetMarginMode

    v = _worked_example()
    # a fresh isolated long for Erin, against Dave
    v.account("erin", "10000")
    v.apply(
        SetMarginMode(ts_ns=v.tick(), account_id=v.names["erin"], market=_market(), mode=MarginMode.ISOLATED)
    )
    v.place("dave", BTC, "sell", "0.5", "30040")
    v.place("erin", BTC, "buy", "0.5", "30040")
    erin = v.engine.position(v.names["erin"], _market())
    wallet = v.engine.accounts[v.names["erin"]].balance(v.engine.asset)
    isolated = erin.isolated_margin_atoms
    events = v.advance(to_ns=boundary(1))
    erin_paid = [e for e in of(events, FundingPaid) if e.account_id == v.names["erin"]]
    assert (
        len(erin_paid) == 1 and erin_paid[0].isolated and erin_paid[0].amount_atoms == -751_000_000
    )  # 7.51 USDT
    assert erin.isolated_margin_atoms == isolated - 751_000_000
    assert v.engine.accounts[v.names["erin"]].balance(v.engine.asset) == wallet
    settlement_balances(events)


def test_rounding_payers_up_receivers_toward_zero_residue_to_the_insurance_fund() -> None:
    """A rate of 0.012345% on 0.07 BTC at 30,000.3: 0.07 x 30,000.3 x 0.00012345 x 10**8 =
    25,924,759.245 atoms: the long pays 25,924,760 (up); the shorts of 0.03 and 0.04 receive
    11,110,611.105 -> 11,110,611 and 14,814,148.14 -> 14,814,148 (toward zero), 25,924,759 in all;
    the residue, 1 atom, goes to the insurance fund."""
    v = priced_venue(
        "long",
        "short1",
        "short2",
        config=priced_config(risk={"interest_rate": "0.00012345"}, index=LONG_LIVED),
    )
    quote_all(v, {"binance": "30000.3", "okx": "30000.3", "bybit": "30000.3"})
    v.place("short1", BTC, "sell", "0.03", "30000.3")
    v.place("short2", BTC, "sell", "0.04", "30000.3")
    v.place("long", BTC, "buy", "0.07", "30000.3")
    insurance = v.engine.insurance_atoms.get(v.engine.asset, 0)
    events = v.advance(to_ns=boundary(1))
    (settled,) = of(events, FundingSettled)
    assert settled.rate_e8 == 12_345 and settled.mark_ticks == 300_003
    amounts = {e.account_id: e.amount_atoms for e in of(events, FundingPaid)}
    assert amounts == {
        v.names["long"]: -25_924_760,
        v.names["short1"]: 11_110_611,
        v.names["short2"]: 14_814_148,
    }
    assert (settled.paid_atoms, settled.received_atoms, settled.residue_atoms) == (25_924_760, 25_924_759, 1)
    assert v.engine.insurance_atoms[v.engine.asset] == insurance + 1
    settlement_balances(events)


def test_funding_rate_scales_with_the_interval_and_is_capped() -> None:
    config = priced_config(
        risk={"funding_interval_hours": 4, "funding_cap": "0.0002", "funding_floor": "-0.0002"},
        index=LONG_LIVED,
    )
    v = priced_venue("carol", "dave", "bob", config=config)
    quote_all(v, FAIR)
    v.place("carol", BTC, "buy", "1", "30040")
    v.place("dave", BTC, "sell", "1", "30040")
    v.place("bob", BTC, "buy", "1", "30030")
    v.place("bob", BTC, "sell", "1", "30050")
    events = v.advance(to_ns=boundary(1, 4))
    # 8-h rate 0.05% scaled to 4 h: 0.025%, then capped at 0.02%
    assert of(events, FundingSettled)[0].rate_e8 == 20_000
    assert of(events, FundingSettled)[0].premium_samples == 2_880


def test_a_clock_jump_over_several_boundaries_settles_each_in_order() -> None:
    v = _worked_example()
    events = v.advance(to_ns=boundary(3) + 1)
    settled = of(events, FundingSettled)
    assert [e.funding_time_ns for e in settled] == [boundary(1), boundary(2), boundary(3)]
    assert [e.rate_e8 for e in settled] == [50_000, 50_000, 50_000]
    assert [e.premium_samples for e in settled] == [5_760, 5_760, 5_760]
    # the mark at each boundary: price1 = index at the boundary itself, so 300,400 each time
    assert [e.mark_ticks for e in settled] == [300_400, 300_400, 300_400]
    assert len(of(events, FundingPaid)) == 6
    assert isinstance(events[-1], ClockAdvanced)
    settlement_balances(events)


def test_three_settlements_move_three_payments() -> None:
    v = _worked_example()
    asset = v.engine.asset
    carol, dave = (v.engine.accounts[v.names[n]] for n in ("carol", "dave"))
    before = carol.balance(asset), dave.balance(asset)
    v.advance(to_ns=boundary(3))
    assert carol.balance(asset) == before[0] - 3 * 1_502_000_000
    assert dave.balance(asset) == before[1] + 3 * 1_502_000_000


def test_one_jump_and_many_small_steps_reach_the_same_state() -> None:
    jump = _worked_example()
    steps = _worked_example()
    jump.advance(to_ns=boundary(2) + 17 * S)
    while steps.now_ns < boundary(2) + 17 * S:
        steps.advance(to_ns=min(steps.now_ns + 997 * S, boundary(2) + 17 * S))
    assert state_hash(jump.engine) == state_hash(steps.engine)


def test_funding_settles_at_utc_multiples_of_the_interval() -> None:
    config = priced_config(risk={"funding_interval_hours": 1}, index=LONG_LIVED)
    v = Venue(config)
    v.now_ns = START_NS + 37 * 60 * S  # 00:37
    quote_all(v, FAIR)
    events = v.advance(to_ns=START_NS + 3 * HOUR)
    assert [e.funding_time_ns for e in of(events, FundingSettled)] == [
        START_NS + HOUR,
        START_NS + 2 * HOUR,
        START_NS + 3 * HOUR,
    ]


def test_a_settled_market_pays_no_funding() -> None:
    from perpx.engine.commands import MarketMode, SetMarketMode

    v = _worked_example()
    v.apply(
        SetMarketMode(ts_ns=v.tick(), market=_market(), mode=MarketMode.SETTLED, settle_price_ticks=300_000)
    )
    events = v.advance(to_ns=boundary(1))
    assert of(events, FundingSettled) == [] and of(events, FundingPaid) == []


# ---------------------------------------------------------------------------------------- state


def test_snapshot_round_trip_mid_interval_behaves_identically() -> None:
    v = _worked_example()
    v.advance(3 * 3_600 + 7)
    v.quote(BTC, "okx", "30020")
    data = snapshot(v.engine)
    restored = restore(v.config, data)
    assert state_hash(restored) == state_hash(v.engine)
    assert snapshot(restored) == data
    assert restored.pricing.view(_market()) == v.engine.pricing.view(_market())
    later = [
        SubmitSpotQuote(ts_ns=v.now_ns + 2 * S, market=_market(), source="bybit", price_ticks=299_950),
        AdvanceClock(ts_ns=v.now_ns + 41 * S),
        SubmitSpotQuote(ts_ns=v.now_ns + 3 * HOUR, market=_market(), source="binance", price_ticks=300_020),
        AdvanceClock(ts_ns=boundary(2) + 3 * S),
    ]
    for command in later:
        assert v.engine.apply(command) == restored.apply(command)
        assert state_hash(restored) == state_hash(v.engine)


def test_pricing_state_is_in_the_hash() -> None:
    a = _worked_example()
    b = _worked_example()
    assert state_hash(a.engine) == state_hash(b.engine)
    a.engine.pricing.markets[_market()].premium_num += 1
    assert state_hash(a.engine) != state_hash(b.engine)


def test_replaying_the_commands_gives_the_same_events_and_hash() -> None:
    v = _worked_example()
    v.advance(to_ns=boundary(1) + 5 * S)
    v.quote(BTC, "bybit", "40000")
    v.advance(to_ns=boundary(2))
    replay = Venue(v.config)
    for command in v.journal:
        replay.apply(command)
    assert state_hash(replay.engine) == state_hash(v.engine)


# ---------------------------------------------------------------------------------------- cost


class _CountingDict(dict[Any, Any]):
    """A dict that counts how often it is iterated."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.iterations = 0

    def __iter__(self) -> Iterator[Any]:
        self.iterations += 1
        return super().__iter__()


def test_only_a_funding_boundary_visits_the_positions_of_a_market() -> None:
    v = _worked_example()
    counting = _CountingDict(v.engine.market_positions[_market()])
    v.engine.market_positions[_market()] = counting
    v.advance(3_600)
    v.quote(BTC, "okx", "30011")
    v.advance(3_600)
    assert counting.iterations == 0
    v.advance(to_ns=boundary(1))
    assert counting.iterations == 1


def test_a_venue_without_index_sources_has_no_pricing_work() -> None:
    from perpx.engine.pricing.stage import NEVER_NS

    v = Venue()
    v.mark(BTC, "30000")
    assert v.engine.pricing.due_ns == NEVER_NS
    view = v.engine.pricing.view(_market())
    assert (view.mark_ticks, view.index_ticks, view.next_funding_ns, view.predicted_funding_rate_e8) == (
        300_000,
        300_000,
        None,
        None,
    )
    assert of(v.advance(30 * 86_400), FundingSettled) == []


def test_new_commands_and_events_survive_the_journal_encoding() -> None:
    import msgspec

    from perpx.engine.commands import AnyCommand
    from perpx.engine.events import AnyEvent

    v = _worked_example()
    events = v.advance(to_ns=boundary(1) + 30 * S)
    events += v.quote(BTC, "bybit", "45000")
    command = v.journal[-1]
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(command), type=AnyCommand) == command
    for kind in (IndexUpdated, MarkPriceUpdated, FundingPaid, FundingSettled):
        assert of(events, kind)
    for event in events:
        assert msgspec.msgpack.decode(msgspec.msgpack.encode(event), type=AnyEvent) == event


def test_thirty_days_in_one_jump_on_the_example_venue() -> None:
    """Both markets of examples/venue.toml (BTC 8 h binance mark, ETH 4 h EMA mark, capped index)."""
    v = Venue(load_config(EXAMPLE))
    for name in ("a", "b", "c"):
        v.account(name, "1000000")
    quote_all(v, FAIR)
    quote_all(v, {"binance": "2000", "okx": "2000.5", "bybit": "1999.5", "coinbase": "2000"}, ETH)
    v.place("a", ETH, "buy", "1", "2001")
    v.place("b", ETH, "sell", "1", "2001")
    v.place("c", ETH, "buy", "1", "2000.5")
    v.place("c", ETH, "sell", "1", "2001.5")
    events = v.advance(30 * 86_400)
    settled = of(events, FundingSettled)
    assert len([e for e in settled if e.market == BTC]) == 30 * 3
    assert len([e for e in settled if e.market == ETH]) == 30 * 6
    assert [e.funding_time_ns for e in settled if e.market == ETH] == [
        START_NS + k * 4 * HOUR for k in range(1, 181)
    ]
    settlement_balances(events)
    # the quotes went stale 10 s in: both markets froze, and funding ran on the interest rate alone
    assert {MarketId(BTC), MarketId(ETH)} <= set(v.engine.index_stale)
    assert {e.rate_e8 for e in settled if e.market == ETH and e.funding_time_ns > START_NS + 4 * HOUR} == {
        5_000
    }
