"""The running venue as the HTTP and WebSocket handlers see it, and its start-up path.

:func:`open_venue` opens the data directory (one recovery path: snapshot +
journal tail), lets every persistent component catch up on the records it has
not seen yet, and builds the sequencer. Components are the server's read
models and streams; each is a :class:`Component` registered in
``ctx.components`` and fed every applied batch by the sequencer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from perpx.engine.commands import Command
from perpx.engine.config import MarketSpec, VenueConfig
from perpx.engine.events import Event
from perpx.journal.store import RecoveryReport, Store, open_store
from perpx.server.auth import AdminGuard
from perpx.server.keys import KeyStore
from perpx.server.sequencer import Applied, Sequencer


class Component(Protocol):
    """A read model or stream fed by the sequencer.

    ``resume_seq`` is the last journal record a persistent component has applied (``None`` for an
    in-memory one, which starts from the current state instead); start-up replays every record
    after the smallest of these through ``on_applied``.
    """

    def resume_seq(self) -> int | None: ...

    def on_applied(self, batch: list[Applied]) -> None: ...

    def close(self) -> None: ...


@dataclass
class ServerContext:
    """Everything a handler needs; one per running server (``request.app.state.ctx``).

    ``serving`` is true from the moment the sequencer and the components have started until the
    venue begins to stop (``GET /ready`` answers 503 outside it). ``admin_guard`` holds the wrong
    admin token counts of both listeners.
    """

    config: VenueConfig
    data_dir: Path
    keys: KeyStore
    admin_token: str | None
    sequencer: Sequencer | None = None
    report: RecoveryReport | None = None
    components: dict[str, Any] = field(default_factory=dict)
    demo: bool = False
    serving: bool = False
    admin_guard: AdminGuard = field(default_factory=AdminGuard)

    @property
    def specs(self) -> dict[str, MarketSpec]:
        return {str(market): spec for market, spec in self.config.markets.items()}

    @property
    def atom(self) -> Decimal:
        return self.config.settlement.atom

    @property
    def seq(self) -> Sequencer:
        if self.sequencer is None:
            raise RuntimeError("the venue is not open yet")
        return self.sequencer

    def component(self, name: str) -> Any:
        return self.components[name]

    def close(self) -> None:
        if self.sequencer is not None:
            self.sequencer.stop()
        for component in reversed(list(self.components.values())):
            component.close()
        self.keys.close()


def admin_token_of(config: VenueConfig) -> str | None:
    """``PERPX_ADMIN_TOKEN`` from the environment, else ``[venue] admin_token``; ``None`` disables admin."""
    token = os.environ.get("PERPX_ADMIN_TOKEN")
    if token:
        return token
    venue = config.raw.get("venue", {})
    value = venue.get("admin_token") if isinstance(venue, dict) else None
    return str(value) if value else None


def open_venue(
    data_dir: Path,
    config_text: str | None,
    build_components: Any,
    *,
    tick_ms: int = 1000,
) -> ServerContext:
    """Open ``data_dir``, create the components, catch them up, and build the sequencer (not started).

    ``build_components(ctx) -> dict[str, Component]`` creates the read models and streams (they may
    read ``ctx.config`` and open files under ``ctx.data_dir``).
    """
    from perpx.journal.store import read_config

    data_dir.mkdir(parents=True, exist_ok=True)
    if config_text is None:
        config = read_config(data_dir)
    else:
        import tomllib

        from perpx.engine.config import parse_config

        config = parse_config(tomllib.loads(config_text))
    ctx = ServerContext(
        config=config,
        data_dir=data_dir,
        keys=KeyStore(data_dir / "admin.sqlite"),
        admin_token=admin_token_of(config),
    )
    ctx.components = dict(build_components(ctx))
    resume = [seq for c in ctx.components.values() if (seq := c.resume_seq()) is not None]
    observe_after = min(resume) if resume else None

    def observe(seq: int, command: Command, events: list[Event]) -> None:
        batch = [Applied(seq, command, events)]
        for component in ctx.components.values():
            after = component.resume_seq()
            if after is not None and seq > after:
                component.on_applied(batch)

    store: Store
    store, report = open_store(
        data_dir,
        config_text,
        observe=observe if observe_after is not None else None,
        observe_after=observe_after,
    )
    ctx.config = store.config
    ctx.report = report
    sequencer = Sequencer(store, manual_clock=store.config.clock == "manual", tick_ms=tick_ms)
    for component in ctx.components.values():
        sequencer.add_listener(component.on_applied)
    ctx.sequencer = sequencer
    return ctx
