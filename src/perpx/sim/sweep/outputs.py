"""What a sweep shows: the tables, answers and heatmaps, as text, files and figures.

Outputs in the sweep's directory (:func:`write_outputs`)
--------------------------------------------------------
``results.csv`` / ``results.parquet`` (one row per cell and seed), ``aggregate.csv`` /
``aggregate.parquet`` (one row per cell), ``answers.json``, ``heatmap_<metric>.png``,
``heatmaps.html``, ``sweep.json`` (what ran, where, how long). Table columns keep declared types
(axes their TOML type, counts integers, pass/fail booleans, other metrics floats), so an empty or
all-null column keeps its type.

Heatmaps
--------
One panel per combination of the axes not on the heatmap (small multiples, one shared colour
scale), each cell labelled with its value; ``heatmap_<metric>.png`` (matplotlib) and all heatmaps
in ``heatmaps.html`` (plotly, self-contained), drawn by :mod:`perpx.sim.report`.

For the terminal, :func:`table_columns` and :func:`format_cell` choose and format the aggregate
columns worth printing, and :func:`format_answers` writes the answers as lines.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perpx.sim.sweep.analyse import Answer, SweepOutcome
from perpx.sim.sweep.metrics import aggregate_columns, is_boolean_metric
from perpx.sim.sweep.spec import Question, Row, SweepSpec, Value, format_value, value_key

if TYPE_CHECKING:
    import polars as pl

    from perpx.sim.report import HeatmapFigure


def format_refined(refined: Mapping[str, Sequence[Any]]) -> list[str]:
    """Each bisected threshold as a line: the narrowed pair and the points evaluated."""
    lines: list[str] = []
    for name, items in refined.items():
        for item in items:
            given = ", ".join(f"{k} = {format_value(v)}" for k, v in item.given.items()) or "(every cell)"
            probes = "; ".join(
                f"{format_value(p.value)}: {p.met}/{p.seeds} (bound {p.share_low:.1%})" for p in item.probes
            )
            lines.append(
                f"  refined, {name} [{given}]: between {format_value(item.failing)} (not met) and"
                f" {format_value(item.meeting)} (met) after {len(item.probes)} step(s){': ' + probes if probes else ''}"
            )
    return lines


def format_answers(answers: Sequence[tuple[Question, Sequence[Answer]]]) -> list[str]:
    """The answers as lines of text, one block per question, ``none`` where no value qualifies.

    Each line says the seeds behind it and their Clopper-Pearson bound, whether they support the
    asked share, and between which grid values the threshold lies.
    """
    lines: list[str] = []
    for question, items in answers:
        lines.append(question.name)
        short = short_names([question.axis, *(items[0].given if items else {})])
        for item in items:
            given = (
                ", ".join(f"{short[k]} = {format_value(v)}" for k, v in item.given.items()) or "(every cell)"
            )
            bound = f"{item.confidence:.0%} lower bound on the share {item.share_low:.1%}"
            if item.value is None:
                best = f"best {item.best_met}/{item.seeds} seeds at {format_value(item.best_value)}; {bound}"
                lines.append(f"  {given}: none ({best})")
                continue
            caveat = "" if item.holds_beyond else "; not every value beyond it qualifies"
            grid = (
                f"between {format_value(item.previous)} (did not qualify) and {format_value(item.value)}"
                if item.previous is not None
                else f"at or before {format_value(item.value)}, the first grid value tested"
            )
            observed = f"{format_value(item.value)} ({item.met}/{item.seeds} seeds{caveat}; {bound})"
            if item.supported:
                lines.append(f"  {given}: {observed}; threshold {grid}")
            else:
                need = (
                    f"{item.seeds_needed} seeds, all meeting it, would"
                    if item.seeds_needed is not None
                    else "no number of seeds can"
                )
                lines.append(
                    f"  {given}: NOT SUPPORTED at {question.share:.0%}: observed {observed}; {need} support"
                    f" {question.share:.0%}; threshold {grid}"
                )
    return lines


_SHARE_HEADERS = {
    "passed": "scenario claims held",
    "mechanism_held": "mechanism rules held",
}
"""Headers of the pass/fail shares that say which way they read: ``passed`` is whether the scenario
showed its story (a bigger fund that is not drained fails "the fund is drained"), ``mechanism_held``
whether the venue kept its rules."""


def table_columns(spec: SweepSpec) -> dict[str, str]:
    """The aggregate columns worth printing, column -> header: axes, then one or two per metric.

    A pass/fail metric shows its share; ``bad_debt`` its probability and worst case; another number
    its mean over seeds.
    """
    columns = short_names(list(spec.axes))
    for metric in spec.metrics:
        if metric in _SHARE_HEADERS:
            columns[f"p_{metric}"] = _SHARE_HEADERS[metric]
        elif is_boolean_metric(metric):
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
    return format_value(value)


def answers_document(outcome: SweepOutcome) -> list[dict[str, Any]]:
    """The answers as JSON-ready data (``answers.json``)."""
    return [
        {
            "question": q.name,
            "axis": q.axis,
            "direction": q.direction,
            "where": [asdict(c) for c in q.where],
            "share": q.share,
            "bound": "one-sided Clopper-Pearson lower bound on the share of seeds (share_low)",
            "grid_values": spec_axis_values(outcome.spec, q.axis),
            "answers": [asdict(a) for a in items],
            "refined": [asdict(r) for r in outcome.refined.get(q.name, [])],
        }
        for q, items in outcome.answers
    ]


def spec_axis_values(spec: SweepSpec, axis: str) -> list[Value]:
    """The values of ``axis`` the grid tested, in order: the resolution of any answer on it."""
    return list(spec.axes[axis])


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

    lookup = {tuple(value_key(row[a]) for a in spec.axes): row for row in cells}
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
                    value = lookup[tuple(value_key(point[a]) for a in spec.axes)].get(heatmap.metric)
                    line.append(None if value is None else float(value))
                z.append(line)
            title = ", ".join(f"{short[k]} = {format_value(v)}" for k, v in fixed.items())
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
    return format_value(value)


def _describe(column: str) -> str:
    """A reader's label for an aggregate column: p_bad_debt -> share of seeds with bad_debt != 0."""
    if column.startswith("p_"):
        metric = column.removeprefix("p_")
        if metric in _SHARE_HEADERS:
            return f"share of seeds where the {_SHARE_HEADERS[metric]}"
        if is_boolean_metric(metric):
            return f"share of seeds where {metric}"
        return f"share of seeds with {metric} != 0"
    for suffix, word in (("_mean", "mean"), ("_min", "min"), ("_max", "max")):
        if column.endswith(suffix):
            return f"{word} {column.removesuffix(suffix)} over seeds"
    return column


def _higher_is_worse(column: str) -> bool:
    good = (
        "passed",
        "mechanism_held",
        "insurance_fund_min",
        "insurance_fund_end",
        "insurance_fund_cash_min",
        "assertion:",
    )
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
        elif is_boolean_metric(column):
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
        return value if isinstance(value, str) else format_value(value)
    if isinstance(dtype, pl.Float64):
        return float(value)
    return value


__all__ = [
    "answers_document",
    "format_answers",
    "format_cell",
    "format_refined",
    "heatmap_figures",
    "short_names",
    "table_columns",
    "write_outputs",
]
