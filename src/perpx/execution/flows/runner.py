"""The flow runner: drives a strategy document's nodes on one :class:`~perpx.execution.venue.Venue`.

Each :meth:`FlowRunner.step` is one wake-up, in this order:

1. read what the venue says of every working node (order fills, algo progress);
2. OCO: the first fill of a group's member cancels the other members;
3. armed nodes check their own condition (a stop's price, a condition's ``when``, a wait's time);
4. pending nodes whose trigger fires start; a node whose trigger can never fire is skipped. Steps 2-4
   repeat until nothing changes, so a chain (entry filled -> exits armed) settles in one wake-up.

Bracket, OTO and OCO are these rules, not special cases: OTO is a node triggered by another's fill, OCO
a group, a bracket an entry whose fill starts two OCO exits. If-then across markets is a trigger or
condition reading another market's mark, index or last price.

Order ids are :func:`perpx.execution.ids.child_id` of ``flow_id`` and the node's position, so before
sending, the runner asks the venue for that id: a restarted runner adopts the order it sent before
instead of sending it twice, and a send that failed in transit is retried with the same id.
Stops are held by the runner (the ``Venue`` port has no stop orders): a stop fires on the first
wake-up that sees its price crossed, so it is as prompt as the wake-ups are frequent.

Every change of a node's state goes to the :class:`~.journal.FlowJournal` before the runner goes on.
A runner built on a journal that already has records resumes: node states come back from it, order
nodes are followed on the venue by id (one the venue holds is adopted even if the journal missed its
``working`` line), and algo nodes are resumed from their child logs, never started afresh.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from perpx.execution.document.model import (
    Node,
    NodeType,
    OrderKind,
    PriceSource,
    StrategyDocument,
    Trigger,
    TriggerKind,
)
from perpx.execution.ids import child_id
from perpx.execution.model import ParentOrderError, ParentSide
from perpx.execution.venue import (
    ChildOrder,
    ChildState,
    ChildStatus,
    MarketFilters,
    Prices,
    TimeInForce,
    Venue,
    VenueUnavailable,
)

from .algos import AlgoHandle, AlgoStarter
from .conditions import arrival_slippage_bps, compare, crossed, filled_pct, stop_triggered
from .journal import FlowJournal, NodeRecord, StartedRecord
from .state import FlowEvent, NodeState, NodeStatus

NS_PER_S = 1_000_000_000


@dataclass
class FlowRunner:
    """One document's flow on one venue; ``step`` until ``finished`` (or ``cancel_all`` on Ctrl-C)."""

    document: StrategyDocument
    venue: Venue
    flow_id: str
    algos: AlgoStarter | None = None
    journal: FlowJournal = field(default_factory=lambda: FlowJournal(None))
    nodes: dict[str, NodeState] = field(init=False)
    log: list[FlowEvent] = field(init=False, default_factory=list)
    started_ns: int | None = field(init=False, default=None)
    _handles: dict[str, AlgoHandle] = field(init=False, default_factory=dict)
    _prices: dict[str, Prices] = field(init=False, default_factory=dict)
    _now_ns: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if (
            not self.flow_id
            or len(self.flow_id) > 32
            or not all(c.isalnum() or c in "-_" for c in self.flow_id)
        ):
            raise ValueError("flow_id must be 1 to 32 letters, digits, '-' or '_'")
        self.nodes = {node.id: NodeState() for node in self.document.flow.nodes}
        self._spec = {node.id: node for node in self.document.flow.nodes}
        self._index = {node.id: i for i, node in enumerate(self.document.flow.nodes)}
        if self.journal.records:
            self._restore()

    # ------------------------------------------------------------------ the loop

    @property
    def finished(self) -> bool:
        """Every node has ended (filled, done, canceled, rejected or skipped)."""
        return all(state.terminal for state in self.nodes.values())

    def step(self) -> None:
        """One wake-up (see the module docstring)."""
        self._now_ns = self.venue.now_ns()
        if self.started_ns is None:
            self.started_ns = self._now_ns
            self.journal.append(
                StartedRecord(flow_id=self.flow_id, document=self.document.name, ts_ns=self._now_ns)
            )
        self._prices = {}
        for name, state in self.nodes.items():
            if state.status is NodeStatus.WORKING:
                self._refresh(self._spec[name], state)
        for _ in range(len(self.nodes) + 1):
            changed = self._oco() | self._armed() | self._pending()
            if not changed:
                break

    def cancel_all(self, reason: str) -> None:
        """Cancel every node not yet ended (working orders and algos on the venue, pending ones here)."""
        self._now_ns = self.venue.now_ns()
        for name, state in self.nodes.items():
            if not state.terminal:
                self._cancel(name, reason)

    def close(self) -> None:
        """Close the journal and the algo nodes' child logs (a later runner may resume from them)."""
        self.journal.close()
        for handle in self._handles.values():
            handle.close()

    def working_orders(self) -> list[tuple[str, str]]:
        """``(market, client_order_id)`` of every order node still working."""
        return [
            (node.order.market, state.client_order_id)
            for node in self.document.flow.nodes
            if node.order is not None
            and (state := self.nodes[node.id]).status is NodeStatus.WORKING
            and state.client_order_id is not None
        ]

    # ------------------------------------------------------------------ stages

    def _oco(self) -> bool:
        groups: dict[str, list[str]] = {}
        for node in self.document.flow.nodes:
            if node.oco is not None:
                groups.setdefault(node.oco, []).append(node.id)
        changed = False
        for members in groups.values():
            winner = next((m for m in members if self.nodes[m].filled_lots > 0), None)
            if winner is None:
                continue
            for other in members:
                if other != winner and not self.nodes[other].terminal:
                    self._cancel(other, f"OCO: {winner} filled first")
                    changed = True
        return changed

    def _armed(self) -> bool:
        changed = False
        for node in self.document.flow.nodes:
            state = self.nodes[node.id]
            if state.status is not NodeStatus.ARMED:
                continue
            if node.type is NodeType.WAIT:
                assert node.wait_s is not None and state.started_ns is not None
                if self._now_ns - state.started_ns >= node.wait_s * NS_PER_S:
                    self._set(node.id, NodeStatus.DONE, f"waited {node.wait_s} s")
                    changed = True
            elif node.type is NodeType.CONDITION:
                assert node.when is not None
                if self._fires(node.when) is True:
                    self._set(node.id, NodeStatus.DONE, f"condition held: {_describe(node.when)}")
                    changed = True
            elif node.order is not None and node.order.stop_price is not None:
                price = self._price(node.order.market, node.order.stop_source)
                sign = 1 if node.order.side is ParentSide.BUY else -1
                if (
                    state.client_order_id is not None
                ):  # it fired and its send failed: retry, whatever the price
                    self._place(node, state, market_order=True, why="stop (send retried)")
                    changed = changed or state.status is not NodeStatus.ARMED
                elif price is not None and stop_triggered(sign, price, node.order.stop_price):
                    self._place(
                        node, state, market_order=True, why=f"stop: {node.order.stop_source.value} {price}"
                    )
                    changed = True
        return changed

    def _pending(self) -> bool:
        changed = False
        for node in self.document.flow.nodes:
            if self.nodes[node.id].status is not NodeStatus.PENDING:
                continue
            if self.nodes[node.id].client_order_id is not None:  # it fired and its send failed: retry
                self._start(node, "send retried")
                changed = changed or self.nodes[node.id].status is not NodeStatus.PENDING
                continue
            fires = True if node.trigger is None else self._fires(node.trigger)
            if fires is None:
                assert node.trigger is not None
                self._set(node.id, NodeStatus.SKIPPED, f"can no longer fire: {_describe(node.trigger)}")
                changed = True
            elif fires:
                self._start(node, "flow start" if node.trigger is None else _describe(node.trigger))
                changed = True
        return changed

    # ------------------------------------------------------------------ triggers

    def _fires(self, trigger: Trigger) -> bool | None:
        """Whether ``trigger`` holds now; ``None`` when it never can again."""
        kind = trigger.on
        if kind is TriggerKind.PRICE_CROSS:
            assert trigger.market and trigger.source and trigger.op and trigger.price is not None
            price = self._price(trigger.market, trigger.source)
            return price is not None and crossed(trigger.op, price, trigger.price)
        if kind is TriggerKind.TIME:
            assert trigger.after_s is not None and self.started_ns is not None
            return self._now_ns - self.started_ns >= trigger.after_s * NS_PER_S
        assert trigger.node is not None
        target = self.nodes[trigger.node]
        if kind is TriggerKind.FILLED:
            holds = target.status is NodeStatus.FILLED
        elif kind is TriggerKind.REJECTED:
            holds = target.status is NodeStatus.REJECTED
        elif kind is TriggerKind.DONE:
            holds = target.status in (NodeStatus.FILLED, NodeStatus.DONE)
        elif kind is TriggerKind.PARTIALLY_FILLED:
            assert trigger.pct is not None
            holds = filled_pct(target.filled_lots, target.qty_lots) >= Decimal(repr(trigger.pct))
        else:
            holds = self._tca_holds(trigger, trigger.node)
        if holds:
            return True
        return None if target.terminal else False

    def _tca_holds(self, trigger: Trigger, name: str) -> bool:
        assert trigger.op is not None and trigger.value is not None
        target = self.nodes[name]
        limit = Decimal(repr(trigger.value))
        if trigger.metric == "fill_ratio_pct":
            return compare(trigger.op, filled_pct(target.filled_lots, target.qty_lots), limit)
        avg = target.avg_price
        if avg is None or target.arrival_price is None:
            return False
        side = self._side(self._spec[name])
        return compare(trigger.op, arrival_slippage_bps(side.sign, avg, target.arrival_price), limit)

    # ------------------------------------------------------------------ actions

    def _start(self, node: Node, why: str) -> None:
        state = self.nodes[node.id]
        state.started_ns = self._now_ns
        if node.type is NodeType.ORDER:
            assert node.order is not None
            state.arrival_price = self._arrival(node.order.market)
            if node.order.type is OrderKind.STOP_MARKET:
                self._set(node.id, NodeStatus.ARMED, f"{why}; stop armed at {node.order.stop_price}")
            else:
                self._place(node, state, market_order=node.order.type is OrderKind.MARKET, why=why)
        elif node.type is NodeType.ALGO:
            self._start_algo(node, state, why)
        elif node.type in (NodeType.CONDITION, NodeType.WAIT):
            self._set(node.id, NodeStatus.ARMED, why)
        else:
            for target in node.targets:
                if not self.nodes[target].terminal:
                    self._cancel(target, f"canceled by {node.id}")
            self._set(node.id, NodeStatus.DONE, f"{why}; canceled {', '.join(node.targets)}")

    def _start_algo(self, node: Node, state: NodeState, why: str) -> None:
        assert node.parent is not None
        parent = self.document.parents[node.parent]
        if self.algos is None:
            self._set(node.id, NodeStatus.REJECTED, "no algorithm runner was given to this flow")
            return
        try:
            handle = self.algos.start(parent)
        except ParentOrderError as exc:
            self._set(node.id, NodeStatus.REJECTED, f"parent {node.parent} cannot run: {exc}")
            return
        self._handles[node.id] = handle
        self._set(node.id, NodeStatus.WORKING, f"{why}; {parent.algo.value} {parent.client_algo_id} started")
        self._refresh(node, state)

    def _place(self, node: Node, state: NodeState, *, market_order: bool, why: str) -> None:
        order = node.order
        assert order is not None
        try:
            filters = self.venue.filters(order.market)
        except KeyError:
            self._set(node.id, NodeStatus.REJECTED, f"unknown market {order.market!r}")
            return
        lots = _exact(order.qty, filters.lot_size)
        price_ticks = None if market_order or order.price is None else _exact(order.price, filters.tick_size)
        if lots is None or lots <= 0:
            self._set(
                node.id,
                NodeStatus.REJECTED,
                f"qty {order.qty} is not a positive multiple of {filters.lot_size}",
            )
            return
        if not market_order and price_ticks is None:
            self._set(
                node.id, NodeStatus.REJECTED, f"price {order.price} is not a multiple of {filters.tick_size}"
            )
            return
        cid = child_id(self.flow_id, self._index[node.id])
        state.client_order_id, state.qty_lots = cid, lots
        child = ChildOrder(
            client_order_id=cid,
            parent_id=self.flow_id,
            market=order.market,
            side=order.side,
            qty_lots=lots,
            price_ticks=price_ticks,
            tif=TimeInForce.POST_ONLY if order.post_only else TimeInForce.GTC,
            reduce_only=order.reduce_only,
        )
        try:
            if self.venue.order(order.market, cid) is None:
                ack = self.venue.place(child)
                if not ack.accepted:
                    self._set(node.id, NodeStatus.REJECTED, f"{why}; venue refused: {ack.code} {ack.message}")
                    return
        except VenueUnavailable as exc:
            state.reason = f"send failed, retried next wake-up with the same id: {exc}"
            return
        self._set(node.id, NodeStatus.WORKING, f"{why}; sent {cid}")
        self._refresh(node, state, filters)

    def _refresh(self, node: Node, state: NodeState, filters: MarketFilters | None = None) -> None:
        if node.type is NodeType.ALGO:
            handle = self._handles[node.id]
            handle.step()
            progress = handle.progress()
            state.qty_lots, state.filled_lots = progress.qty_lots, progress.filled_lots
            state.filled_qty, state.filled_notional = progress.filled_qty, progress.filled_notional
            state.arrival_price = state.arrival_price or progress.arrival_price
            if progress.finished:
                done = progress.filled_lots >= progress.qty_lots > 0
                self._set(node.id, NodeStatus.FILLED if done else NodeStatus.DONE, "algo finished")
            return
        assert node.order is not None and state.client_order_id is not None
        try:
            child = self.venue.order(node.order.market, state.client_order_id)
            filters = filters or self.venue.filters(node.order.market)
            if child is not None and child.filled_lots != state.filled_lots:
                self._read_fills(node.order.market, state, filters)
        except VenueUnavailable:
            return
        if child is None:
            return
        self._follow(node, state, child)

    def _read_fills(self, market: str, state: NodeState, filters: MarketFilters) -> None:
        assert state.started_ns is not None
        fills = [
            f
            for f in self.venue.fills(market, state.started_ns)
            if f.client_order_id == state.client_order_id
        ]
        state.filled_lots = sum(f.qty_lots for f in fills)
        state.filled_qty = state.filled_lots * filters.lot_size
        state.filled_notional = sum(
            (f.qty_lots * filters.lot_size * f.price_ticks * filters.tick_size for f in fills), Decimal(0)
        )

    def _follow(self, node: Node, state: NodeState, child: ChildState) -> None:
        state.filled_lots = max(state.filled_lots, child.filled_lots)
        if child.status is ChildStatus.FILLED:
            self._set(node.id, NodeStatus.FILLED, f"{child.client_order_id} filled")
        elif child.status is ChildStatus.CANCELED:
            self._set(node.id, NodeStatus.CANCELED, f"{child.client_order_id} canceled on the venue")
        elif child.status is ChildStatus.REJECTED:
            self._set(node.id, NodeStatus.REJECTED, f"{child.client_order_id} rejected by the venue")

    def _cancel(self, name: str, reason: str) -> None:
        node, state = self._spec[name], self.nodes[name]
        if state.status is NodeStatus.WORKING and node.type is NodeType.ALGO:
            self._handles[name].cancel()
            self._refresh_quietly(node, state)
        elif state.status is NodeStatus.WORKING and node.order is not None and state.client_order_id:
            try:
                self.venue.cancel(node.order.market, state.client_order_id)
                child = self.venue.order(node.order.market, state.client_order_id)
                if child is not None:
                    self._read_fills(node.order.market, state, self.venue.filters(node.order.market))
                    if child.status is ChildStatus.FILLED:
                        self._set(
                            name, NodeStatus.FILLED, f"{child.client_order_id} filled before the cancel"
                        )
                        return
            except VenueUnavailable as exc:
                state.reason = f"cancel failed, retried next wake-up: {exc}"
                return
        self._set(name, NodeStatus.CANCELED, reason)

    def _refresh_quietly(self, node: Node, state: NodeState) -> None:
        progress = self._handles[node.id].progress()
        state.filled_lots, state.filled_qty, state.filled_notional = (
            progress.filled_lots,
            progress.filled_qty,
            progress.filled_notional,
        )

    # ------------------------------------------------------------------ reading the venue

    def _price(self, market: str, source: PriceSource) -> Decimal | None:
        if market not in self._prices:
            try:
                self._prices[market] = self.venue.prices(market)
            except (KeyError, VenueUnavailable):
                return None
        prices = self._prices[market]
        ticks = {
            PriceSource.MARK: prices.mark_ticks,
            PriceSource.INDEX: prices.index_ticks,
            PriceSource.LAST: prices.last_ticks,
        }[source]
        if ticks is None:
            return None
        return ticks * self.venue.filters(market).tick_size

    def _arrival(self, market: str) -> Decimal | None:
        try:
            filters = self.venue.filters(market)
            mid = self.venue.book(market).mid_ticks()
        except (KeyError, VenueUnavailable):
            return None
        if mid is not None:
            return mid * filters.tick_size
        return self._price(market, PriceSource.LAST) or self._price(market, PriceSource.MARK)

    def _side(self, node: Node) -> ParentSide:
        if node.order is not None:
            return node.order.side
        assert node.parent is not None
        return self.document.parents[node.parent].side

    def _set(self, name: str, status: NodeStatus, reason: str) -> None:
        state = self.nodes[name]
        state.status, state.reason = status, reason
        self.journal.append(
            NodeRecord(
                ts_ns=self._now_ns,
                node=name,
                status=status.value,
                reason=reason,
                arrival_price=state.arrival_price,
            )
        )
        self.log.append(FlowEvent(self._now_ns, name, status, reason))

    # ------------------------------------------------------------------ resuming

    def _restore(self) -> None:
        """Rebuild node states from the journal and the venue (module docstring)."""
        first = self.journal.records[0]
        if not isinstance(first, StartedRecord) or first.flow_id != self.flow_id:
            raise ValueError(f"the flow journal does not belong to flow {self.flow_id!r}")
        self.started_ns = first.ts_ns
        for record in self.journal.records[1:]:
            if not isinstance(record, NodeRecord) or record.node not in self.nodes:
                raise ValueError(f"the flow journal names a node this document does not have: {record}")
            state = self.nodes[record.node]
            state.started_ns = record.ts_ns if state.started_ns is None else state.started_ns
            state.status, state.reason = NodeStatus(record.status), record.reason
            state.arrival_price = record.arrival_price or state.arrival_price
            self.log.append(FlowEvent(record.ts_ns, record.node, state.status, record.reason))
        self._now_ns = self.venue.now_ns()
        for node in self.document.flow.nodes:
            state = self.nodes[node.id]
            if node.order is not None:
                self._readopt(node, state)
            elif node.type is NodeType.ALGO and state.status not in (NodeStatus.PENDING, NodeStatus.SKIPPED):
                self._resume_algo(node, state)

    def _readopt(self, node: Node, state: NodeState) -> None:
        assert node.order is not None
        cid = child_id(self.flow_id, self._index[node.id])
        child = self.venue.order(node.order.market, cid)
        if child is None:
            return
        filters = self.venue.filters(node.order.market)
        state.client_order_id, state.qty_lots = cid, child.qty_lots
        state.started_ns = state.started_ns or self.started_ns
        if state.status in (NodeStatus.PENDING, NodeStatus.ARMED):
            self._set(node.id, NodeStatus.WORKING, f"adopted {cid} from the venue after a restart")
        self._read_fills(node.order.market, state, filters)
        if state.status is NodeStatus.WORKING:
            self._follow(node, state, child)

    def _resume_algo(self, node: Node, state: NodeState) -> None:
        assert node.parent is not None
        if self.algos is None:
            raise ValueError(
                f"node {node.id} ran an algo before the restart; pass the algo starter to resume it"
            )
        handle = self.algos.resume(self.document.parents[node.parent])
        self._handles[node.id] = handle
        self._refresh_quietly(node, state)
        state.qty_lots = handle.progress().qty_lots


def _exact(value: Decimal, unit: Decimal) -> int | None:
    units = value / unit
    return int(units) if units == units.to_integral_value() else None


def _describe(trigger: Trigger) -> str:
    kind = trigger.on
    if kind is TriggerKind.PRICE_CROSS:
        assert trigger.source is not None
        return f"{trigger.market} {trigger.source.value} {trigger.op} {trigger.price}"
    if kind is TriggerKind.TIME:
        return f"{trigger.after_s} s after the start"
    if kind is TriggerKind.PARTIALLY_FILLED:
        return f"{trigger.node} {trigger.pct}% filled"
    if kind is TriggerKind.TCA:
        return f"{trigger.node} {trigger.metric} {trigger.op} {trigger.value}"
    return f"{trigger.node} {kind.value}"
