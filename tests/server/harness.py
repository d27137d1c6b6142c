"""A real perpx server in a child process, and clients for it: signed REST, admin, ccxt.

Tests start the server exactly as a user does (``python -m perpx serve``) on a
free public port and a free admin port, so they exercise both listeners, the
sequencer thread and the journal, and can kill it with SIGKILL to test recovery.

The admin client can send from another loopback address (``source="127.0.0.2"``):
wrong-token tests then lock out only that address, never the harness's own calls.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from perpx.engine.config import DEFAULT_CONFIG_TOML

ADMIN_TOKEN = "test-admin-token"

REPO = Path(__file__).resolve().parents[2]
PRICED_CONFIG = (REPO / "src/perpx/data/demo_venue.toml").read_text()
"""The demo venue (index-priced markets, wall clock)."""

MANUAL_CONFIG = DEFAULT_CONFIG_TOML
"""The default venue: manual clock, marks set by SetMarkPrice (none of its markets has index sources)."""


def from_address(source: str) -> httpx.Client:
    """An HTTP client whose connections leave from ``source`` (any 127.x.y.z is this host on Linux)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=10)


_PORTS = random.Random(os.getpid() ^ time.monotonic_ns())


def free_port() -> int:
    """A port that is free now, below Linux's ephemeral range (32768 up).

    A port from the ephemeral range (what binding port 0 gives) can be taken by any client's
    outgoing connection between a kill -9 and the restart that binds it again; the servers
    of these tests restart on their ports, so they use ports no outgoing connection gets.
    """
    for _ in range(200):
        port = _PORTS.randrange(20_000, 32_000)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        fallback: int = sock.getsockname()[1]
        return fallback


@dataclass
class Trader:
    """An account with an API key, as the admin API created it."""

    account_id: int
    api_key: str
    secret: str


@dataclass
class ServerProcess:
    """``perpx serve`` in a child process; ``start`` waits until both listeners answer ``/ready``.

    ``admin_port=0`` starts it without the admin listener.
    """

    data_dir: Path
    config_text: str | None = MANUAL_CONFIG
    demo: bool = False
    port: int = field(default_factory=free_port)
    admin_port: int = field(default_factory=free_port)
    extra_args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    module: str = "perpx"
    """What ``python -m`` runs; a test server module takes ``perpx serve``'s arguments."""
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def admin_base(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def start(self, timeout_s: float = 120.0) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            sys.executable,
            "-m",
            self.module,
            "serve",
            "--data",
            str(self.data_dir),
            "--port",
            str(self.port),
            "--admin-port",
            str(self.admin_port),
        ]
        if self.config_text is not None:
            config_path = self.data_dir.parent / f"{self.data_dir.name}-venue.toml"
            config_path.write_text(self.config_text)
            args += ["--config", str(config_path)]
        if self.demo:
            args.append("--demo")
        args += list(self.extra_args)
        env = {**os.environ, "PERPX_ADMIN_TOKEN": ADMIN_TOKEN, **self.env}
        if self.module != "perpx":
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-server.log"
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                bases = (self.base, self.admin_base) if self.admin_port else (self.base,)
                if all(httpx.get(f"{base}/ready", timeout=1).status_code == 200 for base in bases):
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not answer within {timeout_s} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 20.0) -> int | None:
        """Stop the server (SIGTERM: clean, with a snapshot; SIGKILL: a crash). Returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.process = None
        return code

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    # ------------------------------------------------------------------ clients

    def admin(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        token: str = ADMIN_TOKEN,
        source: str = "127.0.0.1",
    ) -> httpx.Response:
        """An admin call on the admin port, sent from the loopback address ``source``."""
        with from_address(source) as client:
            return client.request(
                method, f"{self.admin_base}/admin/v1{path}", json=body, headers={"X-PERPX-ADMIN": token}
            )

    def trader(
        self,
        name: str = "trader",
        deposit: str | None = "100000",
        permissions: tuple[str, ...] = ("read", "trade"),
        ips: tuple[str, ...] = (),
    ) -> Trader:
        """Create an account with a key through the admin API and fund it."""
        created = self.admin(
            "POST", "/accounts", {"name": name, "permissions": list(permissions), "ips": list(ips)}
        )
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

    def public(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(f"{self.base}{path}", params=params, timeout=10)

    def signed(
        self,
        method: str,
        path: str,
        trader: Trader,
        params: Mapping[str, Any] | None = None,
        *,
        timestamp_ms: int | None = None,
        recv_window: int | None = None,
        secret: str | None = None,
        headers: Mapping[str, str] | None = None,
        source: str = "127.0.0.1",
    ) -> httpx.Response:
        """A signed request as ccxt sends it (query string for GET/DELETE, form body for POST/PUT).

        ``headers`` are sent as well; the request leaves from the loopback address ``source``.
        """
        items = [("timestamp", str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)))]
        items += [(k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in (params or {}).items()]
        if recv_window is not None:
            items.append(("recvWindow", str(recv_window)))
        payload = urlencode(items)
        signature = hmac.new((secret or trader.secret).encode(), payload.encode(), hashlib.sha256).hexdigest()
        signed_payload = f"{payload}&signature={signature}"
        sent = {**(headers or {}), "X-MBX-APIKEY": trader.api_key}
        url = f"{self.base}{path}"
        with from_address(source) as client:
            if method in ("GET", "DELETE"):
                return client.request(method, f"{url}?{signed_payload}", headers=sent)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
            return client.request(method, url, content=signed_payload.encode(), headers=sent)

    def ccxt(self, trader: Trader, **options: Any) -> Any:
        """An unmodified ccxt ``binanceusdm`` pointed at this server (the setup of binance-api-contract.md)."""
        import ccxt

        exchange = ccxt.binanceusdm(
            {
                "apiKey": trader.api_key,
                "secret": trader.secret,
                "enableRateLimit": False,
                "options": {
                    "fetchCurrencies": False,
                    "fetchOpenOrders": {"warnWithoutSymbol": False},
                    **options,
                },
            }
        )
        exchange.urls["api"] = _ccxt_urls(self.base)
        exchange.exceptions["exact"] = {
            **exchange.exceptions["exact"],
            **exchange.exceptions["linear"]["exact"],
        }
        return exchange

    def ccxt_pro(self, trader: Trader, **options: Any) -> Any:
        import ccxt.pro

        exchange = ccxt.pro.binanceusdm(
            {
                "apiKey": trader.api_key,
                "secret": trader.secret,
                "enableRateLimit": False,
                "options": {
                    "fetchCurrencies": False,
                    "fetchOpenOrders": {"warnWithoutSymbol": False},
                    **options,
                },
            }
        )
        exchange.urls["api"] = {**_ccxt_urls(self.base), "ws": {"linear": self.ws_base}}
        exchange.exceptions["exact"] = {
            **exchange.exceptions["exact"],
            **exchange.exceptions["linear"]["exact"],
        }
        return exchange


def _ccxt_urls(base: str) -> dict[str, str]:
    return {
        "fapiPublic": base + "/fapi/v1",
        "fapiPublicV2": base + "/fapi/v2",
        "fapiPublicV3": base + "/fapi/v3",
        "fapiPrivate": base + "/fapi/v1",
        "fapiPrivateV2": base + "/fapi/v2",
        "fapiPrivateV3": base + "/fapi/v3",
        "fapiData": base + "/futures/data",
    }
