"""Every alert links its runbook, and every runbook says what an on-call engineer needs.

A runbook page (``docs/runbooks/``) has five sections: what it means, how to confirm (with a
command), what to do, how to roll back, who to tell. The index lists every alert.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "prometheus" / "rules.yml"
RUNBOOKS = REPO / "docs" / "runbooks"
SECTIONS = ("## What it means", "## How to confirm", "## What to do", "## How to roll back", "## Who to tell")


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"] if "alert" in rule]


def test_every_alert_links_a_runbook_that_exists() -> None:
    # Act
    missing = []
    for rule in alert_rules():
        url = rule.get("annotations", {}).get("runbook_url", "")
        if not url.startswith("docs/runbooks/") or not (REPO / url).is_file():
            missing.append((rule["alert"], url))

    # Assert
    assert len(alert_rules()) >= 17
    assert not missing, f"alerts without a runbook page: {missing}"


def test_every_runbook_has_the_five_sections_and_a_command_to_confirm() -> None:
    # Arrange
    linked = {rule["annotations"]["runbook_url"]: rule["alert"] for rule in alert_rules()}

    # Act
    problems = []
    for url, alert in linked.items():
        text = (REPO / url).read_text()
        if not text.startswith(f"# {alert}\n"):
            problems.append(f"{url}: the title is not the alert name {alert}")
        positions = [text.find(section) for section in SECTIONS]
        if -1 in positions or positions != sorted(positions):
            problems.append(f"{url}: sections missing or out of order")
            continue
        confirm = text[positions[1] : positions[2]]
        if "```sh" not in confirm and "PromQL" not in confirm:
            problems.append(f"{url}: 'How to confirm' gives no command")

    # Assert
    assert not problems, problems


def test_runbook_index_lists_every_alert_and_no_page_is_orphaned() -> None:
    # Arrange
    index = (RUNBOOKS / "README.md").read_text()
    linked = {Path(rule["annotations"]["runbook_url"]).name for rule in alert_rules()}

    # Act
    listed = set(re.findall(r"\]\(([a-z-]+\.md)\)", index))
    pages = {path.name for path in RUNBOOKS.glob("*.md")} - {"README.md"}

    # Assert
    assert listed == linked == pages
