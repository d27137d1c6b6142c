"""The desk's hedger on a running venue: hedges on perpx's book on the journal thread, outside ones on a worker.

The RFQ routes (:mod:`perpx.server.otc_routes`) ask for a review after every booked block trade;
the driver applies the symbol's hedging policy (:class:`perpx.otc.hedging.Hedger`).

* A symbol hedged on **perpx's own book**: the review and the parent orders' steps run on the
  journal thread between batches, where the engine may be read and commands applied
  (``perpx.server.sequencer``: who touches the engine); venue time drives them. Their children
  are ordinary journaled orders of the desk's account.
* A symbol hedged on **another venue** (``venue = "ccxt:<id>"`` or a perpx URL): the journal
  thread only reads the desk's position here and hands the review to :class:`OutsideWorker`, a
  thread that does the network calls (the outside position, the parent's children) so the venue
  never waits on another exchange.

Every hedge keeps its child log in ``DATA/otc-hedges/`` (the execution engine's
:class:`~perpx.execution.childlog.ChildLog`); at start the unfinished ones are resumed from their
logs (:meth:`perpx.otc.hedging.Hedger.resume`): each logged child is looked up on its venue by
client order id, so a restart sends no child twice.
"""

from __future__ import annotations

import logging
import queue
import threading

from perpx.engine.engine import Engine
from perpx.engine.values import MarketId
from perpx.execution.venue import VenueUnavailable
from perpx.otc.hedging import Hedger
from perpx.otc.market import desk_position_lots
from perpx.sequencing import Sequencer

POLL_NS = 1_000_000_000
"""While a hedge works, the driver looks at least once a second of wall time."""
NEVER_NS = 2**63 - 1
OUTSIDE_POLL_S = 1.0
"""The outside worker steps its hedges at least this often (wall time)."""
log = logging.getLogger("perpx.otc")


class OutsideWorker:
    """Reviews and steps the hedges on other venues, on its own thread (module docstring)."""

    def __init__(self, hedger: Hedger, engine: Engine, elsewhere: dict[str, int]) -> None:
        self.hedger = hedger
        self.engine = engine
        """Only its market specs (configuration, never changed) are read on this thread."""
        self.elsewhere = elsewhere
        """The desk's positions on the outside venues, refreshed every turn (the desk's quotes read them)."""
        self.reviews: queue.Queue[tuple[str, str, int]] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="otc-outside-hedges", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.turn()
            except VenueUnavailable as exc:  # the outside venue is away: the next turn tries again
                log.warning("otc: outside hedging venue unavailable: %s", exc)
            except Exception:
                log.exception("otc: outside hedging turn failed")
            self._stop.wait(OUTSIDE_POLL_S)

    def turn(self) -> None:
        """Apply the queued reviews (positions read on the journal thread), then step the due hedges."""
        engine = self.engine
        while True:
            try:
                market, reason, position = self.reviews.get_nowait()
            except queue.Empty:
                break
            self.hedger.review(engine, market, reason, position_lots=position)
        self.hedger.step_due(0, outside=True)
        self.hedger.record_outside_fills(self.hedger.venue.now_ns())  # for the report's outside lines
        self.hedger.refresh_outside(engine, self.elsewhere)


class HedgeDriver:
    """Reviews and steps the desk's hedges (module docstring); thread-safe requests, journal-thread work."""

    def __init__(self, hedger: Hedger, outside: OutsideWorker | None = None) -> None:
        self.hedger = hedger
        self.outside = outside
        self._lock = threading.Lock()
        self._reviews: list[tuple[str, str]] = []
        self._next_poll_ns = NEVER_NS

    def request_review(self, market: str, reason: str) -> None:
        """Ask for the policy of ``market`` to be applied at the driver's next turn."""
        with self._lock:
            self._reviews.append((market, reason))

    def due_ns(self) -> int:
        """Now when a review waits or a hedge's venue time has come; else the next poll."""
        with self._lock:
            if self._reviews:
                return 0
        wake = self.hedger.next_wake_ns()
        if wake is None:
            return NEVER_NS
        if wake <= self.hedger.venue.engine.now_ns:
            return 0
        return self._next_poll_ns

    def run(self, sequencer: Sequencer, wall_ns: int) -> None:
        """Apply the requested reviews, then step every hedge on perpx's book due by venue time (journal thread)."""
        with self._lock:
            reviews, self._reviews = self._reviews, []
        engine = sequencer.engine
        for market, reason in reviews:
            if self.outside is not None and self.hedger.hedges_outside(market):
                position = desk_position_lots(engine, self.hedger.venue.account_id, MarketId(market))
                self.outside.reviews.put((market, reason, position))
            else:
                self.hedger.review(engine, market, reason)
        self.hedger.step_due(engine.now_ns)
        self._next_poll_ns = wall_ns + POLL_NS
