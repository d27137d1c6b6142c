"""A paper venue for ``perpx mcp --paper``: a real perpx venue in this process, on a scratch data directory.

It lists the default markets, marks BTCUSDT at 60,000 and ETHUSDT at 3,000, rests a ladder of
market-maker orders around each mark, and gives the agent an account with 10,000 USDT and a paper
policy. Same engine, same guard, same tools as a live venue: only the money is not real.

The venue runs on the wall clock (a new paper directory is written with ``clock = "wall"``), so
its algo service works parent orders in real time: ``start_algo``, ``algo_status`` and
``cancel_algo`` drive the same :class:`~perpx.execution.runner.ParentRunner` a live venue does.
The markets have no index sources, so their marks never go stale while nothing moves them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from perpx.engine.config import DEFAULT_CONFIG_TOML
from perpx.journal.store import CONFIG_FILE
from perpx.mcp.venue import VenueClient
from perpx.server.app import build_components, create_admin_app, create_app, start_venue, stop_venue
from perpx.server.context import ServerContext, open_venue

PAPER_MARKS = {"BTCUSDT": Decimal(60_000), "ETHUSDT": Decimal(3_000)}
PAPER_CONFIG_TOML = DEFAULT_CONFIG_TOML.replace('clock = "manual"', 'clock = "wall"', 1)
"""The demo venue on the wall clock: algos are worked as time passes, with nobody advancing a clock."""
PAPER_POLICY: dict[str, Any] = {
    "scopes": ["read", "preview", "trade", "algo", "cancel"],
    "limits": {
        "maxOrderNotional": "5000",
        "maxOpenNotional": "20000",
        "maxDailyNotional": "100000",
        "maxOrdersPerMinute": 60,
        "maxSlippageBps": 100,
    },
    "requirePreview": True,
}
_BASE = "http://paper.internal"


@dataclass
class PaperVenue:
    """The started paper venue and the agent's client on it."""

    ctx: ServerContext
    client: VenueClient
    agent_id: str

    async def close(self) -> None:
        await stop_venue(self.ctx)


async def open_paper_venue(data_dir: Path, policy: dict[str, Any] | None = None) -> PaperVenue:
    """Open, start and seed a paper venue in ``data_dir`` (which must be new or a previous paper venue)."""
    stored = (data_dir / CONFIG_FILE).exists()  # a previous paper venue keeps the clock it was made with
    ctx = open_venue(data_dir, None if stored else PAPER_CONFIG_TOML, build_components)
    ctx.admin_token = secrets.token_hex(16)
    public, admin = create_app(ctx), create_admin_app(ctx)
    await start_venue(ctx)
    headers = {"X-PERPX-ADMIN": ctx.admin_token}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=admin), base_url=_BASE, headers=headers
    ) as a:

        async def call(path: str, body: dict[str, Any]) -> Any:
            answer = await a.post(f"/admin/v1{path}", json=body)
            if answer.status_code != 200:
                raise RuntimeError(f"paper venue set-up: {path} answered {answer.text}")
            return answer.json()

        for symbol, mark in PAPER_MARKS.items():
            await call("/marks", {"symbol": symbol, "markPrice": str(mark), "indexPrice": str(mark)})
        maker = await call("/accounts", {"name": "paper-maker"})
        await call(
            "/deposits",
            {
                "accountId": maker["accountId"],
                "asset": "USDT",
                "amount": "10000000",
                "txId": f"paper-maker-{maker['accountId']}",
            },
        )
        owner = await call("/accounts", {"name": "paper-agent", "permissions": ["read"]})
        await call(
            "/deposits",
            {
                "accountId": owner["accountId"],
                "asset": "USDT",
                "amount": "10000",
                "txId": f"paper-agent-{owner['accountId']}",
            },
        )
        agent = await call(
            "/agents", {"accountId": owner["accountId"], "name": "paper-agent", **(policy or PAPER_POLICY)}
        )
    transport = httpx.ASGITransport(app=public)
    async with httpx.AsyncClient(transport=transport, base_url=_BASE) as p:
        for symbol, mark in PAPER_MARKS.items():
            for step in range(1, 6):
                for side, sign in (("BUY", -1), ("SELL", 1)):
                    price = mark * (1 + sign * Decimal(step) / 1000)
                    qty = "0.05" if symbol == "BTCUSDT" else "1"
                    await _maker_order(p, maker["apiKey"], maker["apiSecret"], symbol, side, qty, price)
    client = VenueClient(_BASE, agent["apiKey"], agent["apiSecret"], transport)
    return PaperVenue(ctx, client, agent["agentId"])


async def _maker_order(
    client: httpx.AsyncClient, key: str, secret: str, symbol: str, side: str, qty: str, price: Decimal
) -> None:
    items = [
        ("timestamp", str(time.time_ns() // 1_000_000)),
        ("symbol", symbol),
        ("side", side),
        ("type", "LIMIT"),
        ("quantity", qty),
        ("price", str(price.quantize(Decimal("0.1")))),
        ("timeInForce", "GTC"),
    ]
    payload = urlencode(items)
    signature = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    answer = await client.post(
        "/fapi/v1/order",
        content=f"{payload}&signature={signature}".encode(),
        headers={"X-MBX-APIKEY": key, "Content-Type": "application/x-www-form-urlencoded"},
    )
    if answer.status_code != 200:
        raise RuntimeError(f"paper venue set-up: a maker order answered {answer.text}")
