"""``perpx algo``: work parent orders and inspect the algorithms' maths from the command line.

This module owns the ``algo_app`` typer group registered in :mod:`perpx.cli`. Other execution
packages (strategy documents, flows) add their own commands to it from their own modules by
importing ``algo_app`` and decorating functions with ``@algo_app.command()``; their modules are
imported by :func:`register_commands` so the group is complete whenever the CLI is built.
"""

from __future__ import annotations

import importlib
import json
from typing import Annotated

import typer

from perpx.execution.almgren_chriss import AcParams, ScheduleError, optimal_schedule

algo_app = typer.Typer(help="Execution algorithms: schedules, backtests and live runs.", no_args_is_help=True)
schedule_app = typer.Typer(help="Print an algorithm's schedule from model parameters.", no_args_is_help=True)
algo_app.add_typer(schedule_app, name="schedule")

COMMAND_MODULES: tuple[str, ...] = ("perpx.execution.document.cli", "perpx.execution.flows.cli")
"""Modules that add commands to ``algo_app`` when imported; each package appends its own."""


def register_commands() -> typer.Typer:
    """Import every module of :data:`COMMAND_MODULES` and return the complete ``algo_app``."""
    for name in COMMAND_MODULES:
        importlib.import_module(name)
    return algo_app


@schedule_app.command("is")
def schedule_is(
    qty: Annotated[float, typer.Option(help="X: units to trade.")],
    horizon: Annotated[float, typer.Option(help="T: total time (any unit; sigma and eta use the same).")],
    steps: Annotated[int, typer.Option(help="N: number of periods; tau = T/N.")],
    sigma: Annotated[float, typer.Option(help="Price volatility per sqrt(time unit).")],
    eta: Annotated[float, typer.Option(help="Temporary impact slope: h(v) = epsilon sgn(v) + eta v.")],
    gamma: Annotated[float, typer.Option(help="Permanent impact slope: g(v) = gamma v.")] = 0.0,
    epsilon: Annotated[float, typer.Option(help="Fixed cost per unit (half spread + fees).")] = 0.0,
    risk_aversion: Annotated[float, typer.Option(help="lambda: weight of Var[C] against E[C].")] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Print the Almgren-Chriss implementation-shortfall schedule in the paper's notation."""
    params = AcParams(qty, horizon, steps, sigma, eta, gamma, epsilon, risk_aversion)
    try:
        schedule = optimal_schedule(params)
    except ScheduleError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    result = {
        "kappa": schedule.kappa,
        "holdings": list(schedule.holdings),
        "trades": list(schedule.trades),
        "expected_cost": schedule.expected_cost,
        "variance": schedule.variance,
    }
    if as_json:
        typer.echo(json.dumps(result))
        return
    typer.echo(
        f"kappa {schedule.kappa:.6g}  E[C] {schedule.expected_cost:.6g}  Var[C] {schedule.variance:.6g}"
    )
    for k, (held, traded) in enumerate(zip(schedule.holdings[1:], schedule.trades, strict=True), start=1):
        typer.echo(f"  k={k:<4} n_k={traded:<14.6g} x_k={held:.6g}")
