"""Margin figures of accounts and isolated positions, on the mark price.

Definitions (Binance USDS-M, one-way mode; formulas in :mod:`formulas`):

* ``margin balance  = wallet + unrealised PnL`` (cross: cross wallet and all
  cross positions; isolated: the position's isolated margin and its PnL);
* ``available       = wallet + collateral uPnL - cross position IM - all order IM``
  (orders of isolated positions reserve from the cross wallet until they fill);
  *collateral uPnL* values each cross position at the less favourable of its mark and
  its index (``upnl_collateral = "conservative"``, the default) or at the mark alone
  (``"mark"``, Binance): profit printed by a mark that has left its index backs no new
  exposure;
* ``withdrawable    = max(0, min(wallet, wallet + min(0, collateral uPnL) - IM - order IM))``:
  unrealised profit is never withdrawable, margin in use never is;
* ``margin ratio    = maintenance margin / margin balance`` (liquidation at 100%).

In Multi-Assets Mode the cross wallet also counts ``Account.collateral_atoms`` (every collateral
asset at index x (1 - haircut), :mod:`.collateral`): it adds to the margin balance, the available
and the free margin alike, and the settlement wallet itself may be below zero (a debt).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from perpx.engine import formulas
from perpx.engine.accounts import Account, Position
from perpx.engine.commands import MarginMode
from perpx.engine.config import MarketSpec
from perpx.engine.values import AssetId, MarketId

_ISOLATED: Final = MarginMode.ISOLATED  # a constant, not a module lookup, when compiled with mypyc


@dataclass(frozen=True, slots=True)
class PositionRisk:
    """Figures of one position on the mark price."""

    market: MarketId
    qty_lots: int
    notional_atoms: int
    unrealized_pnl_atoms: int
    initial_margin_atoms: int
    maintenance_margin_atoms: int
    order_margin_atoms: int
    isolated_margin_atoms: int
    bracket: int


@dataclass(frozen=True, slots=True)
class AccountRisk:
    """Cross-margin figures of one account, plus each position's."""

    wallet_atoms: int
    cross_unrealized_pnl_atoms: int
    cross_collateral_pnl_atoms: int
    """Cross unrealised PnL as collateral for new exposure (see the module docstring)."""
    cross_initial_margin_atoms: int
    cross_maintenance_margin_atoms: int
    order_margin_atoms: int
    isolated_margin_atoms: int
    positions: tuple[PositionRisk, ...]
    collateral_atoms: int = 0
    """Multi-Assets Mode: the collateral assets at index x (1 - haircut) (``Account.collateral_atoms``)."""

    @property
    def margin_balance_atoms(self) -> int:
        return self.wallet_atoms + self.collateral_atoms + self.cross_unrealized_pnl_atoms

    @property
    def available_atoms(self) -> int:
        return (
            self.wallet_atoms
            + self.collateral_atoms
            + self.cross_collateral_pnl_atoms
            - self.cross_initial_margin_atoms
            - self.order_margin_atoms
        )

    @property
    def free_atoms(self) -> int:
        """What the cross scope has above its initial margin, counting unrealised losses but no profit."""
        loss = min(0, self.cross_collateral_pnl_atoms)
        return (
            self.wallet_atoms
            + self.collateral_atoms
            + loss
            - self.cross_initial_margin_atoms
            - self.order_margin_atoms
        )

    @property
    def withdrawable_atoms(self) -> int:
        """Of the settlement asset: never more than the wallet holds, nor than the free margin."""
        return max(0, min(self.wallet_atoms, self.free_atoms))

    @property
    def margin_ratio_e8(self) -> int:
        return formulas.margin_ratio_e8(self.cross_maintenance_margin_atoms, self.margin_balance_atoms)


def position_risk(position: Position, spec: MarketSpec, mark_ticks: int) -> PositionRisk:
    """Figures of ``position`` at ``mark_ticks``."""
    notional = formulas.notional_atoms(mark_ticks, abs(position.qty_lots), spec.contract_atoms)
    bracket = spec.bracket_for_notional(notional)
    return PositionRisk(
        market=position.market,
        qty_lots=position.qty_lots,
        notional_atoms=notional,
        unrealized_pnl_atoms=formulas.unrealized_pnl_atoms(
            position.qty_lots, position.cost_atoms, mark_ticks, spec.contract_atoms
        ),
        initial_margin_atoms=formulas.initial_margin_atoms(notional, position.leverage),
        maintenance_margin_atoms=formulas.maintenance_margin_atoms(
            notional, bracket.mmr_e8, bracket.cum_atoms
        )
        if position.qty_lots
        else 0,
        order_margin_atoms=position.order_margin_atoms,
        isolated_margin_atoms=position.isolated_margin_atoms,
        bracket=bracket.tier,
    )


def collateral_pnl_atoms(
    position: Position, spec: MarketSpec, mark_ticks: int, index_ticks: int | None, upnl_atoms: int
) -> int:
    """Unrealised PnL of a cross position counted as collateral for new exposure.

    ``upnl_atoms`` is its PnL at the mark. With ``upnl_collateral = "conservative"`` it is the
    smaller of that and the PnL at the index, so paper profit from a mark that left its index
    (a manipulated book) cannot open positions; ``"mark"`` keeps Binance's rule.
    """
    if index_ticks is None or index_ticks == mark_ticks or not spec.risk.upnl_collateral_conservative:
        return upnl_atoms
    at_index = formulas.unrealized_pnl_atoms(
        position.qty_lots, position.cost_atoms, index_ticks, spec.contract_atoms
    )
    return at_index if at_index < upnl_atoms else upnl_atoms


def account_risk(
    account: Account,
    asset: AssetId,
    specs: Mapping[MarketId, MarketSpec],
    marks: Mapping[MarketId, int],
    indexes: Mapping[MarketId, int] | None = None,
) -> AccountRisk:
    """Cross figures of ``account`` in the settlement ``asset``; cost grows with its positions only.

    ``indexes`` values profit as collateral (``AccountRisk.available_atoms``); without them the
    collateral PnL is the PnL at the mark.
    """
    upnl = collateral = initial = maintenance = orders = isolated = 0
    rows: list[PositionRisk] = []
    for market, position in account.positions.items():
        orders += position.order_margin_atoms
        if position.qty_lots == 0 and position.isolated_margin_atoms == 0:
            continue
        spec = specs[market]
        mark = marks.get(market, 0)
        risk = position_risk(position, spec, mark)
        rows.append(risk)
        if position.is_isolated:
            isolated += position.isolated_margin_atoms
        else:
            upnl += risk.unrealized_pnl_atoms
            collateral += collateral_pnl_atoms(
                position,
                spec,
                mark,
                None if indexes is None else indexes.get(market),
                risk.unrealized_pnl_atoms,
            )
            initial += risk.initial_margin_atoms
            maintenance += risk.maintenance_margin_atoms
    return AccountRisk(
        wallet_atoms=account.balance(asset),
        cross_unrealized_pnl_atoms=upnl,
        cross_collateral_pnl_atoms=collateral,
        cross_initial_margin_atoms=initial,
        cross_maintenance_margin_atoms=maintenance,
        order_margin_atoms=orders,
        isolated_margin_atoms=isolated,
        positions=tuple(rows),
        collateral_atoms=account.collateral_atoms,
    )


def isolated_margin_ratio_e8(risk: PositionRisk) -> int:
    """Margin ratio of an isolated position: MM / (isolated margin + uPnL)."""
    return formulas.margin_ratio_e8(
        risk.maintenance_margin_atoms, risk.isolated_margin_atoms + risk.unrealized_pnl_atoms
    )


def cross_available_atoms(
    account: Account,
    asset: AssetId,
    specs: dict[MarketId, MarketSpec],
    marks: dict[MarketId, int],
    indexes: dict[MarketId, int],
) -> int:
    """Available balance of the cross wallet (what a new order's margin is checked against).

    The same figure as ``account_risk(..., indexes).available_atoms``, summed directly:
    this runs on every order placement, so it builds no risk objects and skips
    what availability does not need (brackets, maintenance margin).
    """
    available = account.balances.get(asset, 0) + account.collateral_atoms
    for market, position in account.positions.items():
        available -= position.order_margin_atoms
        qty = position.qty_lots
        if (qty == 0 and position.isolated_margin_atoms == 0) or position.margin_mode is _ISOLATED:
            continue
        spec = specs[market]
        contract = spec.contract_atoms
        mark = marks.get(market, 0)
        upnl = formulas.unrealized_pnl_atoms(qty, position.cost_atoms, mark, contract)
        available += collateral_pnl_atoms(position, spec, mark, indexes.get(market), upnl)
        available -= formulas.initial_margin_atoms(
            formulas.notional_atoms(mark, qty if qty > 0 else -qty, contract), position.leverage
        )
    return available


def cross_margin_balance_atoms(
    account: Account, asset: AssetId, specs: dict[MarketId, MarketSpec], marks: dict[MarketId, int]
) -> int:
    """Cross margin balance: the cross wallet (and collateral) plus every cross position's uPnL at its mark."""
    balance = account.balances.get(asset, 0) + account.collateral_atoms
    for market, position in account.positions.items():
        qty = position.qty_lots
        if qty == 0 or position.margin_mode is _ISOLATED:
            continue
        balance += formulas.unrealized_pnl_atoms(
            qty, position.cost_atoms, marks.get(market, 0), specs[market].contract_atoms
        )
    return balance


def isolated_margin_balance_atoms(position: Position, spec: MarketSpec, mark_ticks: int) -> int:
    """An isolated position's margin balance: its isolated margin plus its unrealised PnL at the mark."""
    return position.isolated_margin_atoms + formulas.unrealized_pnl_atoms(
        position.qty_lots, position.cost_atoms, mark_ticks, spec.contract_atoms
    )
