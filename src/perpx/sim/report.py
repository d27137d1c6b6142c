"""Draw one simulation run (a self-contained HTML report and a PNG per chart), and a sweep's heatmaps.

A person who never opens the journal should understand what happened from the
pictures: the price path with every liquidation and ADL leg on it, the insurance
fund with its low point, open interest, funding, book depth and the size of each
liquidation. Every chart has a title, axis labels with units, a legend and a
callout at its worst moment.

Each chart is built once as a :class:`Chart` (plain data) and then rendered twice:
by matplotlib (Agg, no display, no browser) into ``<key>.png``, and by plotly into
``report.html``. Both renderers read the same titles, so the HTML and the PNGs
never disagree. ``report.html`` embeds plotly.js inline: it opens offline and
can be attached to a ticket as one file.

Files written into the run directory:

=====================================  =============================================
``report.html``                         summary table, assertions, every chart
``insurance_fund.png``                  venue-wide insurance fund equity
``price_<MARKET>.png``                  index, mark, last; liquidation and ADL markers
``liquidations_<MARKET>.png``           notional of each liquidation and ADL leg
``open_interest_<MARKET>.png``          open interest, one side
``depth_<MARKET>.png``                  resting bid and ask quantity within 2% of mark
``funding_<MARKET>.png``                funding rate the next settlement would use
=====================================  =============================================
"""

from __future__ import annotations

import html
import math
import re
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from perpx.sim.result import SUMMARY_FIELDS as RESULT_SUMMARY_FIELDS
from perpx.sim.result import Marker, RunResult

REPORT_HTML = "report.html"
SUMMARY_FIELDS = tuple(field for field in RESULT_SUMMARY_FIELDS if field not in ("scenario", "assertions"))
"""Summary fields shown first in the report's table, in this order (others follow, sorted)."""

_ALARM_FIELDS = ("bad_debt", "invariant_violations", "adl_events")
_PNG_SIZE_IN = (11.0, 4.6)
_PNG_DPI = 110

Mode = Literal["line", "step", "markers"]
Symbol = Literal["circle", "x", "triangle-down", "diamond"]
_MPL_SYMBOL = {"circle": "o", "x": "x", "triangle-down": "v", "diamond": "D"}


@dataclass(frozen=True)
class Trace:
    """One named line or set of markers on a chart."""

    name: str
    x: list[float]
    y: list[float]
    mode: Mode = "line"
    color: str = "#1f77b4"
    symbol: Symbol = "circle"
    size: float = 7.0
    width: float = 1.6


@dataclass(frozen=True)
class Callout:
    """A labelled point: the worst moment of a chart, in data coordinates."""

    x: float
    y: float
    text: str


@dataclass(frozen=True)
class Chart:
    """A chart as plain data, rendered identically to PNG and to HTML.

    ``key`` names the PNG (``<key>.png``); ``note`` is drawn in the middle of a
    chart that has nothing to plot, so an empty chart still says why it is empty.
    """

    key: str
    title: str
    x_label: str
    y_label: str
    traces: list[Trace]
    callouts: list[Callout] = field(default_factory=list)
    hlines: list[tuple[float, str]] = field(default_factory=list)
    log_y: bool = False
    note: str = ""
    spans: list[tuple[float, float, str]] = field(default_factory=list)
    """Shaded time windows ``(start, end, label)``: a source's fault."""
    vlines: list[tuple[float, str]] = field(default_factory=list)
    """Marked moments ``(x, label)``: the scenario's scripted events, labelled at staggered heights."""


def write_report(
    result: RunResult, out_dir: Path, explanations: Mapping[int, str] | None = None
) -> list[Path]:
    """Write ``report.html`` and one PNG per chart into ``out_dir``; return the paths written.

    The HTML comes first in the returned list. ``out_dir`` is created if missing;
    files of the same names are replaced. Nothing is read from disk: the report is
    a pure function of ``result`` (and ``explanations``, the ``perpx explain`` text of the largest
    liquidations by account), so a run reloaded with :func:`perpx.sim.runner.load_result` draws the
    same report.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    charts = build_charts(result)
    pngs = [_render_png(chart, out_dir / f"{chart.key}.png") for chart in charts]
    page = out_dir / REPORT_HTML
    page.write_text(_render_html(result, charts, explanations or {}), encoding="utf-8")
    return [page, *pngs]


def build_charts(result: RunResult) -> list[Chart]:
    """Return the report's charts in page order: the insurance fund, then five charts per market."""
    scale, unit = _time_unit(result)
    x_label = f"simulated time ({unit})"
    asset = str(result.summary.get("settlement_asset", result.summary.get("asset", "settlement units")))
    incident = result.summary.get("incident", {})
    events = [
        (e["at_s"] / scale, f"{e['action']} ({e['detail']})") for e in incident.get("scripted_events", [])
    ]
    charts = [_insurance_chart(result, scale, x_label, asset)]
    for market in sorted(result.series):
        columns = result.series[market]
        markers = [m for m in result.markers if m.market == market]
        windows = [
            (w["start_s"] / scale, w["end_s"] / scale, _window_label(w))
            for w in incident.get("fault_windows", [])
            if w["market"] == market
        ]
        cap = incident.get("funding_caps", {}).get(market)
        charts.append(_price_chart(market, columns, markers, scale, x_label, asset, events))
        if any(c.startswith("quote:") for c in columns):
            charts.append(_sources_chart(market, columns, scale, x_label, asset, windows, events))
        charts.append(_liquidation_chart(market, markers, scale, x_label, asset))
        charts.append(_open_interest_chart(market, columns, scale, x_label, asset))
        charts.append(_depth_chart(market, columns, scale, x_label, asset))
        charts.append(_funding_chart(market, columns, markers, scale, x_label, cap))
    return charts


def _window_label(window: dict[str, Any]) -> str:
    what = f"outlier x{window['factor']:g}" if window["kind"] == "outlier" else "stale"
    return f"{window['source']} {what} ({window['start_s']:g}-{window['end_s']:g} s)"


def _sources_chart(
    market: str,
    columns: dict[str, list[float]],
    scale: float,
    x_label: str,
    asset: str,
    windows: list[tuple[float, float, str]],
    events: list[tuple[float, str]],
) -> Chart:
    """Each index source's delivered quotes against the index, fault windows shaded."""
    x = _scaled(columns.get("t_s", []), scale)
    palette = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02")
    traces = [Trace("index", x, list(columns.get("index", [])), color="#000000", width=2.4)]
    values: list[float] = []
    for number, column in enumerate(sorted(c for c in columns if c.startswith("quote:"))):
        quotes = list(columns[column])
        values += [q for q in quotes if not math.isnan(q) and q > 0]
        color = palette[number % len(palette)]
        traces.append(
            Trace(f"{column.removeprefix('quote:')} quote", x, quotes, mode="step", color=color, width=1.0)
        )
    wide = (
        bool(values) and max(values) / min(values) > 3
    )  # an outlier source: a log scale keeps the index visible
    return Chart(
        key=f"sources_{_safe(market)}",
        title=f"{market}: each source's quotes and the index, fault windows shaded",
        x_label=x_label,
        y_label=f"price ({asset}{', log scale' if wide else ''})",
        traces=traces,
        log_y=wide,
        spans=windows,
        vlines=events,
        note="" if values else "no quotes delivered",
    )


def _time_unit(result: RunResult) -> tuple[float, str]:
    """Seconds per displayed time unit: seconds up to 10 minutes, minutes up to 12 hours, then hours."""
    ends = [cols["t_s"][-1] for cols in result.series.values() if cols.get("t_s")]
    if result.venue_series.get("t_s"):
        ends.append(result.venue_series["t_s"][-1])
    span_s = max(ends, default=0.0)
    if span_s <= 600:
        return 1.0, "s"
    if span_s <= 12 * 3600:
        return 60.0, "min"
    return 3600.0, "h"


def _scaled(t_s: Sequence[float], scale: float) -> list[float]:
    return [t / scale for t in t_s]


def _fmt(value: float) -> str:
    """A compact human number: 1,234,567 / 12.35 / 0.0042."""
    if math.isnan(value):
        return "n/a"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 1:
        return f"{value:,.2f}"
    return f"{value:.4g}"


def _finite(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    return [(x, y) for x, y in points if not math.isnan(y)]


def _value_at(t_s: Sequence[float], values: Sequence[float], when_s: float) -> float:
    """The last sampled value at or before ``when_s`` (the first sample if earlier)."""
    if not t_s:
        return math.nan
    return values[max(0, bisect_right(t_s, when_s) - 1)]


def _insurance_chart(result: RunResult, scale: float, x_label: str, asset: str) -> Chart:
    t_s = result.venue_series.get("t_s", [])
    fund = result.venue_series.get("insurance_fund", [])
    x = _scaled(t_s, scale)
    traces = [Trace("insurance fund equity", x, list(fund), mode="step", color="#2c7fb8", width=2.0)]
    position = result.venue_series.get("insurance_fund_position", [])
    if any(p > 0 for p in position):
        traces.append(
            Trace("fund's position (notional on the mark)", x, list(position), mode="step", color="#e6550d")
        )
    callouts: list[Callout] = []
    hlines: list[tuple[float, str]] = []
    points = _finite(list(zip(x, fund, strict=False)))
    if points:
        start = points[0][1]
        low_x, low_y = min(points, key=lambda p: p[1])
        drop = start - low_y
        share = f" (down {drop / start:.0%} from start)" if start > 0 and drop > 0 else ""
        callouts.append(Callout(low_x, low_y, f"minimum {_fmt(low_y)} {asset}{share}"))
        hlines.append((start, f"start {_fmt(start)}"))
        if low_y < start * 0.5 or low_y <= 0:
            hlines.append((0.0, "empty"))
    overlays: tuple[tuple[str, str, str, Symbol], ...] = (
        ("insurance_takeover", "insurance takeover", "#e6550d", "diamond"),
        ("adl", "ADL leg (fund could not cover)", "#756bb1", "x"),
    )
    for kind, name, color, symbol in overlays:
        hits = [m for m in result.markers if m.kind == kind]
        if hits:
            traces.append(
                Trace(
                    f"{name} ({len(hits)})",
                    [m.t_s / scale for m in hits],
                    [_value_at(t_s, fund, m.t_s) for m in hits],
                    mode="markers",
                    color=color,
                    symbol=symbol,
                )
            )
    return Chart(
        key="insurance_fund",
        title="Insurance fund equity and the position it holds",
        x_label=x_label,
        y_label=f"insurance fund ({asset})",
        traces=traces,
        callouts=callouts,
        hlines=hlines,
        note="" if points else "no insurance fund samples",
    )


def _price_chart(
    market: str,
    columns: dict[str, list[float]],
    markers: list[Marker],
    scale: float,
    x_label: str,
    asset: str,
    events: list[tuple[float, str]] | None = None,
) -> Chart:
    t_s = columns.get("t_s", [])
    x = _scaled(t_s, scale)
    index, mark, last = (columns.get(name, []) for name in ("index", "mark", "last"))
    traces = [
        Trace("index (spot sources)", x, list(index), color="#636363", width=2.2),
        Trace("mark", x, list(mark), color="#1f77b4", width=1.6),
        Trace("last trade", x, list(last), color="#ff7f0e", width=1.0),
    ]
    liquidations = [m for m in markers if m.kind == "liquidation"]
    adl = [m for m in markers if m.kind == "adl"]
    if liquidations:
        traces.append(
            Trace(
                f"liquidation ({len(liquidations)})",
                [m.t_s / scale for m in liquidations],
                [m.price for m in liquidations],
                mode="markers",
                color="#d62728",
                symbol="triangle-down",
            )
        )
    if adl:
        traces.append(
            Trace(
                f"ADL leg ({len(adl)})",
                [m.t_s / scale for m in adl],
                [m.price for m in adl],
                mode="markers",
                color="#756bb1",
                symbol="x",
                size=9.0,
            )
        )
    callouts: list[Callout] = []
    gaps = [
        (abs(m / i - 1) * 1e4, xi, m)
        for xi, i, m in zip(x, index, mark, strict=False)
        if not (math.isnan(i) or math.isnan(m)) and i > 0
    ]
    if gaps:
        gap_bps, gap_x, gap_mark = max(gaps)
        if gap_bps > 0:
            callouts.append(Callout(gap_x, gap_mark, f"widest mark-index gap {gap_bps:,.0f} bps"))
    swing = _largest_swing(_finite(list(zip(x, mark, strict=False))))
    if swing is not None and abs(swing[0]) >= 0.02:
        move, swing_x, swing_y = swing
        where = "below its peak" if move < 0 else "above its trough"
        callouts.append(Callout(swing_x, swing_y, f"mark {_fmt(swing_y)}: {abs(move):.0%} {where}"))
    return Chart(
        key=f"price_{_safe(market)}",
        title=f"{market}: index, mark and last price, with liquidations and ADL",
        x_label=x_label,
        y_label=f"price ({asset})",
        traces=traces,
        callouts=callouts,
        note="" if _finite(list(zip(x, mark, strict=False))) else "no price samples",
        vlines=list(events or []),
    )


def _largest_swing(points: Sequence[tuple[float, float]]) -> tuple[float, float, float] | None:
    """The largest fall from a running peak or rise from a running trough: (signed share, x, y)."""
    best: tuple[float, float, float] | None = None
    peak, trough = math.inf * -1, math.inf
    for x, y in points:
        peak, trough = max(peak, y), min(trough, y)
        for move in ((y - peak) / peak if peak > 0 else 0.0, (y - trough) / trough if trough > 0 else 0.0):
            if best is None or abs(move) > abs(best[0]):
                best = (move, x, y)
    return best


def _liquidation_chart(market: str, markers: list[Marker], scale: float, x_label: str, asset: str) -> Chart:
    liquidations = [m for m in markers if m.kind == "liquidation"]
    adl = [m for m in markers if m.kind == "adl"]
    traces: list[Trace] = []
    if liquidations:
        traces.append(
            Trace(
                f"liquidation ({len(liquidations)}, total {_fmt(sum(m.notional for m in liquidations))})",
                [m.t_s / scale for m in liquidations],
                [m.notional for m in liquidations],
                mode="markers",
                color="#d62728",
                symbol="triangle-down",
            )
        )
    if adl:
        traces.append(
            Trace(
                f"ADL leg ({len(adl)}, total {_fmt(sum(m.notional for m in adl))})",
                [m.t_s / scale for m in adl],
                [m.notional for m in adl],
                mode="markers",
                color="#756bb1",
                symbol="x",
                size=9.0,
            )
        )
    events = liquidations + adl
    callouts: list[Callout] = []
    positive = [m.notional for m in events if m.notional > 0]
    if events:
        largest = max(events, key=lambda m: m.notional)
        callouts.append(
            Callout(largest.t_s / scale, largest.notional, f"largest {_fmt(largest.notional)} {asset}")
        )
    return Chart(
        key=f"liquidations_{_safe(market)}",
        title=f"{market}: liquidations by size",
        x_label=x_label,
        y_label=f"notional ({asset}, log scale)" if _wide(positive) else f"notional ({asset})",
        traces=traces,
        callouts=callouts,
        log_y=_wide(positive),
        note="" if events else "no liquidations or ADL in this market",
    )


def _wide(values: Sequence[float]) -> bool:
    return len(values) > 1 and max(values) > 100 * min(values)


def _notional(quantities: Sequence[float], marks: Sequence[float]) -> list[float]:
    """Base quantities times the mark at each sample (nan before the first mark)."""
    return [q * m for q, m in zip(quantities, marks, strict=False)]


def _open_interest_chart(
    market: str, columns: dict[str, list[float]], scale: float, x_label: str, asset: str
) -> Chart:
    x = _scaled(columns.get("t_s", []), scale)
    oi = _notional(columns.get("open_interest", []), columns.get("mark", []))
    callouts: list[Callout] = []
    points = _finite(list(zip(x, oi, strict=False)))
    peak = -math.inf
    worst = (0.0, 0.0, 0.0)
    for xi, yi in points:
        peak = max(peak, yi)
        if peak > 0 and (peak - yi) / peak > worst[0]:
            worst = ((peak - yi) / peak, xi, yi)
    if worst[0] > 0.01:
        callouts.append(Callout(worst[1], worst[2], f"{worst[0]:.0%} below its peak"))
    return Chart(
        key=f"open_interest_{_safe(market)}",
        title=f"{market}: open interest",
        x_label=x_label,
        y_label=f"open interest ({asset} on the mark, one side)",
        traces=[Trace("open interest", x, list(oi), mode="step", color="#31a354", width=2.0)],
        callouts=callouts,
        note="" if points else "no open interest samples",
    )


def _depth_chart(
    market: str, columns: dict[str, list[float]], scale: float, x_label: str, asset: str
) -> Chart:
    x = _scaled(columns.get("t_s", []), scale)
    marks = columns.get("mark", [])
    bid = _notional(columns.get("bid_depth", []), marks)
    ask = _notional(columns.get("ask_depth", []), marks)
    callouts: list[Callout] = []
    totals = [
        (b + a, xi, b, a)
        for xi, b, a in zip(x, bid, ask, strict=False)
        if not (math.isnan(b) or math.isnan(a))
    ]
    # before the makers' first quotes the book is empty by construction, not thin: skip that start
    quoted = next((i for i, t in enumerate(totals) if t[0] > 0), len(totals))
    if totals[quoted:]:
        _, thin_x, thin_bid, thin_ask = min(totals[quoted:])
        callouts.append(
            Callout(thin_x, min(thin_bid, thin_ask), f"thinnest: bid {_fmt(thin_bid)} / ask {_fmt(thin_ask)}")
        )
    return Chart(
        key=f"depth_{_safe(market)}",
        title=f"{market}: order book depth within 2% of mark",
        x_label=x_label,
        y_label=f"resting notional ({asset} on the mark)",
        traces=[
            Trace("bid depth", x, list(bid), mode="step", color="#2ca02c"),
            Trace("ask depth", x, list(ask), mode="step", color="#d62728"),
        ],
        callouts=callouts,
        note="" if totals else "no depth samples",
    )


def _funding_chart(
    market: str,
    columns: dict[str, list[float]],
    markers: list[Marker],
    scale: float,
    x_label: str,
    cap: dict[str, float] | None = None,
) -> Chart:
    x = _scaled(columns.get("t_s", []), scale)
    rate_bp = [r * 1e4 for r in columns.get("funding_rate", [])]
    traces = [Trace("funding rate (next settlement)", x, rate_bp, mode="step", color="#8c564b")]
    # a funding marker carries the settled rate (a fraction) in ``qty`` and the amount paid in ``notional``
    settled = [m for m in markers if m.kind == "funding"]
    if settled:
        paid = sum(abs(m.notional) for m in settled)
        traces.append(
            Trace(
                f"settlement ({len(settled)}, {_fmt(paid)} paid)",
                [m.t_s / scale for m in settled],
                [m.qty * 1e4 for m in settled],
                mode="markers",
                color="#8c564b",
                symbol="diamond",
                size=6.0,
            )
        )
    callouts: list[Callout] = []
    points = _finite(list(zip(x, rate_bp, strict=False)))
    if points:
        ext_x, ext_y = max(points, key=lambda p: abs(p[1]))
        if ext_y != 0:
            payer = "longs pay" if ext_y > 0 else "shorts pay"
            callouts.append(Callout(ext_x, ext_y, f"extreme {ext_y:+.2f} bp ({payer})"))
    return Chart(
        key=f"funding_{_safe(market)}",
        title=f"{market}: funding rate",
        x_label=x_label,
        y_label="funding rate (bp per funding interval)",
        traces=traces,
        callouts=callouts,
        hlines=[(0.0, "")]
        + (
            [
                (cap["cap"] * 1e4, f"cap {cap['cap'] * 1e4:+g} bp"),
                (cap["floor"] * 1e4, f"floor {cap['floor'] * 1e4:+g} bp"),
            ]
            if cap
            else []
        ),
        note="" if points else "no funding samples",
    )


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name)


def _callout_side(chart: Chart, callout: Callout) -> tuple[bool, bool]:
    """Whether a callout's point lies in the right part and the upper part of the plotted data.

    The label goes on the side facing the middle, so it stays inside the plot and off the title.
    """

    def share(value: float, values: list[float]) -> float:
        finite = [v for v in values if not math.isnan(v)]
        if not finite or max(finite) == min(finite):
            return 0.5
        return (value - min(finite)) / (max(finite) - min(finite))

    xs = [x for t in chart.traces for x in t.x]
    ys = [y for t in chart.traces for y in t.y] + [y for y, _ in chart.hlines]
    if chart.log_y:
        ys = [math.log10(y) for y in ys if y > 0]
        point_y = math.log10(callout.y) if callout.y > 0 else min(ys, default=0.0)
    else:
        point_y = callout.y
    return share(callout.x, xs) > 0.6, share(point_y, ys) > 0.6


def _render_png(chart: Chart, path: Path) -> Path:
    # Figure without pyplot: no global state, no display backend, safe in worker processes
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    fig = Figure(figsize=_PNG_SIZE_IN, dpi=_PNG_DPI, layout="constrained")
    ax = fig.subplots()
    for trace in chart.traces:
        if trace.mode == "markers":
            ax.scatter(
                trace.x,
                trace.y,
                s=trace.size**2,
                c=trace.color,
                marker=_MPL_SYMBOL[trace.symbol],
                label=trace.name,
                zorder=3,
            )
        elif trace.mode == "step":
            ax.step(
                trace.x, trace.y, where="post", color=trace.color, linewidth=trace.width, label=trace.name
            )
        else:
            ax.plot(trace.x, trace.y, color=trace.color, linewidth=trace.width, label=trace.name)
    for y, label in chart.hlines:
        ax.axhline(y, color="#999999", linestyle="--", linewidth=0.8, label=label or None)
    for number, (start, end, label) in enumerate(chart.spans):
        ax.axvspan(start, end, color=_SPAN_COLORS[number % len(_SPAN_COLORS)], alpha=0.18, label=label)
    for number, (x, label) in enumerate(chart.vlines):
        ax.axvline(x, color="#555555", linestyle=":", linewidth=1.0)
        ax.text(
            x,
            _stagger(number),
            f" {label}",
            transform=ax.get_xaxis_transform(),
            fontsize=7,
            va="top",
            color="#333333",
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8},
        )
    for number, callout in enumerate(chart.callouts):
        right, upper = _callout_side(chart, callout)
        away = 35 + 30 * number  # each further callout one box further out: boxes never overlap
        ax.annotate(
            callout.text,
            xy=(callout.x, callout.y),
            xytext=(-30 if right else 30, -away if upper else away),
            textcoords="offset points",
            ha="right" if right else "left",
            va="top" if upper else "bottom",
            arrowprops={"arrowstyle": "->", "color": "#333333"},
            bbox={"boxstyle": "round", "fc": "#fff7bc", "ec": "#999999"},
            fontsize=9,
        )
    if chart.note:
        ax.text(0.5, 0.5, chart.note, transform=ax.transAxes, ha="center", va="center", color="#666666")
    if chart.log_y:
        ax.set_yscale("log")
    else:
        ax.yaxis.set_major_formatter(FuncFormatter(_tick_label))
    ax.set_title(chart.title)
    ax.set_xlabel(chart.x_label)
    ax.set_ylabel(chart.y_label)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize=8)
    fig.savefig(path, format="png")
    return path


_SPAN_COLORS = ("#fdae6b", "#9e9ac8", "#a1d99b", "#fc9272")


def _stagger(number: int) -> float:
    """Height (fraction of the axes) of the ``number``-th event label: four rows, so labels never overlap."""
    return 0.98 - 0.09 * (number % 4)


def _tick_label(value: float, _position: float | None = None) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:g}"


def _plotly_figure(chart: Chart) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    for trace in chart.traces:
        if trace.mode == "markers":
            fig.add_trace(
                go.Scatter(
                    x=trace.x,
                    y=trace.y,
                    name=trace.name,
                    mode="markers",
                    marker={"color": trace.color, "symbol": trace.symbol, "size": trace.size},
                )
            )
        else:
            fig.add_trace(
                go.Scatter(
                    x=trace.x,
                    y=trace.y,
                    name=trace.name,
                    mode="lines",
                    line={
                        "color": trace.color,
                        "width": trace.width,
                        "shape": "hv" if trace.mode == "step" else "linear",
                    },
                )
            )
    for y, label in chart.hlines:
        fig.add_hline(y=y, line_dash="dash", line_color="#999999", annotation_text=label)
    for number, (start, end, label) in enumerate(chart.spans):
        color = _SPAN_COLORS[number % len(_SPAN_COLORS)]
        fig.add_vrect(x0=start, x1=end, fillcolor=color, opacity=0.25, line_width=0)
        # the window's name goes in the legend (a rectangle has no legend entry of its own)
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                name=label,
                marker={"color": color, "symbol": "square", "size": 12},
            )
        )
    for number, (x, label) in enumerate(chart.vlines):
        fig.add_vline(x=x, line_dash="dot", line_color="#555555")
        fig.add_annotation(
            x=x,
            y=_stagger(number),
            yref="paper",
            text=html.escape(label),
            showarrow=False,
            xanchor="left",
            font={"size": 10},
            bgcolor="rgba(255,255,255,0.8)",
        )
    for number, callout in enumerate(chart.callouts):
        right, upper = _callout_side(chart, callout)
        away = 40 + 32 * number
        fig.add_annotation(
            x=callout.x,
            y=math.log10(callout.y) if chart.log_y and callout.y > 0 else callout.y,
            text=html.escape(callout.text),
            showarrow=True,
            ax=-60 if right else 60,
            ay=away if upper else -away,
            arrowhead=2,
            bgcolor="#fff7bc",
            bordercolor="#999999",
        )
    if chart.note:
        fig.add_annotation(
            x=0.5, y=0.5, xref="paper", yref="paper", text=chart.note, showarrow=False, font={"color": "#666"}
        )
    fig.update_layout(
        title={"text": html.escape(chart.title)},
        xaxis_title=chart.x_label,
        yaxis_title=chart.y_label,
        yaxis_type="log" if chart.log_y else "linear",
        template="plotly_white",
        height=420,
        margin={"l": 70, "r": 30, "t": 60, "b": 50},
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def _render_html(result: RunResult, charts: list[Chart], explanations: Mapping[int, str]) -> str:
    divs = []
    for number, chart in enumerate(charts):
        # plotly.js goes inline once, in the first chart; the page needs no network
        div = _plotly_figure(chart).to_html(
            full_html=False, include_plotlyjs=number == 0, include_mathjax=False, div_id=chart.key
        )
        divs.append(f'<section class="chart">{div}</section>')
    title = f"{result.scenario}: seed {result.seed}"
    verdict = "PASSED" if result.passed else "FAILED"
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{html.escape(title)}</title>",
            f"<style>{_CSS}</style>",
            "</head><body>",
            f"<h1>{html.escape(title)} <span class='verdict {verdict.lower()}'>{verdict}</span></h1>",
            _scenario_text(result.summary.get("incident", {})),
            _summary_table(result.summary),
            _assertion_table(result.summary.get("assertions", [])),
            _accounts_table(result.summary),
            _explanations(explanations),
            *divs,
            "</body></html>",
        ]
    )


def _scenario_text(incident: dict[str, Any]) -> str:
    """The scenario's one-line description and its notes: what it models and what the mechanism must do."""
    parts = []
    if incident.get("description"):
        parts.append(f'<p class="headline">{html.escape(incident["description"])}</p>')
    if incident.get("notes"):
        parts.append(
            f"<details open><summary>What the scenario models and expects</summary>"
            f'<pre class="notes">{html.escape(incident["notes"])}</pre></details>'
        )
    return "<h2>Scenario</h2>" + "".join(parts) if parts else ""


def _accounts_table(summary: dict[str, Any]) -> str:
    """Liquidated accounts and ADL counterparties, one row per account, largest notional first."""
    unit = html.escape(str(summary.get("settlement_asset", "")))
    rows: dict[int, dict[str, Any]] = {}
    for item in summary.get("liquidated_accounts", []):
        rows.setdefault(item["account_id"], {"owner": item.get("owner", "")}).update(
            liquidations=item["count"], liquidated=item["notional"], cause=item["cause"]
        )
    for item in summary.get("adl_counterparties", []):
        rows.setdefault(item["account_id"], {"owner": item.get("owner", "")}).update(
            adl_legs=item["legs"], adl=item["notional"]
        )
    if not rows:
        return "<h2>Liquidations and ADL by account</h2><p>No account was liquidated or deleveraged.</p>"
    order = sorted(rows, key=lambda a: -(rows[a].get("liquidated", 0.0) + rows[a].get("adl", 0.0)))
    header = (
        "<tr><th>account</th><th>agent</th><th>liquidations</th><th>liquidated notional</th><th>cause</th>"
        "<th>ADL legs</th><th>ADL notional (lost to ADL)</th></tr>"
    )
    body = "".join(
        f"<tr><td>{a}</td><td>{_cell(rows[a]['owner'])}</td><td>{_cell(rows[a].get('liquidations', ''))}</td>"
        f"<td>{_cell(rows[a].get('liquidated', ''))}</td><td>{_cell(rows[a].get('cause', ''))}</td>"
        f"<td>{_cell(rows[a].get('adl_legs', ''))}</td><td>{_cell(rows[a].get('adl', ''))}</td></tr>"
        for a in order
    )
    return (
        f"<h2>Liquidations and ADL by account ({unit})</h2>"
        f'<table class="accounts">{header}{body}</table>'
        f"<p>Explain any of them: <code>perpx explain --data DIR/journal --account N</code>.</p>"
    )


def _explanations(explanations: Mapping[int, str]) -> str:
    """``perpx explain`` of the largest liquidations, each folded under its account."""
    if not explanations:
        return ""
    parts = [
        f'<details><summary>perpx explain --account {account}</summary><pre class="notes">{html.escape(text)}</pre></details>'
        for account, text in explanations.items()
    ]
    return "<h2>The largest liquidations, explained</h2>" + "".join(parts)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return html.escape(_fmt(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return html.escape(str(value))


def _summary_table(summary: dict[str, Any]) -> str:
    rows = []
    for key in [k for k in SUMMARY_FIELDS if k in summary]:
        value = summary[key]
        css = ' class="alarm"' if key in _ALARM_FIELDS and _truthy(value) else ""
        rows.append(f"<tr{css}><th>{html.escape(key)}</th><td>{_cell(value)}</td></tr>")
    others = sorted(k for k in summary if k not in SUMMARY_FIELDS and not isinstance(summary[k], list | dict))
    extra = "".join(f"<tr><th>{html.escape(k)}</th><td>{_cell(summary[k])}</td></tr>" for k in others)
    details = (
        f'<details><summary>{len(others)} more fields</summary><table class="summary">{extra}</table></details>'
        if others
        else ""
    )
    return (
        f'<h2>Summary</h2><p class="headline">{html.escape(_headline(summary))}</p>'
        f'<table class="summary">{"".join(rows)}</table>{details}'
    )


def _headline(summary: dict[str, Any]) -> str:
    """What happened, in one sentence built from the summary (fields that are missing are left out)."""

    def number(key: str) -> str:
        value = summary.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:,}"
        return _fmt(value) if isinstance(value, float) else "?"

    unit = f" {summary['settlement_asset']}" if summary.get("settlement_asset") else ""
    parts = []
    if "liquidations" in summary:
        parts.append(f"{number('liquidations')} liquidations ({number('liquidated_notional')}{unit})")
    if "adl_events" in summary:
        parts.append(f"{number('adl_events')} ADL legs ({number('adl_notional')}{unit})")
    if "insurance_fund_start" in summary:
        parts.append(
            f"insurance fund {number('insurance_fund_start')} → lowest {number('insurance_fund_min')}"
            f" → {number('insurance_fund_end')}{unit}"
        )
    if "bad_debt" in summary:
        parts.append(f"bad debt {number('bad_debt')}{unit}")
    return "; ".join(parts) + "." if parts else ""


def _truthy(value: Any) -> bool:
    try:
        return float(value) != 0
    except (TypeError, ValueError):
        return bool(value)


def _assertion_table(assertions: list[dict[str, Any]]) -> str:
    if not assertions:
        return "<h2>Assertions</h2><p>This scenario declares no assertions.</p>"
    rows = []
    for a in assertions:
        ok = bool(a.get("passed"))
        rows.append(
            f'<tr class="{"pass" if ok else "fail"}"><td>{"PASS" if ok else "FAIL"}</td>'
            f"<td>{_cell(a.get('name', ''))}</td><td><code>{_cell(a.get('expr', ''))}</code></td>"
            f"<td>{_cell(a.get('value', ''))}</td><td>{_cell(a.get('detail', ''))}</td></tr>"
        )
    header = "<tr><th>result</th><th>assertion</th><th>expression</th><th>value</th><th>detail</th></tr>"
    return f'<h2>Assertions</h2><table class="assertions">{header}{"".join(rows)}</table>'


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { border: 1px solid #ddd; padding: 4px 10px; text-align: left; }
table.summary th { background: #f4f4f4; font-weight: normal; }
tr.alarm td, tr.alarm th { background: #fde0dd; font-weight: bold; }
tr.pass td:first-child { background: #c7e9c0; font-weight: bold; }
tr.fail td:first-child { background: #fcbba1; font-weight: bold; }
tr.fail td { color: #a50f15; }
.verdict { font-size: 0.6em; padding: 2px 10px; border-radius: 4px; vertical-align: middle; }
.verdict.passed { background: #c7e9c0; } .verdict.failed { background: #fcbba1; }
section.chart { margin-bottom: 1em; }
p.headline { font-size: 1.15em; }
details { margin-bottom: 1.5em; }
pre.notes { white-space: pre-wrap; background: #f8f8f8; padding: 0.8em; font-size: 0.9em; }
"""


@dataclass(frozen=True)
class HeatmapPanel:
    """One panel of a heatmap: ``z[row][column]`` over the figure's y and x values (None: no data)."""

    title: str
    z: list[list[float | None]]


@dataclass(frozen=True)
class HeatmapFigure:
    """A value over two grid axes, as small multiples sharing one colour scale.

    ``z_range`` None scales colours to the data; ``higher_is_worse`` puts red at the top of the
    scale (probability of bad debt) instead of the bottom (share of runs that passed);
    ``as_percent`` labels cells as percentages.
    """

    key: str
    title: str
    x_label: str
    y_label: str
    x_values: list[str]
    y_values: list[str]
    panels: list[HeatmapPanel]
    colour_label: str
    z_range: tuple[float, float] | None = None
    higher_is_worse: bool = True
    as_percent: bool = False


def write_heatmaps(figures: Sequence[HeatmapFigure], out_dir: Path, page_title: str) -> list[Path]:
    """Write ``<key>.png`` per figure and all figures into one self-contained ``heatmaps.html``.

    Returns the PNG paths, then the HTML path; writes nothing when ``figures`` is empty.
    """
    if not figures:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [_heatmap_png(figure, out_dir / f"{figure.key}.png") for figure in figures]
    divs = []
    for number, figure in enumerate(figures):
        div = _heatmap_plotly(figure).to_html(
            full_html=False, include_plotlyjs=number == 0, include_mathjax=False, div_id=figure.key
        )
        divs.append(f'<section class="chart">{div}</section>')
    page = out_dir / "heatmaps.html"
    page.write_text(
        "\n".join(
            [
                "<!DOCTYPE html>",
                '<html lang="en"><head><meta charset="utf-8">',
                f"<title>{html.escape(page_title)}</title>",
                f"<style>{_CSS}</style>",
                "</head><body>",
                f"<h1>{html.escape(page_title)}</h1>",
                *divs,
                "</body></html>",
            ]
        ),
        encoding="utf-8",
    )
    return [*paths, page]


def _heatmap_range(figure: HeatmapFigure) -> tuple[float, float]:
    if figure.z_range is not None:
        return figure.z_range
    values = [
        v for panel in figure.panels for line in panel.z for v in line if v is not None and not math.isnan(v)
    ]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    return (low, high) if high > low else (low - 0.5, high + 0.5)


def _heat_label(value: float | None, as_percent: bool) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:.0%}" if as_percent else _fmt(value)


def _heatmap_png(figure: HeatmapFigure, path: Path) -> Path:
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    count = len(figure.panels)
    columns = min(3, count)
    rows = math.ceil(count / columns)
    width = max(5.0, 0.9 * len(figure.x_values) + 2.5)
    height = max(3.0, 0.6 * len(figure.y_values) + 2.0)
    fig = Figure(
        figsize=(min(width * columns + 1.5, 22), height * rows + 0.8), dpi=_PNG_DPI, layout="constrained"
    )
    axes = fig.subplots(rows, columns, squeeze=False)
    cmap = colormaps["RdYlGn_r" if figure.higher_is_worse else "RdYlGn"].with_extremes(bad="#dddddd")
    low, high = _heatmap_range(figure)
    image = None
    for number, ax in enumerate(axes.flat):
        if number >= count:
            ax.set_axis_off()
            continue
        panel = figure.panels[number]
        z = [[math.nan if v is None else v for v in line] for line in panel.z]
        image = ax.imshow(z, cmap=cmap, vmin=low, vmax=high, aspect="auto", origin="lower")
        for row, line in enumerate(panel.z):
            for column, value in enumerate(line):
                shade = 0.5 if value is None or math.isnan(value) else (value - low) / (high - low)
                red, green, blue, _ = cmap(min(1.0, max(0.0, shade)))
                ink = "white" if 0.299 * red + 0.587 * green + 0.114 * blue < 0.5 else "black"
                label = _heat_label(value, figure.as_percent)
                ax.text(column, row, label, ha="center", va="center", fontsize=9, color=ink)
        ax.set_xticks(range(len(figure.x_values)), figure.x_values, rotation=30, ha="right")
        ax.set_yticks(range(len(figure.y_values)), figure.y_values)
        ax.set_xlabel(figure.x_label)
        ax.set_ylabel(figure.y_label)
        if panel.title:
            ax.set_title(panel.title, fontsize=9)
    if image is not None:
        bar = fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.9)
        bar.set_label(figure.colour_label)
    fig.suptitle(figure.title)
    fig.savefig(path, format="png")
    return path


def _heatmap_plotly(figure: HeatmapFigure) -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    count = len(figure.panels)
    columns = min(3, count)
    rows = math.ceil(count / columns)
    titles = [panel.title for panel in figure.panels]
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=titles if any(titles) else None)
    low, high = _heatmap_range(figure)
    for number, panel in enumerate(figure.panels):
        fig.add_trace(
            go.Heatmap(
                z=panel.z,
                x=figure.x_values,
                y=figure.y_values,
                zmin=low,
                zmax=high,
                colorscale="RdYlGn",
                reversescale=figure.higher_is_worse,
                text=[[_heat_label(v, figure.as_percent) for v in line] for line in panel.z],
                texttemplate="%{text}",
                showscale=number == 0,
                colorbar={"title": {"text": figure.colour_label, "side": "right"}},
                hovertemplate=f"{figure.x_label} = %{{x}}<br>{figure.y_label} = %{{y}}<br>%{{text}}<extra></extra>",
            ),
            row=number // columns + 1,
            col=number % columns + 1,
        )
    fig.update_xaxes(type="category", title_text=figure.x_label)
    fig.update_yaxes(type="category", title_text=figure.y_label)
    fig.update_layout(
        title={"text": html.escape(figure.title)},
        template="plotly_white",
        height=max(380, 300 * rows),
        margin={"l": 80, "r": 30, "t": 90, "b": 60},
    )
    return fig


def main(argv: Sequence[str] | None = None) -> int:
    """Redraw the report of a run directory: ``python -m perpx.sim.report DIR``.

    Reads the ``summary.json`` and ``series.json`` the runner wrote; returns the exit status
    (2 when the directory holds no readable run).
    """
    import sys

    from perpx.sim.runner import load_result
    from perpx.sim.runner.explanations import read_explanations

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m perpx.sim.report RUN_DIR", file=sys.stderr)
        return 2
    try:
        paths = write_report(load_result(Path(args[0])), Path(args[0]), read_explanations(Path(args[0])))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"error: cannot redraw the report of {args[0]}: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {paths[0]} and {len(paths) - 1} PNG charts")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
