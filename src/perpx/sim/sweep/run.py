"""``run_sweep``: a sweep from its checked spec to its outputs, the stages in one visible function.

1. check: the executor and worker count, then every cell's overrides against the scenario
   (:func:`~perpx.sim.sweep.spec.check_sweep`), so nothing runs when any cell would fail to build;
2. execute: every cell x seed, reduced to a row (:mod:`.execute`);
3. analyse: one aggregate row per cell, the answers to the questions (:mod:`.analyse`);
4. write: tables, answers, heatmaps and ``sweep.json`` (:mod:`.outputs`), when given a directory.
"""

from __future__ import annotations

import time
from pathlib import Path

from perpx.sim.sweep.analyse import SweepOutcome, aggregate, answer
from perpx.sim.sweep.bisect import refine
from perpx.sim.sweep.execute import (
    EXECUTORS,
    CellRunner,
    ProgressCallback,
    default_workers,
    execute,
    import_ray,
    run_real_cell,
)
from perpx.sim.sweep.outputs import write_outputs
from perpx.sim.sweep.resume import ResultsFile
from perpx.sim.sweep.spec import CellValidator, SweepError, SweepSpec, check_sweep


def run_sweep(
    spec: SweepSpec,
    out_dir: Path | None,
    *,
    executor: str = "local",
    workers: int | None = None,
    run_cell: CellRunner = run_real_cell,
    validate_cell: CellValidator | None = None,
    on_progress: ProgressCallback | None = None,
    resume: bool = False,
    address: str | None = None,
    bisect_steps: int = 0,
) -> SweepOutcome:
    """Check the sweep, run every cell x seed, reduce, answer, and write the outputs into ``out_dir``.

    The tables do not depend on the executor, the worker count or the completion order: rows are
    placed by task index. A run that raises is recorded with its error text and empty metrics, and
    the sweep goes on (:attr:`SweepOutcome.errors` counts them). ``out_dir`` None writes nothing.

    With ``out_dir``, every finished run is appended to ``results.jsonl`` as it finishes
    (:mod:`.resume`); ``resume`` keeps the rows already there and runs only the missing
    ``(cell, seed)`` pairs. ``address`` names a Ray cluster (executor ``ray``). ``bisect_steps``
    refines every answer's threshold between its grid values that many times (:mod:`.bisect`).

    Raises
    ------
    SweepError
        Before any run, if a cell's overrides are invalid, the executor is unknown, ``workers`` is
        below 1, or Ray is asked for but not installed.
    """
    if executor not in EXECUTORS:
        raise SweepError(f"unknown executor '{executor}'; use one of {list(EXECUTORS)}")
    if workers is not None and workers < 1:
        raise SweepError(f"workers must be at least 1, was {workers}")
    if executor == "ray":
        import_ray()
    tasks = spec.tasks()
    count = workers or default_workers(len(tasks))
    check_sweep(spec, validate_cell)
    results = ResultsFile(out_dir, spec) if out_dir is not None else None
    done = results.load() if results is not None and resume else {}
    todo = [task for task in tasks if (task.cell, task.seed) not in done]
    kept = len(tasks) - len(todo)
    started = time.perf_counter()
    if results is not None:
        results.open(keep=resume)
    try:
        ran = execute(
            todo,
            scenario=spec.scenario,
            metrics=spec.metrics,
            run_cell=run_cell,
            executor=executor,
            workers=count,
            on_progress=(lambda n, total: on_progress(kept + n, kept + total)) if on_progress else None,
            on_row=results.append if results is not None else None,
            address=address,
        )
    finally:
        if results is not None:
            results.close()
    wall = time.perf_counter() - started
    by_key = {**done, **{(int(row["cell"]), int(row["seed"])): row for row in ran}}
    rows = [by_key[task.cell, task.seed] for task in tasks]
    outcome = SweepOutcome(
        spec=spec,
        rows=rows,
        cells=aggregate(spec, rows),
        answers=[(q, answer(spec, q, rows)) for q in spec.questions],
        executor=executor,
        workers=count,
        wall_seconds=wall,
    )
    for question, items in outcome.answers if bisect_steps else []:
        outcome.refined[question.name] = refine(
            spec, question, items, bisect_steps, run_cell=run_cell, executor=executor, workers=count
        )
    if out_dir is not None:
        outcome.files = write_outputs(outcome, out_dir)
    return outcome


__all__ = ["run_sweep"]
