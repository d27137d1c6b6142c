"""Secured-loan routes, Binance's flexible crypto-loan shape: ``/sapi/v2/loan/flexible/*``, signed.

Borrow, repay and adjust-LTV submit one engine command each (``BorrowLoan``, ``RepayLoan``,
``AdjustLoanCollateral``) and answer from its events; ``ongoing/orders``, ``loanable/data`` and
``collateral/data`` query the engine between commands; the four history routes read the loan
history read model (:mod:`perpx.server.lending_history`). Amounts are decimal strings of the coin,
LTVs and rates decimal shares (``"0.78"``), times in ms, as Binance sends them; pages are
``current`` (from 1) and ``size`` (1..100, default 10) and every list answers ``{"rows", "total"}``.

Engine refusals keep their code (``-9530..-9559`` for lending, ``-2018`` for a balance that is
too small) and their message.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from perpx.engine.codes import RejectCode
from perpx.engine.commands import AdjustLoanCollateral, BorrowLoan, LtvDirection, RepayLoan, SubmitAssetQuote
from perpx.engine.config import AssetSpec
from perpx.engine.engine import Engine
from perpx.engine.events import (
    CommandRejected,
    LoanBorrowed,
    LoanCollateralAdjusted,
    LoanLiquidated,
    LoanRepaid,
)
from perpx.engine.lending import formulas
from perpx.engine.values import AssetId, format_units
from perpx.server import wire
from perpx.server.admin import require_admin
from perpx.server.context import ServerContext
from perpx.server.errors import ApiError, engine_refusal, illegal_characters, mandatory, service_unavailable
from perpx.server.lending_history import LoanHistory
from perpx.server.rest import charge, ctx_of, params_of
from perpx.server.trading.params import answer, auth

router = APIRouter(tags=["secured loans (signed)"])
admin_router = APIRouter(prefix="/admin/v1", tags=["admin (perpx)"])
"""Admin routes of the lending stage (served by the admin listener)."""

E8 = Decimal("0.00000001")
PREFIX = "/sapi/v2/loan/flexible"


def _ratio(e8: int) -> str:
    return format_units(e8, E8)


def _coin(
    ctx: ServerContext, values: Mapping[str, str], name: str, optional: bool = False
) -> AssetSpec | None:
    text = values.get(name)
    if not text:
        if optional:
            return None
        raise mandatory(name)
    spec = ctx.config.assets.get(AssetId(text))
    if spec is None:
        raise ApiError(
            400,
            int(RejectCode.UNKNOWN_ASSET),
            f"{name} {text!r} is not an asset of this venue; assets: {', '.join(ctx.config.assets)}",
        )
    return spec


def _required_coin(ctx: ServerContext, values: Mapping[str, str], name: str) -> AssetSpec:
    spec = _coin(ctx, values, name)
    assert spec is not None
    return spec


def _amount(values: Mapping[str, str], name: str, spec: AssetSpec, optional: bool = False) -> int | None:
    value = wire.decimal_param(values, name, optional=optional)
    return None if value is None else wire.to_atoms(value, spec.atom, name)


def _money(ctx: ServerContext, asset: AssetId, atoms: int) -> str:
    return format_units(atoms, ctx.config.assets[asset].atom)


@router.post(f"{PREFIX}/borrow")
async def borrow(request: Request) -> dict[str, Any]:
    """Borrow ``loanCoin`` against ``collateralCoin``: ``loanAmount``, ``collateralAmount`` or both (a custom LTV)."""
    ctx, account_id, params = await auth(request, "trade")
    values = params.values
    loan = _required_coin(ctx, values, "loanCoin")
    collateral = _required_coin(ctx, values, "collateralCoin")
    loan_atoms = _amount(values, "loanAmount", loan, optional=True)
    collateral_atoms = _amount(values, "collateralAmount", collateral, optional=True)
    if loan_atoms is None and collateral_atoms is None:
        raise ApiError(400, -1102, "Send loanAmount or collateralAmount (or both, for a custom LTV).")
    applied = await ctx.seq.submit(
        lambda ts: BorrowLoan(
            ts_ns=ts,
            account_id=account_id,
            loan_asset=loan.asset,
            collateral_asset=collateral.asset,
            loan_atoms=loan_atoms,
            collateral_atoms=collateral_atoms,
        )
    )
    done = answer(applied, LoanBorrowed, "borrow")
    return {
        "loanCoin": str(done.loan_asset),
        "loanAmount": _money(ctx, done.loan_asset, done.loan_atoms),
        "collateralCoin": str(done.collateral_asset),
        "collateralAmount": _money(ctx, done.collateral_asset, done.collateral_atoms),
        "status": "Succeeds",
    }


@router.post(f"{PREFIX}/repay")
async def repay(request: Request) -> dict[str, Any]:
    """Repay ``repayAmount`` (``collateralReturn`` default TRUE; ``fullRepayment`` repays all and closes)."""
    ctx, account_id, params = await auth(request, "trade")
    values = params.values
    loan = _required_coin(ctx, values, "loanCoin")
    collateral = _required_coin(ctx, values, "collateralCoin")
    full = wire.bool_param(values, "fullRepayment")
    repay_atoms = _amount(values, "repayAmount", loan, optional=full) or 0
    collateral_return = wire.bool_param(values, "collateralReturn", default=True)
    applied = await ctx.seq.submit(
        lambda ts: RepayLoan(
            ts_ns=ts,
            account_id=account_id,
            loan_asset=loan.asset,
            collateral_asset=collateral.asset,
            repay_atoms=repay_atoms,
            collateral_return=collateral_return,
            full_repayment=full,
        )
    )
    done = answer(applied, LoanRepaid, "repayment")
    ltv = await ctx.seq.query(lambda engine: _current_ltv(engine, done))
    return {
        "loanCoin": str(done.loan_asset),
        "collateralCoin": str(done.collateral_asset),
        "remainingDebt": _money(ctx, done.loan_asset, done.debt_atoms),
        "remainingCollateral": _money(ctx, done.collateral_asset, done.collateral_atoms),
        "fullRepayment": done.closed,
        "currentLTV": ltv,
        "repayStatus": "Repaid" if done.closed else "Repaying",
    }


def _current_ltv(engine: Engine, done: LoanRepaid) -> str:
    loan = engine.lending.loan_of(done.account_id, done.loan_asset, done.collateral_asset)
    if loan is None:
        return "0"
    ltv = engine.lending.ltv_e8(loan)
    return "" if ltv is None else _ratio(ltv)


@router.post(f"{PREFIX}/adjust/ltv")
async def adjust_ltv(request: Request) -> dict[str, Any]:
    """Add (``ADDITIONAL``) or take back (``REDUCED``, within the initial LTV) ``adjustmentAmount`` of collateral."""
    ctx, account_id, params = await auth(request, "trade")
    values = params.values
    loan = _required_coin(ctx, values, "loanCoin")
    collateral = _required_coin(ctx, values, "collateralCoin")
    amount = _amount(values, "adjustmentAmount", collateral)
    assert amount is not None
    direction = LtvDirection(wire.enum_param(values, "direction", ("ADDITIONAL", "REDUCED")))
    applied = await ctx.seq.submit(
        lambda ts: AdjustLoanCollateral(
            ts_ns=ts,
            account_id=account_id,
            loan_asset=loan.asset,
            collateral_asset=collateral.asset,
            amount_atoms=amount,
            direction=direction,
        )
    )
    done = answer(applied, LoanCollateralAdjusted, "LTV adjustment")
    return {
        "loanCoin": str(done.loan_asset),
        "collateralCoin": str(done.collateral_asset),
        "direction": done.direction.value,
        "adjustmentAmount": _money(ctx, done.collateral_asset, done.amount_atoms),
        "currentLTV": "" if done.ltv_after_e8 < 0 else _ratio(done.ltv_after_e8),
        "status": "Succeeds",
    }


@router.get(f"{PREFIX}/ongoing/orders")
async def ongoing_orders(request: Request) -> dict[str, Any]:
    """The account's open loans: ``totalDebt``, ``collateralAmount``, ``currentLTV`` (empty while an index is stale)."""
    ctx, account_id, params = await auth(request, "read", 10)
    values = params.values
    loan_coin = _coin(ctx, values, "loanCoin", optional=True)
    collateral_coin = _coin(ctx, values, "collateralCoin", optional=True)
    offset, size = _page(values)

    def rows(engine: Engine) -> list[dict[str, Any]]:
        found = []
        for loan in engine.lending.loans.values():
            if loan.account_id != account_id:
                continue
            if loan_coin is not None and loan.loan_asset != loan_coin.asset:
                continue
            if collateral_coin is not None and loan.collateral_asset != collateral_coin.asset:
                continue
            ltv = engine.lending.ltv_e8(loan)
            found.append(
                {
                    "loanCoin": str(loan.loan_asset),
                    "totalDebt": _money(ctx, loan.loan_asset, loan.debt_atoms),
                    "collateralCoin": str(loan.collateral_asset),
                    "collateralAmount": _money(ctx, loan.collateral_asset, loan.collateral_atoms),
                    "currentLTV": "" if ltv is None else _ratio(ltv),
                }
            )
        return found

    found = await ctx.seq.query(rows)
    return {"rows": found[offset : offset + size], "total": len(found)}


@router.get(f"{PREFIX}/loanable/data")
async def loanable_data(request: Request) -> dict[str, Any]:
    """What can be borrowed, the rate now (annual, at the lender's utilisation) and the most the lender can lend."""
    ctx, _account_id, params = await auth(request, "read", 10)
    wanted = _coin(ctx, params.values, "loanCoin", optional=True)
    spec = ctx.config.lending
    if spec is None:
        return {"rows": [], "total": 0}

    def rows(engine: Engine) -> list[dict[str, Any]]:
        found = []
        for asset, terms in spec.loanable.items():
            if wanted is not None and wanted.asset != asset:
                continue
            available = engine.lending.lender_available_atoms(asset)
            borrowed = sum(
                loan.debt_atoms for loan in engine.lending.loans.values() if loan.loan_asset == asset
            )
            rate = formulas.annual_rate_e8(terms, formulas.utilisation_e8(borrowed, available))
            found.append(
                {
                    "loanCoin": str(asset),
                    "flexibleInterestRate": _ratio(rate),
                    "flexibleMinLimit": _money(ctx, asset, 1),
                    "flexibleMaxLimit": _money(ctx, asset, available),
                }
            )
        return found

    found = await ctx.seq.query(rows)
    return {"rows": found, "total": len(found)}


@router.get(f"{PREFIX}/collateral/data")
async def collateral_data(request: Request) -> dict[str, Any]:
    """Accepted collateral and its ``initialLTV``, ``marginCallLTV``, ``liquidationLTV`` and per-account ``maxLimit``."""
    ctx, _account_id, params = await auth(request, "read", 10)
    wanted = _coin(ctx, params.values, "collateralCoin", optional=True)
    spec = ctx.config.lending
    found = []
    for asset, terms in ({} if spec is None else spec.collateral).items():
        if wanted is not None and wanted.asset != asset:
            continue
        cap = ctx.config.assets[asset].max_collateral_atoms
        found.append(
            {
                "collateralCoin": str(asset),
                "initialLTV": _ratio(terms.initial_ltv_e8),
                "marginCallLTV": _ratio(terms.margin_call_ltv_e8),
                "liquidationLTV": _ratio(terms.liquidation_ltv_e8),
                "maxLimit": "" if cap is None else _money(ctx, asset, cap),
            }
        )
    return {"rows": found, "total": len(found)}


# ---------------------------------------------------------------------- history


def _page(values: Mapping[str, str]) -> tuple[int, int]:
    current = wire.int_param(values, "current", default=1, lo=1, hi=10**6)
    size = wire.int_param(values, "limit", default=10, lo=1, hi=100)
    return (current - 1) * size, size


def _history_of(ctx: ServerContext) -> LoanHistory:
    history = ctx.components.lending
    if history is None:
        raise service_unavailable("the loan history is not kept by this server")
    return history


async def _history(request: Request, kind: str) -> tuple[ServerContext, list[Any], int]:
    ctx, account_id, params = await auth(request, "read", 10)
    values = params.values
    loan_coin = _coin(ctx, values, "loanCoin", optional=True)
    collateral_coin = _coin(ctx, values, "collateralCoin", optional=True)
    start = wire.time_param(values, "startTime")
    end = wire.time_param(values, "endTime")
    offset, size = _page(values)
    rows, total = _history_of(ctx).rows(
        kind,
        int(account_id),
        None if loan_coin is None else str(loan_coin.asset),
        None if collateral_coin is None else str(collateral_coin.asset),
        None if start is None else start * 1_000_000,
        None if end is None else end * 1_000_000 + 999_999,
        offset,
        size,
    )
    return ctx, rows, total


@router.get(f"{PREFIX}/borrow/history")
async def borrow_history(request: Request) -> dict[str, Any]:
    """Every borrow of the account, newest first."""
    ctx, rows, total = await _history(request, "borrow")
    return {
        "rows": [
            {
                "loanCoin": str(e.loan_asset),
                "initialLoanAmount": _money(ctx, e.loan_asset, e.loan_atoms),
                "collateralCoin": str(e.collateral_asset),
                "initialCollateralAmount": _money(ctx, e.collateral_asset, e.collateral_atoms),
                "borrowTime": e.ts_ns // 1_000_000,
                "status": "Succeeds",
            }
            for e in rows
            if isinstance(e, LoanBorrowed)
        ],
        "total": total,
    }


@router.get(f"{PREFIX}/repay/history")
async def repay_history(request: Request) -> dict[str, Any]:
    """Every repayment of the account, newest first."""
    ctx, rows, total = await _history(request, "repay")
    return {
        "rows": [
            {
                "loanCoin": str(e.loan_asset),
                "repayAmount": _money(ctx, e.loan_asset, e.repaid_atoms),
                "collateralCoin": str(e.collateral_asset),
                "collateralReturn": _money(ctx, e.collateral_asset, e.collateral_returned_atoms),
                "repayStatus": "Repaid",
                "repayTime": e.ts_ns // 1_000_000,
            }
            for e in rows
            if isinstance(e, LoanRepaid)
        ],
        "total": total,
    }


@router.get(f"{PREFIX}/ltv/adjustment/history")
async def ltv_adjustment_history(request: Request) -> dict[str, Any]:
    """Every collateral adjustment of the account, newest first, with the LTV before and after."""
    ctx, rows, total = await _history(request, "adjust")
    return {
        "rows": [
            {
                "loanCoin": str(e.loan_asset),
                "collateralCoin": str(e.collateral_asset),
                "direction": e.direction.value,
                "collateralAmount": _money(ctx, e.collateral_asset, e.amount_atoms),
                "preLTV": "" if e.ltv_before_e8 < 0 else _ratio(e.ltv_before_e8),
                "afterLTV": "" if e.ltv_after_e8 < 0 else _ratio(e.ltv_after_e8),
                "adjustTime": e.ts_ns // 1_000_000,
            }
            for e in rows
            if isinstance(e, LoanCollateralAdjusted)
        ],
        "total": total,
    }


@router.get(f"{PREFIX}/liquidation/history")
async def liquidation_history(request: Request) -> dict[str, Any]:
    """Every liquidation of the account's loans, newest first: debt repaid, collateral sold, penalty, bad debt."""
    ctx, rows, total = await _history(request, "liquidation")
    return {
        "rows": [_liquidation_row(ctx, e) for e in rows if isinstance(e, LoanLiquidated)],
        "total": total,
    }


def _liquidation_row(ctx: ServerContext, e: LoanLiquidated) -> dict[str, Any]:
    collateral_spec = ctx.config.assets[e.collateral_asset]
    loan_spec = ctx.config.assets[e.loan_asset]
    at_index = formulas.value_atoms(e.collateral_seized_atoms, e.index_atoms, collateral_spec.decimals)
    return {
        "loanCoin": str(e.loan_asset),
        "liquidationDebt": format_units(e.debt_repaid_atoms, loan_spec.atom),
        "collateralCoin": str(e.collateral_asset),
        "liquidationCollateralAmount": format_units(e.collateral_seized_atoms, collateral_spec.atom),
        "returnCollateralAmount": format_units(e.collateral_returned_atoms, collateral_spec.atom),
        "liquidationFee": _ratio(e.penalty_e8),
        "liquidationStartingPrice": format_units(e.index_atoms, ctx.config.settlement.atom),
        "liquidationValue": format_units(at_index, ctx.config.settlement.atom),
        "badDebt": format_units(e.bad_debt_atoms, loan_spec.atom),
        "liquidationStartingTime": e.ts_ns // 1_000_000,
        "status": "Liquidated",
    }


# ---------------------------------------------------------------------- admin: asset index quotes


class AssetQuote(BaseModel):
    asset: str = Field(description="An asset with an [assets.X.index] table, e.g. BTC.")
    source: str = Field(description="One of the asset's index sources.")
    price: str = Field(
        description="The source's price of one whole unit, in the settlement asset (decimal string)."
    )


@admin_router.post("/asset-prices")
async def asset_price(request: Request, body: AssetQuote) -> dict[str, Any]:
    """Feed one spot source's quote to an asset's index (collateral prices for loans and margin)."""
    require_admin(request)
    ctx = ctx_of(request)
    spec = _coin(ctx, {"asset": body.asset}, "asset")
    assert spec is not None
    price = wire.to_atoms(wire.plain_decimal(body.price, "price"), ctx.config.settlement.atom, "price")
    source = body.source
    try:
        source.encode("utf-8")  # a lone surrogate is no journal record: refused here, at the edge
    except UnicodeEncodeError:
        raise illegal_characters("source", f"{source[:40]!r} is not valid UTF-8 text") from None
    applied = await ctx.seq.submit(
        lambda ts: SubmitAssetQuote(ts_ns=ts, asset=spec.asset, source=source, price_atoms=price)
    )
    own = applied.events.own
    if own and isinstance(own[0], CommandRejected):
        raise engine_refusal(own[0].code, own[0].message)
    index = await ctx.seq.query(lambda engine: engine.lending.index_atoms(spec.asset))
    return {
        "asset": str(spec.asset),
        "source": source,
        "price": format_units(price, ctx.config.settlement.atom),
        "indexPrice": "" if index is None else format_units(index, ctx.config.settlement.atom),
        "stale": index is None,
    }


# ---------------------------------------------------------------------- public: asset indexes


@router.get("/fapi/v1/assetIndex")
async def asset_index(request: Request) -> Any:
    """Binance's Multi-Assets index of each priced asset (``BTCUSD``): index, haircut buffers and rates.

    ``bidBuffer`` is the asset's ``collateral_haircut`` and ``bidRate = index x (1 - haircut)``;
    perpx sells no collateral at an ask, so ``askBuffer`` is 0 and ``askRate`` the index. A stale
    index shows its assets with an empty ``index``. With ``symbol`` one object, else a list.
    """
    params = await params_of(request)
    symbol = params.values.get("symbol") or None
    charge(request, 1 if symbol else 10)
    ctx = ctx_of(request)
    priced = [spec for spec in ctx.config.assets.values() if spec.index is not None]
    if symbol is not None:
        priced = [spec for spec in priced if f"{spec.asset}USD" == symbol]
        if not priced:
            raise ApiError(
                400,
                -1121,
                f"Invalid symbol {symbol!r}: the asset indexes are {', '.join(f'{a.asset}USD' for a in ctx.config.assets.values() if a.index is not None) or 'none'}.",
            )
    now_ns, indexes = await ctx.seq.query(
        lambda engine: (engine.now_ns, [engine.lending.index_atoms(spec.asset) for spec in priced])
    )
    atom = ctx.config.settlement.atom
    rows = []
    for spec, index in zip(priced, indexes, strict=True):
        bid = None if index is None else index * (10**8 - spec.collateral_haircut_e8) // 10**8
        rows.append(
            {
                "symbol": f"{spec.asset}USD",
                "time": now_ns // 1_000_000,
                "index": "" if index is None else format_units(index, atom),
                "bidBuffer": _ratio(spec.collateral_haircut_e8),
                "askBuffer": "0",
                "bidRate": "" if bid is None else format_units(bid, atom),
                "askRate": "" if index is None else format_units(index, atom),
                "autoExchangeBidBuffer": _ratio(spec.collateral_haircut_e8),
                "autoExchangeAskBuffer": "0",
                "autoExchangeBidRate": "" if bid is None else format_units(bid, atom),
                "autoExchangeAskRate": "" if index is None else format_units(index, atom),
            }
        )
    return rows[0] if symbol is not None else rows
