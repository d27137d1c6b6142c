"""A run's files: the summary and series a run writes to its directory, and reading them back.

::

    DIR/summary.json      the summary (:mod:`~perpx.sim.runner.summary`), assertions included
    DIR/series.json       series, venue series and markers (:func:`load_result` reads it back)
    DIR/report.html, *.png  the report, when :mod:`perpx.sim.report` is installed

JSON has no ``nan``: a series value not set yet (``nan`` in memory) is written as ``null`` and
read back as ``nan``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path

from perpx.sim.result import Marker, RunResult

SUMMARY_FILE = "summary.json"
SERIES_FILE = "series.json"


def write_result(
    result: RunResult, out_dir: Path, draw: bool = True, explanations: Mapping[int, str] | None = None
) -> None:
    """Write ``summary.json`` and ``series.json`` to ``out_dir``, then the report when available.

    ``draw`` False leaves out ``report.html`` and the PNGs (megabytes a run; a sweep or a batch of
    runs needs only the summary, and the report can be drawn later from the two files).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / SUMMARY_FILE).write_text(json.dumps(result.summary, indent=2, allow_nan=False) + "\n")
    series = {
        "scenario": result.scenario,
        "seed": result.seed,
        "series": {
            m: {k: [_json_float(v) for v in vs] for k, vs in cols.items()}
            for m, cols in result.series.items()
        },
        "venue_series": {k: [_json_float(v) for v in vs] for k, vs in result.venue_series.items()},
        "markers": [asdict(m) for m in result.markers],
    }
    (out_dir / SERIES_FILE).write_text(json.dumps(series, allow_nan=False) + "\n")
    if not draw:
        return
    try:
        from perpx.sim import report
    except ImportError:
        return
    write_report = getattr(report, "write_report", None)
    if write_report is not None:
        write_report(result, out_dir, explanations)


def load_result(out_dir: Path) -> RunResult:
    """The :class:`RunResult` a run wrote to ``out_dir`` (``null`` series values come back as ``nan``)."""
    summary = json.loads((out_dir / SUMMARY_FILE).read_text())
    data = json.loads((out_dir / SERIES_FILE).read_text())

    def floats(values: list[float | None]) -> list[float]:
        return [math.nan if v is None else float(v) for v in values]

    return RunResult(
        scenario=data["scenario"],
        seed=int(data["seed"]),
        summary=summary,
        series={m: {k: floats(v) for k, v in cols.items()} for m, cols in data["series"].items()},
        venue_series={k: floats(v) for k, v in data["venue_series"].items()},
        markers=[Marker(**m) for m in data["markers"]],
    )


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else value


__all__ = ["SERIES_FILE", "SUMMARY_FILE", "load_result", "write_result"]
