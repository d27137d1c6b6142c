"""``perpx audit verify --data DIR``: check the agents' hash-chained audit log of a venue."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from perpx.agents.audit import AUDIT_FILE, verify_chain

audit_app = typer.Typer(help="The agents' audit log.", no_args_is_help=True)


@audit_app.command("verify")
def verify(data: Annotated[Path, typer.Option(help="The venue's data directory.")]) -> None:
    """Check every link of DATA/agents-audit.jsonl; exit 1 and name the first broken entry if any."""
    report = verify_chain(data / AUDIT_FILE)
    typer.echo(report.line())
    if not report.ok:
        raise typer.Exit(1)
