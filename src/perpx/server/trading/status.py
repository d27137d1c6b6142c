"""What the venue tells an account about itself: its liquidation orders, trading status and order limits.

* ``GET /fapi/v1/forceOrders``: the account's liquidation orders (client id ``autoclose-<orderId>``),
  as Binance's order objects. ``autoCloseType=ADL`` is always empty: perpx's auto-deleveraging
  moves positions without orders (its fills are ``ACCOUNT_UPDATE`` with reason ``ADL``).
* ``GET /fapi/v1/apiTradingStatus``: Binance's quantitative-rule indicators (UFR, IFER, GCR, DR).
  perpx applies none of these rules, so ``indicators`` is always empty: no account is ever locked
  by them.
* ``GET /fapi/v1/rateLimit/order``: the order-rate limits the venue enforces on the account
  (:mod:`perpx.server.limits`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from perpx.server import wire
from perpx.server.orders_wire import order_json
from perpx.server.trading.params import auth, optional_symbol, readmodel_of, row_limit

router = APIRouter(tags=["trading (signed)"])

FORCE_ORDERS_DEFAULT = 50
FORCE_ORDERS_MAX = 100


@router.get("/fapi/v1/forceOrders")
async def force_orders(request: Request) -> list[dict[str, Any]]:
    """The account's liquidation orders (``autoCloseType`` LIQUIDATION or ADL, ``symbol``, time window,
    ``limit`` default 50, at most 100); weight 20 with a symbol, 50 without."""
    weight = 20 if request.query_params.get("symbol") else 50
    ctx, account_id, params = await auth(request, "read", weight)
    values = params.values
    symbol = optional_symbol(ctx, values)
    kind = wire.enum_param(values, "autoCloseType", ("LIQUIDATION", "ADL"), "LIQUIDATION")
    limit = row_limit(values, FORCE_ORDERS_DEFAULT, FORCE_ORDERS_MAX)
    if kind == "ADL":
        return []
    records = readmodel_of(ctx).liquidation_orders(
        account_id, symbol, wire.time_param(values, "startTime"), wire.time_param(values, "endTime"), limit
    )
    specs = ctx.specs
    return [order_json(r, specs[r.symbol], ctx.atom) for r in records]


@router.get("/fapi/v1/apiTradingStatus")
async def api_trading_status(request: Request) -> dict[str, Any]:
    """The account's quantitative-rule indicators: always none on perpx (no rule locks an account)."""
    weight = 1 if request.query_params.get("symbol") else 10
    ctx, account_id, params = await auth(request, "read", weight)
    optional_symbol(ctx, params.values)
    return {"indicators": {}, "updateTime": readmodel_of(ctx).update_ms(account_id)}


@router.get("/fapi/v1/rateLimit/order")
async def order_rate_limits(request: Request) -> list[dict[str, Any]]:
    """The order-rate limits on the account: per 10 seconds and per minute."""
    ctx, _account_id, _params = await auth(request, "read")
    limits = ctx.components.limits.limits
    return [
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": limits.orders_10s},
        {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": limits.orders_1m},
    ]
