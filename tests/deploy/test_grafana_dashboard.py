"""``deploy/grafana/perpx.json``: a well-formed dashboard over the venue's own metrics.

Checked: the four sections (venue health, pricing, risk, API), unique panel ids on a grid that
does not overlap, every query naming only metrics the venue exports, every exported metric on
some panel, and (with ``promtool``) every query parsing as PromQL.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from perpx.server import metrics

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "perpx.json"
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$instance": ".*", "$symbol": ".*"}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def queries() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]


def exported() -> set[str]:
    """Metric names as Prometheus sees them (counters end in _total, histograms in _bucket)."""
    return set(re.findall(r'"(perpx_[a-z_]+)"', Path(metrics.__file__).read_text()))


def used(expr: str) -> set[str]:
    return {re.sub(r"_bucket$", "", name) for name in re.findall(r"\b(perpx_[a-z_]+)", expr)}


def test_dashboard_has_the_four_sections_and_a_clean_grid() -> None:
    # Arrange
    board = dashboard()
    panels = board["panels"]

    # Act
    rows = [p["title"] for p in panels if p["type"] == "row"]
    ids = [p["id"] for p in panels]
    cells: set[tuple[int, int]] = set()
    overlaps = []
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                if (x, y) in cells:
                    overlaps.append(panel["title"])
                cells.add((x, y))

    # Assert
    assert rows == ["Venue health", "Pricing", "Risk", "API"]
    assert len(ids) == len(set(ids))
    assert not overlaps, overlaps
    assert board["uid"] == "perpx-venue"
    assert {v["name"] for v in board["templating"]["list"]} == {"datasource", "instance", "symbol"}


def test_dashboard_queries_only_exported_metrics_and_shows_every_one() -> None:
    # Arrange
    names = exported()

    # Act
    shown = set().union(*(used(expr) for expr in queries()))

    # Assert
    assert shown <= names, shown - names
    assert names <= shown, f"exported metrics on no panel: {names - shown}"


@pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool is not installed (Debian: apt-get install --no-install-recommends prometheus)",
)
def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    # Arrange: each query as a recording rule, Grafana's variables given values
    rules = []
    for i, query in enumerate(queries()):
        expr = query
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        rules.append({"record": f"perpx:dashboard_query_{i}", "expr": expr})
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))

    # Act
    done = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60, check=False
    )

    # Assert
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules)} rules found" in done.stdout
