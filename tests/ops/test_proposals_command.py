"""``perpx proposals dry-run``: the dry run offline on a data directory's config."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from perpx.cli import app
from perpx.engine.config import DEFAULT_CONFIG_TOML

runner = CliRunner()


def data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "config.toml").write_text(DEFAULT_CONFIG_TOML)
    return data


def test_dry_run_compares_the_config_values_with_the_proposed_ones(tmp_path: Path) -> None:
    # Arrange
    data, out = data_dir(tmp_path), tmp_path / "comparison.json"

    # Act
    done = runner.invoke(app, ["proposals", "dry-run", "--data", str(data), "--symbol", "btcusdt",
                               "--param", "max_open_orders=50", "--scenario", "mark_walk", "--out", str(out)])  # fmt: skip

    # Assert
    assert done.exit_code == 0, done.output
    result = json.loads(out.read_text())
    assert result["proposed"] == {"max_open_orders": "50"}
    assert result["current"] == {"max_open_orders": "200"}
    row = result["results"]["mark_walk"]
    assert (
        row["applicable"] is True and "liquidations" in row["current"] and "liquidations" in row["proposed"]
    )
    assert "mark_walk" in done.output


def test_dry_run_refuses_a_parameter_that_cannot_change_live(tmp_path: Path) -> None:
    # Act
    done = runner.invoke(app, ["proposals", "dry-run", "--data", str(data_dir(tmp_path)), "--symbol", "BTCUSDT",
                               "--param", "price_unit=1", "--scenario", "mark_walk"])  # fmt: skip

    # Assert
    assert done.exit_code == 2
    assert "cannot be changed on a listed market" in done.output


def test_dry_run_takes_brackets_as_json_and_compares_them(tmp_path: Path) -> None:
    # Arrange
    data, out = data_dir(tmp_path), tmp_path / "comparison.json"
    brackets = '[{"notional_cap": "20000000", "max_leverage": 20, "mmr": "0.025"}]'

    # Act
    done = runner.invoke(app, ["proposals", "dry-run", "--data", str(data), "--symbol", "BTCUSDT",
                               "--param", f"brackets={brackets}", "--param", "funding_interval_hours=4",
                               "--scenario", "mark_walk", "--out", str(out)])  # fmt: skip

    # Assert
    assert done.exit_code == 0, done.output
    result = json.loads(out.read_text())
    assert json.loads(result["proposed"]["brackets"]) == json.loads(brackets)
    assert json.loads(result["current"]["brackets"])[0]["max_leverage"] == 125
    assert result["current"]["funding_interval_hours"] == "8"
    assert "error" not in result["results"]["mark_walk"]["proposed"]


def test_dry_run_refuses_brackets_that_are_not_json(tmp_path: Path) -> None:
    # Act
    done = runner.invoke(app, ["proposals", "dry-run", "--data", str(data_dir(tmp_path)), "--symbol", "BTCUSDT",
                               "--param", "brackets=[{notional_cap", "--scenario", "mark_walk"])  # fmt: skip

    # Assert
    assert done.exit_code == 2
    assert "is not JSON; give the config table as JSON" in done.output
