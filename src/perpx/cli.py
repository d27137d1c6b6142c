"""The ``perpx`` command line: run a demo session, replay a journal, check a config."""

from __future__ import annotations

import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from perpx.config_file import load_config
from perpx.engine.config import DEFAULT_CONFIG_TOML, ConfigError
from perpx.engine.values import RATE_SCALE, format_units
from perpx.journal.store import RecoveryError, open_store, read_config, recover

app = typer.Typer(
    help="perpx: a deterministic perpetual-futures venue.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)
RATE_UNIT = Decimal(1) / RATE_SCALE


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


@app.command()
def demo(
    steps: Annotated[int, typer.Option(help="Rounds of trading to simulate.", min=1)] = 300,
    seed: Annotated[int, typer.Option(help="Seed of the agents' randomness.")] = 7,
    data: Annotated[
        Path | None, typer.Option(help="Data directory (journal, snapshots); a new temp dir if omitted.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="Venue TOML; the embedded demo venue if omitted.")
    ] = None,
) -> None:
    """Run a short simulated session on the real engine and print what happened.

    Market makers quote around a drifting mark price and noise traders take;
    every command is journaled, so `perpx replay DIR` reproduces the state hash.
    """
    from perpx.sim.demo import DemoSession

    directory = data or Path(tempfile.mkdtemp(prefix="perpx-demo-"))
    if directory.exists() and any(directory.iterdir()):
        raise _fail(f"{directory} is not empty; give a new --data directory for a fresh session")
    text = (
        config.read_text() if config is not None else DEFAULT_CONFIG_TOML.replace('durability = "batch"', "")
    )
    try:
        store, _ = open_store(directory, text)
    except RecoveryError as exc:
        raise _fail(str(exc)) from exc
    started = time.perf_counter()
    summary = DemoSession(store, seed).run(steps)
    wall = time.perf_counter() - started
    store.close()
    engine = store.engine
    atom = engine.config.settlement.atom
    table = Table(title=f"perpx demo session ({engine.config.name}, seed {seed})", show_header=False)
    table.add_row("commands", f"{summary.commands:,}")
    table.add_row("events", f"{summary.events:,}")
    table.add_row("trades", f"{summary.trades:,}")
    table.add_row("rejected orders", f"{summary.rejections:,}")
    table.add_row("traded notional", f"{format_units(summary.volume_atoms, atom)} {engine.asset}")
    table.add_row("fees collected", f"{format_units(summary.fees_atoms, atom)} {engine.asset}")
    for market, price in summary.last_marks.items():
        table.add_row(f"last mark {market}", f"{price:f}")
    table.add_row("invariant checks", f"{summary.invariant_checks:,} (all passed)")
    table.add_row(
        "wall time",
        f"{wall:.2f} s ({summary.commands / wall:,.0f} commands/s, each command journaled and fsynced)",
    )
    table.add_row("data directory", str(directory))
    console.print(table)
    console.print(f"state hash: {summary.state_hash}")
    console.print(f"Reproduce the state hash from the journal: [bold]perpx replay {directory}[/]")


@app.command()
def replay(
    data: Annotated[Path, typer.Argument(help="Data directory holding config.toml and journal.log.")],
    use_snapshots: Annotated[
        bool,
        typer.Option("--snapshots/--no-snapshots", help="Start from the newest snapshot, or from nothing."),
    ] = False,
) -> None:
    """Re-apply a journal and print the state hash (from nothing by default)."""
    try:
        config = read_config(data)
        started = time.perf_counter()
        engine, report = recover(data, config, use_snapshots=use_snapshots, repair=False)
    except RecoveryError as exc:
        raise _fail(str(exc)) from exc
    wall = time.perf_counter() - started
    for problem in report.problems:
        err.print(f"[yellow]warning:[/] {problem}")
    console.print(f"records        {report.last_seq}")
    console.print(f"from snapshot  {report.snapshot_seq}")
    console.print(f"replayed       {report.replayed} in {wall:.2f} s")
    console.print(f"accounts       {len(engine.accounts)}")
    console.print(f"open orders    {len(engine.orders)}")
    console.print(f"state hash     {report.state_hash}")


@app.command()
def explain(
    data: Annotated[Path, typer.Option(help="Data directory holding config.toml and journal.log.")],
    account: Annotated[int, typer.Option(help="Account id whose liquidations and ADL to explain.")],
) -> None:
    """Explain every liquidation and auto-deleveraging of an account: inputs, formulas, actions.

    Replays the journal read-only and prints each record the engine wrote for the account.
    """
    from perpx.engine.values import AccountId
    from perpx.explain import explain as explain_account

    try:
        config = read_config(data)
        wide = Console(width=max(console.width, 150))  # the positions table has twelve columns
        report = explain_account(wide, data, config, AccountId(account))
    except RecoveryError as exc:
        raise _fail(str(exc)) from exc
    for problem in report.problems:
        err.print(f"[yellow]warning:[/] {problem}")


@app.command("check-config")
def check_config(path: Annotated[Path, typer.Argument(help="Venue TOML file.")]) -> None:
    """Validate a venue config and list its markets and brackets."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        raise _fail(str(exc)) from exc
    atom = config.settlement.atom
    for market, spec in config.markets.items():
        console.print(
            f"[bold]{market}[/] tick {spec.tick_size} lot {spec.lot_size} max leverage {spec.max_leverage}x"
        )
        for b in spec.brackets:
            console.print(
                f"  tier {b.tier}: notional [{format_units(b.floor_atoms, atom)}, {format_units(b.cap_atoms, atom)})"
                f" {b.max_leverage}x mmr {format_units(b.mmr_e8, RATE_UNIT)} cum {format_units(b.cum_atoms, atom)}"
            )
    console.print("config OK")


@app.command()
def serve(
    config: Annotated[
        Path | None, typer.Option(help="Venue TOML (a new --data directory needs one unless --demo).")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port for REST and WebSocket.", min=0, max=65535)] = 8080,
    data: Annotated[Path, typer.Option(help="Data directory: journal, snapshots, read models, keys.")] = Path(
        "perpx-data"
    ),
    demo: Annotated[
        bool, typer.Option("--demo", help="Run simulated spot sources, market makers and noise traders too.")
    ] = False,
    tick_ms: Annotated[
        int, typer.Option(help="Wall clock: advance an idle venue this often (ms).", min=10)
    ] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the demo agents.")] = 7,
) -> None:
    """Run the venue: Binance USDS-M compatible REST + WebSocket, admin API, OpenAPI docs at /docs.

    Restarting on the same --data directory resumes exactly where it stopped.
    """
    from perpx.server.serve import ServeError, ServeOptions, run

    options = ServeOptions(config, host, port, data, demo, tick_ms=tick_ms, seed=seed)
    try:
        run(options)
    except (ServeError, RecoveryError, ConfigError) as exc:
        raise _fail(str(exc)) from None


@app.command("default-config")
def default_config_cmd() -> None:
    """Print the embedded demo venue config (a starting point for your own)."""
    typer.echo(DEFAULT_CONFIG_TOML, nl=False)


def main() -> None:
    app()
