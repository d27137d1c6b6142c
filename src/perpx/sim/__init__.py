"""The risk lab: scenarios on the real engine, their reports, sweeps, and the market they simulate.

The public driving surface, for any caller that wants the lab's spot sources and agents trading
on a venue (the server's demo, a test, a future sequencer): :class:`SimDriver`, built from a
:class:`Cast`, yields :class:`SpotQuote` and :class:`AgentTurn` work on the caller's clock
(:mod:`perpx.sim.driver` says how). Everything else in the package is the lab's own: the runner
(:mod:`perpx.sim.runner`), sweeps (:mod:`perpx.sim.sweep`), scenarios, agents, sources, reports.
"""

from perpx.sim.cast import Cast
from perpx.sim.driver import NEVER_NS, AgentTurn, Clock, SimDriver, SpotQuote, Submit

__all__ = ["NEVER_NS", "AgentTurn", "Cast", "Clock", "SimDriver", "SpotQuote", "Submit"]
