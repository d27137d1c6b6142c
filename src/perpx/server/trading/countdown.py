"""``POST /fapi/v1/countdownCancelAll``: a dead man's switch that cancels a market's orders.

Binance's rules: a client sends ``symbol`` and ``countdownTime`` (ms) and repeats the call (a
heartbeat) before it runs out; if no heartbeat arrives in time, every open order of the account in
that market is cancelled. ``countdownTime=0`` stops the countdown. Binance checks its countdowns
about every 10 ms; a countdown here ends on the sequencer's next turn after its deadline.

The cancel is an ordinary command: :class:`Countdowns` is a sequencer driver
(:class:`perpx.server.sequencer.Driver`), woken by the server's wall clock at the earliest
deadline, and it applies ``CancelAllOrders`` and ``CancelAllConditionalOrders`` through the
venue's one sequencer, journaled before anything is answered, like the cancel-all routes. Deadlines
are wall-clock time and durable (``DATA/countdowns.json``, written before the route answers): a
restart keeps them, and one that ran out while the venue was down cancels on the first turn after
the start. A dead man's switch that a restart silently disarmed would leave the orders of a client
that vanished open forever (see :mod:`perpx.server.countdowns`).

Invariant: a countdown fires at most once; a heartbeat after it fired starts a new one.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from perpx.server import wire
from perpx.server.context import ServerContext
from perpx.server.countdowns import COUNTDOWNS_FILE, Countdowns
from perpx.server.trading.params import auth, spec_of

router = APIRouter(tags=["trading (signed)"])

MAX_COUNTDOWN_MS = 24 * 3600 * 1000
"""The longest countdown accepted (a day); longer asks are ``-1102``."""


def countdowns_of(ctx: ServerContext) -> Countdowns:
    """The venue's countdowns (registered as a driver at start)."""
    countdowns: Countdowns = ctx.components.countdowns
    return countdowns


@router.post("/fapi/v1/countdownCancelAll")
async def countdown_cancel_all(request: Request) -> dict[str, Any]:
    """Cancel every open order of ``symbol`` unless this is called again within ``countdownTime`` ms
    (``0`` stops the countdown); answers ``{"symbol", "countdownTime"}``."""
    ctx, account_id, params = await auth(request, "trade", 10)
    spec = spec_of(ctx, params.values)
    countdown_ms = wire.int_param(params.values, "countdownTime", lo=0, hi=MAX_COUNTDOWN_MS)
    countdowns_of(ctx).arm(account_id, spec.market, countdown_ms, ctx.seq.wall_ns())
    return {"symbol": str(spec.market), "countdownTime": str(countdown_ms)}


async def on_start(ctx: ServerContext) -> None:
    countdowns = countdowns_of(ctx)
    countdowns.open(ctx.data_dir / COUNTDOWNS_FILE)
    ctx.seq.add_driver(countdowns)
