"""The competition's files: leaderboard.json and .csv, equity.csv, report.html (plotly, one page).

The report embeds the installed plotly package's own JavaScript, so it opens offline and loads
nothing from a network (no CDN, no script from any http(s) address).
"""

from __future__ import annotations

import csv
import html
import json
from dataclasses import asdict, fields
from pathlib import Path

import plotly.graph_objects as go

from perpx.compete.config import Competition
from perpx.compete.runner import Result
from perpx.compete.scores import Score


def write_outputs(comp: Competition, result: Result, out: Path) -> list[Path]:
    """Write every output file into ``out``; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    board = out / "leaderboard.json"
    board.write_text(
        json.dumps(
            {
                "competition": comp.name,
                "seed": comp.seed,
                "symbol": comp.symbol,
                "steps": comp.steps,
                "stepS": comp.step_s,
                "capital": str(comp.capital),
                **result.as_json(),
            },
            indent=2,
        )
        + "\n"
    )
    table = out / "leaderboard.csv"
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([f.name for f in fields(Score)])
        for score in result.leaderboard:
            writer.writerow(list(asdict(score).values()))
    curves = out / "equity.csv"
    with curves.open("w", newline="") as handle:
        writer = csv.writer(handle)
        names = list(result.curves)
        writer.writerow(["time_s", "mark", *names])
        for i, t_s in enumerate(result.times_s):
            writer.writerow([t_s, result.marks[i], *(result.curves[n][i] for n in names)])
    report = out / "report.html"
    report.write_text(_html(comp, result))
    return [board, table, curves, report]


def _html(comp: Competition, result: Result) -> str:
    figure = go.Figure()
    for name, curve in result.curves.items():
        figure.add_trace(go.Scatter(x=result.times_s, y=[float(v) for v in curve], name=name, mode="lines"))
    figure.update_layout(title="Equity (USDT) by time (s)", xaxis_title="time (s)", yaxis_title="equity")
    marks = go.Figure(go.Scatter(x=result.times_s, y=[float(m) for m in result.marks], name="mark"))
    marks.update_layout(title=f"{comp.symbol} mark", xaxis_title="time (s)")
    columns = [f.name for f in fields(Score)]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["rank", *columns])
    rows = "".join(
        "<tr>"
        + f"<td>{rank}</td>"
        + "".join(f"<td>{html.escape(str(v))}</td>" for v in asdict(s).values())
        + "</tr>"
        for rank, s in enumerate(result.leaderboard, start=1)
    )
    chart: str = figure.to_html(full_html=False, include_plotlyjs=True)
    mark_chart: str = marks.to_html(full_html=False, include_plotlyjs=False)
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(comp.name)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style></head><body>"
        f"<h1>{html.escape(comp.name)}</h1><p>seed {comp.seed}, {comp.steps} steps of {comp.step_s} s on "
        f"{html.escape(comp.symbol)}, capital {comp.capital} USDT each, limits "
        f"{html.escape(json.dumps(comp.limits))}</p>"
        f"<table><tr>{head}</tr>{rows}</table>" + chart + mark_chart + "</body></html>"
    )
