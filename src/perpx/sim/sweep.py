"""Parameter sweeps: a grid of scenario overrides x seeds, each point one simulation.

A risk owner asks "how much insurance fund do I need so that bad debt stays at zero in 99% of
crashes, for each maintenance margin I might set?". A sweep answers it by running one scenario over
a grid of parameter values, several seeds per grid cell, reducing each run to a row of summary
metrics, and reading the table.

The sweep file (TOML)
---------------------
.. code-block:: toml

    name = "cascade-margin-grid"            # optional, default: the file's stem
    description = "..."                     # optional
    scenario = "../scenarios/cascade.toml"  # relative to this file
    seeds = 4                               # seeds 1..4, or a list: [3, 7, 11]
    metrics = ["bad_debt", "liquidations", "adl_events", "insurance_fund_min", "passed"]

    [grid]                                  # dotted override path -> values, in the scenario's
    "insurance.initial" = ["50000", "200000", "1000000"]          # own TOML types (decimal strings
    "config.markets.BTCUSDT.brackets.0.mmr" = ["0.004", "0.01"]   # for rates and money)

    [[heatmaps]]                            # optional; default: p_bad_debt over the first two axes
    metric = "p_bad_debt"                   # any column of the per-cell aggregate
    x = "insurance.initial"
    y = "config.markets.BTCUSDT.brackets.0.mmr"

    [[questions]]
    name = "smallest fund with no bad debt in 99% of seeds"      # optional
    minimise = "insurance.initial"          # or: maximise = "<axis>"
    where = { metric = "bad_debt", op = "==", value = 0 }        # or a list of such tables (all hold)
    share = 0.99                            # of the cell's seeds; default 1.0

Grid keys may also be written unquoted as nested tables; every leaf list is an axis. Axes expand in
file order with the last axis varying fastest (``itertools.product``), seeds innermost; that order
is the order of every table written, whatever order the runs finish in.

Metrics
-------
A metric is one of the summary fields every run has (:data:`SUMMARY_METRICS`), ``passed`` (every
assertion held, no invariant violated), ``assertions_failed`` (a count), ``assertion:<name>``
(whether that declared assertion held) or ``summary:<field>`` (any other numeric field of
``summary.json``, e.g. ``summary:accounts_below_zero``; a run without it is recorded as an error).
Only the ``summary:`` form is looked up at run time; every other name is checked when the file is
read, so a typo fails before anything runs. Numbers are tabulated as floats (money in settlement
units), booleans as booleans.

Per-cell aggregate: ``seeds``, ``errors`` (runs that raised), and for each metric ``m`` over the
runs that finished: ``p_m`` (share of seeds where ``m`` is non-zero, or true: ``p_bad_debt`` is the
probability of bad debt), and for numbers ``m_mean``, ``m_min``, ``m_max``.

Questions
---------
For every combination of the values of the *other* axes, the answer is the smallest (``minimise``)
or largest (``maximise``) value of the axis, compared as numbers, whose cell meets the share: at
least ``share x seeds`` of its seeds satisfy every ``where`` condition. A run that raised counts as
not satisfying it. No value meeting the share is answered ``none``. ``holds_beyond`` tells whether
every value past the answer meets the share too; when it is false the outcome is not monotone in
the axis over these seeds and the answer deserves more seeds.

Heatmaps
--------
One panel per combination of the axes not on the heatmap (small multiples, one shared colour
scale), each cell labelled with its value; ``heatmap_<metric>.png`` (matplotlib) and all heatmaps
in ``heatmaps.html`` (plotly, self-contained).

Outputs in the sweep's directory
--------------------------------
``results.csv`` / ``results.parquet`` (one row per cell and seed), ``aggregate.csv`` /
``aggregate.parquet`` (one row per cell), ``answers.json``, ``heatmap_<metric>.png``,
``heatmaps.html``, ``sweep.json`` (what ran, where, how long).

Executors
---------
``local`` runs cells on ``concurrent.futures.ProcessPoolExecutor`` (spawned processes, so nothing
the parent holds leaks into a run; one worker runs in-process). ``ray`` runs them as Ray tasks:
on a local Ray started for the sweep, or on the cluster named by ``RAY_ADDRESS``, whose nodes need
perpx installed and the scenario file at the same path. Ray is the optional extra
``pip install 'perpx[ray]'``.
"""

from __future__ import annotations

import itertools
import json
import math
import operator
import os
import sys
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from perpx.sim.result import RunResult

if TYPE_CHECKING:
    import polars as pl

    from perpx.sim.report import HeatmapFigure

Value = str | int | float | bool
"""A grid value, as the scenario TOML would hold it."""

Row = dict[str, Any]
"""One table row: column name -> value."""

CellRunner = Callable[[Path, Mapping[str, Value], int], RunResult]
"""Runs one simulation: ``(scenario_path, overrides, seed) -> RunResult``; must be picklable."""

CellValidator = Callable[[Path, Mapping[str, Value]], None]
"""Raises ``ValueError`` when a scenario cannot take these overrides; runs no simulation."""

ProgressCallback = Callable[[int, int], None]
"""Called as ``(runs_done, runs_total)`` as runs finish."""

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
)
"""Numeric fields of ``summary.json`` a sweep can tabulate (``wall_seconds`` is left out on purpose:
it differs between two runs of the same cell, and the table must not)."""

DERIVED_METRICS = ("passed", "assertions_failed")
DEFAULT_METRICS = (
    "bad_debt",
    "liquidations",
    "adl_events",
    "insurance_fund_min",
    "max_mark_index_gap_bps",
    "passed",
)
EXECUTORS = ("local", "ray")
MAX_DEFAULT_WORKERS = 8
_SHARE_EPSILON = 1e-9
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_TOP_KEYS = {"name", "description", "scenario", "seeds", "metrics", "grid", "heatmaps", "questions"}


class SweepError(ValueError):
    """A sweep file, its grid or an executor is unusable; raised before any run starts."""


@dataclass(frozen=True)
class Condition:
    """``metric op value`` on one run's row, e.g. ``bad_debt == 0``."""

    metric: str
    op: str
    value: float | bool

    def holds(self, row: Row) -> bool:
        """Whether the row satisfies the condition; a missing metric (a failed run) never does."""
        observed = row.get(self.metric)
        if observed is None or (isinstance(observed, float) and math.isnan(observed)):
            return False
        return _OPS[self.op](observed, self.value)

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {_show(self.value)}"


@dataclass(frozen=True)
class Question:
    """The extreme value of one axis whose cells meet ``share`` of seeds, per other-axes combination."""

    name: str
    axis: str
    direction: Literal["minimise", "maximise"]
    where: tuple[Condition, ...]
    share: float


@dataclass(frozen=True)
class Heatmap:
    """An aggregate column drawn over two axes (``y`` is None on a one-axis grid)."""

    metric: str
    x: str
    y: str | None


@dataclass(frozen=True)
class SweepSpec:
    """A parsed, checked sweep file. ``axes`` keeps the file's order, which fixes the cell order."""

    name: str
    path: Path
    scenario: Path
    axes: dict[str, tuple[Value, ...]]
    seeds: tuple[int, ...]
    metrics: tuple[str, ...]
    questions: tuple[Question, ...] = ()
    heatmaps: tuple[Heatmap, ...] = ()
    description: str = ""

    def cells(self) -> list[dict[str, Value]]:
        """Every grid cell, last axis fastest: ``[{axis: value}, ...]`` (one empty cell if no axes)."""
        names = list(self.axes)
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*self.axes.values())]

    def tasks(self) -> list[Task]:
        """Every run of the sweep in table order: cells in :meth:`cells` order, seeds innermost."""
        return [
            Task(index=len(self.seeds) * c + s, cell=c, seed=seed, overrides=cell)
            for c, cell in enumerate(self.cells())
            for s, seed in enumerate(self.seeds)
        ]


@dataclass(frozen=True)
class Task:
    """One run: grid cell ``cell`` (its overrides) with one seed; ``index`` is its table row."""

    index: int
    cell: int
    seed: int
    overrides: dict[str, Value]


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

    @property
    def errors(self) -> int:
        """Runs that raised instead of finishing."""
        return sum(1 for row in self.rows if row["error"])


def load_sweep(path: Path) -> SweepSpec:
    """Parse and check a sweep file; every structural mistake is a :class:`SweepError` naming it.

    Checks the scenario file exists, each axis is a non-empty list of distinct scalars, seeds are
    distinct integers, metrics are known, question axes are grid axes with numeric values, and
    heatmaps name aggregate columns and grid axes. Override paths are checked against the scenario
    by :func:`check_sweep`.
    """
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SweepError(f"cannot read sweep file {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SweepError(f"{path} is not valid TOML: {exc}") from exc
    unknown = sorted(set(doc) - _TOP_KEYS)
    if unknown:
        raise SweepError(f"{path}: unknown keys {unknown}; a sweep file has {sorted(_TOP_KEYS)}")
    if not isinstance(doc.get("scenario"), str):
        raise SweepError(f"{path}: 'scenario' (the scenario TOML, relative to the sweep file) is required")
    scenario = (path.parent / doc["scenario"]).resolve()
    if not scenario.is_file():
        raise SweepError(f"{path}: scenario file {scenario} does not exist")
    axes = _parse_grid(path, doc.get("grid", {}))
    seeds = _parse_seeds(path, doc.get("seeds", 1))
    metrics = _parse_metrics(path, doc.get("metrics", list(DEFAULT_METRICS)))
    clashes = sorted(set(axes) & {"cell", "seed", "seeds", "errors", "error", *metrics})
    if clashes:
        raise SweepError(f"{path}: grid axes {clashes} clash with the table's own column names")
    questions = tuple(
        _parse_question(path, n, q, axes, metrics) for n, q in enumerate(_tables(path, doc, "questions"))
    )
    heatmaps = _parse_heatmaps(path, _tables(path, doc, "heatmaps"), axes, metrics)
    return SweepSpec(
        name=str(doc.get("name", path.stem)),
        path=path,
        scenario=scenario,
        axes=axes,
        seeds=seeds,
        metrics=metrics,
        questions=questions,
        heatmaps=heatmaps,
        description=str(doc.get("description", "")),
    )


def _tables(path: Path, doc: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    tables = doc.get(key, [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise SweepError(f"{path}: '{key}' must be an array of tables ([[{key}]])")
    return tables


def _parse_grid(path: Path, grid: Any) -> dict[str, tuple[Value, ...]]:
    if not isinstance(grid, dict):
        raise SweepError(f"{path}: [grid] must be a table of 'dotted.path' = [values]")
    axes: dict[str, tuple[Value, ...]] = {}
    _flatten_grid(path, grid, "", axes)
    return axes


def _flatten_grid(path: Path, table: dict[str, Any], prefix: str, axes: dict[str, tuple[Value, ...]]) -> None:
    for key, item in table.items():
        name = f"{prefix}{key}"
        if isinstance(item, dict):
            _flatten_grid(path, item, f"{name}.", axes)
            continue
        if not isinstance(item, list) or not item:
            raise SweepError(f"{path}: grid axis '{name}' must be a non-empty list of values, was {item!r}")
        if not all(isinstance(v, str | int | float | bool) for v in item):
            raise SweepError(f"{path}: grid axis '{name}' must hold strings, numbers or booleans")
        if len({(type(v), v) for v in item}) != len(item):
            raise SweepError(f"{path}: grid axis '{name}' repeats a value: {item}")
        axes[name] = tuple(item)


def _parse_seeds(path: Path, seeds: Any) -> tuple[int, ...]:
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise SweepError(f"{path}: 'seeds' must be at least 1, was {seeds}")
        return tuple(range(1, seeds + 1))
    if (
        isinstance(seeds, list)
        and seeds
        and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
    ):
        if len(set(seeds)) != len(seeds):
            raise SweepError(f"{path}: 'seeds' repeats a seed: {seeds}")
        return tuple(seeds)
    raise SweepError(f"{path}: 'seeds' must be a count (seeds 1..N) or a list of non-negative integers")


def _parse_metrics(path: Path, metrics: Any) -> tuple[str, ...]:
    if not isinstance(metrics, list) or not metrics or not all(isinstance(m, str) for m in metrics):
        raise SweepError(f"{path}: 'metrics' must be a non-empty list of metric names")
    for metric in metrics:
        if not is_known_metric(metric):
            raise SweepError(
                f"{path}: unknown metric '{metric}'; use one of {[*SUMMARY_METRICS, *DERIVED_METRICS]},"
                " 'assertion:<name>' or 'summary:<field>'"
            )
    if len(set(metrics)) != len(metrics):
        raise SweepError(f"{path}: 'metrics' repeats a name")
    return tuple(metrics)


def is_known_metric(metric: str) -> bool:
    """Whether a sweep can tabulate ``metric`` (see the module docstring)."""
    if metric.startswith(("assertion:", "summary:")):
        return bool(metric.partition(":")[2])
    return metric in SUMMARY_METRICS or metric in DERIVED_METRICS


def _is_boolean_metric(metric: str) -> bool:
    return metric == "passed" or metric.startswith("assertion:")


def aggregate_columns(metrics: Sequence[str]) -> list[str]:
    """The per-cell aggregate columns derived from ``metrics`` (besides cell, axes, seeds, errors)."""
    columns: list[str] = []
    for metric in metrics:
        columns.append(f"p_{metric}")
        if not _is_boolean_metric(metric):
            columns += [f"{metric}_mean", f"{metric}_min", f"{metric}_max"]
    return columns


def _parse_question(
    path: Path, number: int, q: dict[str, Any], axes: Mapping[str, tuple[Value, ...]], metrics: Sequence[str]
) -> Question:
    where_label = f"{path}: question {number + 1}"
    unknown = sorted(set(q) - {"name", "minimise", "maximise", "where", "share"})
    if unknown:
        raise SweepError(f"{where_label}: unknown keys {unknown}")
    directions = [d for d in ("minimise", "maximise") if d in q]
    if len(directions) != 1:
        raise SweepError(f"{where_label}: give exactly one of 'minimise' or 'maximise' (an axis of the grid)")
    direction: Literal["minimise", "maximise"] = "minimise" if directions[0] == "minimise" else "maximise"
    axis = q[direction]
    if axis not in axes:
        raise SweepError(f"{where_label}: '{axis}' is not a grid axis; the axes are {list(axes)}")
    for value in axes[axis]:
        if _numeric(value) is None:
            raise SweepError(f"{where_label}: axis '{axis}' has a non-numeric value {value!r}")
    raw_where = q.get("where")
    conditions: list[Any] = raw_where if isinstance(raw_where, list) else [raw_where]
    tables = [c for c in conditions if isinstance(c, dict)]
    if not conditions or len(tables) != len(conditions):
        raise SweepError(f"{where_label}: 'where' must be {{ metric, op, value }} or a list of them")
    parsed = tuple(_parse_condition(where_label, c, metrics) for c in tables)
    share = q.get("share", 1.0)
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 1:
        raise SweepError(f"{where_label}: 'share' must be a number in (0, 1], was {share!r}")
    extreme = "smallest" if direction == "minimise" else "largest"
    default_name = f"{extreme} {axis} with {' and '.join(map(str, parsed))} in >= {share:.0%} of seeds"
    return Question(str(q.get("name", default_name)), axis, direction, parsed, float(share))


def _parse_condition(label: str, c: dict[str, Any], metrics: Sequence[str]) -> Condition:
    if set(c) != {"metric", "op", "value"}:
        raise SweepError(f"{label}: a condition is {{ metric = ..., op = ..., value = ... }}, was {c}")
    if c["metric"] not in metrics:
        raise SweepError(
            f"{label}: condition metric '{c['metric']}' is not in the sweep's metrics {list(metrics)}"
        )
    if c["op"] not in _OPS:
        raise SweepError(f"{label}: op must be one of {list(_OPS)}, was {c['op']!r}")
    value = c["value"]
    if isinstance(value, str):
        number = _numeric(value)
        if number is None:
            raise SweepError(f"{label}: condition value {value!r} is not a number or a boolean")
        value = float(number)
    if not isinstance(value, int | float | bool):
        raise SweepError(f"{label}: condition value must be a number or a boolean, was {value!r}")
    return Condition(str(c["metric"]), str(c["op"]), value if isinstance(value, bool) else float(value))


def _parse_heatmaps(
    path: Path, tables: list[dict[str, Any]], axes: Mapping[str, tuple[Value, ...]], metrics: Sequence[str]
) -> tuple[Heatmap, ...]:
    names = list(axes)
    columns = aggregate_columns(metrics)
    default_metric = "p_bad_debt" if "bad_debt" in metrics else columns[0]
    if not tables:
        if not names:
            return ()
        return (Heatmap(default_metric, names[-1], names[0] if len(names) > 1 else None),)
    heatmaps = []
    for number, table in enumerate(tables):
        label = f"{path}: heatmap {number + 1}"
        unknown = sorted(set(table) - {"metric", "x", "y"})
        if unknown:
            raise SweepError(f"{label}: unknown keys {unknown}")
        metric = str(table.get("metric", default_metric))
        if metric not in columns:
            raise SweepError(f"{label}: metric '{metric}' is not an aggregate column; use one of {columns}")
        x = table.get("x", names[-1] if names else None)
        y = table.get("y", names[0] if len(names) > 1 else None)
        for axis in (x, y):
            if axis is not None and axis not in axes:
                raise SweepError(f"{label}: '{axis}' is not a grid axis; the axes are {names}")
        if x is None or x == y:
            raise SweepError(f"{label}: 'x' and 'y' must be two different grid axes")
        heatmaps.append(Heatmap(metric, str(x), None if y is None else str(y)))
    return tuple(heatmaps)


def _numeric(value: Value) -> Decimal | None:
    """A grid value as a number for ordering: ints, floats and decimal strings; None otherwise."""
    if isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def check_sweep(spec: SweepSpec, validate_cell: CellValidator | None = None) -> None:
    """Check every cell's overrides against the scenario, without running a simulation.

    Raises
    ------
    SweepError
        Naming the first cell the scenario refuses (an unknown override path, a value of the
        wrong type, a config the venue would reject).
    """
    validate = validate_cell or validate_real_cell
    for number, cell in enumerate(spec.cells()):
        try:
            validate(spec.scenario, cell)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            shown = ", ".join(f"{k} = {_show(v)}" for k, v in cell.items())
            raise SweepError(f"cell {number} ({shown}) is not a valid scenario: {exc}") from exc


def validate_real_cell(scenario_path: Path, overrides: Mapping[str, Value]) -> None:
    """Apply ``overrides`` to the scenario and build it, as :func:`run_real_cell` would, then stop."""
    from perpx.sim.scenario import load_scenario

    load_scenario(scenario_path, overrides=dict(overrides))


def run_real_cell(scenario_path: Path, overrides: Mapping[str, Value], seed: int) -> RunResult:
    """Run one cell with the real simulator: no output files, no progress bar."""
    from perpx.sim.runner import run_scenario

    return run_scenario(
        scenario_path, seed, None, overrides=dict(overrides), progress=False, write_outputs=False
    )


def default_workers(runs: int) -> int:
    """CPU count capped at :data:`MAX_DEFAULT_WORKERS` and at the number of runs, at least 1."""
    return max(1, min(os.cpu_count() or 1, MAX_DEFAULT_WORKERS, runs))


def run_sweep(
    spec: SweepSpec,
    out_dir: Path | None,
    *,
    executor: str = "local",
    workers: int | None = None,
    run_cell: CellRunner = run_real_cell,
    validate_cell: CellValidator | None = None,
    on_progress: ProgressCallback | None = None,
) -> SweepOutcome:
    """Check the sweep, run every cell x seed, reduce, answer, and write the outputs into ``out_dir``.

    The tables do not depend on the executor, the worker count or the completion order: rows are
    placed by task index. A run that raises is recorded with its error text and empty metrics, and
    the sweep goes on (:attr:`SweepOutcome.errors` counts them). ``out_dir`` None writes nothing.

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
    started = time.perf_counter()
    job = partial(run_task, run_cell=run_cell, scenario=spec.scenario, metrics=spec.metrics)
    if executor == "ray":
        rows = _run_ray(job, tasks, count, on_progress)
    else:
        rows = _run_local(job, tasks, count, on_progress)
    wall = time.perf_counter() - started
    outcome = SweepOutcome(
        spec=spec,
        rows=rows,
        cells=aggregate(spec, rows),
        answers=[(q, answer(spec, q, rows)) for q in spec.questions],
        executor=executor,
        workers=count,
        wall_seconds=wall,
    )
    if out_dir is not None:
        outcome.files = write_outputs(outcome, out_dir)
    return outcome


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


def _run_local(
    job: Callable[[Task], Row], tasks: list[Task], workers: int, on_progress: ProgressCallback | None
) -> list[Row]:
    rows: list[Row | None] = [None] * len(tasks)
    if workers == 1:
        for done, task in enumerate(tasks, start=1):
            rows[task.index] = job(task)
            if on_progress:
                on_progress(done, len(tasks))
        return _complete(rows)
    import multiprocessing

    # spawn, not fork: a forked child would inherit the parent's threads (polars, rich) mid-state
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = {pool.submit(job, task): task.index for task in tasks}
        for done, future in enumerate(as_completed(futures), start=1):
            rows[futures[future]] = future.result()
            if on_progress:
                on_progress(done, len(tasks))
    except BaseException:
        # Ctrl-C or a broken pool: drop the queued runs instead of waiting for all of them
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return _complete(rows)


def _complete(rows: list[Row | None]) -> list[Row]:
    missing = [i for i, row in enumerate(rows) if row is None]
    if missing:
        raise RuntimeError(f"runs {missing} returned no row")
    return [row for row in rows if row is not None]


def _run_ray(
    job: partial[Row], tasks: list[Task], workers: int, on_progress: ProgressCallback | None
) -> list[Row]:
    ray = import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        try:
            if os.environ.get("RAY_ADDRESS"):
                ray.init(logging_level="ERROR")
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
        pending = list(refs)
        done = 0
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            done += len(ready)
            if on_progress:
                on_progress(done, len(tasks))
        return [dict(row) for row in ray.get(refs)]
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
            if not _is_boolean_metric(metric):
                agg[f"{metric}_mean"] = sum(values) / len(values) if values else None
                agg[f"{metric}_min"] = min(values) if values else None
                agg[f"{metric}_max"] = max(values) if values else None
        out.append(agg)
    return out


def answer(spec: SweepSpec, question: Question, rows: Sequence[Row]) -> list[Answer]:
    """Answer ``question`` once per combination of the other axes' values, in grid order."""
    others = [a for a in spec.axes if a != question.axis]
    ordered = sorted(spec.axes[question.axis], key=lambda v: _numeric(v) or Decimal(0))
    if question.direction == "maximise":
        ordered.reverse()
    met_by_key: dict[tuple[Any, ...], list[int]] = {}
    for row in rows:
        key = tuple(_key(row[a]) for a in [*others, question.axis])
        met_by_key.setdefault(key, []).append(1 if all(c.holds(row) for c in question.where) else 0)
    answers = []
    for combo in itertools.product(*(spec.axes[a] for a in others)):
        given = dict(zip(others, combo, strict=True))
        tallies = [met_by_key.get((*map(_key, combo), _key(v)), []) for v in ordered]
        meets = [bool(t) and sum(t) >= question.share * len(t) - _SHARE_EPSILON for t in tallies]
        best = max(range(len(ordered)), key=lambda i: (sum(tallies[i]) / max(len(tallies[i]), 1), -i))
        first = next((i for i, ok in enumerate(meets) if ok), None)
        answers.append(
            Answer(
                given=given,
                value=None if first is None else ordered[first],
                met=0 if first is None else sum(tallies[first]),
                seeds=len(tallies[best]) if first is None else len(tallies[first]),
                holds_beyond=first is not None and all(meets[first:]),
                best_value=ordered[best],
                best_met=sum(tallies[best]),
            )
        )
    return answers


def _key(value: Any) -> tuple[str, Any]:
    """A hashable key that keeps 1, 1.0, True and "1" apart, as the grid does."""
    return (type(value).__name__, value)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def format_answers(answers: Sequence[tuple[Question, Sequence[Answer]]]) -> list[str]:
    """The answers as lines of text, one block per question, ``none`` where no value qualifies."""
    lines: list[str] = []
    for question, items in answers:
        lines.append(question.name)
        short = short_names([question.axis, *(items[0].given if items else {})])
        for item in items:
            given = ", ".join(f"{short[k]} = {_show(v)}" for k, v in item.given.items()) or "(every cell)"
            if item.value is None:
                best = f"best {item.best_met}/{item.seeds} seeds at {_show(item.best_value)}"
                lines.append(f"  {given}: none ({best})")
            else:
                caveat = "" if item.holds_beyond else "; not every value beyond it qualifies"
                lines.append(f"  {given}: {_show(item.value)} ({item.met}/{item.seeds} seeds{caveat})")
    return lines


def table_columns(spec: SweepSpec) -> dict[str, str]:
    """The aggregate columns worth printing, column -> header: axes, then one or two per metric.

    A pass/fail metric shows its share; ``bad_debt`` its probability and worst case; another number
    its mean over seeds.
    """
    columns = short_names(list(spec.axes))
    for metric in spec.metrics:
        if _is_boolean_metric(metric):
            columns[f"p_{metric}"] = f"{metric} share"
        elif metric == "bad_debt":
            columns["p_bad_debt"] = "P(bad debt)"
            columns["bad_debt_max"] = "bad debt max"
        else:
            columns[f"{metric}_mean"] = f"{metric} mean"
    columns["errors"] = "errors"
    return columns


def format_cell(column: str, value: Any) -> str:
    """A table value for people: shares as percentages, whole numbers from 100 up, else 3 digits."""
    if value is None:
        return "-"
    if column.startswith("p_") and isinstance(value, float):
        return f"{value:.0%}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return _show(value)


def answers_document(outcome: SweepOutcome) -> list[dict[str, Any]]:
    """The answers as JSON-ready data (``answers.json``)."""
    return [
        {
            "question": q.name,
            "axis": q.axis,
            "direction": q.direction,
            "where": [asdict(c) for c in q.where],
            "share": q.share,
            "answers": [asdict(a) for a in items],
        }
        for q, items in outcome.answers
    ]


def write_outputs(outcome: SweepOutcome, out_dir: Path) -> list[Path]:
    """Write the tables, answers, heatmaps and ``sweep.json`` into ``out_dir``; return the paths."""
    from perpx.sim.report import write_heatmaps

    out_dir.mkdir(parents=True, exist_ok=True)
    spec = outcome.spec
    keys = ["cell", *spec.axes]
    results = _frame(spec, outcome.rows, [*keys, "seed", *spec.metrics, "error"])
    cells = _frame(spec, outcome.cells, [*keys, "seeds", "errors", *aggregate_columns(spec.metrics)])
    paths = []
    for name, frame in (("results", results), ("aggregate", cells)):
        frame.write_csv(out_dir / f"{name}.csv")
        frame.write_parquet(out_dir / f"{name}.parquet")
        paths += [out_dir / f"{name}.csv", out_dir / f"{name}.parquet"]
    answers_path = out_dir / "answers.json"
    answers_path.write_text(json.dumps(answers_document(outcome), indent=2) + "\n", encoding="utf-8")
    paths.append(answers_path)
    paths += write_heatmaps(heatmap_figures(spec, outcome.cells), out_dir, f"{spec.name}: heatmaps")
    manifest = out_dir / "sweep.json"
    manifest.write_text(
        json.dumps(
            {
                "name": spec.name,
                "sweep_file": str(spec.path),
                "scenario": str(spec.scenario),
                "axes": spec.axes,
                "seeds": spec.seeds,
                "metrics": spec.metrics,
                "runs": len(outcome.rows),
                "errors": outcome.errors,
                "executor": outcome.executor,
                "workers": outcome.workers,
                "wall_seconds": round(outcome.wall_seconds, 3),
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    paths.append(manifest)
    return paths


def heatmap_figures(spec: SweepSpec, cells: Sequence[Row]) -> list[HeatmapFigure]:
    """The sweep's heatmaps as data: one panel per combination of the axes off the heatmap."""
    from perpx.sim.report import HeatmapFigure, HeatmapPanel

    lookup = {tuple(_key(row[a]) for a in spec.axes): row for row in cells}
    short = short_names(list(spec.axes))
    figures = []
    for heatmap in spec.heatmaps:
        on_map = [heatmap.x] if heatmap.y is None else [heatmap.x, heatmap.y]
        off_map = [a for a in spec.axes if a not in on_map]
        y_values = spec.axes[heatmap.y] if heatmap.y is not None else ("",)
        panels = []
        for combo in itertools.product(*(spec.axes[a] for a in off_map)):
            fixed = dict(zip(off_map, combo, strict=True))
            z: list[list[float | None]] = []
            for y in y_values:
                line: list[float | None] = []
                for x in spec.axes[heatmap.x]:
                    point = (
                        {**fixed, heatmap.x: x}
                        if heatmap.y is None
                        else {**fixed, heatmap.x: x, heatmap.y: y}
                    )
                    value = lookup[tuple(_key(point[a]) for a in spec.axes)].get(heatmap.metric)
                    line.append(None if value is None else float(value))
                z.append(line)
            title = ", ".join(f"{short[k]} = {_show(v)}" for k, v in fixed.items())
            panels.append(HeatmapPanel(title=title, z=z))
        is_share = heatmap.metric.startswith("p_")
        figures.append(
            HeatmapFigure(
                key=f"heatmap_{heatmap.metric}",
                title=f"{spec.name}: {_describe(heatmap.metric)} ({len(spec.seeds)} seeds per cell)",
                x_label=heatmap.x,
                y_label=heatmap.y or "",
                x_values=[_label(v) for v in spec.axes[heatmap.x]],
                y_values=[_label(v) for v in y_values],
                panels=panels,
                colour_label=_describe(heatmap.metric),
                z_range=(0.0, 1.0) if is_share else None,
                higher_is_worse=_higher_is_worse(heatmap.metric),
                as_percent=is_share,
            )
        )
    return figures


def short_names(axes: Sequence[str]) -> dict[str, str]:
    """Axis names for headers: the shortest dotted suffix that tells the axes apart.

    A suffix starts at a key, never at a list index (``brackets.0.mmr``, not ``0.mmr``).
    """
    names = {}
    for axis in axes:
        parts = axis.split(".")
        for take in range(1, len(parts) + 1):
            if parts[-take].isdigit() and take < len(parts):
                continue
            suffix = ".".join(parts[-take:])
            if not any(other != axis and ("." + other).endswith("." + suffix) for other in axes):
                break
        names[axis] = suffix
    return names


def _label(value: Value) -> str:
    """A grid value for a tick label: thousands separated for integers."""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return _show(value)


def _describe(column: str) -> str:
    """A reader's label for an aggregate column: p_bad_debt -> share of seeds with bad_debt != 0."""
    if column.startswith("p_"):
        metric = column.removeprefix("p_")
        if _is_boolean_metric(metric):
            return f"share of seeds where {metric}"
        return f"share of seeds with {metric} != 0"
    for suffix, word in (("_mean", "mean"), ("_min", "min"), ("_max", "max")):
        if column.endswith(suffix):
            return f"{word} {column.removesuffix(suffix)} over seeds"
    return column


def _higher_is_worse(column: str) -> bool:
    good = ("passed", "insurance_fund_min", "insurance_fund_end", "assertion:")
    return not any(g in column for g in good)


def _frame(spec: SweepSpec, rows: Sequence[Row], columns: Sequence[str]) -> pl.DataFrame:
    """A polars frame with declared column types, so an empty or all-null column keeps its type.

    Axes keep their TOML type (integers, floats, or text when mixed); counts are integers; ``error``
    is text; pass/fail metrics are booleans; every other metric and aggregate is a float.
    """
    import polars as pl

    schema: dict[str, pl.DataType] = {}
    for column in columns:
        if column in spec.axes:
            schema[column] = _axis_dtype(spec.axes[column])
        elif column in {"cell", "seed", "seeds", "errors"}:
            schema[column] = pl.Int64()
        elif column == "error":
            schema[column] = pl.String()
        elif _is_boolean_metric(column):
            schema[column] = pl.Boolean()
        else:
            schema[column] = pl.Float64()
    data = {column: [_coerce(row.get(column), dtype) for row in rows] for column, dtype in schema.items()}
    return pl.DataFrame(data, schema=schema)


def _axis_dtype(values: Sequence[Value]) -> pl.DataType:
    import polars as pl

    if all(isinstance(v, bool) for v in values):
        return pl.Boolean()
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return pl.Int64()
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return pl.Float64()
    return pl.String()


def _coerce(value: Any, dtype: pl.DataType) -> Any:
    import polars as pl

    if value is None:
        return None
    if isinstance(dtype, pl.String):
        return value if isinstance(value, str) else _show(value)
    if isinstance(dtype, pl.Float64):
        return float(value)
    return value
