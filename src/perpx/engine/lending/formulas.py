"""Every lending formula, with its rounding direction.

Units: amounts are integer atoms of their asset (``10**-decimals``); a price is settlement-asset
atoms per one *whole* unit of an asset (``price_atoms``; the settlement asset's own price is
``10**settlement_decimals``); rates and LTVs are ``_e8`` (``RATE_SCALE`` = 1e8).

LTV comparisons are exact (cross-multiplied integers, no rounding); an LTV shown to a person is
rounded up. Rounding elsewhere goes against the party that owes: interest and the collateral a
borrower must post round up, what a borrower may borrow or gets back rounds down, and the
collateral seized in a liquidation rounds up (at most one atom, to the lender), which also makes
every liquidation step move at least one atom.
"""

from __future__ import annotations

from typing import Final

from perpx.engine.lending.config import LoanableSpec
from perpx.engine.values import RATE_SCALE

MINUTES_PER_YEAR: Final = 525_600
"""Interest accrues once per minute: per-minute rate = annual rate / 525,600 (365 days)."""
NS_PER_MINUTE: Final = 60_000_000_000


def pow10(decimals: int) -> int:
    """``10**decimals`` as an ``int`` (``decimals >= 0``)."""
    return int(10**decimals)


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def value_atoms(amount_atoms: int, price_atoms: int, decimals: int) -> int:
    """Settlement-asset value of ``amount_atoms`` at ``price_atoms`` per whole unit, rounded down."""
    return amount_atoms * price_atoms // pow10(decimals)


def ltv_reaches(
    debt_atoms: int,
    loan_price_atoms: int,
    loan_decimals: int,
    collateral_atoms: int,
    collateral_price_atoms: int,
    collateral_decimals: int,
    ltv_e8: int,
) -> bool:
    """Exactly whether ``debt value / collateral value >= ltv_e8 / 1e8`` (no collateral: any debt reaches)."""
    if collateral_atoms == 0:
        return debt_atoms > 0
    debt_side = debt_atoms * loan_price_atoms * pow10(collateral_decimals) * RATE_SCALE
    collateral_side = ltv_e8 * collateral_atoms * collateral_price_atoms * pow10(loan_decimals)
    return debt_side >= collateral_side


def penalty_outweighs_repayment(
    debt_atoms: int,
    loan_price_atoms: int,
    loan_decimals: int,
    collateral_atoms: int,
    collateral_price_atoms: int,
    collateral_decimals: int,
    penalty_e8: int,
) -> bool:
    """Exactly whether the LTV is at or above ``1 / (1 + penalty)``.

    There a partial liquidation step cannot lower the LTV (it sells ``(1 + penalty)`` of collateral
    value per unit of debt repaid), so the step repays the whole debt (Aave's 100% close factor).
    """
    if collateral_atoms == 0:
        return debt_atoms > 0
    debt_side = debt_atoms * loan_price_atoms * pow10(collateral_decimals) * (RATE_SCALE + penalty_e8)
    collateral_side = RATE_SCALE * collateral_atoms * collateral_price_atoms * pow10(loan_decimals)
    return debt_side >= collateral_side


def ltv_exceeds(
    debt_atoms: int,
    loan_price_atoms: int,
    loan_decimals: int,
    collateral_atoms: int,
    collateral_price_atoms: int,
    collateral_decimals: int,
    ltv_e8: int,
) -> bool:
    """Exactly whether ``debt value / collateral value > ltv_e8 / 1e8`` (strictly above; no collateral: any debt)."""
    if collateral_atoms == 0:
        return debt_atoms > 0
    debt_side = debt_atoms * loan_price_atoms * pow10(collateral_decimals) * RATE_SCALE
    collateral_side = ltv_e8 * collateral_atoms * collateral_price_atoms * pow10(loan_decimals)
    return debt_side > collateral_side


def ltv_e8(
    debt_atoms: int,
    loan_price_atoms: int,
    loan_decimals: int,
    collateral_atoms: int,
    collateral_price_atoms: int,
    collateral_decimals: int,
) -> int:
    """LTV for display and events, rounded up (``-1`` when there is debt but no collateral)."""
    if collateral_atoms == 0:
        return -1 if debt_atoms else 0
    return _ceil_div(
        debt_atoms * loan_price_atoms * pow10(collateral_decimals) * RATE_SCALE,
        collateral_atoms * collateral_price_atoms * pow10(loan_decimals),
    )


def collateral_for_loan_atoms(
    loan_atoms: int,
    loan_price_atoms: int,
    loan_decimals: int,
    collateral_price_atoms: int,
    collateral_decimals: int,
    initial_ltv_e8: int,
) -> int:
    """Collateral a loan of ``loan_atoms`` needs at the initial LTV, rounded up (the borrower posts enough)."""
    return _ceil_div(
        loan_atoms * loan_price_atoms * pow10(collateral_decimals) * RATE_SCALE,
        initial_ltv_e8 * collateral_price_atoms * pow10(loan_decimals),
    )


def loan_for_collateral_atoms(
    collateral_atoms: int,
    collateral_price_atoms: int,
    collateral_decimals: int,
    loan_price_atoms: int,
    loan_decimals: int,
    initial_ltv_e8: int,
) -> int:
    """The most ``collateral_atoms`` lets one borrow at the initial LTV, rounded down."""
    return (initial_ltv_e8 * collateral_atoms * collateral_price_atoms * pow10(loan_decimals)) // (
        RATE_SCALE * loan_price_atoms * pow10(collateral_decimals)
    )


def utilisation_e8(borrowed_atoms: int, available_atoms: int) -> int:
    """Share of the lender's money out on loan: ``borrowed / (borrowed + available)``, rounded down."""
    total = borrowed_atoms + max(available_atoms, 0)
    if total <= 0:
        return 0
    return borrowed_atoms * RATE_SCALE // total


def annual_rate_e8(spec: LoanableSpec, utilisation: int) -> int:
    """The annual rate at ``utilisation`` (``_e8``): linear from base to kink, then kink to max; rounded up."""
    if utilisation <= spec.kink_e8:
        rise = (spec.rate_at_kink_e8 - spec.base_rate_e8) * utilisation
        return spec.base_rate_e8 + _ceil_div(rise, spec.kink_e8)
    rise = (spec.max_rate_e8 - spec.rate_at_kink_e8) * (min(utilisation, RATE_SCALE) - spec.kink_e8)
    return spec.rate_at_kink_e8 + _ceil_div(rise, RATE_SCALE - spec.kink_e8)


def minute_interest_atoms(debt_atoms: int, annual_rate: int) -> int:
    """One minute's interest on ``debt_atoms``: ``debt x rate / 525,600``, rounded up (never negative)."""
    if debt_atoms <= 0 or annual_rate <= 0:
        return 0
    return _ceil_div(debt_atoms * annual_rate, RATE_SCALE * MINUTES_PER_YEAR)


def close_amount_atoms(debt_atoms: int, close_factor_e8: int) -> int:
    """Debt one liquidation step repays: ``debt x close_factor``, rounded up, at least 1, at most the debt."""
    return min(debt_atoms, max(1, _ceil_div(debt_atoms * close_factor_e8, RATE_SCALE)))


def seized_collateral_atoms(
    repaid_atoms: int,
    loan_price_atoms: int,
    loan_decimals: int,
    collateral_price_atoms: int,
    collateral_decimals: int,
    penalty_e8: int,
) -> int:
    """Collateral worth ``repaid x (1 + penalty)`` at the index, rounded up (to the lender)."""
    return _ceil_div(
        repaid_atoms * loan_price_atoms * (RATE_SCALE + penalty_e8) * pow10(collateral_decimals),
        RATE_SCALE * collateral_price_atoms * pow10(loan_decimals),
    )


def debt_covered_atoms(
    collateral_atoms: int,
    collateral_price_atoms: int,
    collateral_decimals: int,
    loan_price_atoms: int,
    loan_decimals: int,
    penalty_e8: int,
) -> int:
    """Debt that all of ``collateral_atoms`` repays when seized with the penalty, rounded down."""
    return (collateral_atoms * collateral_price_atoms * RATE_SCALE * pow10(loan_decimals)) // (
        loan_price_atoms * (RATE_SCALE + penalty_e8) * pow10(collateral_decimals)
    )


def returned_collateral_atoms(collateral_atoms: int, repaid_atoms: int, debt_atoms: int) -> int:
    """Collateral released by a partial repayment, pro rata to the debt repaid, rounded down.

    Releasing ``collateral x repaid / debt`` keeps the loan's LTV where it was (never higher).
    """
    if debt_atoms <= 0:
        return collateral_atoms
    return collateral_atoms * repaid_atoms // debt_atoms
