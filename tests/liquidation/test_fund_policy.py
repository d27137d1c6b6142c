"""The insurance fund's policy: a takeover cap relative to its equity, and an unwind through the book.

Venue as in ``test_liquidation``: ``a`` long 1 BTC at 30,000 with 1,985 USDT left after the fee, so
its bankruptcy price is 28,015; ``s`` is the short on the other side; ``mm`` quotes.
"""

from __future__ import annotations

import pytest
from rich.console import Console

from perpx.engine.config import ConfigError
from perpx.engine.engine import Engine
from perpx.engine.events import AdlStep, OrderAccepted, OrderFilled, TakeoverStep
from perpx.engine.liquidation import INSURANCE_ACCOUNT
from perpx.engine.liquidation.unwind import (
    UNWIND_PREFIX,
    takeover_capacity_lots,
    unwind_clip_lots,
    unwind_limit_ticks,
)
from perpx.engine.state import restore, snapshot, state_hash
from perpx.engine.values import RATE_SCALE, MarketId
from perpx.explain import Record, render
from perpx.server.trading.fund_policy import fund_json
from perpx.testkit import Venue

from .helpers import BTC, USDT, liq_config, make_venue, qty, records, seed_fund, steps, trade

MARKET = MarketId(BTC)
UNWIND = {"insurance_unwind_clip": "0.5", "insurance_unwind_interval_s": 60, "insurance_unwind_limit": "0.01"}


def venue(fund: str, **policy: object) -> Venue:
    v = make_venue(liq_config(**policy), mm="1000000", a="2000", s="100000")
    trade(v, "a", "s", "1", "30000")
    seed_fund(v, fund)
    return v


def fund_lots(v: Venue) -> int:
    return v.engine.liquidation.insurance_fund().positions.get(MARKET, 0)


def unwind_fills(events: list[object]) -> list[OrderFilled]:
    ids = {
        e.order_id
        for e in events
        if isinstance(e, OrderAccepted) and str(e.client_order_id).startswith(UNWIND_PREFIX)
    }
    return [e for e in events if isinstance(e, OrderFilled) and e.order_id in ids]


# ------------------------------------------------------------------ the cap


def test_without_a_cap_the_fund_takes_over_whatever_its_equity_covers() -> None:
    v = venue("1000")
    (record,) = records(v.mark(BTC, "27950"))  # loss 65 on 1 BTC: 1,000 covers it
    assert steps(record, TakeoverStep)[0].qty_lots == 1_000 and not steps(record, AdlStep)
    assert fund_lots(v) == 1_000  # 27,950 of position held on 1,000 of equity


def test_a_takeover_beyond_the_cap_is_auto_deleveraged() -> None:
    v = venue("1000", insurance_takeover_cap="0.5")
    (record,) = records(v.mark(BTC, "27950"))
    # cap: 0.5 x 1,000 = 500 USDT of position; one lot is 0.001 x 27,950 = 27.95: 17 lots
    (takeover,) = steps(record, TakeoverStep)
    assert (takeover.qty_lots, takeover.capacity_lots, takeover.forced) == (17, 17, False)
    assert takeover.capped_lots == 983  # the fund's equity would have covered them all
    (deleveraged,) = steps(record, AdlStep)
    assert deleveraged.qty_lots == 983 and deleveraged.legs[0].account_id == v.names["s"]
    assert fund_lots(v) == 17 and qty(v, "a") == 0 and qty(v, "s") == -17
    fund = v.engine.liquidation.insurance_fund()
    assert fund.equity_atoms // 2 >= 17 * 27_950 * USDT // 1_000  # within the cap at the takeover mark


def test_a_zero_cap_sends_everything_to_adl() -> None:
    v = venue("1000", insurance_takeover_cap="0")
    (record,) = records(v.mark(BTC, "27950"))
    (refused,) = steps(record, TakeoverStep)  # recorded, so explain can say why ADL followed
    assert (refused.qty_lots, refused.value_atoms, refused.capped_lots) == (0, 0, 1_000)
    assert steps(record, AdlStep)[0].qty_lots == 1_000
    assert fund_lots(v) == 0


def test_explain_shows_a_capped_takeover_and_the_lots_it_sent_to_adl() -> None:
    # Arrange: a 0.5 x equity cap leaves room for 17 of 1,000 lots
    v = venue("1000", insurance_takeover_cap="0.5")
    found = [Record(1, r) for r in records(v.mark(BTC, "27950"))]
    console = Console(record=True, width=400)
    # Act
    render(console, v.config, found, int(v.names["a"]))
    # Assert
    out = " ".join(console.export_text().split())
    assert "insurance fund took over 0.017 at the bankruptcy price" in out
    assert "takeover capped: 0.5 x fund equity 1000 USDT" in out
    assert "room for 0.017 here, so 0.983 the fund's equity would have covered go to ADL" in out
    assert "auto-deleveraged 0.983 the fund could not take" in out


def test_explain_shows_a_takeover_the_cap_refused_entirely() -> None:
    v = venue("1000", insurance_takeover_cap="0")
    found = [Record(1, r) for r in records(v.mark(BTC, "27950"))]
    console = Console(record=True, width=400)
    render(console, v.config, found, int(v.names["a"]))
    out = " ".join(console.export_text().split())
    assert "insurance fund took over" not in out
    assert "room for 0 here, so 1 the fund's equity would have covered go to ADL" in out


def test_a_takeover_that_shrinks_the_funds_position_is_never_capped() -> None:
    v = venue("1000", insurance_takeover_cap="0")
    # the fund holds a short of 40 lots (as if taken over before); a long's takeover reduces it
    fund = v.engine.accounts[INSURANCE_ACCOUNT]
    fund.positions.setdefault(MARKET, v.engine.position(INSURANCE_ACCOUNT, MARKET)).qty_lots = -40
    assert takeover_capacity_lots(v.engine, MARKET, 1, 1_000 * USDT) == 80  # close 40, none beyond
    assert takeover_capacity_lots(v.engine, MARKET, -1, 1_000 * USDT) == 0
    fund.positions[MARKET].qty_lots = 0


def test_capacity_is_none_without_a_cap_and_zero_for_a_fund_without_equity() -> None:
    v = venue("1000", insurance_takeover_cap="2")
    assert takeover_capacity_lots(v.engine, MARKET, 1, -5 * USDT) == 0
    assert takeover_capacity_lots(v.engine, MARKET, 1, 30 * USDT) == 2  # 60 / 30 per lot
    plain = venue("1000")
    assert takeover_capacity_lots(plain.engine, MARKET, 1, 30 * USDT) is None


@pytest.mark.parametrize(
    ("key", "text", "message"),
    [
        ("insurance_takeover_cap", "-1", "insurance_takeover_cap"),
        ("insurance_unwind_clip", "1.5", "between 0 and 1"),
        ("insurance_unwind_limit", "0", "between 0 and 1"),
        ("insurance_unwind_interval_s", 0, "integer >= 1"),
    ],
)
def test_a_policy_value_out_of_range_is_a_config_error_naming_the_key(
    key: str, text: object, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        liq_config(**{key: text})


# ------------------------------------------------------------------ the unwind


def test_the_fund_unwinds_a_clip_per_interval_into_bids_within_its_limit() -> None:
    v = venue("1000", **UNWIND)
    v.place("mm", BTC, "buy", "0.3", "27000")  # below the limit 27,950 x 0.99 = 27,670.5: never hit
    v.place("mm", BTC, "buy", "2", "27800")
    events = v.mark(BTC, "27950")
    (record,) = records(events)
    assert steps(record, TakeoverStep)[0].qty_lots == 1_000  # the IOC at 28,015 found no bid
    # the first step runs at once: half of 1,000 lots, at 27,800
    fills = unwind_fills(list(events))
    assert [(f.qty_lots, f.price_ticks, f.fee_atoms) for f in fills] == [(500, 278_000, 0)]
    assert fund_lots(v) == 500
    # no second step before the interval, whatever the marks do
    assert unwind_fills(list(v.mark(BTC, "27960"))) == []
    assert fund_lots(v) == 500
    assert [f.qty_lots for f in unwind_fills(list(v.advance(60)))] == [250]  # venue time alone
    assert fund_lots(v) == 250
    # the 27,000 bid is still there: the fund never sold through its limit
    assert any(price == 270_000 for price, _ in v.engine.books[MARKET].bids.depth())


def test_an_unwind_with_no_bid_within_the_limit_waits_for_the_next_step() -> None:
    v = venue("1000", **UNWIND)
    v.mark(BTC, "27950")
    assert fund_lots(v) == 1_000
    v.place("mm", BTC, "buy", "1", "27900")
    assert unwind_fills(list(v.mark(BTC, "27950"))) == []  # the step was at the takeover: not due yet
    assert [f.qty_lots for f in unwind_fills(list(v.advance(60)))] == [500]


def test_a_bare_clock_tick_unwinds_on_schedule_with_no_price_move() -> None:
    # Arrange: the fund takes over 1,000 lots into an empty book (its first step finds no bid)
    v = venue("1000", **UNWIND)
    v.mark(BTC, "27950")
    v.place("mm", BTC, "buy", "2", "27900")
    # Act: venue time moves with no command that moves a price
    early = unwind_fills(list(v.advance(59)))
    due = unwind_fills(list(v.advance(1)))
    later = unwind_fills(list(v.advance(30)))
    # Assert: the step runs when due and not before; the next one waits its interval
    assert early == [] and [(f.qty_lots, f.price_ticks) for f in due] == [(500, 279_000)]
    assert later == [] and fund_lots(v) == 500
    assert [f.qty_lots for f in unwind_fills(list(v.advance(30)))] == [250]


def test_a_bare_clock_tick_leaves_a_fund_position_no_market_unwinds() -> None:
    v = venue("1000")  # no unwind clip: the fund holds what it took over
    v.mark(BTC, "27950")
    v.place("mm", BTC, "buy", "2", "27900")
    assert unwind_fills(list(v.advance(3_600))) == [] and fund_lots(v) == 1_000
    assert v.engine.liquidation.unwind_due(v.engine.now_ns) is False


def test_the_unwind_schedule_survives_a_snapshot_and_replays_the_same() -> None:
    v = venue("1000", **UNWIND)
    v.place("mm", BTC, "buy", "2", "27800")
    v.mark(BTC, "27950")
    restored = restore(v.config, snapshot(v.engine))
    assert restored.liquidation.unwind_due_ns == v.engine.liquidation.unwind_due_ns > 0
    assert state_hash(restored) == state_hash(v.engine)
    v.advance(60)
    v.mark(BTC, "27960")
    replayed = Engine(v.config)
    for command in v.journal:
        replayed.apply(command)
    assert state_hash(replayed) == state_hash(v.engine)
    assert replayed.liquidation.insurance_fund().positions == {MARKET: 250}


def test_clip_and_limit_round_in_the_funds_favour_and_never_exceed_the_position() -> None:
    assert unwind_clip_lots(1_000, RATE_SCALE // 2) == 500
    assert unwind_clip_lots(-3, RATE_SCALE // 10) == 1  # at least one lot
    assert unwind_clip_lots(7, RATE_SCALE) == 7
    assert unwind_limit_ticks(279_500, 1, RATE_SCALE // 100) == 276_705  # ceil(276,705.0)
    assert unwind_limit_ticks(279_501, 1, RATE_SCALE // 100) == 276_706  # ceil(276,705.99)
    assert unwind_limit_ticks(279_501, -1, RATE_SCALE // 100) == 282_296  # floor(282,296.01)


def test_the_cap_bounds_the_funds_whole_book_across_markets() -> None:
    v = venue("1000", insurance_takeover_cap="2")
    v.mark("ETHUSDT", "2000")
    eth = MarketId("ETHUSDT")
    fund = v.engine.accounts[INSURANCE_ACCOUNT]
    held = fund.positions.setdefault(eth, v.engine.position(INSURANCE_ACCOUNT, eth))
    held.qty_lots = 500  # 0.5 ETH at 2,000: 1,000 of the 2,000 the cap allows
    lot = 30  # one BTC lot at 30,000
    assert takeover_capacity_lots(v.engine, MARKET, 1, 1_000 * USDT) == 1_000 * USDT // (lot * USDT)
    held.qty_lots = 1_000  # 2,000 in ETH: the cap is used up, nothing more in BTC
    assert takeover_capacity_lots(v.engine, MARKET, 1, 1_000 * USDT) == 0
    held.qty_lots = 0


# ------------------------------------------------------------------ the policy, published


def test_the_fund_route_states_the_policy_and_what_the_fund_holds() -> None:
    # Arrange: a capped, unwinding market; a long of 1,000 lots goes bankrupt into an empty book
    v = venue("1000", insurance_takeover_cap="2", **UNWIND)
    v.mark(BTC, "27950")
    # Act
    answer = fund_json(v.engine)
    # Assert
    btc = next(row for row in answer["policy"] if row["symbol"] == BTC)
    assert btc == {
        "symbol": BTC,
        "takeoverCap": "2",
        "unwindClip": "0.5",
        "unwindIntervalSec": 60,
        "unwindLimit": "0.01",
    }
    # the cap (2 x ~1,000 of equity) let it take 71 lots; the rest went to ADL
    assert answer["positions"] == [
        {"symbol": BTC, "positionAmt": "0.071", "markPrice": "27950", "notional": "1984.45"}
    ]
    assert answer["nextUnwindTime"] == (v.engine.now_ns + 60 * 10**9) // 10**6
    assert answer["cash"] != answer["equity"]  # equity counts the position on the mark, cash does not


def test_the_fund_route_of_a_venue_without_a_policy_says_uncapped_and_never_unwound() -> None:
    v = venue("1000")
    v.mark(BTC, "27950")

    answer = fund_json(v.engine)

    btc = next(row for row in answer["policy"] if row["symbol"] == BTC)
    assert (btc["takeoverCap"], btc["unwindClip"]) == (None, "0")
    assert answer["nextUnwindTime"] is None and answer["positions"][0]["positionAmt"] == "1"
