"""Per-market settings: leverage, margin type, isolated margin; Multi-Assets Mode; hedge mode (refused)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from perpx.engine.commands import (
    AdjustIsolatedMargin,
    MarginMode,
    SetLeverage,
    SetMarginMode,
    SetMultiAssetsMode,
)
from perpx.engine.events import (
    IsolatedMarginAdjusted,
    LeverageChanged,
    MarginModeChanged,
    MultiAssetsModeChanged,
)
from perpx.server import wire
from perpx.server.errors import ApiError
from perpx.server.trading.params import answer, auth, one_way, readmodel_of, row_limit, spec_of

router = APIRouter(tags=["trading (signed)"])


@router.post("/fapi/v1/leverage")
async def change_leverage(request: Request) -> dict[str, Any]:
    """Set the account's leverage in ``symbol`` (``-4028`` outside 1..the market's maximum)."""
    ctx, account_id, params = await auth(request, "trade")
    spec = spec_of(ctx, params.values)
    leverage = wire.int_param(params.values, "leverage", lo=-(10**6), hi=10**6)
    market = spec.market
    applied = await ctx.seq.submit(
        lambda ts: SetLeverage(ts_ns=ts, account_id=account_id, market=market, leverage=leverage)
    )
    changed = answer(applied, LeverageChanged, "leverage change")
    return {
        "leverage": changed.leverage,
        "maxNotionalValue": wire.money(changed.max_notional_atoms, ctx.atom),
        "symbol": str(market),
    }


@router.post("/fapi/v1/marginType")
async def change_margin_type(request: Request) -> dict[str, Any]:
    """ISOLATED or CROSSED; ``-4046`` "No need to change margin type." when it already is."""
    ctx, account_id, params = await auth(request, "trade")
    spec = spec_of(ctx, params.values)
    text = wire.enum_param(params.values, "marginType", ("ISOLATED", "CROSSED", "CROSS"))
    mode = MarginMode.ISOLATED if text == "ISOLATED" else MarginMode.CROSS
    market = spec.market
    applied = await ctx.seq.submit(
        lambda ts: SetMarginMode(ts_ns=ts, account_id=account_id, market=market, mode=mode)
    )
    answer(applied, MarginModeChanged, "margin type change")
    return {"code": 200, "msg": "success"}


@router.post("/fapi/v1/positionMargin")
async def position_margin(request: Request) -> dict[str, Any]:
    """Add (``type=1``) or remove (``type=2``) isolated margin of ``symbol``'s position."""
    ctx, account_id, params = await auth(request, "trade")
    values = params.values
    spec = spec_of(ctx, values)
    one_way(values)
    amount = wire.decimal_param(values, "amount")
    assert amount is not None
    kind = wire.int_param(values, "type", lo=1, hi=2)
    units = wire.to_atoms(amount, ctx.atom, "amount")
    delta = units if kind == 1 else -units
    market = spec.market
    applied = await ctx.seq.submit(
        lambda ts: AdjustIsolatedMargin(ts_ns=ts, account_id=account_id, market=market, delta_atoms=delta)
    )
    answer(applied, IsolatedMarginAdjusted, "position margin change")
    return {
        "amount": float(amount),
        "code": 200,
        "msg": "Successfully modify position margin.",
        "type": kind,
    }


@router.get("/fapi/v1/positionMargin/history")
async def position_margin_history(request: Request) -> list[dict[str, Any]]:
    """Isolated margin changes of ``symbol``, newest first (``type``, ``startTime``, ``endTime``, ``limit``)."""
    ctx, account_id, params = await auth(request, "read")
    values = params.values
    spec = spec_of(ctx, values)
    kind = wire.optional_int(values, "type", lo=1, hi=2)
    rows = readmodel_of(ctx).margin_changes(
        account_id,
        str(spec.market),
        kind,
        wire.time_param(values, "startTime"),
        wire.time_param(values, "endTime"),
        row_limit(values, 500),
    )
    return [
        {
            "symbol": symbol,
            "type": row_type,
            "deltaType": "USER_ADJUST",
            "amount": wire.money(amount, ctx.atom),
            "asset": str(ctx.config.settlement_asset),
            "time": time_ms,
            "positionSide": "BOTH",
        }
        for symbol, row_type, amount, time_ms in rows
    ]


@router.get("/fapi/v1/positionSide/dual")
async def position_side(request: Request) -> dict[str, Any]:
    """Always one-way mode: ``{"dualSidePosition": false}``."""
    await auth(request, "read", 30)
    return {"dualSidePosition": False}


@router.post("/fapi/v1/positionSide/dual")
async def change_position_side(request: Request) -> dict[str, Any]:
    """Hedge mode is not supported: ``true`` is refused, ``false`` needs no change (``-4059``)."""
    _ctx, _account_id, params = await auth(request, "trade")
    if wire.bool_param(params.values, "dualSidePosition"):
        raise ApiError(
            400, -4061, "Hedge mode (dualSidePosition=true) is not supported on perpx: positions are one-way."
        )
    raise ApiError(400, -4059, "No need to change position side.")


@router.get("/fapi/v1/multiAssetsMargin")
async def multi_assets_margin(request: Request) -> dict[str, Any]:
    """The account's asset mode: ``{"multiAssetsMargin": true}`` in Multi-Assets Mode."""
    ctx, account_id, _params = await auth(request, "read", 30)
    enabled = await ctx.seq.query(lambda engine: engine.multi_assets.is_enabled(account_id))
    return {"multiAssetsMargin": enabled}


@router.post("/fapi/v1/multiAssetsMargin")
async def change_multi_assets_margin(request: Request) -> dict[str, Any]:
    """Turn Multi-Assets Mode on (``"true"``) or off (``"false"``): ``{"code": 200, "msg": "success"}``.

    Refused as Binance refuses it: ``-4171`` already in that mode, ``-4170`` with open orders (and
    here also with an open position), ``-4167`` with a market set to isolated, ``-4172`` turning it
    off with a negative USDT balance.
    """
    ctx, account_id, params = await auth(request, "trade")
    wire.required(params.values, "multiAssetsMargin")
    enabled = wire.bool_param(params.values, "multiAssetsMargin")
    applied = await ctx.seq.submit(
        lambda ts: SetMultiAssetsMode(ts_ns=ts, account_id=account_id, enabled=enabled)
    )
    answer(applied, MultiAssetsModeChanged, "asset mode change")
    return {"code": 200, "msg": "success"}
