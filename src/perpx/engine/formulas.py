"""Every money formula of the venue, in integers, each with its rounding direction.

This module is the only place where prices, quantities and rates are multiplied
into money. ``docs/mechanics.md`` states each formula with a worked example;
the names here match the headings there.

Rounding policy
---------------
Integer division has to round one way. The venue never rounds silently in its
own favour; each formula states the direction and the reason:

=============================  ===========  ========================================================
formula                        rounds       why
=============================  ===========  ========================================================
``notional_atoms``             exact        ``contract_atoms`` makes price x qty a whole atom count
``fee_atoms`` (charge)         up           a fee is never understated; at most 1 atom per fill
``fee_atoms`` (rebate)         toward 0     the fee account never pays out an atom it did not earn
``initial_margin_atoms``       up           margin requirements err toward solvency
``maintenance_margin_atoms``   up           liquidation never triggers late because of rounding
``cost_removed_atoms``         toward 0     the sub-atom remainder stays in the position and is
                                            realised, exactly, when the position closes
``isolated_margin_released``   toward 0     same: the remainder returns on full close
``bracket_cum_atoms``          down         a smaller ``cum`` means a larger maintenance margin
``mul_rate_floor/ceil``        stated       helpers; callers pick the direction
=============================  ===========  ========================================================

Conventions: a position is ``qty_lots`` signed (+long, -short) and a signed
``cost_atoms`` (the entry notional: positive for a long, negative for a
short). Entry price is ``cost / (qty * contract_atoms)`` ticks, so the weighted
average entry never has to be rounded and unrealised PnL is exact.
"""

from __future__ import annotations

from perpx.engine.values import RATE_SCALE


def ceil_div(numerator: int, denominator: int) -> int:
    """Integer division rounded toward +infinity (``denominator > 0``)."""
    return -((-numerator) // denominator)


def trunc_div(numerator: int, denominator: int) -> int:
    """Integer division rounded toward zero (``denominator > 0``)."""
    quotient = abs(numerator) // denominator
    return quotient if numerator >= 0 else -quotient


def mul_rate_floor(amount: int, rate_e8: int) -> int:
    """``amount x rate``, rounded toward -infinity."""
    return (amount * rate_e8) // RATE_SCALE


def mul_rate_ceil(amount: int, rate_e8: int) -> int:
    """``amount x rate``, rounded toward +infinity."""
    return ceil_div(amount * rate_e8, RATE_SCALE)


def notional_atoms(price_ticks: int, qty_lots: int, contract_atoms: int) -> int:
    """Notional of ``qty_lots`` at ``price_ticks``: exact, ``price x qty x contract_atoms``."""
    return price_ticks * qty_lots * contract_atoms


def fee_atoms(notional: int, rate_e8: int) -> int:
    """Trading fee on a fill of ``notional`` atoms (positive = charged, negative = rebate).

    A charge rounds up, a rebate rounds toward zero: the rounding is never more
    than one atom, and the fee account never pays a rebate it did not collect.
    """
    if rate_e8 >= 0:
        return ceil_div(notional * rate_e8, RATE_SCALE)
    return -((notional * -rate_e8) // RATE_SCALE)


def initial_margin_atoms(notional: int, leverage: int) -> int:
    """Initial margin ``notional / leverage``, rounded up."""
    return ceil_div(notional, leverage)


def maintenance_margin_atoms(notional: int, mmr_e8: int, cum_atoms: int) -> int:
    """Maintenance margin ``notional x mmr - cum`` of the notional's bracket, rounded up, at least 0."""
    return max(0, ceil_div(notional * mmr_e8, RATE_SCALE) - cum_atoms)


def bracket_cum_atoms(floor_atoms: int, mmr_e8: int, previous_mmr_e8: int, previous_cum_atoms: int) -> int:
    """Maintenance amount of a tier: ``floor x (mmr - previous_mmr) + previous_cum``, rounded down.

    The derivation keeps maintenance margin continuous at every tier boundary
    (Binance's ``cum``). Rounding down makes the maintenance margin larger.
    """
    return (floor_atoms * (mmr_e8 - previous_mmr_e8)) // RATE_SCALE + previous_cum_atoms


def unrealized_pnl_atoms(qty_lots: int, cost_atoms: int, mark_ticks: int, contract_atoms: int) -> int:
    """Unrealised PnL at the mark: ``qty x mark x contract - cost``; exact."""
    return qty_lots * mark_ticks * contract_atoms - cost_atoms


def cost_removed_atoms(cost_atoms: int, closed_lots: int, qty_lots: int) -> int:
    """Entry cost leaving the position when ``closed_lots`` of ``|qty_lots|`` close; toward zero.

    The sub-atom remainder stays in the position's cost and is realised with
    the last lot, so realised PnL over a position's life is exact.
    """
    if closed_lots == abs(qty_lots):
        return cost_atoms
    return trunc_div(cost_atoms * closed_lots, abs(qty_lots))


def realized_pnl_atoms(
    side_sign: int, closed_lots: int, fill_ticks: int, contract_atoms: int, cost_removed: int
) -> int:
    """Realised PnL of closing ``closed_lots`` of a position of sign ``side_sign`` at ``fill_ticks``.

    A long's exit proceeds are ``closed x price``; a short's are the negative.
    PnL is proceeds minus the (signed) cost removed; exact.
    """
    return side_sign * closed_lots * fill_ticks * contract_atoms - cost_removed


def isolated_margin_released_atoms(isolated_margin_atoms: int, closed_lots: int, qty_lots: int) -> int:
    """Share of an isolated position's margin freed when ``closed_lots`` close; toward zero."""
    if closed_lots == abs(qty_lots):
        return isolated_margin_atoms
    return trunc_div(isolated_margin_atoms * closed_lots, abs(qty_lots))


def price_band_ticks(mark_ticks: int, multiplier_e8: int, round_up: bool) -> int:
    """``mark x multiplier`` in ticks; the band edge is rounded inward (toward the mark).

    A BUY ceiling is rounded down and a SELL floor is rounded up, so an order at
    the band edge never lies outside the published multiplier.
    """
    if round_up:
        return ceil_div(mark_ticks * multiplier_e8, RATE_SCALE)
    return (mark_ticks * multiplier_e8) // RATE_SCALE


def margin_ratio_e8(maintenance_atoms: int, margin_balance_atoms: int) -> int:
    """Margin ratio ``maintenance / margin balance`` in ``_e8`` (1e8 = 100%, liquidation).

    A zero or negative margin balance with any maintenance margin is reported
    as an infinite ratio, returned as ``2**62``; no position at all is 0.
    """
    if maintenance_atoms == 0:
        return 0
    if margin_balance_atoms <= 0:
        return 2**62
    return ceil_div(maintenance_atoms * RATE_SCALE, margin_balance_atoms)
