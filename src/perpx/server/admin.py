"""The perpx admin API (``/admin/v1``): accounts, transfers, prices, clock, market modes and parameters.

Separate from trading keys: every call carries ``X-PERPX-ADMIN: <token>``
(``PERPX_ADMIN_TOKEN`` or ``[venue] admin_token``); without a configured token the admin API
is off. The token is checked before anything else of the request is read, so a caller without
it learns nothing (not even whether its body was well formed); an address that keeps sending
wrong tokens is locked out (:class:`~perpx.server.auth.AdminGuard`). The admin API is served only on
its own listener (``perpx serve --admin-host/--admin-port``), never on the public port. JSON in and
out; refusals are ``{"code", "msg"}``.

Units in answers
----------------
Prices, quantities and money are decimal strings (``"30000.5"``, ``"0.002"``, ``"12.5"``).
Liquidation records also carry the engine's raw record (``record``), whose integers are in the
engine's units: ``*_ticks`` whole price units of the market (its ``tickSize`` at listing, or its
``price_unit``), ``*_lots`` whole quantity units (its ``stepSize`` at listing, or ``qty_unit``), ``*_atoms`` whole atoms of the settlement asset (``10**-decimals``), ``*_e8`` rates
times ``10**8``, ``ts_ns`` venue nanoseconds; ``GET /admin/v1/liquidations`` lists the scales.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from fastapi import APIRouter, Body, Path, Query, Request, Response, Security
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, Field, StrictInt

from perpx.engine.commands import (
    AdvanceClock,
    CreateAccount,
    Deposit,
    MarketMode,
    SetMarketMode,
    SetMarkPrice,
    SubmitSpotQuote,
    UpdateMarketParams,
    Withdraw,
)
from perpx.engine.config import MARKET_PARAMS, MarketSpec
from perpx.engine.engine import Engine
from perpx.engine.events import (
    AccountCreated,
    CommandRejected,
    DepositApplied,
    LiquidationExplained,
    MarketModeChanged,
    MarketParamsChanged,
    MarkPriceSet,
    ScopeFigures,
    TransferRejected,
    WithdrawalApplied,
)
from perpx.engine.liquidation.insurance import INSURANCE_ACCOUNT
from perpx.engine.params import param_texts
from perpx.engine.state import state_hash
from perpx.engine.values import RATE_SCALE, AccountId, AssetId, TxId, format_units
from perpx.server.adminlog import AdminLog
from perpx.server.context import ServerContext
from perpx.server.errors import ApiError, bad_param, engine_refusal, illegal_characters
from perpx.server.keys import SCOPES
from perpx.server.rest import ctx_of
from perpx.server.sequencer import Applied
from perpx.server.wire import MAX_ID, money, ms, to_atoms, to_ticks

_RATE_UNIT = Decimal(1) / RATE_SCALE
_PLAIN = re.compile(r"[0-9]{1,24}(\.[0-9]{1,24})?")
_NO_RATIO = 2**62
MAX_ADVANCE_MS = 366 * 86_400_000
"""The clock moves at most a year per call (each call replays the funding and triggers it passes)."""


def require_admin(request: Request) -> str:
    """Check ``X-PERPX-ADMIN`` (see :class:`~perpx.server.auth.AdminGuard`); return who acted.

    Who acted is ``X-PERPX-OPERATOR``, else ``admin``.

    Raises
    ------
    ApiError
        403 ``-9201`` when the admin API is disabled, 401 ``-9202`` on a missing or wrong token,
        429 ``-9204`` while the client's address is locked out for sending wrong tokens.
    """
    ctx = ctx_of(request)
    client = request.client.host if request.client is not None else ""
    ctx.admin_guard.check(ctx.admin_token, request.headers.get("x-perpx-admin"), client)
    return operator_of(request)


def operator_of(request: Request) -> str:
    """Who is acting, for the audit log: ``X-PERPX-OPERATOR`` (at most 64 characters), else ``admin``."""
    name = request.headers.get("x-perpx-operator", "").strip()
    return name[:64] if name else "admin"


class _AdminRoute(APIRoute):
    """A route that checks the admin token before FastAPI reads or validates the body."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            require_admin(request)
            return await handler(request)

        return checked


_token_doc = APIKeyHeader(
    name="X-PERPX-ADMIN",
    auto_error=False,
    description="The admin token (PERPX_ADMIN_TOKEN or [venue] admin_token).",
)

router = APIRouter(
    prefix="/admin/v1",
    tags=["admin (perpx)"],
    route_class=_AdminRoute,
    dependencies=[Security(_token_doc)],
)


def _log(request: Request) -> AdminLog:
    return ctx_of(request).components.adminlog


def _spec(request: Request, symbol: str) -> MarketSpec:
    spec = ctx_of(request).specs.get(symbol.upper())
    if spec is None:
        listed = ", ".join(ctx_of(request).specs)
        raise ApiError(400, -1121, f"Invalid symbol. {symbol!r} is not listed here (listed: {listed}).")
    return spec


def _positive_decimal(text: str, name: str) -> Decimal:
    """A positive plain decimal (``"30000.5"``); signs, exponents, NaN and junk are -1102."""
    if not _PLAIN.fullmatch(text):
        raise bad_param(name, f"{text[:40]!r} is not a plain decimal number")
    value = Decimal(text)
    if value <= 0:
        raise bad_param(name, f"{text!r} must be greater than zero")
    return value


def _text(value: str, name: str) -> str:
    """``value`` if it is valid UTF-8, else -1100.

    JSON can carry a lone surrogate (``"\\ud800"``), which no journal record holds; pydantic lets
    some through (``"9\\ud800"``), so every text that becomes part of a command is checked here.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise illegal_characters(name, f"{value[:40]!r} is not valid UTF-8 text") from None
    return value


def _price_ticks(spec: MarketSpec, text: str, name: str) -> int:
    return to_ticks(spec, _positive_decimal(text, name), name)


def _refused(applied: Applied) -> None:
    """Raise the command's refusal: its first own event, never one of the work that ran before it."""
    own = applied.events.own
    if own and isinstance(own[0], CommandRejected):
        raise engine_refusal(own[0].code, own[0].message)


# ---------------------------------------------------------------------- accounts and transfers


class NewAccount(BaseModel):
    name: str = Field(min_length=1, max_length=64, description="A label for the account and its key.")
    permissions: list[str] = Field(
        default_factory=lambda: ["read", "trade"],
        description="Key scopes: a non-empty subset of ['read', 'trade'].",
    )
    ips: list[str] = Field(
        default_factory=list,
        description="IP allow-list of the key (addresses or CIDR networks); empty allows any address.",
    )


class Transfer(BaseModel):
    accountId: int = Field(  # noqa: N815
        ge=0, le=MAX_ID, description="The account to credit or debit (0 is the insurance fund)."
    )
    asset: str = Field(description="A listed asset, e.g. USDT.")
    amount: str = Field(description="A positive decimal string, at most the asset's decimals.")
    txId: str = Field(  # noqa: N815
        min_length=1, max_length=128, description="Idempotency key: a repeat changes nothing."
    )


@router.post("/accounts")
async def create_account(request: Request, body: NewAccount) -> dict[str, Any]:
    """Open a trading account and its API key; the secret is shown only in this answer."""
    bad = [p for p in body.permissions if p not in SCOPES]
    if bad or not body.permissions:
        raise ApiError(
            400, -1102, f"permissions must be a non-empty subset of {list(SCOPES)}; got {body.permissions}"
        )
    for entry in body.ips:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ApiError(400, -1102, f"ips: {entry!r} is not an IP address or network") from None
    name = _text(body.name, "name")
    ctx = ctx_of(request)
    applied = await ctx.seq.submit(lambda ts: CreateAccount(ts_ns=ts, name=name))
    created = next(e for e in applied.events.own if isinstance(e, AccountCreated))
    key = ctx.keys.create(created.account_id, name, tuple(body.permissions), tuple(body.ips))
    return {"accountId": int(created.account_id), "apiKey": key.api_key, "apiSecret": key.secret}


def _amount_atoms(request: Request, amount: str) -> int:
    return to_atoms(_positive_decimal(amount, "amount"), ctx_of(request).atom, "amount")


async def _transfer(request: Request, body: Transfer, deposit: bool) -> dict[str, Any]:
    ctx = ctx_of(request)
    if body.asset not in ctx.config.assets:
        raise ApiError(400, -9002, f"asset {body.asset} is not listed on this venue")
    if body.accountId == INSURANCE_ACCOUNT and not deposit:
        raise ApiError(400, -9001, "the insurance fund's account cannot withdraw")
    amount = _amount_atoms(request, body.amount)
    tx_id = TxId(_text(body.txId, "txId"))
    kind = Deposit if deposit else Withdraw
    applied = await ctx.seq.submit(
        lambda ts: kind(
            ts_ns=ts,
            account_id=AccountId(body.accountId),
            asset=AssetId(body.asset),
            amount_atoms=amount,
            tx_id=tx_id,
        )
    )
    answer: dict[str, Any] = {
        "accountId": body.accountId,
        "asset": body.asset,
        "amount": body.amount,
        "txId": body.txId,
    }
    for event in applied.events.own:
        if isinstance(event, DepositApplied | WithdrawalApplied):
            return {**answer, "balance": money(event.balance_atoms, ctx.atom), "status": "APPLIED"}
        if isinstance(event, TransferRejected):
            if event.code == -9004:
                return {**answer, "status": "DUPLICATE"}
            raise engine_refusal(event.code, event.message)
    raise ApiError(500, -1000, "the engine answered the transfer with no transfer event")


@router.post("/deposits")
async def deposit(request: Request, body: Transfer) -> dict[str, Any]:
    """Credit an account; idempotent by ``txId`` (a repeat answers ``status: DUPLICATE`` and changes nothing)."""
    return await _transfer(request, body, deposit=True)


@router.post("/withdrawals")
async def withdraw(request: Request, body: Transfer) -> dict[str, Any]:
    """Debit an account if the amount is withdrawable (never unrealised PnL); idempotent by ``txId``."""
    return await _transfer(request, body, deposit=False)


@router.get("/accounts/{account_id}")
async def account(
    request: Request,
    account_id: Annotated[int, Path(ge=0, le=MAX_ID, description="The account (0: the insurance fund).")],
) -> dict[str, Any]:
    """Balances, margin figures, positions and open-order counts of one account (0: the insurance fund)."""
    ctx = ctx_of(request)
    atom = ctx.atom
    specs = ctx.specs

    def read(engine: Engine) -> dict[str, Any]:
        found = engine.accounts.get(AccountId(account_id))
        if found is None:
            raise ApiError(400, -9001, f"account {account_id} does not exist")
        risk = engine.risk(found.account_id)
        positions = []
        for market, position in sorted(found.positions.items()):
            if not position.qty_lots and not position.open_orders:
                continue
            spec = specs[market]
            liquidation = engine.liquidation.liquidation_price(found.account_id, market)
            positions.append(
                {
                    "symbol": market,
                    "positionAmt": format_units(position.qty_lots, spec.lot_size),
                    "entryPrice": _entry_price(position.qty_lots, position.cost_atoms, spec),
                    "markPrice": _ticks_text(engine.marks.get(market), spec),
                    "unrealizedProfit": money(
                        next((p.unrealized_pnl_atoms for p in risk.positions if p.market == market), 0), atom
                    ),
                    "leverage": position.leverage,
                    "marginType": position.margin_mode.value.lower(),
                    "isolatedMargin": money(position.isolated_margin_atoms, atom),
                    "liquidationPrice": _ticks_text(liquidation, spec),
                    "openOrders": len(position.open_orders),
                }
            )
        return {
            "accountId": account_id,
            "name": found.name,
            "balances": {asset: money(atoms, atom) for asset, atoms in sorted(found.balances.items())},
            "walletBalance": money(risk.wallet_atoms, atom),
            "unrealizedProfit": money(risk.cross_unrealized_pnl_atoms, atom),
            "marginBalance": money(risk.margin_balance_atoms, atom),
            "initialMargin": money(risk.cross_initial_margin_atoms, atom),
            "maintMargin": money(risk.cross_maintenance_margin_atoms, atom),
            "openOrderMargin": money(risk.order_margin_atoms, atom),
            "availableBalance": money(risk.available_atoms, atom),
            "maxWithdrawAmount": money(risk.withdrawable_atoms, atom),
            "positions": positions,
            "openOrders": sum(len(p.open_orders) for p in found.positions.values()),
            "algoOrders": len(engine.triggers.by_account.get(found.account_id, {})),
        }

    answer = await ctx.seq.query(read)
    answer["apiKeys"] = [
        {"apiKey": k.api_key, "name": k.name, "permissions": list(k.permissions), "ips": list(k.ips)}
        for k in ctx.keys.for_account(AccountId(account_id))
    ]
    return answer


def _entry_price(qty_lots: int, cost_atoms: int, spec: MarketSpec) -> str:
    if qty_lots == 0:
        return "0"
    ticks = Decimal(cost_atoms) / (Decimal(qty_lots) * spec.contract_atoms)
    return f"{(ticks * spec.tick_size).normalize():f}"


def _ticks_text(ticks: int | None, spec: MarketSpec) -> str | None:
    return None if ticks is None else format_units(ticks, spec.tick_size)


# ---------------------------------------------------------------------- prices and the clock


class SpotQuote(BaseModel):
    symbol: str = Field(description="The market whose index the quote feeds, e.g. BTCUSDT.")
    source: str = Field(description="One of the market's [markets.X.index] sources.")
    price: str = Field(description="The source's price as a decimal string, a whole number of ticks.")


class MarkPrice(BaseModel):
    symbol: str = Field(description="A market without index sources.")
    markPrice: str = Field(description="The new mark price (decimal string).")  # noqa: N815
    indexPrice: str | None = Field(  # noqa: N815
        default=None, description="The new index price; defaults to the mark price."
    )


class ClockAdvance(BaseModel):
    advanceMs: StrictInt = Field(  # noqa: N815
        description="Milliseconds to move the venue clock forward (manual clock only); 0 re-runs due work."
    )


@router.post("/prices")
async def spot_price(request: Request, body: SpotQuote) -> dict[str, Any]:
    """Feed one spot source's quote to a market's index; the index and mark follow the market's policy."""
    spec = _spec(request, body.symbol)
    ticks = _price_ticks(spec, body.price, "price")
    source = _text(body.source, "source")
    ctx = ctx_of(request)
    applied = await ctx.seq.submit(
        lambda ts: SubmitSpotQuote(ts_ns=ts, market=spec.market, source=source, price_ticks=ticks)
    )
    _refused(applied)
    return {
        "symbol": spec.market,
        "source": body.source,
        "price": format_units(ticks, spec.tick_size),
        **await _prices(request, spec),
    }


@router.post("/marks")
async def mark_price(request: Request, body: MarkPrice) -> dict[str, Any]:
    """Set the mark (and index) of a market without index sources; index-priced markets refuse it."""
    spec = _spec(request, body.symbol)
    mark = _price_ticks(spec, body.markPrice, "markPrice")
    index = mark if body.indexPrice is None else _price_ticks(spec, body.indexPrice, "indexPrice")
    ctx = ctx_of(request)
    applied = await ctx.seq.submit(
        lambda ts: SetMarkPrice(ts_ns=ts, market=spec.market, index_ticks=index, mark_ticks=mark)
    )
    _refused(applied)
    own = applied.events.own
    if not own or not isinstance(own[0], MarkPriceSet):
        raise ApiError(500, -1000, "An unknown error occurred: the engine answered the mark with no result.")
    mark_set = own[0]
    return {
        "symbol": spec.market,
        "indexPrice": _ticks_text(mark_set.index_ticks, spec),
        "markPrice": _ticks_text(mark_set.mark_ticks, spec),
        "indexStale": False,  # a market without index sources is never index-stale (engine invariant)
    }


async def _prices(request: Request, spec: MarketSpec) -> dict[str, Any]:
    def read(engine: Engine) -> dict[str, Any]:
        return {
            "indexPrice": _ticks_text(engine.indexes.get(spec.market), spec),
            "markPrice": _ticks_text(engine.marks.get(spec.market), spec),
            "indexStale": spec.market in engine.index_stale,
        }

    return await ctx_of(request).seq.query(read)


@router.post("/clock")
async def advance_clock(request: Request, body: ClockAdvance) -> dict[str, Any]:
    """Move the venue clock forward (``clock = "manual"`` only); funding, triggers and staleness follow."""
    ctx = ctx_of(request)
    if ctx.config.clock != "manual":
        raise ApiError(
            400,
            -9203,
            'The venue clock is the wall clock (clock = "wall"); only a venue with clock = "manual" can be advanced.',
        )
    if not 0 <= body.advanceMs <= MAX_ADVANCE_MS:
        raise bad_param("advanceMs", f"{body.advanceMs} is outside 0..{MAX_ADVANCE_MS} ms")
    step_ns = body.advanceMs * 1_000_000
    engine = ctx.seq.engine
    # the builder runs in the sequencer's pipeline, where reading the engine's clock is safe
    applied = await ctx.seq.submit(lambda ts: AdvanceClock(ts_ns=max(ts, engine.now_ns) + step_ns))
    _refused(applied)
    counts: dict[str, int] = {}
    for event in applied.events:
        name = type(event).__name__
        counts[name] = counts.get(name, 0) + 1
    return {"venueTimeMs": ms(applied.command.ts_ns), "seq": applied.seq, "events": counts}


# ---------------------------------------------------------------------- markets


class ModeChange(BaseModel):
    mode: Literal["normal", "reduce_only", "halted", "settled"] = Field(
        description="normal: everything; reduce_only: only position-reducing orders; halted: cancels only;"
        " settled: close every position at settlePrice and cancel every order (final)."
    )
    settlePrice: str | None = Field(  # noqa: N815
        default=None, description="The settlement price; required with mode 'settled', refused otherwise."
    )


@router.post("/markets/{symbol}/mode")
async def market_mode(request: Request, symbol: str, body: ModeChange) -> dict[str, Any]:
    """Change what a market accepts; ``settled`` is a delisting and is final."""
    spec = _spec(request, symbol)
    if (body.mode == "settled") != (body.settlePrice is not None):
        raise bad_param("settlePrice", "it is required with mode 'settled' and refused with any other mode")
    settle = None if body.settlePrice is None else _price_ticks(spec, body.settlePrice, "settlePrice")
    mode = MarketMode(body.mode.upper())
    applied = await ctx_of(request).seq.submit(
        lambda ts: SetMarketMode(ts_ns=ts, market=spec.market, mode=mode, settle_price_ticks=settle)
    )
    _refused(applied)
    changed = next(e for e in applied.events.own if isinstance(e, MarketModeChanged))
    return {
        "symbol": spec.market,
        "mode": changed.mode.value.lower(),
        "previous": changed.previous.value.lower(),
        "seq": applied.seq,
    }


ParamValues = Annotated[
    dict[str, Any],
    Body(
        description="Parameter name -> new value, in the config file's names and units; decimals as"
        f" strings. Changeable: {', '.join(MARKET_PARAMS)} (max_open_interest 'none' removes the cap).",
        examples=[{"min_notional": "50", "max_open_orders": 100}],
    ),
]


@router.get("/markets/{symbol}/params")
async def get_market_params(request: Request, symbol: str) -> dict[str, Any]:
    """The market's parameters now (live ones, and those a proposal changes: tables as JSON text),
    and which of them differ from the config file."""
    spec = _spec(request, symbol)
    ctx = ctx_of(request)

    def read(engine: Engine) -> dict[str, Any]:
        return {
            "symbol": spec.market,
            "params": param_texts(engine.specs[spec.market], ctx.atom),
            "changed": dict(engine.param_overrides.get(spec.market, {})),
        }

    return await ctx.seq.query(read)


@router.post("/markets/{symbol}/params")
async def set_market_params(request: Request, symbol: str, params: ParamValues) -> dict[str, Any]:
    """Change market parameters (all or none), checked by the config's rules; each change is audited."""
    spec = _spec(request, symbol)
    operator = operator_of(request)
    text: dict[str, str] = {}
    for name, value in params.items():
        _text(name, "params")
        if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
            text[name] = _text(str(value), name)
        else:
            raise bad_param(
                name[:64],
                f'{value!r} is not a string or an integer; write decimals as strings, like "0.05"'
                " (a JSON number with a fraction is binary floating point)",
            )
    applied = await ctx_of(request).seq.submit(
        lambda ts: UpdateMarketParams(
            ts_ns=ts, market=spec.market, params=text, operator=operator, wall_ns=time.time_ns()
        )
    )
    _refused(applied)
    changed = next(e for e in applied.events.own if isinstance(e, MarketParamsChanged))
    return {
        "symbol": spec.market,
        "operator": operator,
        "seq": applied.seq,
        "changes": [{"param": c.param, "old": c.old, "new": c.new} for c in changed.changes],
    }


@router.get("/audit")
async def audit(
    request: Request,
    symbol: Annotated[str | None, Query(description="Only this market's changes.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="The newest N rows.")] = 100,
) -> list[dict[str, Any]]:
    """The audit log, oldest first: parameter changes and the steps of staged proposals.

    A parameter change (``kind`` ``param``): who, when (wall and venue time), what, old and new
    value, its journal record. A proposal step (``kind`` ``proposal``: proposed, dry-run,
    approved, scheduled, applied, apply-refused, rejected): who, when (wall time), the proposal,
    its parameters and the step's detail. The newest ``limit`` rows of both, by wall time.
    """
    market = None if symbol is None else symbol.upper()
    rows: list[dict[str, Any]] = [
        {
            "kind": "param",
            "seq": r.seq,
            "operator": r.operator,
            "time": r.wall_ns // 1_000_000,
            "venueTime": r.ts_ns // 1_000_000,
            "symbol": r.market,
            "param": r.param,
            "old": r.old,
            "new": r.new,
        }
        for r in _log(request).audit(market, limit)
    ]
    for proposal in ctx_of(request).components.proposals.proposals.values():
        if market is not None and proposal.symbol != market:
            continue
        rows.extend(
            {
                "kind": "proposal",
                "proposal": proposal.id,
                "action": step.action,
                "operator": step.operator,
                "time": step.wall_ms,
                "symbol": proposal.symbol,
                "params": proposal.params,
                "detail": step.detail,
            }
            for step in proposal.trail
        )
    rows.sort(key=lambda row: (row["time"], row.get("seq", 0)))
    return rows[-limit:]


# ---------------------------------------------------------------------- risk: liquidations, fund, state

UNITS = {
    "_ticks": "whole price units of the market (price = ticks x its price unit: the tickSize at listing)",
    "_lots": "whole quantity units of the market (quantity = lots x its qty unit: the stepSize at listing)",
    "_atoms": "whole atoms of the settlement asset (amount = atoms x 10**-decimals)",
    "_e8": "a rate times 10**8 (0.0125 = 1250000); ratio_e8 2**62 means no margin left",
    "ts_ns": "venue time in nanoseconds since the epoch",
    "marginRatio": "maintenance margin / margin balance as a decimal; null when the margin balance is <= 0",
}


@router.get("/liquidations")
async def liquidations(
    request: Request,
    accountId: Annotated[  # noqa: N803
        int | None,
        Query(
            ge=0, le=MAX_ID, description="Only records naming this account (liquidated, or ADL counterparty)."
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="The newest N records.")] = 100,
) -> dict[str, Any]:
    """Liquidation explanation records, oldest first: inputs, formula values, steps and results."""
    ctx = ctx_of(request)
    records = _log(request).liquidations(accountId, limit)
    return {
        "units": {**UNITS, "settlementAtom": str(ctx.atom)},
        "records": [_liquidation(ctx, seq, event) for seq, event in records],
    }


def _liquidation(ctx: ServerContext, seq: int, event: LiquidationExplained) -> dict[str, Any]:
    atom = ctx.atom
    spec = ctx.specs.get(str(event.market)) if event.market is not None else None
    bankruptcy_value = event.bankruptcy_value_atoms
    return {
        "seq": seq,
        "time": ms(event.ts_ns),
        "accountId": int(event.account_id),
        "scope": event.scope,
        "symbol": event.market,
        "outcome": event.outcome,
        "liquidationPrice": None if spec is None else _ticks_text(event.liquidation_price_ticks, spec),
        "bankruptcyPrice": None if spec is None else _ticks_text(event.bankruptcy_price_ticks, spec),
        "bankruptcyValue": None if bankruptcy_value is None else money(bankruptcy_value, atom),
        "liquidationFeeRate": format_units(event.liquidation_fee_e8, _RATE_UNIT),
        "before": _scope(event.before, atom),
        "after": _scope(event.after, atom),
        "steps": [type(step).__name__.removesuffix("Step").lower() for step in event.steps],
        "record": _builtins(event),
    }


def _scope(figures: ScopeFigures, atom: Decimal) -> dict[str, Any]:
    return {
        "wallet": money(figures.wallet_atoms, atom),
        "marginBalance": money(figures.margin_balance_atoms, atom),
        "maintMargin": money(figures.maintenance_atoms, atom),
        "marginRatio": None if figures.ratio_e8 >= _NO_RATIO else format_units(figures.ratio_e8, _RATE_UNIT),
    }


def _builtins(event: LiquidationExplained) -> Any:
    return msgspec.to_builtins(event)


@router.get("/insurance")
async def insurance(
    request: Request,
    limit: Annotated[int, Query(ge=0, le=1000, description="The newest N cash movements.")] = 50,
) -> dict[str, Any]:
    """The insurance fund: cash, account 0's wallet and positions, equity on the marks, recent movements."""
    ctx = ctx_of(request)
    atom = ctx.atom
    specs = ctx.specs

    def read(engine: Engine) -> dict[str, Any]:
        fund = engine.liquidation.insurance_fund()
        account = engine.accounts[INSURANCE_ACCOUNT]
        positions = []
        for market, lots in fund.positions.items():
            spec = specs[market]
            position = account.positions[market]
            positions.append(
                {
                    "symbol": market,
                    "positionAmt": format_units(lots, spec.lot_size),
                    "entryPrice": _entry_price(lots, position.cost_atoms, spec),
                    "markPrice": _ticks_text(engine.marks.get(market), spec),
                }
            )
        return {
            "asset": engine.asset,
            "cash": money(fund.cash_atoms, atom),
            "wallet": money(fund.wallet_atoms, atom),
            "equity": money(fund.equity_atoms, atom),
            "positions": positions,
        }

    answer = await ctx.seq.query(read)
    answer["history"] = [
        {
            "seq": r.seq,
            "time": ms(r.ts_ns),
            "accountId": r.account_id,
            "symbol": r.market,
            "reason": r.reason,
            "amount": money(r.amount_atoms, atom),
            "fundCash": money(r.fund_cash_atoms, atom),
        }
        for r in (_log(request).fund_history(limit) if limit else [])
    ]
    return answer


@router.get("/state")
async def state(request: Request) -> dict[str, Any]:
    """The last journal record, the engine's state hash and venue time (to prove a refusal changed nothing)."""
    seq = ctx_of(request).seq

    def read(engine: Engine) -> dict[str, Any]:
        return {"lastSeq": seq.last_seq, "stateHash": state_hash(engine), "venueTimeMs": ms(engine.now_ns)}

    return await seq.query(read)
