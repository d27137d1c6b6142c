"""The loan routes through signed requests, in process: Binance's fields, perpx's codes, the history read model.

One venue (manual clock) with BTC as collateral at 50,000 and a USDT lender (account 1, 1,000,000
USDT) serves the module; each test opens its own borrower.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from perpx.lending.venue import LENDING_TOML
from tests.server.harness import ADMIN_TOKEN, MANUAL_CONFIG, Trader
from tests.server.inprocess import ADMIN_BASE, InProcessVenue, in_process_venue

FLEX = "/sapi/v2/loan/flexible"
PAIR = {"loanCoin": "USDT", "collateralCoin": "BTC"}


def _price(venue: InProcessVenue, price: str) -> dict[str, Any]:
    for source in ("binance", "okx"):
        answer = venue.admin("POST", "/asset-prices", {"asset": "BTC", "source": source, "price": price})
        assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessVenue]:
    with in_process_venue(tmp_path_factory.mktemp("lending") / "data", MANUAL_CONFIG + LENDING_TOML) as venue:
        lender = venue.trader("lender", "1000000")
        assert lender.account_id == 1
        _price(venue, "50000")
        yield venue


def _receive(ws: Any, timeout_s: float = 20.0) -> Any:
    """The next user-stream message, or a failure after ``timeout_s`` (no test waits without a deadline)."""
    pool = ThreadPoolExecutor(1)
    try:
        return pool.submit(ws.receive_json).result(timeout=timeout_s)
    finally:
        pool.shutdown(wait=False)


def _borrower(venue: InProcessVenue, name: str, btc: str = "10") -> Trader:
    trader = venue.trader(name, None)
    funded = venue.admin(
        "POST",
        "/deposits",
        {"accountId": trader.account_id, "asset": "BTC", "amount": btc, "txId": f"btc-{name}"},
    )
    assert funded.status_code == 200, funded.text
    return trader


def test_asset_price_route_reports_the_index(venue: InProcessVenue) -> None:
    body = _price(venue, "50000")
    assert (body["indexPrice"], body["stale"]) == ("50000", False)


def test_borrow_repay_and_ongoing_orders_in_binance_fields(venue: InProcessVenue) -> None:
    # Arrange
    alice = _borrower(venue, "alice")
    # Act
    borrowed = venue.ok("POST", f"{FLEX}/borrow", alice, {**PAIR, "loanAmount": "39000"})
    ongoing = venue.ok("GET", f"{FLEX}/ongoing/orders", alice)
    repaid = venue.ok("POST", f"{FLEX}/repay", alice, {**PAIR, "repayAmount": "19500"})
    # Assert
    assert borrowed == {
        "loanCoin": "USDT",
        "loanAmount": "39000",
        "collateralCoin": "BTC",
        "collateralAmount": "1",
        "status": "Succeeds",
    }
    assert ongoing == {
        "rows": [
            {
                "loanCoin": "USDT",
                "totalDebt": "39000",
                "collateralCoin": "BTC",
                "collateralAmount": "1",
                "currentLTV": "0.78",
            }
        ],
        "total": 1,
    }
    assert (repaid["remainingDebt"], repaid["remainingCollateral"], repaid["currentLTV"]) == (
        "19500",
        "0.5",
        "0.78",
    )
    assert repaid["repayStatus"] == "Repaying"
    history = venue.ok("GET", f"{FLEX}/borrow/history", alice)
    assert history["total"] == 1 and history["rows"][0]["initialLoanAmount"] == "39000"
    repays = venue.ok("GET", f"{FLEX}/repay/history", alice)
    assert repays["rows"][0]["collateralReturn"] == "0.5"


def test_borrow_above_the_initial_ltv_is_refused_with_its_code(venue: InProcessVenue) -> None:
    bob = _borrower(venue, "bob")
    status, code, message = venue.refused(
        "POST", f"{FLEX}/borrow", bob, {**PAIR, "loanAmount": "40000", "collateralAmount": "1"}
    )
    assert (status, code) == (400, -9532)
    assert "initial LTV 78.00%" in message


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"loanCoin": "USDT"}, -1102),  # collateralCoin missing
        ({**PAIR}, -1102),  # neither amount
        ({**PAIR, "loanAmount": "-5"}, -1102),
        ({**PAIR, "loanAmount": "1.000000001"}, -1111),  # finer than the USDT atom
        ({**PAIR, "loanAmount": "9" * 80}, -1102),  # one oversized number stops nothing
        ({**PAIR, "collateralAmount": "99999999999999999999"}, -1102),  # beyond the venue's int64
        ({**PAIR, "loanAmount": "NaN"}, -1102),
        ({**PAIR, "loanAmount": "1e30"}, -1102),
        ({**PAIR, "collateralAmount": "11"}, -2018),  # more BTC than the account holds
        ({"loanCoin": "DOGE", "collateralCoin": "BTC", "loanAmount": "1"}, -9002),
        ({"loanCoin": "BTC", "collateralCoin": "BTC", "loanAmount": "1"}, -9530),
    ],
)
def test_bad_borrow_requests_get_a_clear_code(
    venue: InProcessVenue, params: dict[str, str], code: int
) -> None:
    carol = _borrower(venue, f"carol{abs(code)}{len(params)}")
    status, got, message = venue.refused("POST", f"{FLEX}/borrow", carol, params)
    assert (status, got) == (400, code), message


def test_adjust_ltv_and_its_history(venue: InProcessVenue) -> None:
    dave = _borrower(venue, "dave")
    venue.ok("POST", f"{FLEX}/borrow", dave, {**PAIR, "loanAmount": "39000"})
    added = venue.ok(
        "POST", f"{FLEX}/adjust/ltv", dave, {**PAIR, "adjustmentAmount": "1", "direction": "ADDITIONAL"}
    )
    history = venue.ok("GET", f"{FLEX}/ltv/adjustment/history", dave)
    assert (added["currentLTV"], added["status"]) == ("0.39", "Succeeds")
    assert history["rows"] == [
        {
            "loanCoin": "USDT",
            "collateralCoin": "BTC",
            "direction": "ADDITIONAL",
            "collateralAmount": "1",
            "preLTV": "0.78",
            "afterLTV": "0.39",
            "adjustTime": history["rows"][0]["adjustTime"],
        }
    ]


def test_loanable_and_collateral_data(venue: InProcessVenue) -> None:
    erin = _borrower(venue, "erin")
    collateral = venue.ok("GET", f"{FLEX}/collateral/data", erin)
    loanable = venue.ok("GET", f"{FLEX}/loanable/data", erin, {"loanCoin": "USDT"})
    assert collateral["rows"] == [
        {
            "collateralCoin": "BTC",
            "initialLTV": "0.78",
            "marginCallLTV": "0.85",
            "liquidationLTV": "0.91",
            "maxLimit": "100",
        }
    ]
    assert loanable["rows"][0]["loanCoin"] == "USDT"
    assert float(loanable["rows"][0]["flexibleInterestRate"]) >= 0.05


def test_a_price_drop_liquidates_and_the_liquidation_history_shows_it(venue: InProcessVenue) -> None:
    # Arrange: a loan at 78%
    frank = _borrower(venue, "frank")
    venue.ok("POST", f"{FLEX}/borrow", frank, {**PAIR, "loanAmount": "39000"})
    # Act: BTC to 42,800 (LTV 91.12%)
    _price(venue, "42800")
    # Assert
    rows = venue.ok("GET", f"{FLEX}/liquidation/history", frank)["rows"]
    assert len(rows) >= 1
    assert rows[0]["liquidationStartingPrice"] in ("42800", "46400")
    assert rows[0]["status"] == "Liquidated"
    _price(venue, "50000")


def test_margin_call_and_liquidation_reach_the_user_stream(venue: InProcessVenue) -> None:
    # Arrange: a loan at 78% and a listening borrower
    gina = _borrower(venue, "gina")
    venue.ok("POST", f"{FLEX}/borrow", gina, {**PAIR, "loanAmount": "39000"})
    key = venue.client.post("/fapi/v1/listenKey", headers={"X-MBX-APIKEY": gina.api_key}).json()["listenKey"]
    with venue.client.websocket_connect(f"/private/ws?listenKey={key}") as ws:
        # Act: 45,500 -> LTV 85.71% (margin call); then 30,000 (liquidation)
        _price(venue, "45500")
        call = _receive(ws)
        _price(venue, "30000")
        liquidation = _receive(ws)
    _price(venue, "50000")
    # Assert
    assert (call["e"], call["currentLTV"], call["marginCallLTV"]) == (
        "LOAN_MARGIN_CALL",
        "0.85714286",
        "0.85",
    )
    assert liquidation["e"] == "LOAN_LIQUIDATION"
    assert liquidation["loanCoin"] == "USDT" and liquidation["collateralCoin"] == "BTC"


def test_asset_index_shows_the_index_and_the_haircut_rate(venue: InProcessVenue) -> None:
    # BTC at 50,000 with a 5% haircut: bidRate 47,500
    _price(venue, "50000")
    one = venue.client.get("/fapi/v1/assetIndex", params={"symbol": "BTCUSD"})
    unknown = venue.client.get("/fapi/v1/assetIndex", params={"symbol": "DOGEUSD"})
    assert one.status_code == 200, one.text
    body = one.json()
    assert (body["symbol"], body["index"], body["bidBuffer"], body["bidRate"]) == (
        "BTCUSD",
        "50000",
        "0.05",
        "47500",
    )
    assert unknown.status_code == 400 and unknown.json()["code"] == -1121


def test_borrow_and_repay_push_account_updates_with_the_balance_change(venue: InProcessVenue) -> None:
    # Arrange
    hana = _borrower(venue, "hana")
    key = venue.client.post("/fapi/v1/listenKey", headers={"X-MBX-APIKEY": hana.api_key}).json()["listenKey"]
    with venue.client.websocket_connect(f"/private/ws?listenKey={key}") as ws:
        # Act
        venue.ok("POST", f"{FLEX}/borrow", hana, {**PAIR, "loanAmount": "1000"})
        borrowed = _receive(ws)
        venue.ok("POST", f"{FLEX}/repay", hana, {**PAIR, "repayAmount": "400"})
        repaid = _receive(ws)
    # Assert
    assert (borrowed["e"], borrowed["a"]["m"]) == ("ACCOUNT_UPDATE", "ASSET_TRANSFER")
    assert (borrowed["a"]["B"][0]["wb"], borrowed["a"]["B"][0]["bc"]) == ("1000", "1000")
    assert (repaid["a"]["B"][0]["wb"], repaid["a"]["B"][0]["bc"]) == ("600", "-400")


def test_an_asset_quote_whose_source_is_not_utf8_is_refused_at_the_edge(venue: InProcessVenue) -> None:
    # Arrange: a lone surrogate, which JSON can carry and no journal record holds
    body = b'{"asset": "BTC", "source": "okx\\ud800", "price": "50000"}'
    # Act
    answer = venue.client.request(
        "POST",
        f"{ADMIN_BASE}/admin/v1/asset-prices",
        content=body,
        headers={"X-PERPX-ADMIN": ADMIN_TOKEN, "Content-Type": "application/json"},
    )
    # Assert
    assert (answer.status_code, answer.json()["code"]) == (400, -1100)
