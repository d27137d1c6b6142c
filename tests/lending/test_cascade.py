"""The multi-asset cascade scenario: BTC-margined traders through a BTC crash (small, fast runs)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from perpx.engine import invariants
from perpx.journal.store import open_store
from perpx.lending.cascade import CASCADE_TOML, CascadeParams, run_cascade


def test_cascade_liquidates_and_converts_btc_collateral_to_the_fund(tmp_path: Path) -> None:
    # Arrange: 20 traders, a generous fund, BTC -30% in two minutes
    params = CascadeParams(traders=20, minutes=2, fund="5000000")
    # Act
    summary = run_cascade(tmp_path / "data", params)
    # Assert
    assert summary.liquidations >= 1
    assert summary.conversions >= 1
    assert summary.fund_btc_atoms == summary.btc_sold_atoms  # every BTC sold went to the fund
    assert summary.debt_unbacked == 0  # a fund with money pays every debt off in BTC
    store, _ = open_store(tmp_path / "data", CASCADE_TOML)  # the journal replays, invariants hold
    try:
        invariants.check(store.engine)
    finally:
        store.close()


def test_cascade_refuses_a_directory_that_holds_a_venue(tmp_path: Path) -> None:
    run_cascade(tmp_path, CascadeParams(traders=2, minutes=1))
    with pytest.raises(FileExistsError, match="already holds a venue"):
        run_cascade(tmp_path, CascadeParams(traders=2, minutes=1))


def test_the_multi_assets_risk_lab_venue_is_the_risk_lab_venue_plus_btc_collateral() -> None:
    # Arrange
    root = Path(__file__).resolve().parents[2] / "scenarios"
    plain = tomllib.loads((root / "venue.toml").read_text())
    multi = tomllib.loads((root / "venues" / "multi_assets.toml").read_text())
    # Act
    btc = multi["assets"].pop("BTC")
    # Assert
    assert multi == plain
    assert (
        btc["conversion_discount_bps"] == 100
        and btc["index"]["sources"] == plain["markets"]["BTCUSDT"]["index"]["sources"]
    )
