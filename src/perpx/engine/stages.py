"""The shape of a consequence stage: work that follows from prices moving.

After a command's own handler has run (stage 6 of an order), the engine hands
the markets whose mark or last price moved to each registered stage in turn
(conditional-order triggers, then liquidation), and repeats until a whole pass
does nothing. A stage acts only through the engine's own order and ledger
paths, so everything it does is journaled implicitly (it is a deterministic
consequence of the journaled command) and checked by the same invariants.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from perpx.engine.values import MarketId


class ConsequenceStage(Protocol):
    """A stage the engine runs after a command while prices have moved."""

    def run(self, moved: Mapping[MarketId, None]) -> bool:
        """Do whatever is now due in ``moved`` markets; return True if anything was done."""
        ...
