"""Agent routes: admin (create agents, kill switches, approvals, audit) and the agent's own (preview).

============================================  =====================================================
route                                         what it does
============================================  =====================================================
``POST /admin/v1/agents``                     create an agent key on an account with a policy
``GET /admin/v1/agents``                      every agent and its policy (never a secret)
``POST /admin/v1/agents/{agentId}/kill``      ``{"on", "flatten"}``: one agent's kill switch
``POST /admin/v1/kill``                       ``{"on", "flatten"}``: every agent key at once
``GET /admin/v1/agents/{agentId}/audit``      the agent's audit entries and the chain's state
``GET /admin/v1/agents/approvals``            previews waiting for a human approval
``POST /admin/v1/agents/approvals/{token}``   approve one (the agent then places with the token)
``POST /perpx/v1/agent/preview``              signed: the estimate and a single-use preview token
``GET /perpx/v1/agent``                       signed: the caller's agent policy and state
``GET /perpx/v1/leaderboard``                 public: accounts tagged as competitors, by P&L
============================================  =====================================================

Both kill routes answer ``killSeq``: the journal sequence number the switch took effect at (no order
of a killed key is sequenced after it). Refusals of agent orders are in :mod:`perpx.agents.guard` (codes ``-9301`` to ``-9307``); this module's
own refusals are ``-9310`` (an invalid policy or an account that cannot take an agent) and ``-9311``
(an unknown agent or token).
"""

from __future__ import annotations

import json
import secrets
from decimal import Decimal
from functools import partial
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from perpx.agents.audit import verify_chain
from perpx.agents.guard import TYPE_REFUSED, AgentGuard, OrderIntent, agent_guard
from perpx.agents.policy import PolicyError, parse_policy
from perpx.agents.store import Agent
from perpx.engine.commands import CancelAllOrders, OrderType, PlaceOrder, TimeInForce
from perpx.engine.engine import Engine
from perpx.engine.liquidation.insurance import INSURANCE_ACCOUNT
from perpx.engine.values import AccountId, MarketId, Side
from perpx.server import wire
from perpx.server.admin import operator_of, require_admin
from perpx.server.context import ServerContext
from perpx.server.errors import ApiError, mandatory
from perpx.server.rest import ctx_of
from perpx.server.trading.params import auth, lots, order_type_of, side_of, spec_of, ticks

router = APIRouter(tags=["agents (perpx, signed)"])
"""The agents' own routes (public listener)."""
admin_router = APIRouter(tags=["agents (admin)"])
"""The admin routes (admin listener only)."""

POLICY_REFUSED = -9310
UNKNOWN_AGENT = -9311
MAX_BODY_BYTES = 64_000


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(400, POLICY_REFUSED, f"The body is over {MAX_BODY_BYTES} bytes.")
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise ApiError(400, -1102, "The body is not JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, -1102, "The body must be a JSON object.")
    return body


UNGUARDED_ORDER_PATHS = frozenset({("POST", "/fapi/v1/algoOrder")})
"""Routes that create orders without passing :func:`perpx.server.trading.orders.place_order`: an
agent's key is refused there (conditional orders would trigger later, past the guard)."""


class AgentPathGate:
    """ASGI middleware: refuse an agent key on :data:`UNGUARDED_ORDER_PATHS` before the route runs."""

    def __init__(self, app: ASGIApp, ctx: ServerContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (scope["method"], scope["path"]) in UNGUARDED_ORDER_PATHS:
            api_key = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-mbx-apikey"), "")
            key = self.ctx.keys.get(api_key)
            guard = agent_guard(self.ctx)
            agent = None if key is None else guard.agent_of(key.account_id)
            if agent is not None:
                msg = "Agents place LIMIT and MARKET orders only; conditional (algo) orders are not available to agents."
                guard.record(agent, "place_algo_order", "refused", code=TYPE_REFUSED, reason=msg)
                body = json.dumps({"code": TYPE_REFUSED, "msg": msg}).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 400,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def install(app: FastAPI, ctx: ServerContext) -> None:
    """Gate the routes that would let an agent key place orders past the guard."""
    app.add_middleware(AgentPathGate, ctx=ctx)


def _agent(guard: AgentGuard, agent_id: str) -> Agent:
    agent = guard.store.get(agent_id)
    if agent is None:
        raise ApiError(404, UNKNOWN_AGENT, f"No agent {agent_id!r} (GET /admin/v1/agents lists them).")
    return agent


def _switch(body: dict[str, Any]) -> tuple[bool, bool]:
    on, flatten = body.get("on"), body.get("flatten", False)
    if not isinstance(on, bool) or not isinstance(flatten, bool):
        raise ApiError(400, -1102, 'Send {"on": true|false} and optionally {"flatten": true|false}.')
    return on, flatten


@admin_router.post("/admin/v1/agents")
async def create_agent(request: Request) -> dict[str, Any]:
    """Give an account an agent key held to a policy; the secret is shown only in this answer.

    One agent per account: the policy binds the account, so every key and interface of it obeys it.
    """
    require_admin(request)
    ctx = ctx_of(request)
    guard = agent_guard(ctx)
    body = await _body(request)
    account = body.get("accountId")
    name = body.get("name")
    if isinstance(account, bool) or not isinstance(account, int) or not 0 < account <= wire.MAX_ID:
        raise ApiError(
            400, POLICY_REFUSED, "accountId must be the id of a trading account (POST /admin/v1/accounts)."
        )
    if not isinstance(name, str) or not 0 < len(name) <= 64 or not name.isprintable():
        raise ApiError(400, POLICY_REFUSED, "name must be 1 to 64 printable characters.")
    try:
        policy = parse_policy(body, tuple(ctx.specs))
    except PolicyError as exc:
        raise ApiError(400, POLICY_REFUSED, f"Invalid agent policy: {exc}.") from None
    competitor = body.get("competitor", False)
    if not isinstance(competitor, bool):
        raise ApiError(400, POLICY_REFUSED, "competitor must be true or false.")
    account_id = AccountId(account)
    exists = await ctx.seq.query(lambda engine: account_id in engine.accounts)
    if not exists or account_id == INSURANCE_ACCOUNT:
        raise ApiError(
            400, POLICY_REFUSED, f"Account {account} does not exist (POST /admin/v1/accounts opens one)."
        )
    if guard.store.for_account(account_id) is not None:
        raise ApiError(400, POLICY_REFUSED, f"Account {account} already has an agent; one agent per account.")
    capital = await ctx.seq.query(lambda engine: _equity(engine, account_id))
    permissions = ("read",) + (("trade",) if policy.allows("trade") or policy.allows("cancel") else ())
    key = ctx.keys.create(account_id, name, permissions)
    agent = Agent(
        "ag-" + secrets.token_hex(8), key.api_key, account_id, name, policy, False, competitor, capital
    )
    guard.store.add(agent)
    guard.record(agent, "create_agent", "allowed", operator=operator_of(request), policy=policy.as_json())
    return {"agentId": agent.agent_id, "apiKey": key.api_key, "apiSecret": key.secret, **agent.as_json()}


@admin_router.get("/admin/v1/agents")
async def list_agents(request: Request) -> list[dict[str, object]]:
    """Every agent, its policy and kill state (no keys or secrets)."""
    require_admin(request)
    return [agent.as_json() for agent in agent_guard(ctx_of(request)).store.all()]


@admin_router.post("/admin/v1/agents/{agent_id}/kill")
async def kill_agent(request: Request, agent_id: str) -> dict[str, Any]:
    """Turn one agent's kill switch on or off; ``flatten`` also cancels its orders and closes its
    positions with reduce-only market orders."""
    require_admin(request)
    ctx = ctx_of(request)
    guard = agent_guard(ctx)
    agent = _agent(guard, agent_id)
    on, flatten = _switch(await _body(request))
    agent = guard.store.set_killed(agent.agent_id, on)
    kill_seq = await _sequence_point(ctx)
    guard.record(
        agent, "kill", "on" if on else "off", operator=operator_of(request), flatten=flatten, killSeq=kill_seq
    )
    closed = await flatten_account(ctx, guard, agent) if flatten else []
    return {**agent.as_json(), "killSeq": kill_seq, "flattened": closed}


@admin_router.post("/admin/v1/kill")
async def kill_all(request: Request) -> dict[str, Any]:
    """The venue-wide kill switch for every agent key (each agent's own switch is kept as it was)."""
    require_admin(request)
    ctx = ctx_of(request)
    guard = agent_guard(ctx)
    on, flatten = _switch(await _body(request))
    guard.store.set_kill_all(on)
    kill_seq = await _sequence_point(ctx)
    guard.record(
        None,
        "kill_all",
        "on" if on else "off",
        operator=operator_of(request),
        flatten=flatten,
        killSeq=kill_seq,
    )
    closed: list[dict[str, str]] = []
    if flatten:
        for agent in guard.store.all():
            closed += await flatten_account(ctx, guard, agent)
    return {"killAll": on, "killSeq": kill_seq, "flattened": closed}


async def _sequence_point(ctx: ServerContext) -> int:
    """The journal sequence number a switch took effect at: the last command sequenced before it.

    The switch is already set on the loop; this query runs after every command queued (and so
    built) before it, so every order of a killed key with a higher number was built after the
    switch and refused by :meth:`AgentGuard.refuse_if_killed`.
    """
    return await ctx.seq.query(lambda _engine: ctx.seq.last_seq)


async def flatten_account(ctx: ServerContext, guard: AgentGuard, agent: Agent) -> list[dict[str, str]]:
    """Cancel the agent's orders and close its positions with reduce-only MARKET orders (the venue
    acts here, not the agent, so the agent's limits do not apply)."""
    account_id = agent.account_id

    def positions(engine: Engine) -> list[tuple[MarketId, int]]:
        account = engine.accounts.get(account_id)
        if account is None:
            return []
        return [
            (p.market, p.qty_lots)
            for _, p in sorted(account.positions.items())
            if p.qty_lots or p.open_orders
        ]

    done: list[dict[str, str]] = []
    for market, qty in await ctx.seq.query(positions):
        await ctx.seq.submit(partial(_cancel_all, account_id, market))
        if qty == 0:
            continue
        side = Side.SELL if qty > 0 else Side.BUY
        applied = await ctx.seq.submit(partial(_close, account_id, market, side, abs(qty)))
        outcome = type(applied.events.own[0]).__name__ if applied.events.own else "none"
        spec = ctx.config.markets[market]
        row = {
            "symbol": str(market),
            "side": side.name,
            "quantity": wire.qty(spec, abs(qty)),
            "result": outcome,
        }
        guard.record(agent, "flatten", "venue", **row)
        done.append(row)
    return done


def _cancel_all(account_id: AccountId, market: MarketId, ts: int) -> CancelAllOrders:
    return CancelAllOrders(ts_ns=ts, account_id=account_id, market=market)


def _close(account_id: AccountId, market: MarketId, side: Side, qty_lots: int, ts: int) -> PlaceOrder:
    return PlaceOrder(
        ts_ns=ts,
        account_id=account_id,
        market=market,
        side=side,
        order_type=OrderType.MARKET,
        qty_lots=qty_lots,
        price_ticks=None,
        tif=TimeInForce.GTC,
        reduce_only=True,
    )


@admin_router.get("/admin/v1/agents/approvals")
async def pending_approvals(request: Request) -> list[dict[str, Any]]:
    """Previews above their agent's ``approvalNotional``, waiting for a human."""
    require_admin(request)
    guard = agent_guard(ctx_of(request))
    return [
        {
            "previewToken": p.token,
            "agentId": p.agent_id,
            "order": list(p.order_key),
            "notional": p.notional_text,
            "expiresMs": p.expires_ms,
        }
        for p in guard.tokens.pending_approvals(guard.now_ms())
    ]


@admin_router.post("/admin/v1/agents/approvals/{token}")
async def approve(request: Request, token: str) -> dict[str, Any]:
    """Approve one waiting preview: the agent may then place that exact order with the token once."""
    require_admin(request)
    guard = agent_guard(ctx_of(request))
    preview = guard.tokens.approve(token)
    if preview is None:
        raise ApiError(
            404, UNKNOWN_AGENT, "No preview waits for approval under that token (expired or used?)."
        )
    guard.record(
        guard.store.get(preview.agent_id), "approve", "approved", operator=operator_of(request), token=token
    )
    return {"previewToken": token, "approved": True}


@admin_router.get("/admin/v1/agents/{agent_id}/audit")
async def agent_audit(request: Request, agent_id: str) -> dict[str, Any]:
    """The agent's last audit entries (``limit``, default 500) and whether the whole chain verifies."""
    require_admin(request)
    guard = agent_guard(ctx_of(request))
    agent = _agent(guard, agent_id)
    limit = wire.int_param(dict(request.query_params), "limit", default=500, lo=1, hi=5_000)
    log = guard.audit
    report = verify_chain(log.path)
    return {
        "agentId": agent.agent_id,
        "chain": {
            "ok": report.ok,
            "entries": report.entries,
            "brokenAt": report.broken_at,
            "reason": report.reason,
            "lastHash": guard.audit.last_hash,
        },
        "entries": guard.audit.entries(agent.agent_id, limit),
    }


# ---------------------------------------------------------------------- the agent's own routes


@router.post("/perpx/v1/agent/preview")
async def preview_order(request: Request) -> dict[str, Any]:
    """Pre-trade estimate of a LIMIT or MARKET order and, when it would pass, a 60 s single-use token."""
    ctx, account_id, params = await auth(request, "read")
    guard = agent_guard(ctx)
    agent = guard.agent_of(account_id)
    if agent is None:
        raise ApiError(400, UNKNOWN_AGENT, "Preview is for agent keys (POST /admin/v1/agents).")
    values = params.values
    spec = spec_of(ctx, values)
    kind = order_type_of(values)
    if kind not in ("LIMIT", "MARKET"):
        raise ApiError(400, -9307, f"Agents preview LIMIT and MARKET orders only; {kind} is not available.")
    qty = lots(spec, values, "quantity")
    if qty is None:
        raise mandatory("quantity")
    price = ticks(spec, values, "price")
    if kind == "LIMIT" and price is None:
        raise mandatory("price")
    if kind == "MARKET" and price is not None:
        raise ApiError(400, -1106, "Parameter 'price' sent when not required.")
    intent = OrderIntent(
        str(spec.market), side_of(values), OrderType(kind), qty, price, wire.bool_param(values, "reduceOnly")
    )
    return await guard.preview(agent, spec, intent)


def _equity(engine: Engine, account_id: AccountId) -> int:
    """Wallet + unrealised PnL + isolated margin, in atoms (what a competitor is ranked on)."""
    risk = engine.risk(account_id)
    return risk.wallet_atoms + risk.cross_unrealized_pnl_atoms + risk.isolated_margin_atoms


@router.get("/perpx/v1/leaderboard")
async def leaderboard(request: Request) -> list[dict[str, Any]]:
    """Accounts whose agent is tagged ``competitor``, best P&L first (P&L: equity now minus the
    equity when the agent was created). Public: names and figures only, never keys."""
    ctx = ctx_of(request)
    agents = [a for a in agent_guard(ctx).store.all() if a.competitor]

    def read(engine: Engine) -> list[int]:
        return [_equity(engine, a.account_id) if a.account_id in engine.accounts else 0 for a in agents]

    equities = await ctx.seq.query(read)
    rows = sorted(zip(agents, equities, strict=True), key=lambda r: (-(r[1] - r[0].capital_atoms), r[0].name))
    atom = ctx.atom
    return [
        {
            "rank": rank,
            "name": agent.name,
            "accountId": int(agent.account_id),
            "equity": wire.money(equity, atom),
            "pnl": wire.money(equity - agent.capital_atoms, atom),
            "returnPct": str(
                (Decimal(equity - agent.capital_atoms) * 100 / agent.capital_atoms).quantize(
                    Decimal("0.0001")
                )
                if agent.capital_atoms
                else Decimal(0)
            ),
            "killed": agent.killed,
        }
        for rank, (agent, equity) in enumerate(rows, start=1)
    ]


@router.post("/perpx/v1/agent/approve")
async def approve_by_client(request: Request) -> dict[str, Any]:
    """The human at the agent's client approves ``previewToken`` (only with ``clientApproval``)."""
    ctx, account_id, params = await auth(request, "read")
    guard = agent_guard(ctx)
    agent = guard.agent_of(account_id)
    if agent is None:
        raise ApiError(400, UNKNOWN_AGENT, "Approval is for agent keys (POST /admin/v1/agents).")
    token = params.values.get("previewToken")
    if not token:
        raise mandatory("previewToken")
    guard.approve_by_client(agent, token)
    return {"previewToken": token, "approved": True}


@router.get("/perpx/v1/agent")
async def who_am_i(request: Request) -> dict[str, Any]:
    """The calling agent's policy and kill state (``agent`` is null for a plain key)."""
    ctx, account_id, _ = await auth(request, "read")
    guard = agent_guard(ctx)
    agent = guard.agent_of(account_id)
    return {"agent": None if agent is None else {**agent.as_json(), "killAll": guard.store.kill_all}}
