"""The algo service: the server works its account holders' parent orders itself, crash-safe.

One :class:`AlgoService` per venue. It is a sequencer driver (:class:`perpx.server.sequencer.Driver`):
on its turns, on the journal thread where nothing else touches the engine, it steps every due
parent's :class:`~perpx.execution.runner.ParentRunner` against :class:`~.venue.ServerVenue`, so a
child is an ordinary journaled order of the account (client order id ``{clientAlgoId}-c{n}``), in
its order history, fills and user data stream. Time is the venue's: the manual clock in tests and
``--manual-clock`` venues, wall time otherwise.

Creating and cancelling run as sequencer queries (between batches, so they see every command
committed before them); a cancel is journaled (``CancelParent``) and carried out on the driver's
next turn, which the query's own pipeline pass triggers at once.

One source of truth
-------------------
A parent's life is in the engine's journal (:mod:`perpx.engine.parents`): ``CreateParent``
(the engine assigns the algo id), ``CancelParent``, every child as ``PlaceChildOrder`` (the
explicit link: its fills count in the parent's executed quantity) and ``FinishParent`` with the
reason. Status, executed quantity, end time and reason are read from the engine's table, so a
journal replay reproduces them. The registry (:mod:`.registry`) keeps only each parent's
parameters (the canonical :class:`~perpx.execution.model.ParentOrder`), and the child log
(:mod:`perpx.execution.childlog`) the runner's decisions.

Crash-resume
------------
Every decision is written ahead: the child log records a child before the venue sees it. At
start-up the service reads the engine's table and resumes each WORKING parent from its child log
with :meth:`ParentRunner.resume`, which adopts every child the journal (and so the read model)
holds and marks the others lost; child ids are never reused, so no child is ever sent twice. A
WORKING parent whose parameters were never recorded (the server died between ``CreateParent`` and
the registry's line) expires, saying so.

Ends
----
FINISHED when every lot executed; CANCELLED on the client's DELETE or a killed agent key; EXPIRED
otherwise, with the reason (the window closed with a remainder, children were refused and why, or
the parent could not be worked), since an accepted algo can still fail to execute.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import msgspec

from perpx.agents.guard import agent_guard
from perpx.engine.commands import CancelParent, Command, CreateParent, FinishParent
from perpx.engine.events import CommandRejected, ParentCreated
from perpx.engine.parents import Parent
from perpx.engine.values import NS_PER_MS, AccountId, ClientAlgoId, MarketId, ParentId, Side
from perpx.execution.childlog import ChildLog, DoneRecord, PlaceRecord, Record, read_log
from perpx.execution.ids import algo_prefix, parse_child_id
from perpx.execution.model import ParentOrder, ParentSide
from perpx.execution.runner import NS_PER_S, ParentRunner, bind_parent
from perpx.execution.strategy import BoundParent
from perpx.execution.venue import ChildAck, ChildOrder, VenueUnavailable
from perpx.sequencing import Sequencer, SequencerError
from perpx.server.algos.registry import (
    ALGOS_DIR,
    REGISTRY_FILE,
    AlgoStatus,
    CreatedRecord,
    Registry,
    child_log_path,
)
from perpx.server.algos.venue import ServerVenue
from perpx.server.context import ServerContext
from perpx.server.orders_wire import OrderRecord

log = logging.getLogger("perpx.algos")


def journal_end(
    sequencer: Sequencer, command: Command, logger: logging.Logger, what: str, status: str
) -> bool:
    """Apply an end command (``FinishParent``, ``FinishFlow``) on the journal thread, logging rather than
    raising; ``False`` when the journal could not take it (the row stays working for the next turn).
    An engine refusal is logged and counts as journaled."""
    try:
        events = sequencer.apply_one(command)
    except SequencerError:
        logger.exception("%s: its end (%s) could not be journaled", what, status)
        return False
    for event in events.own:
        if isinstance(event, CommandRejected):
            logger.error("%s: the engine refused its end: %s", what, event.message)
    return True


EXPIRY_GRACE_S = 60
"""A timed parent still open this long after its window's end expires (its end behaviour had its turn)."""
MAX_REFUSALS_IN_ROW = 3
"""A parent whose children are refused this many times in a row (no margin, reduce-only with no
position, a halted market) expires instead of retrying for the rest of its window."""
RUN_PERIOD_S = 5
"""The runner's longest sleep between wake-ups (its decision period's upper bound)."""
DEFAULT_CLIENT_PREFIX = "perpx-sapi-"
"""``clientAlgoId`` of a parent sent without one: this and its algo id (clients cannot use ``perpx-``)."""
IDLE_WAKE_NS = 1_000_000_000
"""With nothing due, the driver asks to be looked at again after this much wall time."""


def _venue(ctx: ServerContext, account_id: int, parent_id: int | None = None) -> _AlgoVenue:
    components = ctx.components
    venue = _AlgoVenue(ctx.seq.core, components.readmodel, components.marketdata, AccountId(account_id))
    venue.parent_id = None if parent_id is None else ParentId(parent_id)
    return venue


class _AlgoVenue(ServerVenue):
    """The service's venue for one parent: also remembers the last refused child and why."""

    last_refusal: str | None = None
    refusals_in_row: int = 0
    """Children refused since the last one the venue accepted."""

    def place(self, child: ChildOrder) -> ChildAck:
        ack = super().place(child)
        if ack.accepted:
            self.refusals_in_row = 0
        else:
            self.refusals_in_row += 1
            self.last_refusal = f"child {child.client_order_id} refused: {ack.code} {ack.message}"
        return ack


@dataclass
class Algo:
    """One parent the service knows: its parameters, its engine row, and its runner while it works."""

    created: CreatedRecord
    log_path: Path | None
    row: Parent
    """The engine's row (:mod:`perpx.engine.parents`): status, executed lots, end and reason."""
    runner: ParentRunner | None = None
    venue: _AlgoVenue | None = None
    sweep: bool = False
    """Cancel the account's open orders that carry this parent's child ids (a parent that could not
    be resumed leaves no child working without a runner to follow it)."""
    kept_records: list[Record] = field(default_factory=list)
    """An ended parent's child log, kept in memory once its runner is gone."""

    @property
    def algo_id(self) -> int:
        return self.created.algo_id

    @property
    def status(self) -> AlgoStatus:
        return self.row.status

    @property
    def ended(self) -> Parent | None:
        """The engine's row once the parent ended, else ``None``."""
        return None if self.row.status is AlgoStatus.WORKING else self.row

    @property
    def cancel_requested(self) -> bool:
        return self.row.cancel_requested

    @property
    def end_ms(self) -> int:
        """When it ended (venue ms), 0 while it works."""
        return self.row.ended_ns // NS_PER_MS

    def records(self) -> list[Record]:
        """The parent's child log (read once from disk for a parent that ended before a restart)."""
        if self.runner is not None:
            return self.runner.log.records
        if not self.kept_records and self.log_path is not None and self.log_path.exists():
            try:
                self.kept_records = read_log(self.log_path)
            except ValueError:  # a damaged log still tells which children there were: keep what decodes
                self.kept_records = salvage_log(self.log_path)
        return self.kept_records

    def child_ids(self) -> list[str]:
        """Every child's client order id, in the order sent."""
        return [r.client_order_id for r in self.records() if isinstance(r, PlaceRecord)]


def salvage_log(path: Path) -> list[Record]:
    """Every record of a damaged child log that still decodes (for reading an ended parent only)."""
    records: list[Record] = []
    for line in path.read_bytes().split(b"\n"):
        try:
            records.append(msgspec.json.decode(line, type=Record))
        except msgspec.DecodeError:
            continue
    return records


class AlgoRefused(Exception):
    """A parent the service will not take; ``code`` is Binance's algo code, ``msg`` says why."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


@dataclass(frozen=True, slots=True)
class Admission:
    """What the route decided a new parent may be: its limits in the quote asset and open count."""

    min_notional: Decimal
    max_notional: Decimal
    max_open: int


NOTIONAL_OUT_OF_RANGE = -20204
"""Binance's "The notional of USD is less or more than the limit." (its 20xxx algo codes)."""
TOO_MANY_OPEN = -20198
"""Binance's "Reach the max open orders allowed."."""
SERVICE_UNAVAILABLE = -1001
"""Binance's DISCONNECTED: the journal could not take the parent."""


class AlgoService:
    """The venue's algo service; see the module docstring. Build with :meth:`open`."""

    def __init__(self, ctx: ServerContext, directory: Path | None) -> None:
        self.ctx = ctx
        self.directory = directory
        self.registry = Registry(None if directory is None else directory / REGISTRY_FILE)
        self.algos: dict[int, Algo] = {}
        self._turn_lock = threading.Lock()
        self.admission_locks: dict[int, asyncio.Lock] = {}
        """Per account: one parent of an agent is admitted at a time (:mod:`.guard`)."""
        self.stopped = False
        """Set by :meth:`stop`: no turn runs after it, so no child is sent past its log's close."""
        self.on_change: list[Callable[[Algo], None]] = []
        """Called (on the journal thread) when a parent starts, executes or ends: user-stream updates."""

    @classmethod
    def open(cls, ctx: ServerContext) -> AlgoService:
        """The service on ``DATA/algos``; :meth:`resume` must then run in the sequencer's pipeline."""
        return cls(ctx, ctx.data_dir / ALGOS_DIR)

    # ------------------------------------------------------------------ start-up

    def resume(self) -> list[str]:
        """Rebuild every parent from the engine's table and resume the WORKING ones; returns what it did.

        Runs in the sequencer's pipeline (a query): it reads the engine and the read model, and
        journals the end of a parent that cannot be resumed.
        """
        lines: list[str] = []
        created = {r.algo_id: r for r in self.registry.records if isinstance(r, CreatedRecord)}
        table = self.ctx.seq.engine.parents.rows
        for algo_id in sorted(set(created) - {int(p) for p in table}):
            lines.append(f"algo {algo_id}: registered before parents were journaled; not resumed")
        for parent_id in sorted(table):
            row = table[parent_id]
            record = created.get(int(parent_id))
            if record is None:
                if row.status is AlgoStatus.WORKING:
                    self._finish(
                        row,
                        AlgoStatus.EXPIRED,
                        "the server stopped before the parent's parameters were recorded (it never sent a child)",
                    )
                    lines.append(
                        f"algo {parent_id} ({row.client_algo_id}) expired: its parameters were never recorded"
                    )
                continue
            path = None if self.directory is None else child_log_path(self.directory, record.algo_id)
            self.algos[record.algo_id] = Algo(record, path, row)
        self._remove_orphans()
        for algo in self.algos.values():
            if algo.ended is not None:
                continue
            venue = _venue(self.ctx, algo.created.account_id, algo.algo_id)
            child_log: ChildLog | None = None
            try:
                child_log = ChildLog(algo.log_path)
                algo.runner = ParentRunner.resume(venue, child_log, seed=algo.algo_id, period_s=RUN_PERIOD_S)
            except (ValueError, OSError) as exc:
                if child_log is not None:
                    child_log.close()
                algo.sweep = True  # its resting children are cancelled on the driver's first turn
                self._end(
                    algo,
                    AlgoStatus.EXPIRED,
                    f"could not be resumed after a restart ({exc}); its open children are cancelled",
                )
                continue
            algo.venue = venue
            lines.append(
                f"algo {algo.algo_id} ({algo.created.parent.client_algo_id}) resumed with "
                f"{len(algo.child_ids())} children sent and {algo.row.executed_lots} lots executed"
            )
        return lines

    def _remove_orphans(self) -> None:
        # a child log without a ``created`` record was never answered and never sent a child
        if self.directory is None or not self.directory.exists():
            return
        for path in sorted(self.directory.glob("*.childlog")):
            stem = path.stem
            if stem.isdigit() and int(stem) not in self.algos:
                log.warning("removing %s: its parent was never registered (a crash while creating it)", path)
                path.unlink()

    def stop(self) -> None:
        """End the service's turns (waiting for one that runs), then close its logs (venue shutdown)."""
        with self._turn_lock:
            self.stopped = True
            self.close()

    def close(self) -> None:
        for algo in self.algos.values():
            if algo.runner is not None:
                algo.runner.log.close()
        self.registry.close()

    # ------------------------------------------------------------------ requests (sequencer queries)

    def create(
        self,
        account_id: int,
        algo_type: str,
        urgency: str | None,
        parent: ParentOrder,
        admission: Admission,
    ) -> Algo:
        """Bind ``parent`` now, journal it (``CreateParent``) and register its parameters.

        Its first children go out on the driver's next turn.

        Raises
        ------
        AlgoRefused
            ``-20198`` with too many open parents, ``-20204`` for a notional outside the route's
            range, or the engine's refusal of ``CreateParent`` (``-20132`` for a ``clientAlgoId``
            the account already used, the market's mode refusals).
        perpx.execution.model.ParentOrderError
            If the parent cannot be bound to its market (no price yet, below the minimum quantity).
        """
        engine = self.ctx.seq.engine
        algo_id = engine.parents.next_parent_id  # what CreateParent will assign: nothing runs in between
        if not parent.client_algo_id:  # Binance's routes leave it optional; ``perpx-`` is reserved for these
            parent = msgspec.structs.replace(parent, client_algo_id=f"{DEFAULT_CLIENT_PREFIX}{algo_id}")
        open_count = sum(
            1
            for a in self.algos.values()
            if a.ended is None and a.created.account_id == account_id and a.created.algo_type == algo_type
        )
        if open_count >= admission.max_open:
            raise AlgoRefused(
                TOO_MANY_OPEN,
                f"Reach the max open orders allowed: {admission.max_open} open {algo_type} algo orders.",
            )
        venue = _venue(self.ctx, account_id)
        now_ns = venue.now_ns()
        bound = bind_parent(parent, venue, now_ns)
        notional = parent_notional(bound)
        if not admission.min_notional <= notional <= admission.max_notional:
            raise AlgoRefused(
                NOTIONAL_OUT_OF_RANGE,
                f"The notional of USD is less or more than the limit: {notional.normalize():f} at the "
                f"arrival price; allowed {admission.min_notional} to {admission.max_notional}.",
            )
        row = self._journal_create(account_id, algo_type, parent, bound.qty_lots)
        venue.parent_id = row.parent_id
        path = None if self.directory is None else child_log_path(self.directory, algo_id)
        if path is not None and path.exists():
            path.unlink()  # an orphan of an unanswered create (see the registry's write order)
        runner = ParentRunner.start(venue, parent, ChildLog(path), seed=algo_id, period_s=RUN_PERIOD_S)
        created = CreatedRecord(
            algo_id=algo_id,
            account_id=account_id,
            algo_type=algo_type,
            urgency=urgency,
            book_ms=now_ns // NS_PER_MS,
            parent=parent,
        )
        self.registry.append(created)
        algo = Algo(created, path, row, runner=runner, venue=venue)
        self.algos[algo_id] = algo
        self._changed(algo)
        return algo

    def _journal_create(self, account_id: int, algo_type: str, parent: ParentOrder, qty_lots: int) -> Parent:
        command = CreateParent(
            ts_ns=self.ctx.seq.core.stamp(),
            account_id=AccountId(account_id),
            market=MarketId(parent.market),
            side=Side.BUY if parent.side is ParentSide.BUY else Side.SELL,
            qty_lots=qty_lots,
            client_algo_id=ClientAlgoId(parent.client_algo_id),
            algo_type=algo_type,
        )
        try:
            events = self.ctx.seq.core.apply_one(command)
        except SequencerError as exc:
            raise AlgoRefused(SERVICE_UNAVAILABLE, f"the algo could not be recorded: {exc}") from exc
        for event in events.own:
            if isinstance(event, ParentCreated):
                return self.ctx.seq.engine.parents.rows[event.parent_id]
            if isinstance(event, CommandRejected):
                raise AlgoRefused(int(event.code), event.message)
        raise AlgoRefused(SERVICE_UNAVAILABLE, "the algo could not be recorded: the engine did not answer")

    def request_cancel(self, account_id: int, algo_id: int) -> Algo | None:
        """Journal a cancel of the account's open parent ``algo_id``; ``None`` if there is none.

        Raises
        ------
        AlgoRefused
            ``-1001`` when the journal cannot take the cancel (the parent works on).
        """
        algo = self.algos.get(algo_id)
        if algo is None or algo.created.account_id != account_id or algo.ended is not None:
            return None
        if not algo.cancel_requested:
            command = CancelParent(
                ts_ns=self.ctx.seq.core.stamp(), account_id=AccountId(account_id), parent_id=ParentId(algo_id)
            )
            try:
                events = self.ctx.seq.core.apply_one(command)
            except SequencerError as exc:
                raise AlgoRefused(SERVICE_UNAVAILABLE, f"the cancel could not be recorded: {exc}") from exc
            if any(isinstance(e, CommandRejected) for e in events.own):
                return None
        return algo

    # ------------------------------------------------------------------ the driver

    def due_ns(self) -> int:
        """Wall time of the next turn: now if a parent is due or a cancel waits, else soon."""
        wall = self.ctx.seq.wall_ns()
        if self.stopped:
            return wall + 3600 * NS_PER_S
        if any(a.sweep for a in self.algos.values()):
            return 0
        running = [a for a in self.algos.values() if a.runner is not None and a.ended is None]
        if not running:
            return wall + IDLE_WAKE_NS
        engine_ns = self.ctx.seq.engine.now_ns
        now = engine_ns if self.ctx.seq.manual_clock else max(engine_ns, wall)  # what the next stamp is
        if any(a.cancel_requested or (a.runner is not None and a.runner.wake_ns <= now) for a in running):
            return 0
        if self.ctx.seq.manual_clock:
            return wall + IDLE_WAKE_NS  # venue time moves only with a command; drivers run after it
        soonest = min(a.runner.wake_ns for a in running if a.runner is not None)
        return wall + min(IDLE_WAKE_NS, max(0, soonest - now))

    def run(self, sequencer: Sequencer, wall_ns: int) -> None:
        """One turn: cancel what was asked, then step every due parent, oldest first."""
        with self._turn_lock:
            if self.stopped:
                return
            for algo_id in sorted(self.algos):
                algo = self.algos[algo_id]
                if algo.sweep:
                    self._sweep(algo)
                if algo.runner is not None and algo.ended is None:
                    self._turn(algo, algo.runner)

    def _sweep(self, algo: Algo) -> None:
        prefix = algo_prefix(algo.created.parent.client_algo_id)
        market = algo.created.parent.market
        venue = _venue(self.ctx, algo.created.account_id)
        try:
            for order in venue.open_orders(market):
                parsed = parse_child_id(order.client_order_id)
                if parsed is not None and parsed[0] == prefix:
                    venue.cancel(market, order.client_order_id)
        except VenueUnavailable as exc:
            log.warning("algo %d: its children could not be cancelled yet (%s)", algo.algo_id, exc)
            return
        algo.sweep = False

    def _turn(self, algo: Algo, runner: ParentRunner) -> None:
        now = runner.venue.now_ns()
        try:
            if algo.cancel_requested:
                runner.cancel_all("cancelled by the client")
                self._end(algo, AlgoStatus.CANCELLED, "cancelled by the client")
                return
            guard = agent_guard(self.ctx)
            agent = guard.agent_of(AccountId(algo.created.account_id))
            if agent is not None and guard.is_killed(agent):
                runner.cancel_all("the account's agent key was killed")
                self._end(algo, AlgoStatus.CANCELLED, "the account's agent key was killed")
                return
            if now < runner.wake_ns:
                return
            before = runner.history[-1].filled_lots if runner.history else 0
            runner.step()
            if runner.done:
                self._end_done(algo, runner)
            elif algo.venue is not None and algo.venue.refusals_in_row >= MAX_REFUSALS_IN_ROW:
                runner.cancel_all("expired")
                self._end(algo, AlgoStatus.EXPIRED, self._why(algo, runner, "the venue refused its children"))
            elif runner.bound.end_ns is not None and now >= runner.bound.end_ns + EXPIRY_GRACE_S * NS_PER_S:
                runner.cancel_all("expired")
                self._end(
                    algo, AlgoStatus.EXPIRED, self._why(algo, runner, "the window ended with a remainder")
                )
            elif runner.history and runner.history[-1].filled_lots != before:
                self._changed(algo)
        except VenueUnavailable as exc:
            log.warning(
                "algo %d: the venue did not take its turn (%s); retrying next turn", algo.algo_id, exc
            )
        except Exception as exc:
            log.exception("algo %d failed; it expires", algo.algo_id)
            try:
                runner.cancel_all("stopped by an internal error")
            except Exception:
                log.exception("algo %d: its working children could not be cancelled", algo.algo_id)
            self._end(algo, AlgoStatus.EXPIRED, f"stopped by an internal error: {type(exc).__name__}: {exc}")

    def _end_done(self, algo: Algo, runner: ParentRunner) -> None:
        if algo.row.executed_lots >= algo.row.qty_lots:
            self._end(algo, AlgoStatus.FINISHED, "every lot executed")
            return
        done = next((r for r in reversed(runner.log.records) if isinstance(r, DoneRecord)), None)
        self._end(algo, AlgoStatus.EXPIRED, self._why(algo, runner, done.reason if done else "ended"))

    def _why(self, algo: Algo, runner: ParentRunner, reason: str) -> str:
        text = f"{reason}; {algo.row.executed_lots} of {algo.row.qty_lots} lots executed"
        if algo.venue is not None and algo.venue.last_refusal:
            text += f"; last refusal: {algo.venue.last_refusal}"
        return text

    def _end(self, algo: Algo, status: AlgoStatus, reason: str) -> None:
        self._finish(algo.row, status, reason)
        if algo.runner is not None:
            algo.kept_records = algo.runner.log.records
            algo.runner.log.close()
            algo.runner = None
        self._changed(algo)

    def _finish(self, row: Parent, status: AlgoStatus, reason: str) -> None:
        """Journal the end of ``row``'s parent (``FinishParent``); the engine's row then says so."""
        command = FinishParent(
            ts_ns=self.ctx.seq.core.stamp(), parent_id=row.parent_id, status=status, reason=reason
        )
        journal_end(self.ctx.seq.core, command, log, f"algo {row.parent_id}", status.value)

    def _changed(self, algo: Algo) -> None:
        for observe in self.on_change:
            try:
                observe(algo)
            except Exception:
                log.exception("algo update observer failed")

    # ------------------------------------------------------------------ reading (any thread)

    def executed_lots(self, algo: Algo) -> int:
        """Lots the parent's children executed: the engine's count (journaled)."""
        return algo.row.executed_lots

    def child_rows(self, algo: Algo) -> list[ChildRow | None]:
        """Each child's read-model row (``None`` for a child the venue never accepted), in order."""
        readmodel = self.ctx.components.readmodel
        symbol = algo.created.parent.market
        out: list[ChildRow | None] = []
        for cid in algo.child_ids():
            record = readmodel.order(algo.created.account_id, symbol, client_order_id=cid)
            out.append(None if record is None else ChildRow(cid, record))
        return out

    def of_account(self, account_id: int) -> list[Algo]:
        return [a for a in list(self.algos.values()) if a.created.account_id == account_id]


@dataclass(frozen=True, slots=True)
class ChildRow:
    """A child's client order id and its read-model row."""

    client_order_id: str
    record: OrderRecord


def parent_notional(bound: BoundParent) -> Decimal:
    """The parent's quote value at its arrival price (what Binance's notional limits apply to)."""
    return bound.qty_lots * bound.filters.lot_size * bound.arrival_ticks * bound.filters.tick_size


_SERVICES: dict[int, tuple[ServerContext, AlgoService]] = {}


def register(ctx: ServerContext, service: AlgoService) -> None:
    """Make ``service`` the venue's (:func:`algo_service` finds it); unregistered by :func:`unregister`."""
    _SERVICES[id(ctx)] = (ctx, service)


def unregister(ctx: ServerContext) -> None:
    _SERVICES.pop(id(ctx), None)


def algo_service(ctx: ServerContext) -> AlgoService | None:
    """The venue's algo service while it runs, else ``None``."""
    held = _SERVICES.get(id(ctx))
    return held[1] if held is not None and held[0] is ctx else None
