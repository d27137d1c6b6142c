"""Hedging: the policy per symbol, and hedges worked by the execution engine on perpx's own book."""

from __future__ import annotations

import pytest

from perpx.engine.values import MarketId
from perpx.execution.inprocess import EngineVenue
from perpx.otc.config import HedgeMode
from perpx.otc.hedging import Hedger, hedge_lots
from perpx.otc.pricing import QuoteSide
from tests.engine.helpers import BTC
from tests.otc.kit import DeskKit, desk_kit


@pytest.mark.parametrize(
    ("mode", "exposure", "expected"),
    [
        (HedgeMode.IMMEDIATE, -1500, 1500),
        (HedgeMode.IMMEDIATE, 700, -700),
        (HedgeMode.THRESHOLD, -1500, 0),
        (HedgeMode.THRESHOLD, -2500, 2500),
        (HedgeMode.THRESHOLD, 2001, -2001),
        (HedgeMode.WAREHOUSE, -9000, 0),
        (HedgeMode.WAREHOUSE, -12_000, 2000),
        (HedgeMode.WAREHOUSE, 10_500, -500),
    ],
)
def test_policy_hedges_what_its_mode_says(mode: HedgeMode, exposure: int, expected: int) -> None:
    assert hedge_lots(mode, exposure, threshold_lots=2000, max_inventory_lots=10_000) == expected


def _hedger(kit: DeskKit) -> Hedger:
    venue = EngineVenue(kit.v.sequencer, kit.v.names["desk"], lambda: kit.v.now_ns)
    return Hedger(venue, kit.desk.store, dict(kit.desk.config.markets))


def _run(kit: DeskKit, hedger: Hedger, seconds: int) -> None:
    for _ in range(seconds):
        kit.v.advance(1)
        hedger.step_due(kit.v.now_ns)


def test_immediate_policy_hedges_the_desks_position_back_to_flat() -> None:
    kit = desk_kit(hedge=HedgeMode.IMMEDIATE)
    hedger = _hedger(kit)
    kit.accept(kit.request(side=QuoteSide.BUY, qty="2").quote_id)
    assert kit.v.position("desk", BTC) == -2

    started = hedger.review(kit.v.engine, BTC, "after Q00000001")
    _run(kit, hedger, 90)

    assert started is not None and started.side == "BUY" and started.qty_lots == 2000
    assert kit.v.position("desk", BTC) == 0
    assert kit.desk.store.hedges() == [started]


def test_threshold_policy_leaves_a_position_below_the_threshold_and_hedges_above_it() -> None:
    kit = desk_kit(hedge=HedgeMode.THRESHOLD, threshold="2")
    hedger = _hedger(kit)
    kit.accept(kit.request(side=QuoteSide.SELL, qty="1.5").quote_id)

    assert hedger.review(kit.v.engine, BTC, "below") is None

    kit.accept(kit.request(side=QuoteSide.SELL, qty="1").quote_id)
    started = hedger.review(kit.v.engine, BTC, "above")
    _run(kit, hedger, 90)

    assert started is not None and started.side == "SELL" and started.qty_lots == 2500
    assert kit.v.position("desk", BTC) == 0


def test_working_hedge_counts_toward_the_exposure_so_it_is_not_sent_twice() -> None:
    kit = desk_kit(hedge=HedgeMode.IMMEDIATE)
    hedger = _hedger(kit)
    kit.accept(kit.request(side=QuoteSide.BUY, qty="2").quote_id)
    first = hedger.review(kit.v.engine, BTC, "first")

    second = hedger.review(kit.v.engine, BTC, "again")

    assert first is not None and second is None
    assert hedger.working_lots(BTC) == 2000


def test_warehouse_policy_keeps_inventory_within_its_limit() -> None:
    kit = desk_kit(hedge=HedgeMode.WAREHOUSE, max_inventory="3")
    hedger = _hedger(kit)
    kit.accept(kit.request(side=QuoteSide.BUY, qty="2").quote_id)

    assert hedger.review(kit.v.engine, BTC, "warehouse") is None
    assert kit.v.position("desk", BTC) == -2
    quote = kit.desk.request(kit.v.engine, kit.v.names["client"], MarketId(BTC), QuoteSide.TWO_WAY, 2000)
    assert quote.ask_ticks is None and quote.bid_ticks is not None  # only the reducing side is priced
