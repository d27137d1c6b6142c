"""Hedging: the policy per symbol, and the parent orders it runs through the execution engine.

:func:`hedge_lots` is the policy, pure. The desk's *exposure* is its position here, plus its
position on the symbol's outside hedging venue (if any), plus what its working hedges will still
trade (signed); the policy returns the signed lots to hedge now:

===========  ===================================================================================
policy       hedge now
===========  ===================================================================================
immediate    the whole exposure, after every block trade
threshold    the whole exposure, once ``|exposure| > hedge_threshold``; nothing below it
warehouse    only what exceeds ``max_inventory`` (the quotes already keep the desk within it, so
             this hedges only what a limit change or a liquidation left beyond it)
===========  ===================================================================================

:class:`Hedger` works each hedge as a :class:`~perpx.execution.model.ParentOrder` (the symbol's
``hedge_algo`` over ``hedge_duration_s``), trading as the desk's account: on perpx's own book
through :class:`~perpx.execution.inprocess.EngineVenue`, or on the venue the policy names through
the execution engine's ccxt venue (:mod:`perpx.otc.outside`). Every hedge crosses the spread for
what is left at the end of its window (``complete_aggressive``): a hedge that does not finish
leaves the risk it was sent to remove. Every hedge is recorded in the desk's store with its
arrival price (the mid when it started), so the report can give each one's transaction cost
analysis, and keeps a child log from which :meth:`Hedger.resume` rebuilds it after a restart.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

from perpx.engine.engine import Engine
from perpx.engine.values import MarketId
from perpx.execution.childlog import BoundRecord, ChildLog, DoneRecord
from perpx.execution.inprocess import EngineVenue
from perpx.execution.model import Algo, EndBehavior, ParentOrder, ParentSide
from perpx.execution.runner import ParentRunner
from perpx.execution.venue import Fill, Venue, VenueUnavailable
from perpx.otc.config import HedgeMode, MarketPolicy
from perpx.otc.market import desk_position_lots, to_units_down
from perpx.otc.outside import OutsideVenue, is_outside
from perpx.otc.store import HedgeRecord, OtcStore, OutsideFill

logger = logging.getLogger("perpx.otc")

_ALGOS = {"TWAP": Algo.TWAP, "POV": Algo.POV, "IS": Algo.IS}
POV_TARGET_BPS = 1_000
"""A POV hedge takes 10% of the market's volume."""
TAKE_THROUGH_BPS = 20
"""How far past the touch a hedge's catch-up child may cross: a hedge must finish, at a bounded cost."""
PERIOD_S = 5
"""A hedge's runner looks at its children at least this often (venue time)."""


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
    """Starts, steps and resumes the desk's hedges (module docstring).

    ``log_dir`` keeps each hedge's child log (``<hedge_id>.jsonl``, the execution engine's
    :class:`~perpx.execution.childlog.ChildLog`): :meth:`resume` rebuilds the unfinished ones after a
    restart, looking each logged child up on its venue by client order id, so no child is sent twice.
    ``None`` keeps hedges in memory. ``outside`` holds the venues a policy's ``venue`` names
    (:mod:`perpx.otc.outside`); the desk's position there counts in its exposure.
    """

    def __init__(
        self,
        venue: EngineVenue,
        store: OtcStore,
        policies: dict[str, MarketPolicy],
        *,
        log_dir: Path | None = None,
        outside: Mapping[str, OutsideVenue] | None = None,
    ) -> None:
        self.venue = venue
        self.store = store
        self.policies = policies
        self.log_dir = log_dir
        self.outside = dict(outside or {})
        self.runners: dict[str, ParentRunner] = {}
        self.markets: dict[str, str] = {}
        self._count = max(len(store.hedges()), len(_log_files(log_dir)))
        self._ids = threading.Lock()
        """Hedge ids are taken under it: on ``perpx serve`` the journal thread and the outside worker both start hedges."""
        self._fills_closed: set[str] = set()
        """Outside hedges finished and whose fills were all recorded after they finished."""
        self._catch_up: dict[str, tuple[str, int]] = {}
        """Outside hedges that finished before a restart: ``hedge_id -> (market, start_ns)``, read once."""

    def venue_of(self, market: str) -> Venue:
        """Where ``market``'s hedges run: its policy's outside venue, else perpx's own book."""
        policy = self.policies.get(market)
        if policy is not None and is_outside(policy.venue):
            return self.outside[policy.venue]
        return self.venue

    def refresh_outside(self, engine: Engine, into: dict[str, int]) -> None:
        """Read the desk's position on each outside venue into ``into`` (market -> this venue's lots).

        The desk's quotes read ``into`` (:attr:`perpx.otc.desk.Desk.elsewhere`), so its inventory
        limit and skew see the hedges it holds outside; network I/O, never on the journal thread.
        """
        for market in sorted(self.policies):
            if self.hedges_outside(market):
                into[market] = self.outside_lots(engine, market)

    def outside_lots(self, engine: Engine, market: str) -> int:
        """The desk's position in ``market`` on its policy's outside venue, in this venue's lots (toward zero)."""
        policy = self.policies.get(market)
        if policy is None or not is_outside(policy.venue):
            return 0
        qty = self.outside[policy.venue].position_qty(market)
        return int(qty / engine.specs[MarketId(market)].lot_size)

    def working_lots(self, market: str, lot_size: Decimal | None = None) -> int:
        """What the market's unfinished hedges will still trade, signed (buys positive), in this venue's lots."""
        total = 0
        for hedge_id, runner in self.runners.items():
            if runner.done or self.markets[hedge_id] != market:
                continue
            remaining = runner.snapshot().remaining_lots
            if lot_size is not None and lot_size != runner.bound.filters.lot_size:
                remaining = int(remaining * runner.bound.filters.lot_size / lot_size)
            total += remaining if runner.bound.parent.side is ParentSide.BUY else -remaining
        return total

    def hedges_outside(self, market: str) -> bool:
        """True when ``market``'s policy sends its hedges to another venue."""
        policy = self.policies.get(market)
        return policy is not None and is_outside(policy.venue)

    def review(
        self, engine: Engine, market: str, reason: str, position_lots: int | None = None
    ) -> HedgeRecord | None:
        """Apply the symbol's policy now; start a hedge when it asks for one of at least the minimum size.

        The exposure is the desk's position here (``position_lots`` when the caller read it on the
        journal thread; else read from ``engine`` now), its position on the policy's outside venue,
        and what its unfinished hedges will still trade.
        """
        policy = self.policies.get(market)
        if policy is None:
            return None
        spec = engine.specs[MarketId(market)]
        if position_lots is None:
            position_lots = desk_position_lots(engine, self.venue.account_id, MarketId(market))
        position = position_lots
        exposure = position + self.outside_lots(engine, market) + self.working_lots(market, spec.lot_size)
        lots = hedge_lots(
            policy.hedge,
            exposure,
            to_units_down(policy.hedge_threshold, spec.lot_size),
            to_units_down(policy.max_inventory, spec.lot_size),
        )
        if abs(lots) < spec.min_qty_lots:
            return None
        with self._ids:
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
        runner = ParentRunner.start(self.venue_of(market), parent, self._log(hedge_id), period_s=PERIOD_S)
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
            venue=policy.venue,
        )
        self.store.add_hedge(record)
        return record

    def record_outside_fills(self, booked_ns: int) -> int:
        """Record in the store every new fill of the hedges on other venues; return how many were new.

        Their fills are not on perpx's ledger: the store keeps them (idempotent by venue and trade
        id) so the report can book the outside position's P&L and fees (``perpx.otc.outside_pnl``).
        ``booked_ns`` is perpx's venue time now. A hedge is read once more after it finished, then
        no longer; one that finished before a restart (:meth:`resume` notes it) is read once.
        Network I/O: on ``perpx serve`` the outside worker's thread calls it.
        """
        new = 0
        for hedge_id, (market, start_ns) in sorted(self._catch_up.items()):
            venue = self.outside[self.policies[market].venue]
            filters = venue.filters(market)
            side = self.store.hedge(hedge_id)
            new += self._record(
                venue.fills(market, start_ns),
                hedge_id,
                market,
                side.side if side else "",
                filters.tick_size,
                filters.lot_size,
                booked_ns,
            )
            del self._catch_up[hedge_id]
        for hedge_id, runner in sorted(self.runners.items()):
            if runner.venue is self.venue or hedge_id in self._fills_closed:
                continue
            finished = runner.done
            bound = runner.bound
            market = bound.parent.market
            tick, lot = bound.filters.tick_size, bound.filters.lot_size
            fills = runner.venue.fills(market, bound.start_ns)
            new += self._record(fills, hedge_id, market, bound.parent.side.name, tick, lot, booked_ns)
            if finished:
                self._fills_closed.add(hedge_id)
        return new

    def _record(
        self,
        fills: list[Fill],
        hedge_id: str,
        market: str,
        side: str,
        tick: Decimal,
        lot: Decimal,
        booked_ns: int,
    ) -> int:
        """Store the fills of ``hedge_id``'s children among ``fills``; how many were new."""
        new = 0
        prefix = f"{hedge_id}-c"
        for fill in fills:
            if not fill.client_order_id.startswith(prefix) or side not in ("BUY", "SELL"):
                continue
            record = OutsideFill(
                venue=self.policies[market].venue,
                trade_id=fill.trade_id,
                hedge_id=hedge_id,
                symbol=market,
                side=side,
                client_order_id=fill.client_order_id,
                price=str(fill.price_ticks * tick),
                qty=str(fill.qty_lots * lot),
                fee=str(fill.fee),
                fill_ns=fill.ts_ns,
                booked_ns=booked_ns,
            )
            new += self.store.add_outside_fill(record)
        return new

    def resume(self) -> list[str]:
        """Rebuild every unfinished hedge from its child log (after a restart); the ids resumed.

        A log whose venue is not configured any more, or that cannot be read, is left alone (and
        named in the error log); its children stay where they are.
        """
        resumed = []
        for path in _log_files(self.log_dir):
            hedge_id = path.stem
            if hedge_id in self.runners:
                continue
            try:
                log = ChildLog(path)
                first = log.records[0] if log.records else None
                if not isinstance(first, BoundRecord) or any(isinstance(r, DoneRecord) for r in log.records):
                    log.close()
                    if isinstance(first, BoundRecord) and self.hedges_outside(first.parent.market):
                        self._catch_up[hedge_id] = (first.parent.market, first.start_ns)  # its fills, once
                    continue
                market = first.parent.market
                runner = ParentRunner.resume(self.venue_of(market), log, period_s=PERIOD_S)
            except (ValueError, KeyError, VenueUnavailable) as exc:
                logger.error("otc: hedge %s cannot be resumed from %s: %s", hedge_id, path, exc)
                continue
            self.runners[hedge_id] = runner
            self.markets[hedge_id] = market
            if self.store.hedge(hedge_id) is None:  # the log was written, the record was not: a crash between
                self.store.add_hedge(
                    HedgeRecord(
                        hedge_id=hedge_id,
                        symbol=market,
                        side=first.parent.side.name,
                        qty_lots=first.qty_lots,
                        algo=first.parent.algo.name,
                        start_ns=first.start_ns,
                        arrival_ticks=first.arrival_ticks,
                        inventory_lots=0,
                        reason="resumed from its child log at restart",
                        venue=self.policies.get(market, MarketPolicy()).venue,
                    )
                )
            resumed.append(hedge_id)
        return resumed

    def _log(self, hedge_id: str) -> ChildLog:
        return ChildLog(None if self.log_dir is None else self.log_dir / f"{hedge_id}.jsonl")

    def next_wake_ns(self) -> int | None:
        """When the earliest unfinished hedge on perpx's own book wants its next step (venue time)."""
        wakes = [r.wake_ns for r in self.runners.values() if not r.done and r.venue is self.venue]
        return min(wakes) if wakes else None

    def step_due(self, now_ns: int, *, outside: bool = False) -> int:
        """Step every unfinished hedge that is due; return how many stepped.

        Without ``outside``: the hedges on perpx's own book, due by venue time ``now_ns``. With it:
        the hedges on other venues, each due by its own venue's clock.
        """
        stepped = 0
        for runner in list(self.runners.values()):
            if runner.done or (runner.venue is not self.venue) is not outside:
                continue
            if runner.wake_ns <= (runner.venue.now_ns() if outside else now_ns):
                runner.step()
                stepped += 1
        return stepped

    def stop_all(self, reason: str) -> None:
        """Cancel every working hedge child (the end of a run)."""
        for runner in self.runners.values():
            if not runner.done:
                runner.cancel_all(reason)

    def close(self) -> None:
        """Close the hedges' child logs."""
        for runner in self.runners.values():
            runner.log.close()


def _log_files(log_dir: Path | None) -> list[Path]:
    if log_dir is None or not log_dir.is_dir():
        return []
    return sorted(log_dir.glob("H*.jsonl"))
