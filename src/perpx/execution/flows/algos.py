"""How an algo node starts and follows a parent order, whatever runs the algorithm.

The flow runner needs little of an algorithm: start it, step it, read its progress, cancel it.
:class:`AlgoStarter` is that seam; :mod:`perpx.execution.runner` (the scheduler) provides the
implementation the CLI uses, and tests may pass their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from perpx.execution.model import ParentOrder


@dataclass(frozen=True, slots=True)
class AlgoProgress:
    """An algorithm's parent at this moment, in its market's lots; ``finished`` once it will send nothing more."""

    qty_lots: int
    filled_lots: int
    filled_qty: Decimal
    filled_notional: Decimal
    finished: bool
    arrival_price: Decimal | None = None


class AlgoHandle(Protocol):
    """One running parent order."""

    def step(self) -> None:
        """One wake-up of the algorithm (it reads the venue and sends or cancels children)."""
        ...

    def progress(self) -> AlgoProgress: ...

    def cancel(self) -> None:
        """Cancel every working child and stop; what filled stays filled."""
        ...


class AlgoStarter(Protocol):
    def start(self, parent: ParentOrder) -> AlgoHandle:
        """Bind and start ``parent``. Raises :class:`perpx.execution.model.ParentOrderError` when it cannot run."""
        ...
