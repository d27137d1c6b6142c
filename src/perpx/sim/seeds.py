"""How one seed becomes every random generator of a run.

A run draws from many generators: one per price process, per spot source and per agent. Each is
:func:`derive_rng` of the run's seed and a purpose string:

======================================  ==================================
purpose                                 who draws from it
======================================  ==================================
``price/<market>``                      the market's fair price process
``source/<source>/<market>``            one spot source's noise
``agent/<agent name>``                  one agent (its set-up, phase and turns)
======================================  ==================================

Invariant: a generator's stream depends only on ``(seed, purpose)``, never on the order the
generators are made in, on ``PYTHONHASHSEED`` or on the process, so the same seed gives the same
commands in any process and any driver (the simulator, the server's demo).
"""

from __future__ import annotations

import random


def derive_rng(seed: int, purpose: str) -> random.Random:
    """The generator for one ``purpose`` (``"agent/mm-1"``, ``"source/binance/BTCUSDT"``) of one seed.

    ``random.Random`` seeded with a string hashes it with SHA-512, so the stream does not depend on
    ``PYTHONHASHSEED`` or on the order generators are made in.
    """
    return random.Random(f"perpx-sim/{seed}/{purpose}")


__all__ = ["derive_rng"]
