"""``perpx algo validate``: check a strategy document and print every problem with its path.

Registered on the ``perpx algo`` group through :data:`perpx.execution.cli.COMMAND_MODULES`.
Exit codes: 0 valid, 1 invalid (each problem on its own line), 2 unreadable file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from perpx.execution.cli import algo_app

from .validate import DocumentInvalid, check, parse_file


@algo_app.command("validate")
def validate_command(
    file: Annotated[Path, typer.Argument(help="A strategy document (.toml or .json).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Check a strategy document against the schema and its references; list every problem."""
    try:
        data = parse_file(file)
    except DocumentInvalid as exc:
        _report(file, [(e.path, e.message) for e in exc.errors], as_json)
        raise typer.Exit(2) from exc
    errors = [(e.path, e.message) for e in check(data)]
    _report(file, errors, as_json)
    if errors:
        raise typer.Exit(1)


def _report(file: Path, errors: list[tuple[str, str]], as_json: bool) -> None:
    if as_json:
        body = {
            "file": str(file),
            "valid": not errors,
            "errors": [{"path": p, "message": m} for p, m in errors],
        }
        typer.echo(json.dumps(body))
        return
    if not errors:
        typer.echo(f"{file}: valid")
        return
    for path, message in errors:
        typer.echo(f"{path}: {message}")
    typer.echo(f"{file}: {len(errors)} problem(s)", err=True)
