"""The Perold implementation shortfall and its decomposition, exact in Decimal.

The paper portfolio trades all of ``Q`` at the decision price ``P_d``; the real one fills ``F`` at
``p_j``, pays fees and leaves ``Q - F`` unfilled, valued at ``P_c``. With ``s = +1`` buy, ``-1``
sell and positive = cost (the trader lost money), in the quote currency:

=============  ===========================================  ==================================
shortfall      ``s(sum q_j p_j - F P_d) + s(Q-F)(P_c-P_d)``  paper minus real
               ``+ sum fee_j``
delay          ``s F (P_a - P_d)``                          decision -> arrival drift
execution      ``s sum q_j (p_j - P_a)``                    = spread_impact + timing
spread_impact  ``s sum q_j (p_j - m_j)``                    paid at each fill against its mid
timing         ``s sum q_j (m_j - P_a)``                    drift while the order was worked
opportunity    ``s (Q-F)(P_c - P_d)``                       the remainder, valued from ``P_d``
fees           ``sum fee_j``                                rebates negative
=============  ===========================================  ==================================

``delay + execution + opportunity + fees == shortfall`` exactly (no rounding: sums of products of
the inputs), and ``spread_impact + timing == execution`` whenever every fill has a mid. Each term
in bps is ``x / (Q P_d) x 10^4``, so the bps terms add up the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from perpx.tca.inputs import Fill, ParentOrder, exact

BPS = Decimal(10_000)


@dataclass(frozen=True, slots=True)
class Shortfall:
    """The decomposition in quote currency; ``spread_impact`` and ``timing`` need every fill's mid."""

    shortfall: Decimal
    delay: Decimal
    execution: Decimal
    spread_impact: Decimal | None
    timing: Decimal | None
    opportunity: Decimal
    fees: Decimal
    paper_notional: Decimal

    def terms(self) -> dict[str, Decimal | None]:
        """The shortfall and its terms by their tca.json names, in waterfall order."""
        return {
            "implementation_shortfall": self.shortfall,
            "delay": self.delay,
            "execution": self.execution,
            "spread_impact": self.spread_impact,
            "timing": self.timing,
            "opportunity": self.opportunity,
            "fees": self.fees,
        }

    def bps(self, value: Decimal | None) -> Decimal | None:
        """``value`` in bps of the paper notional ``Q P_d``."""
        return None if value is None else value / self.paper_notional * BPS

    @property
    def identity_holds(self) -> bool:
        """``delay + execution + opportunity + fees == shortfall``, compared exactly."""
        return self.delay + self.execution + self.opportunity + self.fees == self.shortfall


@exact
def decompose(
    order: ParentOrder, fills: Sequence[Fill], end_price: Decimal | None, mids: Sequence[Decimal | None]
) -> Shortfall:
    """The Perold decomposition of ``order`` filled by ``fills``.

    ``mids[j]`` is the mid at fill ``j`` (``None`` where unknown); ``end_price`` is ``P_c`` and may
    be ``None`` only when everything was filled.
    """
    s = order.side.sign
    p_d = order.decision_price
    p_a = order.arrival_price
    filled = sum((f.qty for f in fills), Decimal(0))
    value = sum((f.qty * f.price for f in fills), Decimal(0))
    fees = sum((f.fee for f in fills), Decimal(0))
    remainder = order.qty - filled
    if remainder and end_price is None:
        raise ValueError(
            "the order is not fully filled: the end price P_c is needed for the opportunity cost"
        )
    opportunity = s * remainder * ((end_price or p_d) - p_d)
    spread_impact: Decimal | None = None
    timing: Decimal | None = None
    if fills and all(m is not None for m in mids):
        known = [m for m in mids if m is not None]
        spread_impact = s * sum(
            (f.qty * (f.price - m) for f, m in zip(fills, known, strict=True)), Decimal(0)
        )
        timing = s * sum((f.qty * (m - p_a) for f, m in zip(fills, known, strict=True)), Decimal(0))
    elif not fills:
        spread_impact = timing = Decimal(0)
    return Shortfall(
        shortfall=s * (value - filled * p_d) + opportunity + fees,
        delay=s * filled * (p_a - p_d),
        execution=s * (value - filled * p_a),
        spread_impact=spread_impact,
        timing=timing,
        opportunity=opportunity,
        fees=fees,
        paper_notional=order.qty * p_d,
    )
