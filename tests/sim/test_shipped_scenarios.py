"""Each shipped scenario runs, its own assertions pass, and it produces the phenomenon it claims."""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path

import jsonschema
import pytest

from perpx.sim.result import RunResult, summary_schema
from perpx.sim.runner import run_scenario

ROOT = Path(__file__).resolve().parents[2] / "scenarios"
NAMES = [
    "calm_day",
    "flash_crash",
    "stale_and_outlier_source",
    "mark_manipulation",
    "liquidation_cascade",
    "funding_squeeze",
    "mark_walk",
    "mango_cash_out",
    "multi_asset_cascade",
]


@cache
def _run(name: str) -> RunResult:
    return run_scenario(ROOT / f"{name}.toml", 1, None)


@pytest.mark.parametrize("name", NAMES)
def test_a_shipped_scenario_passes_its_own_assertions(name: str) -> None:
    result = _run(name)
    failed = [a for a in result.summary["assertions"] if not a["passed"]]
    assert not failed
    assert result.passed and result.summary["invariant_checks"] > 0
    assert result.summary["wall_seconds"] < 60


@pytest.mark.parametrize("name", NAMES)
def test_a_shipped_scenario_summary_matches_the_schema(name: str) -> None:
    summary = json.loads(json.dumps(_run(name).summary))  # as summary.json holds it
    jsonschema.Draft202012Validator(summary_schema()).validate(summary)


def test_the_shipped_scenarios_are_the_ones_tested() -> None:
    assert sorted(NAMES) == sorted(p.stem for p in ROOT.glob("*.toml") if p.stem != "venue")


def test_the_cascade_liquidates_and_the_capped_fund_unwinds_while_adl_takes_the_rest() -> None:
    s = _run("liquidation_cascade").summary
    assert s["liquidations"] >= 5 and len(s["liquidated_accounts"]) >= 5
    assert s["insurance_takeovers"] >= 1 and s["adl_events"] >= 1 and s["adl_notional"] > 0
    assert s["adl_borne_atoms"] == s["adl_shortfall_atoms"]
    # the fund's cap (3x its equity at each takeover, venue.toml): it never held more than 4x its
    # 5,000 start (fees raise its equity, the mark moves after), and it sold what it took back to the book
    assert s["insurance_fund_max_position_notional"] <= 4 * s["insurance_fund_start"]
    assert s["insurance_unwind_fills"] >= 1 and s["insurance_unwound_notional"] > 0
    assert s["insurance_fund_position_notional"] < 0.05 * s["insurance_takeover_notional"]
    assert s["insurance_fund_min"] > s["insurance_fund_start"] / 2


def test_without_its_policy_the_fund_takes_over_many_times_its_equity_and_is_drained() -> None:
    uncapped = {
        "config.markets.BTCUSDT.insurance_takeover_cap": "1000",
        "config.markets.BTCUSDT.insurance_unwind_clip": "0",
    }
    s = run_scenario(ROOT / "liquidation_cascade.toml", 1, None, overrides=uncapped).summary
    assert s["insurance_fund_max_position_notional"] > 20 * s["insurance_fund_start"]
    assert s["insurance_unwind_fills"] == 0
    assert s["insurance_fund_min"] < s["insurance_fund_start"] / 10
    capped = _run("liquidation_cascade").summary
    assert capped["insurance_fund_min"] > 10 * max(1.0, s["insurance_fund_min"])


def test_the_flash_crash_liquidates_and_the_makers_step_back() -> None:
    result = _run("flash_crash")
    s = result.summary
    assert s["liquidations"] >= 5
    assert s["maker_withdrawals"] >= 1
    marks = [m for m in result.series["BTCUSDT"]["mark"] if not math.isnan(m)]
    assert min(marks) < 0.75 * marks[0]  # the crash really happened (-30% spot)
    assert any(m.kind == "liquidation" for m in result.markers)


def test_the_faulty_sources_are_really_faulty_and_ignored() -> None:
    s = _run("stale_and_outlier_source").summary
    assert s["faulty_quotes_sent"] > 100
    assert s["faulty_quotes_used"] == 0 and s["liquidations_from_faulty_sources"] == 0


def test_the_manipulation_moves_the_mark_but_pays_out_no_paper_profit() -> None:
    result = _run("mark_manipulation")
    s = result.summary
    assert s["attacker_unrealized_pnl_max"] > 2 * s["attacker_deposits"]
    assert s["attacker_withdrawals_refused"] >= 5
    assert s["attacker_withdrawn"] <= s["attacker_deposits"] + max(0.0, s["attacker_realized_pnl"])
    marks = [m for m in result.series["MNGOUSDT"]["mark"] if not math.isnan(m)]
    assert max(marks) > 3 * marks[0]


def test_the_funding_squeeze_charges_capped_funding_and_liquidates_longs() -> None:
    s = _run("funding_squeeze").summary
    assert s["funding_settlements"] >= 6
    assert s["max_funding_rate"] == 0.003  # the scenario's cap, reached
    assert s["liquidations"] >= 1
    assert s["liquidations_by_cause"]["funding_payment"] == s["liquidations"]
    assert all(row["cause"] == "funding_payment" for row in s["liquidated_accounts"])


def test_the_mark_walk_moves_the_book_but_the_band_holds_the_mark_and_the_victim_survives() -> None:
    s = _run("mark_walk").summary
    assert 100 < s["max_mark_index_gap_bps"] <= 300  # the walk did move the mark, as far as the band
    assert s["liquidations"] == 0 and s["insurance_fund_min"] >= s["insurance_fund_start"]
    assert s["attacker_realized_pnl"] < 0


def test_the_mango_cash_out_is_held_at_the_band_and_pays_the_ring_nothing() -> None:
    s = _run("mango_cash_out").summary
    assert s["max_mark_index_gap_bps"] == 300  # the pair walked the mark into the clamp
    assert s["attacker_unrealized_pnl_max"] > 0  # there was paper profit to cash out
    assert s["attacker_withdrawals_refused"] >= 1
    assert s["attacker_realized_pnl"] < 0 and s["insurance_fund_min"] >= s["insurance_fund_start"]


def test_seeds_vary_the_cascades_crash_not_only_its_agents() -> None:
    one, two = (
        _run("liquidation_cascade").summary,
        run_scenario(ROOT / "liquidation_cascade.toml", 2, None).summary,
    )
    assert set(one["draws"]) == {"events.0.factor", "prices.BTCUSDT.size", "prices.BTCUSDT.speed"}
    assert (
        0.01 <= one["draws"]["events.0.factor"] <= 0.05 and 0.7 <= one["draws"]["prices.BTCUSDT.size"] <= 1.3
    )
    assert all(one["draws"][k] != two["draws"][k] for k in one["draws"])
    assert run_scenario(ROOT / "liquidation_cascade.toml", 2, None).summary["draws"] == two["draws"]
