"""Moving lots between two accounts at an exact value, without the book: takeover and ADL legs.

A leg is settled on each side exactly as a fill is (``Engine._settle``), except that the price
is a value in atoms rather than a whole tick (the bankruptcy price rarely is one) and there is no
fee. The buyer's cost grows by the value and the seller's position realises it, so conservation
(``wallets + isolated - cost + fees + insurance``) is untouched, and open interest is kept as a
fill keeps it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from perpx.engine import formulas
from perpx.engine.accounts import Account, Position
from perpx.engine.events import PositionTransferred, TransferReason
from perpx.engine.values import AccountId, MarketId, Side

if TYPE_CHECKING:
    from perpx.engine.engine import Engine


def settle_leg(
    engine: Engine, account: Account, position: Position, side: Side, qty_lots: int, value_atoms: int
) -> int:
    """Apply ``qty_lots`` bought (``side`` BUY) or sold at the total ``value_atoms`` to ``position``.

    Returns the realised PnL. A part that opens (only the fund ever opens) is valued pro rata,
    the closing part rounding toward zero, so the two parts add up to ``value_atoms`` exactly.
    """
    asset = engine.asset
    old_qty = position.qty_lots
    realized = 0
    if old_qty == 0 or (old_qty > 0) == (side is Side.BUY):
        closed, opened = 0, qty_lots
    else:
        closed = min(qty_lots, abs(old_qty))
        opened = qty_lots - closed
    closed_value = value_atoms if opened == 0 else formulas.trunc_div(value_atoms * closed, qty_lots)
    if closed:
        removed = formulas.cost_removed_atoms(position.cost_atoms, closed, old_qty)
        realized = formulas.realized_value_pnl_atoms(1 if old_qty > 0 else -1, closed_value, removed)
        position.cost_atoms -= removed
        position.qty_lots += closed * side
        if position.is_isolated:
            released = formulas.isolated_margin_released_atoms(
                position.isolated_margin_atoms + realized, closed, old_qty
            )
            position.isolated_margin_atoms += realized - released
            account.credit(asset, released)
        else:
            account.credit(asset, realized)
    if opened:
        open_value = value_atoms - closed_value
        position.cost_atoms += side * open_value
        position.qty_lots += opened * side
        if position.is_isolated:
            margin = formulas.initial_margin_atoms(open_value, position.leverage)
            account.credit(asset, -margin)
            position.isolated_margin_atoms += margin
    new_qty = position.qty_lots
    if (old_qty > 0 or new_qty > 0) and old_qty != new_qty:
        engine.open_interest_lots[position.market] += (new_qty if new_qty > 0 else 0) - (
            old_qty if old_qty > 0 else 0
        )
    position.realized_pnl_atoms += realized
    engine._touched[position] = None
    engine._trim_reduce_only(position)
    engine.risk_dirty[account.account_id] = None
    return realized


def transfer(
    engine: Engine,
    seller: Account,
    buyer: Account,
    market: MarketId,
    qty_lots: int,
    value_atoms: int,
    reason: TransferReason,
) -> tuple[int, int]:
    """Move ``qty_lots`` from ``seller`` to ``buyer`` for ``value_atoms``; ``(seller, buyer)`` realised PnL.

    Emits one :class:`PositionTransferred` per side (seller first) and recomputes order margins.
    """
    results: list[int] = []
    for account, side, other in ((seller, Side.SELL, buyer), (buyer, Side.BUY, seller)):
        position = engine.position(account.account_id, market)
        realized = settle_leg(engine, account, position, side, qty_lots, value_atoms)
        results.append(realized)
        engine._events.append(
            PositionTransferred(
                ts_ns=engine.now_ns,
                account_id=account.account_id,
                counterparty_id=AccountId(other.account_id),
                market=position.market,
                reason=reason,
                side=side,
                qty_lots=qty_lots,
                value_atoms=value_atoms,
                realized_pnl_atoms=realized,
                position_lots=position.qty_lots,
            )
        )
    engine._post_trade()
    return results[0], results[1]
