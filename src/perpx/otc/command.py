"""``perpx desk``: the OTC desk's report, and a simulated desk day.

``perpx desk report --data DIR [--from 2026-01-01] [--to 2026-01-02] [--out DIR/desk-report]`` replays
the venue's journal and writes the report (:mod:`perpx.otc.report`). ``perpx desk simulate --out DIR``
runs a simulated day (:mod:`perpx.otc.simday`) and writes its report into ``DIR/report``. Bad input
ends in one line and exit code 2, never a traceback.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from perpx.engine.config import ConfigError
from perpx.journal.store import RecoveryError
from perpx.otc.report import ReportError, build_report, write_report
from perpx.otc.simday import DayPlan, run_day
from perpx.sim.scenario import ScenarioError

desk_app = typer.Typer(help="The OTC desk: its P&L and KPIs, and a simulated desk day.", no_args_is_help=True)
console = Console()


def _fail(message: str) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]error:[/] {message}")
    return typer.Exit(2)


def _time_ns(text: str | None, option: str) -> int | None:
    """``YYYY-MM-DD``, an ISO time (UTC unless it says otherwise), or epoch milliseconds."""
    if text is None:
        return None
    if text.isdigit():
        return int(text) * 1_000_000
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _fail(
            f"{option} {text!r}: give a date (2026-01-01), an ISO time or epoch milliseconds"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def _print(summary: dict[str, Any], out: Path) -> None:
    table = Table(title="desk P&L (settlement asset)", show_header=False)
    for line, amount in summary["pnl"].items():
        table.add_row(line, amount)
    table.add_row("total", summary["pnl_total"])
    table.add_row("capital flows", summary["capital_flows"])
    table.add_row("change in equity", summary["equity_change"])
    table.add_row("reconciles", str(summary["reconciles"]))
    console.print(table)
    kpi = summary["kpis"]
    kpis = Table(title="desk KPIs", show_header=False)
    for key in (
        "rfq_count",
        "quotes_given",
        "trades",
        "hit_ratio",
        "refusal_rate",
        "rejection_rate",
        "last_look_rate",
        "average_half_spread_bps",
        "volume",
        "inventory_turnover",
        "hedge_slippage_bps",
    ):
        value = kpi[key]
        kpis.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    kpis.add_row("quote_to_trade_latency_ms (median)", str(kpi["quote_to_trade_latency_ms"]["median"]))
    kpis.add_row("hedges", str(len(kpi["hedges"])))
    lending = kpi["lending"]
    if lending["status"] == "lender":
        for key in (
            "open_loans",
            "loan_book_size",
            "utilisation",
            "average_ltv",
            "interest_income",
            "liquidations",
        ):
            kpis.add_row(key, str(lending[key]))
    console.print(kpis)
    console.print(f"report in {out} (report.json, pnl.parquet, report.html, desk.prom)")


@desk_app.command("report")
def report_command(
    data: Annotated[
        Path,
        typer.Option(help="The venue's data directory (config.toml with [otc], journal.log, otc.sqlite)."),
    ],
    from_: Annotated[
        str | None, typer.Option("--from", help="Window start (date, ISO time or epoch ms).")
    ] = None,
    to: Annotated[str | None, typer.Option(help="Window end, exclusive.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Where to write the report (default DATA/desk-report).")
    ] = None,
) -> None:
    """Write the desk's P&L decomposition and KPIs (HTML, JSON, Parquet, Prometheus text)."""
    start, end = _time_ns(from_, "--from"), _time_ns(to, "--to")
    if start is not None and end is not None and end <= start:
        raise _fail("--to must be after --from")
    target = out if out is not None else data / "desk-report"
    try:
        summary = write_report(build_report(data, start, end), target)
    except (ReportError, ConfigError, RecoveryError, OSError) as exc:
        raise _fail(str(exc)) from None
    _print(summary, target)


@desk_app.command("simulate")
def simulate_command(
    out: Annotated[Path, typer.Option(help="A new directory for the day's journal, store and report.")],
    scenario: Annotated[Path, typer.Option(help="The risk-lab scenario the market runs.")] = Path(
        "scenarios/calm_day.toml"
    ),
    seed: Annotated[int, typer.Option(help="The day's seed (market and clients).")] = 1,
    hours: Annotated[float, typer.Option(help="Length of the day, in simulated hours.")] = 2.0,
    rfq_interval_s: Annotated[float, typer.Option(help="Mean seconds between RFQs (all clients).")] = 20.0,
    median_qty: Annotated[str, typer.Option(help="Median RFQ size, base units.")] = "1.5",
    hedge: Annotated[str, typer.Option(help="immediate | threshold | warehouse")] = "threshold",
    loans: Annotated[int, typer.Option(help="Borrowers the desk lends to (it becomes the lender).")] = 0,
) -> None:
    """Run a simulated desk day over a risk-lab market and write its desk report."""
    if hedge not in ("immediate", "threshold", "warehouse"):
        raise _fail("--hedge must be immediate, threshold or warehouse")
    if not 0 < hours <= 24 or rfq_interval_s <= 0:
        raise _fail("--hours must be in (0, 24] and --rfq-interval-s positive")
    plan = DayPlan(
        scenario=scenario,
        seed=seed,
        hours=hours,
        rfq_interval_s=rfq_interval_s,
        median_qty=Decimal(median_qty),
        hedge=hedge,
        loans=loans,
    )
    if not 0 <= loans <= 1000:
        raise _fail("--loans must be from 0 to 1000")
    try:
        summary = run_day(plan, out)
    except (ScenarioError, ValueError, ConfigError, RecoveryError, OSError) as exc:
        raise _fail(str(exc)) from None
    _print(summary, out / "report")
