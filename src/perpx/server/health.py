"""Liveness and readiness, on both listeners: ``GET /health`` and ``GET /ready``.

=========  ======  ===============================================================================
route      status  meaning
=========  ======  ===============================================================================
/health    200     the process serves HTTP; nothing else is checked, so a supervisor restarts the
                   process only when this fails (``{"status": "alive"}``)
/ready     200     the venue takes traffic: it is serving (not starting or stopping), the engine
                   runs, the journal takes writes, and every read model has applied the last
                   journal record (``{"status": "ready", "lastSeq": N}``)
/ready     503     one of those is not so: ``{"status": "not ready", "lastSeq": N | null,
                   "reasons": [...]}``, one sentence per failed condition
=========  ======  ===============================================================================

``/fapi/v1/ping`` keeps Binance's meaning (the REST API answers) and is not a readiness check.

How the conditions are read
---------------------------
The conditions in :data:`CONDITIONS` are read on the event loop; each returns ``None`` or the
reason it fails, so a new state of the venue is one more function in that tuple. The sequencer's
state comes from :meth:`~perpx.server.sequencer.RequestSequencer.status` (one immutable value, safe to
read from any thread). Read-model lag is read in the sequencer's pipeline, between two batches (a
sequencer query), where every listener has seen every applied batch: each persistent component's
``resume_seq()`` must equal the journal's last record. Read anywhere else it would race the
sequencer and flap under load. The query also proves the sequencer's pipeline answers; it has
:data:`QUERY_TIMEOUT_S` to do so.

A flood of ``/ready`` requests costs the sequencer at most one query at a time: concurrent
requests share the one in flight (:class:`ReadinessProbe`). Neither route is charged request weight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from perpx.engine.engine import Engine
from perpx.server.context import ServerContext
from perpx.server.errors import ApiError
from perpx.server.rest import ctx_of
from perpx.server.sequencer import SequencerState

QUERY_TIMEOUT_S = 2.0
"""The sequencer must answer the readiness query within this; a venue that cannot is not ready."""

Condition = Callable[[ServerContext], str | None]
"""One readiness condition, read on the event loop: ``None`` when it holds, else why not."""


def serving(ctx: ServerContext) -> str | None:
    """The venue has started and is not stopping."""
    return None if ctx.serving else "the venue is starting or stopping"


def engine_running(ctx: ServerContext) -> str | None:
    """The sequencer has started and has not stopped (on a failure, or for a shutdown)."""
    if ctx.sequencer is None:
        return "the venue is not open"
    status = ctx.sequencer.status()
    if status.state is SequencerState.STARTING:
        return "the sequencer has not started"
    if status.state is SequencerState.STOPPED:
        return f"the engine stopped: {status.reason}"
    return None


def journal_writable(ctx: ServerContext) -> str | None:
    """The last journal write succeeded (after a failed one, commands are refused until one does)."""
    if ctx.sequencer is None:
        return "the venue is not open"
    status = ctx.sequencer.status()
    if status.state is SequencerState.JOURNAL_NOT_WRITABLE:
        return f"the journal is not writable: {status.reason}"
    return None


CONDITIONS: tuple[Condition, ...] = (serving, engine_running, journal_writable)
"""Read in order; the read-model lag is read after them, in the sequencer's pipeline."""


@dataclass(frozen=True, slots=True)
class Readiness:
    """The answer of ``GET /ready``."""

    last_seq: int | None
    reasons: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return not self.reasons

    def body(self) -> dict[str, Any]:
        if self.ready:
            return {"status": "ready", "lastSeq": self.last_seq}
        return {"status": "not ready", "lastSeq": self.last_seq, "reasons": self.reasons}


def lagging(ctx: ServerContext, last_seq: int) -> list[str]:
    """Why each persistent component is not at ``last_seq`` (in the sequencer's pipeline, between batches)."""
    reasons: list[str] = []
    for name, component in ctx.components.named().items():
        failure = getattr(component, "failure", None)
        if failure is not None:
            reasons.append(f"read model '{name}' stopped: {failure}; restart the venue to catch it up")
            continue
        seq = component.resume_seq()
        if seq is not None and seq != last_seq:
            reasons.append(f"read model '{name}' is at journal record {seq}, the journal at {last_seq}")
    return reasons


async def readiness(ctx: ServerContext) -> Readiness:
    """Read every condition; see the module docstring."""
    for condition in CONDITIONS:
        reason = condition(ctx)
        if reason is not None:
            last = ctx.sequencer.last_seq if ctx.sequencer is not None else None
            return Readiness(last, [reason])

    def read(engine: Engine) -> tuple[int, list[str]]:
        last_seq = ctx.seq.last_seq
        return last_seq, lagging(ctx, last_seq)

    try:
        last_seq, reasons = await ctx.seq.query(read, timeout_s=QUERY_TIMEOUT_S)
    except ApiError as exc:
        return Readiness(ctx.seq.last_seq, [f"the sequencer did not answer: {exc.msg}"])
    return Readiness(last_seq, reasons)


class ReadinessProbe:
    """The ``health`` component: one readiness check in flight at a time, shared by its callers."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self._inflight: asyncio.Task[Readiness] | None = None

    def resume_seq(self) -> int | None:
        return None

    def on_applied(self, batch: list[Any]) -> None:
        return None

    def close(self) -> None:
        return None

    async def check(self) -> Readiness:
        """The current readiness; joins a check already running on this loop."""
        inflight = self._inflight
        if inflight is None or inflight.done() or inflight.get_loop() is not asyncio.get_running_loop():
            inflight = self._inflight = asyncio.ensure_future(readiness(self.ctx))
        return await asyncio.shield(inflight)


router = APIRouter(tags=["health (perpx)"])


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: 200 whenever the process serves HTTP."""
    return {"status": "alive"}


@router.get("/ready", responses={503: {"description": "Not ready; `reasons` says why."}})
async def ready(request: Request) -> JSONResponse:
    """Readiness: 200 when the venue takes traffic, else 503 with the reasons."""
    probe = ctx_of(request).components.health
    answer = await probe.check()
    return JSONResponse(answer.body(), status_code=200 if answer.ready else 503)
