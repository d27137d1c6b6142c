"""The insurance fund's policy on positions: a cap on what it takes over, and an unwind through the book.

Why
---
Without a policy the fund accepts any takeover whose *loss* its equity covers, so a fund of
5,000 USDT could hold 150,000 USDT of position, and then holds it forever: every later move of
the market is the fund's risk, and when its equity goes below zero its position is
auto-deleveraged against traders who had nothing to do with the original bankruptcy.

Rules (per market, :class:`~perpx.engine.config.RiskSpec`)
--------------------------------------------------------
* **Cap** (``insurance_takeover_cap`` of the market, a multiple ``c`` of the fund's equity ``E``):
  a takeover may bring the fund's *whole* book (its positions in every market, on the marks) to at
  most ``c x E`` of notional: in this market, at most ``floor((c x E - N_other) / (mark x
  contract))`` lots, ``N_other`` the notional it holds elsewhere (a cap per market alone let a fund
  hold ``c x E`` in each of several markets at once). A takeover that *reduces* the fund's position
  is never capped (it lowers its risk). What the cap refuses is auto-deleveraged like anything the
  fund cannot accept.
* **Unwind** (``insurance_unwind_clip`` ``k``, ``insurance_unwind_interval_s``,
  ``insurance_unwind_limit`` ``l``): every interval of venue time, for each market where the
  fund holds a position and which is live (index fresh, not halted), one IOC reduce-only order
  for ``max(1, ceil(k x |position|))`` lots, limited at ``mark x (1 - l)`` (selling a long,
  rounded up to a tick) or ``mark x (1 + l)`` (buying back a short, rounded down). What the book
  does not take at that limit waits for the next step: the fund never sells into a void.

Invariants: the fund's unwind orders are ordinary reduce-only orders of account 0 (journaled as
``OrderAccepted``/``OrderFilled`` with client order id ``fund-unwind-<order id>``), pay no
trading fee (the venue does not charge itself), and never increase its position; the time of the
next step is engine state (in snapshots), so a replay and a restore unwind at the same times.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from perpx.engine import formulas
from perpx.engine.book import Order
from perpx.engine.commands import OrderType, StpMode, TimeInForce
from perpx.engine.events import OrderAccepted
from perpx.engine.liquidation.figures import is_paused
from perpx.engine.liquidation.insurance import INSURANCE_ACCOUNT
from perpx.engine.values import RATE_SCALE, ClientOrderId, MarketId, Side

if TYPE_CHECKING:
    from perpx.engine.core import Core

NS_PER_S = 1_000_000_000
UNWIND_PREFIX = "fund-unwind-"
"""Client order ids of the fund's unwind orders start with this."""


def takeover_capacity_lots(engine: Core, market: MarketId, sign: int, equity_atoms: int) -> int | None:
    """The most lots of sign ``sign`` the fund may take over in ``market`` now; None when uncapped.

    ``sign`` is the side of the bankrupt position (the fund takes it over as is). With ``g`` the
    fund's position on that side (negative: it holds the other side) and ``L`` the lots the cap
    leaves for this market after the fund's other markets, the answer is ``max(L, |g|) - g``: a
    takeover may always close the fund's opposite position, and may grow its position only up to
    ``L``.
    """
    spec = engine.specs[market]
    cap = spec.risk.insurance_takeover_cap_e8
    if cap is None:
        return None
    fund = engine.accounts[INSURANCE_ACCOUNT]
    elsewhere = 0
    for other, held_there in fund.positions.items():
        if other != market and held_there.qty_lots:
            elsewhere += formulas.notional_atoms(
                engine.marks[other], abs(held_there.qty_lots), engine.specs[other].contract_atoms
            )
    lot_atoms = engine.marks[market] * spec.contract_atoms
    room = max(0, equity_atoms) * cap // RATE_SCALE - elsewhere
    allowed = max(0, room) // lot_atoms if lot_atoms > 0 else 0
    position = fund.positions.get(market)
    held = sign * position.qty_lots if position is not None else 0
    return max(allowed, abs(held)) - held


def unwind_limit_ticks(mark_ticks: int, sign: int, limit_e8: int) -> int:
    """The worst price an unwind order of a position of sign ``sign`` may fill at (at least one tick).

    Selling a long: ``ceil(mark x (1 - l))``; buying back a short: ``floor(mark x (1 + l))``.
    """
    if sign > 0:
        return max(1, formulas.ceil_div(mark_ticks * (RATE_SCALE - limit_e8), RATE_SCALE))
    return mark_ticks * (RATE_SCALE + limit_e8) // RATE_SCALE


def unwind_clip_lots(position_lots: int, clip_e8: int) -> int:
    """Lots of one unwind step: ``max(1, ceil(k x |position|))``, never more than the position."""
    size = abs(position_lots)
    return min(size, max(1, formulas.ceil_div(size * clip_e8, RATE_SCALE)))


def unwind_fund(engine: Core) -> tuple[bool, int]:
    """One unwind step over the fund's positions; returns ``(anything filled, next due time ns)``.

    The next due time is the earliest interval among the markets unwound now (a market that sets
    no clip is left alone and does not schedule anything).
    """
    fund = engine.accounts[INSURANCE_ACCOUNT]
    filled = False
    next_due = 0
    for market in sorted(fund.positions):
        position = fund.positions[market]
        risk = engine.specs[market].risk
        if position.qty_lots == 0 or risk.insurance_unwind_clip_e8 == 0 or is_paused(engine, market):
            continue
        due = engine.now_ns + risk.insurance_unwind_interval_s * NS_PER_S
        next_due = due if next_due == 0 else min(next_due, due)
        sign = 1 if position.qty_lots > 0 else -1
        lots = unwind_clip_lots(position.qty_lots, risk.insurance_unwind_clip_e8)
        limit = unwind_limit_ticks(engine.marks[market], sign, risk.insurance_unwind_limit_e8)
        side = Side.SELL if sign > 0 else Side.BUY
        order_id = engine.new_order_id()
        order = Order(
            order_id,
            INSURANCE_ACCOUNT,
            market,
            side,
            OrderType.LIMIT,
            TimeInForce.IOC,
            limit,
            lots,
            True,
            ClientOrderId(f"{UNWIND_PREFIX}{order_id}"),
            StpMode.EXPIRE_MAKER,
            engine.now_ns,
            fee_free=True,
        )
        engine.emit(
            OrderAccepted(
                ts_ns=engine.now_ns,
                order_id=order_id,
                account_id=INSURANCE_ACCOUNT,
                market=market,
                side=side,
                order_type=OrderType.LIMIT,
                tif=TimeInForce.IOC,
                price_ticks=limit,
                qty_lots=lots,
                reduce_only=True,
                client_order_id=order.client_order_id,
                stp=order.stp,
            )
        )
        if engine.match(order, position):
            filled = True
    return filled, next_due
