"""Which strategy works a parent: one function, so every front end builds algorithms the same way."""

from __future__ import annotations

from decimal import ROUND_DOWN

from perpx.execution.algos.iceberg import Iceberg
from perpx.execution.algos.pov import Pov
from perpx.execution.algos.scaled import Scaled
from perpx.execution.algos.shortfall import shortfall
from perpx.execution.algos.twap import twap
from perpx.execution.algos.vwap import vwap
from perpx.execution.model import Algo
from perpx.execution.strategy import BoundParent, Jitter, Strategy
from perpx.execution.venue import Venue


def build_strategy(bound: BoundParent, venue: Venue, seed: int = 0) -> Strategy:
    """The strategy for ``bound.parent.algo``; ``seed`` drives every randomisation it does.

    VWAP and IS read the venue's history before the start (candles, book), so a resumed parent
    gets the same plan as the first run.
    """
    parent = bound.parent
    if parent.algo is Algo.TWAP:
        return twap(bound, seed)
    if parent.algo is Algo.VWAP:
        return vwap(bound, venue)
    if parent.algo is Algo.IS:
        return shortfall(bound, venue)
    if parent.algo is Algo.POV:
        assert parent.pov_target_bps is not None
        return Pov.for_parent(parent.pov_target_bps, parent.pov_min_bps, parent.pov_max_bps)
    if parent.algo is Algo.SCALED:
        return Scaled()
    assert parent.display_qty is not None
    display = int((parent.display_qty / bound.filters.lot_size).to_integral_value(ROUND_DOWN))
    return Iceberg(max(1, display), Jitter(seed, parent.client_algo_id))
