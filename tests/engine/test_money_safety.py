"""Money safety: the reproductions of the review (issue 9), as exchange rules on the engine.

Each test is one of the holes found, played through the engine: a close beyond bankruptcy, an
isolated loss reaching the cross wallet, an order whose open loss bankrupts its owner, paper
profit backing new exposure, fees the fee account never collected. Every test checks the
insurance fund did not pay, and the invariants (checked after every command by the harness).

Default venue: BTCUSDT tick 0.1, lot 0.001, taker 0.05%, maker 0.02%, 125x in the first bracket.
"""

from __future__ import annotations

from decimal import Decimal

from perpx.engine.codes import RejectCode
from perpx.engine.commands import MarginMode, MarketMode, SetLeverage, SetMarginMode, SetMarketMode
from perpx.engine.events import (
    Event,
    ExpireReason,
    InsuranceFundChanged,
    OrderExpired,
    OrderRejected,
    SettlementLossShared,
)
from perpx.engine.liquidation import INSURANCE_ACCOUNT
from perpx.engine.liquidation.insurance import fund_equity
from perpx.engine.values import MarketId
from perpx.testkit import Venue
from tests.liquidation.helpers import seed_fund

from .helpers import BTC, USDT, config_with, fills, kinds, venue

MARKET = MarketId(BTC)
ETH = "ETHUSDT"


def leverage(v: Venue, name: str, value: int, market: str = BTC) -> None:
    events = v.apply(
        SetLeverage(ts_ns=v.tick(), account_id=v.names[name], market=MarketId(market), leverage=value)
    )
    assert kinds(events) == ["LeverageChanged"], events


def isolate(v: Venue, name: str) -> None:
    v.apply(SetMarginMode(ts_ns=v.tick(), account_id=v.names[name], market=MARKET, mode=MarginMode.ISOLATED))


def rejection(events: list[Event]) -> OrderRejected:
    (event,) = events
    assert isinstance(event, OrderRejected), events
    return event


def wallet(v: Venue, name: str) -> int:
    return v.engine.accounts[v.names[name]].balance(v.engine.asset)


def margin_balance(v: Venue, name: str) -> int:
    return v.engine.risk(v.names[name]).margin_balance_atoms


def no_cover(events: list[Event]) -> bool:
    return not [e for e in events if isinstance(e, InsuranceFundChanged) and e.reason == "DEFICIT_COVER"]


def ring_venue() -> Venue:
    """The review's ring: ``a`` (500 USDT, 125x) long 1.6 BTC at 30,000; partner ``b`` bids 1.6 at 28,500."""
    v = venue("mm", "b")
    v.account("a", "500")
    leverage(v, "a", 125)
    v.place("mm", BTC, "sell", "1.6", "30000")
    assert fills(v.place("a", BTC, "buy", "1.6", "30000"))  # IM 384, fee 24: wallet 476
    v.place("b", BTC, "buy", "1.6", "28500")  # inside the one-sided band (mark x 0.95 = 28,500)
    return v


# ------------------------------------------------------------------ 1. no close beyond bankruptcy


def test_a_close_beyond_bankruptcy_is_refused_at_placement() -> None:
    # Arrange
    v = ring_venue()

    # Act: a sells into its partner's bid, 1,500 below the mark: a loss of 2,400 on a balance of 476
    events = v.place("a", BTC, "sell", "1.6", "28500")

    # Assert: bankruptcy for 1.6 with the taker fee: 476 - 1.6 x (30,000 - p) - 0.0008 p = 0 at 29,717.36
    refused = rejection(events)
    assert refused.code == RejectCode.BEYOND_BANKRUPTCY
    assert "bankruptcy price for 1.6 is 29717.4" in refused.message
    assert v.position("a", BTC) == Decimal("1.6") and wallet(v, "a") == 476 * USDT
    assert fund_equity(v.engine) == 0


def test_the_same_close_at_the_bankruptcy_price_is_accepted_and_leaves_the_account_solvent() -> None:
    # Arrange
    v = ring_venue()
    v.place("b", BTC, "buy", "1.6", "29717.4")

    # Act
    events = v.place("a", BTC, "sell", "1.6", "29717.4")

    # Assert: every lot filled, the account holds nothing and a wallet at or above zero
    assert sum(f.qty_lots for f in fills(events) if f.account_id == v.names["a"]) == 1_600
    assert 0 <= wallet(v, "a") < USDT  # what is left at the bankruptcy price is below one USDT
    assert no_cover(events) and fund_equity(v.engine) == 0


def test_a_sweeping_market_order_stops_at_its_bankruptcy_price_and_the_rest_expires() -> None:
    # Arrange
    v = ring_venue()

    # Act: a market sell of 1.6 meets only b's bid at 28,500 (1.5 below the mark per 0.001 BTC)
    events = v.place("a", BTC, "sell", "1.6")

    # Assert: 476 / (1.5 + 0.01425 fee) per lot = 314 lots fill; the rest expires; no deficit
    taken = [f for f in fills(events) if f.account_id == v.names["a"] and not f.is_maker]
    assert [(f.price_ticks, f.qty_lots) for f in taken] == [(285_000, 314)]
    stopped = [e for e in events if isinstance(e, OrderExpired) and e.reason == ExpireReason.BANKRUPTCY]
    assert [(e.account_id, e.leaves_lots) for e in stopped] == [(v.names["a"], 1_286)]
    assert wallet(v, "a") >= 0 and no_cover(events)
    # the account, now far below maintenance, was liquidated: the fund took the rest over at the
    # bankruptcy price and kept the clearance fee; it paid nothing
    assert fund_equity(v.engine) >= 0


def test_the_ring_makes_no_money_from_the_fund_round_after_round() -> None:
    # Arrange: the review's round, repeated: a opens, sells into b below the mark, b keeps the gain
    v = venue("mm", "b")
    v.account("a", "500")
    leverage(v, "a", 125)
    fund_before = fund_equity(v.engine)
    ring_before = wallet(v, "a") + margin_balance(v, "b")

    # Act: three rounds; each time a also tries the close at once, then sweeps with a market order
    for _ in range(3):
        v.deposit("a", "500")
        v.place("mm", BTC, "sell", "1.6", "30000")
        v.place("a", BTC, "buy", "1.6", "30000")
        v.place("b", BTC, "buy", "1.6", "28500")
        assert rejection(v.place("a", BTC, "sell", "1.6", "28500")).code == RejectCode.BEYOND_BANKRUPTCY
        v.place("a", BTC, "sell", "1.6")
        v.cancel_all("b", BTC)

    # Assert: the fund paid nothing (it kept clearance fees); the pair lost (fees, a's margin)
    assert fund_equity(v.engine) >= fund_before
    ring_after = wallet(v, "a") + margin_balance(v, "b") - 3 * 500 * USDT
    assert ring_after <= ring_before


def test_a_resting_close_that_would_fill_beyond_its_owners_bankruptcy_is_expired_instead() -> None:
    # Arrange: a (cross, 1,500 USDT, 50x) long 1 BTC at 30,000 and short 10 ETH at 2,000; it rests a
    # sell of its BTC at 29,500, a 500 loss it can afford
    v = venue("mm", "b")
    v.mark(ETH, "2000")
    v.account("a", "1500")
    leverage(v, "a", 50)
    leverage(v, "a", 50, ETH)
    v.place("mm", BTC, "sell", "1", "30000")
    v.place("a", BTC, "buy", "1", "30000")
    v.place("mm", ETH, "buy", "10", "2000")
    v.place("a", ETH, "sell", "10", "2000")
    ask = v.place("a", BTC, "sell", "1", "29500")[0]
    assert type(ask).__name__ == "OrderAccepted"

    # Act: ETH rises to 2,100 (a loses 1,000 there, still above maintenance), then b takes the ask
    v.mark(ETH, "2100")
    before = margin_balance(v, "a")
    events = v.place("b", BTC, "buy", "1", "29500")

    # Assert: filling would cost 500 + 14.75 fee of a margin balance of 475: the ask expired unfilled
    assert 0 < before < 500 * USDT
    (expired,) = [e for e in events if isinstance(e, OrderExpired)]
    assert expired.account_id == v.names["a"] and expired.reason == ExpireReason.BANKRUPTCY
    assert not fills(events) and v.position("a", BTC) == 1
    assert v.position("b", BTC) == 0  # b's bid rests, unfilled


def test_an_isolated_close_beyond_the_positions_margin_is_refused_and_the_cross_wallet_is_untouched() -> None:
    # Arrange: a isolated at 125x, long 1.6 at 30,000 (384 of margin, 24 fee from it: 360 left)
    v = venue("mm", "b")
    v.account("a", "10000")
    isolate(v, "a")
    leverage(v, "a", 125)
    v.place("mm", BTC, "sell", "1.6", "30000")
    v.place("a", BTC, "buy", "1.6", "30000")
    v.place("b", BTC, "buy", "1.6", "28500")
    cross_before = wallet(v, "a")
    assert v.engine.position(v.names["a"], MARKET).isolated_margin_atoms == 360 * USDT

    # Act
    events = v.place("a", BTC, "sell", "1.6", "28500")

    # Assert: the position's own margin is the limit; 9,616 in the cross wallet do not back it
    refused = rejection(events)
    assert refused.code == RejectCode.BEYOND_BANKRUPTCY and "isolated position" in refused.message
    assert wallet(v, "a") == cross_before and fund_equity(v.engine) == 0


# ------------------------------------------------------------------ 3. open loss


def test_a_125x_buy_far_above_the_mark_pays_its_open_loss_up_front() -> None:
    # Arrange: s offers 1.5 at 31,500 (1.05 x mark); a has 2,000 USDT at 125x
    v = venue("s")
    v.account("a", "2000")
    leverage(v, "a", 125)
    v.place("s", BTC, "sell", "1.5", "31500")

    # Act: initial margin 47,250 / 125 = 378, open loss 1.5 x 1,500 = 2,250: 2,628 > 2,000
    events = v.place("a", BTC, "buy", "1.5", "31500")

    # Assert
    refused = rejection(events)
    assert refused.code == RejectCode.MARGIN_INSUFFICIENT
    assert "2250 USDT of open loss" in refused.message
    assert v.position("s", BTC) == 0 and fund_equity(v.engine) == 0


def test_with_the_open_loss_covered_the_buyer_stays_solvent_after_the_fill() -> None:
    # Arrange
    v = venue("s")
    v.account("a", "2700")
    leverage(v, "a", 125)
    v.place("s", BTC, "sell", "1.5", "31500")

    # Act
    events = v.place("a", BTC, "buy", "1.5", "31500")

    # Assert: filled; margin balance 2,700 - 2,250 - 23.625 fee = 426.375 at the mark
    assert sum(f.qty_lots for f in fills(events)) == 2 * 1_500
    assert margin_balance(v, "a") == Decimal("426.375") * USDT
    assert fund_equity(v.engine) == 0


# ------------------------------------------------------------------ 4. paper profit as collateral


def paper_profit_venue(policy: str) -> Venue:
    """``b`` long 1 BTC at 28,500 on 1,500 USDT; the mark is 29,800 while the index says 29,000."""
    v = venue("mm", config=config_with(market={"upnl_collateral": policy}), mark="28500")
    v.account("b", "1500")
    v.place("mm", BTC, "sell", "1", "28500")
    v.place("b", BTC, "buy", "1", "28500")  # IM 1,425 at 20x, fee 14.25
    v.mark(BTC, "29800", index="29000")
    return v


def test_paper_profit_from_a_mark_above_its_index_backs_no_new_position() -> None:
    # Arrange: profit 1,300 at the mark, 500 at the index
    v = paper_profit_venue("conservative")
    v.place("mm", BTC, "sell", "0.5", "29800")

    # Act: 0.5 more needs 14,900 / 20 = 745 of margin
    events = v.place("b", BTC, "buy", "0.5", "29800")

    # Assert: available = 1,485.75 + 500 (at the index) - 1,490 (IM at the mark) = 495.75 < 745
    assert rejection(events).code == RejectCode.MARGIN_INSUFFICIENT
    assert v.engine.risk(v.names["b"]).available_atoms == Decimal("495.75") * USDT


def test_binances_rule_counts_the_profit_at_the_mark() -> None:
    # Arrange: the same venue with upnl_collateral = "mark"
    v = paper_profit_venue("mark")
    v.place("mm", BTC, "sell", "0.5", "29800")

    # Act
    events = v.place("b", BTC, "buy", "0.5", "29800")

    # Assert: available 1,485.75 + 1,300 - 1,490 = 1,295.75 covers the 745
    assert fills(events)


def test_paper_profit_is_never_withdrawable() -> None:
    # Arrange
    v = paper_profit_venue("conservative")

    # Act
    events = v.withdraw("b", "100")

    # Assert: the wallet minus margin in use is 1,485.75 - 1,490 < 0: nothing can leave
    assert type(events[0]).__name__ == "TransferRejected"


# ------------------------------------------------------------------ 6. fees


def test_a_rebate_against_a_fee_free_liquidation_is_paid_only_from_collected_fees() -> None:
    # Arrange: the maker is in a rebate tier from 0; the fee account is empty; a is liquidated into
    # the maker's bid (a liquidation order pays no trading fee, so nothing is collected for it)
    tiers = [{"min_30d_volume": "0", "maker": "-0.0001", "taker": "0.0005"}]
    v = venue("s", config=config_with(fee_tiers=tiers))
    v.account("a", "2000")
    v.account("m", "100000")
    v.place("s", BTC, "sell", "1", "30000")
    v.place("a", BTC, "buy", "1", "30000")  # the taker pays 15, the maker s gets 3 back
    fees_before = v.engine.fees_atoms[v.engine.asset]
    v.place("m", BTC, "buy", "1", "28100")

    # Act: the mark falls to 28,120 (liquidation below 28,127.5); a's order sells into m's bid,
    # above a's bankruptcy price of 28,015
    events = v.mark(BTC, "28120")

    # Assert: m's rebate due is 28,100 x 0.01% = 2.81, the fee account held 12: paid in full here,
    # and the fee account never falls below zero (checked after every command)
    (maker_fill,) = [f for f in fills(events) if f.account_id == v.names["m"]]
    assert maker_fill.fee_atoms == -281_000_000
    assert v.engine.fees_atoms[v.engine.asset] == fees_before - 281_000_000 >= 0


def test_a_rebate_beyond_the_fee_account_is_cut_to_what_it_holds() -> None:
    # Arrange: the fee account is emptied by a first rebate, then a liquidation fill earns another
    tiers = [{"min_30d_volume": "0", "maker": "-0.0001", "taker": "0.0001"}]
    v = venue("s", config=config_with(fee_tiers=tiers))
    v.account("a", "2000")
    v.account("m", "100000")
    v.place("s", BTC, "sell", "1", "30000")
    v.place("a", BTC, "buy", "1", "30000")  # taker 3 in, maker 3 out: the fee account holds 0
    assert v.engine.fees_atoms[v.engine.asset] == 0
    v.place("m", BTC, "buy", "1", "28100")

    # Act
    events = v.mark(BTC, "28100")  # liquidation below 28,139.5 here (wallet 1,997)

    # Assert: m's rebate of 2.81 is cut to the 0 the fee account holds
    (maker_fill,) = [f for f in fills(events) if f.account_id == v.names["m"]]
    assert maker_fill.fee_atoms == 0
    assert v.engine.fees_atoms[v.engine.asset] == 0


# ------------------------------------------------------------------ the fund and settlement


def test_a_settlement_beyond_bankruptcy_is_covered_by_the_fund_up_to_its_equity_then_by_the_winners() -> None:
    # Arrange: a long 1 at 30,000 with 2,000 USDT; s short; the fund holds 300
    v = venue("s")
    v.account("a", "2000")
    v.place("s", BTC, "sell", "1", "30000")
    v.place("a", BTC, "buy", "1", "30000")
    seed_fund(v, "300")
    v.apply(SetMarketMode(ts_ns=v.tick(), market=MARKET, mode=MarketMode.HALTED))

    # Act: the market is delisted at 27,000: a loses 3,000 on a wallet of 1,985
    events = v.apply(
        SetMarketMode(ts_ns=v.tick(), market=MARKET, mode=MarketMode.SETTLED, settle_price_ticks=270_000)
    )

    # Assert: deficit 1,015: the fund pays its 300, s (who realised 3,000) pays the other 715
    cover = [e for e in events if isinstance(e, InsuranceFundChanged) and e.reason == "DEFICIT_COVER"]
    assert [e.amount_atoms for e in cover] == [-300 * USDT]
    shared = {e.account_id: e.amount_atoms for e in events if isinstance(e, SettlementLossShared)}
    assert shared == {v.names["s"]: -715 * USDT, v.names["a"]: 715 * USDT}
    assert wallet(v, "a") == 0 and fund_equity(v.engine) == 0
    assert v.engine.accounts[INSURANCE_ACCOUNT].balance(v.engine.asset) == 300 * USDT  # its deposit


def test_a_fill_or_kill_that_needs_a_maker_beyond_its_bankruptcy_is_refused_whole() -> None:
    # Arrange: a's resting ask at 29,500 can no longer be filled (the resting-close case above)
    v = venue("mm", "b")
    v.mark(ETH, "2000")
    v.account("a", "1500")
    leverage(v, "a", 50)
    leverage(v, "a", 50, ETH)
    v.place("mm", BTC, "sell", "1", "30000")
    v.place("a", BTC, "buy", "1", "30000")
    v.place("mm", ETH, "buy", "10", "2000")
    v.place("a", ETH, "sell", "10", "2000")
    v.place("a", BTC, "sell", "1", "29500")
    v.mark(ETH, "2100")

    # Act: b wants all of it at once, or nothing
    events = v.place("b", BTC, "buy", "1", "29500", tif="FOK")

    # Assert: nothing trades, nothing expires: the FOK counted the maker the guard would pass over
    assert rejection(events).code == RejectCode.FOK_NOT_FILLABLE
    assert len(v.engine.books[MARKET].asks.levels) == 1 and v.position("a", BTC) == 1
