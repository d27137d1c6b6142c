"""Hedging: the policy per symbol, and the parent orders it runs through the execution engine.

:func:`hedge_lots` is the policy, pure. The desk's *exposure* is its position plus what its working
hedges will still trade (signed); the policy returns the signed lots to hedge now:

===========  ===================================================================================
policy       hedge now
===========  ===================================================================================
immediate    the whole exposure, after every block trade
threshold    the whole exposure, once ``|exposure| > hedge_threshold``; nothing below it
warehouse    only what exceeds ``max_inventory`` (the quotes already keep the desk within it, so
             this hedges only what a limit change or a liquidation left beyond it)
===========  ===================================================================================

:class:`Hedger` works each hedge as a :class:`~perpx.execution.model.ParentOrder` (the symbol's
``hedge_algo`` over ``hedge_duration_s``) on perpx's own book through
:class:`~perpx.execution.inprocess.EngineVenue`, trading as the desk's account; every hedge is
crosses the spread for what is left at the end of its window (``complete_aggressive``): a hedge
that does not finish leaves the risk it was sent to remove. Every hedge is
recorded in the desk's store with its arrival price (the mid when it started), so the report can
give each one's transaction cost analysis.
"""

from __future__ import annotations

from decimal import Decimal

from perpx.engine.engine import Engine
from perpx.engine.values import MarketId
from perpx.execution.childlog import ChildLog
from perpx.execution.inprocess import EngineVenue
from perpx.execution.model import Algo, EndBehavior, ParentOrder, ParentSide
from perpx.execution.runner import ParentRunner
from perpx.otc.config import HedgeMode, MarketPolicy
from perpx.otc.market import desk_position_lots, to_units_down
from perpx.otc.store import HedgeRecord, OtcStore

_ALGOS = {"TWAP": Algo.TWAP, "POV": Algo.POV, "IS": Algo.IS}
POV_TARGET_BPS = 1_000
"""A POV hedge takes 10% of the market's volume."""
TAKE_THROUGH_BPS = 20
"""How far past the touch a hedge's catch-up child may cross: a hedge must finish, at a bounded cost."""


def hedge_lots(mode: HedgeMode, exposure_lots: int, threshold_lots: int, max_inventory_lots: int) -> int:
    """Signed lots to trade now so the exposure follows ``mode`` (table in the module docstring)."""
    size = abs(exposure_lots)
    if mode is HedgeMode.IMMEDIATE:
        return -exposure_lots
    if mode is HedgeMode.THRESHOLD:
        return -exposure_lots if size > threshold_lots else 0
    if size <= max_inventory_lots:
        return 0
    excess = size - max_inventory_lots
    return -excess if exposure_lots > 0 else excess


class Hedger:
    """Starts and steps the desk's hedges on an in-process venue (module docstring)."""

    def __init__(self, venue: EngineVenue, store: OtcStore, policies: dict[str, MarketPolicy]) -> None:
        self.venue = venue
        self.store = store
        self.policies = policies
        self.runners: dict[str, ParentRunner] = {}
        self.markets: dict[str, str] = {}
        self._count = len(store.hedges())

    def working_lots(self, market: str) -> int:
        """What the market's unfinished hedges will still trade, signed (buys positive)."""
        total = 0
        for hedge_id, runner in self.runners.items():
            if runner.done or self.markets[hedge_id] != market:
                continue
            remaining = runner.snapshot().remaining_lots
            total += remaining if runner.bound.parent.side is ParentSide.BUY else -remaining
        return total

    def review(self, engine: Engine, market: str, reason: str) -> HedgeRecord | None:
        """Apply the symbol's policy now; start a hedge when it asks for one of at least the minimum size."""
        policy = self.policies.get(market)
        if policy is None:
            return None
        spec = engine.specs[MarketId(market)]
        position = desk_position_lots(engine, self.venue.account_id, MarketId(market))
        exposure = position + self.working_lots(market)
        lots = hedge_lots(
            policy.hedge,
            exposure,
            to_units_down(policy.hedge_threshold, spec.lot_size),
            to_units_down(policy.max_inventory, spec.lot_size),
        )
        if abs(lots) < spec.min_qty_lots:
            return None
        self._count += 1
        hedge_id = f"H{self._count:06d}"
        side = ParentSide.BUY if lots > 0 else ParentSide.SELL
        algo = _ALGOS[policy.hedge_algo]
        parent = ParentOrder(
            algo=algo,
            market=market,
            side=side,
            client_algo_id=hedge_id,
            qty=Decimal(abs(lots)) * spec.lot_size,
            duration_s=policy.hedge_duration_s if algo is not Algo.POV else None,
            pov_target_bps=POV_TARGET_BPS if algo is Algo.POV else None,
            end_behavior=EndBehavior.COMPLETE_AGGRESSIVE,
            take_through_bps=TAKE_THROUGH_BPS,
        )
        runner = ParentRunner.start(self.venue, parent, ChildLog(None), period_s=5)
        self.runners[hedge_id] = runner
        self.markets[hedge_id] = market
        record = HedgeRecord(
            hedge_id=hedge_id,
            symbol=market,
            side=side.name,
            qty_lots=runner.bound.qty_lots,
            algo=policy.hedge_algo,
            start_ns=runner.bound.start_ns,
            arrival_ticks=runner.bound.arrival_ticks,
            inventory_lots=position,
            reason=reason,
        )
        self.store.add_hedge(record)
        return record

    def next_wake_ns(self) -> int | None:
        """When the earliest unfinished hedge wants its next step."""
        wakes = [r.wake_ns for r in self.runners.values() if not r.done]
        return min(wakes) if wakes else None

    def step_due(self, now_ns: int) -> int:
        """Step every unfinished hedge that is due by ``now_ns``; return how many stepped."""
        stepped = 0
        for runner in list(self.runners.values()):
            if not runner.done and runner.wake_ns <= now_ns:
                runner.step()
                stepped += 1
        return stepped

    def stop_all(self, reason: str) -> None:
        """Cancel every working hedge child (the end of a run)."""
        for runner in self.runners.values():
            if not runner.done:
                runner.cancel_all(reason)
