"""The OTC desk over FIX on a real ``perpx serve --fix-port``: R -> S, D on the QuoteID -> a block fill."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal

import pytest

from perpx.fix.session import sending_time
from tests.fix.test_gateway_e2e import FixClient
from tests.fix.venue import FixVenue
from tests.server.harness import MANUAL_CONFIG, Trader

SYMBOL = "BTCUSDT"
OTC_SECTION = """
[otc]
desk_account = 1
min_notional = "100"

[otc.markets.BTCUSDT]
hedge = "warehouse"
max_inventory = "5"
"""


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FixVenue, Trader]]:
    process = FixVenue(
        tmp_path_factory.mktemp("otc-fix") / "data", config_text=MANUAL_CONFIG + OTC_SECTION
    ).start()
    try:
        desk = process.trader("desk", "1000000")
        assert desk.account_id == 1
        maker = process.trader("maker", "1000000")
        for side, price in (("BUY", "59990"), ("SELL", "60010")):
            placed = process.signed(
                "POST",
                "/fapi/v1/order",
                maker,
                {
                    "symbol": SYMBOL,
                    "side": side,
                    "type": "LIMIT",
                    "quantity": "5",
                    "price": price,
                    "timeInForce": "GTC",
                },
            )
            assert placed.status_code == 200, placed.text
        yield process, desk
    finally:
        process.stop()


@pytest.fixture
def client(venue: tuple[FixVenue, Trader]) -> Iterator[FixClient]:
    process, _ = venue
    trader = process.trader(f"fix-client-{time.monotonic_ns()}", "1000000")
    fix = FixClient(process.fix_port, trader, f"OTC{trader.account_id}")
    try:
        fix.logon()
        yield fix
    finally:
        fix.close()


def _request(client: FixClient, req_id: str, qty: str, side: str | None = None) -> None:
    body = [(131, req_id), (146, "1"), (55, SYMBOL), (38, qty)]
    if side is not None:
        body.insert(3, (54, side))
    client.send("R", body)


def test_quote_request_is_answered_with_a_two_way_quote_and_an_order_on_it_is_filled_as_a_block(
    venue: tuple[FixVenue, Trader], client: FixClient
) -> None:
    process, _ = venue
    _request(client, "rfq-1", "0.5")
    quote = client.expect("S", t131="rfq-1")
    quote_id = quote.get(117) or ""
    offer = Decimal(quote.get(133) or "0")
    assert Decimal(quote.get(132) or "0") < 60000 < offer and quote.get(135) == "0.5"

    client.send(
        "D",
        [
            (11, "take-1"),
            (55, SYMBOL),
            (54, "1"),
            (60, sending_time(time.time_ns())),
            (38, "0.5"),
            (40, "D"),
            (117, quote_id),
        ],
    )
    report = client.expect("8", t11="take-1")

    assert (report.get(150), report.get(39), report.get(117)) == ("F", "2", quote_id)
    assert Decimal(report.get(31) or "0") == offer and report.get(14) == "0.5" and report.get(151) == "0"
    shown = process.signed("GET", f"/perpx/v1/rfq/{quote_id}", client.trader)
    assert shown.json()["status"] == "FILLED"


def test_order_on_a_quote_already_used_is_rejected_with_the_desks_code(client: FixClient) -> None:
    _request(client, "rfq-2", "0.1", side="2")
    quote_id = client.expect("S", t131="rfq-2").get(117) or ""
    order = [(55, SYMBOL), (54, "2"), (60, sending_time(time.time_ns())), (40, "D"), (117, quote_id)]
    client.send("D", [(11, "hit-1"), *order])
    assert client.expect("8", t11="hit-1").get(150) == "F"

    client.send("D", [(11, "hit-2"), *order])
    rejected = client.expect("8", t11="hit-2")

    assert rejected.get(150) == "8" and (rejected.get(58) or "").startswith("-9563:")


def test_quote_request_too_small_is_rejected_with_the_reason(client: FixClient) -> None:
    _request(client, "rfq-3", "0.001")

    reject = client.expect("AG", t131="rfq-3")

    assert reject.get(658) == "99" and (reject.get(58) or "").startswith("-9566:")


def test_order_on_a_quote_with_another_quantity_is_rejected(client: FixClient) -> None:
    _request(client, "rfq-4", "0.2", side="1")
    quote_id = client.expect("S", t131="rfq-4").get(117) or ""

    client.send(
        "D",
        [
            (11, "odd-1"),
            (55, SYMBOL),
            (54, "1"),
            (60, sending_time(time.time_ns())),
            (38, "0.3"),
            (40, "D"),
            (117, quote_id),
        ],
    )
    rejected = client.expect("8", t11="odd-1")

    assert rejected.get(150) == "8" and "OrderQty(38)" in (rejected.get(58) or "")
