"""FIX market data: MarketDataRequest ``V`` answered with snapshots ``W`` and incremental refreshes ``X``.

A snapshot is the book as the REST depth endpoint reads it, with ``BookUpdateID(25044)`` equal to
REST's ``lastUpdateId``; an incremental refresh carries the levels one batch changed, with the
update id after it (the depth stream's ``u``), so a client can line up FIX and REST books. Levels
are ``MDUpdateAction`` 0 (a price the subscription had not seen), 1 (a new size) or 2 (gone);
trades (``MDEntryType`` 2) come from the batch's taker fills. ``MarketDepth`` limits the snapshot
(0 = full book); increments carry every changed level.

Refusals are MarketDataRequestReject ``Y``: an unknown symbol (281=0), a duplicate MDReqID
(281=1), an entry type other than bid, offer and trade (281=8).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from perpx.engine.config import MarketSpec
from perpx.engine.engine import Engine
from perpx.engine.events import OrderFilled
from perpx.engine.values import MarketId
from perpx.fix.codec import Field, FixMessage
from perpx.sequencing import Applied
from perpx.server import wire
from perpx.server.context import ServerContext
from perpx.server.marketdata.depth import BookChanges, DepthSnapshot, DepthTracker

ENTRY_TYPES = ("0", "1", "2")

Send = Callable[[str, tuple[Field, ...]], None]


@dataclass(slots=True)
class Subscription:
    """One MDReqID of one connection: its markets, entry types, and the levels it has been sent."""

    req_id: str
    markets: tuple[MarketId, ...]
    types: frozenset[str]
    send: Send
    levels: dict[tuple[MarketId, str], set[int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Trade:
    market: MarketId
    price_ticks: int
    qty_lots: int
    ts_ns: int


def _read_book(depth: DepthTracker, market: MarketId, limit: int | None, engine: Engine) -> DepthSnapshot:
    return depth.snapshot(engine, market, limit)


class MarketDataDesk:
    """Every FIX market-data subscription; fed the depth tracker's book changes with each batch."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.loop: asyncio.AbstractEventLoop | None = None
        self.subscriptions: dict[tuple[str, str], Subscription] = {}

    async def request(self, comp_id: str, message: FixMessage, send: Send) -> None:
        """Answer one ``V``: a snapshot per symbol, and a subscription when 263=1; 263=2 ends one."""
        req_id = message.get(262) or ""
        kind = message.get(263) or ""
        key = (comp_id, req_id)
        if kind == "2":
            self.subscriptions.pop(key, None)
            return
        types = message.all(269)
        bad = [t for t in types if t not in ENTRY_TYPES]
        if bad or not types:
            send(
                "Y",
                (
                    (262, req_id or "?"),
                    (281, "8"),
                    (58, f"MDEntryType must be 0, 1 or 2, not {bad or 'none'}"),
                ),
            )
            return
        symbols = message.all(55)
        specs: list[MarketSpec] = []
        for symbol in symbols:
            spec = self.ctx.specs.get(symbol)
            if spec is None:
                send("Y", ((262, req_id or "?"), (281, "0"), (58, f"unknown symbol {symbol!r}")))
                return
            specs.append(spec)
        if not specs:
            send("Y", ((262, req_id or "?"), (281, "0"), (58, "no symbol in NoRelatedSym(146)")))
            return
        if kind == "1" and key in self.subscriptions:
            send("Y", ((262, req_id), (281, "1"), (58, "this MDReqID is already subscribed")))
            return
        if kind not in ("0", "1"):
            send(
                "Y",
                ((262, req_id or "?"), (281, "0"), (58, "SubscriptionRequestType(263) must be 0, 1 or 2")),
            )
            return
        depth_text = message.get(264) or "0"
        limit = int(depth_text) if depth_text.isdigit() and int(depth_text) > 0 else None
        subscription = Subscription(req_id, tuple(spec.market for spec in specs), frozenset(types), send)
        depth = self.ctx.components.depth
        for spec in specs:
            snapshot = await self.ctx.seq.query(partial(_read_book, depth, spec.market, limit))
            send("W", self._snapshot(subscription, spec, snapshot))
        if kind == "1":
            self.subscriptions[key] = subscription

    def drop(self, comp_id: str) -> None:
        """The connection closed: its subscriptions end."""
        for key in [key for key in self.subscriptions if key[0] == comp_id]:
            del self.subscriptions[key]

    def _snapshot(
        self, subscription: Subscription, spec: MarketSpec, snapshot: DepthSnapshot
    ) -> tuple[Field, ...]:
        entries: list[Field] = []
        count = 0
        for side, entry_type, levels in (("bid", "0", snapshot.bids), ("ask", "1", snapshot.asks)):
            if entry_type not in subscription.types:
                continue
            subscription.levels[(spec.market, side)] = {price for price, _lots in levels}
            for price, lots in levels:
                entries += [(269, entry_type), (270, wire.price(spec, price)), (271, wire.qty(spec, lots))]
                count += 1
        fields: list[Field] = [
            (262, subscription.req_id),
            (55, str(spec.market)),
            (25044, str(snapshot.update_id)),
        ]
        if count == 0:
            return (*fields, (268, "0"))
        return (*fields, (268, str(count)), *entries)

    # ------------------------------------------------------------------ increments

    def on_book(self, batch: list[Applied], changes: BookChanges) -> None:
        """A batch's book changes and trades (journal thread): handed to the loop when anyone listens."""
        if not self.subscriptions or self.loop is None:
            return
        trades = [
            Trade(e.market, e.price_ticks, e.qty_lots, applied.command.ts_ns)
            for applied in batch
            for e in applied.events
            if isinstance(e, OrderFilled) and not e.is_maker
        ]
        if changes.diffs or trades:
            self.loop.call_soon_threadsafe(self._publish, changes, trades)

    def _publish(self, changes: BookChanges, trades: list[Trade]) -> None:
        for subscription in list(self.subscriptions.values()):
            for diff in changes.diffs:
                if diff.market not in subscription.markets:
                    continue
                spec = self.ctx.specs[str(diff.market)]
                entries: list[Field] = []
                for side, entry_type, levels in (("bid", "0", diff.bids), ("ask", "1", diff.asks)):
                    if entry_type not in subscription.types:
                        continue
                    known = subscription.levels.setdefault((diff.market, side), set())
                    for price, lots in levels:
                        if lots == 0:
                            action = "2"
                            known.discard(price)
                        else:
                            action = "1" if price in known else "0"
                            known.add(price)
                        entries += [(279, action), (269, entry_type), (270, wire.price(spec, price))]
                        if lots:
                            entries.append((271, wire.qty(spec, lots)))
                        entries.append((55, str(diff.market)))
                if entries:
                    count = sum(1 for tag, _ in entries if tag == 279)
                    subscription.send(
                        "X",
                        (
                            (262, subscription.req_id),
                            (25044, str(diff.last_seq)),
                            (268, str(count)),
                            *entries,
                        ),
                    )
            if "2" in subscription.types:
                for trade in trades:
                    if trade.market not in subscription.markets:
                        continue
                    spec = self.ctx.specs[str(trade.market)]
                    subscription.send(
                        "X",
                        (
                            (262, subscription.req_id),
                            (268, "1"),
                            (279, "0"),
                            (269, "2"),
                            (270, wire.price(spec, trade.price_ticks)),
                            (271, wire.qty(spec, trade.qty_lots)),
                            (55, str(trade.market)),
                        ),
                    )
