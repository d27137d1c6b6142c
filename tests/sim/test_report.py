"""The run report: one self-contained HTML page and valid PNG charts that tell the story alone."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from perpx.sim.report import REPORT_HTML, _stagger, build_charts, main, write_report
from perpx.sim.result import Marker, RunResult
from perpx.sim.runner import write_result
from perpx.sim.runner.explanations import largest_accounts

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def crash_result(markets: tuple[str, ...] = ("BTCUSDT", "ETHUSDT"), samples: int = 120) -> RunResult:
    """A flash crash in miniature: prices fall 30% and recover half, the fund drains, ADL fires."""
    t_s = [float(10 * i) for i in range(samples)]
    series: dict[str, dict[str, list[float]]] = {}
    markers: list[Marker] = []
    for n, market in enumerate(markets):
        start = 60_000.0 if n == 0 else 3_000.0
        path = [start * (1 - 0.3 * min(i, 40) / 40 + 0.15 * max(0, i - 60) / 60) for i in range(samples)]
        series[market] = {
            "t_s": t_s,
            "index": path,
            "mark": [p * (1.002 if 35 < i < 45 else 1.0) for i, p in enumerate(path)],
            "last": [math.nan, *path[1:]],
            "open_interest": [100.0 - 60 * min(i, 50) / 50 for i in range(samples)],
            "funding_rate": [0.0001 - 0.000004 * min(i, 50) for i in range(samples)],
            "bid_depth": [50.0 - 49 * min(i, 40) / 40 for i in range(samples)],
            "ask_depth": [50.0 - 40 * min(i, 40) / 40 for i in range(samples)],
        }
        for i in range(20, 45, 3):
            markers.append(
                Marker(t_s[i], market, "liquidation", path[i], 0.5 * (i - 19), path[i] * 0.5 * (i - 19), i)
            )
        markers.append(Marker(t_s[44], market, "adl", path[44], 2.0, path[44] * 2.0, 99))
    markers.append(Marker(t_s[30], markets[0], "insurance_takeover", 45_000.0, 1.0, 45_000.0, 7))
    fund = [1_000_000.0 - 25_000 * min(i, 40) for i in range(samples)]
    summary = {
        "scenario": "flash-crash",
        "seed": 7,
        "state_hash": "ab" * 32,
        "commands": 12_345,
        "events": 45_678,
        "sim_seconds": t_s[-1],
        "wall_seconds": 3.2,
        "liquidations": 9,
        "liquidated_notional": 1.5e6,
        "insurance_fund_start": fund[0],
        "insurance_fund_min": min(fund),
        "insurance_fund_end": fund[-1],
        "adl_events": 2,
        "adl_notional": 2.4e5,
        "bad_debt": 0,
        "max_mark_index_gap_bps": 20.0,
        "funding_paid": 123.4,
        "invariant_checks": 500,
        "invariant_violations": 0,
        "assertions": [
            {"name": "no-bad-debt", "expr": "bad_debt == 0", "passed": True, "value": 0, "detail": ""},
            {
                "name": "fund-floor",
                "expr": "insurance_fund_min >= 500000",
                "passed": False,
                "value": 0.0,
                "detail": "fund emptied at t=400 s",
            },
        ],
    }
    return RunResult(
        scenario="flash-crash",
        seed=7,
        summary=summary,
        series=series,
        venue_series={"t_s": t_s, "insurance_fund": fund},
        markers=markers,
    )


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, Path, list[Path]]:
    """The crash's report, written once for the tests that read it (drawing takes about 2 s)."""
    result = crash_result()
    out_dir = tmp_path_factory.mktemp("report")
    return result, out_dir, write_report(result, out_dir)


def test_write_report_writes_one_self_contained_html_with_every_chart_title(
    written: tuple[RunResult, Path, list[Path]],
) -> None:
    # Arrange
    result, out_dir, paths = written
    titles = [chart.title for chart in build_charts(result)]
    # Act
    page = (out_dir / REPORT_HTML).read_text(encoding="utf-8")
    # Assert
    assert paths[0] == out_dir / REPORT_HTML
    assert not re.search(r"<script[^>]*\bsrc\s*=", page), "the page must not load scripts from the network"
    assert len(page) > 1_000_000, "plotly.js is inlined"
    assert page.count("Plotly.newPlot") == len(titles)
    for title in titles:
        assert title in page
    assert "flash-crash: seed 7" in page
    assert len(titles) == 1 + 5 * 2


def test_write_report_writes_a_valid_png_of_real_size_per_chart(
    written: tuple[RunResult, Path, list[Path]],
) -> None:
    # Arrange
    result, _, paths = written
    # Act
    pngs = [p for p in paths if p.suffix == ".png"]
    # Assert
    assert sorted(p.name for p in pngs) == sorted(f"{c.key}.png" for c in build_charts(result))
    for png in pngs:
        data = png.read_bytes()
        assert data.startswith(PNG_MAGIC)
        assert len(data) > 15_000, f"{png.name} is suspiciously small"
    assert {"price_BTCUSDT.png", "liquidations_ETHUSDT.png", "insurance_fund.png"} <= {p.name for p in pngs}


def test_summary_says_what_happened_and_colours_each_assertion_by_its_result(
    written: tuple[RunResult, Path, list[Path]],
) -> None:
    # Arrange
    _, out_dir, _ = written
    # Act
    page = (out_dir / REPORT_HTML).read_text(encoding="utf-8")
    # Assert
    assert re.search(r'<tr class="pass"><td>PASS</td><td>no-bad-debt</td>', page)
    assert re.search(r'<tr class="fail"><td>FAIL</td><td>fund-floor</td>', page)
    assert "class='verdict failed'>FAILED" in page
    assert "<th>insurance_fund_min</th><td>0</td>" in page
    assert (
        "9 liquidations (1,500,000); 2 ADL legs (240,000); insurance fund 1,000,000 → lowest 0 → 0;"
        " bad debt 0." in page
    )


def test_charts_call_out_the_worst_moment() -> None:
    # Arrange
    result = crash_result()
    # Act
    charts = {chart.key: chart for chart in build_charts(result)}
    # Assert: the fund's minimum (zero, from t=400 s) and the thinnest book are labelled
    fund = charts["insurance_fund"]
    assert fund.callouts[0].y == 0.0
    assert fund.callouts[0].text.startswith("minimum 0 ")
    assert "down 100% from start" in fund.callouts[0].text
    assert fund.x_label == "simulated time (min)"
    depth = charts["depth_BTCUSDT"].callouts[0]
    assert depth.text == "thinnest: bid 42,000 / ask 420,000"  # 1 and 10 BTC at the 42,000 mark, in USDT
    assert charts["price_BTCUSDT"].callouts[0].text == "widest mark-index gap 20 bps"
    assert any(t.name == "liquidation (9)" for t in charts["price_BTCUSDT"].traces)


def test_a_market_without_liquidations_still_gets_a_chart_that_says_so() -> None:
    # Arrange
    result = crash_result(markets=("BTCUSDT",))
    result.markers = [m for m in result.markers if m.kind not in {"liquidation", "adl"}]
    # Act
    charts = {chart.key: chart for chart in build_charts(result)}
    # Assert
    assert charts["liquidations_BTCUSDT"].note == "no liquidations or ADL in this market"
    assert charts["liquidations_BTCUSDT"].traces == []
    assert not any(t.name.startswith("liquidation") for t in charts["price_BTCUSDT"].traces)


def test_report_main_redraws_a_run_directory_and_refuses_a_non_run_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Arrange: the runner's files, without their report
    run = tmp_path / "run"
    write_result(crash_result(markets=("BTCUSDT",)), run)
    (run / REPORT_HTML).unlink()
    # Act
    ok = main([str(run)])
    refused = main([str(tmp_path / "nothing-here")])
    # Assert
    assert ok == 0
    page = (run / REPORT_HTML).read_text(encoding="utf-8")
    assert "BTCUSDT: liquidations by size" in page and "flash-crash: seed 7" in page
    assert refused == 2
    assert "cannot redraw the report" in capsys.readouterr().err


def incident_result() -> RunResult:
    """The crash with an incident: a 1000x outlier source, a stale one, a depth cut, a 3% funding cap."""
    result = crash_result(markets=("BTCUSDT",))
    columns = result.series["BTCUSDT"]
    columns["quote:binance"] = list(columns["index"])
    columns["quote:coinbase"] = [
        p * (1000 if 400 <= t < 700 else 1) for t, p in zip(columns["t_s"], columns["index"], strict=True)
    ]
    result.summary["settlement_asset"] = "USDT"
    result.summary["incident"] = {
        "description": "A 1000x outlier and a stale source.",
        "notes": "Models: sKRW.\nExpected of the mechanism: the index ignores the outlier.",
        "fault_windows": [
            {
                "market": "BTCUSDT",
                "source": "coinbase",
                "kind": "outlier",
                "start_s": 400.0,
                "end_s": 700.0,
                "factor": 1000.0,
            },
            {
                "market": "BTCUSDT",
                "source": "okx",
                "kind": "stale",
                "start_s": 300.0,
                "end_s": 900.0,
                "factor": 1.0,
            },
        ],
        "scripted_events": [
            {"at_s": 290.0, "action": "depth", "detail": "factor=0.02"},
            {"at_s": 300.0, "action": "depth", "detail": "factor=1"},
        ],
        "funding_caps": {"BTCUSDT": {"cap": 0.003, "floor": -0.003}},
    }
    result.summary["liquidated_accounts"] = [
        {
            "account_id": 7,
            "owner": "long-3",
            "count": 2,
            "notional": 9000.0,
            "notional_atoms": 0,
            "cause": "price_move",
        }
    ]
    result.summary["adl_counterparties"] = [
        {"account_id": 4, "owner": "mm-1", "legs": 1, "notional": 20000.0, "notional_atoms": 0}
    ]
    return result


def test_the_sources_chart_shows_every_source_and_shades_each_fault_window() -> None:
    # Act
    charts = {chart.key: chart for chart in build_charts(incident_result())}
    # Assert
    sources = charts["sources_BTCUSDT"]
    assert [t.name for t in sources.traces] == ["index", "binance quote", "coinbase quote"]
    assert sources.log_y  # the 1000x quotes would flatten the index on a linear scale
    assert sources.spans == [
        (400 / 60, 700 / 60, "coinbase outlier x1000 (400-700 s)"),
        (300 / 60, 900 / 60, "okx stale (300-900 s)"),
    ]
    assert [label for _, label in charts["price_BTCUSDT"].vlines] == [
        "depth (factor=0.02)",
        "depth (factor=1)",
    ]


def test_the_funding_chart_shows_the_cap_and_money_charts_are_in_the_settlement_asset() -> None:
    charts = {chart.key: chart for chart in build_charts(incident_result())}
    assert (30.0, "cap +30 bp") in charts["funding_BTCUSDT"].hlines
    assert (-30.0, "floor -30 bp") in charts["funding_BTCUSDT"].hlines
    assert charts["open_interest_BTCUSDT"].y_label == "open interest (USDT on the mark, one side)"
    assert charts["depth_BTCUSDT"].y_label == "resting notional (USDT on the mark)"


def test_the_report_shows_the_scenarios_words_and_a_table_by_account(tmp_path: Path) -> None:
    # Act
    write_report(incident_result(), tmp_path)
    page = (tmp_path / REPORT_HTML).read_text(encoding="utf-8")
    # Assert
    assert "A 1000x outlier and a stale source." in page and "Expected of the mechanism" in page
    assert "<td>4</td><td>mm-1</td>" in page and "<td>7</td><td>long-3</td>" in page
    assert page.index("<td>4</td><td>mm-1</td>") < page.index("<td>7</td><td>long-3</td>")  # largest first
    assert (tmp_path / "sources_BTCUSDT.png").exists()


def test_event_labels_sit_at_four_heights_so_neighbours_never_overlap() -> None:
    heights = [_stagger(n) for n in range(8)]
    assert len(set(heights[:4])) == 4 and heights[4:] == heights[:4]


def test_the_report_folds_in_perpx_explain_for_the_largest_liquidations(tmp_path: Path) -> None:
    write_report(incident_result(), tmp_path, {7: "account 7 | scope CROSS\nmargin ratio 102%"})
    page = (tmp_path / REPORT_HTML).read_text(encoding="utf-8")
    assert "<summary>perpx explain --account 7</summary>" in page and "margin ratio 102%" in page


def test_the_largest_liquidated_accounts_come_first_and_at_most_three() -> None:
    rows = [
        {"account_id": n, "notional_atoms": notional}
        for n, notional in ((5, 10), (6, 300), (7, 300), (8, 20), (9, 1))
    ]
    assert largest_accounts({"liquidated_accounts": rows}) == [6, 7, 8]
    assert largest_accounts({}) == []
