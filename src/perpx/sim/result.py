"""What one simulation run produced: the summary, the time series and the event markers.

This is the contract between the simulator (``runner/``), the report
(``report.py``) and parameter sweeps (``sweep/``): the runner fills a
:class:`RunResult`, the report draws one, a sweep reduces many to table rows.

Series are sampled on the simulator's sampling interval (``t_s`` is simulated
seconds since the scenario start) and hold plain floats for plotting; the exact
integer figures live in the journal and in ``summary``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

MARKET_SERIES = (
    "t_s",
    "index",
    "mark",
    "last",
    "open_interest",
    "funding_rate",
    "bid_depth",
    "ask_depth",
)
"""Columns of each market's series: simulated seconds; index, mark and last trade price (``nan`` before
the first value); open interest in base units (one side); the funding rate the next settlement would
use (a fraction, 0.0001 = 1 bp); resting quantity within 2% of the mark on each side, in base units."""

SUMMARY_FIELDS = (
    "scenario",
    "seed",
    "state_hash",
    "commands",
    "events",
    "sim_seconds",
    "wall_seconds",
    "liquidations",
    "liquidated_notional",
    "insurance_fund_start",
    "insurance_fund_min",
    "insurance_fund_end",
    "adl_events",
    "adl_notional",
    "bad_debt",
    "max_mark_index_gap_bps",
    "funding_paid",
    "invariant_checks",
    "invariant_violations",
    "assertions",
)
"""The fields the issue names; the summary holds these and more (see ``runner/summary.py``)."""

SUMMARY_SCHEMA = "summary.schema.json"
"""The JSON Schema (draft 2020-12) of ``summary.json``, shipped beside this module; every field of a
summary is listed there with its meaning, and no other field is allowed."""


def summary_schema() -> dict[str, Any]:
    """The JSON Schema of ``summary.json`` (:data:`SUMMARY_SCHEMA`)."""
    text = resources.files("perpx.sim").joinpath(SUMMARY_SCHEMA).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


VENUE_SERIES = ("t_s", "insurance_fund")
"""Columns of the venue series: simulated seconds; insurance fund equity in settlement units."""

MARKER_KINDS = ("liquidation", "adl", "insurance_takeover", "funding")
"""What a marker records; ``liquidation`` and ``adl`` are drawn on the price chart."""


@dataclass
class Marker:
    """One notable event at a time and price: a liquidation, an ADL leg, a takeover, a funding settlement."""

    t_s: float
    market: str
    kind: str
    price: float
    qty: float
    notional: float
    account_id: int


@dataclass
class RunResult:
    """Everything a run produced, in memory.

    ``summary`` is exactly what ``summary.json`` holds (see the issue's field list; assertions appear
    under ``summary["assertions"]`` as ``[{"name", "expr", "passed", "value", "detail"}]``).
    ``series[market]`` maps each :data:`MARKET_SERIES` column to a list of equal length;
    ``venue_series`` likewise for :data:`VENUE_SERIES`.
    """

    scenario: str
    seed: int
    summary: dict[str, Any]
    series: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    venue_series: dict[str, list[float]] = field(default_factory=dict)
    markers: list[Marker] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every declared assertion held and no invariant was violated."""
        assertions = self.summary.get("assertions", [])
        return all(a["passed"] for a in assertions) and not self.summary.get("invariant_violations", 0)
