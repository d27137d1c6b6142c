"""The venue's two listeners: the public one (Binance REST and WebSocket) and the admin one.

Sockets first
-------------
:func:`bind_listeners` binds and listens on both sockets before anything else happens, so a port
in use is a one-line :class:`ListenError` naming the port, and ``perpx serve`` stops before it
creates or recovers anything. From then on the ports are ours: a client that connects while the
venue recovers waits in the listen backlog instead of being refused.

Every socket gets the same options (accepted connections inherit them):

=======================  ==========================================================================
option                   why
=======================  ==========================================================================
``IPPROTO_TCP``          the protocol is named, not left 0: asyncio turns Nagle off
                         (``TCP_NODELAY``) only on sockets that say they are TCP, and with Nagle on
                         a response written in two parts waits 40 ms for the client's delayed ACK
``SO_REUSEADDR``         a restart binds at once, even while old connections sit in TIME_WAIT
``TCP_NOTSENT_LOWAT``    the kernel takes more bytes for a connection only while fewer than 16 KiB of
16 KiB                   it wait unsent (bytes in flight are not limited, so a reading client loses
                         no throughput). Without it the kernel would take up to 4 MiB for a client
                         that does not read (50,000 compressed trade frames, half a minute of a fast
                         stream) before anything here could see that client fall behind; with it,
                         the slow-consumer rules of ``streams.py`` see it at once
``TCP_USER_TIMEOUT``     a connection whose sent data stays unacknowledged for
30 s                     :data:`USER_TIMEOUT_MS` is aborted by the kernel. Without it, a client that
                         stops reading keeps its connection (and the bytes queued for it) forever:
                         asyncio closes a transport only once its buffer has drained
=======================  ==========================================================================

Both TCP options are Linux's (``TCP_NOTSENT_LOWAT`` exists on macOS too); elsewhere they are
skipped and only the application's rules bound a slow client.

Two uvicorn servers on one loop
-------------------------------
:class:`VenueServer` runs one uvicorn server per listener on one asyncio loop, around one venue
(one sequencer). The alternative, one server with two sockets routing by the local port of each
connection, was not taken: there the separation would be a runtime check in front of one app that
holds every route, so one mistake in that check serves the admin API publicly. Here the public
app has no admin route at all (``/admin/v1`` is a plain 404), each listener has its own OpenAPI
document and its own uvicorn settings and connection bookkeeping. What they share is the loop: a
flood that keeps the loop busy slows both. Both servers run with the lifespan off: the venue is
started once, by :meth:`VenueServer.serve`, and signals are caught once, for both, by it too.
Every WebSocket is pinged every :data:`WS_PING_INTERVAL_S` and closed when a pong is more than
:data:`WS_PING_TIMEOUT_S` late.

Forwarded headers
-----------------
uvicorn trusts ``X-Forwarded-For`` from 127.0.0.1 unless told otherwise; an IP allow-list
would then believe any local process that claims another address. Here nobody is trusted unless
``--forwarded-allow-ips`` names the proxies (:func:`trusted_proxies`), and the value is always
passed explicitly, so uvicorn's ``FORWARDED_ALLOW_IPS`` environment variable is never read.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import signal
import socket
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI

from perpx.engine.state import state_hash
from perpx.server.app import create_admin_app, create_app, start_venue, stop_venue
from perpx.server.context import ServerContext

log = logging.getLogger("perpx.serve")

BACKLOG = 2048
NOTSENT_LOWAT_BYTES = 16 * 1024
USER_TIMEOUT_MS = 30_000
_NOTSENT_LOWAT = getattr(socket, "TCP_NOTSENT_LOWAT", 25 if sys.platform == "linux" else None)
_USER_TIMEOUT = getattr(socket, "TCP_USER_TIMEOUT", None)
GRACE_S = 5.0
"""On a stop, requests in flight get this long to finish before their connections are dropped."""
WS_PING_INTERVAL_S = 20.0
WS_PING_TIMEOUT_S = 20.0
"""Every WebSocket is pinged this often and closed (1011) when no pong comes back within the timeout:
the one rule that also catches a client whose kernel keeps taking data its application never reads."""


class ListenError(RuntimeError):
    """A listener cannot be opened; the message names the address and what to do (one line)."""


@dataclass(frozen=True, slots=True)
class Address:
    """Where a listener accepts connections (``port`` is the bound one, never 0)."""

    host: str
    port: int

    def url(self, scheme: str = "http") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"


@dataclass
class Listeners:
    """The bound, listening sockets: the public one, and the admin one unless it is off."""

    public: socket.socket
    admin: socket.socket | None
    public_address: Address
    admin_address: Address | None

    def close(self) -> None:
        self.public.close()
        if self.admin is not None:
            self.admin.close()


def bind_listeners(host: str, port: int, admin_host: str, admin_port: int | None) -> Listeners:
    """Bind and listen on the public socket and (unless ``admin_port`` is ``None``) the admin one.

    Raises
    ------
    ListenError
        If either cannot be bound (in use, not an address of this host, not permitted); the
        other is closed again, so nothing stays bound.
    """
    public = _bind(host, port, "the public API", "--port")
    admin: socket.socket | None = None
    if admin_port is not None:
        try:
            admin = _bind(admin_host, admin_port, "the admin API", "--admin-port")
        except ListenError:
            public.close()
            raise
    return Listeners(
        public,
        admin,
        Address(host, public.getsockname()[1]),
        Address(admin_host, admin.getsockname()[1]) if admin is not None else None,
    )


def bind_fix(host: str, port: int) -> socket.socket:
    """Bind and listen on the FIX acceptor's socket (``perpx serve --fix-port``), like the other two.

    Raises
    ------
    ListenError
        If it cannot be bound; the message names the port and ``--fix-port``.
    """
    return _bind(host, port, "the FIX acceptor", "--fix-port")


def _bind(host: str, port: int, what: str, flag: str) -> socket.socket:
    where = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if _NOTSENT_LOWAT is not None:
            sock.setsockopt(socket.IPPROTO_TCP, _NOTSENT_LOWAT, NOTSENT_LOWAT_BYTES)
        if _USER_TIMEOUT is not None:
            sock.setsockopt(socket.IPPROTO_TCP, _USER_TIMEOUT, USER_TIMEOUT_MS)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise ListenError(_why_not(exc, where, what, flag, host)) from None
    return sock


def _why_not(exc: OSError, where: str, what: str, flag: str, host: str) -> str:
    if isinstance(exc, socket.gaierror):
        return f"cannot listen on {where} for {what}: {host!r} is not a host name or address of this machine"
    if exc.errno == errno.EADDRINUSE:
        return (
            f"cannot listen on {where} for {what}: the port is in use (another perpx serve?);"
            f" stop that process or choose another {flag}"
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"cannot listen on {where} for {what}: permission denied (ports below 1024 need privileges); choose another {flag}"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {where} for {what}: {host} is not an address of this machine"
    return f"cannot listen on {where} for {what}: {exc.strerror or exc}"


def trusted_proxies(text: str) -> list[str] | None:
    """The proxies ``--forwarded-allow-ips`` names (``None``: trust nobody, the default).

    ``text`` is comma-separated IP addresses and networks (``10.0.0.1,192.168.0.0/16``), or ``*``
    (trust every peer: only behind a proxy that strips what clients send).

    Raises
    ------
    ValueError
        If an entry is neither an address nor a network (uvicorn would silently compare it as a
        string and never match, so a typo would quietly trust nobody, or worse, be believed).
    """
    entries = [entry.strip() for entry in text.split(",") if entry.strip()]
    if not entries:
        return None
    if entries == ["*"]:
        return entries
    for entry in entries:
        try:
            if "/" in entry:
                ipaddress.ip_network(entry)
            else:
                ipaddress.ip_address(entry)
        except ValueError:
            raise ValueError(
                f"--forwarded-allow-ips: {entry!r} is not an IP address or network (or give '*' alone)"
            ) from None
    return entries


@dataclass(frozen=True, slots=True)
class StopReport:
    """What a stop left behind: the journal's last record, the snapshot, the state hash."""

    reason: str
    last_seq: int
    snapshot_seq: int | None
    state_hash: str | None
    problem: str | None = None

    def lines(self) -> list[str]:
        """What ``perpx serve`` prints when it stops."""
        snapshot = (
            f"snapshot written at record {self.snapshot_seq}"
            if self.snapshot_seq is not None
            else "no snapshot written"
        )
        lines = [f"perpx: stopped ({self.reason}) at journal record {self.last_seq}; {snapshot}"]
        if self.state_hash is not None:
            lines.append(f"perpx: state hash {self.state_hash}")
        if self.problem is not None:
            lines.append(f"perpx: {self.problem}")
        return lines


class _Listener(uvicorn.Server):
    """A uvicorn server that leaves signals alone: :class:`VenueServer` catches them once for both."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class VenueServer:
    """Both listeners of one opened venue on one asyncio loop; see the module docstring.

    Parameters
    ----------
    ctx
        The opened venue (:func:`perpx.server.context.open_venue`), not started yet.
    listeners
        The bound sockets (:func:`bind_listeners`); they are closed when serving ends.
    proxies
        The trusted proxies (:func:`trusted_proxies`); ``None`` trusts nobody.
    log_level
        uvicorn's log level.
    """

    def __init__(
        self,
        ctx: ServerContext,
        listeners: Listeners,
        *,
        proxies: list[str] | None = None,
        log_level: str = "warning",
    ) -> None:
        self.ctx = ctx
        self.listeners = listeners
        self.stopped_by: str | None = None
        self.servers: list[tuple[_Listener, socket.socket]] = [
            (_Listener(self._config(create_app(ctx), proxies, log_level)), listeners.public)
        ]
        if listeners.admin is not None:
            admin = _Listener(self._config(create_admin_app(ctx), proxies, log_level))
            self.servers.append((admin, listeners.admin))

    @staticmethod
    def _config(app: FastAPI, proxies: list[str] | None, log_level: str) -> uvicorn.Config:
        return uvicorn.Config(
            app,
            lifespan="off",
            log_level=log_level,
            ws="websockets-sansio",
            ws_ping_interval=WS_PING_INTERVAL_S,
            ws_ping_timeout=WS_PING_TIMEOUT_S,
            proxy_headers=proxies is not None,
            forwarded_allow_ips=proxies if proxies is not None else [],
            timeout_graceful_shutdown=int(GRACE_S),
        )

    def request_stop(self, reason: str = "stop requested") -> None:
        """Stop both listeners (then the venue); a second request stops waiting for open connections."""
        force = self.stopped_by is not None
        if not force:
            self.stopped_by = reason
        self.ctx.serving = False  # /ready turns 503 while requests in flight finish
        for server, _ in self.servers:
            server.should_exit = True
            server.force_exit = server.force_exit or force

    async def serve(self, on_ready: Callable[[], Awaitable[None]] | None = None) -> StopReport:
        """Start the venue, serve both listeners until stopped, stop the venue; report what was left.

        ``on_ready`` runs once both listeners accept connections (``perpx serve`` prints its
        banner there). SIGINT and SIGTERM stop the venue when this runs on the main thread.
        """
        loop = asyncio.get_running_loop()
        with self._signals(loop):
            problem: str | None = None
            try:
                await start_venue(self.ctx)
                problem = await self._serve_listeners(on_ready)
            finally:
                report = await self._stop_venue(problem, self.ctx.seq.failure)
        return report

    async def _serve_listeners(self, on_ready: Callable[[], Awaitable[None]] | None) -> str | None:
        tasks = [asyncio.create_task(server.serve(sockets=[sock])) for server, sock in self.servers]
        try:
            while not all(server.started for server, _ in self.servers):
                if any(task.done() for task in tasks) or self.stopped_by is not None:
                    break
                await asyncio.sleep(0.01)
            else:
                if on_ready is not None:
                    await on_ready()
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if self.stopped_by is None:
                self.request_stop("a listener stopped")
            results = await asyncio.gather(*tasks, return_exceptions=True)
            self.listeners.close()
        failed = [result for result in results if isinstance(result, BaseException)]
        if failed:
            log.error("a listener failed", exc_info=failed[0])
            return f"a listener failed: {type(failed[0]).__name__}: {failed[0]}"
        return None

    async def _stop_venue(self, problem: str | None, failure: str | None) -> StopReport:
        """Stop the venue and report; ``failure`` is why the engine had stopped before (``None``: it had not).

        It is read before stopping: afterwards the sequencer reports "stopped" either way.
        """
        try:
            await stop_venue(self.ctx)
        except Exception as exc:
            log.exception("stopping the venue failed")
            problem = (
                f"closing the venue failed ({type(exc).__name__}: {exc}); the next start replays the journal"
            )
        sequencer = self.ctx.seq
        if failure is not None:
            problem = f"the engine had stopped ({failure}); the next start replays the journal"
        clean = problem is None and failure is None
        last_seq = sequencer.last_seq
        return StopReport(
            reason=self.stopped_by or "stopped",
            last_seq=last_seq,
            snapshot_seq=last_seq if clean and last_seq > 0 else None,
            state_hash=state_hash(sequencer.engine) if failure is None else None,
            problem=problem,
        )

    @contextlib.contextmanager
    def _signals(self, loop: asyncio.AbstractEventLoop) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        caught = (signal.SIGINT, signal.SIGTERM)
        for sig in caught:
            loop.add_signal_handler(sig, self.request_stop, sig.name)
        try:
            yield
        finally:
            for sig in caught:
                loop.remove_signal_handler(sig)
