"""What the flow runner knows of each node, and the log of why it did what it did."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class NodeStatus(StrEnum):
    """A node's life: pending until its trigger fires, then working or armed, then one end state."""

    PENDING = "pending"
    ARMED = "armed"
    """Started, waiting for its own condition: a stop's price, a condition's ``when``, a wait's time."""
    WORKING = "working"
    """An order or algo on the venue."""
    FILLED = "filled"
    DONE = "done"
    """Finished without being an order fill: a wait elapsed, a condition held, a cancel ran, an algo ended."""
    CANCELED = "canceled"
    REJECTED = "rejected"
    SKIPPED = "skipped"
    """Its trigger can never fire any more (it waited on a node that ended otherwise)."""


TERMINAL = frozenset(
    {NodeStatus.FILLED, NodeStatus.DONE, NodeStatus.CANCELED, NodeStatus.REJECTED, NodeStatus.SKIPPED}
)


@dataclass
class NodeState:
    """One node's progress; ``qty_lots`` and ``filled_lots`` are in its market's lots."""

    status: NodeStatus = NodeStatus.PENDING
    started_ns: int | None = None
    client_order_id: str | None = None
    qty_lots: int = 0
    filled_lots: int = 0
    filled_qty: Decimal = Decimal(0)
    """The fills' base quantity (``filled_lots`` times the lot size, or an algo's own figure)."""
    filled_notional: Decimal = Decimal(0)
    """Sum of price times quantity of the fills, in the quote asset (for the average price)."""
    arrival_price: Decimal | None = None
    """Mid (or last, or mark) when the node started: the TCA benchmark."""
    reason: str = ""

    @property
    def avg_price(self) -> Decimal | None:
        return None if self.filled_qty == 0 else self.filled_notional / self.filled_qty

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


@dataclass(frozen=True, slots=True)
class FlowEvent:
    """One line of the flow log: at ``ts_ns`` node ``node`` went to ``status``, because ``reason``."""

    ts_ns: int
    node: str
    status: NodeStatus
    reason: str
