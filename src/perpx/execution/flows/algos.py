"""How an algo node starts and follows a parent order, whatever runs the algorithm.

The flow runner needs little of an algorithm: start it, step it, read its progress, cancel it.
:class:`AlgoStarter` is that seam; :class:`RunnerStarter` implements it with the scheduler
(:mod:`perpx.execution.runner`) for backtests and live runs, and tests may pass their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Protocol

from perpx.execution.childlog import ChildLog
from perpx.execution.model import FieldError, ParentOrder, ParentOrderError
from perpx.execution.runner import ParentRunner
from perpx.execution.venue import Venue


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

    def close(self) -> None:
        """Release what the handle holds open (its child log); the parent is not touched."""
        ...


class AlgoStarter(Protocol):
    def start(self, parent: ParentOrder) -> AlgoHandle:
        """Bind and start ``parent``. Raises :class:`perpx.execution.model.ParentOrderError` when it cannot run."""
        ...

    def resume(self, parent: ParentOrder) -> AlgoHandle:
        """Follow ``parent`` again after a restart, from its durable record; never starts it afresh.

        Raises :class:`perpx.execution.model.ParentOrderError` when there is nothing to resume from.
        """
        ...


class RunnerHandle:
    """An algo node's parent worked by the scheduler (:class:`perpx.execution.runner.ParentRunner`)."""

    def __init__(self, runner: ParentRunner) -> None:
        self.runner = runner

    def step(self) -> None:
        """Wake the runner when its own schedule says so (the flow may wake more often)."""
        if not self.runner.done and self.runner.venue.now_ns() >= self.runner.wake_ns:
            self.runner.step()

    def progress(self) -> AlgoProgress:
        snap = self.runner.snapshot()
        filters = self.runner.bound.filters
        filled_qty = snap.filled_lots * filters.lot_size
        notional = sum(
            (f.qty_lots * filters.lot_size * f.price_ticks * filters.tick_size for f in snap.fills),
            Decimal(0),
        )
        return AlgoProgress(
            qty_lots=self.runner.bound.qty_lots,
            filled_lots=snap.filled_lots,
            filled_qty=filled_qty,
            filled_notional=notional,
            finished=self.runner.done,
            arrival_price=self.runner.bound.arrival_ticks * filters.tick_size,
        )

    def cancel(self) -> None:
        if not self.runner.done:
            self.runner.cancel_all("canceled by the flow")

    def close(self) -> None:
        self.runner.log.close()


class RunnerStarter:
    """Starts algo nodes on ``venue`` with the scheduler; each parent's child log goes to ``log_dir``.

    With a ``log_dir``, a restarted flow resumes each parent from its log (no child sent twice);
    without one the logs live in memory (tests, backtests that need no resume).
    """

    def __init__(
        self, venue: Venue, log_dir: Path | None = None, *, seed: int = 0, period_s: int = 5
    ) -> None:
        self.venue = venue
        self.log_dir = log_dir
        self.seed = seed
        self.period_s = period_s
        self.handles: dict[str, RunnerHandle] = {}

    def start(self, parent: ParentOrder) -> RunnerHandle:
        runner = ParentRunner.start(
            self.venue, parent, ChildLog(self._path(parent)), seed=self.seed, period_s=self.period_s
        )
        return self._keep(parent, RunnerHandle(runner))

    def resume(self, parent: ParentOrder) -> RunnerHandle:
        path = self._path(parent)
        if path is None or not path.exists():
            raise ParentOrderError(
                [
                    FieldError(
                        "client_algo_id",
                        f"no child log to resume {parent.client_algo_id} from (give a log_dir)",
                    )
                ]
            )
        runner = ParentRunner.resume(
            self.venue, ChildLog(path), seed=self.seed, period_s=self.period_s, expect=parent
        )
        return self._keep(parent, RunnerHandle(runner))

    def _path(self, parent: ParentOrder) -> Path | None:
        return None if self.log_dir is None else self.log_dir / f"{parent.client_algo_id}.childlog"

    def _keep(self, parent: ParentOrder, handle: RunnerHandle) -> RunnerHandle:
        self.handles[parent.client_algo_id] = handle
        return handle
