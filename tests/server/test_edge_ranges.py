"""No request can stop the venue: every number is range-checked at the edge, once, with a Binance code.

Rules (bounds in :mod:`perpx.server.wire`):

* a price, quantity, amount or rate that no journal record can hold is refused with -1102 before
  it becomes a command; the engine, the journal and everyone else's orders never see it;
* an id or a time beyond ``int64`` is a 400 with -1102, never a 500;
* a refusal changes nothing: the journal does not grow and the state hash stays the same;
* after any of them a normal order still acks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from perpx.engine.state import state_hash
from perpx.server.sequencer import SequencerState
from perpx.server.wire import MAX_ID, MAX_TIME_MS, MAX_UNITS

from .harness import ADMIN_TOKEN, Trader
from .inprocess import ADMIN_BASE, InProcessVenue, in_process_venue

BTC = "BTCUSDT"
ORDER = {
    "symbol": BTC,
    "side": "BUY",
    "type": "LIMIT",
    "quantity": "0.01",
    "price": "59000",
    "timeInForce": "GTC",
}
THIRTY_SIX_NINES = "9" * 36
HUGE_INTEGERS = ("9" * 20, str(2**63), str(2**64), "9" * 36, "-" + "9" * 20, str(-(2**63) - 1))
HUGE_DECIMALS = ("9" * 20, str(2**64), THIRTY_SIX_NINES, "9" * 30 + ".5", "9" * 39)


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessVenue]:
    with in_process_venue(tmp_path_factory.mktemp("edge") / "data") as venue:
        venue.mark(BTC, "60000")
        yield venue


@pytest.fixture(scope="module")
def trader(venue: InProcessVenue) -> Trader:
    return venue.trader("edge")


def fingerprint(venue: InProcessVenue) -> tuple[int, str]:
    """Last journal seq and state hash (the manual clock keeps the engine still between requests)."""
    sequencer = venue.ctx.seq
    return sequencer.last_seq, state_hash(sequencer.engine)


def assert_serving(venue: InProcessVenue, trader: Trader) -> None:
    assert venue.ctx.seq.status().state is SequencerState.RUNNING
    order = venue.ok("POST", "/fapi/v1/order", trader, ORDER)
    venue.ok("DELETE", "/fapi/v1/order", trader, {"symbol": BTC, "orderId": order["orderId"]})


def test_price_of_36_nines_is_refused_and_engine_keeps_serving(venue: InProcessVenue, trader: Trader) -> None:
    # Arrange
    before = fingerprint(venue)
    # Act
    status, code, msg = venue.refused("POST", "/fapi/v1/order", trader, {**ORDER, "price": THIRTY_SIX_NINES})
    # Assert
    assert (status, code) == (400, -1102)
    assert "price" in msg and "larger than the venue can hold" in msg
    assert fingerprint(venue) == before
    assert_serving(venue, trader)


SIGNED_NUMBERS: list[tuple[str, str, dict[str, Any], str]] = [
    ("POST", "/fapi/v1/order", ORDER, "quantity"),
    ("POST", "/fapi/v1/order", ORDER, "price"),
    (
        "POST",
        "/fapi/v1/algoOrder",
        {**ORDER, "type": "TRAILING_STOP_MARKET", "price": "", "callbackRate": "1"},
        "callbackRate",
    ),
    ("POST", "/fapi/v1/algoOrder", {**ORDER, "type": "STOP", "triggerPrice": "58000"}, "triggerPrice"),
    ("POST", "/fapi/v1/algoOrder", {**ORDER, "type": "STOP", "triggerPrice": "58000"}, "quantity"),
    (
        "POST",
        "/fapi/v1/algoOrder",
        {**ORDER, "type": "TRAILING_STOP_MARKET", "price": "", "callbackRate": "1", "activatePrice": "61000"},
        "activatePrice",
    ),
    ("PUT", "/fapi/v1/order", {**ORDER, "orderId": "1"}, "price"),
    ("PUT", "/fapi/v1/order", {**ORDER, "orderId": "1"}, "orderId"),
    ("GET", "/fapi/v1/order", {"symbol": BTC, "orderId": "1"}, "orderId"),
    ("DELETE", "/fapi/v1/order", {"symbol": BTC, "orderId": "1"}, "orderId"),
    ("GET", "/fapi/v1/openOrder", {"symbol": BTC, "orderId": "1"}, "orderId"),
    ("GET", "/fapi/v1/allOrders", {"symbol": BTC}, "orderId"),
    ("GET", "/fapi/v1/allOrders", {"symbol": BTC}, "startTime"),
    ("GET", "/fapi/v1/allOrders", {"symbol": BTC}, "endTime"),
    ("GET", "/fapi/v1/allOrders", {"symbol": BTC}, "limit"),
    ("GET", "/fapi/v1/userTrades", {"symbol": BTC}, "fromId"),
    ("GET", "/fapi/v1/userTrades", {"symbol": BTC}, "orderId"),
    ("GET", "/fapi/v1/userTrades", {"symbol": BTC}, "startTime"),
    ("GET", "/fapi/v1/algoOrder", {"algoId": "1"}, "algoId"),
    ("DELETE", "/fapi/v1/algoOrder", {"algoId": "1"}, "algoId"),
    ("GET", "/fapi/v1/allAlgoOrders", {"symbol": BTC}, "algoId"),
    ("GET", "/fapi/v1/allAlgoOrders", {"symbol": BTC}, "endTime"),
    ("GET", "/fapi/v1/income", {}, "startTime"),
    ("GET", "/fapi/v1/income", {}, "limit"),
    ("POST", "/fapi/v1/leverage", {"symbol": BTC, "leverage": "5"}, "leverage"),
    ("POST", "/fapi/v1/positionMargin", {"symbol": BTC, "amount": "1", "type": "1"}, "amount"),
    ("POST", "/fapi/v1/positionMargin", {"symbol": BTC, "amount": "1", "type": "1"}, "type"),
    ("GET", "/fapi/v1/positionMargin/history", {"symbol": BTC}, "type"),
    ("GET", "/fapi/v1/positionMargin/history", {"symbol": BTC}, "startTime"),
    ("GET", "/fapi/v2/account", {}, "recvWindow"),
]


@pytest.mark.parametrize(
    ("method", "path", "base", "field"), SIGNED_NUMBERS, ids=[f"{m} {p} {f}" for m, p, _, f in SIGNED_NUMBERS]
)
def test_signed_number_beyond_what_the_venue_holds_is_400_1102_and_changes_nothing(
    venue: InProcessVenue, trader: Trader, method: str, path: str, base: dict[str, Any], field: str
) -> None:
    values = HUGE_DECIMALS if field in ("quantity", "price", "amount") or "Price" in field else HUGE_INTEGERS
    for value in values:
        before = fingerprint(venue)
        answer = venue.signed(method, path, trader, {**base, field: value})
        assert answer.status_code == 400, (value, answer.text)
        assert answer.json()["code"] == -1102, (value, answer.text)
        assert field in answer.json()["msg"], answer.text
        assert fingerprint(venue) == before


def test_timestamp_of_36_nines_is_a_parameter_error(venue: InProcessVenue, trader: Trader) -> None:
    before = fingerprint(venue)
    answer = venue.signed("GET", "/fapi/v2/account", trader, {"timestamp": THIRTY_SIX_NINES})
    assert answer.status_code == 400 and answer.json()["code"] in (-1101, -1102)
    assert fingerprint(venue) == before


PUBLIC_NUMBERS: list[tuple[str, dict[str, Any], str]] = [
    ("/fapi/v1/historicalTrades", {"symbol": BTC}, "fromId"),
    ("/fapi/v1/aggTrades", {"symbol": BTC}, "fromId"),
    ("/fapi/v1/aggTrades", {"symbol": BTC}, "startTime"),
    ("/fapi/v1/aggTrades", {"symbol": BTC}, "endTime"),
    ("/fapi/v1/klines", {"symbol": BTC, "interval": "1m"}, "startTime"),
    ("/fapi/v1/klines", {"symbol": BTC, "interval": "1M"}, "endTime"),
    ("/fapi/v1/klines", {"symbol": BTC, "interval": "1m"}, "limit"),
    ("/fapi/v1/continuousKlines", {"pair": BTC, "contractType": "PERPETUAL", "interval": "1w"}, "startTime"),
    ("/fapi/v1/fundingRate", {"symbol": BTC}, "startTime"),
    ("/fapi/v1/fundingRate", {"symbol": BTC}, "endTime"),
    ("/fapi/v1/depth", {"symbol": BTC}, "limit"),
    ("/fapi/v1/trades", {"symbol": BTC}, "limit"),
]


@pytest.mark.parametrize(
    ("path", "base", "field"), PUBLIC_NUMBERS, ids=[f"{p} {f}" for p, _, f in PUBLIC_NUMBERS]
)
def test_public_id_or_time_beyond_int64_is_400_1102_never_500(
    venue: InProcessVenue, path: str, base: dict[str, Any], field: str
) -> None:
    for value in HUGE_INTEGERS:
        answer = venue.client.get(path, params={**base, field: value})
        assert answer.status_code == 400, (value, answer.text)
        assert answer.json()["code"] == -1102 and field in answer.json()["msg"]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/fapi/v1/aggTrades", {"symbol": BTC, "fromId": str(MAX_ID)}),
        ("/fapi/v1/aggTrades", {"symbol": BTC, "startTime": str(MAX_TIME_MS)}),
        ("/fapi/v1/historicalTrades", {"symbol": BTC, "fromId": str(MAX_ID)}),
        ("/fapi/v1/klines", {"symbol": BTC, "interval": "1M", "startTime": "0", "endTime": str(MAX_TIME_MS)}),
        ("/fapi/v1/klines", {"symbol": BTC, "interval": "1w", "startTime": str(MAX_TIME_MS)}),
        ("/fapi/v1/fundingRate", {"symbol": BTC, "startTime": "0", "endTime": str(MAX_TIME_MS)}),
    ],
)
def test_ids_and_times_at_the_bound_are_answered(
    venue: InProcessVenue, path: str, params: dict[str, str]
) -> None:
    answer = venue.client.get(path, params=params)
    assert answer.status_code == 200, answer.text


def test_signed_ids_and_times_at_the_bound_are_answered(venue: InProcessVenue, trader: Trader) -> None:
    everything = {"startTime": "0", "endTime": str(MAX_TIME_MS)}
    assert (
        venue.ok("GET", "/fapi/v1/allOrders", trader, {"symbol": BTC, "orderId": str(MAX_ID), **everything})
        == []
    )
    assert venue.ok("GET", "/fapi/v1/userTrades", trader, {"symbol": BTC, "fromId": str(MAX_ID)}) == []
    status, code, _ = venue.refused("GET", "/fapi/v1/order", trader, {"symbol": BTC, "orderId": str(MAX_ID)})
    assert (status, code) == (400, -2013)


def test_largest_price_the_venue_holds_reaches_the_engine_and_is_refused_by_its_filter(
    venue: InProcessVenue, trader: Trader
) -> None:
    largest = f"{MAX_UNITS // 10}.{MAX_UNITS % 10}"
    status, code, msg = venue.refused("POST", "/fapi/v1/order", trader, {**ORDER, "price": largest})
    assert (status, code) == (400, -4025), msg
    assert_serving(venue, trader)


def test_batch_entry_of_36_nines_is_refused_alone_and_the_other_orders_are_placed(
    venue: InProcessVenue, trader: Trader
) -> None:
    # Arrange
    good = {**ORDER, "quantity": "0.01"}
    batch = [good, {**good, "price": THIRTY_SIX_NINES}, {**good, "quantity": "9" * 25}, good]
    # Act
    answers = venue.ok("POST", "/fapi/v1/batchOrders", trader, {"batchOrders": json.dumps(batch)})
    # Assert
    assert [a.get("code") for a in answers] == [None, -1102, -1102, None]
    assert answers[0]["status"] == answers[3]["status"] == "NEW"
    venue.ok("DELETE", "/fapi/v1/allOpenOrders", trader, {"symbol": BTC})
    assert_serving(venue, trader)


@pytest.mark.parametrize(
    "batch",
    ["[" * 5_000 + "]" * 5_000, json.dumps([{"price": 10**40}]), "[1e99999]", '{"a": 1}', "\u0661"],
)
def test_malformed_batch_is_a_parameter_error(venue: InProcessVenue, trader: Trader, batch: str) -> None:
    before = fingerprint(venue)
    answer = venue.signed("POST", "/fapi/v1/batchOrders", trader, {"batchOrders": batch})
    assert answer.status_code in (200, 400), answer.text
    if answer.status_code == 200:
        assert all(item["code"] == -1102 for item in answer.json())
    else:
        assert answer.json()["code"] == -1102
    assert fingerprint(venue) == before


def test_cancel_list_with_ids_beyond_int64_answers_each_with_1102(
    venue: InProcessVenue, trader: Trader
) -> None:
    ids = json.dumps([2**64, -(2**70), 1.5])
    answers = venue.ok("DELETE", "/fapi/v1/batchOrders", trader, {"symbol": BTC, "orderIdList": ids})
    assert [a["code"] for a in answers] == [-1102, -1102, -1102]


def test_position_margin_amount_finer_than_the_atom_is_1111(venue: InProcessVenue, trader: Trader) -> None:
    params = {"symbol": BTC, "amount": "0." + "1" * 20, "type": "1"}
    status, code, _ = venue.refused("POST", "/fapi/v1/positionMargin", trader, params)
    assert (status, code) == (400, -1111)


# ---------------------------------------------------------------------- admin


ADMIN_REFUSALS: list[tuple[str, str, dict[str, Any] | None, int]] = [
    ("POST", "/deposits", {"accountId": 10**30, "asset": "USDT", "amount": "1", "txId": "big"}, -1102),
    ("POST", "/deposits", {"accountId": 2**63, "asset": "USDT", "amount": "1", "txId": "big"}, -1102),
    ("POST", "/deposits", {"accountId": -1, "asset": "USDT", "amount": "1", "txId": "neg"}, -1102),
    ("POST", "/deposits", {"accountId": 1, "asset": "USDT", "amount": "9" * 24, "txId": "amt"}, -1102),
    ("POST", "/withdrawals", {"accountId": "9" * 20, "asset": "USDT", "amount": "1", "txId": "w"}, -1102),
    ("POST", "/deposits", {"accountId": 1, "asset": "USDT", "amount": "1", "txId": "\ud800"}, -1102),
    ("POST", "/accounts", {"name": "\udfff"}, -1102),
    ("POST", "/accounts", {"name": "fuzz\udfff"}, -1102),
    ("POST", "/deposits", {"accountId": 1, "asset": "USDT", "amount": "1", "txId": "9\ud800"}, -1102),
    ("POST", "/prices", {"symbol": BTC, "source": "9\ud800", "price": "60000"}, -1100),
    ("POST", "/asset-prices", {"asset": "USDT", "source": "9\ud800", "price": "60000"}, -1100),
    ("POST", "/marks", {"symbol": BTC, "markPrice": "9" * 24}, -1102),
    ("POST", "/marks", {"symbol": BTC, "markPrice": "60000", "indexPrice": "9" * 24 + ".5"}, -1102),
    ("POST", "/markets/BTCUSDT/mode", {"mode": "settled", "settlePrice": "9" * 24}, -1102),
    ("POST", "/markets/BTCUSDT/params", {"\ud800": "1"}, -1100),
    ("POST", "/markets/BTCUSDT/params", {"max_qty": "\ud800"}, -1100),
    ("POST", "/clock", {"advanceMs": 10**30}, -1102),
    ("GET", "/accounts/" + "9" * 20, None, -1102),
    ("GET", "/accounts/-1", None, -1102),
    ("GET", "/liquidations?accountId=" + "9" * 36, None, -1102),
]


def admin_raw(venue: InProcessVenue, method: str, path: str, body: dict[str, Any] | None) -> httpx.Response:
    """An admin request whose JSON is sent as ASCII with ``\\u`` escapes (how a lone surrogate travels)."""
    headers = {"X-PERPX-ADMIN": ADMIN_TOKEN, "Content-Type": "application/json"}
    content = None if body is None else json.dumps(body).encode()
    response: httpx.Response = venue.client.request(
        method, f"{ADMIN_BASE}/admin/v1{path}", content=content, headers=headers
    )
    return response


@pytest.mark.parametrize(("method", "path", "body", "code"), ADMIN_REFUSALS)
def test_admin_number_beyond_int64_or_text_that_is_not_utf8_is_refused_and_changes_nothing(
    venue: InProcessVenue, trader: Trader, method: str, path: str, body: dict[str, Any] | None, code: int
) -> None:
    before = fingerprint(venue)
    answer = admin_raw(venue, method, path, body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == code, answer.text
    assert fingerprint(venue) == before
    assert_serving(venue, trader)
