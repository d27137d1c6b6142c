"""The admin API against a real ``perpx serve``: token first, prices, clock, modes, parameters, audit, risk.

The manual-clock server starts on a data directory whose journal already holds a liquidation
(account 2, long 1 BTC with 2,000 USDT, the mark gapping from 30,000 to 28,000), so the admin
read model must catch up from the journal at start-up.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from perpx.engine.commands import CreateAccount, Deposit, OrderType, PlaceOrder, SetMarkPrice
from perpx.engine.values import AccountId, AssetId, MarketId, Side, TxId
from perpx.journal.store import open_store

from .harness import ADMIN_TOKEN, MANUAL_CONFIG, PRICED_CONFIG, ServerProcess, from_address

BTC = MarketId("BTCUSDT")


def liquidation_journal(directory: Path) -> None:
    """mm (1), a (2: long 1 BTC with 2,000), s (3: short); a bid of 0.3 at 28,500; the mark gaps to 28,000."""
    store, _ = open_store(directory, MANUAL_CONFIG)
    now = [1_767_225_600_000_000_000]

    def at() -> int:
        now[0] += 1_000_000
        return now[0]

    for name in ("mm", "a", "s"):
        store.submit(CreateAccount(ts_ns=at(), name=name))
    for account, amount in ((1, 1_000_000), (2, 2_000), (3, 100_000)):
        store.submit(
            Deposit(
                ts_ns=at(),
                account_id=AccountId(account),
                asset=AssetId("USDT"),
                amount_atoms=amount * 10**8,
                tx_id=TxId(f"d{account}"),
            )
        )
    store.submit(SetMarkPrice(ts_ns=at(), market=BTC, index_ticks=300_000, mark_ticks=300_000))
    for account, side, lots, price in ((3, Side.SELL, 1_000, 300_000), (2, Side.BUY, 1_000, 300_000)):
        store.submit(
            PlaceOrder(
                ts_ns=at(),
                account_id=AccountId(account),
                market=BTC,
                side=side,
                order_type=OrderType.LIMIT,
                qty_lots=lots,
                price_ticks=price,
            )
        )
    store.submit(
        PlaceOrder(
            ts_ns=at(),
            account_id=AccountId(1),
            market=BTC,
            side=Side.BUY,
            order_type=OrderType.LIMIT,
            qty_lots=300,
            price_ticks=285_000,
        )
    )
    store.submit(SetMarkPrice(ts_ns=at(), market=BTC, index_ticks=280_100, mark_ticks=280_000))
    store.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("admin") / "data"
    liquidation_journal(data)
    process = ServerProcess(data).start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def priced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("priced") / "data", config_text=PRICED_CONFIG).start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def priced_manual(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The index-priced venue on a manual clock: its state moves only by commands, so a hash can be compared."""
    config = PRICED_CONFIG.replace('clock = "wall"', 'clock = "manual"')
    assert 'clock = "manual"' in config
    process = ServerProcess(tmp_path_factory.mktemp("priced-manual") / "data", config_text=config).start()
    try:
        yield process
    finally:
        process.stop()


def state_hash(server: ServerProcess) -> str:
    answer = server.admin("GET", "/state")
    assert answer.status_code == 200, answer.text
    text: str = answer.json()["stateHash"]
    return text


def refused(answer: httpx.Response, status: int, code: int) -> dict[str, Any]:
    assert (answer.status_code, answer.json()["code"]) == (status, code), answer.text
    body: dict[str, Any] = answer.json()
    return body


# ---------------------------------------------------------------------- the token comes first


@pytest.mark.parametrize(
    ("token", "source"), [("", "127.0.0.2"), ("wrong-token", "127.0.0.3"), (ADMIN_TOKEN + "x", "127.0.0.4")]
)
def test_wrong_token_is_refused_before_a_malformed_body_is_read(
    server: ServerProcess, token: str, source: str
) -> None:
    # Arrange
    headers = {"X-PERPX-ADMIN": token, "Content-Type": "application/json"} if token else {}
    # Act
    with from_address(source) as client:
        answer = client.post(f"{server.admin_base}/admin/v1/deposits", content=b"{not json", headers=headers)
    # Assert
    refused(answer, 401, -9202)


def test_wrong_token_on_a_get_and_on_an_unknown_account_is_401(server: ServerProcess) -> None:
    # Act
    answers = [
        server.admin("GET", path, token="nope", source="127.0.0.5") for path in ("/state", "/accounts/999")
    ]
    # Assert
    for answer in answers:
        refused(answer, 401, -9202)


@pytest.mark.parametrize("amount", ["1e999999999", "-5", "NaN", "0", "1.000000001"])
def test_bad_deposit_amount_is_refused_and_changes_nothing(server: ServerProcess, amount: str) -> None:
    # Arrange
    before = state_hash(server)
    # Act
    answer = server.admin(
        "POST", "/deposits", {"accountId": 1, "asset": "USDT", "amount": amount, "txId": amount}
    )
    # Assert
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] in (-1102, -1111)
    assert state_hash(server) == before


def test_right_token_with_malformed_body_is_a_parameter_error(server: ServerProcess) -> None:
    # Act
    answer = httpx.post(
        f"{server.admin_base}/admin/v1/deposits",
        content=b'{"accountId": "x"}',
        headers={"X-PERPX-ADMIN": ADMIN_TOKEN, "Content-Type": "application/json"},
    )
    # Assert
    refused(answer, 400, -1102)


# ---------------------------------------------------------------------- prices, marks and the clock


def test_mark_sets_index_and_mark_of_a_market_without_sources(server: ServerProcess) -> None:
    # Act
    answer = server.admin(
        "POST", "/marks", {"symbol": "ETHUSDT", "markPrice": "2000.5", "indexPrice": "2000"}
    )
    # Assert
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "symbol": "ETHUSDT",
        "indexPrice": "2000",
        "markPrice": "2000.5",
        "indexStale": False,
    }


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"symbol": "DOGEUSDT", "markPrice": "1"}, -1121),
        ({"symbol": "ETHUSDT", "markPrice": "abc"}, -1102),
        ({"symbol": "ETHUSDT", "markPrice": "NaN"}, -1102),
        ({"symbol": "ETHUSDT", "markPrice": "-5"}, -1102),
        ({"symbol": "ETHUSDT", "markPrice": "2000.001"}, -4014),
        ({"symbol": "ETHUSDT", "markPrice": "1e999999999"}, -1102),
        ({"symbol": "ETHUSDT", "markPrice": "0"}, -1102),
    ],
)
def test_bad_mark_is_refused_and_changes_nothing(
    server: ServerProcess, body: dict[str, Any], code: int
) -> None:
    # Arrange
    before = state_hash(server)
    # Act
    answer = server.admin("POST", "/marks", body)
    # Assert
    refused(answer, 400, code)
    assert state_hash(server) == before


def test_clock_advances_venue_time_and_refuses_negative_steps(server: ServerProcess) -> None:
    # Arrange
    start = server.admin("GET", "/state").json()["venueTimeMs"]
    # Act
    moved = server.admin("POST", "/clock", {"advanceMs": 1500})
    negative = server.admin("POST", "/clock", {"advanceMs": -1})
    fractional = server.admin("POST", "/clock", {"advanceMs": 1.5})
    # Assert
    assert moved.status_code == 200, moved.text
    assert moved.json()["venueTimeMs"] == start + 1500
    assert server.admin("GET", "/state").json()["venueTimeMs"] == start + 1500
    refused(negative, 400, -1102)
    refused(fractional, 400, -1102)


def test_spot_quote_feeds_the_index_of_a_priced_market(priced: ServerProcess) -> None:
    # Act
    answers = [
        priced.admin("POST", "/prices", {"symbol": "BTCUSDT", "source": source, "price": "30000"})
        for source in ("binance", "okx")
    ]
    # Assert
    assert [a.status_code for a in answers] == [200, 200], answers[-1].text
    assert answers[-1].json()["indexPrice"] == "30000"
    assert answers[-1].json()["source"] == "okx"


def test_unknown_source_and_symbol_are_refused_with_the_sources_listed(priced_manual: ServerProcess) -> None:
    # Arrange
    before = state_hash(priced_manual)
    # Act
    source = priced_manual.admin(
        "POST", "/prices", {"symbol": "BTCUSDT", "source": "kraken", "price": "30000"}
    )
    symbol = priced_manual.admin("POST", "/prices", {"symbol": "XRPUSDT", "source": "okx", "price": "1"})
    # Assert
    assert "binance" in refused(source, 400, -9101)["msg"]
    assert "XRPUSDT" in refused(symbol, 400, -1121)["msg"]
    assert state_hash(priced_manual) == before


def test_mark_on_an_index_priced_market_is_refused(priced: ServerProcess) -> None:
    # Act
    answer = priced.admin("POST", "/marks", {"symbol": "BTCUSDT", "markPrice": "30000"})
    # Assert
    assert "index sources" in refused(answer, 400, -9103)["msg"]


def test_clock_on_a_wall_clock_venue_is_refused(priced: ServerProcess) -> None:
    # Act
    answer = priced.admin("POST", "/clock", {"advanceMs": 1000})
    # Assert
    assert "wall clock" in refused(answer, 400, -9203)["msg"]


# ---------------------------------------------------------------------- market modes and parameters


def test_market_mode_moves_between_halted_and_normal(server: ServerProcess) -> None:
    # Act
    halted = server.admin("POST", "/markets/ethusdt/mode", {"mode": "halted"})
    normal = server.admin("POST", "/markets/ETHUSDT/mode", {"mode": "normal"})
    # Assert
    assert halted.json() == {
        "symbol": "ETHUSDT",
        "mode": "halted",
        "previous": "normal",
        "seq": halted.json()["seq"],
    }
    assert normal.json()["mode"] == "normal"
    assert normal.json()["previous"] == "halted"


@pytest.mark.parametrize(
    "body",
    [{"mode": "settled"}, {"mode": "normal", "settlePrice": "2000"}, {"mode": "closed"}, {}],
)
def test_bad_mode_change_is_refused_and_changes_nothing(server: ServerProcess, body: dict[str, Any]) -> None:
    # Arrange
    before = state_hash(server)
    # Act
    answer = server.admin("POST", "/markets/ETHUSDT/mode", body)
    # Assert
    refused(answer, 400, -1102)
    assert state_hash(server) == before


def test_param_change_is_applied_audited_with_operator_and_listed(server: ServerProcess) -> None:
    # Arrange
    before = state_hash(server)
    # Act
    answer = httpx.post(
        f"{server.admin_base}/admin/v1/markets/ETHUSDT/params",
        json={"min_notional": "5", "max_open_orders": 50},
        headers={"X-PERPX-ADMIN": ADMIN_TOKEN, "X-PERPX-OPERATOR": "alice"},
    )
    # Assert
    assert answer.status_code == 200, answer.text
    assert answer.json()["changes"] == [
        {"param": "max_open_orders", "old": "200", "new": "50"},
        {"param": "min_notional", "old": "20", "new": "5"},
    ]
    assert state_hash(server) != before
    params = server.admin("GET", "/markets/ETHUSDT/params").json()
    assert params["changed"] == {"max_open_orders": "50", "min_notional": "5"}
    assert params["params"]["min_notional"] == "5"
    audit = server.admin("GET", "/audit?symbol=ETHUSDT").json()
    rows = [(r["operator"], r["param"], r["old"], r["new"], r["seq"]) for r in audit]
    assert ("alice", "min_notional", "20", "5", answer.json()["seq"]) in rows
    assert all(r["time"] > 0 and r["venueTime"] > 0 for r in audit)


@pytest.mark.parametrize(
    "body",
    [
        {"tick_size": "1"},
        {"min_notional": "-1"},
        {"min_notional": 2.5},
        {"percent_price_down": "1.2"},
        {"max_open_orders": "many"},
        {},
    ],
)
def test_invalid_param_change_is_refused_and_changes_nothing(
    server: ServerProcess, body: dict[str, Any]
) -> None:
    # Arrange
    before = state_hash(server)
    audit_rows = len(server.admin("GET", "/audit").json())
    # Act
    answer = server.admin("POST", "/markets/ETHUSDT/params", body)
    # Assert
    refused(answer, 400, -1102)
    assert state_hash(server) == before
    assert len(server.admin("GET", "/audit").json()) == audit_rows


# ---------------------------------------------------------------------- accounts, liquidations, the fund


def test_account_shows_balances_and_counts(server: ServerProcess) -> None:
    # Act
    answer = server.admin("GET", "/accounts/1")
    missing = server.admin("GET", "/accounts/999")
    # Assert
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["name"] == "mm"
    assert body["balances"]["USDT"] == body["walletBalance"]
    assert 999_000 < float(body["walletBalance"]) <= 1_000_000
    assert body["positions"][0]["symbol"] == "BTCUSDT"
    assert body["openOrders"] == 0
    refused(missing, 400, -9001)


def test_liquidations_replayed_from_the_journal_are_listed_with_decimals(server: ServerProcess) -> None:
    # Act
    mine = server.admin("GET", "/liquidations?accountId=2").json()
    others = server.admin("GET", "/liquidations?accountId=1").json()
    # Assert
    assert others["records"] == []
    record = mine["records"][0]
    assert record["accountId"] == 2
    assert record["symbol"] == "BTCUSDT"
    assert record["outcome"] in ("PARTIAL", "CLOSED")
    assert record["liquidationFeeRate"] == "0.0125"
    ratio = record["before"]["marginRatio"]
    assert ratio is None or float(ratio) >= 1  # None: the margin balance was at or below zero
    assert record["record"]["type"] == "LiquidationExplained"
    assert record["record"]["account_id"] == 2
    assert "_ticks" in mine["units"]


def test_insurance_fund_shows_cash_equity_and_movements(server: ServerProcess) -> None:
    # Act
    answer = server.admin("GET", "/insurance")
    # Assert
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"asset", "cash", "wallet", "equity", "positions", "history"}
    assert body["asset"] == "USDT"
    if body["history"]:
        assert body["history"][-1]["fundCash"] == body["cash"]


def test_state_reports_last_seq_hash_and_venue_time(server: ServerProcess) -> None:
    # Act
    body = server.admin("GET", "/state").json()
    # Assert
    assert body["lastSeq"] >= 11
    assert len(body["stateHash"]) == 64
    assert body["venueTimeMs"] > 1_767_225_600_000


def test_admin_routes_are_documented_in_the_admin_listeners_openapi_only(server: ServerProcess) -> None:
    # Act
    spec = httpx.get(f"{server.admin_base}/openapi.json").json()
    public_spec = httpx.get(f"{server.base}/openapi.json").json()
    # Assert
    for path in (
        "/admin/v1/prices",
        "/admin/v1/clock",
        "/admin/v1/markets/{symbol}/params",
        "/admin/v1/audit",
    ):
        assert path in spec["paths"]
    assert "X-PERPX-ADMIN" in str(spec["components"]["securitySchemes"])
    assert not [path for path in public_spec["paths"] if path.startswith("/admin")]
    assert "/fapi/v1/order" in public_spec["paths"]


def test_audit_and_liquidations_survive_a_crash_and_restart(tmp_path: Path) -> None:
    # Arrange
    process = ServerProcess(tmp_path / "data").start()
    try:
        process.admin("POST", "/markets/BTCUSDT/params", {"max_open_interest": "5"})
        process.kill()
        # Act
        process.start()
        audit = process.admin("GET", "/audit").json()
        params = process.admin("GET", "/markets/BTCUSDT/params").json()
    finally:
        process.stop()
    # Assert
    assert [(r["param"], r["old"], r["new"]) for r in audit] == [("max_open_interest", "none", "5")]
    assert params["changed"] == {"max_open_interest": "5"}
