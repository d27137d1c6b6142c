"""Multi-Assets Mode through signed requests, in process: the mode routes as Binance's, the account and
balance routes per asset, and ``ACCOUNT_UPDATE`` listing each changed asset.

One venue (manual clock) with BTC as collateral at 50,000 (5% haircut) serves the module; each
test opens its own account.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from perpx.lending.venue import LENDING_TOML
from tests.server.harness import MANUAL_CONFIG, Trader
from tests.server.inprocess import InProcessVenue, in_process_venue

MODE = "/fapi/v1/multiAssetsMargin"


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessVenue]:
    with in_process_venue(tmp_path_factory.mktemp("multi") / "data", MANUAL_CONFIG + LENDING_TOML) as venue:
        venue.trader("lender", "1000000")
        for source in ("binance", "okx"):
            answer = venue.admin(
                "POST", "/asset-prices", {"asset": "BTC", "source": source, "price": "50000"}
            )
            assert answer.status_code == 200, answer.text
        venue.mark("BTCUSDT", "50000")
        yield venue


def _with_btc(venue: InProcessVenue, name: str, btc: str = "1") -> Trader:
    trader = venue.trader(name, None)
    funded = venue.admin(
        "POST",
        "/deposits",
        {"accountId": trader.account_id, "asset": "BTC", "amount": btc, "txId": f"btc-{name}"},
    )
    assert funded.status_code == 200, funded.text
    return trader


def _receive(ws: Any, timeout_s: float = 20.0) -> Any:
    """The next user-stream message, or a failure after ``timeout_s``."""
    pool = ThreadPoolExecutor(1)
    try:
        return pool.submit(ws.receive_json).result(timeout=timeout_s)
    finally:
        pool.shutdown(wait=False)


def test_mode_routes_answer_as_binance(venue: InProcessVenue) -> None:
    # Arrange
    ann = _with_btc(venue, "ann")
    # Act
    before = venue.ok("GET", MODE, ann)
    switched = venue.ok("POST", MODE, ann, {"multiAssetsMargin": "true"})
    after = venue.ok("GET", MODE, ann)
    _, again, message = venue.refused("POST", MODE, ann, {"multiAssetsMargin": "true"})
    _, missing, _ = venue.refused("POST", MODE, ann, {})
    _, garbled, _ = venue.refused("POST", MODE, ann, {"multiAssetsMargin": "yes"})
    # Assert
    assert (before, switched, after) == (
        {"multiAssetsMargin": False},
        {"code": 200, "msg": "success"},
        {"multiAssetsMargin": True},
    )
    assert (again, missing, garbled) == (-4171, -1102, -1102)
    assert "does not need to be adjusted" in message


def test_switching_with_an_open_order_is_refused_with_4170(venue: InProcessVenue) -> None:
    # Arrange
    ben = venue.trader("ben", "10000")
    order = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01",
        "price": "49000",
    }
    venue.ok("POST", "/fapi/v1/order", ben, order)
    # Act
    status, code, message = venue.refused("POST", MODE, ben, {"multiAssetsMargin": "true"})
    # Assert
    assert (status, code) == (400, -4170)
    assert "open orders" in message


def test_account_and_balance_report_each_asset_in_the_mode(venue: InProcessVenue) -> None:
    # Arrange: 1 BTC counts 47,500 USDT of margin
    cat = _with_btc(venue, "cat")
    venue.ok("POST", MODE, cat, {"multiAssetsMargin": "true"})
    # Act
    account = venue.ok("GET", "/fapi/v2/account", cat)
    v3 = venue.ok("GET", "/fapi/v3/account", cat)
    balances = {row["asset"]: row for row in venue.ok("GET", "/fapi/v2/balance", cat)}
    # Assert
    assert account["multiAssetsMargin"] is True
    assert (account["totalMarginBalance"], account["availableBalance"], account["totalWalletBalance"]) == (
        "47500",
        "47500",
        "47500",
    )
    btc = next(row for row in v3["assets"] if row["asset"] == "BTC")
    assert (btc["walletBalance"], btc["marginAvailable"], btc["maxWithdrawAmount"]) == ("1", True, "1")
    assert (balances["BTC"]["balance"], balances["BTC"]["marginAvailable"]) == ("1", True)
    assert (balances["USDT"]["balance"], balances["USDT"]["availableBalance"]) == ("0", "47500")


def test_an_order_margined_by_btc_alone_is_accepted_and_limits_the_btc_withdrawable(
    venue: InProcessVenue,
) -> None:
    # Arrange
    dan = _with_btc(venue, "dan")
    venue.ok("POST", MODE, dan, {"multiAssetsMargin": "true"})
    order = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.5",
        "price": "49000",
    }
    # Act: 24,500 of notional at 20x needs 1,225 of margin, from BTC alone
    placed = venue.ok("POST", "/fapi/v1/order", dan, order)
    balances = {row["asset"]: row for row in venue.ok("GET", "/fapi/v2/balance", dan)}
    # Assert: what may leave keeps 1,225 of margin: 1 - 1,225 / 47,500 BTC, down to the atom
    assert placed["status"] == "NEW"
    withdrawable = balances["BTC"]["maxWithdrawAmount"]
    assert withdrawable == "0.97421052"


def test_account_update_lists_the_btc_deposit_as_its_own_asset(venue: InProcessVenue) -> None:
    # Arrange
    eve = _with_btc(venue, "eve")
    key = venue.client.post("/fapi/v1/listenKey", headers={"X-MBX-APIKEY": eve.api_key}).json()["listenKey"]
    with venue.client.websocket_connect(f"/private/ws?listenKey={key}") as ws:
        # Act
        funded = venue.admin(
            "POST",
            "/deposits",
            {"accountId": eve.account_id, "asset": "BTC", "amount": "0.5", "txId": "eve-2"},
        )
        assert funded.status_code == 200, funded.text
        update = _receive(ws)
    # Assert
    assert (update["e"], update["a"]["m"]) == ("ACCOUNT_UPDATE", "DEPOSIT")
    rows = {row["a"]: row for row in update["a"]["B"]}
    assert rows["BTC"] == {"a": "BTC", "wb": "1.5", "cw": "1.5", "bc": "0.5"}
    assert rows["USDT"]["bc"] == "0"
