"""The venue's flow service: a strategy document's flow (OCO, OTO, bracket, if-then) run by the server.

``POST /perpx/v1/flow`` (:mod:`.flow_routes`) hands the service a checked strategy document; the
service works it with the same :class:`~perpx.execution.flows.runner.FlowRunner` that ``perpx algo
run`` and backtests use, on :class:`~.venue.ServerVenue` for the account, as a sequencer driver (on
the journal thread, between batches, where nothing else touches the engine).

What the venue records
----------------------
* order nodes are ordinary journaled orders of the account, client order id
  ``{clientFlowId}-c{node index}`` (derived, never drawn), in its order history, fills and user stream;
* algo nodes are parents of the venue's algo service (:mod:`.service`: ``CreateParent`` in the
  engine journal, children ``PlaceChildOrder``), named by the document's ``client_algo_id``, so they
  show in ``openOrders``/``historicalOrders``/``subOrders`` too;
* the flow's life and every node's change of state are the engine's (:mod:`perpx.engine.parents`):
  ``CreateFlow``, ``RecordFlowNode`` (the runner's journal is :class:`EngineFlowJournal`),
  ``CancelFlow``, ``FinishFlow``; a replay rebuilds them. ``DATA/flows/registry.jsonl`` keeps only
  each flow's document (its parameters), fsynced.

Crash-resume, without firing a node twice
-----------------------------------------
At start-up every WORKING flow of the engine's table is rebuilt from its node lines. An order node is
found on the venue by its derived id (adopted even if its ``working`` line never reached the journal)
and followed, never sent again; an algo node is found in the algo service by its ``client_algo_id``
(:class:`ServiceAlgos` adopts an existing parent instead of creating a second). A WORKING flow whose
document never reached the registry (the server died between ``CreateFlow`` and the registry's line;
it started no node) ends EXPIRED, saying so.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from perpx.agents.guard import agent_guard
from perpx.engine.commands import CancelFlow, CreateFlow, FinishFlow, ParentStatus, RecordFlowNode
from perpx.engine.events import CommandRejected
from perpx.engine.parents import FlowRow
from perpx.engine.values import NS_PER_MS, AccountId
from perpx.execution.appendlog import AppendLog
from perpx.execution.document.model import StrategyDocument
from perpx.execution.document.validate import DocumentInvalid, decode_document
from perpx.execution.flows.algos import AlgoProgress
from perpx.execution.flows.journal import FlowJournal, FlowRecord, NodeRecord, StartedRecord
from perpx.execution.flows.runner import FlowRunner
from perpx.execution.flows.state import NodeStatus
from perpx.execution.model import FieldError, ParentOrder, ParentOrderError
from perpx.sequencing import Sequencer, SequencerError
from perpx.server.algos.service import Admission, Algo, AlgoRefused, AlgoService, journal_end
from perpx.server.algos.venue import ServerVenue
from perpx.server.context import ServerContext

log = logging.getLogger("perpx.flows")

FLOWS_DIR = "flows"
REGISTRY_FILE = "registry.jsonl"
MAX_OPEN_FLOWS = 30
"""Working flows per account."""
IDLE_WAKE_NS = 1_000_000_000
WALL_WAKE_NS = 200_000_000
"""On the wall clock a working flow wakes this often (a stop or a price cross is this prompt)."""
DEFAULT_CLIENT_PREFIX = "perpx-flow-"
FLOW_ADMISSION = Admission(Decimal(0), Decimal(1_000_000_000), 30)
"""An algo node's parent: any notional the market's filters accept (as ``POST /perpx/v1/algo``)."""


FlowStatus = ParentStatus
"""A flow's status: WORKING; FINISHED (every node ended: filled, done, cancelled by the flow's own
rules, rejected or skipped); CANCELLED (the owner, or its agent key was killed); EXPIRED (it could not
be worked: its document was never recorded or cannot be read, or the runner failed)."""


class FlowDocument(msgspec.Struct, frozen=True, tag="document", kw_only=True):
    """A flow's parameters: the strategy document as sent (already checked), decoded again on resume."""

    flow_id: int
    account_id: int
    book_ms: int
    document: dict[str, Any]


class FlowRegistry(AppendLog[FlowDocument]):
    """``DATA/flows/registry.jsonl``; ``None`` keeps it in memory."""

    def __init__(self, path: Path | None) -> None:
        super().__init__(path, FlowDocument, what="flow registry record")


class FlowRefused(Exception):
    """A flow the service will not take or act on; ``code`` is perpx's (-9590..-9599) or -1001."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


TOO_MANY_FLOWS = -9594
DUPLICATE_FLOW = -9595
SERVICE_UNAVAILABLE = -1001


class EngineFlowJournal(FlowJournal):
    """The flow runner's journal kept in the engine: each node change is a ``RecordFlowNode`` command.

    Its records at start are the engine's: the flow's start (``CreateFlow``'s time) and every node
    line recorded since, so a runner built on it resumes; a fresh flow's runner starts at once from
    its creation time (nothing to adopt yet).

    Raises
    ------
    perpx.sequencing.SequencerError
        From :meth:`append` when the journal cannot take the line (the service retries the turn).
    """

    def __init__(self, core: Sequencer, row: FlowRow) -> None:
        super().__init__(None)
        self.core = core
        self.flow_id = row.flow_id
        self.records = [
            StartedRecord(flow_id=row.client_flow_id, document=row.name, ts_ns=row.created_ns),
            *(
                NodeRecord(
                    ts_ns=int(line[0]),
                    node=str(line[1]),
                    status=str(line[2]),
                    reason=str(line[3]),
                    arrival_price=Decimal(line[4]) if line[4] else None,
                )
                for line in row.nodes
            ),
        ]

    def append(self, record: FlowRecord) -> None:
        if not isinstance(record, NodeRecord):
            raise ValueError(f"flow {self.flow_id}: only node lines go to the engine, not {record}")
        command = RecordFlowNode(
            ts_ns=self.core.stamp(),
            flow_id=self.flow_id,
            node=record.node,
            status=record.status,
            reason=record.reason,
            arrival_price="" if record.arrival_price is None else str(record.arrival_price),
        )
        events = self.core.apply_one(command)
        for event in events.own:
            if isinstance(event, CommandRejected):
                raise ValueError(f"flow {self.flow_id}: the engine refused a node line: {event.message}")
        self.records.append(record)


@dataclass
class Flow:
    """One flow the service knows: its engine row, its document, and its runner while it works."""

    row: FlowRow
    """The engine's row (:mod:`perpx.engine.parents`): status, cancel asked, end, every node line."""
    document: FlowDocument | None
    runner: FlowRunner | None = None
    _decoded: StrategyDocument | None = None

    @property
    def flow_id(self) -> int:
        return self.row.flow_id

    @property
    def account_id(self) -> int:
        return int(self.row.account_id)

    @property
    def status(self) -> FlowStatus:
        return self.row.status

    @property
    def end_ms(self) -> int:
        return self.row.ended_ns // NS_PER_MS

    def decoded(self) -> StrategyDocument | None:
        """The flow's document (the runner's while it runs; decoded once otherwise), ``None`` if never recorded."""
        if self.runner is not None:
            return self.runner.document
        if self._decoded is None and self.document is not None:
            self._decoded = decode_document(self.document.document)
        return self._decoded


class ServiceHandle:
    """An algo node's parent, worked by the venue's algo service (its driver steps it, not the flow)."""

    def __init__(self, algos: AlgoService, algo: Algo) -> None:
        self.algos = algos
        self.algo = algo

    def step(self) -> None:
        """Nothing: the algo service's own driver works the parent."""

    def progress(self) -> AlgoProgress:
        algo = self.algo
        filters = self.algos.ctx.specs[algo.created.parent.market]
        rows = [row for row in self.algos.child_rows(algo) if row is not None]
        quote = sum(row.record.cum_quote_atoms for row in rows) * self.algos.ctx.atom
        arrival = None
        if algo.runner is not None:
            arrival = algo.runner.bound.arrival_ticks * filters.tick_size
        return AlgoProgress(
            qty_lots=algo.row.qty_lots,
            filled_lots=algo.row.executed_lots,
            filled_qty=algo.row.executed_lots * filters.lot_size,
            filled_notional=quote,
            finished=algo.ended is not None,
            arrival_price=arrival,
        )

    def cancel(self) -> None:
        """Journal the parent's cancel (``CancelParent``); the algo service cancels its children."""
        try:
            self.algos.request_cancel(self.algo.created.account_id, self.algo.algo_id)
        except AlgoRefused as exc:
            log.warning("algo %d: its cancel was not journaled (%s)", self.algo.algo_id, exc.msg)

    def close(self) -> None:
        """Nothing to release: the algo service owns the parent's child log."""


class ServiceAlgos:
    """:class:`~perpx.execution.flows.algos.AlgoStarter` on the venue's algo service, for one account.

    ``start`` is idempotent: a parent the account already has under the same ``client_algo_id`` is
    adopted, so a node that fired just before a crash never starts a second parent.
    """

    def __init__(self, algos: AlgoService, account_id: int) -> None:
        self.algos = algos
        self.account_id = account_id

    def start(self, parent: ParentOrder) -> ServiceHandle:
        existing = self._find(parent.client_algo_id)
        if existing is not None:
            return ServiceHandle(self.algos, existing)
        try:
            algo = self.algos.create(
                self.account_id,
                parent.algo.value.upper(),
                parent.urgency.value.upper(),
                parent,
                FLOW_ADMISSION,
            )
        except AlgoRefused as exc:
            raise ParentOrderError([FieldError("client_algo_id", f"{exc.code} {exc.msg}")]) from None
        return ServiceHandle(self.algos, algo)

    def resume(self, parent: ParentOrder) -> ServiceHandle:
        existing = self._find(parent.client_algo_id)
        if existing is None:
            raise ParentOrderError(
                [FieldError("client_algo_id", f"the algo service has no parent {parent.client_algo_id}")]
            )
        return ServiceHandle(self.algos, existing)

    def _find(self, client_algo_id: str) -> Algo | None:
        return next(
            (
                a
                for a in self.algos.of_account(self.account_id)
                if a.created.parent.client_algo_id == client_algo_id
            ),
            None,
        )


class FlowService:
    """The venue's flows; see the module docstring. Build with :meth:`open`, then :meth:`resume`."""

    def __init__(self, ctx: ServerContext, algos: AlgoService, directory: Path | None) -> None:
        self.ctx = ctx
        self.algos = algos
        self.directory = directory
        self.registry = FlowRegistry(None if directory is None else directory / REGISTRY_FILE)
        self.flows: dict[int, Flow] = {}
        self.on_change: list[Callable[[Flow], None]] = []
        self.stopped = False
        self._turn_lock = threading.Lock()
        self._seen_seq = -1
        self._dirty = True

    @classmethod
    def open(cls, ctx: ServerContext, algos: AlgoService) -> FlowService:
        return cls(ctx, algos, ctx.data_dir / FLOWS_DIR)

    # ------------------------------------------------------------------ start-up

    def resume(self) -> list[str]:
        """Rebuild every flow from the engine's table and resume the working ones; returns what it did.

        Runs in the sequencer's pipeline (a query): it reads the engine and journals the end of a
        flow that cannot be resumed.
        """
        lines: list[str] = []
        documents = {r.flow_id: r for r in self.registry.records}
        table = self.ctx.seq.engine.parents.flows
        for flow_id in sorted(table):
            row = table[flow_id]
            flow = Flow(row, documents.get(flow_id))
            self.flows[flow_id] = flow
            if row.status is not FlowStatus.WORKING:
                continue
            if flow.document is None:
                self._end(
                    flow, FlowStatus.EXPIRED, "the server stopped before the flow's document was recorded"
                )
                lines.append(
                    f"flow {flow_id} ({row.client_flow_id}) expired: its document was never recorded"
                )
                continue
            try:
                flow.runner = self._runner(row, flow.document)
            except (DocumentInvalid, ValueError) as exc:
                self._end(flow, FlowStatus.EXPIRED, f"could not be resumed after a restart: {exc}")
                lines.append(f"flow {flow_id} ({row.client_flow_id}) expired: {exc}")
                continue
            fired = sum(1 for s in flow.runner.nodes.values() if s.status is not NodeStatus.PENDING)
            lines.append(
                f"flow {flow_id} ({row.client_flow_id}) resumed with {fired} of "
                f"{len(flow.runner.nodes)} nodes started"
            )
        return lines

    def _runner(self, row: FlowRow, record: FlowDocument) -> FlowRunner:
        document: StrategyDocument = decode_document(record.document)
        venue = ServerVenue(
            self.ctx.seq.core,
            self.ctx.components.readmodel,
            self.ctx.components.marketdata,
            row.account_id,
        )
        return FlowRunner(
            document,
            venue,
            row.client_flow_id,
            algos=ServiceAlgos(self.algos, int(row.account_id)),
            journal=EngineFlowJournal(self.ctx.seq.core, row),
        )

    def stop(self) -> None:
        with self._turn_lock:
            self.stopped = True
            self.registry.close()

    # ------------------------------------------------------------------ requests (sequencer queries)

    def create(self, account_id: int, client_flow_id: str | None, data: dict[str, Any]) -> Flow:
        """Journal a checked document as a new flow (``CreateFlow``) and record its document.

        Its first nodes start on the driver's next turn.

        Raises
        ------
        FlowRefused
            ``-9594`` with too many working flows, ``-9595`` for a ``clientFlowId`` or a parent's
            ``client_algo_id`` the account already used (an algo node adopts the account's parent of
            that id, so reuse would adopt another flow's), ``-1001`` when the journal cannot take it.
        DocumentInvalid
            If the document does not check (the route checked it already; this is the last guard).
        """
        engine = self.ctx.seq.engine
        flow_id = engine.parents.next_flow_id  # what CreateFlow will assign: nothing runs in between
        name = client_flow_id or f"{DEFAULT_CLIENT_PREFIX}{flow_id}"
        document = decode_document(data)
        mine = self.of_account(account_id)
        taken = {a.created.parent.client_algo_id for a in self.algos.of_account(account_id)}
        taken |= {f.row.client_flow_id for f in mine}
        taken |= {
            str(p.get("client_algo_id"))
            for f in mine
            if f.document is not None
            for p in f.document.document.get("parents", [])
        }
        if name in taken:
            raise FlowRefused(
                DUPLICATE_FLOW, f"clientFlowId {name} is already used by one of your algos or flows."
            )
        for i, p in enumerate(data.get("parents", [])):
            if str(p.get("client_algo_id")) in taken:
                raise FlowRefused(
                    DUPLICATE_FLOW,
                    f"parents[{i}].client_algo_id: {p.get('client_algo_id')} is already used by one of your "
                    "algos or flows; each flow's parents need ids of their own (their children's ids derive from them).",
                )
        if sum(1 for f in mine if f.status is FlowStatus.WORKING) >= MAX_OPEN_FLOWS:
            raise FlowRefused(TOO_MANY_FLOWS, f"At most {MAX_OPEN_FLOWS} flows may work at once.")
        command = CreateFlow(
            ts_ns=self.ctx.seq.core.stamp(),
            account_id=AccountId(account_id),
            client_flow_id=name,
            name=document.name,
        )
        try:
            events = self.ctx.seq.core.apply_one(command)
        except SequencerError as exc:
            raise FlowRefused(SERVICE_UNAVAILABLE, f"the flow could not be recorded: {exc}") from exc
        for event in events.own:
            if isinstance(event, CommandRejected):
                raise FlowRefused(int(event.code), event.message)
        row = engine.parents.flows[flow_id]
        record = FlowDocument(
            flow_id=flow_id, account_id=account_id, book_ms=row.created_ns // NS_PER_MS, document=data
        )
        self.registry.append(record)
        flow = Flow(row, record, self._runner(row, record))
        self.flows[flow_id] = flow
        self._dirty = True
        self._changed(flow)
        return flow

    def request_cancel(self, account_id: int, flow_id: int) -> Flow | None:
        """Journal a cancel of the account's working flow (``CancelFlow``); ``None`` if there is none.

        Raises
        ------
        FlowRefused
            ``-1001`` when the journal cannot take the cancel (the flow works on).
        """
        flow = self.flows.get(flow_id)
        if flow is None or flow.account_id != account_id or flow.status is not FlowStatus.WORKING:
            return None
        if not flow.row.cancel_requested:
            command = CancelFlow(
                ts_ns=self.ctx.seq.core.stamp(), account_id=AccountId(account_id), flow_id=flow_id
            )
            try:
                events = self.ctx.seq.core.apply_one(command)
            except SequencerError as exc:
                raise FlowRefused(SERVICE_UNAVAILABLE, f"the cancel could not be recorded: {exc}") from exc
            if any(isinstance(e, CommandRejected) for e in events.own):
                return None
        self._dirty = True
        return flow

    def of_account(self, account_id: int) -> list[Flow]:
        return [f for f in list(self.flows.values()) if f.account_id == account_id]

    # ------------------------------------------------------------------ the driver

    def due_ns(self) -> int:
        """Now when something happened on the venue since the last turn (or a request waits), else soon."""
        wall = self.ctx.seq.wall_ns()
        if self.stopped or not any(
            f.runner is not None and f.status is FlowStatus.WORKING for f in self.flows.values()
        ):
            return wall + IDLE_WAKE_NS
        if self._dirty or self.ctx.seq.core.last_seq != self._seen_seq:
            return 0
        return wall + (IDLE_WAKE_NS if self.ctx.seq.manual_clock else WALL_WAKE_NS)

    def run(self, sequencer: Sequencer, wall_ns: int) -> None:
        """One turn: every working flow, oldest first, cancels what was asked or takes one wake-up."""
        with self._turn_lock:
            if self.stopped:
                return
            self._dirty = False
            for flow_id in sorted(self.flows):
                flow = self.flows[flow_id]
                if flow.runner is not None and flow.status is FlowStatus.WORKING:
                    self._turn(flow, flow.runner)
            self._seen_seq = self.ctx.seq.core.last_seq

    def _turn(self, flow: Flow, runner: FlowRunner) -> None:
        before = len(runner.log)
        try:
            guard = agent_guard(self.ctx)
            agent = guard.agent_of(flow.row.account_id)
            if flow.row.cancel_requested or (agent is not None and guard.is_killed(agent)):
                why = (
                    "cancelled by the client"
                    if flow.row.cancel_requested
                    else "the account's agent key was killed"
                )
                runner.cancel_all(why)
                self._end(flow, FlowStatus.CANCELLED, why)
                return
            runner.step()
        except SequencerError as exc:
            log.warning(
                "flow %d: the journal did not take its turn (%s); retrying next turn", flow.flow_id, exc
            )
            return
        except Exception as exc:
            log.exception("flow %d failed; it expires", flow.flow_id)
            try:
                runner.cancel_all("stopped by an internal error")
            except Exception:
                log.exception("flow %d: its working nodes could not be cancelled", flow.flow_id)
            self._end(flow, FlowStatus.EXPIRED, f"stopped by an internal error: {type(exc).__name__}: {exc}")
            return
        if runner.finished:
            ends = ", ".join(f"{name} {state.status.value}" for name, state in runner.nodes.items())
            self._end(flow, FlowStatus.FINISHED, f"every node ended: {ends}")
        elif len(runner.log) != before:
            self._changed(flow)

    def _end(self, flow: Flow, status: FlowStatus, reason: str) -> None:
        """Journal the flow's end (``FinishFlow``); the engine's row then says so."""
        command = FinishFlow(
            ts_ns=self.ctx.seq.core.stamp(), flow_id=flow.flow_id, status=status, reason=reason
        )
        if journal_end(self.ctx.seq.core, command, log, f"flow {flow.flow_id}", status.value):
            self._changed(flow)

    def _changed(self, flow: Flow) -> None:
        for observe in self.on_change:
            try:
                observe(flow)
            except Exception:
                log.exception("flow update observer failed")


_SERVICES: dict[int, tuple[ServerContext, FlowService]] = {}


def register(ctx: ServerContext, service: FlowService) -> None:
    _SERVICES[id(ctx)] = (ctx, service)


def unregister(ctx: ServerContext) -> None:
    _SERVICES.pop(id(ctx), None)


def flow_service(ctx: ServerContext) -> FlowService | None:
    """The venue's flow service while it runs, else ``None``."""
    held = _SERVICES.get(id(ctx))
    return held[1] if held is not None and held[0] is ctx else None
