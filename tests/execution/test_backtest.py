"""A parent backtested on a shipped risk-lab scenario: fills, child log and a TCA report."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from perpx.execution.backtest import BacktestError, backtest
from perpx.execution.childlog import BoundRecord, PlaceRecord
from perpx.execution.model import decode_parent

from ..server.harness import REPO

CALM_DAY = REPO / "scenarios" / "calm_day.toml"


def test_twap_backtest_on_calm_day_writes_fills_child_log_and_tca(tmp_path: Path) -> None:
    parent = decode_parent(
        {
            "algo": "twap",
            "market": "BTCUSDT",
            "side": "sell",
            "client_algo_id": "bt-1",
            "qty": "1",
            "duration_s": 600,
            "slice_interval_s": 60,
            "passiveness_bps": 0,
        }
    )

    result = backtest(parent, CALM_DAY, seed=3, warmup_s=300, out_dir=tmp_path)

    tca = json.loads((tmp_path / "tca" / "tca.json").read_text())
    log = (tmp_path / "child_log.jsonl").read_text().splitlines()
    assert tca["filled_qty"] == "1"
    assert tca["identity_check"]["is_delay + is_execution + is_opportunity + is_fees == is_total"] is True
    assert isinstance(result.child_log[0], BoundRecord)
    assert len(log) == len(result.child_log)
    assert all(r.reason.startswith("TWAP slice") for r in result.child_log if isinstance(r, PlaceRecord))
    assert (
        sum(
            (Decimal(row.split(",")[2]) for row in (tmp_path / "fills.csv").read_text().splitlines()[1:]),
            Decimal(0),
        )
        == 1
    )
    assert result.figures["tracking_error"] < 0.2


def test_backtest_is_deterministic_for_a_seed() -> None:
    parent = decode_parent(
        {
            "algo": "pov",
            "market": "BTCUSDT",
            "side": "buy",
            "client_algo_id": "bt-2",
            "qty": "1",
            "pov_target_bps": 1000,
            "duration_s": 300,
        }
    )

    first = backtest(parent, CALM_DAY, seed=5, warmup_s=120)
    second = backtest(parent, CALM_DAY, seed=5, warmup_s=120)

    assert first.fills == second.fills
    assert first.tca == second.tca


def test_backtest_on_an_unknown_market_names_it() -> None:
    parent = decode_parent(
        {
            "algo": "twap",
            "market": "DOGEUSDT",
            "side": "buy",
            "client_algo_id": "bt-3",
            "qty": "1",
            "duration_s": 60,
        }
    )

    with pytest.raises(BacktestError, match="DOGEUSDT"):
        backtest(parent, CALM_DAY)
