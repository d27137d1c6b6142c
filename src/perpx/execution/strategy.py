"""The strategy interface: an algorithm is a pure function from what it sees to what it wants.

An algorithm (TWAP, VWAP, POV, IS, scaled, iceberg, or a flow built by another package) never
talks to a venue. At each wake-up the runner (:mod:`perpx.execution.runner`) gathers a
:class:`Snapshot` (time, book, prices, tape volume, the parent's fills and working children)
and calls :meth:`Strategy.decide`, which returns a :class:`Decision`: child intents, each with
a recorded reason, and when to wake next. The runner then

1. clamps every :class:`PlaceChild` to the parent's rules (limit price, reduce-only, max clip,
   remaining quantity, lot and min-notional filters): a strategy cannot break them even if it tries,
2. writes each intent to the durable child log *before* sending it (write-ahead),
3. sends it with a client order id derived from ``client_algo_id`` and the child's index.

Because ``decide`` reads nothing but its arguments (randomness comes from :class:`Jitter`, a
hash of a seed, the parent id and a counter), a server-side runner can journal the snapshot and
replay the same decisions, and a restarted runner rebuilds a strategy's state from the child
log and the venue's fills alone.

Quantity accounting
-------------------
For every snapshot: ``filled_lots + working_lots + remaining_lots == qty_lots`` where
``remaining_lots`` is what no child holds yet. Children that end unfilled (canceled, expired,
rejected) give their remainder back to ``remaining_lots``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from perpx.execution.model import ParentOrder
from perpx.execution.venue import BookSnapshot, ChildState, Fill, MarketFilters, Prices, TimeInForce


@dataclass(frozen=True, slots=True)
class BoundParent:
    """A parent order bound to one market: its quantity and prices in that market's units."""

    parent: ParentOrder
    filters: MarketFilters
    qty_lots: int
    start_ns: int
    end_ns: int | None
    arrival_ticks: int
    """The mid (rounded to a tick) when the parent reached the runner: the TCA arrival price."""
    limit_ticks: int | None
    would_ticks: int | None
    max_clip_lots: int | None
    min_clip_lots: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything a strategy may read at one wake-up; immutable."""

    now_ns: int
    bound: BoundParent
    book: BookSnapshot
    prices: Prices
    filled_lots: int
    working: tuple[ChildState, ...]
    """The parent's open children."""
    fills: tuple[Fill, ...]
    """Every fill of the parent so far, oldest first."""
    market_volume_lots: int
    """Tape volume since ``bound.start_ns``, our own fills included."""
    children_sent: int
    """How many children the parent has sent so far (the next child's index)."""
    last_sent_ns: int | None = None
    """When the latest child was sent (``None`` before the first)."""

    @property
    def working_lots(self) -> int:
        return sum(child.working_lots for child in self.working)

    @property
    def remaining_lots(self) -> int:
        """Quantity no child holds yet: ``qty - filled - working``."""
        return self.bound.qty_lots - self.filled_lots - self.working_lots


@dataclass(frozen=True, slots=True)
class PlaceChild:
    """Ask the runner to send one child; ``price_ticks`` ``None`` means a market order."""

    qty_lots: int
    price_ticks: int | None
    tif: TimeInForce
    reason: str
    """Why this child, in words a desk reads in the child log (e.g. "slice 3/12, behind by 0.4")."""


@dataclass(frozen=True, slots=True)
class CancelChild:
    """Ask the runner to cancel a working child."""

    client_order_id: str
    reason: str


Intent = PlaceChild | CancelChild


@dataclass(frozen=True, slots=True)
class Decision:
    """A strategy's answer: intents now, and the next time it wants to be asked."""

    intents: tuple[Intent, ...] = ()
    wake_ns: int | None = None
    """``None``: wake at the runner's default period."""
    done: bool = False
    """True when the parent is finished (filled, or its end behaviour has run)."""
    note: str = ""
    """What the strategy thinks (schedule target, participation), shown in progress displays."""
    schedule_lots: int | None = None
    """Where the schedule says ``filled`` should be now, for tracking-error reports."""


class Strategy(Protocol):
    """One algorithm. Implementations hold only parameters, never mutable state between calls."""

    def decide(self, snapshot: Snapshot) -> Decision:
        """What to do now, from ``snapshot`` alone."""
        ...


@dataclass(frozen=True, slots=True)
class Jitter:
    """Deterministic randomness for strategies: a seeded hash, so decisions replay exactly.

    ``uniform(k)`` is a number in ``[-1, 1]`` that depends only on the seed, the parent id, the
    stream name and ``k``; a restarted runner draws the same numbers for the same slices.
    """

    seed: int
    parent_id: str
    stream: str = field(default="")

    def uniform(self, k: int, stream: str = "") -> Decimal:
        digest = hashlib.blake2b(
            f"{self.seed}|{self.parent_id}|{self.stream}{stream}|{k}".encode(), digest_size=8
        ).digest()
        return Decimal(int.from_bytes(digest, "big")) / Decimal(2**63) - 1
