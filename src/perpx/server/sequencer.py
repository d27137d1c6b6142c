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
* If applying a journaled command raises (a bug or a broken invariant) the
  sequencer stops: the batch's callers get "execution status unknown" and every
  later request gets 503 until a restart recovers from the journal.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from perpx.engine.commands import AdvanceClock, Command
from perpx.engine.engine import Engine
from perpx.engine.events import Event
from perpx.engine.values import NS_PER_MS
from perpx.journal.store import Store
from perpx.server.errors import ApiError, execution_unknown, service_unavailable

log = logging.getLogger("perpx.sequencer")

T = TypeVar("T")
Builder = Callable[[int], Command]
"""Makes the command once its ``ts_ns`` is known (stamped on the sequencer thread)."""


@dataclass(frozen=True, slots=True)
class Applied:
    """One journaled command and the events the engine answered it with."""

    seq: int
    command: Command
    events: list[Event]


Listener = Callable[[list[Applied]], None]
"""Sees every applied batch, in order, on the sequencer thread, before any caller is answered."""


class Driver(Protocol):
    """Work the sequencer runs on its own thread when due: clock ticks, demo agents.

    ``due_ns`` is a wall-clock time; ``run`` may call ``sequencer.apply_now``.
    """

    def due_ns(self) -> int: ...

    def run(self, sequencer: Sequencer, wall_ns: int) -> None: ...


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
        self.failure: str | None = None
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

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the thread; a new venue's clock starts at the wall-clock time (kept across restarts)."""
        self._loop = loop
        if self.engine.now_ns == 0:
            self.apply_now([AdvanceClock(ts_ns=self.wall_ns())])
        self._thread = threading.Thread(target=self._run, name="perpx-sequencer", daemon=True)
        self._thread.start()

    def stop(self, snapshot: bool = True) -> None:
        """Finish queued work, stop the thread, snapshot and close the journal."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None
        if self.failure is None:
            self.store.close(snapshot_on_close=snapshot)
        else:
            self.store.writer.close()

    # ------------------------------------------------------------------ asyncio side

    async def submit(self, build: Builder, timeout_s: float = 10.0) -> Applied:
        """Queue a command; answer once it is journaled and applied.

        Raises :class:`ApiError`: 503 -1007 when the outcome is unknown (timeout or engine stop
        after journaling), 503 -1001/-1008 when it was certainly not applied.
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
            raise service_unavailable(f"the engine stopped: {self.failure}; restart the venue to recover")

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
        """Journal and apply ``commands`` at once; only on the sequencer thread (or before start)."""
        if self.failure is not None:
            raise RuntimeError(self.failure)
        first = self.store.writer.next_seq
        try:
            results = self.store.submit_batch(commands)
        except Exception as exc:
            self.failure = f"{type(exc).__name__}: {exc}"
            log.exception("engine stopped while applying a journaled batch")
            raise
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
            self._process([item for item in items if item is not _STOP])
            if stop:
                return
            if self.failure is None:
                self._run_drivers()

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
            self.apply_now([AdvanceClock(ts_ns=self.stamp())])

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
        if self.failure is not None:
            for item in batch:
                if item.future is not None:
                    self._resolve(item.future, error=service_unavailable(self.failure))
            return
        commands: list[Command] = []
        owners: list[_CommandItem] = []
        for item in batch:
            try:
                commands.append(item.build(self.stamp()))
            except ApiError as exc:
                if item.future is not None:
                    self._resolve(item.future, error=exc)
                continue
            owners.append(item)
        if not commands:
            return
        try:
            applied = self.apply_now(commands)
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
