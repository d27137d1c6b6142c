"""Hedges on another venue: a second real ``perpx serve`` reached through ccxt, the desk's delta counting it.

The desk's venue is the test kit's engine; the symbol's policy names the outside venue by URL, so its
hedge is a parent order run by the execution engine's ccxt venue (``binanceusdm`` pointed at the
second server, the fixture of ``tests/execution/test_ccxt_venue.py``).
"""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import pytest

from perpx.engine.values import AccountId
from perpx.execution.inprocess import EngineVenue
from perpx.otc import errors
from perpx.otc.config import HedgeMode, MarketPolicy
from perpx.otc.hedging import Hedger
from perpx.otc.outside import KEY_ENV, SECRET_ENV, OutsideVenue, OutsideVenueError, exchange_for, open_outside
from perpx.otc.pricing import QuoteSide
from perpx.otc.report import decompose, equity_atoms
from perpx.otc.store import OtcStore
from perpx.server.otc_routes import HEDGE_LOGS
from tests.engine.helpers import BTC
from tests.execution.test_ccxt_venue import SYMBOL, _client, _quote, server  # noqa: F401 (the fixture)
from tests.otc.kit import desk_kit
from tests.otc.test_rfq_routes import Desk
from tests.server.harness import MANUAL_CONFIG, ServerProcess
from tests.server.inprocess import in_process_venue


def test_a_hedge_runs_on_the_outside_venue_and_its_position_counts_in_the_desks_delta(
    server: ServerProcess,  # noqa: F811 (the imported fixture)
) -> None:
    maker, _ = _client(server, "otc-mm")
    _, desk_there = _client(server, "otc-desk")
    _quote(maker)
    kit = desk_kit(hedge=HedgeMode.IMMEDIATE)
    policy = MarketPolicy(
        hedge=HedgeMode.IMMEDIATE, max_inventory=Decimal(20), hedge_duration_s=3, venue=server.base
    )
    outside = OutsideVenue(exchange_for(server.base, desk_there.api_key, desk_there.secret))
    local = EngineVenue(kit.v.sequencer, kit.v.names["desk"], lambda: kit.v.now_ns)
    hedger = Hedger(local, kit.desk.store, {BTC: policy}, outside={server.base: outside})
    kit.accept(kit.request(side=QuoteSide.BUY, qty="0.5").quote_id)  # the desk sells 0.5 here

    record = hedger.review(kit.v.engine, BTC, "after the block trade")
    deadline = time.monotonic() + 60
    while any(not r.done for r in hedger.runners.values()) and time.monotonic() < deadline:
        hedger.step_due(0, outside=True)
        time.sleep(0.2)
    again = hedger.review(kit.v.engine, BTC, "a second look")
    hedger.refresh_outside(kit.v.engine, kit.desk.elsewhere)
    after = kit.request(side=QuoteSide.TWO_WAY, qty="0.5")

    assert record is not None and record.side == "BUY" and record.venue == server.base
    assert all(r.done for r in hedger.runners.values())
    assert outside.position_qty(BTC) == Decimal("0.5")
    assert hedger.outside_lots(kit.v.engine, BTC) == kit.v.lots(BTC, "0.5")
    assert again is None  # the outside position hedges the desk: nothing left to hedge
    assert after.inventory_lots == 0 and after.skew_bps == "0.0000"  # the quotes see the desk flat
    orders = outside.exchange.fetch_orders(SYMBOL)
    assert orders and all(o["clientOrderId"].startswith(f"{record.hedge_id}-c") for o in orders)


def test_an_outside_venue_without_credentials_is_refused_with_the_variables_to_set() -> None:
    with pytest.raises(OutsideVenueError, match="PERPX_OTC_HEDGE_API_KEY"):
        open_outside("ccxt:binanceusdm", env={})


def test_on_perpx_serve_a_booked_trade_is_hedged_on_the_outside_venue_by_the_worker(
    server: ServerProcess,  # noqa: F811 (the imported fixture)
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    maker, _ = _client(server, "otc-mm-serve")
    _, desk_there = _client(server, "otc-desk-serve")
    _quote(maker)
    monkeypatch.setenv(KEY_ENV, desk_there.api_key)
    monkeypatch.setenv(SECRET_ENV, desk_there.secret)
    section = (
        '\n[otc]\ndesk_account = 1\nmin_notional = "100"\n'
        f'[otc.markets.BTCUSDT]\nhedge = "immediate"\nmax_inventory = "5"\nhedge_duration_s = 3\nvenue = "{server.base}"\n'
    )
    outside = OutsideVenue(exchange_for(server.base, desk_there.api_key, desk_there.secret))

    with in_process_venue(tmp_path / "data", MANUAL_CONFIG + section) as venue:
        desk = Desk(venue)
        quote = venue.ok(
            "POST", "/perpx/v1/rfq", desk.client, {"symbol": BTC, "quantity": "0.5", "side": "BUY"}
        )
        venue.ok("POST", f"/perpx/v1/rfq/{quote['quoteId']}/accept", desk.client)
        deadline = time.monotonic() + 60
        while outside.position_qty(BTC) < Decimal("0.5") and time.monotonic() < deadline:
            time.sleep(0.5)
        here = venue.ok("GET", "/fapi/v2/positionRisk", desk.desk, {"symbol": BTC})

        store = OtcStore.in_dir(tmp_path / "data")
        try:
            while sum(Decimal(f.qty) for f in store.outside_fills()) < Decimal("0.5"):
                assert time.monotonic() < deadline, "the worker did not record the hedge's fills"
                time.sleep(0.5)
            recorded = store.outside_fills()
        finally:
            store.close()

    assert outside.position_qty(BTC) == Decimal("0.5")  # hedged there, once
    assert Decimal(here[0]["positionAmt"]) == Decimal("-0.5")  # nothing traded here for the hedge
    assert {(f.hedge_id, f.side, f.venue) for f in recorded} == {("H000001", "BUY", server.base)}
    assert (tmp_path / "data" / HEDGE_LOGS / "H000001.jsonl").exists()


def test_a_desk_whose_outside_venue_has_no_credentials_is_closed_with_the_reason(tmp_path: Path) -> None:
    section = '\n[otc]\ndesk_account = 1\n[otc.markets.BTCUSDT]\nvenue = "ccxt:binanceusdm"\n'
    with in_process_venue(tmp_path / "data", MANUAL_CONFIG + section) as venue:
        client = venue.trader("client")
        _, code, message = venue.refused("POST", "/perpx/v1/rfq", client, {"symbol": BTC, "quantity": "1"})

    assert code == errors.DESK_UNAVAILABLE and KEY_ENV in message


def test_outside_hedge_fills_are_recorded_once_and_their_pnl_closes_the_desks_total_equity(
    server: ServerProcess,  # noqa: F811 (the imported fixture)
    tmp_path: Path,
) -> None:
    maker, _ = _client(server, "otc-mm-pnl")
    _, desk_there = _client(server, "otc-desk-pnl")
    _quote(maker)
    kit = desk_kit(hedge=HedgeMode.IMMEDIATE)
    policy = MarketPolicy(
        hedge=HedgeMode.IMMEDIATE, max_inventory=Decimal(20), hedge_duration_s=3, venue=server.base
    )
    outside = OutsideVenue(exchange_for(server.base, desk_there.api_key, desk_there.secret))
    local = EngineVenue(kit.v.sequencer, kit.v.names["desk"], lambda: kit.v.now_ns)
    policies = {BTC: policy}
    hedger = Hedger(local, kit.desk.store, policies, log_dir=tmp_path, outside={server.base: outside})
    kit.accept(kit.request(side=QuoteSide.BUY, qty="0.5").quote_id)  # the desk sells 0.5 here
    record = hedger.review(kit.v.engine, BTC, "after the block trade")
    deadline = time.monotonic() + 60
    while any(not r.done for r in hedger.runners.values()) and time.monotonic() < deadline:
        hedger.step_due(0, outside=True)
        time.sleep(0.2)
    hedger.close()  # a restart before the fills were recorded: the next hedger reads them from its logs
    kit.v.mark(BTC, "60000")  # perpx's index where the outside venue trades
    restarted = Hedger(local, kit.desk.store, policies, log_dir=tmp_path, outside={server.base: outside})

    resumed = restarted.resume()
    recorded = restarted.record_outside_fills(kit.v.now_ns)
    again = restarted.record_outside_fills(kit.v.now_ns)
    kit.v.mark(BTC, "60010")  # the outside long 0.5 gains 5 USDT at perpx's index
    fills = kit.desk.store.outside_fills()
    desk = AccountId(kit.v.names["desk"])
    ledger, engine = decompose(kit.v.config, kit.commands, desk, outside_fills=fills)

    assert record is not None and all(r.done for r in hedger.runners.values()) and resumed == []
    mine = [
        t for t in outside.exchange.fetch_my_trades(SYMBOL) if str(t["id"]) in {f.trade_id for f in fills}
    ]
    assert recorded == len(fills) == len(mine) > 0 and again == 0
    assert {f.hedge_id for f in fills} == {record.hedge_id}
    atom = Decimal("0.00000001")
    paid = sum(Decimal(str(t["price"])) * Decimal(str(t["amount"])) for t in mine)
    fees = sum(Decimal(str((t.get("fee") or {}).get("cost") or 0)) for t in mine)
    bought = sum(Decimal(str(t["amount"])) for t in mine)
    assert bought == Decimal("0.5")
    assert ledger.total("outside_fees") == -int(fees / atom)
    assert ledger.total("outside_hedging_cost") == int((bought * 60000 - paid) / atom)
    assert ledger.total("outside_inventory_pnl") == int(Decimal(5) / atom)
    outside_equity = int((bought * 60010 - paid - fees) / atom)
    assert ledger.equity_end_atoms == equity_atoms(engine, desk) + outside_equity
    assert ledger.pnl_atoms + ledger.flows_atoms == ledger.equity_end_atoms - ledger.equity_start_atoms
    assert ledger.total("other") == 0
