"""The countdowns of ``countdownCancelAll``: a sequencer driver that cancels when one runs out.

See :mod:`perpx.server.trading.countdown` for the route and Binance's rules. :class:`Countdowns` is
a :class:`perpx.server.sequencer.Driver`: the sequencer wakes at its earliest deadline (wall
clock) and it applies ``CancelAllOrders`` and ``CancelAllConditionalOrders`` through the venue's one
sequencer, journaled like every other command. Deadlines live in memory.

Invariant: a countdown fires at most once; a heartbeat after it fired starts a new one; a cancel
that could not be journaled stays due and is tried again at the next turn.
"""

from __future__ import annotations

import threading

from perpx.engine.commands import CancelAllConditionalOrders, CancelAllOrders
from perpx.engine.values import NS_PER_MS, AccountId, MarketId
from perpx.sequencing import Sequencer, SequencerError

NEVER_NS = 2**63 - 1
"""``due_ns`` when no countdown runs."""


class Countdowns:
    """The running countdowns by (account, market), and the driver that cancels when one runs out.

    :meth:`arm` runs on the event loop, :meth:`run` on the sequencer's journal thread: the
    deadlines are guarded by a lock.
    """

    def __init__(self) -> None:
        self._deadlines: dict[tuple[AccountId, MarketId], int] = {}
        self._lock = threading.Lock()
        self.fired = 0
        """Countdowns that ran out since the start."""

    def arm(self, account_id: AccountId, market: MarketId, countdown_ms: int, now_ns: int) -> None:
        """Start or renew the countdown of ``account_id`` in ``market``; ``0`` stops it."""
        with self._lock:
            if countdown_ms == 0:
                self._deadlines.pop((account_id, market), None)
            else:
                self._deadlines[(account_id, market)] = now_ns + countdown_ms * NS_PER_MS

    def running(self) -> int:
        with self._lock:
            return len(self._deadlines)

    def due_ns(self) -> int:
        with self._lock:
            return min(self._deadlines.values(), default=NEVER_NS)

    def run(self, sequencer: Sequencer, wall_ns: int) -> None:
        """Cancel the orders of every countdown whose deadline passed (on the journal thread)."""
        with self._lock:
            expired = sorted(key for key, deadline in self._deadlines.items() if deadline <= wall_ns)
            for key in expired:
                del self._deadlines[key]
        for at, (account_id, market) in enumerate(expired):
            ts_ns = sequencer.stamp()
            try:
                sequencer.apply(
                    [
                        CancelAllOrders(ts_ns=ts_ns, account_id=account_id, market=market),
                        CancelAllConditionalOrders(ts_ns=ts_ns, account_id=account_id, market=market),
                    ]
                )
            except SequencerError:
                with self._lock:  # not journaled: due again at the next turn
                    for key in expired[at:]:
                        self._deadlines.setdefault(key, wall_ns)
                raise
            self.fired += 1
