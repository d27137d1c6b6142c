"""A signed REST client for one agent key: what the MCP tools call.

Requests are signed as ccxt signs them (HMAC-SHA256 of the url-encoded parameters). A refusal comes
back as :class:`VenueError` with the venue's code and message, which the tools pass on to the model.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import httpx


class VenueError(Exception):
    """The venue refused a request (``code`` and ``msg`` as the venue sent them)."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(f"{code}: {msg}")
        self.status = status
        self.code = code
        self.msg = msg


class VenueClient:
    """Signed calls to one venue as one key. ``transport`` lets a venue call itself in-process."""

    def __init__(
        self, base_url: str, api_key: str, secret: str, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self._secret = secret
        self._transport = transport

    async def public(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return await self._send("GET", path, urlencode(_items(params)), signed=False)

    async def signed(self, method: str, path: str, params: Mapping[str, Any] | None = None) -> Any:
        items = [("timestamp", str(time.time_ns() // 1_000_000)), *_items(params)]
        payload = urlencode(items)
        signature = hmac.new(self._secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        return await self._send(method, path, f"{payload}&signature={signature}", signed=True)

    async def _send(self, method: str, path: str, payload: str, *, signed: bool) -> Any:
        headers = {"X-MBX-APIKEY": self.api_key} if signed else {}
        async with httpx.AsyncClient(base_url=self.base_url, transport=self._transport, timeout=15) as client:
            try:
                if method in ("GET", "DELETE"):
                    response = await client.request(method, f"{path}?{payload}", headers=headers)
                else:
                    headers["Content-Type"] = "application/x-www-form-urlencoded"
                    response = await client.request(method, path, content=payload.encode(), headers=headers)
            except httpx.HTTPError as exc:
                raise VenueError(
                    503, -1001, f"The venue at {self.base_url} did not answer ({exc})."
                ) from None
        try:
            body = response.json()
        except ValueError:
            raise VenueError(
                response.status_code, -1000, f"The venue answered HTTP {response.status_code} without JSON."
            ) from None
        if response.status_code != 200:
            code = body.get("code", -1000) if isinstance(body, dict) else -1000
            msg = body.get("msg", "") if isinstance(body, dict) else str(body)
            raise VenueError(response.status_code, int(code), str(msg))
        return body


def _items(params: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key, value in (params or {}).items():
        if value is None:
            continue
        out.append((key, ("true" if value else "false") if isinstance(value, bool) else str(value)))
    return out
