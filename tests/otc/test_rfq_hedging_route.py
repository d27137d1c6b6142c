"""On a running venue, the desk's hedger works its hedge on the book after a booked block trade."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from tests.otc.test_rfq_routes import SYMBOL, Desk
from tests.server.harness import MANUAL_CONFIG
from tests.server.inprocess import in_process_venue

OTC_SECTION = """
[otc]
desk_account = 1
min_notional = "100"

[otc.markets.BTCUSDT]
hedge = "immediate"
max_inventory = "5"
hedge_duration_s = 60
"""


def test_immediate_policy_hedges_a_booked_trade_back_to_flat_through_the_book(tmp_path: Path) -> None:
    with in_process_venue(tmp_path / "data", MANUAL_CONFIG + OTC_SECTION) as venue:
        desk = Desk(venue)
        quote = venue.ok(
            "POST", "/perpx/v1/rfq", desk.client, {"symbol": SYMBOL, "quantity": "1", "side": "BUY"}
        )
        venue.ok("POST", f"/perpx/v1/rfq/{quote['quoteId']}/accept", desk.client)
        held = []
        for _ in range(40):  # 40 x 5 s of venue time: the 60 s hedge and its end, with room to spare
            risk = venue.ok("GET", "/fapi/v2/positionRisk", desk.desk, {"symbol": SYMBOL})
            held.append(Decimal(risk[0]["positionAmt"]))
            if held[-1] == 0:
                break
            assert venue.admin("POST", "/clock", {"advanceMs": 5000}).status_code == 200

        trades = venue.ok("GET", "/fapi/v1/userTrades", desk.desk, {"symbol": SYMBOL})

    assert held[0] == Decimal(-1) and held[-1] == 0
    hedge_fills = [t for t in trades if t["orderId"] != 0]
    assert hedge_fills and all(t["side"] == "BUY" for t in hedge_fills)
    assert sum(Decimal(t["qty"]) for t in hedge_fills) == 1
