"""What a sweep can tabulate: the metric names, how each is read from a run, and the aggregate columns.

A metric is one of the summary fields every run has (:data:`SUMMARY_METRICS`), ``passed`` (every
assertion of the scenario held, no invariant violated: the scenario *showed what it claims*, so a
larger fund can make it false by not draining), ``mechanism_held`` (every named check held, e.g.
``no_account_below_zero`` and ``adl_equals_shortfall``, and no invariant was violated: the rules of
the mechanism, which read the right way whatever the parameters), ``assertions_failed`` (a count), ``assertion:<name>``
(whether that declared assertion held) or ``summary:<field>`` (any other numeric field of
``summary.json``, e.g. ``summary:accounts_below_zero``; a run without it is recorded as an error).
Only the ``summary:`` form is looked up at run time; every other name is checked when the file is
read, so a typo fails before anything runs. Numbers are tabulated as floats (money in settlement
units), booleans as booleans.

Per-cell aggregate columns (:func:`aggregate_columns`): for each metric ``m`` over the runs that
finished, ``p_m`` (share of seeds where ``m`` is non-zero, or true: ``p_bad_debt`` is the
probability of bad debt), and for numbers ``m_mean``, ``m_min``, ``m_max``.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from perpx.sim.assertions import CHECKS
from perpx.sim.result import RunResult

SUMMARY_METRICS = (
    "commands",
    "events",
    "sim_seconds",
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
    "insurance_fund_cash_min",
    "insurance_fund_max_position_notional",
    "insurance_takeover_notional",
    "insurance_unwound_notional",
    "insurance_fund_position_notional",
    "adl_accounts",
    "adl_shortfall",
)
"""Numeric fields of ``summary.json`` a sweep can tabulate (``wall_seconds`` is left out on purpose:
it differs between two runs of the same cell, and the table must not)."""

DERIVED_METRICS = ("passed", "mechanism_held", "assertions_failed")
"""Metrics computed from a run's assertions rather than read from one summary field."""

DEFAULT_METRICS = (
    "bad_debt",
    "liquidations",
    "adl_events",
    "insurance_fund_min",
    "max_mark_index_gap_bps",
    "mechanism_held",
)
"""What a sweep file without ``metrics`` tabulates."""


def is_known_metric(metric: str) -> bool:
    """Whether a sweep can tabulate ``metric`` (see the module docstring)."""
    if metric.startswith(("assertion:", "summary:")):
        return bool(metric.partition(":")[2])
    return metric in SUMMARY_METRICS or metric in DERIVED_METRICS


def is_boolean_metric(metric: str) -> bool:
    """Whether ``metric`` is pass/fail (tabulated as a boolean, aggregated as a share only)."""
    return metric in ("passed", "mechanism_held") or metric.startswith("assertion:")


def aggregate_columns(metrics: Sequence[str]) -> list[str]:
    """The per-cell aggregate columns derived from ``metrics`` (besides cell, axes, seeds, errors)."""
    columns: list[str] = []
    for metric in metrics:
        columns.append(f"p_{metric}")
        if not is_boolean_metric(metric):
            columns += [f"{metric}_mean", f"{metric}_min", f"{metric}_max"]
    return columns


def metric_value(result: RunResult, metric: str) -> float | bool:
    """One metric of a run: a float for numbers (decimal strings parsed), a bool for pass/fail.

    Raises
    ------
    KeyError
        If the run's summary has no such field or assertion.
    """
    if metric == "passed":
        return result.passed
    assertions = result.summary.get("assertions", [])
    if metric == "mechanism_held":
        checks = [a for a in assertions if a["expr"] in CHECKS]
        return all(a["passed"] for a in checks) and not result.summary.get("invariant_violations", 0)
    if metric == "assertions_failed":
        return float(sum(1 for a in assertions if not a["passed"]))
    if metric.startswith("assertion:"):
        name = metric.removeprefix("assertion:")
        for a in assertions:
            if a["name"] == name:
                return bool(a["passed"])
        raise KeyError(f"the scenario declares no assertion named '{name}'")
    field_name = metric.removeprefix("summary:")
    if field_name not in result.summary:
        raise KeyError(f"summary has no field '{field_name}'")
    value = result.summary[field_name]
    if isinstance(value, bool):
        return value
    return float(Decimal(value) if isinstance(value, str) else value)


__all__ = [
    "DEFAULT_METRICS",
    "DERIVED_METRICS",
    "SUMMARY_METRICS",
    "aggregate_columns",
    "is_boolean_metric",
    "is_known_metric",
    "metric_value",
]
