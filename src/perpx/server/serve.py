"""``perpx serve``: bind both listeners, open the data directory, serve, stop with a report.

Start-up, in this order (each step only when the one before succeeded):

1. Read which config to use and check the options (no file is created).
2. Bind the public and the admin sockets (:func:`perpx.server.listeners.bind_listeners`). A port
   in use is a one-line error: no data directory is created, nothing is recovered.
3. Open the venue: the journal's one recovery path (snapshot + tail), then the read models catch
   up (:func:`perpx.server.context.open_venue`); attach the demo if asked.
4. Start the sequencer and both listeners on one asyncio loop; once both accept connections,
   print the banner (and the demo's ccxt snippet, with the demo trader's current balance).

A clean stop (Ctrl-C, SIGTERM) closes the listeners, drains the sequencer, writes a snapshot and
prints the last journal record, the snapshot and the state hash. A crash loses nothing that was
acknowledged, because nothing is acknowledged before it is journaled.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Coroutine
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from perpx.build import engine_build
from perpx.console.demo_token import TOKEN_FILE, console_link, demo_admin_token
from perpx.journal.store import CONFIG_FILE
from perpx.ops.logs import LOG_FORMATS, LOG_LEVELS
from perpx.ops.logs import configure as configure_logs
from perpx.ops.logs import route_uvicorn as route_uvicorn_logs
from perpx.server.app import build_components
from perpx.server.context import ServerContext, open_venue
from perpx.server.limits import limits_from
from perpx.server.listeners import (
    Address,
    ListenError,
    StopReport,
    VenueServer,
    bind_fix,
    bind_listeners,
    trusted_proxies,
)


def demo_config_text() -> str:
    """The embedded demo venue (two index-priced markets, wall clock)."""
    return resources.files("perpx").joinpath("data/demo_venue.toml").read_text()


@dataclass(frozen=True)
class ServeOptions:
    """What ``perpx serve`` was asked for.

    ``admin_port``: ``None`` is ``port + 1`` (an ephemeral port too when ``port`` is 0), 0 turns
    the admin listener off. ``forwarded_allow_ips``: the proxies whose ``X-Forwarded-For`` is
    believed (comma-separated addresses or networks, or ``*``); empty believes nobody.
    """

    config_path: Path | None
    host: str
    port: int
    data_dir: Path
    demo: bool
    tick_ms: int = 1000
    log_level: str = "warning"
    log_format: str = "text"
    """``text`` or ``json`` (:mod:`perpx.ops.logs`)."""
    seed: int = 7
    rebuild_read_models: bool = False
    admin_host: str = "127.0.0.1"
    admin_port: int | None = None
    forwarded_allow_ips: str = ""
    fix_host: str = "127.0.0.1"
    fix_port: int | None = None
    """``None``: no FIX acceptor; 0 picks a free port."""
    public_metrics: bool = False
    """Serve ``/metrics`` on the public listener too (it is always on the admin one)."""


class ServeError(RuntimeError):
    """The server cannot start; the message says what to change."""


def config_text_for(options: ServeOptions) -> str | None:
    """The config to open the data directory with (``None``: the one stored there)."""
    if options.config_path is not None:
        try:
            return options.config_path.read_text()
        except OSError as exc:
            raise ServeError(f"cannot read --config {options.config_path}: {exc.strerror}") from exc
    if (options.data_dir / CONFIG_FILE).exists():
        return None
    if options.demo:
        return demo_config_text()
    raise ServeError(
        f"{options.data_dir} is a new data directory: give --config venue.toml (or --demo for the embedded demo venue)"
    )


def open_server(options: ServeOptions) -> ServerContext:
    """Open the venue in ``options.data_dir`` (recovering it) and attach the demo when asked."""
    text = config_text_for(options)
    ctx = open_venue(
        options.data_dir,
        text,
        build_components,
        tick_ms=options.tick_ms,
        rebuild_read_models=options.rebuild_read_models,
    )
    ctx.demo = options.demo
    if options.demo:
        from perpx.server.demo import attach_demo

        attach_demo(ctx, seed=options.seed)
    return ctx


def admin_port_of(options: ServeOptions) -> int | None:
    """The admin listener's port (``None``: off); see :class:`ServeOptions`.

    Raises
    ------
    ServeError
        If the default ``--port + 1`` is not a port, or the admin port is the public one.
    """
    if options.admin_port == 0:
        return None
    if options.admin_port is None:
        if options.port == 0:
            return 0
        if options.port + 1 > 65_535:
            raise ServeError(
                f"--admin-port defaults to --port + 1 = {options.port + 1}, which is not a port; give --admin-port"
            )
        return options.port + 1
    if options.admin_port == options.port:
        raise ServeError(
            f"--admin-port {options.admin_port} is the public port; the admin API needs a port of its own"
        )
    return options.admin_port


def run(options: ServeOptions, announce: bool = True) -> StopReport:
    """Serve until stopped (SIGINT, SIGTERM); print and return what the stop left behind.

    Raises
    ------
    ServeError
        Before anything is created or opened, when the options or a port do not allow a start.
    """
    if options.log_format not in LOG_FORMATS:
        raise ServeError(f"--log-format must be one of {', '.join(LOG_FORMATS)}, not {options.log_format!r}")
    if options.log_level not in LOG_LEVELS:
        raise ServeError(f"--log-level must be one of {', '.join(LOG_LEVELS)}, not {options.log_level!r}")
    configure_logs(options.log_format)
    config_text_for(options)  # a new directory without a config fails here, before any port is taken
    try:
        limits_from({}, os.environ)  # a bad PERPX_RATE_LIMIT_* fails here, before anything is created
        proxies = trusted_proxies(options.forwarded_allow_ips)
        listeners = bind_listeners(options.host, options.port, options.admin_host, admin_port_of(options))
    except (ValueError, ListenError) as exc:
        raise ServeError(str(exc)) from None
    fix_socket: socket.socket | None = None
    if options.fix_port is not None:
        try:
            fix_socket = bind_fix(options.fix_host, options.fix_port)
        except ListenError as exc:
            listeners.close()
            raise ServeError(str(exc)) from None
    try:
        ctx = open_server(options)
        demo_token = _demo_admin_token(ctx, options)
        ctx.components.metrics.public = options.public_metrics
        if fix_socket is not None:
            from perpx.fix.gateway import FixGateway

            ctx.components.fix = FixGateway(ctx, fix_socket)
    except ValueError as exc:  # a component refusing its settings (e.g. [server] limits): one line
        listeners.close()
        if fix_socket is not None:
            fix_socket.close()
        raise ServeError(str(exc)) from None
    except BaseException:
        listeners.close()
        if fix_socket is not None:
            fix_socket.close()
        raise
    server = VenueServer(ctx, listeners, proxies=proxies, log_level=options.log_level)
    route_uvicorn_logs(options.log_format)
    public, admin = listeners.public_address, listeners.admin_address

    async def ready() -> None:
        if announce:
            await _announce(ctx, public, admin, demo_token)

    report = _run_loop(server.serve(on_ready=ready))
    for line in report.lines():
        print(line, flush=True)
    return report


def _run_loop(main: Coroutine[Any, Any, StopReport]) -> StopReport:
    """Run the server on uvloop where it is installed (a faster loop, same semantics), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def _demo_admin_token(ctx: ServerContext, options: ServeOptions) -> str | None:
    """For ``--demo`` without a configured admin token: the demo's own (:mod:`perpx.console.demo_token`)."""
    if not options.demo or ctx.admin_token is not None or admin_port_of(options) is None:
        return None
    try:
        ctx.admin_token = demo_admin_token(options.data_dir)
    except OSError as exc:
        raise ValueError(f"cannot keep the demo's admin token in {options.data_dir}: {exc.strerror}") from exc
    return ctx.admin_token


async def _announce(
    ctx: ServerContext, public: Address, admin: Address | None, demo_token: str | None = None
) -> None:
    base, ws = public.url(), f"{public.url('ws')}/ws"
    print(f"perpx: venue '{ctx.config.name}' in {ctx.data_dir}; engine {engine_build()}", flush=True)
    for line in ctx.start_lines():
        print(f"perpx: recovery: {line}", flush=True)
    print(f"perpx: web console {base}/  REST {base}/fapi/v1  WebSocket {ws}  docs {base}/docs", flush=True)
    if admin is None:
        print("perpx: admin API off (--admin-port 0)", flush=True)
    elif ctx.admin_token is None:
        print(
            f"perpx: admin listener {admin.url()} refuses every call: set PERPX_ADMIN_TOKEN or [venue] admin_token",
            flush=True,
        )
    else:
        print(
            f"perpx: operator console {admin.url()}/  admin API {admin.url()}/admin/v1 (header X-PERPX-ADMIN)"
            f"  docs {admin.url()}/docs",
            flush=True,
        )
    if admin is not None and demo_token is not None:
        print(
            f"perpx: demo operator console, logged in: {console_link(admin.url(), demo_token)}"
            f"  (a token made for this data directory, in {ctx.data_dir / TOKEN_FILE};"
            " PERPX_ADMIN_TOKEN sets your own)",
            flush=True,
        )
    print(f"perpx: health {base}/health  readiness {base}/ready (on the admin port too)", flush=True)
    demo = ctx.components.demo
    if demo is not None:
        try:
            balance = await ctx.seq.query(demo.trader_balance)
        except Exception as exc:
            balance = f"unknown ({exc})"
        print(demo.snippet(base, ws, balance), flush=True)
    print("perpx: ready; Ctrl-C stops the venue (a snapshot is written)", flush=True)
