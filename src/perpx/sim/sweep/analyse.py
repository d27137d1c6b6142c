"""Reading a sweep's rows: one aggregate row per cell, and the answers to the file's questions.

Per-cell aggregate (:func:`aggregate`): ``cell``, the axis values, ``seeds``, ``errors`` (runs that
raised), and the columns :func:`~perpx.sim.sweep.metrics.aggregate_columns` names, over the runs
that finished.

Questions
---------
For every combination of the values of the *other* axes, the answer is the smallest (``minimise``)
or largest (``maximise``) value of the axis, compared as numbers, whose cell meets the share: at
least ``share x seeds`` of its seeds satisfy every ``where`` condition. A run that raised counts as
not satisfying it. No value meeting the share is answered ``none``. ``holds_beyond`` tells whether
every value past the answer meets the share too; when it is false the outcome is not monotone in
the axis over these seeds and the answer deserves more seeds.

Every answer states what its seeds support (:mod:`.bounds`): the one-sided 95% Clopper-Pearson
lower bound on the share at the value found (``share_low``), whether it reaches the asked share
(``supported``; an unsupported answer is the observed value only, never a claim of the share), and
how many seeds, all meeting the condition, would support it (``seeds_needed``). It also states the
grid's resolution there: ``previous`` is the grid value tested just before the answer in the
search order, which did not meet the share, so the threshold lies between ``previous`` and
``value``; None when the answer is the first value tested (the threshold may lie beyond the grid).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from perpx.sim.sweep.bounds import CONFIDENCE, seeds_needed, share_lower_bound
from perpx.sim.sweep.metrics import is_boolean_metric
from perpx.sim.sweep.spec import Question, Row, SweepSpec, Value, as_number, value_key

_SHARE_EPSILON = 1e-9


@dataclass(frozen=True)
class Answer:
    """A question's answer for one combination ``given`` of the other axes.

    ``value`` is the axis value found, None for "none"; ``met`` of ``seeds`` seeds satisfied the
    conditions there. ``best_value`` is the value with the highest share (``best_met`` seeds),
    to say how close a "none" came.
    """

    given: dict[str, Value]
    value: Value | None
    met: int
    seeds: int
    holds_beyond: bool
    best_value: Value | None
    best_met: int
    share_low: float = 0.0
    """One-sided Clopper-Pearson lower bound on the share at ``value`` (at ``best_value`` for none)."""
    confidence: float = CONFIDENCE
    supported: bool = False
    """The bound reaches the asked share: the seeds support the claim, not only the observation."""
    seeds_needed: int | None = None
    """Seeds, every one meeting the condition, that would support the share (None for a share of 1)."""
    previous: Value | None = None
    """The grid value tested before ``value`` (not meeting the share): the threshold lies between them."""


@dataclass
class SweepOutcome:
    """What a sweep produced: rows per run, rows per cell, answers, files, and how it ran."""

    spec: SweepSpec
    rows: list[Row]
    cells: list[Row]
    answers: list[tuple[Question, list[Answer]]]
    executor: str
    workers: int
    wall_seconds: float
    files: list[Path] = field(default_factory=list)
    refined: dict[str, list[Any]] = field(default_factory=dict)
    """Question name -> its thresholds refined by bisection (:class:`~.bisect.Refined`), when asked."""

    @property
    def errors(self) -> int:
        """Runs that raised instead of finishing."""
        return sum(1 for row in self.rows if row["error"])


def aggregate(spec: SweepSpec, rows: Sequence[Row]) -> list[Row]:
    """Reduce the run rows to one row per cell (see the module docstring for the columns)."""
    by_cell: dict[int, list[Row]] = {}
    for row in rows:
        by_cell.setdefault(int(row["cell"]), []).append(row)
    out: list[Row] = []
    for number, cell in enumerate(spec.cells()):
        runs = by_cell.get(number, [])
        finished = [r for r in runs if not r["error"]]
        agg: Row = {"cell": number, **cell, "seeds": len(runs), "errors": len(runs) - len(finished)}
        for metric in spec.metrics:
            values = [r[metric] for r in finished]
            agg[f"p_{metric}"] = sum(1 for v in values if v) / len(values) if values else None
            if not is_boolean_metric(metric):
                agg[f"{metric}_mean"] = sum(values) / len(values) if values else None
                agg[f"{metric}_min"] = min(values) if values else None
                agg[f"{metric}_max"] = max(values) if values else None
        out.append(agg)
    return out


def answer(spec: SweepSpec, question: Question, rows: Sequence[Row]) -> list[Answer]:
    """Answer ``question`` once per combination of the other axes' values, in grid order."""
    others = [a for a in spec.axes if a != question.axis]
    ordered = sorted(spec.axes[question.axis], key=lambda v: as_number(v) or Decimal(0))
    if question.direction == "maximise":
        ordered.reverse()
    met_by_key: dict[tuple[Any, ...], list[int]] = {}
    for row in rows:
        key = tuple(value_key(row[a]) for a in [*others, question.axis])
        met_by_key.setdefault(key, []).append(1 if all(c.holds(row) for c in question.where) else 0)
    answers = []
    for combo in itertools.product(*(spec.axes[a] for a in others)):
        given = dict(zip(others, combo, strict=True))
        tallies = [met_by_key.get((*map(value_key, combo), value_key(v)), []) for v in ordered]
        meets = [bool(t) and sum(t) >= question.share * len(t) - _SHARE_EPSILON for t in tallies]
        best = max(range(len(ordered)), key=lambda i: (sum(tallies[i]) / max(len(tallies[i]), 1), -i))
        first = next((i for i, ok in enumerate(meets) if ok), None)
        at = best if first is None else first
        met, seeds = sum(tallies[at]), len(tallies[at])
        low = share_lower_bound(met, seeds) if seeds else 0.0
        answers.append(
            Answer(
                given=given,
                value=None if first is None else ordered[first],
                met=0 if first is None else met,
                seeds=seeds,
                holds_beyond=first is not None and all(meets[first:]),
                best_value=ordered[best],
                best_met=sum(tallies[best]),
                share_low=low,
                supported=first is not None and low >= question.share - _SHARE_EPSILON,
                seeds_needed=None if question.share >= 1 else seeds_needed(question.share),
                previous=ordered[first - 1] if first else None,
            )
        )
    return answers


__all__ = ["Answer", "SweepOutcome", "aggregate", "answer"]
