"""The MCP tools over streamable HTTP at ``/mcp`` on the venue's public listener.

A request must carry an agent key: ``X-MBX-APIKEY`` and ``X-PERPX-SECRET`` (or ``Authorization:
Bearer KEY:SECRET``); anything else is answered 401 before the MCP layer reads a byte. The tools then
call the venue's own REST routes in-process (an ASGI transport into the same app) signed with that
key, so an MCP agent meets exactly the checks a REST or FIX client meets. DNS-rebinding protection
is off: authentication is by a secret header a browser page cannot know, not by where the request
comes from.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

import httpx
from fastapi import FastAPI
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from perpx.agents.guard import agent_guard
from perpx.mcp.tools import build_server
from perpx.mcp.venue import VenueClient
from perpx.server.auth import tokens_match
from perpx.server.context import ServerContext

MCP_PATH = "/mcp"
INTERNAL_BASE = "http://perpx.internal"


def credentials(headers: dict[str, str]) -> tuple[str, str] | None:
    """The (key, secret) a request carries, or ``None``."""
    key, secret = headers.get("x-mbx-apikey"), headers.get("x-perpx-secret")
    if key and secret:
        return key, secret
    bearer = headers.get("authorization", "")
    if bearer.lower().startswith("bearer ") and ":" in bearer:
        key, _, secret = bearer[7:].strip().partition(":")
        return (key, secret) if key and secret else None
    return None


@dataclass
class McpEndpoint:
    """The ``/mcp`` endpoint of one venue: the authentication gate, the MCP server and its runner."""

    ctx: ServerContext
    app: FastAPI
    server: MCPServer = field(init=False)
    inner: ASGIApp = field(init=False)
    _stop: asyncio.Event | None = None
    _task: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        transport = httpx.ASGITransport(app=self.app)

        async def resolve(context: Context) -> VenueClient:
            request = context.request_context.request
            found = (
                credentials({k.lower(): v for k, v in request.headers.items()})
                if request is not None
                else None
            )
            if found is None:
                raise ToolError("venue refused (-2014): no agent key on this request")
            return VenueClient(INTERNAL_BASE, found[0], found[1], transport)

        self.server = build_server(resolve)
        self.inner = self.server.streamable_http_app(
            streamable_http_path=MCP_PATH,
            stateless_http=True,
            json_response=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )

    async def start(self) -> None:
        """Run the MCP session manager in a task of its own (its task group lives and dies there)."""
        stop = self._stop = asyncio.Event()
        started = asyncio.Event()

        async def run() -> None:
            async with self.server.session_manager.run():
                started.set()
                await stop.wait()

        self._task = asyncio.create_task(run())
        await started.wait()

    async def stop(self) -> None:
        if self._stop is not None and self._task is not None:
            self._stop.set()
            await self._task
            self._task = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        found = credentials(headers)
        reason = None
        if found is None:
            reason = (
                "send the agent key: X-MBX-APIKEY and X-PERPX-SECRET, or Authorization: Bearer KEY:SECRET"
            )
        else:
            key = self.ctx.keys.get(found[0])
            if key is None or not tokens_match(found[1], key.secret):
                reason = "unknown key or wrong secret"
            elif agent_guard(self.ctx).agent_of(key.account_id) is None:
                reason = "the key is not an agent key (POST /admin/v1/agents)"
        if reason is not None or self._task is None:
            status, code = (401, -2015) if reason is not None else (503, -1001)
            body = json.dumps({"code": code, "msg": reason or "the MCP endpoint is not started"}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.inner(scope, receive, send)


_ENDPOINTS: dict[int, tuple[ServerContext, McpEndpoint]] = {}


def install(app: FastAPI, ctx: ServerContext) -> McpEndpoint:
    """Serve ``/mcp`` on ``app`` (the public listener); :func:`on_start` starts it with the venue."""
    endpoint = McpEndpoint(ctx, app)
    app.router.routes.append(Route(MCP_PATH, endpoint, methods=["GET", "POST", "DELETE"]))
    _ENDPOINTS[id(ctx)] = (ctx, endpoint)
    return endpoint


async def on_start(ctx: ServerContext) -> None:
    held = _ENDPOINTS.get(id(ctx))
    if held is not None and held[0] is ctx:
        await held[1].start()


async def on_stop(ctx: ServerContext) -> None:
    held = _ENDPOINTS.pop(id(ctx), None)
    if held is not None and held[0] is ctx:
        await held[1].stop()
