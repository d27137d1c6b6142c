"""An in-process perpx server for fast tests: the real apps and sequencer, driven by Starlette's TestClient.

The apps run in the test process (no child, no port): ``open_venue`` + ``create_app`` +
``create_admin_app``, with the public app's lifespan started by
:class:`fastapi.testclient.TestClient`. One client reaches both listeners, told apart by host
name as ``perpx serve`` tells them apart by socket: a request to ``http://admin.test/...``
goes to the admin app, any other to the public app. Requests are signed exactly as ccxt signs
them. Use :class:`tests.server.harness.ServerProcess` when a test needs real sockets, an
unmodified ccxt client, or a process to kill.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

with warnings.catch_warnings():  # starlette warns about httpx at import; the client works
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from perpx.server.app import build_components, create_admin_app, create_app
from perpx.server.context import ServerContext, open_venue

from .harness import ADMIN_TOKEN, MANUAL_CONFIG, Trader


class InProcessVenue:
    """A started app on ``data_dir``; see the module docstring."""

    def __init__(
        self, ctx: ServerContext, client: TestClient, public_app: FastAPI, admin_app: FastAPI
    ) -> None:
        self.ctx = ctx
        self.client = client
        self.public_app = public_app
        self.admin_app = admin_app

    def admin(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> httpx.Response:
        headers = {"X-PERPX-ADMIN": ADMIN_TOKEN}
        response: httpx.Response = self.client.request(
            method, f"{ADMIN_BASE}/admin/v1{path}", json=body, headers=headers
        )
        return response

    def trader(self, name: str = "trader", deposit: str | None = "100000") -> Trader:
        created = self.admin("POST", "/accounts", {"name": name})
        assert created.status_code == 200, created.text
        data = created.json()
        trader = Trader(data["accountId"], data["apiKey"], data["apiSecret"])
        if deposit is not None:
            funded = self.admin(
                "POST",
                "/deposits",
                {
                    "accountId": trader.account_id,
                    "asset": "USDT",
                    "amount": deposit,
                    "txId": f"seed-{name}-{trader.account_id}",
                },
            )
            assert funded.status_code == 200, funded.text
        return trader

    def mark(self, symbol: str, price: str) -> None:
        answer = self.admin("POST", "/marks", {"symbol": symbol, "markPrice": price, "indexPrice": price})
        assert answer.status_code == 200, answer.text

    def signed(
        self, method: str, path: str, trader: Trader, params: Mapping[str, Any] | None = None
    ) -> httpx.Response:
        """A signed request as ccxt sends it: query string for GET/DELETE, form body for POST/PUT."""
        items = [("timestamp", str(int(time.time() * 1000)))]
        items += [(k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in (params or {}).items()]
        payload = urlencode(items)
        signature = hmac.new(trader.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        body = f"{payload}&signature={signature}"
        headers = {"X-MBX-APIKEY": trader.api_key}
        response: httpx.Response
        if method in ("GET", "DELETE"):
            response = self.client.request(method, f"{path}?{body}", headers=headers)
        else:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            response = self.client.request(method, path, content=body.encode(), headers=headers)
        return response

    def ok(self, method: str, path: str, trader: Trader, params: Mapping[str, Any] | None = None) -> Any:
        """:meth:`signed`, asserting HTTP 200; returns the JSON body."""
        answer = self.signed(method, path, trader, params)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def refused(
        self, method: str, path: str, trader: Trader, params: Mapping[str, Any] | None = None
    ) -> tuple[int, int, str]:
        """:meth:`signed`, asserting a refusal; returns (HTTP status, code, msg)."""
        answer = self.signed(method, path, trader, params)
        assert answer.status_code != 200, answer.text
        body = answer.json()
        return answer.status_code, body["code"], body["msg"]


ADMIN_HOST = "admin.test"
ADMIN_BASE = f"http://{ADMIN_HOST}"


def both_listeners(public: ASGIApp, admin: ASGIApp) -> ASGIApp:
    """One ASGI app in front of both: requests to :data:`ADMIN_HOST` go to ``admin``; the lifespan to ``public``."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        server = scope.get("server") or ("", 0)
        target = admin if scope["type"] != "lifespan" and server[0] == ADMIN_HOST else public
        await target(scope, receive, send)

    return app


@contextmanager
def serving(ctx: ServerContext, *, raise_server_exceptions: bool = True) -> Iterator[InProcessVenue]:
    """Start both apps of an opened venue behind one TestClient, and stop them cleanly on exit."""
    public, admin = create_app(ctx), create_admin_app(ctx)
    with TestClient(both_listeners(public, admin), raise_server_exceptions=raise_server_exceptions) as client:
        yield InProcessVenue(ctx, client, public, admin)


@contextmanager
def in_process_venue(
    data_dir: Path, config_text: str | None = MANUAL_CONFIG, *, raise_server_exceptions: bool = True
) -> Iterator[InProcessVenue]:
    """Open ``data_dir`` (recovering it), start the apps, and stop them cleanly on exit.

    With ``raise_server_exceptions=False`` an unhandled error is answered 500 (as a real server
    does) instead of raised in the test, so a fuzz run can count it.
    """
    ctx = open_venue(data_dir, config_text, build_components)
    ctx.admin_token = ADMIN_TOKEN
    with serving(ctx, raise_server_exceptions=raise_server_exceptions) as venue:
        yield venue
