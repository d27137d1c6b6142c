"""The typed strategy document the flow runner reads, decoded once the document is valid.

Field names and meanings are those of the JSON Schema (:mod:`.schema`); :func:`.validate.load_document`
is the only way in, so a :class:`StrategyDocument` has always passed every check.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

import msgspec

from perpx.execution.model import ParentOrder, ParentSide


class NodeType(StrEnum):
    """What a flow node does when its trigger fires."""

    ALGO = "algo"
    """Start a parent order (an algorithm) from the document's ``parents``."""
    ORDER = "order"
    """Send one order (limit, market, or a stop the flow holds until its price crosses)."""
    CONDITION = "condition"
    """Wait until its ``when`` holds, then count as done."""
    WAIT = "wait"
    """Count as done ``wait_s`` seconds after it starts."""
    CANCEL = "cancel"
    """Cancel the ``targets`` (their working children or orders), then count as done."""


class TriggerKind(StrEnum):
    FILLED = "filled"
    PARTIALLY_FILLED = "partially_filled"
    REJECTED = "rejected"
    DONE = "done"
    PRICE_CROSS = "price_cross"
    TIME = "time"
    TCA = "tca"


class PriceSource(StrEnum):
    MARK = "mark"
    INDEX = "index"
    LAST = "last"


class OrderKind(StrEnum):
    LIMIT = "limit"
    MARKET = "market"
    STOP_MARKET = "stop_market"


class Trigger(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """When a node starts (see the schema for which fields each kind needs)."""

    on: TriggerKind
    node: str | None = None
    pct: float | None = None
    """``partially_filled``: the node's filled share, in percent, that fires the trigger (0, 100]."""
    market: str | None = None
    source: PriceSource | None = None
    op: str | None = None
    """``>=`` (rises to or above) or ``<=`` (falls to or below)."""
    price: Decimal | None = None
    after_s: int | None = None
    """``time``: seconds after the flow started."""
    metric: str | None = None
    value: float | None = None


class OrderSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    market: str
    side: ParentSide
    qty: Decimal
    type: OrderKind
    price: Decimal | None = None
    stop_price: Decimal | None = None
    stop_source: PriceSource = PriceSource.MARK
    reduce_only: bool = False
    post_only: bool = False


class Node(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    id: str
    type: NodeType
    trigger: Trigger | None = None
    """``None``: the node starts with the flow."""
    oco: str | None = None
    parent: str | None = None
    order: OrderSpec | None = None
    when: Trigger | None = None
    wait_s: int | None = None
    targets: tuple[str, ...] = ()


class Flow(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    nodes: tuple[Node, ...]


class StrategyDocument(msgspec.Struct, frozen=True, kw_only=True):
    """A valid document: its parents by id and its flow."""

    version: int
    name: str
    description: str = ""
    parents: dict[str, ParentOrder] = msgspec.field(default_factory=dict)
    flow: Flow
