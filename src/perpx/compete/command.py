"""``perpx compete COMPETITION.toml --out DIR``: run a competition and write its leaderboard and report."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import typer


def compete_command(
    competition: Annotated[Path, typer.Argument(help="The competition file (TOML).")],
    out: Annotated[
        Path, typer.Option(help="Where the leaderboard, curves, report and venue go (must be new).")
    ],
) -> None:
    """Run the participants on the same seeded market, each through an agent key with the same limits."""
    from perpx.compete.config import CompetitionError, load_competition
    from perpx.compete.participant import ParticipantError
    from perpx.compete.report import write_outputs
    from perpx.compete.runner import run_competition

    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("mcp").setLevel(logging.WARNING)
    if out.exists() and any(out.iterdir()):
        raise typer.BadParameter(f"{out} is not empty; give a new directory")
    try:
        comp = load_competition(competition)
        result = asyncio.run(run_competition(comp, out / "venue"))
    except (CompetitionError, ParticipantError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    written = write_outputs(comp, result, out)
    for rank, score in enumerate(result.leaderboard, start=1):
        typer.echo(
            f"{rank}. {score.name:<20} pnl {score.pnl:>12}  return {score.return_pct:>8}%  "
            f"trades {score.trades:>4}  refusals {score.limit_refusals}"
        )
    typer.echo("wrote " + ", ".join(str(p) for p in written))
