"""``GET /admin/v1/risk``: what the operator console's risk monitor shows, read between batches.

Accounts with positions, worst margin ratio first, each position's distance from its mark to its
liquidation price; per market the index sources (price, age, weight, used or why not), mark, index,
the mark-index gap, funding and open interest against its cap. Every figure comes from the engine's
own state in one sequencer query, so the rows are consistent with each other.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from perpx.engine.margin import isolated_margin_ratio_e8
from perpx.engine.values import RATE_SCALE, format_units
from perpx.server.admin import require_admin
from perpx.server.rest import ctx_of
from perpx.server.wire import money, ms

if TYPE_CHECKING:
    from perpx.engine.config import MarketSpec
    from perpx.engine.engine import Engine
    from perpx.engine.margin import AccountRisk
    from perpx.engine.values import AccountId

router = APIRouter(
    prefix="/admin/v1", tags=["operator console (perpx)"], dependencies=[Depends(require_admin)]
)

NO_MARGIN_E8 = 2**62
"""``margin_ratio_e8`` of a scope whose margin balance is <= 0 (no margin left)."""


def ratio_text(ratio_e8: int) -> str | None:
    """A margin ratio as a decimal (1 = liquidation); ``None`` when the margin balance is <= 0."""
    return None if ratio_e8 >= NO_MARGIN_E8 else format_units(ratio_e8, Decimal(1) / RATE_SCALE)


def distance_pct(mark_ticks: int | None, liquidation_ticks: int | None) -> str | None:
    """How far the mark must move to reach the liquidation price, in percent of the mark (2 decimals, down).

    ``None`` without a mark or a liquidation price; 0 when the mark is already past it.
    """
    if not mark_ticks or liquidation_ticks is None:
        return None
    gap = abs(mark_ticks - liquidation_ticks) * 10_000 // mark_ticks
    return format_units(gap, Decimal("0.01"))


def gap_bps(mark_ticks: int | None, index_ticks: int | None) -> str | None:
    """(mark - index) / index in basis points, 2 decimals, rounded toward zero."""
    if mark_ticks is None or not index_ticks:
        return None
    scaled = (mark_ticks - index_ticks) * 1_000_000 // index_ticks
    if scaled < 0 and (mark_ticks - index_ticks) * 1_000_000 % index_ticks:
        scaled += 1
    return format_units(scaled, Decimal("0.01"))


def _price(ticks: int | None, spec: MarketSpec) -> str | None:
    return None if ticks is None else format_units(ticks, spec.tick_size)


def _accounts(
    engine: Engine, specs: dict[str, MarketSpec], atom: Decimal, limit: int
) -> list[dict[str, Any]]:
    """The ``limit`` accounts with the worst margin ratio, worst first (ties by account id).

    Every account with a position costs one :meth:`~perpx.engine.core.Core.risk`; only the rows
    shown get their liquidation prices (the bracket loop), so a poll costs about one full scan.
    """
    ranked: list[tuple[int, AccountId, AccountRisk]] = []
    if limit == 0:
        return []
    for account_id, account in engine.accounts.items():
        if not any(p.qty_lots for p in account.positions.values()):
            continue
        risk = engine.risk(account_id)
        worst = risk.margin_ratio_e8 if risk.cross_maintenance_margin_atoms else 0
        for position in risk.positions:
            if position.qty_lots and account.positions[position.market].is_isolated:
                worst = max(worst, isolated_margin_ratio_e8(position))
        ranked.append((-worst, account_id, risk))
    ranked.sort(key=lambda r: (r[0], int(r[1])))
    return [_account_row(engine, specs, atom, a, risk, -negated) for negated, a, risk in ranked[:limit]]


def _account_row(
    engine: Engine,
    specs: dict[str, MarketSpec],
    atom: Decimal,
    account_id: AccountId,
    risk: AccountRisk,
    worst_e8: int,
) -> dict[str, Any]:
    account = engine.accounts[account_id]
    positions = []
    for position in risk.positions:
        if not position.qty_lots:
            continue
        spec = specs[str(position.market)]
        mark = engine.marks.get(position.market)
        liquidation = engine.liquidation.liquidation_price(account_id, position.market)
        isolated = account.positions[position.market].is_isolated
        ratio = isolated_margin_ratio_e8(position) if isolated else risk.margin_ratio_e8
        positions.append(
            {
                "symbol": str(position.market),
                "positionAmt": format_units(position.qty_lots, spec.lot_size),
                "marginType": "isolated" if isolated else "cross",
                "markPrice": _price(mark, spec),
                "liquidationPrice": _price(liquidation, spec),
                "distanceToLiquidationPct": distance_pct(mark, liquidation),
                "unrealizedProfit": money(position.unrealized_pnl_atoms, atom),
                "maintMargin": money(position.maintenance_margin_atoms, atom),
                "marginRatio": ratio_text(ratio),
            }
        )
    return {
        "accountId": int(account_id),
        "name": account.name,
        "walletBalance": money(risk.wallet_atoms, atom),
        "marginBalance": money(risk.margin_balance_atoms, atom),
        "maintMargin": money(risk.cross_maintenance_margin_atoms, atom),
        "marginRatio": ratio_text(risk.margin_ratio_e8) if risk.cross_maintenance_margin_atoms else "0",
        "worstMarginRatio": ratio_text(worst_e8),
        "positions": positions,
    }


def _markets(engine: Engine, specs: dict[str, MarketSpec]) -> list[dict[str, Any]]:
    answer = []
    for symbol, spec in specs.items():
        view = engine.pricing.view(spec.market)
        pricing = engine.pricing.markets.get(spec.market)
        used = {name for name, _ in view.sources_used}
        dropped = dict(view.sources_dropped)
        sources = []
        if spec.index is not None:
            for name, weight in sorted(spec.index.weights.items()):
                quote = None if pricing is None else pricing.quotes.get(name)
                sources.append(
                    {
                        "source": name,
                        "weight": weight,
                        "price": None if quote is None else _price(quote.price_ticks, spec),
                        "ageMs": None if quote is None else max(0, engine.now_ns - quote.ts_ns) // 1_000_000,
                        "used": name in used,
                        "dropped": dropped.get(name),
                    }
                )
        cap = spec.risk.max_open_interest_lots
        rate = view.predicted_funding_rate_e8
        answer.append(
            {
                "symbol": symbol,
                "mode": engine.modes[spec.market].value,
                "markPrice": _price(view.mark_ticks, spec),
                "indexPrice": _price(view.index_ticks, spec),
                "indexStale": view.index_stale,
                "markIndexGapBps": gap_bps(view.mark_ticks, view.index_ticks),
                "fundingRate": None if rate is None else format_units(rate, Decimal(1) / RATE_SCALE),
                "nextFundingTime": None if view.next_funding_ns is None else ms(view.next_funding_ns),
                "openInterest": format_units(engine.open_interest_lots[spec.market], spec.lot_size),
                "openInterestCap": None if cap is None else format_units(cap, spec.lot_size),
                "openInterestOfCapPct": None
                if not cap
                else format_units(engine.open_interest_lots[spec.market] * 10_000 // cap, Decimal("0.01")),
                "sources": sources,
            }
        )
    return answer


@router.get("/risk")
async def risk(
    request: Request,
    limit: Annotated[
        int, Query(ge=0, le=1000, description="The N accounts with the worst margin ratio (0: markets only).")
    ] = 100,
) -> dict[str, Any]:
    """Accounts by margin ratio (worst first) with distance to liquidation; markets' prices, funding and OI."""
    ctx = ctx_of(request)
    specs = ctx.specs
    atom = ctx.atom

    def read(engine: Engine) -> dict[str, Any]:
        return {
            "venueTimeMs": ms(engine.now_ns),
            "asset": str(engine.asset),
            "accounts": _accounts(engine, specs, atom, limit),
            "markets": _markets(engine, {s: engine.specs[spec.market] for s, spec in specs.items()}),
        }

    return await ctx.seq.query(read)
