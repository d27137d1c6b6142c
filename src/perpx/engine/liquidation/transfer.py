"""Moving lots between two accounts at an exact value, without the book: takeover and ADL legs.

A leg is settled on each side exactly as a fill is (``matching.settle``), except that the price
is a value in atoms rather than a whole tick (the bankruptcy price rarely is one) and there is no
fee. The buyer's cost grows by the value and the seller's position realises it, so conservation
(``wallets + isolated - cost + fees + insurance``) is untouched, and open interest is kept as a
fill keeps it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from perpx.engine.accounts import Account, Position, apply_position_change
from perpx.engine.events import PositionTransferred, TransferReason
from perpx.engine.values import AccountId, MarketId, Side

if TYPE_CHECKING:
    from perpx.engine.core import Core


def settle_leg(
    engine: Core, account: Account, position: Position, side: Side, qty_lots: int, value_atoms: int
) -> int:
    """Apply ``qty_lots`` bought (``side`` BUY) or sold at the total ``value_atoms`` to ``position``.

    Returns the realised PnL. A part that opens (only the fund ever opens) is valued pro rata,
    the closing part rounding toward zero, so the two parts add up to ``value_atoms`` exactly.
    """
    realized, oi_delta = apply_position_change(account, position, engine.asset, side, qty_lots, value_atoms)
    if oi_delta:
        engine.open_interest_lots[position.market] += oi_delta
    engine.touch(position)
    engine.trim_reduce_only(position)
    engine.margin_changed(account.account_id)
    return realized


def transfer(
    engine: Core,
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
        engine.emit(
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
    engine.post_trade()
    return results[0], results[1]
