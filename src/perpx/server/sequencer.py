"""The sequencer: one thread that owns the engine, stamps time, journals, applies and publishes.

Why one thread
--------------
The engine is a single-threaded state machine. Request handlers (many, on the
asyncio loop) never touch it: they hand the sequencer a *builder*
(``ts_ns -> Command``) or a *query* (``Engine -> T``) and await the answer.
The sequencer drains its queue in arrival order, stamps each command with the
venue clock, journals a batch with one commit (one fsync), applies it, lets
the listeners (read models, streams) see every command's events, and only
then resolves the handlers' futures: an acknowledged order is always durable
and always visible to the next query.

Invariants
----------
* Commands reach the journal and the engine in the order they were stamped,
  and ``ts_ns`` never decreases.
* A query runs after every command queued before it and before every command
  queued after it.
* A command that no journal record can hold (a number outside 64 bits, text
  that is not UTF-8) is refused alone, before anything is written: its caller
  gets 400 -1130, the rest of its batch proceeds.
* If the journal cannot be written (disk full, read-only, I/O error) and the
  file is back at its length before the batch, the batch's callers get 503
  -1001 "not applied", the status turns ``journal_not_writable`` and every
  later batch tries again; the first that is written turns it ``running``.
  Reads keep being answered meanwhile.
* If applying a journaled command raises (a bug or a broken invariant), or a
  failed journal write could not be undone, the sequencer stops: the batch's
  callers get "execution status unknown" and every later request gets 503
  until a restart recovers from the journal.

:meth:`Sequencer.status` tells which of these holds (for ``GET /ready``).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, TypeVar

import msgspec

from perpx.engine.commands import AdvanceClock, Command
from perpx.engine.engine import Engine
from perpx.engine.events import Outcome
from perpx.engine.values import NS_PER_MS
from perpx.journal.journal import JournalWriteError, UnencodableCommand
from perpx.journal.store import Store
from perpx.server.errors import (
    ApiError,
    execution_unknown,
    not_journaled,
    service_unavailable,
    unjournalable,
)

log = logging.getLogger("perpx.sequencer")

T = TypeVar("T")
Builder = Callable[[int], Command]
"""Makes the command once its ``ts_ns`` is known (stamped on the sequencer thread)."""


@dataclass(frozen=True, slots=True)
class Applied:
    """One journaled command and the events the engine answered it with."""

    seq: int
    command: Command
    events: Outcome
    """Every event the command caused; ``events.own`` is its answer (``engine.events.Outcome``)."""


Listener = Callable[[list[Applied]], None]
"""Sees every applied batch, in order, on the sequencer thread, before any caller is answered."""


class Driver(Protocol):
    """Work the sequencer runs on its own thread when due: clock ticks, demo agents.

    ``due_ns`` is a wall-clock time; ``run`` may call ``sequencer.apply_now``.
    """

    def due_ns(self) -> int: ...

    def run(self, sequencer: Sequencer, wall_ns: int) -> None: ...


class SequencerState(StrEnum):
    """What the sequencer does with the next command."""

    STARTING = "starting"
    """Not started yet: nothing is applied."""
    RUNNING = "running"
    """Commands are journaled and applied."""
    JOURNAL_NOT_WRITABLE = "journal_not_writable"
    """The last journal write failed and was undone; commands are refused (not applied) until a write succeeds."""
    STOPPED = "stopped"
    """The engine stopped; every request is refused until a restart recovers from the journal."""


@dataclass(frozen=True, slots=True)
class SequencerStatus:
    """The sequencer's state, why, and since when; an immutable value any thread may read.

    ``reason`` is ``None`` while starting or running; otherwise it names the failure (the
    errno text of a failed journal write, the exception that stopped the engine) and what
    brings the venue back.
    """

    state: SequencerState
    reason: str | None
    since_wall_ns: int

    @property
    def ready(self) -> bool:
        """``True`` when commands are accepted (``running``)."""
        return self.state is SequencerState.RUNNING


@dataclass(slots=True)
class _CommandItem:
    build: Builder
    future: asyncio.Future[Applied] | None


@dataclass(slots=True)
class _QueryItem:
    fn: Callable[[Engine], Any]
    future: asyncio.Future[Any]


_STOP = object()


class Sequencer:
    """Owns a :class:`Store` on a dedicated thread; see the module docstring.

    Parameters
    ----------
    store
        The recovered engine and its journal.
    manual_clock
        ``True``: venue time moves only by ``AdvanceClock`` (admin); commands are stamped with the
        engine's current time. ``False``: commands are stamped with wall-clock time.
    tick_ms
        With a wall clock, an idle venue still gets an ``AdvanceClock`` this often, so funding,
        index staleness and time-driven triggers happen without traffic.
    wall_ns
        The wall clock (injectable for tests).
    """

    def __init__(
        self,
        store: Store,
        *,
        manual_clock: bool,
        tick_ms: int = 1000,
        max_batch: int = 512,
        max_queue: int = 20_000,
        wall_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.store = store
        self.engine = store.engine
        self.manual_clock = manual_clock
        self.tick_ns = tick_ms * NS_PER_MS
        self.max_batch = max_batch
        self.wall_ns = wall_ns
        self._status = SequencerStatus(SequencerState.STARTING, None, wall_ns())
        self.commands_committed = 0
        self.batches_committed = 0
        self._queue: queue.Queue[object] = queue.Queue(max_queue)
        self._listeners: list[Listener] = []
        self._drivers: list[Driver] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_stamp_ns = self.engine.now_ns
        self._last_commit_wall_ns = 0

    # ------------------------------------------------------------------ wiring

    def add_listener(self, listener: Listener) -> None:
        """Register before :meth:`start`; listeners run in registration order."""
        self._listeners.append(listener)

    def add_driver(self, driver: Driver) -> None:
        self._drivers.append(driver)

    @property
    def last_seq(self) -> int:
        return self.store.writer.next_seq - 1

    def status(self) -> SequencerStatus:
        """The current :class:`SequencerStatus` (safe from any thread: one immutable value)."""
        return self._status

    @property
    def failure(self) -> str | None:
        """Why the sequencer stopped, or ``None`` while it serves."""
        status = self._status
        return status.reason if status.state is SequencerState.STOPPED else None

    def _set_status(self, state: SequencerState, reason: str | None = None) -> None:
        previous = self._status
        if previous.state is state and previous.reason == reason:
            return
        if previous.state is SequencerState.STOPPED:
            return
        self._status = SequencerStatus(state, reason, self.wall_ns())
        if state is SequencerState.JOURNAL_NOT_WRITABLE:
            log.error("journal not writable, commands are refused until a write succeeds: %s", reason)
        elif state is SequencerState.STOPPED:
            log.error("engine stopped: %s", reason)
        elif previous.state is SequencerState.JOURNAL_NOT_WRITABLE:
            log.warning("journal writable again after: %s", previous.reason)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the thread; a new venue's clock starts at the wall-clock time (kept across restarts)."""
        self._loop = loop
        self._set_status(SequencerState.RUNNING)
        if self.engine.now_ns == 0:
            self.apply_now([AdvanceClock(ts_ns=self.wall_ns())])
        self._thread = threading.Thread(target=self._run, name="perpx-sequencer", daemon=True)
        self._thread.start()

    def stop(self, snapshot: bool = True) -> None:
        """Finish queued work, stop the thread, snapshot and close the journal; the status turns ``stopped``."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None
        if self.failure is None:
            self._status = SequencerStatus(SequencerState.STOPPED, "the venue was shut down", self.wall_ns())
            self.store.close(snapshot_on_close=snapshot)
        else:
            self.store.writer.close()

    # ------------------------------------------------------------------ asyncio side

    async def submit(self, build: Builder, timeout_s: float = 10.0) -> Applied:
        """Queue a command; answer once it is journaled and applied.

        Raises :class:`ApiError`: 503 -1007 when the outcome is unknown (timeout or engine stop
        after journaling); when it was certainly not applied, the builder's own refusal, 400 -1130
        (no journal record can hold the command), 503 -1001 (journal not writable, or the engine
        stopped) or 503 -1008 (queue full).
        """
        self._refuse_if_failed()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Applied] = loop.create_future()
        self._put(_CommandItem(build, future))
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout_s)
        except TimeoutError:
            raise execution_unknown() from None

    async def query(self, fn: Callable[[Engine], T], timeout_s: float = 10.0) -> T:
        """Run ``fn(engine)`` on the sequencer thread, between commands; return its result."""
        self._refuse_if_failed()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._put(_QueryItem(fn, future))
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout_s)
        except TimeoutError:
            raise ApiError(
                503, -1001, "Internal error; the venue did not answer the query in time."
            ) from None

    def _refuse_if_failed(self) -> None:
        if self.failure is not None:
            raise service_unavailable(f"the engine stopped: {self.failure}")

    def _put(self, item: object) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            raise ApiError(
                503,
                -1008,
                "Server is currently overloaded with other requests. Please try again in a few minutes.",
            ) from None

    # ------------------------------------------------------------------ sequencer thread

    def stamp(self) -> int:
        """The ``ts_ns`` of the next command: engine time (manual clock) or wall time, never decreasing."""
        if self.manual_clock:
            ts = max(self.engine.now_ns, self._last_stamp_ns)
        else:
            ts = max(self.wall_ns(), self._last_stamp_ns, self.engine.now_ns)
        self._last_stamp_ns = ts
        return ts

    def apply_now(self, commands: list[Command]) -> list[Applied]:
        """Journal and apply ``commands`` at once; only on the sequencer thread (or before start).

        Raises
        ------
        UnencodableCommand
            If one of ``commands`` cannot be journaled: none is written or applied.
        JournalWriteError
            If the journal could not be written: none is applied (see :meth:`status`).
        """
        if self.failure is not None:
            raise RuntimeError(self.failure)
        return self._journal_and_apply([(command, self.store.encode(command)) for command in commands])

    def _journal_and_apply(self, batch: list[tuple[Command, msgspec.Raw]]) -> list[Applied]:
        """Journal and apply encoded commands; tells a refused batch from an engine failure (see module doc)."""
        first = self.store.writer.next_seq
        try:
            results = self.store.submit_encoded(batch)
        except JournalWriteError as exc:
            if exc.restored:
                self._set_status(
                    SequencerState.JOURNAL_NOT_WRITABLE,
                    f"{exc.reason}; nothing of the batch was applied, and the next command tries again"
                    " (free space or make the data directory writable)",
                )
            else:
                self._set_status(
                    SequencerState.STOPPED,
                    f"{exc.reason}; the last batch may or may not be in the journal: check the disk,"
                    " then restart the venue (recovery cuts a torn tail)",
                )
            raise
        except Exception as exc:
            self._set_status(
                SequencerState.STOPPED,
                f"{type(exc).__name__}: {exc}; restart the venue to recover from the journal",
            )
            log.exception("engine stopped while applying a journaled batch")
            raise
        if self._status.state is SequencerState.JOURNAL_NOT_WRITABLE:
            self._set_status(SequencerState.RUNNING)
        commands = [command for command, _raw in batch]
        applied = [
            Applied(first + i, cmd, events)
            for i, (cmd, events) in enumerate(zip(commands, results, strict=True))
        ]
        self.commands_committed += len(commands)
        self.batches_committed += 1
        self._last_commit_wall_ns = self.wall_ns()
        for listener in self._listeners:
            try:
                listener(applied)
            except Exception:
                log.exception("listener %r failed on seq %d..%d", listener, first, first + len(commands) - 1)
        return applied

    def _run(self) -> None:
        while True:
            timeout = self._idle_timeout_s()
            try:
                first = self._queue.get(timeout=timeout)
            except queue.Empty:
                first = None
            items: list[object] = [] if first is None else [first]
            while len(items) < self.max_batch:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(item is _STOP for item in items)
            try:
                self._process([item for item in items if item is not _STOP])
                if not stop and self.failure is None:
                    self._run_drivers()
            except Exception as exc:
                log.exception("sequencer step failed")
                self._set_status(
                    SequencerState.STOPPED,
                    f"the sequencer failed: {type(exc).__name__}: {exc}; restart the venue to recover",
                )
            if stop:
                return

    def _idle_timeout_s(self) -> float:
        wall = self.wall_ns()
        due = [driver.due_ns() for driver in self._drivers]
        if not self.manual_clock:
            due.append(self._last_commit_wall_ns + self.tick_ns)
        if not due:
            return 0.5
        return min(0.5, max(0.0, (min(due) - wall) / 1e9))

    def _run_drivers(self) -> None:
        wall = self.wall_ns()
        for driver in self._drivers:
            if driver.due_ns() <= wall:
                try:
                    driver.run(self, wall)
                except Exception:
                    log.exception("driver %r failed", driver)
                if self.failure is not None:
                    return
        if not self.manual_clock and wall - self._last_commit_wall_ns >= self.tick_ns:
            try:
                self.apply_now([AdvanceClock(ts_ns=self.stamp())])
            except JournalWriteError:
                self._last_commit_wall_ns = wall  # the status says why; try again a tick later

    def _process(self, items: list[object]) -> None:
        batch: list[_CommandItem] = []
        for item in items:
            if isinstance(item, _CommandItem):
                batch.append(item)
                continue
            if batch:
                self._commit(batch)
                batch = []
            if isinstance(item, _QueryItem):
                self._answer_query(item)
        if batch:
            self._commit(batch)

    def _answer_query(self, item: _QueryItem) -> None:
        if self.failure is not None:
            self._resolve(item.future, error=service_unavailable(self.failure))
            return
        try:
            result = item.fn(self.engine)
        except ApiError as exc:
            self._resolve(item.future, error=exc)
        except Exception as exc:
            log.exception("query failed")
            self._resolve(
                item.future,
                error=ApiError(
                    500,
                    -1000,
                    f"An unknown error occurred while processing the request: {type(exc).__name__}",
                ),
            )
        else:
            self._resolve(item.future, result=result)

    def _commit(self, batch: list[_CommandItem]) -> None:
        """Build and encode each command (a refusal answers its caller alone), then journal and apply the rest."""
        if self.failure is not None:
            for item in batch:
                if item.future is not None:
                    self._resolve(item.future, error=service_unavailable(self.failure))
            return
        encoded: list[tuple[Command, msgspec.Raw]] = []
        owners: list[_CommandItem] = []
        for item in batch:
            try:
                command = item.build(self.stamp())
                raw = self.store.encode(command)
            except ApiError as exc:
                error = exc
            except UnencodableCommand as exc:
                error = unjournalable(str(exc))
            except Exception as exc:
                log.exception("building a command failed")
                error = ApiError(
                    500,
                    -1000,
                    f"An unknown error occurred while building the command ({type(exc).__name__});"
                    " it was not applied.",
                )
            else:
                encoded.append((command, raw))
                owners.append(item)
                continue
            if item.future is not None:
                self._resolve(item.future, error=error)
        if not encoded:
            return
        try:
            applied = self._journal_and_apply(encoded)
        except JournalWriteError as exc:
            failed = not_journaled(exc.reason) if exc.restored else execution_unknown()
            for item in owners:
                if item.future is not None:
                    self._resolve(item.future, error=failed)
            return
        except Exception:
            for item in owners:
                if item.future is not None:
                    self._resolve(item.future, error=execution_unknown())
            return
        for item, result in zip(owners, applied, strict=True):
            if item.future is not None:
                self._resolve(item.future, result=result)

    def _resolve(
        self, future: asyncio.Future[Any], *, result: Any = None, error: BaseException | None = None
    ) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return

        def settle() -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)

        loop.call_soon_threadsafe(settle)
