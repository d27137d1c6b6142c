"""Refining a threshold between two grid points by bisection, with the same seeds.

A grid answer says the threshold lies between ``previous`` (did not meet the share) and ``value``
(did). :func:`refine` runs the midpoint cell with the sweep's seeds, keeps the half whose ends still
disagree, and repeats ``steps`` times or until the two ends are adjacent (integers) or equal. The
answer it gives is the narrowed pair and every point it evaluated, each with its seeds met and its
Clopper-Pearson lower bound, so a refined threshold carries the same honesty as a grid one. The axis
must be numeric; the other axes keep the answer's values.

Invariant: a refined interval is inside the grid interval, its ``low`` end never met the share on
the seeds run and its ``high`` end did (for ``minimise``; mirrored for ``maximise``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from perpx.sim.sweep.analyse import Answer
from perpx.sim.sweep.bounds import share_lower_bound
from perpx.sim.sweep.execute import CellRunner, execute
from perpx.sim.sweep.spec import Question, SweepSpec, Task, Value

_SHARE_EPSILON = 1e-9


@dataclass(frozen=True)
class Probe:
    """One evaluated point: the axis value, seeds meeting the conditions, seeds run, the bound."""

    value: Value
    met: int
    seeds: int
    share_low: float


@dataclass
class Refined:
    """A threshold narrowed between ``failing`` (does not meet the share) and ``meeting`` (does)."""

    given: dict[str, Value]
    failing: Value
    meeting: Value
    probes: list[Probe] = field(default_factory=list)


def midpoint(low: Value, high: Value) -> Value | None:
    """The value halfway between two numeric grid values; None when nothing lies between them."""
    if isinstance(low, bool) or isinstance(high, bool):
        return None
    if isinstance(low, int) and isinstance(high, int):
        middle = (low + high) // 2
        return middle if middle not in (low, high) else None
    if isinstance(low, int | float) and isinstance(high, int | float):
        middle_float = (float(low) + float(high)) / 2
        return middle_float if middle_float not in (float(low), float(high)) else None
    if isinstance(low, str) and isinstance(high, str):  # decimal text, as a config value
        try:
            middle_text = (Decimal(low) + Decimal(high)) / 2
        except ArithmeticError:
            return None
        text = format(middle_text.normalize(), "f")
        return text if text not in (low, high) else None
    return None


def refine(
    spec: SweepSpec,
    question: Question,
    answers: Sequence[Answer],
    steps: int,
    *,
    run_cell: CellRunner,
    executor: str = "local",
    workers: int = 1,
) -> list[Refined]:
    """Bisect each answer that has a grid interval (``previous`` and ``value``) ``steps`` times."""
    out: list[Refined] = []
    for item in answers:
        if item.value is None or item.previous is None:
            continue
        refined = Refined(dict(item.given), item.previous, item.value)
        for _ in range(steps):
            middle = midpoint(refined.failing, refined.meeting)
            if middle is None:
                break
            cell = {**item.given, question.axis: middle}
            tasks = [Task(index=i, cell=-1, seed=seed, overrides=cell) for i, seed in enumerate(spec.seeds)]
            metrics = sorted({c.metric for c in question.where})
            rows = execute(
                tasks,
                scenario=spec.scenario,
                metrics=metrics,
                run_cell=run_cell,
                executor=executor,
                workers=workers,
            )
            met = sum(1 for row in rows if all(c.holds(row) for c in question.where))
            refined.probes.append(Probe(middle, met, len(rows), share_lower_bound(met, len(rows))))
            if met >= question.share * len(rows) - _SHARE_EPSILON:
                refined.meeting = middle
            else:
                refined.failing = middle
        out.append(refined)
    return out


__all__ = ["Probe", "Refined", "midpoint", "refine"]
