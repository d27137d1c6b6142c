"""The server's front of the sequencer: request futures on the event loop, one journal thread.

Request handlers (many, on the asyncio loop) never touch the engine: they hand this front a
*builder* (``ts_ns -> Command``) or a *query* (``Engine -> T``) and await the answer. One pipeline
task on the loop takes the queue in arrival order, builds and stamps a batch of commands, and hands
it to the venue's :class:`perpx.sequencing.Sequencer` on the one journal thread, which writes the
batch with one commit (one fsync), applies it and lets the listeners (read models, streams) see
it; back on the loop, the handlers' futures are resolved. While a batch is being written, new
requests queue up and form the next batch (group commit: one fsync per batch, however many
requests arrived during the last one). An acknowledged order is always durable and always visible
to the next query.

Who touches the engine
----------------------
Only the pipeline, one step at a time: a batch (on the journal thread, while the loop awaits it),
a query (on the loop, between batches), or a driver's turn (clock ticks, demo agents; on the
journal thread). Nothing else runs against the engine while a step runs, so the engine needs no
lock.

Invariants
----------
* Commands reach the journal and the engine in the order they were stamped, and ``ts_ns`` never
  decreases.
* A query runs after every command queued before it and before every command queued after it.
* A command that no journal record can hold is refused alone, before anything is written: its
  caller gets 400 -1130, the rest of its batch proceeds.
* The sequencing errors map to Binance codes (see :func:`api_error_of`): a journal that could not
  be written and was undone gives 503 -1001 "not applied" (and the next batch tries again); a
  stopped engine 503 -1001; a full queue 503 -1008; an unknown outcome 503 -1007.

:meth:`RequestSequencer.status` tells which state holds (for ``GET /ready``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from perpx.engine.commands import AdvanceClock, Command
from perpx.engine.engine import Engine
from perpx.engine.values import NS_PER_MS
from perpx.journal.store import Store
from perpx.sequencing import (
    Applied,
    Checked,
    JournalUnavailable,
    Listener,
    NotJournalable,
    Overloaded,
    Sequencer,
    SequencerError,
    SequencerState,
    SequencerStatus,
    VenueStopped,
)
from perpx.server.errors import ApiError, execution_unknown, not_journaled, service_unavailable, unjournalable

__all__ = ["Applied", "Driver", "RequestSequencer", "SequencerState", "SequencerStatus", "api_error_of"]

log = logging.getLogger("perpx.sequencer")

T = TypeVar("T")
Builder = Callable[[int], Command]
"""Makes the command once its ``ts_ns`` is known (stamped by the pipeline, in queue order)."""


class Driver(Protocol):
    """Work the pipeline runs when due (demo agents), on the journal thread, between batches.

    ``due_ns`` is a wall-clock time; ``run`` applies through ``sequencer`` (the venue's one
    :class:`~perpx.sequencing.Sequencer`) and may read its engine.
    """

    def due_ns(self) -> int: ...

    def run(self, sequencer: Sequencer, wall_ns: int) -> None: ...


def api_error_of(error: SequencerError) -> ApiError:
    """The Binance answer for a sequencing error (see :mod:`perpx.sequencing.errors`)."""
    if isinstance(error, NotJournalable):
        return unjournalable(error.reason)
    if isinstance(error, JournalUnavailable):
        return not_journaled(error.reason)
    if isinstance(error, Overloaded):
        return ApiError(
            503,
            -1008,
            "Server is currently overloaded with other requests. Please try again in a few minutes.",
        )
    if isinstance(error, VenueStopped):
        return service_unavailable(f"the engine stopped: {error.reason}")
    return execution_unknown()


@dataclass(slots=True)
class _CommandItem:
    build: Builder
    future: asyncio.Future[Applied]


@dataclass(slots=True)
class _QueryItem:
    fn: Callable[[Engine], Any]
    future: asyncio.Future[Any]


class RequestSequencer:
    """The venue's :class:`~perpx.sequencing.Sequencer` behind an asyncio request queue.

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
    max_batch
        At most this many queued requests form one batch.
    max_queue
        Requests beyond this many waiting are refused (503 -1008) instead of queued.
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
        self.wall_ns = wall_ns
        self.core = Sequencer(
            store=store,
            clock=None if manual_clock else self._wall_now,
            status_clock=self._wall_now,
        )
        self.store = store
        self.engine = store.engine
        self.manual_clock = manual_clock
        self.tick_ns = tick_ms * NS_PER_MS
        self.max_batch = max_batch
        self.max_queue = max_queue
        self._queue: collections.deque[_CommandItem | _QueryItem] = collections.deque()
        self._drivers: list[Driver] = []
        self._journal_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="perpx-journal")
        self._wake: asyncio.Event | None = None
        self._pipeline: asyncio.Task[None] | None = None
        self._stopping = False
        self._closed = False
        self._last_commit_wall_ns = 0
        self.commit_observers: list[Callable[[float], None]] = []
        """Called on the loop with the seconds each batch's commit took (``perpx_journal_commit_seconds``)."""

    def _wall_now(self) -> int:
        return self.wall_ns()  # looked up at each call: a test may replace ``wall_ns``

    # ------------------------------------------------------------------ wiring and status

    def add_listener(self, listener: Listener) -> None:
        """Register before :meth:`start`; listeners run in registration order, on the journal thread."""
        self.core.add_listener(listener)

    def add_driver(self, driver: Driver) -> None:
        self._drivers.append(driver)

    @property
    def last_seq(self) -> int:
        return self.core.last_seq

    @property
    def commands_committed(self) -> int:
        return self.core.commands_committed

    @property
    def batches_committed(self) -> int:
        return self.core.batches_committed

    def status(self) -> SequencerStatus:
        """The current :class:`SequencerStatus` (safe from any thread: one immutable value)."""
        return self.core.status()

    @property
    def failure(self) -> str | None:
        """Why the sequencer stopped, or ``None`` while it serves."""
        return self.core.failure

    def stamp(self) -> int:
        """The ``ts_ns`` of the next command (see :meth:`perpx.sequencing.Sequencer.stamp`)."""
        return self.core.stamp()

    def apply_now(self, commands: list[Command]) -> list[Applied]:
        """Journal and apply ``commands`` at once, before :meth:`start` (set-up) or from a driver's turn.

        Raises the sequencing errors (:mod:`perpx.sequencing.errors`).
        """
        return self.core.apply(commands)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the pipeline on ``loop`` (the running loop); a new venue's clock starts at wall time."""
        self.core.start()
        if self.engine.now_ns == 0:
            self.core.apply([AdvanceClock(ts_ns=self.wall_ns())])
        self._last_commit_wall_ns = self.wall_ns()
        self._wake = asyncio.Event()
        self._pipeline = loop.create_task(self._run(), name="perpx-sequencer")

    async def shutdown(self, snapshot: bool = True) -> None:
        """Finish queued work, stop the pipeline, snapshot and close the journal (status ``stopped``)."""
        self._stopping = True
        if self._pipeline is not None:
            assert self._wake is not None
            self._wake.set()
            await self._pipeline
            self._pipeline = None
        self.close(snapshot)

    def close(self, snapshot: bool = True) -> None:
        """Close without draining: only when the pipeline is not running (never started, or shut down)."""
        if self._pipeline is not None:
            raise RuntimeError("the sequencer's pipeline still runs: await shutdown() instead")
        if self._closed:
            return
        self._closed = True
        self._journal_thread.shutdown(wait=True)
        self.core.close(snapshot)

    # ------------------------------------------------------------------ asyncio side

    async def submit(self, build: Builder, timeout_s: float = 10.0) -> Applied:
        """Queue a command; answer once it is journaled and applied.

        Raises :class:`ApiError`: 503 -1007 when the outcome is unknown (timeout or engine stop
        after journaling); when it was certainly not applied, the builder's own refusal, 400 -1130
        (no journal record can hold the command), 503 -1001 (journal not writable, or the engine
        stopped) or 503 -1008 (queue full).
        """
        future: asyncio.Future[Applied] = asyncio.get_running_loop().create_future()
        self._put(_CommandItem(build, future))
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout_s)
        except TimeoutError:
            raise execution_unknown() from None

    async def query(self, fn: Callable[[Engine], T], timeout_s: float = 10.0) -> T:
        """Run ``fn(engine)`` between commands (after every command queued before it); return its result."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._put(_QueryItem(fn, future))
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout_s)
        except TimeoutError:
            raise ApiError(
                503, -1001, "Internal error; the venue did not answer the query in time."
            ) from None

    def _put(self, item: _CommandItem | _QueryItem) -> None:
        if self.failure is not None:
            raise api_error_of(VenueStopped(self.failure))
        if self._stopping:
            raise service_unavailable("the venue is shutting down")
        if len(self._queue) >= self.max_queue:
            raise api_error_of(Overloaded("queue full"))
        self._queue.append(item)
        if self._wake is not None:
            self._wake.set()

    # ------------------------------------------------------------------ the pipeline

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            if not self._queue:
                if self._stopping:
                    return
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._idle_timeout_s())
            items = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
            try:
                await self._process(items)
                if not self._stopping and self.failure is None:
                    await self._run_drivers()
            except Exception as exc:
                log.exception("sequencer step failed")
                self.core.stop(
                    f"the sequencer failed: {type(exc).__name__}: {exc}; restart the venue to recover"
                )
                self._refuse_queued()
                return

    def _refuse_queued(self) -> None:
        error = api_error_of(VenueStopped(self.failure or "the sequencer stopped"))
        while self._queue:
            _settle(self._queue.popleft().future, error=error)

    def _idle_timeout_s(self) -> float:
        wall = self.wall_ns()
        due = [driver.due_ns() for driver in self._drivers]
        if not self.manual_clock:
            due.append(self._last_commit_wall_ns + self.tick_ns)
        if not due:
            return 0.5
        return min(0.5, max(0.0, (min(due) - wall) / 1e9))

    async def _run_drivers(self) -> None:
        wall = self.wall_ns()
        loop = asyncio.get_running_loop()
        for driver in self._drivers:
            if driver.due_ns() <= wall:
                await loop.run_in_executor(self._journal_thread, self._run_driver, driver, wall)
                if self.failure is not None:
                    return
        if not self.manual_clock and wall - self._last_commit_wall_ns >= self.tick_ns:
            self._last_commit_wall_ns = wall
            with contextlib.suppress(SequencerError):  # the status says why; the next tick tries again
                await loop.run_in_executor(
                    self._journal_thread, self.core.apply, [AdvanceClock(ts_ns=self.core.stamp())]
                )

    def _run_driver(self, driver: Driver, wall_ns: int) -> None:
        try:
            driver.run(self.core, wall_ns)
        except Exception:
            log.exception("driver %r failed", driver)

    async def _process(self, items: list[_CommandItem | _QueryItem]) -> None:
        batch: list[_CommandItem] = []
        for item in items:
            if isinstance(item, _CommandItem):
                batch.append(item)
                continue
            if batch:
                await self._commit(batch)
                batch = []
            self._answer_query(item)
        if batch:
            await self._commit(batch)

    def _answer_query(self, item: _QueryItem) -> None:
        if self.failure is not None:
            _settle(item.future, error=api_error_of(VenueStopped(self.failure)))
            return
        try:
            result = item.fn(self.engine)
        except ApiError as exc:
            _settle(item.future, error=exc)
        except Exception as exc:
            log.exception("query failed")
            _settle(
                item.future,
                error=ApiError(
                    500,
                    -1000,
                    f"An unknown error occurred while processing the request: {type(exc).__name__}",
                ),
            )
        else:
            _settle(item.future, result=result)

    async def _commit(self, batch: list[_CommandItem]) -> None:
        """Build and check each command (a refusal answers its caller alone), then journal and apply the rest."""
        if self.failure is not None:
            error = api_error_of(VenueStopped(self.failure))
            for item in batch:
                _settle(item.future, error=error)
            return
        checked: list[Checked] = []
        owners: list[_CommandItem] = []
        for item in batch:
            try:
                checked.append(self.core.check(item.build(self.core.stamp())))
            except ApiError as exc:
                _settle(item.future, error=exc)
            except SequencerError as exc:
                _settle(item.future, error=api_error_of(exc))
            except Exception as exc:
                log.exception("building a command failed")
                _settle(
                    item.future,
                    error=ApiError(
                        500,
                        -1000,
                        f"An unknown error occurred while building the command ({type(exc).__name__});"
                        " it was not applied.",
                    ),
                )
            else:
                owners.append(item)
        if not checked:
            return
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            applied = await loop.run_in_executor(self._journal_thread, self.core.apply_checked, checked)
        except SequencerError as exc:
            error = api_error_of(exc)
            for item in owners:
                _settle(item.future, error=error)
            return
        took = time.perf_counter() - started
        for observe in self.commit_observers:
            observe(took)
        self._last_commit_wall_ns = self.wall_ns()
        for item, result in zip(owners, applied, strict=True):
            _settle(item.future, result=result)


def _settle(future: asyncio.Future[Any], *, result: Any = None, error: BaseException | None = None) -> None:
    """Resolve ``future`` on the loop (the caller may have given up on it already)."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
