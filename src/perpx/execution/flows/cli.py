"""``perpx algo run`` and ``perpx algo backtest``: a strategy document live, or on a risk-lab scenario.

The document's flow runs on the :class:`~.runner.FlowRunner`; algo nodes on the scheduler, their
child logs and the flow journal under ``--state`` (so running the same command again after a crash
resumes the flow instead of starting it twice). A rich table shows every node; Ctrl-C cancels every
working order and algo child, prints what was canceled and exits with 130.
Registered on the ``perpx algo`` group through :data:`perpx.execution.cli.COMMAND_MODULES`.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from perpx.execution.cli import algo_app
from perpx.execution.document.validate import DocumentInvalid, load_document
from perpx.execution.venue import VenueUnavailable
from perpx.sim.scenario import ScenarioError

from .algos import RunnerStarter
from .backtest import FlowBacktestError, backtest_flow
from .connect import connect
from .journal import FlowJournal
from .runner import FlowRunner

TCA_HEADLINE = (
    "filled_qty",
    "avg_price",
    "arrival_slippage_bps",
    "vwap_slippage_bps",
    "participation",
    "fee_bps",
)
"""The TCA figures ``perpx algo backtest`` prints per node (all of them are in ``OUT/tca/<node>/tca.json``)."""


def flow_id_for(name: str) -> str:
    """A document name as a flow id: letters, digits, '-' and '_', at most 32 characters."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", name)[:32] or "flow"


def node_table(runner: FlowRunner) -> Table:
    table = Table(title=f"flow {runner.flow_id}", expand=False)
    for column in ("node", "type", "status", "filled", "avg price", "why"):
        table.add_column(column)
    for node in runner.document.flow.nodes:
        state = runner.nodes[node.id]
        filled = f"{state.filled_lots}/{state.qty_lots} lots" if state.qty_lots else ""
        avg = "" if state.avg_price is None else f"{state.avg_price:.8g}"
        table.add_row(node.id, node.type.value, state.status.value, filled, avg, state.reason)
    return table


@algo_app.command("run")
def run_command(
    file: Annotated[Path, typer.Argument(help="A strategy document (.toml or .json).")],
    venue: Annotated[str, typer.Option(help="A perpx server URL (http://host:port) or a ccxt exchange id.")],
    key: Annotated[str | None, typer.Option(help="API key.", envvar="PERPX_API_KEY")] = None,
    secret: Annotated[str | None, typer.Option(help="API secret.", envvar="PERPX_API_SECRET")] = None,
    state: Annotated[
        Path | None, typer.Option(help="Flow journal and child logs (default .perpx-flows/<flow id>).")
    ] = None,
    period_s: Annotated[float, typer.Option(help="Seconds between wake-ups.", min=0.05)] = 1.0,
    flow_id: Annotated[
        str | None, typer.Option(help="Names the orders; default from the document's name.")
    ] = None,
) -> None:
    """Run a strategy document live; Ctrl-C cancels every working order and child."""
    console = Console(stderr=True)
    try:
        document = load_document(file)
    except DocumentInvalid as exc:
        for error in exc.errors:
            typer.echo(str(error), err=True)
        raise typer.Exit(1) from exc
    name = flow_id or flow_id_for(document.name)
    folder = state or Path(".perpx-flows") / name
    try:
        port = connect(venue, key, secret)
    except (ValueError, VenueUnavailable) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    runner = FlowRunner(
        document,
        port,
        name,
        RunnerStarter(port, folder / "children", period_s=max(1, int(period_s))),
        FlowJournal(folder / "flow.jsonl"),
    )
    try:
        with Live(node_table(runner), console=console, refresh_per_second=4) as live:
            while not runner.finished:
                try:
                    runner.step()
                except VenueUnavailable as exc:
                    console.log(f"venue unavailable, retrying: {exc}")
                live.update(node_table(runner))
                time.sleep(period_s)
    except KeyboardInterrupt:
        working = runner.working_orders()
        runner.cancel_all("interrupted (Ctrl-C)")
        console.print(node_table(runner))
        typer.echo(f"interrupted: canceled {len(working)} working order(s) and every algo child", err=True)
        raise typer.Exit(130) from None
    finally:
        runner.close()
    console.print(node_table(runner))
    typer.echo(f"flow {name} finished")


@algo_app.command("backtest")
def backtest_command(
    file: Annotated[Path, typer.Argument(help="A strategy document (.toml or .json).")],
    scenario: Annotated[
        Path, typer.Option(help="A risk-lab scenario (.toml), e.g. scenarios/calm_day.toml.")
    ],
    out: Annotated[Path, typer.Option(help="Where the journal, child logs, fills and TCA go.")] = Path(
        "backtest-out"
    ),
    seed: Annotated[int | None, typer.Option(help="Scenario seed (default: the scenario's own).")] = None,
    warmup_s: Annotated[int, typer.Option(help="Market time before the flow starts.")] = 900,
    period_s: Annotated[int, typer.Option(help="Seconds between the flow's wake-ups.")] = 5,
) -> None:
    """Backtest a strategy document on a scenario: fills, child logs, flow journal and TCA per node."""
    try:
        document = load_document(file)
    except DocumentInvalid as exc:
        for error in exc.errors:
            typer.echo(str(error), err=True)
        raise typer.Exit(1) from exc
    try:
        result = backtest_flow(
            document,
            scenario,
            flow_id=flow_id_for(document.name),
            seed=seed,
            warmup_s=warmup_s,
            period_s=period_s,
            out_dir=out,
        )
    except (FlowBacktestError, ScenarioError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    Console().print(node_table(result.runner))
    for name, analysis in result.analyses.items():
        summary = analysis.summary()
        typer.echo(f"{name}: {json.dumps({k: summary.get(k) for k in TCA_HEADLINE}, default=str)}")
    typer.echo(f"wrote {out}")
