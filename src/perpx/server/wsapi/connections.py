"""The WebSocket API's open connections: what the metrics count and what stopping the venue closes.

Kept apart from the route so the components (and the metrics) can hold it without importing the
trading handlers.
"""

from __future__ import annotations

from typing import Protocol


class Closable(Protocol):
    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


class WsApiConnections:
    """The connections open on ``/ws-fapi/v1`` now, and how many have ended since the venue started.

    Invariant: a connection is in :attr:`open` from its accept to its end, and :attr:`closed` counts
    each ended connection once (``perpx_ws_disconnects_total{reason="closed"}``).
    """

    def __init__(self) -> None:
        self.open: dict[int, Closable] = {}
        self.closed = 0

    def opened(self, connection: Closable) -> None:
        self.open[id(connection)] = connection

    def ended(self, connection: Closable) -> None:
        if self.open.pop(id(connection), None) is not None:
            self.closed += 1

    async def close_all(self, reason: str) -> None:
        """Close every open connection with 1001 (going away); a connection already gone is skipped."""
        for connection in list(self.open.values()):
            try:
                await connection.close(1001, reason)
            except RuntimeError:
                continue
