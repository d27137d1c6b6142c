"""``perpx proposals dry-run``: the proposal dry run offline, on a data directory's config.

The current values are the data directory's ``config.toml`` (changes applied on the live venue
since are in its journal, not in the file: ``GET /admin/v1/markets/SYMBOL/params`` shows them);
the proposed values are ``--param name=value``, checked as the venue would check them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from perpx.engine.params import param_texts
from perpx.journal.store import RecoveryError, read_config
from perpx.ops.incident import (
    cut_at,
    moment_figures,
    parse_time_ns,
    render_html,
    replay_copy,
    time_text,
    timeline,
)
from perpx.ops.proposals import (
    COMPARED,
    SCENARIOS_DIR,
    ProposalError,
    check_params,
    dry_run,
    shipped_scenarios,
)

proposals_app = typer.Typer(help="Staged parameter changes: dry runs offline.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True, highlight=False)
    return typer.Exit(2)


@proposals_app.command("dry-run")
def dry_run_command(
    data: Annotated[Path, typer.Option(help="Data directory holding config.toml.")],
    symbol: Annotated[str, typer.Option(help="The market, e.g. BTCUSDT.")],
    param: Annotated[list[str], typer.Option(help="name=value in the config file's names; repeatable.")],
    scenario: Annotated[
        list[str] | None, typer.Option(help="Risk lab scenario name; repeatable. Default: every shipped one.")
    ] = None,
    scenarios_dir: Annotated[Path, typer.Option(help="Where the scenarios are.")] = SCENARIOS_DIR,
    out: Annotated[Path | None, typer.Option(help="Also write the comparison here as JSON.")] = None,
) -> None:
    """Run scenarios with the config's values and with the proposed ones; print the comparison."""
    try:
        config = read_config(data)
    except RecoveryError as exc:
        raise _fail(str(exc)) from None
    specs = {str(m): spec for m, spec in config.markets.items()}
    spec = specs.get(symbol.upper())
    if spec is None:
        raise _fail(f"no market {symbol!r} in {data}; listed: {', '.join(specs)}")
    values: dict[str, object] = {}
    for item in param:
        name, sep, value = item.partition("=")
        if not sep:
            raise _fail(f"--param {item!r}: write name=value, like max_open_orders=50")
        values[name.strip()] = value.strip()
    try:
        proposed = check_params(spec, config.settlement.atom, values)
        current = param_texts(spec, config.settlement.atom)
        names = scenario or shipped_scenarios(scenarios_dir)
        result = dry_run(spec.market, {k: current[k] for k in proposed}, proposed, names, scenarios_dir)
    except ProposalError as exc:
        raise _fail(str(exc)) from None
    table = Table("scenario", "figure", "current", "proposed")
    for name, row in result["results"].items():
        if not row.get("applicable", False):
            table.add_row(name, "-", row.get("why", row.get("error", "")), "")
            continue
        for key in COMPARED:
            now, then = row["current"], row["proposed"]
            table.add_row(
                name, key, str(now.get(key, now.get("error"))), str(then.get(key, then.get("error")))
            )
    console.print(table)
    if out is not None:
        out.write_text(json.dumps(result, indent=1))
        console.print(f"comparison written to {out}")


incident_app = typer.Typer(
    help="Incidents: the venue as it was at a moment, and an HTML timeline of a window.", no_args_is_help=True
)


@incident_app.command("replay")
def incident_replay(
    data: Annotated[
        Path, typer.Option(help="Data directory holding config.toml and journal.log (only read).")
    ],
    out: Annotated[
        Path, typer.Option(help="New directory: the journal through the moment and a snapshot there.")
    ],
    until_seq: Annotated[int | None, typer.Option(help="The last journal record to keep.")] = None,
    until_time: Annotated[
        str | None,
        typer.Option(help="Keep records at or before this venue time (ms since the epoch, or ISO 8601)."),
    ] = None,
) -> None:
    """Rebuild the venue as it was at a moment into OUT; print the metrics' figures there.

    Then: `perpx explain --data OUT --account N`, `perpx replay OUT`, or
    `perpx serve --data OUT --rebuild-read-models` for its APIs and /metrics.
    """
    replay_moment(data, out, until_seq, until_time)


def replay_moment(data: Path, out: Path | None, until_seq: int | None, until_time: str | None) -> None:
    """``perpx replay --data DIR --until-seq N | --until-time T --out SNAPSHOT`` (the issue's
    spelling) and ``perpx incident replay``: the venue at a moment, written to ``out``."""
    if out is None:
        raise _fail("give --out: the new directory for the venue at that moment")
    if (until_seq is None) == (until_time is None):
        raise _fail("give exactly one of --until-seq and --until-time")
    try:
        until_ns = None if until_time is None else parse_time_ns(until_time)
        seq = cut_at(data, until_seq=until_seq, until_ns=until_ns)
        engine, state_hash = replay_copy(data, out, seq)
    except (RecoveryError, ValueError) as exc:
        raise _fail(str(exc)) from None
    console.print(f"record        {seq}")
    console.print(f"venue time    {time_text(engine.now_ns)}")
    console.print(f"state hash    {state_hash}")
    table = Table("symbol", "index", "mark", "open interest", "sources live/quorum", "near liquidation")
    for row in moment_figures(engine):
        quorum = "-" if row.sources_live is None else f"{row.sources_live}/{row.sources_min}"
        table.add_row(
            row.symbol,
            row.index or "-",
            row.mark or "-",
            row.open_interest,
            quorum,
            str(row.near_liquidation),
        )
    console.print(table)
    console.print(f"written to {out}: perpx explain --data {out} --account N")


@incident_app.command("report")
def incident_report(
    data: Annotated[
        Path, typer.Option(help="Data directory holding config.toml and journal.log (only read).")
    ],
    start: Annotated[
        str, typer.Option("--from", help="Window start: venue time (ms since the epoch, or ISO 8601).")
    ],
    end: Annotated[str, typer.Option("--to", help="Window end, inclusive.")],
    out: Annotated[Path, typer.Option(help="The HTML file to write.")] = Path("incident.html"),
) -> None:
    """Write an HTML timeline of commands, liquidations, price inputs and alerts that would have fired."""
    try:
        found = timeline(data, parse_time_ns(start), parse_time_ns(end))
    except (RecoveryError, ValueError) as exc:
        raise _fail(str(exc)) from None
    out.write_text(render_html(data, found))
    console.print(
        f"{len(found.entries)} entries, {sum(found.commands.values())} commands,"
        f" {len(found.alerts())} alert(s) would have fired; written to {out}"
    )
