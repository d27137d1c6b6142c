"""The server's read models and streams, typed, built in dependency order, fed as their products flow.

Two readers depend on what another reader makes of the same batch:

* the depth streams send the level diffs and book tops the depth tracker computed;
* the user data stream sends the order and algo messages the trading read model built.

Each such pair is fed by one listener that calls the producer, then hands its product to the
consumer (:meth:`Components.listeners`): no consumer reads a producer's state to learn what the last
batch did, and no result depends on the order in which listeners were registered.

Building order is the dependency order: a consumer is given its producer when it is made
(:meth:`Components.build`), so it cannot exist without it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from perpx.ops.proposals import PROPOSALS_FILE, ProposalBook
from perpx.server.adminlog import AdminLog
from perpx.server.context import Component, PersistentComponent, ServerContext
from perpx.server.countdowns import Countdowns
from perpx.server.health import ReadinessProbe
from perpx.server.lending_history import LoanHistory
from perpx.server.limits import RateLimiter, limits_from
from perpx.server.marketdata.depth import DepthTracker
from perpx.server.marketdata.trades import TradeStore
from perpx.server.metrics import Metrics
from perpx.server.readmodel import ReadModel
from perpx.server.sequencer import Applied
from perpx.server.streams import StreamHub
from perpx.server.userstream import UserStream
from perpx.server.wsapi.connections import WsApiConnections

if TYPE_CHECKING:
    from perpx.fix.gateway import FixGateway
    from perpx.server.demo import DemoComponent

MARKET_FILE = "market.sqlite"


@dataclass
class Components:
    """Every component of a running venue; ``demo`` only while ``perpx serve --demo`` runs one."""

    limits: RateLimiter
    marketdata: TradeStore
    depth: DepthTracker
    streams: StreamHub
    readmodel: ReadModel
    userstream: UserStream
    adminlog: AdminLog
    health: ReadinessProbe
    metrics: Metrics
    proposals: ProposalBook
    """Staged parameter changes (:mod:`perpx.ops.proposals`), kept in ``DATA/proposals.json``."""
    demo: DemoComponent | None = None
    fix: FixGateway | None = None
    countdowns: Countdowns = field(default_factory=Countdowns)
    lending: LoanHistory | None = None
    """The loan history (:mod:`perpx.server.lending_history`); set by :meth:`build`."""
    """``countdownCancelAll``'s deadlines: a sequencer driver, not a listener (no events in)."""
    wsapi: WsApiConnections = field(default_factory=WsApiConnections)
    """The WebSocket API's open connections (:mod:`perpx.server.wsapi`)."""

    @staticmethod
    def build(ctx: ServerContext) -> Components:
        """Every component, each after the ones it reads (they may open files under ``ctx.data_dir``)."""
        marketdata = TradeStore(ctx.data_dir / MARKET_FILE)
        depth = DepthTracker(ctx.config, lambda: ctx.seq.engine, lambda: ctx.seq.last_seq)
        readmodel = ReadModel(ctx)
        return Components(
            limits=RateLimiter(limits_from(ctx.config.raw, os.environ)),
            marketdata=marketdata,
            depth=depth,
            streams=StreamHub(ctx, marketdata, depth),
            readmodel=readmodel,
            userstream=UserStream(ctx, readmodel),
            adminlog=AdminLog(ctx.data_dir),
            health=ReadinessProbe(ctx),
            metrics=Metrics(ctx),
            proposals=ProposalBook.open(ctx.data_dir / PROPOSALS_FILE),
            lending=LoanHistory(ctx.data_dir),
        )

    def named(self) -> dict[str, Component]:
        """Every component by name, in building order (closed in reverse)."""
        named: dict[str, Component] = {
            "limits": self.limits,
            "marketdata": self.marketdata,
            "depth": self.depth,
            "streams": self.streams,
            "readmodel": self.readmodel,
            "userstream": self.userstream,
            "adminlog": self.adminlog,
            "health": self.health,
            "metrics": self.metrics,
        }
        if self.lending is not None:
            named["lending"] = self.lending
        if self.demo is not None:
            named["demo"] = self.demo
        if self.fix is not None:
            named["fix"] = self.fix
        return named

    def persistent(self) -> dict[str, PersistentComponent]:
        """The components that keep rows on disk and resume after the journal record they hold.

        Start-up replays the journal records each has not seen through its ``on_applied``
        (:data:`perpx.server.context.READ_MODELS` names their files).
        """
        stored: dict[str, PersistentComponent] = {
            "readmodel": self.readmodel,
            "marketdata": self.marketdata,
            "adminlog": self.adminlog,
        }
        if self.lending is not None:
            stored["lending"] = self.lending
        return stored

    def listeners(self) -> list[Callable[[list[Applied]], None]]:
        """What the sequencer calls with every applied batch, in this order."""
        return [
            self.marketdata.on_applied,
            self._feed_book,
            self._feed_orders,
            self.adminlog.on_applied,
            self.metrics.on_applied,
            *([self.lending.on_applied] if self.lending is not None else []),
        ]

    def _feed_book(self, batch: list[Applied]) -> None:
        """The depth tracker, then the public streams with the book changes it made of ``batch``."""
        changes = self.depth.on_applied(batch)
        self.streams.on_applied(batch, changes)
        if self.fix is not None:
            self.fix.marketdata.on_book(batch, changes)

    def _feed_orders(self, batch: list[Applied]) -> None:
        """The trading read model, then the user data stream with the messages it built.

        A read model that fails still lets the stream send its account updates (without order
        messages), as before it stopped; the failure is raised for the sequencer to log.
        """
        try:
            messages = self.readmodel.on_applied(batch)
        except Exception:
            self.userstream.on_applied(batch, [])
            raise
        self.userstream.on_applied(batch, messages)
        if self.fix is not None:
            self.fix.on_order_messages(messages)
