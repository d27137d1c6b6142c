"""Liquidation, insurance fund and ADL on the engine: rule by rule, with hand-checked numbers.

Default venue: BTCUSDT taker fee 0.05%, maker 0.02%, brackets 0.4% / 0.5% (cum 50) / 1% (cum
1,300) / 2.5% (cum 46,300), liquidation fee 1.25% unless a test sets it.
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from perpx.engine.commands import AdjustIsolatedMargin, MarketMode, SetMarketMode
from perpx.engine.events import (
    AdlStep,
    CancelStep,
    DeficitStep,
    FeeStep,
    InsuranceFundChanged,
    LiquidationExplained,
    MarginKeptStep,
    OrderCanceled,
    OrderFilled,
    OrderStep,
    PositionTransferred,
    TakeoverStep,
    TransferReason,
)
from perpx.engine.liquidation import INSURANCE_ACCOUNT, adl
from perpx.engine.values import RATE_SCALE, MarketId
from perpx.testkit import Venue

from .helpers import (
    BTC,
    USDT,
    isolate,
    liq_config,
    make_venue,
    qty,
    records,
    seed_fund,
    steps,
    trade,
    wallet,
)

MARKET = MarketId(BTC)


def long_one_btc(isolated: bool = False) -> Venue:
    """``a`` long 1 BTC at 30,000 with 2,000 USDT (cross) or 1,500 isolated; ``s`` short; ``mm`` quotes.

    Isolated: the fill moves 1,500 of initial margin in and pays its 15 fee from it; 15 more are
    added, so the position holds 1,500.
    """
    v = make_venue(mm="1000000", a="2000", s="100000")
    if isolated:
        isolate(v, "a")
        v.deposit("a", "100")
    trade(v, "a", "s", "1", "30000")
    if isolated:
        v.apply(
            AdjustIsolatedMargin(
                ts_ns=v.tick(), account_id=v.names["a"], market=MARKET, delta_atoms=v.atoms("15")
            )
        )
    return v


# ------------------------------------------------------------------ cross: book, fee, takeover


def test_a_cross_long_gapped_past_bankruptcy_fills_the_book_then_the_fund_takes_over() -> None:
    v = long_one_btc()
    assert wallet(v, "a") == 1_985 * USDT  # 2,000 - 15 taker fee
    own = v.place("a", BTC, "buy", "0.01", "29000")[0].order_id  # type: ignore[attr-defined]
    v.place("mm", BTC, "buy", "0.3", "28500")
    events = v.mark(BTC, "28000")  # margin balance 1,985 - 2,000 = -15: beyond bankruptcy
    (record,) = records(events)
    assert record.outcome == "CLOSED" and record.scope == "CROSS" and record.market == MARKET
    # inputs
    assert record.before.margin_balance_atoms == -15 * USDT
    assert record.before.maintenance_atoms == 112 * USDT  # 28,000 x 0.4%
    assert record.before.ratio_e8 == 2**62
    assert record.liquidation_price_ticks == 281_276  # (30,000 - 1,985) / 0.996 = 28,127.51 -> 28,127.6
    assert record.bankruptcy_value_atoms == 28_015 * USDT  # 30,000 - 1,985
    # 1. the account's orders are cancelled first
    assert steps(record, CancelStep)[0].order_ids == (own,)
    # 2. an IOC limited at the bankruptcy price: the book takes 0.3 at 28,500, no trading fee
    (order,) = steps(record, OrderStep)
    assert (order.limit_ticks, order.filled_lots, order.expired_lots, order.partial) == (
        280_150,
        300,
        700,
        False,
    )
    liquidation_fill = next(e for e in events if isinstance(e, OrderFilled) and e.order_id == order.order_id)
    assert liquidation_fill.fee_atoms == 0
    # 3. clearance fee: 1.25% of 28,000 = 350, capped by what is left above bankruptcy:
    #    0.3 x (28,500 - 28,015) = 145.5
    (fee,) = steps(record, FeeStep)
    assert (fee.due_atoms, fee.surplus_atoms, fee.fee_atoms) == (350 * USDT, 14_550_000_000, 14_550_000_000)
    # 4. the fund (145.5 of cash now) takes the 0.7 left at the bankruptcy price: 0.7 x 28,015 = 19,610.5,
    #    worth 19,600 on the mark: it accepts the 10.5 loss
    (takeover,) = steps(record, TakeoverStep)
    assert (takeover.qty_lots, takeover.value_atoms, takeover.loss_atoms) == (
        700,
        19_610_50_000_000,
        10_50_000_000,
    )
    assert not takeover.forced and not steps(record, AdlStep)
    # the account ends at exactly zero; the fund holds the position, long = short
    assert wallet(v, "a") == 0 and qty(v, "a") == 0
    fund = v.engine.liquidation.insurance_fund()
    assert fund.positions == {MARKET: 700}
    assert fund.cash_atoms == 14_550_000_000 and fund.equity_atoms == 135 * USDT  # 145.5 - 10.5
    assert [type(e).__name__ for e in events if not isinstance(e, LiquidationExplained)] == [
        "MarkPriceSet",
        "OrderCanceled",
        "OrderAccepted",
        "OrderFilled",
        "OrderFilled",
        "OrderExpired",
        "InsuranceFundChanged",
        "PositionTransferred",
        "PositionTransferred",
    ]


def test_the_maker_against_a_liquidation_pays_its_usual_fee() -> None:
    v = long_one_btc()
    v.place("mm", BTC, "buy", "0.3", "28500")
    events = v.mark(BTC, "28000")
    maker = next(e for e in events if isinstance(e, OrderFilled) and e.is_maker)
    assert maker.fee_atoms == 171_000_000  # 0.02% of 0.3 x 28,500 = 1.71 USDT


def test_no_liquidation_while_the_ratio_is_below_100_percent() -> None:
    v = long_one_btc()
    lp = v.engine.liquidation.liquidation_price(v.names["a"], MARKET)
    assert lp == 281_276
    assert records(v.mark(BTC, "28127.6")) == []  # the displayed price: ratio 99.99%
    assert v.engine.risk(v.names["a"]).margin_ratio_e8 < RATE_SCALE
    assert records(v.mark(BTC, "28127.5"))[0].outcome == "CLOSED"


# ------------------------------------------------------------------ isolated, empty fund: ADL


def test_an_isolated_long_with_an_empty_fund_is_auto_deleveraged() -> None:
    v = long_one_btc(isolated=True)
    assert v.engine.position(v.names["a"], MARKET).isolated_margin_atoms == 1_500 * USDT
    assert wallet(v, "a") == 585 * USDT  # 2,100 - 1,500 moved - 15 fee
    v.place("mm", BTC, "buy", "0.3", "28500")
    events = v.mark(BTC, "28000")
    (record,) = records(events)
    assert record.scope == BTC and record.bankruptcy_value_atoms == 28_500 * USDT  # 30,000 - 1,500
    (order,) = steps(record, OrderStep)
    assert order.filled_lots == 300 and order.limit_ticks == 285_000
    (fee,) = steps(record, FeeStep)
    assert fee.surplus_atoms == 0 and fee.fee_atoms == 0  # filled exactly at bankruptcy: nothing left
    (deleveraged,) = steps(record, AdlStep)
    assert deleveraged.qty_lots == 700 and deleveraged.value_atoms == 19_950 * USDT  # 0.7 x 28,500
    assert deleveraged.shortfall_atoms == 350 * USDT  # 0.7 x (28,500 - 28,000): borne by the short
    (leg,) = deleveraged.legs
    assert (leg.account_id, leg.rank, leg.quantile, leg.qty_lots) == (v.names["s"], 1, 5, 700)
    assert leg.realized_pnl_atoms == 1_050 * USDT  # the short closes 0.7 at 28,500 (sold at 30,000)
    assert qty(v, "s") == -300 and qty(v, "a") == 0
    # the isolated loss stayed in the position: the cross wallet is untouched
    assert wallet(v, "a") == 585 * USDT
    transfers = [e for e in events if isinstance(e, PositionTransferred)]
    assert {(e.account_id, e.reason, e.side.name) for e in transfers} == {
        (v.names["a"], TransferReason.ADL, "SELL"),
        (v.names["s"], TransferReason.ADL, "BUY"),
    }


# ------------------------------------------------------------------ partial liquidation


def partial_venue(bid: str, isolated: bool = False) -> Venue:
    """``p`` long 5 BTC at 30,000 with 45,925 USDT of margin, walked down to 21,000; a bid below."""
    v = make_venue(liq_config(liquidation_fee="0.002"), mm="1000000", p="50000", s="1000000")
    if isolated:
        isolate(v, "p")
    trade(v, "p", "s", "5", "30000")  # fee 75
    if isolated:
        extra = v.atoms("38500")  # isolated margin 7,500 - 75 fee + 38,500 = 45,925
        v.apply(
            AdjustIsolatedMargin(ts_ns=v.tick(), account_id=v.names["p"], market=MARKET, delta_atoms=extra)
        )
    else:
        v.withdraw("p", "4000")  # cross wallet 45,925
    for mark in ("28500", "27100", "25800", "24500", "23300", "22100", "21000"):
        assert records(v.mark(BTC, mark)) == []
    v.place("mm", BTC, "buy", "2", bid)
    return v


@pytest.mark.parametrize("isolated", [False, True])
def test_partial_liquidation_closes_only_what_brings_the_ratio_back_under_100_percent(isolated: bool) -> None:
    v = partial_venue("20890", isolated)
    # at 20,900: margin balance 45,925 - 5 x 9,100 = 425; MM = 104,500 x 0.5% - 50 = 472.5 (111.2%)
    (record,) = records(v.mark(BTC, "20900"))
    assert (
        record.before.margin_balance_atoms == 425 * USDT and record.before.maintenance_atoms == 47_250_000_000
    )
    # each BTC sold frees 0.5% x 20,900 = 104.5 of MM, costs 0.2% x 20,900 = 41.8 of fee and 10 of
    # slippage (the bid is at 20,890): 52.7 a BTC against a gap of 47.5 -> 0.9013 BTC -> 902 lots
    assert record.outcome == "PARTIAL" and record.partial_plan_lots == 902
    (order,) = steps(record, OrderStep)
    assert order.partial and order.filled_lots == 902 and order.fills[0].price_ticks == 208_900
    (fee,) = steps(record, FeeStep)
    assert fee.fee_atoms == 3_770_360_000  # 0.902 x 20,900 x 0.2%
    assert record.after.ratio_e8 == 99_990_642  # just under 100%: no more than needed
    assert qty(v, "p") == 4_098
    if isolated:
        (kept,) = steps(record, MarginKeptStep)
        # the closed lots' share of the margin (45,925 x 0.902 / 5 = 8,284.87) less their loss
        # (0.902 x 9,110 = 8,217.22): what the fill released, kept in
        assert kept.amount_atoms == 6_765_000_000
        assert wallet(v, "p") == 4_000 * USDT  # the cross wallet never moved
    else:
        assert not steps(record, MarginKeptStep)


def test_no_partial_when_the_book_is_too_far_below_the_mark() -> None:
    # at 20,850 the slippage (50 a BTC) leaves 12.7 a BTC: 3.7 BTC would be needed, the bid has 2
    v = partial_venue("20850")
    (record,) = records(v.mark(BTC, "20900"))
    assert record.partial_plan_lots == 0 and record.outcome == "CLOSED"
    (order,) = steps(record, OrderStep)
    assert not order.partial and order.filled_lots == 2_000
    assert steps(record, TakeoverStep)[0].qty_lots == 3_000


def test_no_partial_where_the_clearance_fee_exceeds_the_maintenance_rate() -> None:
    # default fee 1.25% > tier 2's 0.5%: closing lots at the mark would raise the ratio
    v = make_venue(mm="1000000", p="50000", s="1000000")
    trade(v, "p", "s", "5", "30000")
    v.withdraw("p", "4000")
    for mark in ("28500", "27100", "25800", "24500", "23300", "22100", "21000"):
        v.mark(BTC, mark)
    v.place("mm", BTC, "buy", "10", "20900")
    (record,) = records(v.mark(BTC, "20900"))
    assert record.partial_plan_lots == 0 and record.outcome == "CLOSED"


# ------------------------------------------------------------------ ADL queue


def adl_venue(ranking: str = "binance") -> Venue:
    """``l`` long 1 BTC at 30,000 (wallet 3,000); five shorts of different entries and leverage."""
    v = make_venue(
        liq_config(adl_ranking=ranking),
        mm="1000000",
        l="3000",
        s1="100000",
        s2="4000",
        s3="20000",
        s4="8000",
        s5="50000",
    )
    trade(v, "l", "s1", "1", "30000")
    v.mark(BTC, "31000")
    trade(v, "mm", "s2", "0.8", "31000")
    trade(v, "mm", "s3", "0.5", "31000")
    v.mark(BTC, "30000")
    trade(v, "mm", "s4", "1", "30000")
    trade(v, "mm", "s5", "0.2", "30000")
    v.place("s2", BTC, "sell", "0.1", "30500")  # an open order of a counterparty
    return v


def test_adl_closes_the_queue_in_binance_order_exactly_as_much_as_needed() -> None:
    v = adl_venue()
    events = v.mark(BTC, "26000")  # l: 2,985 - 4,000 < 0; no bid, no fund: all of it is deleveraged
    (record,) = records(events)
    (deleveraged,) = steps(record, AdlStep)
    names = {v.names[n]: n for n in ("s1", "s2", "s3", "s4", "s5")}
    # PnL% x margin ratio at 26,000, highest first: s2 (~1.04%) > s4 (~0.43%) > s3 > s1 > s5
    assert [names[leg.account_id] for leg in deleveraged.legs] == ["s2", "s4"]
    assert [leg.qty_lots for leg in deleveraged.legs] == [800, 200]  # 1 BTC: all of s2, 0.2 of s4
    assert [leg.quantile for leg in deleveraged.legs] == [5, 4]
    assert deleveraged.queue_size == 5 and deleveraged.ranking == "binance"
    # at the bankruptcy price 27,015 (30,000 - 2,985), split exactly
    assert sum(leg.value_atoms for leg in deleveraged.legs) == deleveraged.value_atoms == 27_015 * USDT
    assert deleveraged.shortfall_atoms == 1_015 * USDT  # (27,015 - 26,000) x 1: the whole deficit
    assert qty(v, "s2") == 0 and qty(v, "s4") == -800 and qty(v, "s3") == -500
    # the counterparty's open orders were cancelled; ADL pays no fee
    assert deleveraged.legs[0].canceled_order_ids and any(isinstance(e, OrderCanceled) for e in events)
    assert not [e for e in events if isinstance(e, InsuranceFundChanged) and e.amount_atoms]


def test_adl_quantiles_are_five_buckets_of_the_queue() -> None:
    v = adl_venue()
    v.mark(BTC, "27100")  # everyone short is in profit, nobody liquidated yet
    stage = v.engine.liquidation
    lights = {n: stage.adl_quantile(v.names[n], MARKET) for n in ("s1", "s2", "s3", "s4", "s5")}
    assert lights == {"s2": 5, "s4": 4, "s3": 3, "s1": 2, "s5": 1}
    assert stage.adl_quantile(v.names["mm"], MARKET) in (1, 2, 3, 4, 5)  # the long side has its own queue
    assert stage.adl_quantile(v.names["mm"], MarketId("ETHUSDT")) == 0  # no position


def test_profit_leverage_ranking_is_a_per_market_option() -> None:
    # D: short 10 BTC (tier 3) with 100,000; E: short 1 BTC with 9,000; l bankrupt at 26,000.
    # binance:  D (40,000/99,940) x (1,300/139,940) = 0.372%  > E (4,000/8,994) x (104/12,994) = 0.356%
    # profit_leverage: D 13.3% x 260,000/139,940 = 0.248 < E 13.3% x 26,000/12,994 = 0.267
    first: dict[str, str] = {}
    for ranking in ("binance", "profit_leverage"):
        v = make_venue(liq_config(adl_ranking=ranking), mm="1000000", l="3000", d="100000", e="9000")
        trade(v, "mm", "d", "10", "30000")
        trade(v, "l", "e", "1", "30000")
        scores = {
            n: adl.score(
                v.engine, v.engine.accounts[v.names[n]], v.engine.position(v.names[n], MARKET), ranking
            )
            for n in ("d", "e")
        }
        (record,) = records(v.mark(BTC, "26000"))
        (leg,) = steps(record, AdlStep)[0].legs
        first[ranking] = "d" if leg.account_id == v.names["d"] else "e"
        assert all(isinstance(s, Fraction) for s in scores.values())
    assert first == {"binance": "d", "profit_leverage": "e"}


# ------------------------------------------------------------------ paused markets


def test_a_halted_market_pauses_liquidations_until_it_resumes() -> None:
    v = long_one_btc()
    v.apply(SetMarketMode(ts_ns=v.tick(), market=MARKET, mode=MarketMode.HALTED))
    assert records(v.mark(BTC, "27000")) == []
    assert qty(v, "a") == 1_000  # at 27,000 it is bankrupt, but the market is halted
    assert v.engine.liquidation.due_by_full_scan() == []  # a paused scope is not due
    resumed = v.apply(SetMarketMode(ts_ns=v.tick(), market=MARKET, mode=MarketMode.NORMAL))
    assert records(resumed)[0].outcome == "CLOSED" and qty(v, "a") == 0


def test_a_reduce_only_market_still_liquidates() -> None:
    v = long_one_btc()
    v.apply(SetMarketMode(ts_ns=v.tick(), market=MARKET, mode=MarketMode.REDUCE_ONLY))
    assert records(v.mark(BTC, "27000"))[0].outcome == "CLOSED"


# ------------------------------------------------------------------ the fund itself


def test_a_fund_whose_equity_falls_below_zero_is_deleveraged_at_its_bankruptcy_price() -> None:
    v = long_one_btc()
    seed_fund(v, "100")
    (record,) = records(v.mark(BTC, "27950"))  # 65 below bankruptcy: the fund (100) takes it over
    assert steps(record, TakeoverStep)[0].qty_lots == 1_000
    fund = v.engine.liquidation.insurance_fund()
    assert fund.equity_atoms == 35 * USDT  # 100 - 65
    events = v.mark(BTC, "27900")  # the fund's long loses 50 more: equity -15
    (fund_record,) = records(events)
    assert fund_record.scope == "FUND" and fund_record.account_id == INSURANCE_ACCOUNT
    assert fund_record.outcome == "FUND_DELEVERAGED"
    # its bankruptcy price: 28,015 (its entry) - 100 (its cash) = 27,915; the short buys back there
    assert fund_record.bankruptcy_value_atoms == 27_915 * USDT
    assert steps(fund_record, AdlStep)[0].legs[0].account_id == v.names["s"]
    fund = v.engine.liquidation.insurance_fund()
    assert fund.positions == {} and fund.equity_atoms == 0


def test_an_isolated_fill_pays_its_fee_from_the_isolated_margin_so_no_deficit_is_left() -> None:
    # Hank's case (docs, section 18): the fee of an isolated fill used to take the cross wallet
    # below zero, and the fund covered it; now the isolated margin pays it
    v = make_venue(mm="1000000", h="1500", s="100000")
    isolate(v, "h")
    trade(v, "h", "s", "1", "30000")
    assert wallet(v, "h") == 0  # 1,500 moved to isolated, which paid the 15 fee: 1,485 there
    assert v.engine.position(v.names["h"], MARKET).isolated_margin_atoms == 1_485 * USDT
    seed_fund(v, "1000")
    v.place("mm", BTC, "buy", "1", "28515")
    events = v.mark(BTC, "28400")  # bankrupt at 28,515: the bid takes it all at exactly that price
    (record,) = records(events)
    assert record.outcome == "CLOSED"
    assert steps(record, DeficitStep) == []
    assert wallet(v, "h") == 0
    assert not [e for e in events if isinstance(e, InsuranceFundChanged) and e.reason == "DEFICIT_COVER"]


def test_settling_a_market_settles_the_funds_position_too() -> None:
    v = long_one_btc()
    seed_fund(v, "1000")
    v.mark(BTC, "27900")
    assert v.engine.liquidation.insurance_fund().positions == {MARKET: 1_000}
    v.apply(SetMarketMode(ts_ns=v.tick(), market=MARKET, mode=MarketMode.SETTLED, settle_price_ticks=280_000))
    assert v.engine.liquidation.insurance_fund().positions == {}
    assert v.engine.open_interest_lots[MARKET] == 0


# ------------------------------------------------------------------ queries


def test_cross_liquidation_price_counts_the_other_positions() -> None:
    v = make_venue(mm="1000000", a="5000", s="100000")
    v.mark("ETHUSDT", "2000")
    trade(v, "a", "s", "1", "30000")
    trade(v, "a", "s", "5", "2000", market="ETHUSDT")  # wallet 5,000 - 15 - 5
    v.mark("ETHUSDT", "1900")  # ETH: uPnL -500, MM 9,500 x 0.5% = 47.5
    lp = v.engine.liquidation.liquidation_price(v.names["a"], MARKET)
    # W' = 4,980 - 47.5 - 500 = 4,432.5; LP = (30,000 - 4,432.5) / 0.996 = 25,670.18 -> 25,670.2
    assert lp == 256_702
    assert records(v.mark(BTC, "25670.2")) == []
    assert records(v.mark(BTC, "25670.1"))[0].scope == "CROSS"


def test_the_record_lists_every_input() -> None:
    v = long_one_btc()
    v.mark(BTC, "29000", index="29010")
    (record,) = records(v.mark(BTC, "28000", index="28010"))
    (row,) = record.before.positions
    assert (row.market, row.qty_lots, row.cost_atoms) == (MARKET, 1_000, 30_000 * USDT)
    assert (row.index_ticks, row.mark_ticks, row.notional_atoms) == (280_100, 280_000, 28_000 * USDT)
    assert (row.bracket, row.mmr_e8, row.cum_atoms, row.maintenance_atoms) == (1, 400_000, 0, 112 * USDT)
    assert record.before.wallet_atoms == 1_985 * USDT and not row.paused
    assert record.after.positions == () and record.after.wallet_atoms == 0
    assert record.threshold_e8 == RATE_SCALE and record.liquidation_fee_e8 == 1_250_000
