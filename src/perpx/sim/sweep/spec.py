"""What a sweep runs: the sweep file, parsed and checked before anything runs.

A risk owner asks "how much insurance fund do I need so that bad debt stays at zero in 99% of
crashes, for each maintenance margin I might set?". A sweep answers it by running one scenario over
a grid of parameter values, several seeds per grid cell (:mod:`.execute`), reducing each run to a
row of metrics (:mod:`.metrics`), and reading the table (:mod:`.analyse`, :mod:`.outputs`).

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

Every structural mistake is a :class:`SweepError` raised by :func:`load_sweep`, naming the key;
:func:`check_sweep` then builds every cell's scenario, so an override the scenario refuses fails
before any run starts.
"""

from __future__ import annotations

import itertools
import math
import operator
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

from perpx.sim.sweep.metrics import (
    DEFAULT_METRICS,
    DERIVED_METRICS,
    SUMMARY_METRICS,
    aggregate_columns,
    is_known_metric,
)

Value = str | int | float | bool
"""A grid value, as the scenario TOML would hold it."""

Row = dict[str, Any]
"""One table row: column name -> value."""

CellValidator = Callable[[Path, Mapping[str, Value]], None]
"""Raises ``ValueError`` when a scenario cannot take these overrides; runs no simulation."""

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
        return f"{self.metric} {self.op} {format_value(self.value)}"


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
        if as_number(value) is None:
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
        number = as_number(value)
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
            shown = ", ".join(f"{k} = {format_value(v)}" for k, v in cell.items())
            raise SweepError(f"cell {number} ({shown}) is not a valid scenario: {exc}") from exc


def validate_real_cell(scenario_path: Path, overrides: Mapping[str, Value]) -> None:
    """Apply ``overrides`` to the scenario and build it, as :func:`~perpx.sim.sweep.execute.run_real_cell` would, then stop."""
    from perpx.sim.scenario import load_scenario

    load_scenario(scenario_path, overrides=dict(overrides))


def as_number(value: Value) -> Decimal | None:
    """A grid value as a number for ordering: ints, floats and decimal strings; None otherwise."""
    if isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def value_key(value: Any) -> tuple[str, Any]:
    """A hashable key that keeps 1, 1.0, True and "1" apart, as the grid does."""
    return (type(value).__name__, value)


def format_value(value: Any) -> str:
    """A value as a person writes it: ``true``/``false``, whole floats without ``.0``."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


__all__ = [
    "CellValidator",
    "Condition",
    "Heatmap",
    "Question",
    "Row",
    "SweepError",
    "SweepSpec",
    "Task",
    "Value",
    "as_number",
    "check_sweep",
    "format_value",
    "load_sweep",
    "validate_real_cell",
    "value_key",
]
