"""The parent-order table: the algo service's parents, their status and executed quantity, in the engine.

The venue's algo service (``perpx.server.algos``) decides; the engine records. Every decision that
changes a parent is a journaled command, so a replay of the journal rebuilds this table exactly and
a restarted service resumes from it:

=====================  ========================================================================
``CreateParent``       a new WORKING parent, with the next ``ParentId``
``CancelParent``       the owner asked to cancel it (the service cancels its children, then ends it)
``PlaceChildOrder``    a child order of a WORKING parent: the normal order path, linked to the parent
``FinishParent``       FINISHED (every lot executed), CANCELLED or EXPIRED, with the reason
``CreateFlow``         a WORKING flow (``POST /perpx/v1/flow``), with the next flow id
``RecordFlowNode``     one node of a working flow changed state (the flow runner's journal line)
``CancelFlow``         the owner asked to cancel a flow
``FinishFlow``         a flow ended FINISHED, CANCELLED or EXPIRED, with the reason
=====================  ========================================================================

Rules (a refusal is an event with a code; the table is unchanged)
-----------------------------------------------------------------
* a parent's account exists (``-9001``), its market is listed (``-1121``) and trades now (the
  market's mode refusals: ``-9005``, ``-9009``, ``-4400``), its quantity is positive (``-4003``);
* ``client_algo_id`` is 1 to 32 characters (``-20130``) and used once per account (``-20132``);
* a cancel or an end names a WORKING parent, the canceller's own (``-20124``);
* a child names a WORKING parent of the same account and market (``-9580``);
* FINISHED needs every lot executed (``-9581``).

Executed quantity
-----------------
An accepted child is linked to its parent until it leaves the book (filled, cancelled or expired);
every fill of a linked order, as taker or maker, in any later command, adds its lots to the
parent's ``executed_lots``. Invariant: ``executed_lots`` is the sum of the fills of the parent's
children (the service never sends more than the parent's quantity, so it stays at most
``qty_lots``). When a parent ends, its children still on the book are unlinked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from perpx.engine.codes import RejectCode
from perpx.engine.commands import (
    CancelFlow,
    CancelParent,
    CreateFlow,
    CreateParent,
    FinishFlow,
    FinishParent,
    ParentStatus,
    PlaceChildOrder,
    RecordFlowNode,
)
from perpx.engine.events import (
    Event,
    FlowCancelRequested,
    FlowEnded,
    FlowNodeRecorded,
    FlowOpened,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    ParentCancelRequested,
    ParentCreated,
    ParentEnded,
)
from perpx.engine.values import AccountId, ClientAlgoId, MarketId, OrderId, ParentId, Side

if TYPE_CHECKING:
    from perpx.engine.core import Core

MAX_CLIENT_ALGO_ID_CHARS = 32
"""Binance's length limit of ``clientAlgoId``."""


class Parent:
    """One row of the table."""

    def __init__(
        self,
        parent_id: ParentId,
        account_id: AccountId,
        market: MarketId,
        side: Side,
        qty_lots: int,
        client_algo_id: ClientAlgoId,
        algo_type: str,
        created_ns: int,
    ) -> None:
        self.parent_id = parent_id
        self.account_id = account_id
        self.market = market
        self.side = side
        self.qty_lots = qty_lots
        self.client_algo_id = client_algo_id
        self.algo_type = algo_type
        self.created_ns = created_ns
        self.status = ParentStatus.WORKING
        self.executed_lots = 0
        self.cancel_requested = False
        self.ended_ns = 0
        self.reason = ""

    def to_row(self) -> list[Any]:
        return [
            self.parent_id,
            self.account_id,
            self.market,
            int(self.side),
            self.qty_lots,
            self.client_algo_id,
            self.algo_type,
            self.created_ns,
            self.status.value,
            self.executed_lots,
            self.cancel_requested,
            self.ended_ns,
            self.reason,
        ]

    @staticmethod
    def from_row(row: list[Any]) -> Parent:
        parent = Parent(
            ParentId(int(row[0])),
            AccountId(int(row[1])),
            MarketId(str(row[2])),
            Side(int(row[3])),
            int(row[4]),
            ClientAlgoId(str(row[5])),
            str(row[6]),
            int(row[7]),
        )
        parent.status = ParentStatus(str(row[8]))
        parent.executed_lots = int(row[9])
        parent.cancel_requested = bool(row[10])
        parent.ended_ns = int(row[11])
        parent.reason = str(row[12])
        return parent


class FlowRow:
    """One flow of the algo service: its life, and every node change the flow runner recorded.

    ``nodes`` holds ``[ts_ns, node, status, reason, arrival_price]`` lines in order: the flow
    runner's journal (``perpx.execution.flows.journal``), kept by the engine so a replay rebuilds it.
    """

    def __init__(
        self, flow_id: int, account_id: AccountId, client_flow_id: str, name: str, created_ns: int
    ) -> None:
        self.flow_id = flow_id
        self.account_id = account_id
        self.client_flow_id = client_flow_id
        self.name = name
        self.created_ns = created_ns
        self.status = ParentStatus.WORKING
        self.cancel_requested = False
        self.ended_ns = 0
        self.reason = ""
        self.nodes: list[list[Any]] = []

    def to_row(self) -> list[Any]:
        return [
            self.flow_id,
            self.account_id,
            self.client_flow_id,
            self.name,
            self.created_ns,
            self.status.value,
            self.cancel_requested,
            self.ended_ns,
            self.reason,
            [list(line) for line in self.nodes],
        ]

    @staticmethod
    def from_row(row: list[Any]) -> FlowRow:
        flow = FlowRow(int(row[0]), AccountId(int(row[1])), str(row[2]), str(row[3]), int(row[4]))
        flow.status = ParentStatus(str(row[5]))
        flow.cancel_requested = bool(row[6])
        flow.ended_ns = int(row[7])
        flow.reason = str(row[8])
        flow.nodes = [[int(n[0]), str(n[1]), str(n[2]), str(n[3]), str(n[4])] for n in row[9]]
        return flow


class Parents:
    """The table, its client-id index and the live child links; see the module docstring.

    It also holds the algo service's flows (``CreateFlow``, ``RecordFlowNode``, ``CancelFlow``,
    ``FinishFlow``): a flow's order and algo nodes are ordinary orders and parents; the flow's
    life and its nodes' states are this table's ``flows``.
    """

    def __init__(self, core: Core) -> None:
        self.core = core
        self.rows: dict[ParentId, Parent] = {}
        self.by_client: dict[tuple[AccountId, ClientAlgoId], ParentId] = {}
        self.children: dict[OrderId, ParentId] = {}
        """Children on the book (or being placed), by order id: their fills count for the parent."""
        self.next_parent_id = 1
        self.flows: dict[int, FlowRow] = {}
        self.flows_by_client: dict[tuple[AccountId, str], int] = {}
        self.next_flow_id = 1

    def handlers(self) -> dict[type, Callable[[Any], None]]:
        """The engine commands this table handles."""
        return {
            CreateParent: self._create,
            CancelParent: self._cancel,
            FinishParent: self._finish,
            PlaceChildOrder: self._place_child,
            CreateFlow: self._create_flow,
            RecordFlowNode: self._record_flow_node,
            CancelFlow: self._cancel_flow,
            FinishFlow: self._finish_flow,
        }

    # ------------------------------------------------------------------ commands

    def _create(self, cmd: CreateParent) -> None:
        core = self.core
        refusal = self._create_refusal(cmd)
        if refusal is not None:
            core.reject_command(cmd, cmd.account_id, refusal[0], refusal[1])
            return
        parent = Parent(
            ParentId(self.next_parent_id),
            cmd.account_id,
            cmd.market,
            cmd.side,
            cmd.qty_lots,
            cmd.client_algo_id,
            cmd.algo_type,
            core.now_ns,
        )
        self.next_parent_id += 1
        self.rows[parent.parent_id] = parent
        self.by_client[(cmd.account_id, cmd.client_algo_id)] = parent.parent_id
        core.emit(
            ParentCreated(
                ts_ns=core.now_ns,
                parent_id=parent.parent_id,
                account_id=parent.account_id,
                market=parent.market,
                side=parent.side,
                qty_lots=parent.qty_lots,
                client_algo_id=parent.client_algo_id,
                algo_type=parent.algo_type,
            )
        )

    def _create_refusal(self, cmd: CreateParent) -> tuple[RejectCode, str] | None:
        core = self.core
        if cmd.account_id not in core.accounts:
            return RejectCode.UNKNOWN_ACCOUNT, f"account {cmd.account_id} does not exist"
        if cmd.market not in core.specs:
            return RejectCode.BAD_SYMBOL, f"market {cmd.market} is not listed on this venue"
        if cmd.qty_lots <= 0:
            return (
                RejectCode.QTY_NOT_POSITIVE,
                f"a parent's quantity must be positive, not {cmd.qty_lots} lots",
            )
        if not cmd.client_algo_id or len(cmd.client_algo_id) > MAX_CLIENT_ALGO_ID_CHARS:
            return (
                RejectCode.BAD_CLIENT_ALGO_ID,
                f"Invalid data sent for a parameter: clientAlgoId must be 1 to {MAX_CLIENT_ALGO_ID_CHARS} characters.",
            )
        if (cmd.account_id, cmd.client_algo_id) in self.by_client:
            return RejectCode.DUPLICATE_CLIENT_ALGO_ID, "The client algo id is duplicated."
        return core.mode_refusal(cmd.market, False)

    def _working(self, parent_id: ParentId) -> Parent | None:
        parent = self.rows.get(parent_id)
        return parent if parent is not None and parent.status is ParentStatus.WORKING else None

    def _cancel(self, cmd: CancelParent) -> None:
        parent = self._working(cmd.parent_id)
        if parent is None or parent.account_id != cmd.account_id:
            self.core.reject_command(
                cmd, cmd.account_id, RejectCode.UNKNOWN_PARENT, "Invalid algo id or it has been completed."
            )
            return
        parent.cancel_requested = True
        self.core.emit(
            ParentCancelRequested(
                ts_ns=self.core.now_ns, parent_id=parent.parent_id, account_id=parent.account_id
            )
        )

    def _finish(self, cmd: FinishParent) -> None:
        core = self.core
        parent = self._working(cmd.parent_id)
        if parent is None or cmd.status is ParentStatus.WORKING:
            core.reject_command(
                cmd, None, RejectCode.UNKNOWN_PARENT, "Invalid algo id or it has been completed."
            )
            return
        if cmd.status is ParentStatus.FINISHED and parent.executed_lots < parent.qty_lots:
            core.reject_command(
                cmd,
                parent.account_id,
                RejectCode.PARENT_NOT_DONE,
                f"parent {parent.parent_id} executed {parent.executed_lots} of {parent.qty_lots} lots: "
                "it cannot be FINISHED (end it EXPIRED with the reason)",
            )
            return
        parent.status = cmd.status
        parent.ended_ns = core.now_ns
        parent.reason = cmd.reason
        for order_id in [o for o, p in self.children.items() if p == parent.parent_id]:
            del self.children[order_id]
        core.emit(
            ParentEnded(
                ts_ns=core.now_ns,
                parent_id=parent.parent_id,
                account_id=parent.account_id,
                status=parent.status,
                executed_lots=parent.executed_lots,
                reason=parent.reason,
            )
        )

    def _place_child(self, cmd: PlaceChildOrder) -> None:
        core = self.core
        order = cmd.order
        parent = self._working(cmd.parent_id)
        if parent is None or parent.account_id != order.account_id or parent.market != order.market:
            core.reject_order(
                order,
                RejectCode.NOT_THE_PARENTS,
                f"parent {cmd.parent_id} is not a working parent of account {order.account_id} in {order.market}",
            )
            return
        start = len(core.events)
        core.place(order)
        for event in core.events[start:]:
            if isinstance(event, OrderAccepted) and event.client_order_id == order.client_order_id:
                self.children[event.order_id] = parent.parent_id
                break

    # ------------------------------------------------------------------ flows

    def _create_flow(self, cmd: CreateFlow) -> None:
        core = self.core
        if cmd.account_id not in core.accounts:
            core.reject_command(
                cmd, cmd.account_id, RejectCode.UNKNOWN_ACCOUNT, f"account {cmd.account_id} does not exist"
            )
            return
        if not cmd.client_flow_id or len(cmd.client_flow_id) > MAX_CLIENT_ALGO_ID_CHARS:
            core.reject_command(
                cmd,
                cmd.account_id,
                RejectCode.BAD_CLIENT_FLOW_ID,
                f"clientFlowId must be 1 to {MAX_CLIENT_ALGO_ID_CHARS} characters.",
            )
            return
        if (cmd.account_id, cmd.client_flow_id) in self.flows_by_client:
            core.reject_command(
                cmd,
                cmd.account_id,
                RejectCode.BAD_CLIENT_FLOW_ID,
                f"clientFlowId {cmd.client_flow_id} is already used by one of your flows.",
            )
            return
        flow = FlowRow(self.next_flow_id, cmd.account_id, cmd.client_flow_id, cmd.name, core.now_ns)
        self.next_flow_id += 1
        self.flows[flow.flow_id] = flow
        self.flows_by_client[(cmd.account_id, cmd.client_flow_id)] = flow.flow_id
        core.emit(
            FlowOpened(
                ts_ns=core.now_ns,
                flow_id=flow.flow_id,
                account_id=flow.account_id,
                client_flow_id=flow.client_flow_id,
            )
        )

    def _working_flow(self, flow_id: int) -> FlowRow | None:
        flow = self.flows.get(flow_id)
        return flow if flow is not None and flow.status is ParentStatus.WORKING else None

    def _record_flow_node(self, cmd: RecordFlowNode) -> None:
        core = self.core
        flow = self._working_flow(cmd.flow_id)
        if flow is None:
            core.reject_command(
                cmd, None, RejectCode.UNKNOWN_FLOW, f"flow {cmd.flow_id} is not a working flow"
            )
            return
        if not cmd.node or not cmd.status:
            core.reject_command(
                cmd, flow.account_id, RejectCode.BAD_FLOW_NODE, "a node record names its node and status"
            )
            return
        flow.nodes.append([core.now_ns, cmd.node, cmd.status, cmd.reason, cmd.arrival_price])
        core.emit(
            FlowNodeRecorded(
                ts_ns=core.now_ns,
                flow_id=flow.flow_id,
                account_id=flow.account_id,
                node=cmd.node,
                status=cmd.status,
            )
        )

    def _cancel_flow(self, cmd: CancelFlow) -> None:
        flow = self._working_flow(cmd.flow_id)
        if flow is None or flow.account_id != cmd.account_id:
            self.core.reject_command(
                cmd,
                cmd.account_id,
                RejectCode.UNKNOWN_FLOW,
                f"No working flow of yours has flowId {cmd.flow_id}.",
            )
            return
        flow.cancel_requested = True
        self.core.emit(
            FlowCancelRequested(ts_ns=self.core.now_ns, flow_id=flow.flow_id, account_id=flow.account_id)
        )

    def _finish_flow(self, cmd: FinishFlow) -> None:
        core = self.core
        flow = self._working_flow(cmd.flow_id)
        if flow is None or cmd.status is ParentStatus.WORKING:
            core.reject_command(
                cmd, None, RejectCode.UNKNOWN_FLOW, f"flow {cmd.flow_id} is not a working flow"
            )
            return
        flow.status = cmd.status
        flow.ended_ns = core.now_ns
        flow.reason = cmd.reason
        core.emit(
            FlowEnded(
                ts_ns=core.now_ns,
                flow_id=flow.flow_id,
                account_id=flow.account_id,
                status=flow.status,
                reason=flow.reason,
            )
        )

    # ------------------------------------------------------------------ after every command

    def observe(self, events: list[Event]) -> None:
        """Count the fills of linked children in ``events`` and unlink the ones that left the book.

        ``Engine.apply`` calls it after a command's every stage, when any child is linked.
        """
        children = self.children
        for event in events:
            if isinstance(event, OrderFilled):
                parent_id = children.get(event.order_id)
                if parent_id is None:
                    continue
                self.rows[parent_id].executed_lots += event.qty_lots
                if event.leaves_lots == 0:
                    del children[event.order_id]
            elif isinstance(event, OrderCanceled | OrderExpired):
                children.pop(event.order_id, None)

    # ------------------------------------------------------------------ snapshot

    def to_data(self) -> dict[str, Any] | None:
        """Canonical plain data, or ``None`` while the table is empty (older snapshots hash as before)."""
        if not self.rows and not self.flows:
            return None
        data: dict[str, Any] = {
            "next_parent_id": self.next_parent_id,
            "rows": [self.rows[parent_id].to_row() for parent_id in sorted(self.rows)],
            "children": sorted([order_id, parent_id] for order_id, parent_id in self.children.items()),
        }
        if self.flows:  # only once a flow was recorded: older snapshots hash as before
            data["next_flow_id"] = self.next_flow_id
            data["flows"] = [self.flows[flow_id].to_row() for flow_id in sorted(self.flows)]
        return data

    def load(self, data: dict[str, Any] | None) -> None:
        """Restore :meth:`to_data` (``None``: a snapshot from before the table, or an empty one)."""
        if data is None:
            return
        self.next_parent_id = int(data["next_parent_id"])
        for row in data["rows"]:
            parent = Parent.from_row(row)
            self.rows[parent.parent_id] = parent
            self.by_client[(parent.account_id, parent.client_algo_id)] = parent.parent_id
        self.children = {OrderId(int(o)): ParentId(int(p)) for o, p in data["children"]}
        self.next_flow_id = int(data.get("next_flow_id", 1))  # snapshots from before flows hold none
        for row in data.get("flows", []):
            flow = FlowRow.from_row(row)
            self.flows[flow.flow_id] = flow
            self.flows_by_client[(flow.account_id, flow.client_flow_id)] = flow.flow_id
