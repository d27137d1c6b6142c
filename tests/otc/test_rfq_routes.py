"""The RFQ routes on an in-process venue: request, accept, read; block trades in both trade histories."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from perpx.otc import errors
from tests.server.harness import MANUAL_CONFIG, Trader
from tests.server.inprocess import InProcessVenue, in_process_venue

SYMBOL = "BTCUSDT"
OTC_SECTION = """
[otc]
desk_account = {desk}
quote_ttl_ms = 5000
last_look_bps = "5"
min_notional = "100"

[otc.markets.BTCUSDT]
hedge = "warehouse"
max_inventory = "5"
"""


class Desk:
    """The venue, its desk's account, a maker's book around 30000, and a client."""

    def __init__(self, venue: InProcessVenue) -> None:
        self.venue = venue
        self.desk = venue.trader("desk", deposit="1000000")
        self.maker = venue.trader("maker", deposit="1000000")
        self.client = venue.trader("client", deposit="1000000")
        venue.mark(SYMBOL, "30000")
        for i in range(1, 4):
            for side, price in (("BUY", 30000 - 5 * i), ("SELL", 30000 + 5 * i)):
                venue.ok(
                    "POST",
                    "/fapi/v1/order",
                    self.maker,
                    {
                        "symbol": SYMBOL,
                        "side": side,
                        "type": "LIMIT",
                        "quantity": "3",
                        "price": price,
                        "timeInForce": "GTC",
                    },
                )


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    data: Path = tmp_path_factory.mktemp("otc") / "data"
    # the first account the admin opens is 1: the desk's
    with in_process_venue(data, MANUAL_CONFIG + OTC_SECTION.format(desk=1)) as venue:
        kit = Desk(venue)
        assert kit.desk.account_id == 1
        yield kit


def _rfq(desk: Desk, trader: Trader, **params: str) -> dict[str, Any]:
    answer: dict[str, Any] = desk.venue.ok("POST", "/perpx/v1/rfq", trader, {"symbol": SYMBOL, **params})
    return answer


def test_client_requests_accepts_and_sees_a_block_trade(desk: Desk) -> None:
    venue = desk.venue
    quote = _rfq(desk, desk.client, quantity="0.5")
    assert quote["side"] == "TWO_WAY" and Decimal(quote["bidPrice"]) < 30000 < Decimal(quote["askPrice"])
    assert quote["expireTime"] - quote["createTime"] == 5000

    booked = venue.ok("POST", f"/perpx/v1/rfq/{quote['quoteId']}/accept", desk.client, {"side": "BUY"})

    assert booked["status"] == "FILLED" and booked["price"] == quote["askPrice"]
    shown = venue.ok("GET", f"/perpx/v1/rfq/{quote['quoteId']}", desk.client)
    assert shown["status"] == "FILLED" and shown["tradeId"] == booked["tradeId"]
    for trader, side in ((desk.client, "BUY"), (desk.desk, "SELL")):
        trades = venue.ok("GET", "/fapi/v1/userTrades", trader, {"symbol": SYMBOL})
        block = [t for t in trades if t["id"] == booked["tradeId"]]
        assert len(block) == 1 and block[0]["side"] == side and block[0]["price"] == quote["askPrice"]
    risk = venue.ok("GET", "/fapi/v2/positionRisk", desk.client, {"symbol": SYMBOL})
    assert Decimal(risk[0]["positionAmt"]) == Decimal("0.5")


def test_notional_request_is_sized_at_the_index_rounded_down(desk: Desk) -> None:
    quote = _rfq(desk, desk.client, quoteQty="10000", side="SELL")

    assert quote["quantity"] == "0.333" and quote["askPrice"] is None and quote["bidPrice"] is not None


def test_accept_after_expiry_is_refused_and_the_quote_shows_expired(desk: Desk) -> None:
    venue = desk.venue
    quote = _rfq(desk, desk.client, quantity="0.1", side="SELL")
    assert venue.admin("POST", "/clock", {"advanceMs": 6000}).status_code == 200

    status, code, msg = venue.refused("POST", f"/perpx/v1/rfq/{quote['quoteId']}/accept", desk.client)

    assert (status, code) == (400, errors.QUOTE_EXPIRED) and "expired" in msg
    assert venue.ok("GET", f"/perpx/v1/rfq/{quote['quoteId']}", desk.client)["status"] == "EXPIRED"


def test_last_look_rejection_is_answered_and_recorded_with_the_move(desk: Desk) -> None:
    venue = desk.venue
    quote = _rfq(desk, desk.client, quantity="0.1", side="BUY")
    venue.mark(SYMBOL, "30060")  # +20 bps
    try:
        status, code, msg = venue.refused("POST", f"/perpx/v1/rfq/{quote['quoteId']}/accept", desk.client)
    finally:
        venue.mark(SYMBOL, "30000")

    assert (status, code) == (400, errors.LAST_LOOK) and "20.00 bps" in msg
    shown = venue.ok("GET", f"/perpx/v1/rfq/{quote['quoteId']}", desk.client)
    assert shown["status"] == "LAST_LOOK_REJECTED" and Decimal(shown["indexMoveBps"]) == 20


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, -1102),
        ({"quantity": "1", "quoteQty": "100"}, -1102),
        ({"quantity": "0.0001"}, -1111),
        ({"quantity": "-1"}, -1102),
        ({"quantity": "1", "side": "LONG"}, -1102),
        ({"quantity": "0.001"}, errors.NOT_QUOTED),
        ({"quantity": "100"}, errors.NOT_QUOTED),
    ],
)
def test_bad_requests_are_refused_with_a_code(desk: Desk, params: dict[str, str], code: int) -> None:
    status, got, msg = desk.venue.refused("POST", "/perpx/v1/rfq", desk.client, {"symbol": SYMBOL, **params})

    assert (status, got) == (400, code) and msg


def test_unknown_foreign_and_malformed_quote_ids_are_refused(desk: Desk) -> None:
    venue = desk.venue
    quote = _rfq(desk, desk.client, quantity="0.1", side="BUY")

    assert venue.refused("GET", "/perpx/v1/rfq/Q99999999", desk.client)[1] == errors.UNKNOWN_QUOTE
    assert venue.refused("GET", f"/perpx/v1/rfq/{quote['quoteId']}", desk.maker)[1] == errors.UNKNOWN_QUOTE
    assert (
        venue.refused("POST", f"/perpx/v1/rfq/{quote['quoteId']}/accept", desk.maker)[1]
        == errors.UNKNOWN_QUOTE
    )
    assert venue.refused("GET", "/perpx/v1/rfq/Q-1;drop", desk.client)[1] == -1102


def _receive(ws: Any, deadline_s: float = 10.0) -> dict[str, Any]:
    """One frame of ``ws``, or a failure after ``deadline_s`` (the session's receive has no timeout)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        frame: dict[str, Any] = pool.submit(ws.receive_json).result(timeout=deadline_s)
        return frame


def test_block_trade_reaches_both_accounts_user_streams(desk: Desk) -> None:
    venue = desk.venue
    keys = {}
    for name, trader in (("client", desk.client), ("desk", desk.desk)):
        answer = venue.client.post("/fapi/v1/listenKey", headers={"X-MBX-APIKEY": trader.api_key})
        keys[name] = answer.json()["listenKey"]
    quote = _rfq(desk, desk.client, quantity="0.2", side="SELL")
    with (
        venue.client.websocket_connect(f"/private/ws?listenKey={keys['client']}") as client_ws,
        venue.client.websocket_connect(f"/private/ws?listenKey={keys['desk']}") as desk_ws,
    ):
        venue.ok("POST", f"/perpx/v1/rfq/{quote['quoteId']}/accept", desk.client)
        client_update, desk_update = _receive(client_ws), _receive(desk_ws)

    for update in (client_update, desk_update):
        assert update["e"] == "ACCOUNT_UPDATE" and update["a"]["m"] == "ORDER"
        assert [row["s"] for row in update["a"]["P"]] == [SYMBOL]
    positions = venue.ok("GET", "/fapi/v2/positionRisk", desk.desk, {"symbol": SYMBOL})
    assert Decimal(desk_update["a"]["P"][0]["pa"]) == Decimal(positions[0]["positionAmt"])


def test_admin_metrics_show_the_desks_kpis(desk: Desk) -> None:
    quote = _rfq(desk, desk.client, quantity="0.1", side="SELL")
    desk.venue.ok("POST", f"/perpx/v1/rfq/{quote['quoteId']}/accept", desk.client)

    text = desk.venue.client.get("http://admin.test/metrics").text

    filled = next(line for line in text.splitlines() if line.startswith('perpx_otc_quotes{state="FILLED"}'))
    assert float(filled.split()[-1]) >= 1
    assert "perpx_otc_hit_ratio" in text and "perpx_otc_last_look_rate" in text
