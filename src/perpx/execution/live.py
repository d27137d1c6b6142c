"""Running a parent on wall time: the loop around :class:`~.runner.ParentRunner` for live venues.

The runner's decisions are pure; this loop adds only waiting and failure handling:

* it sleeps until the runner's next wake-up (venue time), never longer than ``period_s``;
* a :class:`~.venue.VenueUnavailable` during a step is reported to ``on_error`` and the step is
  retried after a period (children are found by their ids, so a retry never duplicates one);
* ``KeyboardInterrupt`` (Ctrl-C) or ``stop()`` returning true cancels every working child and
  ends the parent.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from perpx.execution.runner import NS_PER_S, ParentRunner, StepRecord
from perpx.execution.venue import VenueUnavailable


def run_live(
    runner: ParentRunner,
    *,
    on_step: Callable[[StepRecord], None] | None = None,
    on_error: Callable[[Exception], None] | None = None,
    stop: Callable[[], bool] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Step ``runner`` until its parent is done (module docstring)."""
    try:
        while not runner.done:
            if stop is not None and stop():
                runner.cancel_all("stopped by the operator")
                return
            wait_ns = runner.wake_ns - runner.venue.now_ns()
            if wait_ns > 0:
                sleep(min(wait_ns, runner.period_s * NS_PER_S) / NS_PER_S)
                continue
            try:
                record = runner.step()
            except VenueUnavailable as exc:
                if on_error is not None:
                    on_error(exc)
                sleep(runner.period_s)
                continue
            if on_step is not None:
                on_step(record)
    except KeyboardInterrupt:
        runner.cancel_all("interrupted (Ctrl-C): working children canceled")
        raise
