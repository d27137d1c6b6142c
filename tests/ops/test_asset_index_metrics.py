"""``perpx_asset_index_stale`` and ``perpx_asset_index_price``: the collateral index's alert-ready state.

A loan or collateral asset whose index is stale freezes loans and liquidations on it (issue 20), so
the metrics must say so, and agree with ``GET /fapi/v1/assetIndex`` while it is fresh.
"""

from __future__ import annotations

import re
from pathlib import Path

from perpx.lending.venue import LENDING_TOML
from tests.server.harness import MANUAL_CONFIG
from tests.server.inprocess import InProcessVenue, in_process_venue


def _gauge(text: str, name: str, asset: str) -> float | None:
    found = re.search(rf'^{name}{{asset="{asset}"}} (\S+)$', text, re.MULTILINE)
    return None if found is None else float(found.group(1))


def _metrics(venue: InProcessVenue) -> str:
    return str(venue.client.get("http://admin.test/metrics").text)


def test_asset_index_is_stale_until_quorum_then_priced_then_stale_again_when_sources_age(
    tmp_path: Path,
) -> None:
    with in_process_venue(tmp_path / "data", MANUAL_CONFIG + LENDING_TOML) as venue:
        # Arrange: BTC's index needs 2 sources quoting within 30 s
        unquoted = _metrics(venue)
        assert venue.admin(
            "POST", "/asset-prices", {"asset": "BTC", "source": "binance", "price": "50000"}
        ).is_success
        one_source = _metrics(venue)
        assert venue.admin(
            "POST", "/asset-prices", {"asset": "BTC", "source": "okx", "price": "50010"}
        ).is_success
        # Act
        quorum = _metrics(venue)
        index = venue.client.get("/fapi/v1/assetIndex", params={"symbol": "BTCUSD"}).json()["index"]
        assert venue.admin("POST", "/clock", {"advanceMs": 31_000}).is_success
        aged = _metrics(venue)

    # Assert
    assert _gauge(unquoted, "perpx_asset_index_stale", "BTC") == 1
    assert _gauge(unquoted, "perpx_asset_index_price", "BTC") is None
    assert _gauge(one_source, "perpx_asset_index_stale", "BTC") == 1  # below its quorum of 2
    assert _gauge(quorum, "perpx_asset_index_stale", "BTC") == 0
    assert _gauge(quorum, "perpx_asset_index_price", "BTC") == float(index)
    assert _gauge(aged, "perpx_asset_index_stale", "BTC") == 1
