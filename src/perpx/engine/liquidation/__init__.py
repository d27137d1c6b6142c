"""Liquidation, the insurance fund and auto-deleveraging (one concept per module).

* :mod:`.figures`    margin figures of a scope (cross account or isolated position);
* :mod:`.watch`      safety bands: which accounts a mark update must look at;
* :mod:`.stage`      the consequence stage: cancel, partial, full, takeover, ADL, fee, deficit;
* :mod:`.insurance`  the fund: its cash, its account of positions, its equity;
* :mod:`.adl`        the deleveraging queue and its quantile;
* :mod:`.transfer`   moving lots at an exact value without the book.
"""

from perpx.engine.liquidation.insurance import INSURANCE_ACCOUNT
from perpx.engine.liquidation.stage import FundSummary, Liquidation

__all__ = ["INSURANCE_ACCOUNT", "FundSummary", "Liquidation"]
