"""Spot RFQs through signed requests, in process: quote, accept, both wallets, income rows, user streams.

One venue (manual clock, the lending tables: BTC priced at 50,000 by two sources) with an
``[otc.spot."BTC/USDT"]`` pair; the desk (account 1, also the venue's lender) holds 10 BTC.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest

from perpx.lending.venue import LENDING_TOML
from tests.server.harness import MANUAL_CONFIG, Trader
from tests.server.inprocess import InProcessVenue, in_process_venue

PAIR = "BTC/USDT"
OTC_SECTION = """
[otc]
desk_account = 1
min_notional = "100"

[otc.spot."BTC/USDT"]
tick_size = "0.01"
lot_size = "0.001"
max_inventory = "20"
target_inventory = "10"
"""


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessVenue]:
    config = MANUAL_CONFIG + LENDING_TOML + OTC_SECTION
    with in_process_venue(tmp_path_factory.mktemp("otcspot") / "data", config) as venue:
        desk = venue.trader("desk", "1000000")
        assert desk.account_id == 1
        funded = venue.admin(
            "POST", "/deposits", {"accountId": 1, "asset": "BTC", "amount": "10", "txId": "desk-btc"}
        )
        assert funded.status_code == 200, funded.text
        for source in ("binance", "okx"):
            answer = venue.admin(
                "POST", "/asset-prices", {"asset": "BTC", "source": source, "price": "50000"}
            )
            assert answer.status_code == 200, answer.text
        yield venue


def _receive(ws: Any, timeout_s: float = 20.0) -> Any:
    """The next user-stream message, or a failure after ``timeout_s``."""
    pool = ThreadPoolExecutor(1)
    try:
        return pool.submit(ws.receive_json).result(timeout=timeout_s)
    finally:
        pool.shutdown(wait=False)


def _balances(venue: InProcessVenue, trader: Trader) -> dict[str, Decimal]:
    rows = venue.ok("GET", "/fapi/v2/balance", trader)
    return {row["asset"]: Decimal(row["balance"]) for row in rows}


def test_client_buys_btc_spot_and_both_wallets_histories_and_streams_show_it(venue: InProcessVenue) -> None:
    client = venue.trader("spot-client", "100000")
    quote = venue.ok("POST", "/perpx/v1/rfq", client, {"symbol": PAIR, "quantity": "0.5", "side": "BUY"})
    assert quote["symbol"] == PAIR and Decimal(quote["indexPrice"]) == 50000 and quote["bidPrice"] is None
    ask = Decimal(quote["askPrice"])
    key = venue.client.post("/fapi/v1/listenKey", headers={"X-MBX-APIKEY": client.api_key}).json()[
        "listenKey"
    ]
    with venue.client.websocket_connect(f"/private/ws?listenKey={key}") as ws:
        booked = venue.ok("POST", f"/perpx/v1/rfq/{quote['quoteId']}/accept", client)
        update = _receive(ws)

    assert booked["status"] == "FILLED" and Decimal(booked["price"]) == ask > 50000
    cost = ask * Decimal("0.5")
    assert _balances(venue, client) == {"USDT": 100000 - cost, "BTC": Decimal("0.5")}
    assert (update["e"], update["a"]["m"]) == ("ACCOUNT_UPDATE", "ORDER")
    rows = {row["a"]: row for row in update["a"]["B"]}
    assert Decimal(rows["BTC"]["bc"]) == Decimal("0.5") and Decimal(rows["USDT"]["bc"]) == -cost
    income = venue.ok("GET", "/fapi/v1/income", client)
    swaps = {
        (r["incomeType"], r["asset"], r["tradeId"]): Decimal(r["income"])
        for r in income
        if r["info"] == f"BLOCK {quote['quoteId']}"
    }
    trade = str(booked["tradeId"])
    assert swaps == {
        ("COIN_SWAP_DEPOSIT", "BTC", trade): Decimal("0.5"),
        ("COIN_SWAP_WITHDRAW", "USDT", trade): -cost,
    }
    shown = venue.ok("GET", f"/perpx/v1/rfq/{quote['quoteId']}", client)
    assert shown["status"] == "FILLED" and shown["tradeId"] == booked["tradeId"]


def test_spot_quantity_off_the_pairs_lot_is_refused_with_a_reason(venue: InProcessVenue) -> None:
    client = venue.trader("spot-lot", "100000")

    status, code, message = venue.refused(
        "POST", "/perpx/v1/rfq", client, {"symbol": PAIR, "quantity": "0.0005"}
    )

    assert (status, code) == (400, -1102) and "lot size 0.001" in message


def test_spot_sell_without_the_btc_is_refused_by_the_engine(venue: InProcessVenue) -> None:
    client = venue.trader("spot-seller", "100000")
    quote = venue.ok("POST", "/perpx/v1/rfq", client, {"symbol": PAIR, "quantity": "1", "side": "SELL"})

    status, code, message = venue.refused("POST", f"/perpx/v1/rfq/{quote['quoteId']}/accept", client)

    assert (status, code) == (400, -9572) and "the client" in message
    shown = venue.ok("GET", f"/perpx/v1/rfq/{quote['quoteId']}", client)
    assert shown["status"] == "REJECTED" and shown["code"] == -9572
    assert _balances(venue, client)["USDT"] == 100000
