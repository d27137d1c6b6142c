"""Run a competition: one venue, one seeded price path, every participant through its own agent key.

Each step: the clock moves ``step_s``, the mark is set from the scenario's price process (seeded with
the competition's seed through :func:`perpx.sim.seeds.derive_rng`, as the risk lab seeds it), the
house maker re-quotes a ladder around it, then every participant acts, in the file's order. Orders
go through the venue's REST routes (strategies) or the MCP tools (MCP agents), so the agent guard
applies to everyone alike and each refusal is counted. The venue's clock is manual, so the same
seed gives the same fills, equity curves and leaderboard for strategy participants.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import asdict, dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from perpx.compete.config import Competition
from perpx.compete.participant import MarketView, OrderRequest, load_entry
from perpx.compete.scores import Score, max_drawdown, sharpe
from perpx.engine.commands import CancelAllOrders, OrderType, PlaceOrder, TimeInForce
from perpx.engine.config import DEFAULT_CONFIG_TOML
from perpx.engine.engine import Engine
from perpx.engine.values import AccountId, MarketId, Side
from perpx.mcp.venue import VenueClient, VenueError
from perpx.server.app import build_components, create_admin_app, create_app, start_venue, stop_venue
from perpx.server.context import ServerContext, open_venue
from perpx.server.readmodel import MAX_ROWS
from perpx.sim.scenario import load_scenario
from perpx.sim.seeds import derive_rng
from perpx.sim.sources import build_process

_BASE = "http://compete.internal"
AGENT_CODES = range(-9399, -9300)


@dataclass
class Entrant:
    """A participant during the run: its key, its logic, its curve and its refusals."""

    name: str
    kind: str
    account_id: AccountId
    client: CountingClient
    logic: Any
    equity: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    tools: Any = None


@dataclass(frozen=True, slots=True)
class Result:
    """What a run produced: the leaderboard (best P&L first), the curves and the marks."""

    leaderboard: list[Score]
    curves: dict[str, list[str]]
    marks: list[str]
    times_s: list[int]
    errors: dict[str, list[str]] = field(default_factory=dict)
    """What went wrong for each participant that is not a limit refusal (its exceptions, other refusals)."""

    def as_json(self) -> dict[str, Any]:
        return {
            "errors": self.errors,
            "leaderboard": [asdict(s) for s in self.leaderboard],
            "curves": self.curves,
            "marks": self.marks,
            "timesS": self.times_s,
        }


async def run_competition(comp: Competition, venue_dir: Path) -> Result:
    """Run ``comp`` on a new venue in ``venue_dir`` (which must not hold a venue yet)."""
    scenario = load_scenario(comp.scenario)
    spec_doc = scenario.prices.get(comp.symbol) or next(iter(scenario.prices.values()))
    process = build_process(spec_doc, derive_rng(comp.seed, f"price/{comp.symbol}"), scenario.base_dir)
    ctx = open_venue(venue_dir, DEFAULT_CONFIG_TOML, build_components)
    ctx.admin_token = secrets.token_hex(16)
    public, admin_app = create_app(ctx), create_admin_app(ctx)
    await start_venue(ctx)
    try:
        return await _run(comp, ctx, public, admin_app, process)
    finally:
        await stop_venue(ctx)


async def _run(comp: Competition, ctx: ServerContext, public: Any, admin_app: Any, process: Any) -> Result:
    transport = httpx.ASGITransport(app=public)
    spec = ctx.specs[comp.symbol]
    headers = {"X-PERPX-ADMIN": ctx.admin_token or ""}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=admin_app), base_url=_BASE, headers=headers
    ) as admin:

        async def call(path: str, body: dict[str, Any]) -> Any:
            answer = await admin.post(f"/admin/v1{path}", json=body)
            if answer.status_code != 200:
                raise RuntimeError(f"competition set-up: {path} answered {answer.text}")
            return answer.json()

        first = Decimal(str(process.price_at(0.0))).quantize(spec.tick_size)
        await call("/marks", {"symbol": comp.symbol, "markPrice": str(first), "indexPrice": str(first)})
        maker = await call("/accounts", {"name": "house-maker"})
        await call(
            "/deposits",
            {"accountId": maker["accountId"], "asset": "USDT", "amount": "100000000", "txId": "house-maker"},
        )
        maker_id = AccountId(maker["accountId"])
        entrants = []
        for spec_p in comp.participants:
            owner = await call("/accounts", {"name": spec_p.name, "permissions": ["read"]})
            await call(
                "/deposits",
                {
                    "accountId": owner["accountId"],
                    "asset": "USDT",
                    "amount": str(comp.capital),
                    "txId": f"capital-{spec_p.name}",
                },
            )
            agent = await call(
                "/agents",
                {
                    "accountId": owner["accountId"],
                    "name": spec_p.name,
                    "scopes": ["read", "preview", "trade", "cancel"],
                    "limits": comp.limits,
                    "competitor": True,
                },
            )
            client = CountingClient(_BASE, agent["apiKey"], agent["apiSecret"], transport)
            logic = load_entry(spec_p.entry, comp.base_dir, dict(spec_p.params))
            entrants.append(Entrant(spec_p.name, spec_p.kind, AccountId(owner["accountId"]), client, logic))
        marks: list[Decimal] = []
        times: list[int] = []
        for step in range(comp.steps):
            t_s = step * comp.step_s
            if step:
                await call("/clock", {"advanceMs": comp.step_s * 1000})
            mark = Decimal(str(process.price_at(float(t_s)))).quantize(spec.tick_size)
            await call("/marks", {"symbol": comp.symbol, "markPrice": str(mark), "indexPrice": str(mark)})
            marks.append(mark)
            times.append(t_s)
            bid, ask = await _requote(comp, ctx, maker_id, mark)
            for entrant in entrants:
                await _act(comp, ctx, entrant, step, t_s, marks, bid, ask)
            for entrant in entrants:
                entrant.equity.append(await _equity(ctx, entrant.account_id))
        await _caught_up(ctx)
        board = [await _score(comp, ctx, admin, e) for e in entrants]
        for entrant in entrants:
            if entrant.tools is not None:
                await entrant.tools.__aexit__(None, None, None)
    board.sort(key=lambda s: (-Decimal(s.pnl), s.name))
    atom = ctx.atom
    curves = {e.name: [_text(Decimal(v) * atom) for v in e.equity] for e in entrants}
    return Result(board, curves, [str(m) for m in marks], times, {e.name: e.errors for e in entrants})


async def _requote(
    comp: Competition, ctx: ServerContext, maker: AccountId, mark: Decimal
) -> tuple[Decimal, Decimal]:
    """Replace the house maker's quotes with a fresh ladder around ``mark``; the best bid and ask.

    The house is the venue's own liquidity, so it sends commands to the sequencer directly (no key,
    no request-rate limit); the participants' orders all go through the agent guard.
    """
    spec = ctx.specs[comp.symbol]
    market = spec.market
    await ctx.seq.submit(partial(_cancel_all, maker, market))
    best_bid = best_ask = mark
    qty = int(comp.maker_quantity / spec.lot_size)
    for level in range(1, comp.maker_levels + 1):
        offset = mark * comp.maker_spread_bps * level / 10_000
        bid = (mark - offset).quantize(spec.tick_size, ROUND_FLOOR)
        ask = (mark + offset).quantize(spec.tick_size, ROUND_CEILING)
        if level == 1:
            best_bid, best_ask = bid, ask
        for side, price in ((Side.BUY, bid), (Side.SELL, ask)):
            ticks = int(price / spec.tick_size)
            await ctx.seq.submit(partial(_quote, maker, market, side, qty, ticks))
    return best_bid, best_ask


def _cancel_all(account_id: AccountId, market: MarketId, ts: int) -> CancelAllOrders:
    return CancelAllOrders(ts_ns=ts, account_id=account_id, market=market)


def _quote(
    account_id: AccountId, market: MarketId, side: Side, qty_lots: int, price_ticks: int, ts: int
) -> PlaceOrder:
    return PlaceOrder(
        ts_ns=ts,
        account_id=account_id,
        market=market,
        side=side,
        order_type=OrderType.LIMIT,
        qty_lots=qty_lots,
        price_ticks=price_ticks,
        tif=TimeInForce.GTC,
    )


async def _act(
    comp: Competition,
    ctx: ServerContext,
    entrant: Entrant,
    step: int,
    t_s: int,
    marks: list[Decimal],
    bid: Decimal,
    ask: Decimal,
) -> None:
    if entrant.kind == "mcp":
        await _act_mcp(entrant, step)
        return
    position, equity = await _position(ctx, entrant.account_id, comp.symbol)
    view = MarketView(step, t_s, comp.symbol, marks[-1], bid, ask, tuple(marks), position, equity)
    try:
        orders: list[OrderRequest] = entrant.logic.on_step(view)
    except Exception as exc:  # a participant's bug costs it the step, never the competition
        entrant.errors.append(f"step {step}: {type(exc).__name__}: {exc}")
        return
    for order in orders[:10]:
        params: dict[str, Any] = {
            "symbol": comp.symbol,
            "side": order.side,
            "quantity": str(order.quantity),
            "reduceOnly": order.reduce_only or None,
        }
        if order.price is None:
            params["type"] = "MARKET"
        else:
            params.update(type="LIMIT", price=str(order.price), timeInForce="GTC")
        try:
            await entrant.client.signed("POST", "/fapi/v1/order", params)
        except VenueError as exc:
            if exc.code not in AGENT_CODES:
                entrant.errors.append(f"step {step}: {exc.code} {exc.msg}")


async def _act_mcp(entrant: Entrant, step: int) -> None:
    from mcp import Client
    from perpx.mcp.tools import build_server

    if entrant.tools is None:
        server = build_server(lambda context: _const(entrant.client))
        entrant.tools = Client(server)
        await entrant.tools.__aenter__()
    try:
        await entrant.logic.on_step(entrant.tools, step)
    except Exception as exc:  # as for strategies: the agent loses the step
        entrant.errors.append(f"step {step}: {type(exc).__name__}: {exc}")


async def _const(client: VenueClient) -> VenueClient:
    return client


class CountingClient(VenueClient):
    """A participant's client: counts the agent-limit refusals (``-93xx``) it meets, whoever calls it
    (the runner for a strategy, the MCP tools for an agent)."""

    refusals = 0

    async def signed(self, method: str, path: str, params: Any = None) -> Any:
        try:
            return await super().signed(method, path, params)
        except VenueError as exc:
            if exc.code in AGENT_CODES:
                self.refusals += 1
            raise


async def _position(ctx: ServerContext, account_id: AccountId, symbol: str) -> tuple[Decimal, Decimal]:
    spec = ctx.specs[symbol]

    def read(engine: Engine) -> tuple[int, int]:
        account = engine.accounts[account_id]
        held = account.positions.get(spec.market)
        risk = engine.risk(account_id)
        return (
            held.qty_lots if held is not None else 0,
            risk.wallet_atoms + risk.cross_unrealized_pnl_atoms + risk.isolated_margin_atoms,
        )

    lots, equity = await ctx.seq.query(read)
    return lots * spec.lot_size, equity * ctx.atom


async def _equity(ctx: ServerContext, account_id: AccountId) -> int:
    def read(engine: Engine) -> int:
        risk = engine.risk(account_id)
        return risk.wallet_atoms + risk.cross_unrealized_pnl_atoms + risk.isolated_margin_atoms

    return await ctx.seq.query(read)


async def _caught_up(ctx: ServerContext) -> None:
    """Wait until the read model holds every committed record (fills are read from it)."""
    model = ctx.components.readmodel
    deadline = time.monotonic() + 10
    while model.resume_seq() < ctx.seq.last_seq and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


async def _score(comp: Competition, ctx: ServerContext, admin: httpx.AsyncClient, entrant: Entrant) -> Score:
    atom = ctx.atom
    model = ctx.components.readmodel
    volume = fees = count = 0
    from_id = 0
    while True:
        rows = model.trades(int(entrant.account_id), comp.symbol, from_id, None, None, MAX_ROWS)
        for row in rows:
            volume += row.quote_atoms
            fees += row.fee_atoms
            count += 1
        if len(rows) < MAX_ROWS:
            break
        from_id = rows[-1].trade_id + 1
    answer = await admin.get(
        "/admin/v1/liquidations", params={"accountId": int(entrant.account_id), "limit": 1000}
    )
    liquidations = sum(
        1 for r in answer.json().get("records", []) if r.get("accountId") == int(entrant.account_id)
    )
    capital_atoms = int(comp.capital / atom)
    final = entrant.equity[-1] if entrant.equity else capital_atoms
    return Score(
        name=entrant.name,
        kind=entrant.kind,
        pnl=_text(Decimal(final - capital_atoms) * atom),
        return_pct=round((final - capital_atoms) / capital_atoms * 100, 4),
        sharpe=sharpe([capital_atoms, *entrant.equity], comp.step_s),
        max_drawdown_pct=max_drawdown([capital_atoms, *entrant.equity]),
        volume=_text(Decimal(volume) * atom),
        fees=_text(Decimal(fees) * atom),
        trades=count,
        liquidations=liquidations,
        limit_refusals=entrant.client.refusals,
        final_equity=_text(Decimal(final) * atom),
    )


def _text(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"
