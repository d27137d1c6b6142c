"""The desk's hedger on a running venue: a sequencer driver that works hedges on the journal thread.

The RFQ routes (:mod:`perpx.server.otc_routes`) ask for a review after every booked block trade;
the driver applies the symbol's hedging policy (:class:`perpx.otc.hedging.Hedger`) and steps the
working hedges' parent orders when their venue time comes, all on the journal thread between
batches, where the engine may be read and commands applied (``perpx.server.sequencer``: who
touches the engine). The hedges' child orders are ordinary journaled orders of the desk's account.

Hedges live in memory: a restart forgets the working ones (their resting children stay on the book
until they fill or are cancelled) and the next booked trade's review hedges whatever exposure is
left.
"""

from __future__ import annotations

import threading

from perpx.otc.hedging import Hedger
from perpx.sequencing import Sequencer

POLL_NS = 1_000_000_000
"""While a hedge works, the driver looks at least once a second of wall time."""
NEVER_NS = 2**63 - 1


class HedgeDriver:
    """Reviews and steps the desk's hedges (module docstring); thread-safe requests, journal-thread work."""

    def __init__(self, hedger: Hedger) -> None:
        self.hedger = hedger
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
        """Apply the requested reviews, then step every hedge due by venue time (journal thread)."""
        with self._lock:
            reviews, self._reviews = self._reviews, []
        for market, reason in reviews:
            self.hedger.review(sequencer.engine, market, reason)
        self.hedger.step_due(sequencer.engine.now_ns)
        self._next_poll_ns = wall_ns + POLL_NS
