"""Scenario files: both config forms, validation with clear errors, dotted overrides, TOML out."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from perpx.sim.scenario import (
    ScenarioError,
    apply_overrides,
    dump_toml,
    load_scenario,
    read_document,
    scenario_from_document,
)

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.toml"))
SHIPPED = [p for p in SCENARIOS if p.name != "venue.toml"]
CASCADE = ROOT / "scenarios" / "liquidation_cascade.toml"


def test_the_shipped_scenarios_each_load() -> None:
    names = {load_scenario(path).name for path in SHIPPED}
    assert names == {
        "calm_day",
        "flash_crash",
        "stale_and_outlier_source",
        "mark_manipulation",
        "liquidation_cascade",
        "funding_squeeze",
        "mark_walk",
        "mango_cash_out",
        "multi_asset_cascade",
    }


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_each_shipped_scenario_says_what_it_models_and_expects(path: Path) -> None:
    header = path.read_text().split("\n\n", 1)[0]
    assert header.startswith("# ")
    assert "Models:" in path.read_text() and "Expected of the mechanism" in path.read_text()


def test_config_file_and_inline_config_both_load() -> None:
    from_file = load_scenario(CASCADE)
    inline = load_scenario(ROOT / "scenarios" / "mark_manipulation.toml")
    assert "BTCUSDT" in from_file.config.markets
    assert "MNGOUSDT" in inline.config.markets
    assert tomllib.loads(from_file.config_text) == from_file.doc["config"]


def test_overrides_set_dotted_paths_with_list_indexes_and_leave_the_input_alone() -> None:
    # Arrange
    doc = read_document(CASCADE)
    # Act
    out = apply_overrides(
        doc,
        {
            "config.markets.BTCUSDT.brackets.0.mmr": 0.006,
            "insurance.fund": 12345,
            "run.duration_s": 60,
            "agents.1.count": 3,
        },
    )
    scenario = scenario_from_document(out, CASCADE.parent)
    # Assert
    assert out["config"]["markets"]["BTCUSDT"]["brackets"][0]["mmr"] == "0.006"  # a number for a string
    assert scenario.config.markets["BTCUSDT"].brackets[0].mmr_e8 == 600_000  # type: ignore[index]
    assert scenario.insurance_fund == "12345" and scenario.duration_s == 60
    assert doc["config"]["markets"]["BTCUSDT"]["brackets"][0]["mmr"] == "0.005"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("config.markets.BTCUSDT.brackets.9.mmr", "not an index"),
        ("config.markets.ETHUSDT.tick_size", "'config.markets.ETHUSDT' does not exist"),
        ("insurance.fnud", "does not exist"),
        ("config.markets.BTCUSDT.tick_size.x", "is a value"),
    ],
)
def test_an_override_of_a_path_that_does_not_exist_is_an_error(path: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        apply_overrides(read_document(CASCADE), {path: 1})


def test_load_scenario_applies_overrides_and_validates_them() -> None:
    with pytest.raises(ScenarioError, match=r"config: .*mmr"):
        load_scenario(CASCADE, {"config.markets.BTCUSDT.brackets.0.mmr": "lots"})


def _doc(**changes: object) -> dict[str, object]:
    doc = read_document(CASCADE)
    doc.update(changes)
    return doc


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (_doc(sources=[{"name": "kraken", "market": "BTCUSDT"}]), "'kraken' is not in"),
        (_doc(agents=[{"kind": "hedge_fund"}]), "agent kind was 'hedge_fund'"),
        (_doc(agents=[{"kind": "noise_trader", "trade_prb": 1}]), "no parameter 'trade_prb'"),
        (_doc(events=[{"at_s": 1, "action": "explode"}]), "action was 'explode'"),
        (_doc(events=[{"at_s": 1, "action": "market_mode", "market": "BTCUSDT", "mode": "OPEN"}]), "mode"),
        (_doc(assertions=[{"metric": "bad_debt", "op": "=~", "value": 0}]), "op was"),
        (_doc(run={"duration_s": -1}), "run.duration_s"),
        (_doc(surprise=1), "unknown top-level"),
        ({"name": "x"}, "needs a venue config"),
    ],
)
def test_a_bad_scenario_is_refused_with_a_message_naming_the_key(
    doc: dict[str, object], message: str
) -> None:
    with pytest.raises(ScenarioError, match=message):
        scenario_from_document(doc, CASCADE.parent)


def test_a_missing_or_broken_file_is_a_scenario_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("name = [\n")
    with pytest.raises(ScenarioError, match="not valid TOML"):
        load_scenario(broken)
    with pytest.raises(ScenarioError, match="No such file"):
        load_scenario(tmp_path / "missing.toml")


def test_dump_toml_writes_what_tomllib_reads_back() -> None:
    example = tomllib.loads((ROOT / "examples" / "venue.toml").read_text())
    doc = {"a": {"b c": [1, 2], "d": {"e": 'f"g'}}, "rows": [{"x": 1.5, "y": True}], **example}
    assert tomllib.loads(dump_toml(doc)) == doc


def test_config_overrides_change_the_scenarios_venue_only_where_they_say(tmp_path: Path) -> None:
    from perpx.sim.scenario import ScenarioError, read_document

    venue = Path(__file__).resolve().parents[2] / "scenarios" / "venue.toml"
    path = tmp_path / "s.toml"
    path.write_text(f'config_file = "{venue}"\n[config_overrides]\n"markets.BTCUSDT.funding_cap" = "0.003"\n')
    doc = read_document(path)
    assert doc["config"]["markets"]["BTCUSDT"]["funding_cap"] == "0.003"
    assert doc["config"]["markets"]["BTCUSDT"]["funding_floor"] == "-0.03"
    path.write_text(f'config_file = "{venue}"\n[config_overrides]\n"markets.NOPE.funding_cap" = "0.003"\n')
    with pytest.raises(ScenarioError, match="NOPE"):
        read_document(path)
