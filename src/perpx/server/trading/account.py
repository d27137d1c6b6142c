"""The account's figures: balances, positions, fee tier, leverage brackets, income.

Figures that depend on engine state are computed in one query in the sequencer's pipeline
(:class:`AccountView`); histories come from the read model.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request

from perpx.engine.accounts import VOLUME_WINDOW_DAYS, Account
from perpx.engine.config import FeeTier, MarketSpec
from perpx.engine.engine import Engine
from perpx.engine.margin import position_risk
from perpx.engine.values import NS_PER_DAY, RATE_SCALE, AccountId
from perpx.server import wire
from perpx.server.context import ServerContext
from perpx.server.errors import bad_key
from perpx.server.orders_wire import income_json, plain
from perpx.server.rest import Params
from perpx.server.trading.params import auth, optional_symbol, readmodel_of, row_limit, spec_of

router = APIRouter(tags=["trading (signed)"])

_PRICE_PLACES = Decimal(10) ** -8
"""Prices computed from positions (entry, break-even) are quoted to 8 decimals."""


# ---------------------------------------------------------------------- account and positions


def fee_tier(engine: Engine, account: Account) -> tuple[int, FeeTier]:
    """The account's fee tier by its 30-day volume (computed without touching the engine's state)."""
    oldest = engine.now_ns // NS_PER_DAY - (VOLUME_WINDOW_DAYS - 1)
    volume = sum(v for day, v in account.volume_days.items() if day >= oldest)
    index, chosen = 0, engine.fee_tiers[0]
    for i, tier in enumerate(engine.fee_tiers):
        if volume < tier.min_30d_volume_atoms:
            break
        index, chosen = i, tier
    return index, chosen


def entry_price(cost_atoms: int, qty_lots: int, spec: MarketSpec, atom: Decimal) -> str:
    """Average entry price of a position: ``|cost| / |qty|`` (8 decimals, half-even; ``"0"`` when flat)."""
    if qty_lots == 0:
        return "0"
    value = (Decimal(abs(cost_atoms)) * atom) / (Decimal(abs(qty_lots)) * spec.lot_size)
    return plain(value.quantize(_PRICE_PLACES))


def break_even_price(entry: str, qty_lots: int, taker_e8: int) -> str:
    """The price at which closing at the taker rate, after opening at it, makes zero PnL.

    Long: ``entry x (1 + t) / (1 - t)``; short: ``entry x (1 - t) / (1 + t)`` (``t`` the account's
    current taker rate; both fees counted at the taker rate, as Binance's break-even does).
    """
    if qty_lots == 0:
        return "0"
    taker = Decimal(taker_e8) / RATE_SCALE
    price = Decimal(entry)
    value = price * (1 + taker) / (1 - taker) if qty_lots > 0 else price * (1 - taker) / (1 + taker)
    return plain(value.quantize(_PRICE_PLACES))


def _rate(rate_e8: int) -> str:
    return plain(Decimal(rate_e8) / RATE_SCALE)


class _AccountView:
    """An account's figures in wire strings, computed in the sequencer's pipeline (see :func:`_view`)."""

    def __init__(self, ctx: ServerContext, engine: Engine, account_id: AccountId) -> None:
        self.ctx = ctx
        self.atom = ctx.atom
        self.asset = str(engine.asset)
        model = readmodel_of(ctx)
        account = engine.accounts.get(account_id)
        if account is None:
            raise bad_key()
        risk = engine.risk(account_id)
        self.tier_index, tier = fee_tier(engine, account)
        self.account_update_ms = model.update_ms(account_id)
        self.positions: list[dict[str, Any]] = []
        total_upnl = total_im = total_mm = 0
        for market in sorted(engine.specs):
            spec = engine.specs[market]
            position = account.positions.get(market)
            mark = engine.marks.get(market, 0)
            qty = position.qty_lots if position is not None else 0
            if position is None:
                figures = None
            else:
                figures = position_risk(position, spec, mark)
                total_upnl += figures.unrealized_pnl_atoms
                total_im += figures.initial_margin_atoms if qty else 0
                total_mm += figures.maintenance_margin_atoms
            leverage = position.leverage if position is not None else spec.default_leverage
            cost = position.cost_atoms if position is not None else 0
            entry = entry_price(cost, qty, spec, self.atom)
            break_even = break_even_price(entry, qty, tier.taker_e8)
            liquidation = engine.liquidation.liquidation_price(account_id, market) if qty else None
            upnl = figures.unrealized_pnl_atoms if figures is not None and qty else 0
            isolated_wallet = position.isolated_margin_atoms if position is not None else 0
            isolated = position is not None and position.is_isolated
            notional = (figures.notional_atoms if figures is not None else 0) * (1 if qty >= 0 else -1)
            position_im = figures.initial_margin_atoms if figures is not None and qty else 0
            order_im = position.order_margin_atoms if position is not None else 0
            self.positions.append(
                {
                    "symbol": str(market),
                    "qty": qty,
                    "open_orders": bool(position is not None and position.open_orders),
                    "positionAmt": wire.qty(spec, qty),
                    "entryPrice": entry,
                    "breakEvenPrice": break_even,
                    "markPrice": wire.price(spec, mark),
                    "unRealizedProfit": self.money(upnl),
                    "liquidationPrice": wire.price(spec, liquidation),
                    "leverage": str(leverage),
                    "maxNotionalValue": self.money(spec.max_notional_at_leverage(leverage)),
                    "marginType": "isolated" if isolated else "cross",
                    "isolated": isolated,
                    "isolatedMargin": self.money(isolated_wallet + upnl if isolated else 0),
                    "isolatedWallet": self.money(isolated_wallet),
                    "notional": self.money(notional),
                    "initialMargin": self.money(position_im + order_im),
                    "positionInitialMargin": self.money(position_im),
                    "openOrderInitialMargin": self.money(order_im),
                    "maintMargin": self.money(figures.maintenance_margin_atoms if figures is not None else 0),
                    "bidNotional": self.money(position.buy_notional_atoms if position is not None else 0),
                    "askNotional": self.money(position.sell_notional_atoms if position is not None else 0),
                    "adl": engine.liquidation.adl_quantile(account_id, market) if qty else 0,
                    "updateTime": model.update_ms(account_id, str(market)),
                }
            )
        wallet = risk.wallet_atoms + risk.isolated_margin_atoms
        multi = engine.multi_assets
        self.multi_assets = multi.is_enabled(account_id)
        # Multi-Assets Mode: totals in USDT count the collateral assets at index x (1 - haircut)
        # (risk.collateral_atoms, 0 outside the mode); each asset's own row stays in its units
        self.totals = {
            "totalInitialMargin": self.money(total_im + risk.order_margin_atoms),
            "totalMaintMargin": self.money(total_mm),
            "totalWalletBalance": self.money(wallet + risk.collateral_atoms),
            "totalUnrealizedProfit": self.money(total_upnl),
            "totalMarginBalance": self.money(wallet + risk.collateral_atoms + total_upnl),
            "totalPositionInitialMargin": self.money(total_im),
            "totalOpenOrderInitialMargin": self.money(risk.order_margin_atoms),
            "totalCrossWalletBalance": self.money(risk.wallet_atoms + risk.collateral_atoms),
            "totalCrossUnPnl": self.money(risk.cross_unrealized_pnl_atoms),
            "availableBalance": self.money(risk.available_atoms),
            "maxWithdrawAmount": self.money(
                max(0, risk.free_atoms) if self.multi_assets else risk.withdrawable_atoms
            ),
        }
        self.assets: list[dict[str, Any]] = [
            {
                "asset": self.asset,
                "walletBalance": self.totals["totalWalletBalance"],
                "unrealizedProfit": self.totals["totalUnrealizedProfit"],
                "marginBalance": self.totals["totalMarginBalance"],
                "maintMargin": self.totals["totalMaintMargin"],
                "initialMargin": self.totals["totalInitialMargin"],
                "positionInitialMargin": self.totals["totalPositionInitialMargin"],
                "openOrderInitialMargin": self.totals["totalOpenOrderInitialMargin"],
                "crossWalletBalance": self.totals["totalCrossWalletBalance"],
                "crossUnPnl": self.totals["totalCrossUnPnl"],
                "availableBalance": self.totals["availableBalance"],
                "maxWithdrawAmount": self.totals["maxWithdrawAmount"],
                "marginAvailable": True,
                "updateTime": self.account_update_ms,
            }
        ]
        self.assets[0]["walletBalance"] = self.money(risk.wallet_atoms + risk.isolated_margin_atoms)
        self.assets[0]["marginBalance"] = self.money(
            risk.wallet_atoms + risk.isolated_margin_atoms + total_upnl
        )
        self.assets[0]["crossWalletBalance"] = self.money(risk.wallet_atoms)
        self.assets[0]["maxWithdrawAmount"] = self.money(risk.withdrawable_atoms)
        for asset in sorted(engine.config.assets):
            if asset == engine.asset:
                continue
            balance = self.money(account.balance(asset))
            if self.multi_assets and asset in multi.holders:
                free = self.money(multi.max_removal_atoms(account, asset))
                self.assets.append(
                    {
                        "asset": str(asset),
                        "walletBalance": balance,
                        "unrealizedProfit": "0",
                        "marginBalance": balance,
                        "maintMargin": "0",
                        "initialMargin": "0",
                        "positionInitialMargin": "0",
                        "openOrderInitialMargin": "0",
                        "crossWalletBalance": balance,
                        "crossUnPnl": "0",
                        "availableBalance": free,
                        "maxWithdrawAmount": free,
                        "marginAvailable": True,
                        "updateTime": self.account_update_ms if account.balance(asset) else 0,
                    }
                )
                continue
            self.assets.append(
                {
                    "asset": str(asset),
                    "walletBalance": balance,
                    "unrealizedProfit": "0",
                    "marginBalance": balance,
                    "maintMargin": "0",
                    "initialMargin": "0",
                    "positionInitialMargin": "0",
                    "openOrderInitialMargin": "0",
                    "crossWalletBalance": balance,
                    "crossUnPnl": "0",
                    "availableBalance": balance,
                    "maxWithdrawAmount": balance,
                    "marginAvailable": False,
                    "updateTime": self.account_update_ms if account.balance(asset) else 0,
                }
            )

    def money(self, atoms: int) -> str:
        return wire.money(atoms, self.atom)


async def _view(request: Request, weight: int = 5) -> tuple[ServerContext, Params, _AccountView]:
    ctx, account_id, params = await auth(request, "read", weight)
    view = await account_view(ctx, account_id)
    return ctx, params, view


async def account_view(ctx: ServerContext, account_id: AccountId) -> _AccountView:
    """The account as the engine holds it now (one sequencer query): what every account answer reads."""
    return await ctx.seq.query(lambda engine: _AccountView(ctx, engine, account_id))


_V3_ACCOUNT_POSITION = (
    "symbol",
    "positionAmt",
    "isolatedMargin",
    "notional",
    "isolatedWallet",
    "initialMargin",
    "maintMargin",
    "updateTime",
)


def _pick(row: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: row[name] for name in names}


@router.get("/fapi/v3/account")
async def account_v3(request: Request) -> dict[str, Any]:
    """Totals, assets and the open positions of the account (the balance ccxt's fetch_balance reads)."""
    _ctx, _params, view = await _view(request)
    return account_v3_answer(view)


def account_v3_answer(view: _AccountView) -> dict[str, Any]:
    """``/fapi/v3/account``'s answer (and the WebSocket API's ``v2/account.status``)."""
    positions = []
    for row in view.positions:
        if row["qty"]:
            out = _pick(row, _V3_ACCOUNT_POSITION)
            positions.append({**out, "unrealizedProfit": row["unRealizedProfit"], "positionSide": "BOTH"})
    return {**view.totals, "assets": view.assets, "positions": positions}


@router.get("/fapi/v2/account")
async def account_v2(request: Request) -> dict[str, Any]:
    """As v3 plus the account flags, fee tier, and a row for every market."""
    _ctx, _params, view = await _view(request)
    return account_v2_answer(view)


def account_v2_answer(view: _AccountView) -> dict[str, Any]:
    """``/fapi/v2/account``'s answer (and the WebSocket API's ``account.status``)."""
    positions = [
        {
            "symbol": row["symbol"],
            "initialMargin": row["initialMargin"],
            "maintMargin": row["maintMargin"],
            "unrealizedProfit": row["unRealizedProfit"],
            "positionInitialMargin": row["positionInitialMargin"],
            "openOrderInitialMargin": row["openOrderInitialMargin"],
            "leverage": row["leverage"],
            "isolated": row["isolated"],
            "entryPrice": row["entryPrice"],
            "breakEvenPrice": row["breakEvenPrice"],
            "maxNotional": row["maxNotionalValue"],
            "bidNotional": row["bidNotional"],
            "askNotional": row["askNotional"],
            "positionSide": "BOTH",
            "positionAmt": row["positionAmt"],
            "isolatedWallet": row["isolatedWallet"],
            "notional": row["notional"],
            "updateTime": row["updateTime"],
        }
        for row in view.positions
    ]
    return {
        "feeTier": view.tier_index,
        "feeBurn": False,
        "canTrade": True,
        "canDeposit": True,
        "canWithdraw": True,
        "updateTime": 0,
        "multiAssetsMargin": view.multi_assets,
        "tradeGroupId": -1,
        **view.totals,
        "assets": view.assets,
        "positions": positions,
    }


def balances_answer(view: _AccountView) -> list[dict[str, Any]]:
    """``/fapi/v2/balance`` and ``/fapi/v3/balance``'s answer (and ``account.balance`` on the WebSocket API)."""
    return _balances(view)


def _balances(view: _AccountView) -> list[dict[str, Any]]:
    return [
        {
            "accountAlias": "perpx",
            "asset": asset["asset"],
            "balance": asset["walletBalance"],
            "crossWalletBalance": asset["crossWalletBalance"],
            "crossUnPnl": asset["crossUnPnl"],
            "availableBalance": asset["availableBalance"],
            "maxWithdrawAmount": asset["maxWithdrawAmount"],
            "marginAvailable": asset["marginAvailable"],
            "updateTime": asset["updateTime"],
        }
        for asset in view.assets
    ]


@router.get("/fapi/v2/balance")
async def balance_v2(request: Request) -> list[dict[str, Any]]:
    """The account's balance per asset."""
    _ctx, _params, view = await _view(request)
    return _balances(view)


@router.get("/fapi/v3/balance")
async def balance_v3(request: Request) -> list[dict[str, Any]]:
    """The account's balance per asset (same figures as v2)."""
    _ctx, _params, view = await _view(request)
    return _balances(view)


_V3_POSITION = (
    "symbol",
    "positionAmt",
    "entryPrice",
    "breakEvenPrice",
    "markPrice",
    "unRealizedProfit",
    "liquidationPrice",
    "isolatedMargin",
    "notional",
    "isolatedWallet",
    "initialMargin",
    "maintMargin",
    "positionInitialMargin",
    "openOrderInitialMargin",
    "adl",
    "bidNotional",
    "askNotional",
    "updateTime",
)
_V2_POSITION = (
    "symbol",
    "positionAmt",
    "entryPrice",
    "breakEvenPrice",
    "markPrice",
    "unRealizedProfit",
    "liquidationPrice",
    "leverage",
    "maxNotionalValue",
    "marginType",
    "isolatedMargin",
    "notional",
    "isolatedWallet",
    "updateTime",
)


def _position_rows(ctx: ServerContext, params: Params, view: _AccountView) -> list[dict[str, Any]]:
    symbol = optional_symbol(ctx, params.values)
    return [row for row in view.positions if symbol is None or row["symbol"] == symbol]


@router.get("/fapi/v3/positionRisk")
async def position_risk_v3(request: Request) -> list[dict[str, Any]]:
    """A row per market where the account has a position or open orders (Binance v3); shorts have
    negative ``positionAmt`` and ``notional``; ``liquidationPrice`` ``"0"`` when there is none."""
    ctx, params, view = await _view(request)
    return position_risk_v3_answer(ctx, params, view)


def position_risk_v3_answer(ctx: ServerContext, params: Params, view: _AccountView) -> list[dict[str, Any]]:
    """``/fapi/v3/positionRisk``'s answer (and the WebSocket API's ``v2/account.position``)."""
    return [
        {
            **_pick(row, _V3_POSITION),
            "positionSide": "BOTH",
            "marginAsset": view.asset,
            "leverage": row["leverage"],
            "marginType": row["marginType"],
        }
        for row in _position_rows(ctx, params, view)
        if row["qty"] or row["open_orders"]
    ]


@router.get("/fapi/v2/positionRisk")
async def position_risk_v2(request: Request) -> list[dict[str, Any]]:
    """A row per market (flat ones too, as Binance v2 in one-way mode)."""
    ctx, params, view = await _view(request)
    return position_risk_v2_answer(ctx, params, view)


def position_risk_v2_answer(ctx: ServerContext, params: Params, view: _AccountView) -> list[dict[str, Any]]:
    """``/fapi/v2/positionRisk``'s answer (and the WebSocket API's ``account.position``)."""
    return [
        {**_pick(row, _V2_POSITION), "isAutoAddMargin": "false", "positionSide": "BOTH"}
        for row in _position_rows(ctx, params, view)
    ]


@router.get("/fapi/v1/adlQuantile")
async def adl_quantile(request: Request) -> list[dict[str, Any]]:
    """ADL lights (1..5, 5 = first in line) of the account's open positions."""
    ctx, params, view = await _view(request)
    out = []
    for row in _position_rows(ctx, params, view):
        if not row["qty"]:
            continue
        quantile = row["adl"]
        out.append(
            {
                "symbol": row["symbol"],
                "adlQuantile": {
                    "LONG": quantile if row["qty"] > 0 else 0,
                    "SHORT": quantile if row["qty"] < 0 else 0,
                    "BOTH": quantile,
                },
            }
        )
    return out


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _brackets(spec: MarketSpec, atom: Decimal) -> dict[str, Any]:
    return {
        "symbol": str(spec.market),
        "notionalCoef": 1.0,
        "brackets": [
            {
                "bracket": b.tier,
                "initialLeverage": b.max_leverage,
                "notionalCap": _number(Decimal(b.cap_atoms) * atom),
                "notionalFloor": _number(Decimal(b.floor_atoms) * atom),
                "maintMarginRatio": float(Decimal(b.mmr_e8) / RATE_SCALE),
                "cum": float(Decimal(b.cum_atoms) * atom),
            }
            for b in spec.brackets
        ],
    }


@router.get("/fapi/v1/leverageBracket")
async def leverage_bracket(request: Request) -> Any:
    """Leverage brackets: a list of every market, or one object when ``symbol`` is given (as Binance)."""
    ctx, _account_id, params = await auth(request, "read")
    specs = await ctx.seq.query(lambda engine: dict(engine.specs))  # an approved proposal may change them
    if params.values.get("symbol"):
        return _brackets(specs[spec_of(ctx, params.values).market], ctx.atom)
    return [_brackets(specs[ctx.specs[symbol].market], ctx.atom) for symbol in sorted(ctx.specs)]


@router.get("/fapi/v1/commissionRate")
async def commission_rate(request: Request) -> dict[str, Any]:
    """The account's maker and taker rates (its fee tier by 30-day volume)."""
    ctx, account_id, params = await auth(request, "read", 20)
    spec = spec_of(ctx, params.values)

    def rates(engine: Engine) -> tuple[int, int]:
        account = engine.accounts.get(account_id)
        if account is None:
            raise bad_key()
        tier = fee_tier(engine, account)[1]
        return tier.maker_e8, tier.taker_e8

    maker, taker = await ctx.seq.query(rates)
    return {
        "symbol": str(spec.market),
        "makerCommissionRate": _rate(maker),
        "takerCommissionRate": _rate(taker),
    }


# ---------------------------------------------------------------------- income

INCOME_TYPES = (
    "TRANSFER",
    "REALIZED_PNL",
    "FUNDING_FEE",
    "COMMISSION",
    "INSURANCE_CLEAR",
    "COIN_SWAP_DEPOSIT",  # an OTC spot block trade's incoming asset (readmodel._on_spot_block)
    "COIN_SWAP_WITHDRAW",
)


@router.get("/fapi/v1/income")
async def income(request: Request) -> list[dict[str, Any]]:
    """Wallet changes and why: TRANSFER, REALIZED_PNL, FUNDING_FEE, COMMISSION, INSURANCE_CLEAR."""
    ctx, account_id, params = await auth(request, "read", 30)
    values = params.values
    income_type = values.get("incomeType") or None
    if income_type is not None and income_type not in INCOME_TYPES:
        income_type = "__none__"  # Binance answers an empty list for types this venue never pays
    records = readmodel_of(ctx).income(
        account_id,
        optional_symbol(ctx, values),
        income_type,
        wire.time_param(values, "startTime"),
        wire.time_param(values, "endTime"),
        row_limit(values, 100),
    )
    return [income_json(r, ctx.atom) for r in records]
