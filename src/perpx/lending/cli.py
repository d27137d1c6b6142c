"""``perpx lending``: the loan book's report, the collateral-crash and multi-asset cascade scenarios.

``perpx lending report --data DIR [--out OUT]`` replays DIR's journal (read only) and writes
``lending.json`` and ``lending.html`` (default: into DIR/reports); ``perpx lending crash --data DIR``
runs the collateral-crash scenario into a new data directory and prints its summary as JSON;
``perpx lending explain --data DIR --account ID`` explains the account's margin calls and liquidations.
A directory that cannot be read ends in one line and exit code 2, never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from perpx.journal.store import RecoveryError
from perpx.lending.book import read_book
from perpx.lending.cascade import CascadeParams, run_cascade
from perpx.lending.crash import CrashParams, run_crash
from perpx.lending.explain import explain_account
from perpx.lending.report import write_report

lending_app = typer.Typer(
    help="Secured loans: the loan book's report and the collateral-crash scenario.", no_args_is_help=True
)


@lending_app.command("report")
def report_command(
    data: Annotated[
        Path, typer.Option("--data", help="The venue's data directory (config.toml, journal.log).")
    ],
    out: Annotated[
        Path | None, typer.Option("--out", help="Where to write the files (default DATA/reports).")
    ] = None,
) -> None:
    """The loan book: outstanding by asset, LTV distribution, interest income, liquidations, bad debt."""
    try:
        book = read_book(data)
    except (RecoveryError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    json_path, html_path = write_report(book, out if out is not None else data / "reports")
    typer.echo(f"{book.open_loans} open loans, {len(book.liquidations)} liquidations")
    typer.echo(f"wrote {json_path}")
    typer.echo(f"wrote {html_path}")


@lending_app.command("crash")
def crash_command(
    data: Annotated[Path, typer.Option("--data", help="A new (empty or missing) data directory to write.")],
    loans: Annotated[int, typer.Option(min=1, max=100_000, help="How many loans.")] = 500,
    drop: Annotated[str, typer.Option(help="The fall, as a share of the start price.")] = "0.30",
    minutes: Annotated[int, typer.Option(min=1, max=1440, help="How long the fall takes.")] = 10,
    stale_from_s: Annotated[
        int | None, typer.Option(help="One index source goes quiet this many seconds into the fall ...")
    ] = None,
    stale_until_s: Annotated[int, typer.Option(help="... until this many seconds into it.")] = 0,
) -> None:
    """500 loans at LTVs from 30% to 78%, then BTC falls 30% in ten minutes (and holds the low)."""
    if data.exists() and any(data.iterdir()):
        typer.echo(f"error: {data} is not empty; the scenario writes a new data directory", err=True)
        raise typer.Exit(2)
    try:
        silent = None if stale_from_s is None else (stale_from_s, stale_until_s)
        summary = run_crash(data, CrashParams(loans=loans, drop=drop, minutes=minutes, okx_silent=silent))
    except (RecoveryError, OSError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(json.dumps(summary.to_json(), sort_keys=True))


@lending_app.command("cascade")
def cascade_command(
    data: Annotated[Path, typer.Option("--data", help="A new (empty or missing) data directory to write.")],
    traders: Annotated[int, typer.Option(min=1, max=10_000, help="Accounts margined by BTC alone.")] = 100,
    drop: Annotated[str, typer.Option(help="The fall of BTC, as a share of the start price.")] = "0.30",
    minutes: Annotated[int, typer.Option(min=1, max=1440, help="How long the fall takes.")] = 10,
    max_leverage: Annotated[
        int, typer.Option(min=2, max=100, help="The most leveraged trader's leverage.")
    ] = 10,
    fund: Annotated[str, typer.Option(help="The insurance fund's USDT at the start.")] = "200000",
) -> None:
    """Multi-Assets Mode cascade: traders margined by BTC alone (4 in 5 long BTCUSDT) while BTC falls."""
    if data.exists() and any(data.iterdir()):
        typer.echo(f"error: {data} is not empty; the scenario writes a new data directory", err=True)
        raise typer.Exit(2)
    try:
        params = CascadeParams(
            traders=traders, drop=drop, minutes=minutes, max_leverage=max_leverage, fund=fund
        )
        summary = run_cascade(data, params)
    except (RecoveryError, OSError, ValueError, ArithmeticError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(json.dumps(summary.to_json(), sort_keys=True))


@lending_app.command("explain")
def explain_command(
    data: Annotated[Path, typer.Option("--data", help="The venue's data directory.")],
    account: Annotated[int, typer.Option("--account", min=0, help="The borrower's account id.")],
) -> None:
    """Each margin call and liquidation of the account's loans, with the formulas and every step."""
    try:
        lines = explain_account(data, account)
    except (RecoveryError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if not lines:
        typer.echo(f"account {account} had no loan margin call or liquidation in {data}")
        return
    for line in lines:
        typer.echo(line)
