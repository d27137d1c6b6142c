"""``GET /perpx/v1/insuranceFund``: the insurance fund's takeover and unwind policy, and what it holds.

Binance publishes its fund's balance (``GET /fapi/v1/insuranceBalance``) but not the rules by which
it takes over bankrupt positions; a venue whose fund may refuse a takeover (and so send it to ADL)
owes its traders those rules, since they decide who may be auto-deleveraged. The answer states,
per market, the policy of :mod:`perpx.engine.liquidation.unwind` as configured:

``takeoverCap``        the fund's whole book may reach this multiple of its equity by a takeover
                       (``null``: no cap, a takeover is bounded only by the fund's equity)
``unwindClip``         the share of a fund position sent to the book per step (``"0"``: never unwound)
``unwindIntervalSec``  venue seconds between two steps
``unwindLimit``        how far from the mark an unwind order may fill (0.01 = 1%)

and the fund now: its cash (the insurance ledger line), account 0's wallet, its equity on the
marks, and each position it holds with its notional on the mark. Decimals are strings, as
everywhere on the Binance surface. Public, weight 1; read between batches (one consistent state).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request

from perpx.engine import formulas
from perpx.engine.config import MarketSpec
from perpx.engine.engine import Engine
from perpx.engine.values import RATE_SCALE, MarketId
from perpx.server import wire
from perpx.server.rest import ctx_of, public

router = APIRouter(tags=["market data"])


def rate_text(rate_e8: int) -> str:
    """A rate with 8 decimals as a plain decimal string (``50_000_000`` -> ``"0.5"``)."""
    return f"{(Decimal(rate_e8) / RATE_SCALE).normalize():f}"


def policy_json(spec: MarketSpec) -> dict[str, Any]:
    """One market's takeover and unwind policy, as configured."""
    risk = spec.risk
    cap = risk.insurance_takeover_cap_e8
    return {
        "symbol": str(spec.market),
        "takeoverCap": None if cap is None else rate_text(cap),
        "unwindClip": rate_text(risk.insurance_unwind_clip_e8),
        "unwindIntervalSec": risk.insurance_unwind_interval_s,
        "unwindLimit": rate_text(risk.insurance_unwind_limit_e8),
    }


def fund_json(engine: Engine) -> dict[str, Any]:
    """The fund's policy per market and its money and positions now (runs between batches)."""
    atom = engine.config.settlement.atom
    fund = engine.liquidation.insurance_fund()
    positions = []
    for market, lots in fund.positions.items():
        spec = engine.specs[market]
        mark = engine.marks[market]
        positions.append(
            {
                "symbol": str(market),
                "positionAmt": wire.qty(spec, lots),
                "markPrice": wire.price(spec, mark),
                "notional": wire.money(formulas.notional_atoms(mark, lots, spec.contract_atoms), atom),
            }
        )
    return {
        "asset": str(engine.asset),
        "cash": wire.money(fund.cash_atoms, atom),
        "walletBalance": wire.money(fund.wallet_atoms, atom),
        "equity": wire.money(fund.equity_atoms, atom),
        "nextUnwindTime": next_unwind_ms(engine, fund.positions),
        "positions": positions,
        "policy": [policy_json(engine.specs[MarketId(m)]) for m in sorted(engine.specs)],
    }


def next_unwind_ms(engine: Engine, positions: dict[MarketId, int]) -> int | None:
    """When the fund's next unwind step may run (ms); None when it holds nothing a market unwinds."""
    if not any(engine.specs[m].risk.insurance_unwind_clip_e8 for m in positions):
        return None
    return wire.ms(max(engine.liquidation.unwind_due_ns, engine.now_ns))


@router.get("/perpx/v1/insuranceFund")
async def insurance_fund(request: Request) -> dict[str, Any]:
    """The insurance fund's takeover cap and unwind policy per market, its cash, equity and positions."""
    await public(request)
    return await ctx_of(request).seq.query(fund_json)
