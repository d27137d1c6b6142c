"""The run report: one self-contained HTML page and valid PNG charts that tell the story alone."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from perpx.sim.report import REPORT_HTML, build_charts, main, write_report
from perpx.sim.result import Marker, RunResult
from perpx.sim.runner import write_result

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
    assert depth.text == "thinnest: bid 1.00 / ask 10.00"
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
