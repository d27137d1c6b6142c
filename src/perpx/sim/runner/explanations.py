"""``perpx explain`` for a run's largest liquidations, for the report: the reader sees why, not only what.

After a run with a journal, the accounts with the largest liquidated notional are explained exactly
as ``perpx explain --data DIR/journal --account N`` would (a read-only replay of the journal), and
each text is written to ``DIR/explain_<N>.txt`` for the report to show.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console

from perpx.explain import collect, render
from perpx.journal.store import read_config

LARGEST = 3
"""How many accounts the report explains."""

EXPLAIN_FILE = "explain_{account}.txt"


def largest_accounts(summary: Mapping[str, Any], count: int = LARGEST) -> list[int]:
    """The ``count`` liquidated accounts with the largest liquidated notional, largest first."""
    rows = sorted(
        summary.get("liquidated_accounts", []), key=lambda r: (-r["notional_atoms"], r["account_id"])
    )
    return [int(r["account_id"]) for r in rows[:count]]


def explain_largest(journal: Path, summary: Mapping[str, Any], out_dir: Path) -> dict[int, str]:
    """Explain the largest liquidations from ``journal``; write and return ``{account: text}``."""
    accounts = largest_accounts(summary)
    if not accounts:
        return {}
    config = read_config(journal)
    texts: dict[int, str] = {}
    for account in accounts:
        records, _report = collect(journal, config, account)
        console = Console(record=True, width=150, file=io.StringIO(), color_system=None)
        render(console, config, records, account)
        texts[account] = console.export_text()
        (out_dir / EXPLAIN_FILE.format(account=account)).write_text(texts[account], encoding="utf-8")
    return texts


def read_explanations(out_dir: Path) -> dict[int, str]:
    """The explanations a run directory holds (``explain_<N>.txt``), by account."""
    texts: dict[int, str] = {}
    for path in sorted(out_dir.glob("explain_*.txt")):
        number = path.stem.removeprefix("explain_")
        if number.isdigit():
            texts[int(number)] = path.read_text(encoding="utf-8")
    return texts


__all__ = ["EXPLAIN_FILE", "LARGEST", "explain_largest", "largest_accounts", "read_explanations"]
