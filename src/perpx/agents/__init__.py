"""Agent keys the venue itself holds to a policy: scopes, symbols, limits, preview tokens, kill switches,
approvals and a hash-chained audit log.

An agent is bound to one account, and the policy binds the account: every order on it, whatever the
key or interface (REST, batch orders, FIX, MCP), passes :class:`perpx.agents.guard.AgentGuard` in
:func:`perpx.server.trading.orders.place_order`. So an agent cannot step around its limits by
reaching the same account another way.
"""
