"""``GET /admin/v1/risklab/runs`` and ``.../runs/{name}/report``: the risk lab's runs in one directory.

A run is a directory that ``perpx simulate ... --out DIR`` wrote (it holds ``summary.json``); the
directory of runs is ``PERPX_RISKLAB_DIR`` (default ``./risklab``, from where ``perpx serve`` runs).
The list reads each run's scenario name and assertion results; the report is the run's own
self-contained ``report.html``. A run name is one path segment of letters, digits, ``._-``: nothing
outside the directory can be named.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse

from perpx.server.admin import require_admin
from perpx.server.errors import ApiError

router = APIRouter(
    prefix="/admin/v1", tags=["operator console (perpx)"], dependencies=[Depends(require_admin)]
)

RUN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
"""A run's directory name: one segment, never ``.`` or ``..``."""

MAX_RUNS = 500
"""The list shows at most this many runs (newest first)."""


def runs_dir() -> Path:
    """The directory of runs: ``PERPX_RISKLAB_DIR``, else ``./risklab``."""
    return Path(os.environ.get("PERPX_RISKLAB_DIR") or "risklab")


def _summary(run: Path) -> dict[str, Any] | None:
    try:
        loaded = json.loads((run / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def run_row(run: Path) -> dict[str, Any] | None:
    """One run's line in the list; ``None`` when ``run`` holds no readable ``summary.json``."""
    summary = _summary(run)
    if summary is None:
        return None
    assertions = summary.get("assertions")
    checks = assertions if isinstance(assertions, list) else []
    failed = [a.get("name") for a in checks if isinstance(a, dict) and not a.get("passed")]
    return {
        "name": run.name,
        "scenario": summary.get("scenario"),
        "modifiedMs": int((run / "summary.json").stat().st_mtime * 1000),
        "assertions": len(checks),
        "failed": failed,
        "hasReport": (run / "report.html").is_file(),
    }


@router.get("/risklab/runs")
async def runs() -> dict[str, Any]:
    """The runs under the directory, newest first (an absent directory is an empty list, named)."""
    base = runs_dir()
    rows: list[dict[str, Any]] = []
    if base.is_dir():
        for child in base.iterdir():
            row = run_row(child) if child.is_dir() else None
            if row is not None:
                rows.append(row)
    rows.sort(key=lambda r: (-r["modifiedMs"], r["name"]))
    return {"directory": str(base.resolve()), "runs": rows[:MAX_RUNS]}


@router.get("/risklab/runs/{name}/report", response_class=HTMLResponse)
async def report(name: Annotated[str, PathParam(max_length=128)]) -> HTMLResponse:
    """The run's ``report.html`` (self-contained: plotly is inline)."""
    if not RUN_NAME.fullmatch(name) or name in (".", ".."):
        raise ApiError(
            400, -1100, f"Illegal characters found in parameter 'name': {name!r} is not a run name."
        )
    path = runs_dir() / name / "report.html"
    if not path.is_file():
        raise ApiError(404, -5000, f"run {name!r} has no report.html in {runs_dir().resolve()}")
    return HTMLResponse(path.read_text(errors="replace"))
