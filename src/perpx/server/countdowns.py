"""The countdowns of ``countdownCancelAll``: a sequencer driver that cancels when one runs out.

See :mod:`perpx.server.trading.countdown` for the route and Binance's rules. :class:`Countdowns` is
a :class:`perpx.server.sequencer.Driver`: the sequencer wakes at its earliest deadline (wall
clock) and it applies ``CancelAllOrders`` and ``CancelAllConditionalOrders`` through the venue's one
sequencer, journaled like every other command.

Across a restart
----------------
A countdown is a dead man's switch: the client arms it because it may vanish, and a venue restart
does not renew it (the client could not heartbeat while the venue was down). So the deadlines are
durable: every change is written to ``DATA/countdowns.json`` (a temporary file renamed over the
old one: the file is always whole) before the route answers, and :meth:`Countdowns.open` reads it
back at start. A countdown that ran out while the venue was down fires on the first turn after the
start, before the client could have renewed it; one still running keeps its deadline.

Invariant: a countdown fires at most once; a heartbeat after it fired starts a new one; a cancel
that could not be journaled stays due and is tried again at the next turn; the file holds exactly
the running countdowns (after a fire too).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from perpx.engine.commands import CancelAllConditionalOrders, CancelAllOrders
from perpx.engine.values import NS_PER_MS, AccountId, MarketId
from perpx.sequencing import Sequencer

NEVER_NS = 2**63 - 1
"""``due_ns`` when no countdown runs."""
COUNTDOWNS_FILE = "countdowns.json"
"""The running countdowns under the data directory: ``{"deadlines": [[account, market, ns], ...]}``."""


class CountdownFileError(RuntimeError):
    """The countdowns file cannot be read: the venue does not start on a dead man's switch it lost."""


class Countdowns:
    """The running countdowns by (account, market), and the driver that cancels when one runs out.

    :meth:`arm` runs on the event loop, :meth:`run` on the sequencer's journal thread: the
    deadlines (and the file) are guarded by a lock. Without :meth:`open` nothing is written (a
    venue in a test that never starts).
    """

    def __init__(self) -> None:
        self._deadlines: dict[tuple[AccountId, MarketId], int] = {}
        self._lock = threading.Lock()
        self._path: Path | None = None
        self.fired = 0
        """Countdowns that ran out since the start."""

    def open(self, path: Path) -> None:
        """Keep the deadlines in ``path`` from now on, starting from what it holds (if it exists).

        Raises :class:`CountdownFileError` naming the file when it is not a countdowns file.
        """
        loaded: dict[tuple[AccountId, MarketId], int] = {}
        if path.exists():
            try:
                rows = json.loads(path.read_text())["deadlines"]
                for account, market, deadline in rows:
                    loaded[(AccountId(int(account)), MarketId(str(market)))] = int(deadline)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise CountdownFileError(
                    f"{path}: not a countdowns file ({exc}); move it away to start without the"
                    " countdowns it held (their orders then stay open)"
                ) from exc
        with self._lock:
            self._path = path
            self._deadlines.update(loaded)
            self._save()

    def arm(self, account_id: AccountId, market: MarketId, countdown_ms: int, now_ns: int) -> None:
        """Start or renew the countdown of ``account_id`` in ``market``; ``0`` stops it (written before return)."""
        with self._lock:
            if countdown_ms == 0:
                self._deadlines.pop((account_id, market), None)
            else:
                self._deadlines[(account_id, market)] = now_ns + countdown_ms * NS_PER_MS
            self._save()

    def running(self) -> int:
        with self._lock:
            return len(self._deadlines)

    def deadline_ns(self, account_id: AccountId, market: MarketId) -> int | None:
        """The running countdown's deadline (wall clock ns), or None."""
        with self._lock:
            return self._deadlines.get((account_id, market))

    def due_ns(self) -> int:
        with self._lock:
            return min(self._deadlines.values(), default=NEVER_NS)

    def run(self, sequencer: Sequencer, wall_ns: int) -> None:
        """Cancel the orders of every countdown whose deadline passed (on the journal thread)."""
        with self._lock:
            expired = sorted(key for key, deadline in self._deadlines.items() if deadline <= wall_ns)
        for account_id, market in expired:
            ts_ns = sequencer.stamp()
            sequencer.apply(
                [
                    CancelAllOrders(ts_ns=ts_ns, account_id=account_id, market=market),
                    CancelAllConditionalOrders(ts_ns=ts_ns, account_id=account_id, market=market),
                ]
            )
            with self._lock:  # journaled: this countdown is over (unless a heartbeat re-armed it since)
                if self._deadlines.get((account_id, market), NEVER_NS) <= wall_ns:
                    del self._deadlines[(account_id, market)]
                    self._save()
            self.fired += 1

    def _save(self) -> None:
        """Write the running countdowns to the file (whole: a temporary file renamed over it)."""
        if self._path is None:
            return
        rows = [[int(a), str(m), d] for (a, m), d in sorted(self._deadlines.items())]
        temporary = self._path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"deadlines": rows}))
        os.replace(temporary, self._path)
