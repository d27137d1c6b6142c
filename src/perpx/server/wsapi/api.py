"""The route ``/ws-fapi/v1`` on the public listener: Binance USDS-M's WebSocket API.

A connection carries request frames and their answers, one answer per request, in request order
(:class:`perpx.server.wsapi.session.Session` answers each before reading the next). Nothing a
client sends closes the connection: a binary frame, a frame that is not JSON or a refused request
is answered with an error frame. The connection ends when the client leaves or the venue stops
(1001).
"""

from __future__ import annotations

import time

import msgspec
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from perpx.server.context import ServerContext
from perpx.server.wsapi.session import Session

WSAPI_PATH = "/ws-fapi/v1"

router = APIRouter()
_encode = msgspec.json.Encoder().encode


@router.websocket(WSAPI_PATH)
async def ws_api(websocket: WebSocket) -> None:
    """Answer the connection's request frames until it ends (see the module docstring)."""
    ctx: ServerContext = websocket.app.state.ctx
    await websocket.accept()
    client = websocket.client
    session = Session(ctx, client.host if client is not None else "", time.time_ns() // 1_000_000)
    connections = ctx.components.wsapi
    connections.opened(websocket)
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            answer = session.refuse_binary() if text is None else await session.answer(text)
            await websocket.send_text(_encode(answer).decode())
    except (WebSocketDisconnect, RuntimeError):
        return
    finally:
        connections.ended(websocket)


async def on_stop(ctx: ServerContext) -> None:
    """Close every WebSocket API connection (1001): the venue is stopping."""
    await ctx.components.wsapi.close_all("the venue is shutting down")
