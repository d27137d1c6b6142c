"""The perpx admin API (``/admin/v1``): accounts and keys, transfers, prices, clock, market modes.

Separate from trading keys: every call carries ``X-PERPX-ADMIN: <token>``
(``PERPX_ADMIN_TOKEN`` or ``[venue] admin_token``); without a configured
token the admin API is off. JSON in and out; refusals are ``{"code", "msg"}``.
"""

from __future__ import annotations

import hmac
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from perpx.engine.commands import CreateAccount, Deposit, Withdraw
from perpx.engine.events import AccountCreated, DepositApplied, TransferRejected, WithdrawalApplied
from perpx.engine.liquidation.insurance import INSURANCE_ACCOUNT
from perpx.engine.values import AccountId, AssetId, TxId
from perpx.server.errors import ApiError, engine_refusal
from perpx.server.keys import SCOPES
from perpx.server.rest import ctx_of

router = APIRouter(prefix="/admin/v1", tags=["admin (perpx)"])


def require_admin(request: Request) -> str:
    """Check ``X-PERPX-ADMIN``; returns who acted (for the audit log)."""
    ctx = ctx_of(request)
    token = ctx.admin_token
    if token is None:
        raise ApiError(403, -9201, "The admin API is disabled: set PERPX_ADMIN_TOKEN or [venue] admin_token.")
    given = request.headers.get("x-perpx-admin", "")
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise ApiError(401, -9202, "Missing or wrong X-PERPX-ADMIN token.")
    return request.headers.get("x-perpx-operator", "admin")


class NewAccount(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    permissions: list[str] = Field(default_factory=lambda: ["read", "trade"])
    ips: list[str] = Field(default_factory=list)


class Transfer(BaseModel):
    accountId: int  # noqa: N815 - the wire's name
    asset: str
    amount: str
    txId: str = Field(min_length=1, max_length=128)  # noqa: N815


@router.post("/accounts")
async def create_account(request: Request, body: NewAccount) -> dict[str, Any]:
    """Open a trading account and its API key; the secret is shown only in this answer."""
    require_admin(request)
    bad = [p for p in body.permissions if p not in SCOPES]
    if bad or not body.permissions:
        raise ApiError(
            400, -1102, f"permissions must be a non-empty subset of {list(SCOPES)}; got {body.permissions}"
        )
    ctx = ctx_of(request)
    applied = await ctx.seq.submit(lambda ts: CreateAccount(ts_ns=ts, name=body.name))
    created = next(e for e in applied.events if isinstance(e, AccountCreated))
    key = ctx.keys.create(created.account_id, body.name, tuple(body.permissions), tuple(body.ips))
    return {"accountId": int(created.account_id), "apiKey": key.api_key, "apiSecret": key.secret}


def _amount_atoms(request: Request, amount: str) -> int:
    atom = ctx_of(request).atom
    try:
        value = Decimal(amount)
    except InvalidOperation:
        raise ApiError(400, -1102, f"amount {amount!r} is not a decimal number") from None
    if not value.is_finite() or value <= 0:
        raise ApiError(400, -1102, f"amount {amount!r} must be a positive decimal")
    units = value / atom
    if units != units.to_integral_value():
        raise ApiError(400, -1111, f"amount {amount} has more decimals than the asset allows ({atom})")
    return int(units)


async def _transfer(request: Request, body: Transfer, deposit: bool) -> dict[str, Any]:
    require_admin(request)
    ctx = ctx_of(request)
    if body.asset not in ctx.config.assets:
        raise ApiError(400, -9002, f"asset {body.asset} is not listed on this venue")
    if body.accountId == INSURANCE_ACCOUNT and not deposit:
        raise ApiError(400, -9001, "the insurance fund's account cannot withdraw")
    amount = _amount_atoms(request, body.amount)
    kind = Deposit if deposit else Withdraw
    applied = await ctx.seq.submit(
        lambda ts: kind(
            ts_ns=ts,
            account_id=AccountId(body.accountId),
            asset=AssetId(body.asset),
            amount_atoms=amount,
            tx_id=TxId(body.txId),
        )
    )
    for event in applied.events:
        if isinstance(event, DepositApplied | WithdrawalApplied):
            return {
                "accountId": body.accountId,
                "asset": body.asset,
                "amount": body.amount,
                "txId": body.txId,
                "balance": str(Decimal(event.balance_atoms) * ctx.atom),
                "status": "APPLIED",
            }
        if isinstance(event, TransferRejected):
            if event.code == -9004:
                return {
                    "accountId": body.accountId,
                    "asset": body.asset,
                    "amount": body.amount,
                    "txId": body.txId,
                    "status": "DUPLICATE",
                }
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
