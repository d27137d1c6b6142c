"""Auto-deleveraging: the queue of opposite positions, its 5-bucket quantile, and who gets closed.

When the insurance fund cannot accept a bankrupt position, the rest of it is closed against
positions on the other side of the same market, at the bankruptcy price, without fee, in the
order of a ranking; each counterparty's open orders are cancelled first. The insurance fund and
the bankrupt account itself are never in the queue.

Rankings (per market, ``adl_ranking``; scores are exact fractions, ties go to the lower account id)
-------------------------------------------------------------------------------------------------
``binance`` (default), as quoted by Binance::

    PnL%        = max(0, uPnL) / max(1 unit, WB)
    MarginRatio = MM / (WB + uPnL)             (0 when WB + uPnL <= 0)
    score       = PnL% x MarginRatio

``WB`` is the cross wallet and ``MM`` / ``WB + uPnL`` the cross figures for a cross position, the
isolated margin and the position's own figures for an isolated one; ``uPnL`` is the position's.

``profit_leverage`` (BitMEX-style; Bybit ranks by "profit and effective leverage")::

    PnL%    = uPnL / |entry notional|          EffLev = notional / margin balance of its scope
    score   = PnL% x EffLev  if PnL% > 0  else  PnL% / EffLev

Quantile: the queue of one side sorted by score, highest first; position ``i`` (0-based) of ``n``
shows ``5 - floor(5 i / n)`` lights: 5 for the first fifth (deleveraged first) down to 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

from perpx.engine import formulas
from perpx.engine.accounts import Account, Position
from perpx.engine.liquidation.insurance import INSURANCE_ACCOUNT
from perpx.engine.values import AccountId, MarketId

if TYPE_CHECKING:
    from perpx.engine.core import Core
    from perpx.engine.liquidation.watch import RiskWatch

QUANTILE_BUCKETS = 5
_INFINITE = Fraction(2**62)


@dataclass(frozen=True, slots=True)
class Ranked:
    """One position in an ADL queue."""

    score: Fraction
    account_id: AccountId
    position: Position


def _cross_figures(engine: Core, account: Account) -> tuple[int, int, int]:
    """``(wallet, maintenance, margin balance)`` of the account's cross scope."""
    wallet = account.balance(engine.asset)
    balance = wallet + account.collateral_atoms
    maintenance = 0
    for market, position in account.positions.items():
        if position.qty_lots == 0 or position.is_isolated:
            continue
        spec = engine.specs[market]
        mark = engine.marks[market]
        notional = formulas.notional_atoms(mark, abs(position.qty_lots), spec.contract_atoms)
        bracket = spec.bracket_for_notional(notional)
        maintenance += formulas.maintenance_margin_atoms(notional, bracket.mmr_e8, bracket.cum_atoms)
        balance += formulas.unrealized_pnl_atoms(
            position.qty_lots, position.cost_atoms, mark, spec.contract_atoms
        )
    return wallet, maintenance, balance


def score(engine: Core, account: Account, position: Position, ranking: str) -> Fraction:
    """The ADL score of ``position`` (higher = deleveraged earlier)."""
    spec = engine.specs[position.market]
    mark = engine.marks[position.market]
    contract = spec.contract_atoms
    pnl = formulas.unrealized_pnl_atoms(position.qty_lots, position.cost_atoms, mark, contract)
    notional = formulas.notional_atoms(mark, abs(position.qty_lots), contract)
    if position.is_isolated:
        wallet = position.isolated_margin_atoms
        bracket = spec.bracket_for_notional(notional)
        maintenance = formulas.maintenance_margin_atoms(notional, bracket.mmr_e8, bracket.cum_atoms)
        balance = wallet + pnl
    else:
        wallet, maintenance, balance = _cross_figures(engine, account)
    if ranking == "profit_leverage":
        pnl_pct = Fraction(pnl, max(1, abs(position.cost_atoms)))
        leverage = Fraction(notional, balance) if balance > 0 else _INFINITE
        return pnl_pct * leverage if pnl_pct > 0 else pnl_pct / leverage
    unit = 10**engine.config.settlement.decimals
    pnl_pct = Fraction(max(0, pnl), max(unit, wallet))
    ratio = Fraction(maintenance, balance) if balance > 0 else Fraction(0)
    return pnl_pct * ratio


def queue(
    engine: Core, watch: RiskWatch, market: MarketId, side_sign: int, exclude: AccountId
) -> list[Ranked]:
    """Positions of sign ``side_sign`` in ``market`` in ADL order (the fund and ``exclude`` left out)."""
    for changed in (engine.risk_dirty, watch.pending):  # holders not banded yet
        for account_id in changed:
            account = engine.accounts.get(account_id)
            if account is not None:
                watch.note_holdings(account)
    ranking = engine.specs[market].risk.adl_ranking
    rows: list[Ranked] = []
    for account_id in sorted(watch.holders[market]):
        if account_id in (INSURANCE_ACCOUNT, exclude):
            continue
        account = engine.accounts[account_id]
        position = account.positions.get(market)
        if position is None or position.qty_lots == 0 or (position.qty_lots > 0) != (side_sign > 0):
            continue
        rows.append(Ranked(score(engine, account, position, ranking), account_id, position))
    rows.sort(key=lambda row: (-row.score, row.account_id))
    return rows


def quantile_of(index: int, size: int) -> int:
    """Lights (1..5) of the ``index``-th (0-based) of ``size`` positions in a queue."""
    return QUANTILE_BUCKETS - (QUANTILE_BUCKETS * index) // size


def quantile(engine: Core, watch: RiskWatch, account_id: AccountId, market: MarketId) -> int:
    """ADL quantile of the account's position in ``market``: 1..5 (5 = first to be deleveraged), 0 if flat."""
    account = engine.accounts.get(account_id)
    position = account.positions.get(market) if account is not None else None
    if position is None or position.qty_lots == 0 or account_id == INSURANCE_ACCOUNT:
        return 0
    rows = queue(engine, watch, market, 1 if position.qty_lots > 0 else -1, INSURANCE_ACCOUNT)
    for index, row in enumerate(rows):
        if row.account_id == account_id:
            return quantile_of(index, len(rows))
    return 0
