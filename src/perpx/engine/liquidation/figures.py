"""Margin figures of a liquidation scope, on the marks: what a liquidation decides on and records.

A *scope* is what one margin ratio covers:

* ``market is None``: a cross account, its cross wallet and every cross position;
* ``market`` given: the account's isolated position in that market, with its isolated margin.

The figures are those of :mod:`perpx.engine.margin` (same formulas, same brackets), kept per
position so an explanation record can show every input. A scope is *liquidatable* when its
margin ratio ``ceil(MM x 10**8 / margin balance)`` is at least ``10**8`` (100%), or its margin
balance is zero or negative while it holds a position.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from perpx.engine import formulas
from perpx.engine.accounts import Account, Position
from perpx.engine.commands import MarketMode
from perpx.engine.events import PositionFigures, ScopeFigures
from perpx.engine.values import RATE_SCALE, MarketId

if TYPE_CHECKING:
    from perpx.engine.core import Core

CROSS = "CROSS"
"""The scope name of an account's cross margin (an isolated scope is named by its market)."""


def scope_name(market: MarketId | None) -> str:
    return CROSS if market is None else str(market)


def is_paused(engine: Core, market: MarketId) -> bool:
    """Liquidations in ``market`` wait: its index is stale (no quorum) or the market is halted."""
    return market in engine.index_stale or engine.modes[market] is MarketMode.HALTED


def scope_positions(account: Account, market: MarketId | None) -> list[Position]:
    """The open positions a scope covers, in market order."""
    if market is not None:
        position = account.positions.get(market)
        return [position] if position is not None and position.qty_lots and position.is_isolated else []
    return [
        account.positions[m]
        for m in sorted(account.positions)
        if account.positions[m].qty_lots and not account.positions[m].is_isolated
    ]


def position_figures(engine: Core, position: Position) -> PositionFigures:
    """One position's figures on its market's mark."""
    spec = engine.specs[position.market]
    mark = engine.marks[position.market]
    contract = spec.contract_atoms
    notional = formulas.notional_atoms(mark, abs(position.qty_lots), contract)
    bracket = spec.bracket_for_notional(notional)
    return PositionFigures(
        market=position.market,
        isolated=position.is_isolated,
        qty_lots=position.qty_lots,
        cost_atoms=position.cost_atoms,
        index_ticks=engine.indexes.get(position.market),
        mark_ticks=mark,
        notional_atoms=notional,
        unrealized_pnl_atoms=formulas.unrealized_pnl_atoms(
            position.qty_lots, position.cost_atoms, mark, contract
        ),
        bracket=bracket.tier,
        mmr_e8=bracket.mmr_e8,
        cum_atoms=bracket.cum_atoms,
        maintenance_atoms=formulas.maintenance_margin_atoms(notional, bracket.mmr_e8, bracket.cum_atoms)
        if position.qty_lots
        else 0,
        isolated_margin_atoms=position.isolated_margin_atoms,
        paused=is_paused(engine, position.market),
    )


def scope_figures(engine: Core, account: Account, market: MarketId | None) -> ScopeFigures:
    """Wallet, margin balance, maintenance margin and ratio of a scope, with each position's figures."""
    rows = tuple(position_figures(engine, p) for p in scope_positions(account, market))
    collateral = 0
    if market is None:
        wallet = account.balance(engine.asset)
        collateral = account.collateral_atoms
    else:
        position = account.positions.get(market)
        wallet = position.isolated_margin_atoms if position is not None else 0
    return _figures(wallet, rows, collateral)


def _figures(wallet_atoms: int, rows: tuple[PositionFigures, ...], collateral_atoms: int = 0) -> ScopeFigures:
    balance = wallet_atoms + collateral_atoms + sum(r.unrealized_pnl_atoms for r in rows)
    maintenance = sum(r.maintenance_atoms for r in rows)
    return ScopeFigures(
        collateral_atoms=collateral_atoms,
        wallet_atoms=wallet_atoms,
        margin_balance_atoms=balance,
        maintenance_atoms=maintenance,
        ratio_e8=formulas.margin_ratio_e8(maintenance, balance),
        positions=rows,
    )


def fund_figures(engine: Core, cash_atoms: int, account: Account) -> ScopeFigures:
    """The insurance fund as a scope: its cash and every position it holds (cross)."""
    rows = tuple(
        position_figures(engine, account.positions[m])
        for m in sorted(account.positions)
        if account.positions[m].qty_lots
    )
    return _figures(cash_atoms, rows)


def liquidatable(figures: ScopeFigures) -> bool:
    """At or over the threshold: ratio >= 100% (or no margin balance left) with a position open."""
    return bool(figures.positions) and figures.ratio_e8 >= RATE_SCALE
