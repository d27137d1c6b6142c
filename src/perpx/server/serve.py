"""``perpx serve``: open the data directory, build the app, run it on uvicorn.

Start-up is the journal's one recovery path (snapshot + tail), then the read
models catch up, then the gateways open. A clean stop (Ctrl-C, SIGTERM)
drains the sequencer and writes a snapshot; a crash loses nothing that was
acknowledged, because nothing is acknowledged before it is journaled.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import uvicorn

from perpx.journal.store import CONFIG_FILE
from perpx.server.app import build_components, create_app
from perpx.server.context import ServerContext, open_venue


def demo_config_text() -> str:
    """The embedded demo venue (two index-priced markets, wall clock)."""
    return resources.files("perpx").joinpath("data/demo_venue.toml").read_text()


@dataclass(frozen=True)
class ServeOptions:
    config_path: Path | None
    host: str
    port: int
    data_dir: Path
    demo: bool
    tick_ms: int = 1000
    log_level: str = "warning"
    seed: int = 7
    rebuild_read_models: bool = False


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


def run(options: ServeOptions, announce: bool = True) -> None:
    """Serve until stopped."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx = open_server(options)
    app = create_app(ctx)
    if announce:
        _announce(ctx, options)
    config = uvicorn.Config(
        app, host=options.host, port=options.port, log_level=options.log_level, ws="websockets-sansio"
    )
    uvicorn.Server(config).run()


def _announce(ctx: ServerContext, options: ServeOptions) -> None:
    base = f"http://{options.host}:{options.port}"
    print(f"perpx: venue '{ctx.config.name}' in {ctx.data_dir}", flush=True)
    for line in ctx.start_lines():
        print(f"perpx: recovery: {line}", flush=True)
    print(
        f"perpx: REST {base}/fapi/v1  WebSocket ws://{options.host}:{options.port}/ws  docs {base}/docs",
        flush=True,
    )
    if ctx.admin_token is None:
        print("perpx: admin API disabled (set PERPX_ADMIN_TOKEN or [venue] admin_token)", flush=True)
    demo = ctx.components.get("demo")
    if demo is not None:
        print(demo.snippet(base, f"ws://{options.host}:{options.port}/ws"), flush=True)
