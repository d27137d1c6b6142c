"""``/admin/v1/proposals``: staged parameter changes over HTTP (:mod:`perpx.ops.proposals`).

Who acts is ``X-PERPX-OPERATOR`` (as every admin route; ``admin`` when absent), so four eyes
means two operator names: the approver must differ from the proposer. The dry run runs risk lab
scenarios in a worker thread (seconds per scenario; the event loop keeps serving) with the
market's values now, read from the engine, against the proposed ones. An apply with ``atMs`` in
the venue's future is scheduled: :func:`run_scheduler`, started and stopped with the venue (this
module's ``on_start`` and ``on_stop``), applies it once the venue clock reaches it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Security
from pydantic import BaseModel, Field, StrictInt

from perpx.engine.commands import ChangeMarketParams
from perpx.engine.config import MarketSpec
from perpx.engine.engine import Engine
from perpx.engine.events import CommandRejected
from perpx.engine.params import param_texts, preview
from perpx.ops.proposals import (
    Proposal,
    ProposalBook,
    ProposalError,
    check_params,
    dry_run,
    shipped_scenarios,
)
from perpx.server.admin import _AdminRoute, _token_doc, operator_of
from perpx.server.context import ServerContext
from perpx.server.errors import ApiError
from perpx.server.rest import ctx_of

log = logging.getLogger("perpx.ops.proposals")

router = APIRouter(
    prefix="/admin/v1/proposals",
    tags=["admin: staged parameter changes (perpx)"],
    route_class=_AdminRoute,
    dependencies=[Security(_token_doc)],
)


class NewProposal(BaseModel):
    symbol: str = Field(description="The market, e.g. BTCUSDT.")
    params: dict[str, Any] = Field(
        description="Parameter -> new value (config-file names; decimals as strings)."
    )
    reason: str = Field(max_length=500, description="Why; kept on the proposal and its trail.")
    cancelOffGrid: bool = Field(  # noqa: N815
        default=False,
        description="At apply, cancel the resting orders the new filters refuse (else they refuse the change).",
    )


class DryRunRequest(BaseModel):
    scenarios: list[str] | None = Field(
        default=None, description="Risk lab scenario names; every shipped scenario when absent."
    )


class Rejection(BaseModel):
    reason: str = Field(max_length=500, description="Why it is rejected.")


def attach(app: FastAPI) -> None:
    """Serve the proposal routes on the admin app (the proposals are ``ctx.components.proposals``)."""
    app.include_router(router)


def _book(request: Request) -> ProposalBook:
    return ctx_of(request).components.proposals


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _api(exc: ProposalError) -> ApiError:
    return ApiError(exc.status, exc.code, str(exc))


def _symbol(request: Request, symbol: str) -> str:
    specs = ctx_of(request).specs
    upper = symbol.upper()
    if upper not in specs:
        raise ApiError(400, -1121, f"Invalid symbol {symbol!r}; listed: {', '.join(specs)}")
    return upper


async def _current(request: Request, symbol: str) -> dict[str, str]:
    ctx = ctx_of(request)

    def read(engine: Engine) -> dict[str, str]:
        return param_texts(engine.specs[ctx.specs[symbol].market], ctx.atom)

    return await ctx.seq.query(read)


async def _venue_check(request: Request, proposal: Proposal) -> dict[str, Any]:
    """What the proposal would do to the venue now (:func:`perpx.engine.params.preview`)."""
    ctx = ctx_of(request)
    market = ctx.specs[proposal.symbol].market
    seen = await ctx.seq.query(
        lambda engine: preview(engine, market, proposal.params, proposal.cancel_off_grid)
    )
    return {
        "refused": None if seen.refused is None else {"code": seen.refused[0], "message": seen.refused[1]},
        "ordersOffFilter": seen.orders_off_filter,
        "ordersCanceled": seen.orders_off_filter if proposal.cancel_off_grid and seen.refused is None else 0,
        "conditionalOrdersOffGrid": seen.conditionals_off_grid,
        "accountsUnderMaintenance": seen.under_maintenance,
        "leverageClamped": seen.leverage_clamped,
        "freshIndexSources": seen.fresh_sources,
    }


@router.get("")
async def list_proposals(request: Request) -> list[dict[str, Any]]:
    """Every proposal, oldest first, with its state and trail."""
    now = _now_ms()
    return [p.as_json(now) for p in sorted(_book(request).proposals.values(), key=lambda p: p.id)]


@router.post("")
async def propose(request: Request, body: NewProposal) -> dict[str, Any]:
    """Record a proposal (nothing changes); its values are checked as the venue would check them now."""
    symbol = _symbol(request, body.symbol)
    ctx = ctx_of(request)

    def read(engine: Engine) -> MarketSpec:
        return engine.specs[ctx.specs[symbol].market]

    spec = await ctx.seq.query(read)
    try:
        params = check_params(spec, ctx.atom, body.params)
        proposal = _book(request).propose(
            symbol, params, body.reason, operator_of(request), _now_ms(), body.cancelOffGrid
        )
    except ProposalError as exc:
        raise _api(exc) from None
    return proposal.as_json(_now_ms())


@router.get("/{proposal_id}")
async def get_proposal(request: Request, proposal_id: int) -> dict[str, Any]:
    try:
        return _book(request).get(proposal_id).as_json(_now_ms())
    except ProposalError as exc:
        raise _api(exc) from None


@router.post("/{proposal_id}/dry-run")
async def dry_run_proposal(
    request: Request, proposal_id: int, body: DryRunRequest | None = None
) -> dict[str, Any]:
    """Run scenarios with the current and the proposed values; store and return the comparison."""
    book = _book(request)
    try:
        proposal = book.get(proposal_id)
        current = await _current(request, proposal.symbol)
        names = body.scenarios if body is not None and body.scenarios else shipped_scenarios()
        result = await asyncio.to_thread(
            dry_run, proposal.symbol, {k: current[k] for k in proposal.params}, proposal.params, names
        )
        result["venue"] = await _venue_check(request, proposal)
        book.record_dry_run(proposal, result, operator_of(request), _now_ms())
    except ProposalError as exc:
        raise _api(exc) from None
    return proposal.as_json(_now_ms())


@router.post("/{proposal_id}/approve")
async def approve(request: Request, proposal_id: int) -> dict[str, Any]:
    """Approve a dry-run proposal: by an operator other than its proposer."""
    book = _book(request)
    try:
        proposal = book.get(proposal_id)
        book.approve(proposal, operator_of(request), _now_ms())
    except ProposalError as exc:
        raise _api(exc) from None
    return proposal.as_json(_now_ms())


@router.post("/{proposal_id}/reject")
async def reject(request: Request, proposal_id: int, body: Rejection) -> dict[str, Any]:
    """End a proposal that is not applied; nothing changes."""
    book = _book(request)
    try:
        proposal = book.get(proposal_id)
        book.reject(proposal, operator_of(request), body.reason, _now_ms())
    except ProposalError as exc:
        raise _api(exc) from None
    return proposal.as_json(_now_ms())


class ApplyRequest(BaseModel):
    atMs: StrictInt | None = Field(  # noqa: N815
        default=None,
        description="Venue time (ms) to apply at; now when absent or already past.",
    )


@router.post("/{proposal_id}/apply")
async def apply(request: Request, proposal_id: int, body: ApplyRequest | None = None) -> dict[str, Any]:
    """Apply an approved proposal now, or schedule it at a venue time (``atMs``)."""
    ctx = ctx_of(request)
    book = ctx.components.proposals
    operator = operator_of(request)
    try:
        proposal = book.get(proposal_id)
        book.check_apply(proposal, _now_ms())
        venue_ms = await ctx.seq.query(lambda engine: engine.now_ns // 1_000_000)
        if body is not None and body.atMs is not None and body.atMs > venue_ms:
            book.schedule(proposal, body.atMs, operator, _now_ms())
            return proposal.as_json(_now_ms())
    except ProposalError as exc:
        raise _api(exc) from None
    await apply_now(ctx, book, proposal, operator)
    return proposal.as_json(_now_ms())


async def apply_now(ctx: ServerContext, book: ProposalBook, proposal: Proposal, operator: str) -> None:
    """Submit the proposal's ``ChangeMarketParams``; a refusal is on its trail and raised as an ApiError."""
    market = ctx.specs[proposal.symbol].market
    applied = await ctx.seq.submit(
        lambda ts: ChangeMarketParams(
            ts_ns=ts,
            market=market,
            params=dict(proposal.params),
            cancel_off_grid=proposal.cancel_off_grid,
            operator=f"{operator} (proposal {proposal.id}, approved by {proposal.approver})",
            wall_ns=time.time_ns(),
        )
    )
    own = applied.events.own
    if own and isinstance(own[0], CommandRejected):
        proposal.apply_at_ms = None
        book.apply_failed(proposal, operator, own[0].message, _now_ms())
        raise ApiError(400, own[0].code, f"the venue refused the change: {own[0].message}")
    book.applied(proposal, operator, applied.seq, _now_ms())


SCHEDULER_POLL_S = 1.0
"""How often the scheduler reads the venue clock for proposals due."""

_schedulers: dict[int, asyncio.Task[None]] = {}
"""The running scheduler of each venue (by ``id(ctx)``)."""


async def apply_due(ctx: ServerContext) -> list[int]:
    """Apply the scheduled proposals venue time has reached (as operator ``scheduler``); their ids."""
    book = ctx.components.proposals
    venue_ms = await ctx.seq.query(lambda engine: engine.now_ns // 1_000_000)
    done = []
    for proposal in book.due(venue_ms, _now_ms()):
        try:
            await apply_now(ctx, book, proposal, "scheduler")
        except ApiError as exc:
            log.error("scheduled proposal %d was not applied: %s", proposal.id, exc)
        else:
            done.append(proposal.id)
    return done


async def run_scheduler(ctx: ServerContext) -> None:
    """:func:`apply_due` every :data:`SCHEDULER_POLL_S` until the venue stops answering."""
    while True:
        await asyncio.sleep(SCHEDULER_POLL_S)
        try:
            await apply_due(ctx)
        except ApiError as exc:  # stopping: nothing more to apply
            log.info("proposal scheduler stopped: %s", exc)
            return


async def on_start(ctx: ServerContext) -> None:
    _schedulers[id(ctx)] = asyncio.get_running_loop().create_task(run_scheduler(ctx), name="proposals")


async def on_stop(ctx: ServerContext) -> None:
    task = _schedulers.pop(id(ctx), None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
