"""The sequencer: the one way a command reaches the engine, whoever drives it.

The server (on wall time, behind its request queue), the simulator (on a simulated clock), the
server's demo agents and the test kit all hand commands to a :class:`Sequencer`. It stamps time,
writes the journal (when it has one), applies, lets its listeners see every command's events, and
returns each command's :class:`Applied`. It reads no clock of its own and does no I/O besides the
journal it is given; its failures are the domain errors of :mod:`perpx.sequencing.errors`, which
each adapter maps to its protocol.

Invariants
----------
* Commands reach the journal and the engine in the order given, with ``seq`` rising by one, and a
  stamp from :meth:`Sequencer.stamp` never decreases and is never behind the engine's clock.
* A command is applied only after its journal record is committed (fsynced with durability
  ``"batch"``); listeners see a batch only after all of it is applied, before any caller gets it.
* A batch with a command no record can hold is refused whole, before anything is written
  (:class:`NotJournalable`).
* A journal write that fails and is undone refuses the batch (:class:`JournalUnavailable`), the
  status turns ``journal_not_writable``, and the next batch tries again. A write that cannot be
  undone, or an exception while applying a journaled command, stops the sequencer
  (:class:`OutcomeUnknown` for that batch, :class:`VenueStopped` for every later one): the engine
  may be part-way through a batch, and only a restart (replaying the journal) is sure.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import msgspec

from perpx.engine.commands import Command
from perpx.engine.engine import Engine
from perpx.engine.events import Outcome
from perpx.journal.journal import JournalWriteError, UnencodableCommand
from perpx.journal.store import Store
from perpx.sequencing.errors import JournalUnavailable, NotJournalable, OutcomeUnknown, VenueStopped

log = logging.getLogger("perpx.sequencer")

Clock = Callable[[], int]
"""A time in ns: the candidate stamp of the next command (wall time, a simulated clock, venue time)."""


@dataclass(frozen=True, slots=True)
class Applied:
    """One journaled command and the events the engine answered it with."""

    seq: int
    command: Command
    events: Outcome
    """Every event the command caused; ``events.own`` is its answer (``engine.events.Outcome``)."""


Listener = Callable[[list[Applied]], None]
"""Sees every applied batch, in order, before any caller gets it; a listener's failure is logged, not raised."""

Checked = tuple[Command, msgspec.Raw | None]
"""A command and its journal payload (``None`` without a journal), from :meth:`Sequencer.check`."""


class SequencerState(StrEnum):
    """What the sequencer does with the next command."""

    STARTING = "starting"
    """Not started yet: nothing is applied."""
    RUNNING = "running"
    """Commands are journaled and applied."""
    JOURNAL_NOT_WRITABLE = "journal_not_writable"
    """The last journal write failed and was undone; commands are refused (not applied) until a write succeeds."""
    STOPPED = "stopped"
    """The engine stopped; every command is refused until a restart recovers from the journal."""


@dataclass(frozen=True, slots=True)
class SequencerStatus:
    """The sequencer's state, why, and since when (``since_ns`` on the status clock); immutable.

    ``reason`` is ``None`` while starting or running; otherwise it names the failure (the errno
    text of a failed journal write, the exception that stopped the engine) and what brings the
    venue back.
    """

    state: SequencerState
    reason: str | None
    since_ns: int

    @property
    def ready(self) -> bool:
        """``True`` when commands are accepted (``running``)."""
        return self.state is SequencerState.RUNNING


class Sequencer:
    """Stamps, journals, applies and publishes commands; see the module docstring.

    Parameters
    ----------
    engine
        The venue, when there is no journal (the test kit, in-memory simulations).
    store
        The recovered engine and its journal; exactly one of ``engine`` and ``store``.
    clock
        The candidate stamp of the next command; ``None`` stamps with the engine's own time (a
        venue whose time moves only by ``AdvanceClock``).
    status_clock
        When status changes are recorded (``SequencerStatus.since_ns``); defaults to ``clock``.
    """

    def __init__(
        self,
        engine: Engine | None = None,
        *,
        store: Store | None = None,
        clock: Clock | None = None,
        status_clock: Clock | None = None,
    ) -> None:
        if store is not None:
            engine = store.engine if engine is None else None
        if engine is None:
            raise ValueError("a sequencer drives either an engine or a store, exactly one")
        self.store = store
        self.engine = engine
        self.clock = clock
        self._status_clock = status_clock or clock or (lambda: self.engine.now_ns)
        self._next_seq = store.writer.next_seq if store is not None else 1
        self._last_stamp_ns = self.engine.now_ns
        self._status = SequencerStatus(SequencerState.STARTING, None, self._status_clock())
        self._listeners: list[Listener] = []
        self.commands_committed = 0
        self.batches_committed = 0

    # ------------------------------------------------------------------ wiring and status

    def add_listener(self, listener: Listener) -> None:
        """Listeners run in registration order, each on every applied batch."""
        self._listeners.append(listener)

    @property
    def last_seq(self) -> int:
        """The ``seq`` of the last applied command (0 before the first)."""
        return self._next_seq - 1

    def status(self) -> SequencerStatus:
        """The current :class:`SequencerStatus` (safe from any thread: one immutable value)."""
        return self._status

    @property
    def failure(self) -> str | None:
        """Why the sequencer stopped, or ``None`` while it serves."""
        status = self._status
        return status.reason if status.state is SequencerState.STOPPED else None

    def start(self) -> None:
        """Accept commands (``running``)."""
        self._set_status(SequencerState.RUNNING)

    def stop(self, reason: str) -> None:
        """Refuse every later command with ``reason`` (an adapter's own failure, a shutdown)."""
        self._set_status(SequencerState.STOPPED, reason)

    def close(self, snapshot: bool = True) -> None:
        """Stop and close the journal: snapshot first unless the engine failed (a restart replays)."""
        failed = self.failure is not None
        self.stop("the venue was shut down")
        if self.store is None:
            return
        if failed:
            self.store.writer.close()
        else:
            self.store.close(snapshot_on_close=snapshot)

    def _set_status(self, state: SequencerState, reason: str | None = None) -> None:
        previous = self._status
        if previous.state is state and previous.reason == reason:
            return
        if previous.state is SequencerState.STOPPED:
            return
        self._status = SequencerStatus(state, reason, self._status_clock())
        if state is SequencerState.JOURNAL_NOT_WRITABLE:
            log.error("journal not writable, commands are refused until a write succeeds: %s", reason)
        elif state is SequencerState.STOPPED and reason != "the venue was shut down":
            log.error("engine stopped: %s", reason)
        elif previous.state is SequencerState.JOURNAL_NOT_WRITABLE:
            log.warning("journal writable again after: %s", previous.reason)

    # ------------------------------------------------------------------ commands

    def stamp(self) -> int:
        """The ``ts_ns`` of the next command: the clock's time, never decreasing, never behind the engine."""
        now = self.engine.now_ns
        ts = (
            max(self._last_stamp_ns, now)
            if self.clock is None
            else max(self.clock(), self._last_stamp_ns, now)
        )
        self._last_stamp_ns = ts
        return ts

    def check(self, command: Command) -> Checked:
        """``command`` with its journal payload (encoded once); raises :class:`NotJournalable`."""
        if self.store is None:
            return command, None
        try:
            return command, self.store.encode(command)
        except UnencodableCommand as exc:
            raise NotJournalable(str(exc)) from exc

    def apply(self, commands: Sequence[Command]) -> list[Applied]:
        """Journal (one commit) and apply ``commands`` in order; see the module's invariants.

        Raises
        ------
        NotJournalable
            One of them cannot be journaled; none is written or applied.
        JournalUnavailable, VenueStopped, OutcomeUnknown
            As :meth:`apply_checked`.
        """
        return self.apply_checked([self.check(command) for command in commands])

    def apply_one(self, command: Command) -> Outcome:
        """:meth:`apply` of one command; its events."""
        return self.apply_checked([self.check(command)])[0].events

    def _encoded(self, command: Command, raw: msgspec.Raw | None) -> tuple[Command, msgspec.Raw]:
        if raw is None:
            _command, raw = self.check(command)
            assert raw is not None, "a sequencer with a journal encodes every command"
        return command, raw

    def apply_checked(self, batch: list[Checked]) -> list[Applied]:
        """Journal and apply commands already :meth:`check`\\ ed.

        Raises
        ------
        VenueStopped
            The sequencer had stopped; nothing is applied.
        JournalUnavailable
            The journal write failed and was undone; nothing is applied.
        OutcomeUnknown
            The write could not be undone, or applying a journaled command raised: the sequencer
            stops (the engine may be part-way through the batch).
        """
        if self._status.state is SequencerState.STOPPED:
            raise VenueStopped(self._status.reason or "the sequencer stopped")
        if not batch:
            return []
        first = self._next_seq
        store = self.store
        encoded = [] if store is None else [self._encoded(command, raw) for command, raw in batch]
        try:
            if store is not None:
                results = store.submit_encoded(encoded)
            else:
                apply = self.engine.apply
                results = [apply(command) for command, _raw in batch]
        except JournalWriteError as exc:
            if exc.restored:
                reason = (
                    f"{exc.reason}; nothing of the batch was applied, and the next command tries again"
                    " (free space or make the data directory writable)"
                )
                self._set_status(SequencerState.JOURNAL_NOT_WRITABLE, reason)
                raise JournalUnavailable(exc.reason) from exc
            self._set_status(
                SequencerState.STOPPED,
                f"{exc.reason}; the last batch may or may not be in the journal: check the disk,"
                " then restart the venue (recovery cuts a torn tail)",
            )
            raise OutcomeUnknown(exc.reason) from exc
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}; restart the venue to recover from the journal"
            self._set_status(SequencerState.STOPPED, reason)
            log.exception("engine stopped while applying a journaled batch")
            raise OutcomeUnknown(reason) from exc
        if self._status.state is not SequencerState.RUNNING:
            self._set_status(SequencerState.RUNNING)
        applied = [Applied(first + i, batch[i][0], events) for i, events in enumerate(results)]
        self._next_seq = first + len(batch)
        self.commands_committed += len(batch)
        self.batches_committed += 1
        for listener in self._listeners:
            try:
                listener(applied)
            except Exception:
                log.exception(
                    "listener %r failed on seq %d..%d",
                    listener,
                    first,
                    self._next_seq - 1,
                    extra={"seq": first, "seq_last": self._next_seq - 1},
                )
        return applied
