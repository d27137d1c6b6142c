"""The console's Python side without a browser: the figures' rounding, the pages, the run names."""

from __future__ import annotations

from pathlib import Path

import pytest

from perpx.console import assets
from perpx.console.risk import distance_pct, gap_bps, ratio_text
from perpx.console.risklab import RUN_NAME, run_row


def test_distance_to_liquidation_is_a_percent_of_the_mark_rounded_down() -> None:
    assert distance_pct(300_000, 297_001) == "0.99"
    assert distance_pct(300_000, 303_000) == "1"
    assert distance_pct(300_000, None) is None
    assert distance_pct(None, 297_000) is None


def test_mark_index_gap_is_in_basis_points_rounded_toward_zero() -> None:
    assert gap_bps(280_000, 280_100) == "-3.57"
    assert gap_bps(280_100, 280_000) == "3.57"
    assert gap_bps(280_000, None) is None


def test_a_scope_without_margin_has_no_ratio() -> None:
    assert ratio_text(2**62) is None
    assert ratio_text(50_000_000) == "0.5"


@pytest.mark.parametrize("name", ["..", ".", "../etc", "a/b", ".hidden", "", "x" * 129])
def test_a_run_name_that_could_leave_the_directory_is_not_a_run_name(name: str) -> None:
    assert RUN_NAME.fullmatch(name) is None or name in (".", "..")


def test_a_directory_without_a_readable_summary_is_not_a_run(tmp_path: Path) -> None:
    (tmp_path / "summary.json").write_text("[1, 2")
    assert run_row(tmp_path) is None


def test_a_checkout_without_a_build_answers_with_how_to_build(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(assets, "STATIC_DIR", tmp_path)
    answer = assets._page("trading.html")
    assert answer.status_code == 503
    assert b"npm ci && npm run build" in answer.body


def test_the_built_pages_ship_with_the_package() -> None:
    for name in ("trading.html", "operator.html", "trading.js", "operator.js", "console.css"):
        assert (assets.STATIC_DIR / name).is_file(), f"{name} missing: run npm ci && npm run build in web/"
    page = (assets.STATIC_DIR / "trading.html").read_text()
    assert "/console/trading.js" in page
    assert "https://" not in page, "the console must work offline: no CDN"
