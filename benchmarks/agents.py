"""What the agent guard costs an order: REST order entry for an agent key against a plain key.

Both accounts place the same passive LIMIT orders (alternating, one at a time) on one in-process
venue (the real public app through httpx's ASGI transport, the sequencer and the journal as
``perpx serve`` runs them); each account's orders are cancelled every 100 orders, untimed (the market's
open-order cap is 200); the figure is the median latency of each and their ratio, measured in the same run.

    python benchmarks/agents.py                 # 250 orders each (the venue allows 300 new orders per
                                                # account per 10 s, so a run stays under it)

Prints one JSON line at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from perpx.engine.config import DEFAULT_CONFIG_TOML
from perpx.server.app import build_components, create_admin_app, create_app, start_venue, stop_venue
from perpx.server.context import open_venue

BASE = "http://bench.internal"


async def main(orders: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        ctx = open_venue(Path(tmp) / "data", DEFAULT_CONFIG_TOML, build_components)
        ctx.admin_token = "bench"
        public, admin = create_app(ctx), create_admin_app(ctx)
        await start_venue(ctx)
        try:
            async with (
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=admin),
                    base_url=BASE,
                    headers={"X-PERPX-ADMIN": "bench"},
                ) as a,
                httpx.AsyncClient(transport=httpx.ASGITransport(app=public), base_url=BASE) as p,
            ):

                async def call(path: str, body: dict[str, Any]) -> Any:
                    answer = await a.post(f"/admin/v1{path}", json=body)
                    assert answer.status_code == 200, answer.text
                    return answer.json()

                await call("/marks", {"symbol": "BTCUSDT", "markPrice": "60000", "indexPrice": "60000"})
                keys = {}
                for name in ("plain", "agent"):
                    account = await call("/accounts", {"name": name})
                    await call(
                        "/deposits",
                        {
                            "accountId": account["accountId"],
                            "asset": "USDT",
                            "amount": "100000000",
                            "txId": name,
                        },
                    )
                    keys[name] = (account["apiKey"], account["apiSecret"])
                    if name == "agent":
                        owner = account["accountId"]
                        agent = await call(
                            "/agents",
                            {
                                "accountId": owner,
                                "name": name,
                                "scopes": ["read", "trade"],
                                "limits": {
                                    "maxOrderNotional": "100000",
                                    "maxOpenNotional": "1000000000",
                                    "maxDailyNotional": "1000000000",
                                    "maxPosition": "1000",
                                    "maxSlippageBps": 1000,
                                },
                            },
                        )
                        keys[name] = (agent["apiKey"], agent["apiSecret"])
                timings: dict[str, list[int]] = {"plain": [], "agent": []}
                for i in range(orders * 2):
                    name = "plain" if i % 2 == 0 else "agent"
                    key, secret = keys[name]
                    price = 50_000 + (i % 500)
                    items = [
                        ("timestamp", str(time.time_ns() // 1_000_000)),
                        ("symbol", "BTCUSDT"),
                        ("side", "BUY"),
                        ("type", "LIMIT"),
                        ("quantity", "0.002"),
                        ("price", str(price)),
                        ("timeInForce", "GTC"),
                    ]
                    payload = urlencode(items)
                    signature = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
                    started = time.perf_counter_ns()
                    answer = await p.post(
                        "/fapi/v1/order",
                        content=f"{payload}&signature={signature}",
                        headers={"X-MBX-APIKEY": key, "Content-Type": "application/x-www-form-urlencoded"},
                    )
                    timings[name].append(time.perf_counter_ns() - started)
                    assert answer.status_code == 200, answer.text
                    if len(timings[name]) % 100 == 0:
                        items = [("timestamp", str(time.time_ns() // 1_000_000)), ("symbol", "BTCUSDT")]
                        payload = urlencode(items)
                        signature = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
                        done = await p.delete(
                            f"/fapi/v1/allOpenOrders?{payload}&signature={signature}",
                            headers={"X-MBX-APIKEY": key},
                        )
                        assert done.status_code == 200, done.text
        finally:
            await stop_venue(ctx)
    plain = statistics.median(timings["plain"]) / 1000
    agent = statistics.median(timings["agent"]) / 1000
    return {
        "benchmark": "agents",
        "orders_each": orders,
        "plain_median_us": round(plain, 1),
        "agent_median_us": round(agent, 1),
        "agent_over_plain": round(agent / plain, 3),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=250, choices=range(10, 291), metavar="10..290")
    result = asyncio.run(main(parser.parse_args().orders))
    print(json.dumps(result))
