"""The alert rules of ``deploy/prometheus/rules.yml``: every rule has a unit test, and promtool passes them.

``promtool`` comes with Debian's ``prometheus`` package (``.ci/run`` installs it when it is missing);
without it the promtool test is skipped and says how to install it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from perpx.server import metrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULES = DEPLOY / "rules.yml"
RULES_TEST = DEPLOY / "rules_test.yml"


def alerts() -> list[str]:
    return re.findall(r"^\s*- alert: (\S+)", RULES.read_text(), re.MULTILINE)


def test_every_alert_rule_has_a_firing_test() -> None:
    # Arrange
    tested = RULES_TEST.read_text()

    # Act
    names = alerts()

    # Assert: each alert is expected to fire somewhere (an alertname followed by exp_alerts)
    assert len(names) >= 7
    untested = [name for name in names if not re.search(rf"alertname: {name}\n\s+exp_alerts:", tested)]
    assert not untested, f"alert rules without a firing test in {RULES_TEST.name}: {untested}"


def test_rules_use_only_metrics_the_venue_exports() -> None:
    # Arrange
    source = Path(metrics.__file__).read_text()
    exported = set(re.findall(r'"(perpx_[a-z_]+)"', source))

    # Act
    used = set(re.findall(r"\b(perpx_[a-z_]+?)(?:_bucket|_count|_sum)?\b", RULES.read_text()))

    # Assert
    assert used <= exported, used - exported


@pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool is not installed (Debian: apt-get install --no-install-recommends prometheus)",
)
def test_promtool_passes_the_rule_unit_tests() -> None:
    # Act
    done = subprocess.run(
        ["promtool", "test", "rules", RULES_TEST.name],
        cwd=DEPLOY,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    # Assert
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
