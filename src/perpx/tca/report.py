"""The files a TCA run writes: tca.json (every metric), fills.parquet (per fill), report.html.

report.html is one self-contained file (plotly's script embedded, no network): the fills over the
price path with the benchmarks drawn across it, the markout curve, and the cost waterfall
(is_delay, is_spread_impact, is_timing, is_opportunity, is_fees, adding up to is_total).
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import polars as pl

from perpx.tca.analysis import Analysis

TCA_JSON = "tca.json"
FILLS_PARQUET = "fills.parquet"
REPORT_HTML = "report.html"

_COLUMN_TYPES: dict[str, type[pl.DataType]] = {
    "ts_ms": pl.Int64,
    "liquidity": pl.String,
    "trade_id": pl.Int64,
}
"""fills.parquet's non-float columns: every column keeps its type when all its values are null."""


def write_report(analysis: Analysis, out: Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the three files into ``out`` (created if needed) and return tca.json's content."""
    out.mkdir(parents=True, exist_ok=True)
    summary = analysis.summary()
    if extra:
        summary = {**summary, **{k: v for k, v in extra.items() if k not in summary}}
    (out / TCA_JSON).write_text(json.dumps(summary, indent=2) + "\n")
    rows = analysis.fill_rows()
    schema = {name: _COLUMN_TYPES.get(name, pl.Float64) for name in rows[0]} if rows else None
    pl.DataFrame(rows, schema=schema).write_parquet(out / FILLS_PARQUET)
    (out / REPORT_HTML).write_text(_html(analysis, summary))
    return summary


_FILL_COLOURS = {True: "#1f77b4", False: "#d62728", None: "#7f7f7f"}


def _utc(time_ms: int) -> datetime:
    return datetime.fromtimestamp(time_ms / 1000, tz=UTC)


def _num(text: str | None) -> float | None:
    return None if text is None else float(text)


def _price_figure(analysis: Analysis, summary: dict[str, Any]) -> Any:
    fig = go.Figure()
    if analysis.book:
        quotes = analysis.book.quotes
        fig.add_trace(
            go.Scatter(
                x=[_utc(q.time_ms) for q in quotes],
                y=[float(q.mid) for q in quotes],
                mode="lines",
                line={"shape": "hv", "color": "#888"},
                name=f"mid ({analysis.sources.mid})",
            )
        )
    if analysis.trades:
        fig.add_trace(
            go.Scatter(
                x=[_utc(t.time_ms) for t in analysis.trades],
                y=[float(t.price) for t in analysis.trades],
                mode="markers",
                marker={"size": 3, "color": "#bbb"},
                name="market trades",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=[_utc(f.time_ms) for f in analysis.fills],
            y=[float(f.price) for f in analysis.fills],
            mode="markers",
            marker={
                "size": [6 + 14 * float(f.qty / max(g.qty for g in analysis.fills)) for f in analysis.fills],
                "color": [_FILL_COLOURS[f.maker] for f in analysis.fills],
            },
            name="own fills (blue maker, red taker, grey unknown)",
        )
    )
    lines = {
        "decision P_d": summary["decision_price"],
        "arrival P_a": summary["arrival_price"],
        "end P_c": summary["end_price"],
        "interval VWAP": summary["interval_vwap"],
        "VWAP ex own": summary["interval_vwap_ex_own"],
        "avg fill": summary["avg_price"],
    }
    for name, value in lines.items():
        if value is not None:
            fig.add_hline(y=float(value), line_dash="dot", annotation_text=name, annotation_position="right")
    fig.update_layout(title="Fills over the price path", xaxis_title="time (UTC)", yaxis_title="price")
    return fig


def _markout_figure(summary: dict[str, Any]) -> Any:
    fig = go.Figure()
    for key, name in (
        ("markout_bps", "all fills"),
        ("markout_bps_maker", "maker"),
        ("markout_bps_taker", "taker"),
    ):
        curve = summary[key]
        fig.add_trace(
            go.Scatter(
                x=list(curve),
                y=[_num(value) for value in curve.values()],
                mode="lines+markers",
                name=name,
            )
        )
    fig.update_layout(
        title="Markout curve (bps, positive = favourable)", xaxis_title="horizon", yaxis_title="bps"
    )
    return fig


def _waterfall_figure(summary: dict[str, Any]) -> Any:
    sf = summary
    if sf["is_spread_impact"] is not None and sf["is_timing"] is not None:
        parts = [
            ("is_delay", sf["is_delay"]),
            ("is_spread_impact", sf["is_spread_impact"]),
            ("is_timing", sf["is_timing"]),
        ]
    else:
        parts = [("is_delay", sf["is_delay"]), ("is_execution", sf["is_execution"])]
    parts += [("is_opportunity", sf["is_opportunity"]), ("is_fees", sf["is_fees"])]
    fig = go.Figure(
        go.Waterfall(
            x=[name for name, _ in parts] + ["is_total"],
            y=[_num(value) for _, value in parts] + [_num(sf["is_total"])],
            measure=["relative"] * len(parts) + ["total"],
        )
    )
    fig.update_layout(
        title="Implementation shortfall (quote currency, positive = cost)",
        yaxis_title="cost",
        showlegend=False,
    )
    return fig


def _html(analysis: Analysis, summary: dict[str, Any]) -> str:
    figures = [_price_figure(analysis, summary), _markout_figure(summary), _waterfall_figure(summary)]
    divs = [
        figure.to_html(full_html=False, include_plotlyjs=index == 0, include_mathjax=False)
        for index, figure in enumerate(figures)
    ]
    head = (
        f"{summary['side']} {summary['qty']}: filled {summary['filled_qty']}"
        f" at {summary['avg_price']}; implementation shortfall {summary['is_total']}"
        f" ({summary['is_bps']} bps of Q x P_d); arrival slippage"
        f" {summary['arrival_slippage_bps']} bps"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>perpx TCA</title></head><body>"
        f"<h1>Transaction cost analysis</h1><p>{html.escape(head)}</p><p>{html.escape(summary['conventions'])}</p>"
        + "".join(divs)
        + f"<h2>tca.json</h2><pre>{html.escape(json.dumps(summary, indent=2))}</pre></body></html>\n"
    )
