"""A working hedge survives a restart: resumed from its child log, it finishes without sending a child twice."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path

from perpx.execution.childlog import DoneRecord, PlaceRecord, read_log
from perpx.server.otc_routes import HEDGE_LOGS
from tests.otc.test_rfq_hedging_route import OTC_SECTION
from tests.otc.test_rfq_routes import SYMBOL, Desk
from tests.server.harness import MANUAL_CONFIG, Trader
from tests.server.inprocess import InProcessVenue, in_process_venue

CONFIG = MANUAL_CONFIG + OTC_SECTION


def _position(venue: InProcessVenue, desk: Trader) -> Decimal:
    risk = venue.ok("GET", "/fapi/v2/positionRisk", desk, {"symbol": SYMBOL})
    return Decimal(risk[0]["positionAmt"])


def test_a_restart_mid_hedge_resumes_it_from_its_child_log_and_sends_no_child_twice(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with in_process_venue(data, CONFIG) as venue:
        kit = Desk(venue)
        quote = venue.ok(
            "POST", "/perpx/v1/rfq", kit.client, {"symbol": SYMBOL, "quantity": "1", "side": "BUY"}
        )
        venue.ok("POST", f"/perpx/v1/rfq/{quote['quoteId']}/accept", kit.client)
        for _ in range(3):  # 15 s of a 60 s hedge: some children sent, the hedge not done
            assert venue.admin("POST", "/clock", {"advanceMs": 5000}).status_code == 200
        mid = _position(venue, kit.desk)
        before = read_log(data / HEDGE_LOGS / "H000001.jsonl")
        desk = kit.desk

    with in_process_venue(data, CONFIG) as venue:
        held = [_position(venue, desk)]
        for _ in range(40):
            if held[-1] == 0:
                break
            assert venue.admin("POST", "/clock", {"advanceMs": 5000}).status_code == 200
            held.append(_position(venue, desk))
        orders = venue.ok("GET", "/fapi/v1/allOrders", desk, {"symbol": SYMBOL})

    records = read_log(data / HEDGE_LOGS / "H000001.jsonl")
    placed = Counter(r.client_order_id for r in records if isinstance(r, PlaceRecord))
    # the hedge was working when the venue stopped: children sent, not done
    assert any(isinstance(r, PlaceRecord) for r in before) and not any(
        isinstance(r, DoneRecord) for r in before
    )
    assert held[0] == mid and held[-1] == 0  # resumed, it finished the hedge: flat, not over-hedged
    assert all(count == 1 for count in placed.values())
    ids = Counter(o["clientOrderId"] for o in orders)
    assert all(cid.startswith("H000001-c") for cid in ids) and all(n == 1 for n in ids.values())
    assert not (data / HEDGE_LOGS / "H000002.jsonl").exists()  # no second hedge for the same exposure
