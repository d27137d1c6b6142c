"""The engine's invariant checks on the live venue, on a schedule sized to a CPU budget.

:func:`perpx.engine.invariants.violations` recomputes every invariant from scratch; its cost
grows with the venue (accounts, orders, positions). The monitor runs it between batches through
the sequencer and waits ``cost / budget`` before the next run (never less than ``floor_s``), so
the checks take at most ``budget`` of one core (1%) whatever the venue's size: a venue whose check
takes 20 ms is checked every 2 s, one whose check takes 2 s every 200 s.

A violation is a bug, not a business outcome: the monitor counts it (``perpx_invariant_violations_total``,
alert ``PerpxInvariantViolation``), logs each broken rule at ERROR with the journal seq, and keeps
the venue running; the runbook says how to stop it and capture the state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from perpx.engine import invariants
from perpx.engine.engine import Engine
from perpx.server.errors import ApiError

log = logging.getLogger("perpx.ops.invariants")

CPU_BUDGET = 0.01
"""Fraction of one core the checks may take on average."""

FLOOR_S = 1.0
"""Never check more often than this, however cheap the check."""


def next_interval_s(cost_s: float, budget: float = CPU_BUDGET, floor_s: float = FLOOR_S) -> float:
    """Seconds to wait after a check that took ``cost_s`` so checks stay within ``budget`` of a core.

    Invariant: ``cost_s / (cost_s + interval) <= budget`` for every ``cost_s >= 0``.
    """
    if not 0 < budget < 1:
        raise ValueError(f"budget must be a fraction of a core in (0, 1), not {budget}")
    return max(floor_s, cost_s * (1 - budget) / budget)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One run of the checks: where the journal stood, what broke, and what the run cost."""

    seq: int
    problems: tuple[str, ...]
    cost_s: float


Query = Callable[[Callable[[Engine], CheckResult]], Awaitable[CheckResult]]
"""Runs a function on the engine between batches (``RequestSequencer.query``)."""


@dataclass
class InvariantMonitor:
    """Counts checks and violations; :meth:`run` loops until cancelled."""

    query: Query
    last_seq: Callable[[], int]
    budget: float = CPU_BUDGET
    floor_s: float = FLOOR_S
    checks: int = 0
    violations: int = 0
    last: CheckResult | None = None
    _task: asyncio.Task[None] | None = field(default=None, repr=False)

    def check_on(self, engine: Engine) -> CheckResult:
        """Run every invariant on ``engine`` (on the sequencer, between batches) and time it."""
        start = time.perf_counter()
        problems = tuple(invariants.violations(engine))
        return CheckResult(seq=self.last_seq(), problems=problems, cost_s=time.perf_counter() - start)

    async def check_once(self) -> CheckResult:
        """One check through the sequencer; counts it and logs each broken invariant."""
        result = await self.query(self.check_on)
        self.checks += 1
        self.violations += len(result.problems)
        self.last = result
        for problem in result.problems:
            log.error("invariant violated at seq %d: %s", result.seq, problem, extra={"seq": result.seq})
        return result

    async def run(self) -> None:
        """Check, wait ``next_interval_s(cost)``, repeat. A query the venue refuses (stopping) ends it."""
        while True:
            try:
                result = await self.check_once()
            except ApiError as exc:  # the venue stopped or is shutting down: nothing to check
                log.info("invariant monitor stopped: %s", exc)
                return
            await asyncio.sleep(next_interval_s(result.cost_s, self.budget, self.floor_s))

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name="invariant-monitor")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
