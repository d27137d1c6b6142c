"""The web console: the trading screen (public listener) and the operator's risk monitor (admin listener).

The pages are built from ``web/`` (``npm ci && npm run build``) into ``static/`` and ship as package
data, so ``pip install`` gives a working console without node. :func:`mount_trading` and
:func:`mount_operator` are the only lines the server's apps need; the pages use the same REST,
WebSocket and admin routes as any client (the trading screen signs its requests in the browser), plus
the admin read routes of :mod:`perpx.console.risk`, :mod:`perpx.console.explained` and
:mod:`perpx.console.risklab`.
"""

from __future__ import annotations

from perpx.console.assets import mount_operator, mount_trading

__all__ = ["mount_operator", "mount_trading"]
