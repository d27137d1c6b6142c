"""``perpx mcp``: the MCP server on stdio, for a desktop agent client (Claude Desktop, an IDE, ...).

``perpx mcp --venue URL --key K --secret S`` serves the tools against a running venue with an agent
key; ``perpx mcp --paper`` against a paper venue started in this process. The same tools are served
over streamable HTTP at ``/mcp`` by every running venue (:mod:`perpx.mcp.http`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer


def mcp_command(
    venue: Annotated[
        str | None, typer.Option(help="The venue's public URL, e.g. http://127.0.0.1:8080.")
    ] = None,
    key: Annotated[str | None, typer.Option(help="The agent's API key (POST /admin/v1/agents).")] = None,
    secret: Annotated[
        str | None, typer.Option(help="The agent's API secret.", envvar="PERPX_AGENT_SECRET")
    ] = None,
    paper: Annotated[bool, typer.Option(help="Serve a paper venue started in this process instead.")] = False,
    data: Annotated[
        Path | None, typer.Option(help="The paper venue's data directory (default: a new scratch one).")
    ] = None,
) -> None:
    """Serve perpx's trading tools to an MCP client over stdio, held to the agent key's venue-side limits."""
    import logging

    import anyio

    from perpx.mcp.tools import build_server
    from perpx.mcp.venue import VenueClient

    if paper == (venue is not None):
        raise typer.BadParameter("give either --venue URL (with --key and --secret) or --paper")
    if not paper and (not key or not secret):
        raise typer.BadParameter("--venue needs --key and --secret (or PERPX_AGENT_SECRET)")

    logging.getLogger("httpx").setLevel(logging.WARNING)  # its request lines would carry signatures

    async def serve() -> None:
        from mcp.server.mcpserver import Context

        if paper:
            from perpx.mcp.paper import open_paper_venue

            scratch = Path(tempfile.mkdtemp(prefix="perpx-paper-")) if data is None else data
            venue_ = await open_paper_venue(scratch / "data" if data is None else scratch)
            client = venue_.client
        else:
            assert venue is not None and key is not None and secret is not None
            client = VenueClient(venue, key, secret)

        async def resolve(context: Context) -> VenueClient:
            return client

        server = build_server(resolve)
        try:
            await server.run_stdio_async()
        finally:
            if paper:
                await venue_.close()

    anyio.run(serve)
