"""Each incident drill runs, names its incident and a source, and its claims (assertions) hold."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import jsonschema
import pytest

from perpx.sim.result import RunResult, summary_schema
from perpx.sim.runner import run_scenario

DRILLS = Path(__file__).resolve().parents[2] / "scenarios" / "drills"
NAMES = sorted(p.stem for p in DRILLS.glob("drill_*.toml"))


@cache
def _run(name: str) -> RunResult:
    return run_scenario(DRILLS / f"{name}.toml", 1, None)


def test_the_drills_are_shipped() -> None:
    assert len(NAMES) >= 3


@pytest.mark.parametrize("name", NAMES)
def test_a_drill_names_its_incident_its_figures_a_source_and_what_the_mechanism_must_do(name: str) -> None:
    text = (DRILLS / f"{name}.toml").read_text(encoding="utf-8")
    assert text.startswith("# Drill: ")
    assert "http" in text or "arXiv" in text  # a source for the published figures
    assert "Expected of the mechanism" in text and "[[assertions]]" in text


@pytest.mark.parametrize("name", NAMES)
def test_a_drill_passes_its_own_assertions_and_its_summary_matches_the_schema(name: str) -> None:
    result = _run(name)
    failed = [a["name"] for a in result.summary["assertions"] if not a["passed"]]
    assert not failed and result.passed
    jsonschema.Draft202012Validator(summary_schema()).validate(json.loads(json.dumps(result.summary)))


def test_the_cross_market_drill_liquidates_in_every_market_and_ends_in_adl() -> None:
    s = _run("drill_2025_10_10_cross_market").summary
    assert all(s["markets"][m]["liquidations"] >= 1 for m in ("BTCUSDT", "ETHUSDT", "ALTUSDT"))
    assert s["adl_events"] >= 1 and s["adl_accounts"] >= 1
    # the cap is on the fund's whole book: never 3x its equity in each market at once
    assert s["insurance_fund_max_position_notional"] <= 4 * s["insurance_fund_start"]
