"""The cast of a run: the price processes, the spot sources quoting them and the agents trading.

A :class:`Cast` is the part of a document that a :class:`~perpx.sim.driver.SimDriver` is built
from, in the scenario file's own keys (see :mod:`perpx.sim.scenario`):

=============  ========================================================================================
field          what it holds
=============  ========================================================================================
``prices``     market -> its ``[prices.<market>]`` table: the fair price process (:mod:`.sources`)
``sources``    the ``[[sources]]`` rows: ``name``, ``market``, ``every_s``, ``latency_s``, ``noise_bps``,
               ``controlled``, ``faults``; every ``market`` needs a ``prices`` entry
``agents``     the ``[[agents]]`` rows: ``kind``, ``name``, ``count`` and the kind's parameters
               (:mod:`perpx.sim.agents`)
``scale``      multiplies every given agent ``count`` (``[run] scale``)
``base_dir``   where a ``path`` process's CSV ``file`` is looked up (the scenario file's directory)
=============  ========================================================================================

A scenario gives its cast as :attr:`perpx.sim.scenario.Scenario.cast`; the server's demo builds
one from its own cast file and the venue's listed markets. A cast is plain data: building it
checks nothing, and the driver refuses what it cannot use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Cast:
    """Who quotes and who trades, as the scenario file writes them (see the module docstring)."""

    prices: Mapping[str, Mapping[str, Any]]
    sources: Sequence[Mapping[str, Any]]
    agents: Sequence[Mapping[str, Any]]
    scale: float = 1.0
    base_dir: Path | None = None


__all__ = ["Cast"]
