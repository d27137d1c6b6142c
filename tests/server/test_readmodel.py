"""Rule: the trading read model is a function of the journal, and it survives stops and crashes.

A read model rebuilt from nothing, one restored from an older copy (a crash between the journal's
commit and the read model's), one that failed mid-batch, and one whose server was killed with
SIGKILL all answer exactly what the live one answered.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from perpx.engine.events import DepositApplied
from perpx.server import readmodel as readmodel_module
from perpx.server.readmodel import READMODEL_FILE, ReadModel

from .harness import ServerProcess, Trader
from .inprocess import InProcessVenue, in_process_venue

BTC = "BTCUSDT"


def limit(side: str, qty: str, price: str) -> dict[str, Any]:
    return {
        "symbol": BTC,
        "side": side,
        "type": "LIMIT",
        "quantity": qty,
        "price": price,
        "timeInForce": "GTC",
    }


def trade_some(venue: InProcessVenue, mm: Trader, trader: Trader, rounds: int) -> None:
    """Rest, fill, cancel and place conditional orders: every table gets rows."""
    for n in range(rounds):
        venue.ok("POST", "/fapi/v1/order", mm, limit("SELL", "0.003", str(60000 + n)))
        venue.ok("POST", "/fapi/v1/order", trader, limit("BUY", "0.002", str(60000 + n)))
        resting = venue.ok("POST", "/fapi/v1/order", trader, limit("BUY", "0.002", str(59000 + n)))
        venue.ok("DELETE", "/fapi/v1/order", trader, {"symbol": BTC, "orderId": resting["orderId"]})
        venue.ok(
            "POST",
            "/fapi/v1/algoOrder",
            trader,
            {
                "symbol": BTC,
                "side": "SELL",
                "type": "STOP_MARKET",
                "algoType": "CONDITIONAL",
                "triggerPrice": "50000",
                "quantity": "0.002",
            },
        )


def answers(venue: InProcessVenue, traders: list[Trader]) -> dict[str, Any]:
    """Everything the read model serves, per trader."""
    out: dict[str, Any] = {}
    for trader in traders:
        for path, params in (
            ("/fapi/v1/allOrders", {"symbol": BTC}),
            ("/fapi/v1/userTrades", {"symbol": BTC}),
            ("/fapi/v1/income", {}),
            ("/fapi/v1/allAlgoOrders", {"symbol": BTC}),
            ("/fapi/v1/openOrders", {}),
        ):
            out[f"{trader.account_id}{path}"] = venue.ok("GET", path, trader, params)
    return out


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


def open_traded(data: Path, rounds: int = 3) -> tuple[dict[str, Any], list[Trader]]:
    with in_process_venue(data) as venue:
        venue.mark(BTC, "60000")
        mm, trader = venue.trader("mm"), venue.trader("trader")
        trade_some(venue, mm, trader, rounds)
        return answers(venue, [mm, trader]), [mm, trader]


def remove_readmodel(data: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        (data / f"{READMODEL_FILE}{suffix}").unlink(missing_ok=True)


def test_read_model_rebuilt_from_the_journal_answers_the_same(data: Path) -> None:
    # Arrange
    live, traders = open_traded(data)
    remove_readmodel(data)

    # Act
    with in_process_venue(data, None) as venue:
        rebuilt = answers(venue, traders)

    # Assert
    assert rebuilt == live
    assert len(live[f"{traders[1].account_id}/fapi/v1/userTrades"]) >= 3


def test_read_model_restored_from_an_older_copy_catches_up(data: Path) -> None:
    # Arrange: a copy of the read model taken after the first rounds, then more trading
    with in_process_venue(data) as venue:
        venue.mark(BTC, "60000")
        mm, trader = venue.trader("mm"), venue.trader("trader")
        trade_some(venue, mm, trader, 2)
        old = sqlite3.connect(data.parent / "old.sqlite")
        with sqlite3.connect(data / READMODEL_FILE) as source:
            source.backup(old)
        old.close()
        trade_some(venue, mm, trader, 2)
        live = answers(venue, [mm, trader])
    remove_readmodel(data)
    (data.parent / "old.sqlite").rename(data / READMODEL_FILE)

    # Act
    with in_process_venue(data, None) as venue:
        caught_up = answers(venue, [mm, trader])

    # Assert
    assert caught_up == live


def test_failed_batch_stops_the_read_model_and_a_restart_repairs_it(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange
    with in_process_venue(data) as venue:
        venue.mark(BTC, "60000")
        trader = venue.trader("trader")
        model: ReadModel = venue.ctx.components.readmodel
        stored = model.resume_seq()

        def broken(self: ReadModel, event: Any) -> None:
            raise RuntimeError("disk on fire")

        monkeypatch.setitem(readmodel_module._HANDLERS, DepositApplied, broken)

        # Act: the deposit is journaled and applied; the read model stops at it
        answer = venue.admin(
            "POST",
            "/deposits",
            {"accountId": trader.account_id, "asset": "USDT", "amount": "7", "txId": "t-7"},
        )
        monkeypatch.undo()
        placed = venue.ok("POST", "/fapi/v1/order", trader, limit("BUY", "0.002", "59000"))
        status, code, _ = venue.refused("GET", "/fapi/v1/income", trader)

        # Assert: the venue answered the order (from its events); reads say the model stopped
        assert answer.status_code == 200
        assert (placed["status"], placed["price"], placed["clientOrderId"]) == (
            "NEW",
            "59000",
            f"perpx-{placed['orderId']}",
        )
        assert model.failure is not None and "disk on fire" in model.failure
        assert model.resume_seq() == stored
        assert (status, code) == (503, -1001)

    with in_process_venue(data, None) as venue:
        repaired = venue.ok("GET", "/fapi/v1/income", trader)
        assert [i["income"] for i in repaired] == ["100000", "7"]
        assert len(venue.ok("GET", "/fapi/v1/openOrders", trader)) == 1


# ---------------------------------------------------------------------- SIGKILL


@pytest.fixture
def killed_server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path / "data").start()
    try:
        yield process
    finally:
        process.stop()


def test_read_model_after_sigkill_holds_every_acknowledged_order_and_trade(
    killed_server: ServerProcess,
) -> None:
    # Arrange: fills and resting orders, every answer recorded
    server = killed_server
    assert (
        server.admin(
            "POST", "/marks", {"symbol": BTC, "markPrice": "60000", "indexPrice": "60000"}
        ).status_code
        == 200
    )
    mm, trader = server.trader("mm"), server.trader("trader")
    acked: dict[int, str] = {}
    for n in range(8):
        ask = server.signed("POST", "/fapi/v1/order", mm, limit("SELL", "0.002", str(60000 + n))).json()
        bid = server.signed(
            "POST",
            "/fapi/v1/order",
            trader,
            {**limit("BUY", "0.003", str(60000 + n)), "newOrderRespType": "RESULT"},
        ).json()
        acked[ask["orderId"]] = ask["status"]
        acked[bid["orderId"]] = bid["status"]
    trades_before = server.signed("GET", "/fapi/v1/userTrades", trader, {"symbol": BTC}).json()

    # Act
    server.kill()
    server.start()

    # Assert
    orders = {
        o["orderId"]: o
        for who in (mm, trader)
        for o in server.signed("GET", "/fapi/v1/allOrders", who, {"symbol": BTC}).json()
    }
    assert set(orders) == set(acked)
    assert all(orders[i]["status"] in ("FILLED", "PARTIALLY_FILLED") for i in acked)
    assert [o["executedQty"] for o in orders.values() if o["side"] == "BUY"] == ["0.002"] * 8
    assert server.signed("GET", "/fapi/v1/userTrades", trader, {"symbol": BTC}).json() == trades_before
    assert len(trades_before) == 8
    assert json.dumps(trades_before)
