"""``GET /admin/v1/liquidations/explained``: each liquidation and ADL record as ``perpx explain`` prints it.

The records come from the admin log (the read model that keeps every explanation record, with the
index and mark computations of its markets just before it), and the text is
:func:`perpx.explain.render`'s, so the console and the command line can never disagree: the same
Inputs lines, formula values, actions and result. (A record the venue wrote before a restart, ahead
of its markets' next price computation, has no Inputs lines; ``perpx explain`` has them.)
"""

from __future__ import annotations

import io
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from rich.console import Console

from perpx.engine.events import Event
from perpx.explain import Record, render
from perpx.server.admin import require_admin
from perpx.server.rest import ctx_of
from perpx.server.wire import ms

router = APIRouter(
    prefix="/admin/v1", tags=["operator console (perpx)"], dependencies=[Depends(require_admin)]
)

TEXT_WIDTH = 140
"""Columns of the rendered text (the console shows it in a monospace block)."""


@router.get("/liquidations/explained")
async def explained(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=200, description="The newest N records.")] = 50,
) -> dict[str, Any]:
    """The newest records, newest first: who, what, when, and the text of ``perpx explain`` for each."""
    ctx = ctx_of(request)
    records = ctx.components.adminlog.explained(limit)
    answer = []
    for seq, event, inputs in reversed(records):
        text = io.StringIO()
        console = Console(file=text, width=TEXT_WIDTH, color_system=None, force_terminal=False)
        prices: dict[str, Event] = dict(inputs)
        render(console, ctx.config, [Record(seq, event, prices)], int(event.account_id))
        adl = sorted({leg.account_id for step in event.steps for leg in getattr(step, "legs", ())})
        answer.append(
            {
                "seq": seq,
                "time": ms(event.ts_ns),
                "accountId": int(event.account_id),
                "scope": event.scope,
                "symbol": event.market,
                "outcome": event.outcome,
                "steps": [type(step).__name__.removesuffix("Step").lower() for step in event.steps],
                "adlCounterparties": [int(a) for a in adl],
                "explanation": text.getvalue(),
            }
        )
    return {"records": answer}
