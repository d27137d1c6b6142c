"""Spot RFQs: a BTC/USDT quote priced from BTC's index, accepted into wallet transfers, in the desk report.

The venue is the Multi-Assets lending venue (BTC's index at 50,000 USDT from two sources); the
desk holds 10 BTC and 1,000,000 USDT, the client 1,000,000 USDT. Invariants are checked after
every command by the test kit.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from perpx.engine.config import ConfigError
from perpx.engine.events import Event, SpotBlockTradeBooked
from perpx.engine.values import AccountId, MarketId, Side
from perpx.otc.config import OtcConfig, SpotPair, describe_otc, parse_otc
from perpx.otc.desk import Desk
from perpx.otc.errors import OtcError
from perpx.otc.pricing import QuoteSide
from perpx.otc.report import decompose
from perpx.otc.store import FILLED, OtcStore, QuoteRecord
from tests.lending.multi_assets import BTC, USDT, MultiVenue, atoms, multi_assets_data

PAIR = "BTC/USDT"


def _kit(max_inventory: str = "20") -> tuple[MultiVenue, Desk]:
    v = MultiVenue()
    v.venue.account("client", "1000000")
    v.venue.account("desk", "1000000")
    v.deposit("desk", BTC, "10")
    pair = SpotPair(PAIR, "BTC", max_inventory=Decimal(max_inventory), target_inventory=Decimal(10))
    config = OtcConfig(desk_account=int(v.venue.names["desk"]), spot={PAIR: pair})
    desk = Desk(config, OtcStore(":memory:"))
    v.venue.sequencer.add_listener(desk.history.observe)
    return v, desk


def _request(v: MultiVenue, desk: Desk, side: QuoteSide, qty_lots: int) -> QuoteRecord:
    return desk.request(v.venue.engine, v.venue.names["client"], MarketId(PAIR), side, qty_lots)


def _accept(v: MultiVenue, desk: Desk, quote: QuoteRecord, side: Side) -> tuple[QuoteRecord, list[Event]]:
    plan = desk.prepare_accept(v.venue.engine, v.venue.names["client"], quote.quote_id, side)
    command = desk.command(plan, v.venue.tick())
    own = list(v.venue.apply(command).own)
    return desk.settle(plan, command, own), own


def test_spot_quote_prices_around_the_assets_index_in_the_pairs_ticks() -> None:
    v, desk = _kit()

    quote = _request(v, desk, QuoteSide.TWO_WAY, 10_000)  # 1 BTC

    assert quote.index_ticks == 5_000_000  # 50,000.00 in 0.01 ticks
    assert quote.bid_ticks is not None and quote.ask_ticks is not None
    assert quote.bid_ticks < quote.index_ticks < quote.ask_ticks


def test_accepted_spot_quote_moves_btc_and_usdt_between_client_and_desk() -> None:
    v, desk = _kit()
    quote = _request(v, desk, QuoteSide.BUY, 10_000)
    assert quote.ask_ticks is not None
    cost = quote.ask_ticks * atoms("0.01")  # 1 BTC at the ask, in USDT atoms

    record, own = _accept(v, desk, quote, Side.BUY)

    assert record.state == FILLED and record.trade_id is not None
    assert [e.trade_id for e in own if isinstance(e, SpotBlockTradeBooked)] == [record.trade_id] * 2
    assert v.balance("client", BTC) == atoms("1")
    assert v.balance("client", USDT) == atoms("1000000") - cost
    assert v.balance("desk", BTC) == atoms("9")
    assert v.balance("desk", USDT) == atoms("1000000") + cost


def test_spot_skew_follows_the_desks_holding_against_its_target() -> None:
    v, desk = _kit()
    neutral = _request(v, desk, QuoteSide.TWO_WAY, 10_000)
    v.deposit("desk", BTC, "5")  # the desk now holds 5 BTC more than its target: it sells cheaper

    long = _request(v, desk, QuoteSide.TWO_WAY, 10_000)

    assert neutral.ask_ticks is not None and long.ask_ticks is not None
    assert Decimal(neutral.skew_bps) == 0 < Decimal(long.skew_bps)
    assert long.ask_ticks < neutral.ask_ticks


def test_spot_accept_beyond_the_inventory_limit_is_refused() -> None:
    v, desk = _kit(max_inventory="1")
    quote = _request(v, desk, QuoteSide.SELL, 10_000)  # the desk would buy 1 BTC: 11 held, 10 +/- 1 allowed
    v.deposit("desk", BTC, "0.5")

    with pytest.raises(OtcError) as refused:
        _accept(v, desk, quote, Side.SELL)

    assert refused.value.code == -9566
    assert v.balance("client", BTC) == 0


def test_spot_quote_without_a_fresh_index_is_refused() -> None:
    v, desk = _kit()
    v.venue.advance(60)  # both BTC sources age out (stale after 30 s): the index is stale

    with pytest.raises(OtcError, match="no index"):
        _request(v, desk, QuoteSide.TWO_WAY, 10_000)


def test_spot_trades_spread_capture_closes_the_desk_report_to_its_equity() -> None:
    v, desk = _kit()
    desk_id = AccountId(v.venue.names["desk"])
    for side in (Side.BUY, Side.SELL, Side.BUY):
        requested = QuoteSide.BUY if side is Side.BUY else QuoteSide.SELL
        _accept(v, desk, _request(v, desk, requested, 5_000), side)
    v.price("51000")

    ledger, _ = decompose(v.venue.config, v.venue.journal, desk_id)

    assert ledger.pnl_atoms + ledger.flows_atoms == ledger.equity_end_atoms - ledger.equity_start_atoms
    assert ledger.total("spread_capture") > 0
    assert ledger.total("inventory_pnl") == atoms("9500")  # 9.5 BTC held while the index rose 1,000
    assert ledger.total("other") == 0


def test_spot_pair_config_is_checked_against_the_listed_assets() -> None:
    data = multi_assets_data()
    data["otc"] = {"desk_account": 2, "spot": {"DOGE/USDT": {}}}
    with pytest.raises(ConfigError, match="BASE/USDT"):
        parse_otc(data, ("BTCUSDT",))
    data["otc"]["spot"] = {PAIR: {"lot_size": "0.000000001"}}
    with pytest.raises(ConfigError, match="whole number"):
        parse_otc(data, ("BTCUSDT",))
    data["otc"]["spot"] = {PAIR: {"tick_size": "0.5", "max_inventory": "3"}}

    parsed = parse_otc(data, ("BTCUSDT",))

    assert parsed is not None and parsed.spot[PAIR].tick_size == Decimal("0.5")
    assert parsed.spot[PAIR].base == "BTC"


def test_check_config_describes_the_spot_pair() -> None:
    data = multi_assets_data()
    data["otc"] = {"desk_account": 2, "spot": {PAIR: {"max_inventory": "3", "target_inventory": "1"}}}

    lines = describe_otc(data, ("BTCUSDT",))

    assert any(
        line.strip().startswith("BTC/USDT (spot): tick 0.01, lot 0.0001, limit 3 around 1") for line in lines
    )
