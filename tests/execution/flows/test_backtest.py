"""``perpx algo backtest``: a strategy document on a short risk-lab scenario, with its files and TCA."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from perpx.cli import app
from perpx.execution.document.validate import decode_document
from perpx.execution.flows.backtest import FlowBacktestError, backtest_flow

REPO = Path(__file__).resolve().parents[3]

DOCUMENT = """\
version = 1
name = "bt-twap-then-hedge"

[[parents]]
id = "buy"
client_algo_id = "bt-twap"
algo = "twap"
market = "BTCUSDT"
side = "buy"
qty = "0.5"
duration_s = 240
slice_interval_s = 30

[[flow.nodes]]
id = "work"
type = "algo"
parent = "buy"

[[flow.nodes]]
id = "hedge"
type = "order"
trigger = { on = "partially_filled", node = "work", pct = 50 }
order = { market = "BTCUSDT", side = "sell", qty = "0.1", type = "market" }
"""


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    """calm_day cut to 15 minutes (5 of warm-up, then the flow)."""
    text = (
        (REPO / "scenarios" / "calm_day.toml").read_text().replace("duration_s = 7200", "duration_s = 900", 1)
    )
    (tmp_path / "venue.toml").write_text((REPO / "scenarios" / "venue.toml").read_text())
    path = tmp_path / "short.toml"
    path.write_text(text)
    return path


def test_backtest_writes_the_journal_child_logs_fills_and_tca_per_node(
    tmp_path: Path, scenario: Path
) -> None:
    # Arrange
    document, out = tmp_path / "flow.toml", tmp_path / "out"
    document.write_text(DOCUMENT)

    # Act
    result = CliRunner().invoke(
        app,
        [
            "algo",
            "backtest",
            str(document),
            "--scenario",
            str(scenario),
            "--out",
            str(out),
            "--warmup-s",
            "300",
        ],
    )

    # Assert
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "backtest.json").read_text())
    assert {n: s["status"] for n, s in summary["nodes"].items()} == {"work": "filled", "hedge": "filled"}
    rows = list(csv.DictReader((out / "fills.csv").read_text().splitlines()))
    assert sum(Decimal(r["qty"]) for r in rows if r["node"] == "work") == Decimal("0.5")
    assert sum(Decimal(r["qty"]) for r in rows if r["node"] == "hedge") == Decimal("0.1")
    assert (out / "children" / "bt-twap.childlog").exists() and (out / "flow_journal.jsonl").exists()
    for node in ("work", "hedge"):
        tca = json.loads((out / "tca" / node / "tca.json").read_text())
        assert Decimal(tca["filled_qty"]) == Decimal("0.5" if node == "work" else "0.1")
    assert "work: {" in result.output and "arrival_slippage_bps" in result.output


def test_a_document_on_a_market_the_scenario_lacks_is_refused(scenario: Path) -> None:
    document = decode_document(
        {
            "version": 1,
            "name": "x",
            "flow": {
                "nodes": [
                    {
                        "id": "a",
                        "type": "order",
                        "order": {"market": "DOGEUSDT", "side": "buy", "qty": "1", "type": "market"},
                    }
                ]
            },
        }
    )
    with pytest.raises(
        FlowBacktestError, match=r"flow.nodes\[0\].order.market: 'DOGEUSDT' is not in the scenario"
    ):
        backtest_flow(document, scenario)
