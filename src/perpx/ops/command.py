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

from perpx.engine.config import market_params
from perpx.journal.store import RecoveryError, read_config
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
        current = market_params(spec, config.settlement.atom)
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
