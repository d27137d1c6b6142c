"""An example MCP agent participant: it trades only through the MCP tools, as a model would.

Interface (perpx.compete.participant): ``async on_step(tools, step)`` with ``tools`` an ``mcp.Client``
connected to the venue's MCP server under this participant's agent key. Each step it reads the book
and its positions, and fades moves away from its moving average with limit orders at the touch,
always through ``preview_order`` then ``place_order`` with the preview token.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any


class Reverter:
    """Sell above the ``window``-step average by more than ``band_bps``, buy below; keep |position| <= ``cap``."""

    def __init__(self, window: int = 10, band_bps: int = 10, size: str = "0.01", cap: str = "0.05") -> None:
        self.window = window
        self.band = Decimal(band_bps) / 10_000
        self.size = Decimal(size)
        self.cap = Decimal(cap)
        self.mids: list[Decimal] = []

    async def on_step(self, tools: Any, step: int) -> None:
        book = (
            await tools.call_tool("get_order_book", {"symbol": "BTCUSDT", "limit": 5})
        ).structured_content["data"]
        if not book["bids"] or not book["asks"]:
            return
        bid, ask = Decimal(book["bids"][0][0]), Decimal(book["asks"][0][0])
        self.mids.append((bid + ask) / 2)
        if len(self.mids) < self.window:
            return
        average = sum(self.mids[-self.window :]) / self.window
        rows = (await tools.call_tool("get_positions", {})).structured_content["data"]
        position = sum((Decimal(r["positionAmt"]) for r in rows if r["symbol"] == "BTCUSDT"), Decimal(0))
        await tools.call_tool("cancel_all", {"symbol": "BTCUSDT"})
        mid = self.mids[-1]
        if mid > average * (1 + self.band) and position - self.size >= -self.cap:
            side, price = "SELL", ask
        elif mid < average * (1 - self.band) and position + self.size <= self.cap:
            side, price = "BUY", bid
        else:
            return
        preview = await tools.call_tool(
            "preview_order",
            {"symbol": "BTCUSDT", "side": side, "quantity": str(self.size), "price": str(price)},
        )
        token = preview.structured_content["data"]["previewToken"] if not preview.is_error else None
        if token:
            await tools.call_tool("place_order", {"preview_token": token})
