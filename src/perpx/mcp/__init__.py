"""perpx's MCP server: the venue's trading tools for AI agents, over stdio or streamable HTTP.

The tools talk to the venue's signed REST API with an agent key (:mod:`perpx.mcp.venue`), so every
guardrail is the venue's own (:mod:`perpx.agents.guard`): the MCP layer adds nothing an agent could
get around by calling REST or FIX directly, and takes nothing away.
"""
