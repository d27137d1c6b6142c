"""The public OpenAPI document names every parameter of every route, and the docs pages work offline."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from perpx.server.openapi import ROUTES, SIGNED
from tests.server.inprocess import InProcessVenue, in_process_venue


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessVenue]:
    with in_process_venue(tmp_path_factory.mktemp("openapi") / "data") as venue:
        yield venue


@pytest.fixture(scope="module")
def document(venue: InProcessVenue) -> dict[str, Any]:
    answer = venue.client.get("/openapi.json")
    assert answer.status_code == 200
    schema: dict[str, Any] = answer.json()
    return schema


def _operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}


def test_every_operation_has_a_parameter_entry_and_every_entry_an_operation(document: dict[str, Any]) -> None:
    served = _operations(document)

    assert served == set(ROUTES)


def _names(operation: dict[str, Any]) -> dict[str, bool]:
    names = {p["name"]: p["required"] for p in operation.get("parameters", [])}
    form = operation.get("requestBody", {}).get("content", {}).get("application/x-www-form-urlencoded")
    if form is not None:
        required = set(form["schema"]["required"])
        names |= {name: name in required for name in form["schema"]["properties"]}
    return names


def test_a_signed_route_lists_its_signing_parameters_and_its_own(document: dict[str, Any]) -> None:
    new_order = _names(document["paths"]["/fapi/v1/order"]["post"])
    cancel = _names(document["paths"]["/fapi/v1/order"]["delete"])

    assert {"symbol", "side", "type", "quantity", "timestamp", "signature", "X-MBX-APIKEY"} <= {
        n for n, required in new_order.items() if required
    }
    assert {"price", "timeInForce", "newClientOrderId", "recvWindow"} <= set(new_order)
    assert {"orderId", "origClientOrderId", "timestamp"} <= set(cancel)


def test_enums_and_types_are_declared(document: dict[str, Any]) -> None:
    klines = {
        p["name"]: p["schema"] for p in document["paths"]["/fapi/v1/markPriceKlines"]["get"]["parameters"]
    }
    body = document["paths"]["/fapi/v1/order"]["post"]["requestBody"]["content"]
    form = body["application/x-www-form-urlencoded"]["schema"]["properties"]

    assert "1M" in klines["interval"]["enum"] and klines["startTime"]["type"] == "integer"
    assert form["side"]["enum"] == ["BUY", "SELL"] and form["quantity"]["type"] == "string"


def test_every_signed_operation_asks_for_a_timestamp_and_signature(document: dict[str, Any]) -> None:
    missing = [
        (method, path)
        for (method, path), (auth, _) in ROUTES.items()
        if auth == SIGNED
        and not {"timestamp", "signature"} <= set(_names(document["paths"][path][method.lower()]))
    ]

    assert missing == []


@pytest.mark.parametrize(
    ("page", "asset"), [("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")]
)
def test_docs_pages_load_their_scripts_from_the_venue(venue: InProcessVenue, page: str, asset: str) -> None:
    html = venue.client.get(page).text
    script = venue.client.get(f"/static/perpx/{asset}")

    assert f"/static/perpx/{asset}" in html and "cdn." not in html and "unpkg" not in html
    assert script.status_code == 200 and len(script.content) > 100_000
