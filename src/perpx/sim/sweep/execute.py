"""Running a sweep's tasks: each one simulation reduced to its table row, on local processes or Ray.

A task is one grid cell with one seed (:meth:`~perpx.sim.sweep.spec.SweepSpec.tasks`). Its row
holds the cell number, the cell's axis values, the seed, one value per metric, and ``error``: empty,
or the text of the exception the run raised (its metrics are then empty; a crashed run is data for
the table, not the end of the sweep). Rows come back in task order whatever order they finish in,
so the table does not depend on the executor or the worker count.

Executors
---------
``local`` runs tasks on ``concurrent.futures.ProcessPoolExecutor`` (spawned processes, so nothing
the parent holds leaks into a run; one worker runs in-process). ``ray`` runs them as Ray tasks:
on a local Ray started for the sweep, or on the cluster named by ``RAY_ADDRESS``, whose nodes need
perpx installed and the scenario file at the same path. Ray is the optional extra
``pip install 'perpx[ray]'``.

A worker imports the task's function by its module path, so the function and the cell runner it is
given must be module-level (picklable), as :func:`run_task` and :func:`run_real_cell` are.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from functools import partial
from pathlib import Path
from typing import Any

from perpx.sim.result import RunResult
from perpx.sim.sweep.metrics import metric_value
from perpx.sim.sweep.spec import Row, SweepError, Task, Value

CellRunner = Callable[[Path, Mapping[str, Value], int], RunResult]
"""Runs one simulation: ``(scenario_path, overrides, seed) -> RunResult``; must be picklable."""

ProgressCallback = Callable[[int, int], None]
"""Called as ``(runs_done, runs_total)`` as runs finish."""

RowCallback = Callable[[Row], None]
"""Called with each run's row as it finishes, in completion order (the resumable results file)."""

EXECUTORS = ("local", "ray")
MAX_DEFAULT_WORKERS = 8


def run_real_cell(scenario_path: Path, overrides: Mapping[str, Value], seed: int) -> RunResult:
    """Run one cell with the real simulator: no output files, no progress bar."""
    from perpx.sim.runner import run_scenario

    return run_scenario(
        scenario_path, seed, None, overrides=dict(overrides), progress=False, write_outputs=False
    )


def default_workers(runs: int) -> int:
    """CPU count capped at :data:`MAX_DEFAULT_WORKERS` and at the number of runs, at least 1."""
    return max(1, min(os.cpu_count() or 1, MAX_DEFAULT_WORKERS, runs))


def execute(
    tasks: list[Task],
    *,
    scenario: Path,
    metrics: Sequence[str],
    run_cell: CellRunner,
    executor: str,
    workers: int,
    on_progress: ProgressCallback | None = None,
    on_row: RowCallback | None = None,
    address: str | None = None,
) -> list[Row]:
    """Run every task on ``executor`` with ``workers`` workers; one row per task, in the order given.

    ``on_row`` sees each row as soon as its run finishes; ``address`` is a Ray cluster's address
    (``ray://host:10001`` or ``auto``), else ``RAY_ADDRESS``, else a local Ray started for the sweep.

    Raises
    ------
    SweepError
        If Ray is asked for and cannot be started or reached.
    """
    job = partial(run_task, run_cell=run_cell, scenario=scenario, metrics=metrics)
    finished = _Finished(len(tasks), on_progress, on_row)
    if executor == "ray":
        return _run_ray(job, tasks, workers, finished, address)
    return _run_local(job, tasks, workers, finished)


class _Finished:
    """Rows by position as runs finish; tells the progress and row callbacks."""

    def __init__(self, total: int, on_progress: ProgressCallback | None, on_row: RowCallback | None) -> None:
        self.rows: list[Row | None] = [None] * total
        self.done = 0
        self.on_progress = on_progress
        self.on_row = on_row

    def add(self, position: int, row: Row) -> None:
        self.rows[position] = row
        self.done += 1
        if self.on_row:
            self.on_row(row)
        if self.on_progress:
            self.on_progress(self.done, len(self.rows))


def run_task(task: Task, *, run_cell: CellRunner, scenario: Path, metrics: Sequence[str]) -> Row:
    """Run one task and reduce it to its table row (runs in a worker process)."""
    row: Row = {"cell": task.cell, **task.overrides, "seed": task.seed}
    try:
        result = run_cell(scenario, task.overrides, task.seed)
        values = {metric: metric_value(result, metric) for metric in metrics}
    except Exception as exc:  # a crashed run is data for the table, not the end of the sweep
        row.update(dict.fromkeys(metrics))
        row["error"] = f"{type(exc).__name__}: {exc}"
        return row
    row.update(values)
    row["error"] = ""
    return row


def _run_local(job: Callable[[Task], Row], tasks: list[Task], workers: int, finished: _Finished) -> list[Row]:
    if workers == 1:
        for position, task in enumerate(tasks):
            finished.add(position, job(task))
        return _complete(finished.rows)
    import multiprocessing

    # spawn, not fork: a forked child would inherit the parent's threads (polars, rich) mid-state
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = {pool.submit(job, task): position for position, task in enumerate(tasks)}
        for future in as_completed(futures):
            finished.add(futures[future], future.result())
    except BaseException:
        # Ctrl-C or a broken pool: drop the queued runs instead of waiting for all of them
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return _complete(finished.rows)


def _complete(rows: list[Row | None]) -> list[Row]:
    missing = [i for i, row in enumerate(rows) if row is None]
    if missing:
        raise RuntimeError(f"runs {missing} returned no row")
    return [row for row in rows if row is not None]


def _run_ray(
    job: partial[Row], tasks: list[Task], workers: int, finished: _Finished, address: str | None
) -> list[Row]:
    ray = import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        try:
            if address or os.environ.get("RAY_ADDRESS"):
                ray.init(address=address, logging_level="ERROR")
            else:
                # a worker imports the task's function by module path, so it needs the driver's
                # sys.path (the entries pytest or a script added), as a spawned process gets it
                ray.init(
                    num_cpus=workers,
                    include_dashboard=False,
                    logging_level="ERROR",
                    runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}},
                )
        except (RuntimeError, ConnectionError, ValueError) as exc:
            raise SweepError(f"cannot start or reach Ray: {exc}") from exc
    try:
        remote = ray.remote(num_cpus=1)(job.func)
        refs = [remote.remote(task, **job.keywords) for task in tasks]
        position = {ref: i for i, ref in enumerate(refs)}
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                finished.add(position[ref], dict(ray.get(ref)))
        return _complete(finished.rows)
    finally:
        if started_here:
            ray.shutdown()


def import_ray() -> Any:
    """Import Ray, or explain how to install it.

    Raises
    ------
    SweepError
        If Ray is not installed.
    """
    try:
        import ray
    except ImportError as exc:
        raise SweepError(
            "the ray executor needs Ray: pip install 'perpx[ray]' (or use --executor local)"
        ) from exc
    return ray


__all__ = [
    "EXECUTORS",
    "MAX_DEFAULT_WORKERS",
    "CellRunner",
    "ProgressCallback",
    "RowCallback",
    "default_workers",
    "execute",
    "import_ray",
    "run_real_cell",
    "run_task",
]
