"""Run a scenario on the real engine, on a simulated clock, and collect what happened.

==================  ===========================================================================
module              what it holds
==================  ===========================================================================
``run``             :func:`run_scenario` (the entry point of ``perpx simulate`` and of sweeps),
                    the journal directory, :class:`RunError`, the progress bar
``simulation``      :class:`Simulation`: the loop on the simulated clock; the cast's quotes and
                    turns come from a :class:`~perpx.sim.driver.SimDriver`
``metrics``         :class:`~.metrics.RunMetrics`: counters from events, audits, invariant checks
``series``          :class:`~.series.SeriesRecorder`: the time series sampled from the venue
``summary``         :func:`~.summary.summarise`: the summary and its assertions
``files``           :func:`write_result` and :func:`load_result`: ``summary.json``, ``series.json``
==================  ===========================================================================

Determinism: the same scenario and seed give the same commands, events and state hash in any
process (:mod:`perpx.sim.seeds`); only ``wall_seconds`` and the progress bar read the wall clock.
"""

from perpx.sim.result import SUMMARY_FIELDS
from perpx.sim.runner.files import SERIES_FILE, SUMMARY_FILE, load_result, write_result
from perpx.sim.runner.run import JOURNAL_DIR, RunError, run_scenario
from perpx.sim.runner.simulation import START_NS, Simulation
from perpx.sim.scenario import ScenarioError

__all__ = [
    "JOURNAL_DIR",
    "SERIES_FILE",
    "START_NS",
    "SUMMARY_FIELDS",
    "SUMMARY_FILE",
    "RunError",
    "ScenarioError",
    "Simulation",
    "load_result",
    "run_scenario",
    "write_result",
]
