"""User-stream messages of the loan book: a margin call and a liquidation, to the borrower.

Binance sends crypto-loan margin calls by e-mail and app notice, not on a stream; perpx pushes them
on the user data stream next to the futures ``MARGIN_CALL``, under their own names so no futures
client mistakes them for a position's:

``LOAN_MARGIN_CALL``   the loan's LTV reached its margin-call level (once per crossing):
                       ``loanCoin``, ``collateralCoin``, ``currentLTV``, ``marginCallLTV``,
                       ``liquidationLTV``, ``indexPrice``
``LOAN_LIQUIDATION``   collateral was sold to the lender: ``liquidationDebt``,
                       ``liquidationCollateralAmount``, ``badDebt``, ``totalDebt`` and
                       ``collateralAmount`` left, ``closed``
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from perpx.engine.config import VenueConfig
from perpx.engine.events import LoanLiquidated, LoanMarginCalled
from perpx.engine.values import format_units

E8 = Decimal("0.00000001")


def loan_message(event: LoanMarginCalled | LoanLiquidated, config: VenueConfig) -> dict[str, Any]:
    """The user-stream message of a loan event (times in ms, amounts as decimal strings)."""
    loan_atom = config.assets[event.loan_asset].atom
    collateral_atom = config.assets[event.collateral_asset].atom
    price_atom = config.settlement.atom
    ms = event.ts_ns // 1_000_000
    if isinstance(event, LoanMarginCalled):
        return {
            "e": "LOAN_MARGIN_CALL",
            "E": ms,
            "loanCoin": str(event.loan_asset),
            "collateralCoin": str(event.collateral_asset),
            "currentLTV": format_units(event.ltv_e8, E8),
            "marginCallLTV": format_units(event.margin_call_ltv_e8, E8),
            "liquidationLTV": format_units(event.liquidation_ltv_e8, E8),
            "indexPrice": format_units(event.index_atoms, price_atom),
        }
    return {
        "e": "LOAN_LIQUIDATION",
        "E": ms,
        "loanCoin": str(event.loan_asset),
        "collateralCoin": str(event.collateral_asset),
        "indexPrice": format_units(event.index_atoms, price_atom),
        "liquidationDebt": format_units(event.debt_repaid_atoms, loan_atom),
        "liquidationCollateralAmount": format_units(event.collateral_seized_atoms, collateral_atom),
        "badDebt": format_units(event.bad_debt_atoms, loan_atom),
        "totalDebt": format_units(event.debt_atoms, loan_atom),
        "collateralAmount": format_units(event.collateral_atoms, collateral_atom),
        "closed": event.closed,
    }
