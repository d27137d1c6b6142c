"""Public WebSocket market streams, as Binance USDS-M serves them (and ccxt.pro opens them).

Connections
-----------
``/ws``, ``/ws/<stream>``, ``/public/ws[/<n>]`` and ``/market/ws[/<n>]`` are raw
connections (events sent bare); ``/stream?streams=a/b``, ``/public/stream`` and
``/market/stream`` are combined (``{"stream": name, "data": event}``). A client
sends ``{"method": "SUBSCRIBE" | "UNSUBSCRIBE" | "LIST_SUBSCRIPTIONS" |
"SET_PROPERTY" | "GET_PROPERTY", "params": [...], "id": N}`` and gets
``{"result": ..., "id": N}`` or ``{"error": {"code", "msg"}, "id": N}``.
``/ws/<listenKey>`` is handed to the user-data stream.

A user data stream can also be subscribed by its listenKey on any connection, as Binance allows
(``{"method": "SUBSCRIBE", "params": ["<listenKey>"]}``: binance-futures-connector's
``UMFuturesWebsocketClient.user_data`` on ``/ws``, the official SDK on ``/private/stream``). Its
events then arrive on that connection (combined: ``{"stream": "<listenKey>", "data": event}``);
when the key expires or is deleted the connection gets ``listenKeyExpired`` and stays open for its
other streams. A name that is no active listenKey and no stream is refused (code 2).

Streams
-------
==============================  =================================================================
``<symbol>@depth[@100ms|@250ms|@500ms]``  diff depth, one event per batch that changed the book
``<symbol>@depth<5|10|20>[@100ms|@500ms]`` top levels every 250 ms (or the speed given) on change
``<symbol>@trade``, ``@aggTrade``         each public trade / aggregate trade
``<symbol>@bookTicker``                   best bid/ask on each change
``<symbol>@kline_<interval>``             the open candle every 250 ms while it trades; ``x`` at close
``<symbol>@markPrice[@1s]``, ``!markPrice@arr[@1s]``  mark, index and funding every 3 s (or 1 s)
``<symbol>@ticker``, ``@miniTicker``      rolling 24-hour statistics every second
``!ticker@arr``, ``!miniTicker@arr``      the same, every market, as one array every second
``!bookTicker``                           best bid/ask of every market on each change
==============================  =================================================================

Fan-out never blocks the sequencer: its listener (:meth:`StreamHub.on_applied`)
encodes each event once, only for streams someone watches, and hands the batch
to the event loop with ``call_soon_threadsafe``. Time-driven streams run as asyncio tasks.

Slow consumers
--------------
Each connection has its own queue and its own sender task, so a client that does not read holds
back nobody but itself. It is disconnected (close code 1008, ``too slow``) on the first of:

==========================================  ==================================================
rule                                        bound
==========================================  ==================================================
frames waiting in its queue                 more than :data:`QUEUE_FRAMES` (10,000)
one frame the socket does not take          for more than :data:`SEND_STALL_S` (5 s), checked
                                            every :data:`STALL_CHECK_MS`
==========================================  ==================================================

Once a client stops reading, the socket still takes frames until three buffers are full: the
client's own receive buffer, 16 KiB unsent in the server's kernel (``TCP_NOTSENT_LOWAT``, see
``listeners.py``) and 64 KiB in asyncio's transport. So a client that stops reading a fast stream
is dropped ``SEND_STALL_S`` after the stream has filled those, or when its queue overflows,
whichever is first. The close frame then gets :data:`CLOSE_TIMEOUT_S` to reach the socket; a client
that still reads nothing has its connection aborted by the kernel (``TCP_USER_TIMEOUT``, Linux).

A client's receive buffer can be large: Linux grows it while tiny (deflated) frames arrive, to
megabytes, so the server sees nothing stall for a long time. That client does not answer the
server's WebSocket pings either, and the listener closes it (1011) when a pong is 20 s late, pings
going out every 20 s (``listeners.py``). What the server holds for a slow client stays bounded
either way: its queue, 64 KiB in the transport and 16 KiB in the kernel.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
from fastapi import APIRouter, WebSocket

from perpx.engine.config import MarketSpec
from perpx.engine.engine import Engine
from perpx.engine.values import NS_PER_MS, MarketId
from perpx.server.context import ServerContext
from perpx.server.errors import ApiError
from perpx.server.marketdata.candles import INTERVALS, Candle, Ticker, interval_open
from perpx.server.marketdata.depth import BookChanges, BookTop, DepthDiff, DepthSnapshot, DepthTracker
from perpx.server.marketdata.trades import AggTrade, Trade, TradeStore, public_trades
from perpx.server.public import levels, premium_json, quote, ticker_figures
from perpx.server.sequencer import Applied
from perpx.server.wire import price, qty

if TYPE_CHECKING:
    from perpx.server.userstream import Connection as UserConnection

log = logging.getLogger("perpx.streams")

router = APIRouter()

MAX_STREAMS = 1024
"""Streams one connection may hold (Binance's limit)."""
QUEUE_FRAMES = 10_000
"""Frames a connection may have waiting; one more and it is disconnected as too slow."""
SEND_STALL_S = 5.0
"""A frame its socket has not taken for this long shows the client is not reading: it is disconnected."""
STALL_CHECK_MS = 500
CLOSE_TIMEOUT_S = 5.0
"""How long a disconnect waits to hand its close frame to the socket before giving up on it."""
PARTIAL_SPEEDS_MS = (100, 250, 500)
KLINE_PUSH_MS = 250
TICKER_PUSH_MS = 1000
MARK_PUSH_MS = 1000
TICKER_KINDS = ("ticker", "miniTicker", "tickerAll", "miniTickerAll")

_encode = msgspec.json.Encoder().encode


def dumps(value: Any) -> str:
    return _encode(value).decode()


@dataclass(frozen=True, slots=True)
class Feed:
    """What a stream name asks for: ``kind`` of ``market`` with its argument (levels, interval)."""

    kind: str
    market: str = ""
    arg: str = ""
    speed_ms: int = 0


ALL_BOOK_TICKERS = Feed("bookTickerAll")
ALL_MARKET_FEEDS = {
    "!ticker@arr": Feed("tickerAll"),
    "!miniTicker@arr": Feed("miniTickerAll"),
    "!bookTicker": ALL_BOOK_TICKERS,
}
"""The all-market streams other than ``!markPrice@arr``, by name."""


def parse_stream(name: str, markets: Collection[str]) -> Feed:
    """The feed of a Binance stream name (symbol in any case).

    Raises
    ------
    ValueError
        If the name is not a stream this venue serves; the message says why.
    """
    if name in ("!markPrice@arr", "!markPrice@arr@1s"):
        return Feed("markPriceAll", speed_ms=1000 if name.endswith("@1s") else 3000)
    if name in ALL_MARKET_FEEDS:
        return ALL_MARKET_FEEDS[name]
    symbol, sep, rest = name.partition("@")
    if not sep or not symbol:
        raise ValueError(f"'{name}' is not <symbol>@<stream>")
    market = symbol.upper()
    if market not in markets:
        raise ValueError(f"'{name}': no market {market}")
    if rest in ("trade", "aggTrade", "bookTicker", "ticker", "miniTicker"):
        return Feed(rest, market)
    if rest in ("markPrice", "markPrice@1s"):
        return Feed("markPrice", market, speed_ms=1000 if rest.endswith("@1s") else 3000)
    if rest.startswith("kline_"):
        interval = rest.removeprefix("kline_")
        if interval not in INTERVALS:
            raise ValueError(f"'{name}': interval {interval!r} is not one of {', '.join(INTERVALS)}")
        return Feed("kline", market, interval)
    body, _, speed = rest.partition("@")
    speeds = {"": 250, "0ms": 0, "100ms": 100, "250ms": 250, "500ms": 500}
    if speed not in speeds:
        raise ValueError(f"'{name}': update speed {speed!r} is not 100ms, 250ms or 500ms")
    if body == "depth":
        return Feed("depth", market)
    if body in ("depth5", "depth10", "depth20"):
        return Feed("partial", market, body.removeprefix("depth"), max(speeds[speed], 100))
    raise ValueError(f"'{name}': unknown stream '{rest}'")


# ---------------------------------------------------------------------------------------------- payloads


def depth_event(spec: MarketSpec, diff: DepthDiff) -> dict[str, Any]:
    ts = diff.ts_ns // NS_PER_MS
    return {
        "e": "depthUpdate",
        "E": ts,
        "T": ts,
        "s": diff.market,
        "U": diff.first_seq,
        "u": diff.last_seq,
        "pu": diff.previous_seq,
        "b": levels(spec, diff.bids),
        "a": levels(spec, diff.asks),
    }


def partial_event(
    spec: MarketSpec, snap: DepthSnapshot, bounds: tuple[int, int, int] | None
) -> dict[str, Any]:
    ts = snap.now_ns // NS_PER_MS
    first, last, previous = (
        bounds if bounds is not None and bounds[1] == snap.update_id else (snap.update_id,) * 3
    )
    return {
        "e": "depthUpdate",
        "E": ts,
        "T": ts,
        "s": snap.market,
        "U": first,
        "u": last,
        "pu": previous,
        "b": levels(spec, snap.bids),
        "a": levels(spec, snap.asks),
    }


def trade_event(spec: MarketSpec, trade: Trade) -> dict[str, Any]:
    return {
        "e": "trade",
        "E": trade.ts_ms,
        "T": trade.ts_ms,
        "s": trade.market,
        "t": trade.trade_id,
        "p": price(spec, trade.price_ticks),
        "q": qty(spec, trade.qty_lots),
        "X": "MARKET",
        "m": trade.buyer_maker,
    }


def agg_trade_event(spec: MarketSpec, agg: AggTrade) -> dict[str, Any]:
    return {
        "e": "aggTrade",
        "E": agg.ts_ms,
        "a": agg.agg_id,
        "s": agg.market,
        "p": price(spec, agg.price_ticks),
        "q": qty(spec, agg.qty_lots),
        "f": agg.agg_id,
        "l": agg.last_id,
        "T": agg.ts_ms,
        "m": agg.buyer_maker,
    }


def book_ticker_event(spec: MarketSpec, top: BookTop) -> dict[str, Any]:
    ts = top.ts_ns // NS_PER_MS
    bid = top.bid or (None, 0)
    ask = top.ask or (None, 0)
    return {
        "e": "bookTicker",
        "u": top.update_id,
        "E": ts,
        "T": ts,
        "s": top.market,
        "b": price(spec, bid[0]),
        "B": qty(spec, bid[1]),
        "a": price(spec, ask[0]),
        "A": qty(spec, ask[1]),
    }


def kline_event(spec: MarketSpec, interval: str, candle: Candle, now_ms: int) -> dict[str, Any]:
    return {
        "e": "kline",
        "E": now_ms,
        "s": spec.market,
        "k": {
            "t": candle.open_ms,
            "T": candle.close_ms,
            "s": spec.market,
            "i": interval,
            "f": candle.first_id,
            "L": candle.last_id,
            "o": price(spec, candle.open_ticks),
            "c": price(spec, candle.close_ticks),
            "h": price(spec, candle.high_ticks),
            "l": price(spec, candle.low_ticks),
            "v": qty(spec, candle.volume_lots),
            "n": candle.count,
            "x": now_ms > candle.close_ms,
            "q": quote(spec, candle.quote_units),
            "V": qty(spec, candle.buy_lots),
            "Q": quote(spec, candle.buy_quote_units),
            "B": "0",
        },
    }


def ticker_event(spec: MarketSpec, ticker: Ticker, mini: bool) -> dict[str, Any]:
    """A ``24hrMiniTicker`` (``mini``) or ``24hrTicker`` event of one market."""
    base = {
        "E": ticker.close_ms,
        "s": ticker.market,
        "c": price(spec, ticker.last_ticks),
        "o": price(spec, ticker.open_ticks),
        "h": price(spec, ticker.high_ticks),
        "l": price(spec, ticker.low_ticks),
        "v": qty(spec, ticker.volume_lots),
        "q": quote(spec, ticker.quote_units),
    }
    if mini:
        return {"e": "24hrMiniTicker", **base}
    figures = ticker_figures(spec, ticker)
    return {
        "e": "24hrTicker",
        **base,
        "p": figures["priceChange"],
        "P": figures["priceChangePercent"],
        "w": figures["weightedAvgPrice"],
        "Q": qty(spec, ticker.last_lots),
        "O": ticker.open_ms,
        "C": ticker.close_ms,
        "F": ticker.first_id,
        "L": ticker.last_id,
        "n": ticker.count,
    }


def mark_event(spec: MarketSpec, premium: dict[str, Any]) -> dict[str, Any]:
    return {
        "e": "markPriceUpdate",
        "E": premium["time"],
        "s": spec.market,
        "p": premium["markPrice"],
        "i": premium["indexPrice"],
        "P": premium["estimatedSettlePrice"],
        "r": premium["lastFundingRate"],
        "T": premium["nextFundingTime"],
    }


# ---------------------------------------------------------------------------------------------- hub


class Connection:
    """One client socket: its subscriptions (name -> feed) and its bounded send queue."""

    def __init__(self, websocket: WebSocket, combined: bool, max_frames: int) -> None:
        self.websocket = websocket
        self.combined = combined
        self.queue: asyncio.Queue[str] = asyncio.Queue(max_frames)
        self.names: dict[str, Feed] = {}
        self.users: dict[str, tuple[UserConnection, asyncio.Task[None]]] = {}
        """User data streams subscribed by listenKey: the stream's connection and its forwarder."""
        self.dropped = False
        self.done = asyncio.Event()
        self.sending_since: float | None = None
        """Loop time at which the frame being sent was handed to the socket (``None``: not sending)."""

    def send(self, frame: str) -> bool:
        """Queue ``frame``; ``False`` when the queue is full."""
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            return False
        return True

    def publish(self, name: str, text: str) -> bool:
        if self.combined:
            return self.send(f'{{"stream":{dumps(name)},"data":{text}}}')
        return self.send(text)


class StreamHub:
    """The ``streams`` component: subscriptions, the sequencer-side encoder and the timed pushes."""

    def __init__(
        self,
        ctx: ServerContext,
        store: TradeStore,
        depth: DepthTracker,
        max_frames: int = QUEUE_FRAMES,
        stall_s: float = SEND_STALL_S,
    ) -> None:
        self.ctx = ctx
        self.store = store
        self.depth = depth
        self.max_frames = max_frames
        self.stall_s = stall_s
        self.slow_drops = 0
        """Clients disconnected as too slow since the start."""
        self.closed = 0
        """Client connections ended for any other reason since the start (``perpx_ws_disconnects_total``)."""
        self.loop: asyncio.AbstractEventLoop | None = None
        self.subscribers: dict[Feed, dict[Connection, str]] = {}
        self.connections: set[Connection] = set()
        # read by the sequencer's pipeline: replaced whole, never mutated
        self.active: frozenset[Feed] = frozenset()
        self.trade_markets: frozenset[str] = frozenset()
        self.now_ns = 0
        self._last_now_ns = 0
        self._kline_dirty: set[str] = set()
        self._kline_open: dict[Feed, int] = {}
        self._partial_sent: dict[Feed, int] = {}
        self._fresh: set[Feed] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._mark_ticks = 0

    # ------------------------------------------------------------------ component

    def resume_seq(self) -> int | None:
        return None

    def close(self) -> None:
        pass

    def on_applied(self, batch: list[Applied], book: BookChanges) -> None:
        """Encode the batch's events for watched streams and hand them to the loop (sequencer's pipeline).

        ``book`` is what the depth tracker made of the same batch (it is fed first and hands its
        product over: :meth:`perpx.server.components.Components.listeners`).
        """
        loop = self.loop
        active = self.active
        if loop is None or not active:
            return
        now_ns = batch[-1].command.ts_ns
        specs = self.ctx.config.markets
        out: list[tuple[Feed, str]] = []
        for diff in book.diffs:
            feed = Feed("depth", diff.market)
            if feed in active:
                out.append((feed, dumps(depth_event(specs[diff.market], diff))))
        every_top = ALL_BOOK_TICKERS in active
        for top in book.tops:
            feed = Feed("bookTicker", top.market)
            if feed in active or every_top:
                text = dumps(book_ticker_event(specs[top.market], top))
                if feed in active:
                    out.append((feed, text))
                if every_top:
                    out.append((ALL_BOOK_TICKERS, text))
        dirty: set[str] = set()
        if self.trade_markets:
            for applied in batch:
                trades, aggs = public_trades(applied)
                for trade in trades:
                    dirty.add(trade.market)
                    feed = Feed("trade", trade.market)
                    if feed in active:
                        out.append((feed, dumps(trade_event(specs[trade.market], trade))))
                for agg in aggs:
                    feed = Feed("aggTrade", agg.market)
                    if feed in active:
                        out.append((feed, dumps(agg_trade_event(specs[agg.market], agg))))
        if out or dirty or now_ns != self._last_now_ns:
            self._last_now_ns = now_ns
            loop.call_soon_threadsafe(self._dispatch, out, dirty, now_ns)

    def _dispatch(self, out: list[tuple[Feed, str]], dirty: set[str], now_ns: int) -> None:
        self.now_ns = max(self.now_ns, now_ns)
        self._kline_dirty |= dirty
        for feed, text in out:
            self._fan_out(feed, text)

    def _fan_out(self, feed: Feed, text: str) -> None:
        subscribers = self.subscribers.get(feed)
        if not subscribers:
            return
        for conn, name in list(subscribers.items()):
            if not conn.publish(name, text):
                self._drop(conn, f"more than {self.max_frames} frames waiting")

    def _drop(self, conn: Connection, why: str) -> None:
        """Disconnect a client that cannot keep up (see the module docstring)."""
        if conn.dropped:
            return
        conn.dropped = True
        self.slow_drops += 1
        peer = getattr(conn.websocket, "client", None)  # hub tests connect no socket
        log.warning(
            "dropping a slow WebSocket client %s: %s (%d frames waiting)",
            f"{peer.host}:{peer.port}" if peer is not None else "?",
            why,
            conn.queue.qsize(),
        )
        self._forget(conn)
        conn.done.set()

    async def _drop_stalled(self) -> None:
        now = asyncio.get_running_loop().time()
        for conn in list(self.connections):
            since = conn.sending_since
            if since is not None and now - since > self.stall_s:
                self._drop(conn, f"its socket took no frame for {now - since:.1f} s")

    # ------------------------------------------------------------------ subscriptions (loop)

    def _republish(self) -> None:
        self.active = frozenset(self.subscribers)
        self.trade_markets = frozenset(
            feed.market for feed in self.subscribers if feed.kind in ("trade", "aggTrade", "kline")
        )

    def subscribe(self, conn: Connection, names: list[str]) -> None:
        """Subscribe ``conn`` to every name, or to none (``ValueError`` names the first bad one).

        A name that is an active listenKey subscribes the user data stream of its account.
        """
        markets = self.ctx.config.markets
        built = self.ctx.built
        keys = built.userstream.keys if built is not None else {}
        listen_keys = [name for name in names if name in keys]
        streams = [name for name in names if name not in keys]
        feeds = [parse_stream(name, markets) for name in streams]
        if len(set(conn.names) | set(conn.users) | set(names)) > MAX_STREAMS:
            raise ValueError(f"a connection may hold at most {MAX_STREAMS} streams")
        for listen_key in listen_keys:
            if listen_key not in conn.users:
                self._subscribe_user(conn, listen_key)
        for name, feed in zip(streams, feeds, strict=True):
            if name in conn.names:
                continue
            conn.names[name] = feed
            self.subscribers.setdefault(feed, {})[conn] = name
            if feed.kind in ("partial", "kline", *TICKER_KINDS):
                self._fresh.add(feed)
        self._republish()

    def _subscribe_user(self, conn: Connection, listen_key: str) -> None:
        """Attach ``conn`` to the user data stream of ``listen_key`` (an active key) and forward it."""
        try:
            user = self.ctx.components.userstream.attach(listen_key)
        except ApiError as exc:
            raise ValueError(f"listenKey {listen_key[:8]}...: {exc.msg}") from None
        task = asyncio.get_running_loop().create_task(self._forward_user(conn, listen_key, user))
        conn.users[listen_key] = (user, task)

    async def _forward_user(self, conn: Connection, listen_key: str, user: UserConnection) -> None:
        """Publish the user stream's events on ``conn`` until the key ends or ``conn`` unsubscribes."""
        while True:
            payload = await user.queue.get()
            if payload is None:
                conn.users.pop(listen_key, None)
                return
            if not conn.publish(listen_key, dumps(payload)):
                self._drop(conn, f"more than {self.max_frames} frames waiting")
                return

    def _unsubscribe_user(self, conn: Connection, listen_key: str) -> None:
        entry = conn.users.pop(listen_key, None)
        if entry is None:
            return
        user, task = entry
        task.cancel()
        self.ctx.components.userstream._detach(user)

    def unsubscribe(self, conn: Connection, names: list[str]) -> None:
        for name in names:
            if name in conn.users:
                self._unsubscribe_user(conn, name)
                continue
            feed = conn.names.pop(name, None)
            if feed is None:
                continue
            subscribers = self.subscribers.get(feed)
            if subscribers is not None:
                subscribers.pop(conn, None)
                if not subscribers:
                    del self.subscribers[feed]
        self._republish()

    def _forget(self, conn: Connection) -> None:
        self.unsubscribe(conn, [*conn.names, *conn.users])
        self.connections.discard(conn)

    def request(self, conn: Connection, text: str) -> str:
        """Answer one client message (Binance's error codes: 0 property, 1 type, 2 request, 3 JSON)."""
        try:
            message = json.loads(text)
        except ValueError as exc:
            return dumps({"error": {"code": 3, "msg": f"Invalid JSON: {exc}"}, "id": None})
        if not isinstance(message, dict):
            return dumps({"error": {"code": 2, "msg": "Invalid request: expected a JSON object"}, "id": None})
        request_id = message.get("id")
        if request_id is not None and (isinstance(request_id, bool) or not isinstance(request_id, int | str)):
            return dumps(
                {"error": {"code": 1, "msg": "Invalid value type: id must be an integer"}, "id": None}
            )

        def error(code: int, msg: str) -> str:
            return dumps({"error": {"code": code, "msg": msg}, "id": request_id})

        method = message.get("method")
        params = message.get("params", [])
        if not isinstance(params, list):
            return error(1, "Invalid value type: params must be a list")
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not params or not all(isinstance(p, str) for p in params):
                return error(2, "Invalid request: params must be a non-empty list of stream names")
            try:
                if method == "SUBSCRIBE":
                    self.subscribe(conn, params)
                else:
                    self.unsubscribe(conn, params)
            except ValueError as exc:
                return error(2, f"Invalid request: {exc}")
            return dumps({"result": None, "id": request_id})
        if method == "LIST_SUBSCRIPTIONS":
            return dumps({"result": [*conn.names, *conn.users], "id": request_id})
        if method == "SET_PROPERTY":
            if len(params) != 2 or params[0] != "combined" or not isinstance(params[1], bool):
                return error(0, "Unknown property: only ['combined', true|false] can be set")
            conn.combined = params[1]
            return dumps({"result": None, "id": request_id})
        if method == "GET_PROPERTY":
            if params != ["combined"]:
                return error(0, "Unknown property: only 'combined' can be read")
            return dumps({"result": conn.combined, "id": request_id})
        return error(2, f"Invalid request: unknown method {method!r}")

    # ------------------------------------------------------------------ serving one socket

    async def serve(self, websocket: WebSocket, names: list[str], combined: bool) -> None:
        """Run one client connection until it closes, fails or falls behind."""
        await websocket.accept()
        conn = Connection(websocket, combined, self.max_frames)
        self.connections.add(conn)
        if names:
            try:
                self.subscribe(conn, names)
            except ValueError as exc:
                conn.send(dumps({"error": {"code": 2, "msg": f"Invalid request: {exc}"}, "id": None}))
        tasks = [
            asyncio.create_task(self._send_loop(conn)),
            asyncio.create_task(self._receive_loop(conn)),
            asyncio.create_task(conn.done.wait()),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._forget(conn)
            if not conn.dropped:
                self.closed += 1
            # a client that reads nothing cannot take the close frame either: give up after a while
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    if conn.dropped:
                        await websocket.close(code=1008, reason="too slow: not reading its stream")
                    else:
                        await websocket.close()

    async def _send_loop(self, conn: Connection) -> None:
        loop = asyncio.get_running_loop()
        while True:
            frame = await conn.queue.get()
            conn.sending_since = loop.time()
            await conn.websocket.send_text(frame)
            conn.sending_since = None

    async def _receive_loop(self, conn: Connection) -> None:
        while True:
            message = await conn.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                raw = message.get("bytes") or b""
                text = raw.decode("utf-8", errors="replace")
            if not conn.send(self.request(conn, text)):
                self._drop(conn, f"more than {self.max_frames} frames waiting")
                return

    # ------------------------------------------------------------------ timed streams (loop)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        jobs: list[tuple[int, Callable[[], Awaitable[None]]]] = [
            (KLINE_PUSH_MS, self._push_klines),
            (TICKER_PUSH_MS, self._push_tickers),
            (MARK_PUSH_MS, self._push_marks),
            (STALL_CHECK_MS, self._drop_stalled),
        ]
        jobs += [(speed, self._partial_pusher(speed)) for speed in PARTIAL_SPEEDS_MS]
        self._tasks = [loop.create_task(self._every(period, job)) for period, job in jobs]

    async def stop(self) -> None:
        self.loop = None  # the sequencer may still apply a last batch; nothing is handed over now
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for conn in list(self.connections):
            conn.done.set()

    async def _every(self, period_ms: int, job: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(period_ms / 1000)
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("stream job %s failed", getattr(job, "__name__", job))

    def _feeds(self, kind: str) -> list[Feed]:
        return [feed for feed in self.subscribers if feed.kind == kind]

    def _partial_pusher(self, speed_ms: int) -> Callable[[], Awaitable[None]]:
        async def push_partial() -> None:
            feeds = [feed for feed in self._feeds("partial") if feed.speed_ms == speed_ms]
            if not feeds:
                return
            depth = self.depth
            wanted: dict[str, int] = {}
            for feed in feeds:
                wanted[feed.market] = max(wanted.get(feed.market, 0), int(feed.arg))

            def read(engine: Engine) -> dict[str, tuple[DepthSnapshot, tuple[int, int, int] | None]]:
                return {
                    market: (
                        depth.snapshot(engine, MarketId(market), n),
                        depth.last_bounds.get(MarketId(market)),
                    )
                    for market, n in wanted.items()
                }

            snaps = await self.ctx.seq.query(read)
            specs = self.ctx.config.markets
            for feed in feeds:
                snap, bounds = snaps[feed.market]
                if self._partial_sent.get(feed) == snap.update_id and feed not in self._fresh:
                    continue
                self._partial_sent[feed] = snap.update_id
                self._fresh.discard(feed)
                n = int(feed.arg)
                top = DepthSnapshot(snap.market, snap.update_id, snap.now_ns, snap.bids[:n], snap.asks[:n])
                self._fan_out(feed, dumps(partial_event(specs[snap.market], top, bounds)))

        return push_partial

    async def _push_klines(self) -> None:
        feeds = self._feeds("kline")
        if not feeds:
            return
        store = self.store
        specs = self.ctx.config.markets
        now_ms = max(self.now_ns // NS_PER_MS, store.now_ms)
        dirty, self._kline_dirty = self._kline_dirty, set()
        for feed in feeds:
            current = interval_open(feed.arg, now_ms)
            previous = self._kline_open.get(feed)
            closing = previous is not None and previous < current
            fresh = feed in self._fresh
            if not (closing or fresh or feed.market in dirty):
                continue
            self._fresh.discard(feed)
            self._kline_open[feed] = current
            candles = await asyncio.to_thread(store.klines, feed.market, feed.arg, 2, None, None, now_ms)
            spec = specs[MarketId(feed.market)]
            for candle in candles:
                if candle.open_ms == current or (closing and candle.open_ms == previous):
                    self._fan_out(feed, dumps(kline_event(spec, feed.arg, candle, now_ms)))

    async def _push_tickers(self) -> None:
        feeds = [feed for feed in self.subscribers if feed.kind in TICKER_KINDS]
        if not feeds:
            return
        store = self.store
        specs = self.ctx.config.markets
        everything = any(feed.kind.endswith("All") for feed in feeds)
        markets = sorted(specs) if everything else sorted({MarketId(feed.market) for feed in feeds})
        tickers = await asyncio.to_thread(lambda: {m: store.ticker(m) for m in markets})
        for feed in feeds:
            self._fresh.discard(feed)
            mini = feed.kind.startswith("mini")
            if feed.kind.endswith("All"):
                events = [ticker_event(specs[m], tickers[m], mini) for m in markets]
                self._fan_out(feed, dumps(events))
            else:
                market = MarketId(feed.market)
                self._fan_out(feed, dumps(ticker_event(specs[market], tickers[market], mini)))

    async def _push_marks(self) -> None:
        self._mark_ticks += 1
        due = [
            feed
            for feed in self.subscribers
            if feed.kind in ("markPrice", "markPriceAll")
            and self._mark_ticks % (feed.speed_ms // MARK_PUSH_MS) == 0
        ]
        if not due:
            return
        specs = self.ctx.config.markets
        everything = any(feed.kind == "markPriceAll" for feed in due)
        markets = sorted(specs) if everything else sorted({MarketId(feed.market) for feed in due})
        now_ns, views = await self.ctx.seq.query(
            lambda engine: (engine.now_ns, [engine.pricing.view(m) for m in markets])
        )
        events = {
            m: mark_event(specs[m], premium_json(specs[m], v, now_ns))
            for m, v in zip(markets, views, strict=True)
        }
        for feed in due:
            if feed.kind == "markPriceAll":
                self._fan_out(feed, dumps(list(events.values())))
            else:
                self._fan_out(feed, dumps(events[MarketId(feed.market)]))


# ---------------------------------------------------------------------------------------------- wiring


async def on_start(ctx: ServerContext) -> None:
    hub = ctx.components.streams
    hub.start(asyncio.get_running_loop())


async def on_stop(ctx: ServerContext) -> None:
    await ctx.components.streams.stop()


def _hub(websocket: WebSocket) -> StreamHub:
    ctx: ServerContext = websocket.app.state.ctx
    return ctx.components.streams


def _looks_like_listen_key(part: str) -> bool:
    return len(part) >= 16 and "@" not in part and not part.startswith("!") and part.isalnum()


async def raw_stream(websocket: WebSocket, tail: str = "") -> None:
    """A raw connection; ``tail`` may name streams (``btcusdt@depth``), a connection index, or a listenKey."""
    parts = [part for part in tail.split("/") if part and not part.isdigit()]
    if len(parts) == 1 and _looks_like_listen_key(parts[0]):
        from perpx.server import userstream

        serve_private = getattr(userstream, "serve_private", None)
        if serve_private is not None:
            await serve_private(websocket, parts[0], websocket.app.state.ctx)
            return
    await _hub(websocket).serve(websocket, parts, combined=False)


async def combined_stream(websocket: WebSocket) -> None:
    """A combined connection: ``?streams=a/b``; events arrive as ``{"stream", "data"}``."""
    streams = websocket.query_params.get("streams", "")
    names = [name for name in streams.split("/") if name]
    await _hub(websocket).serve(websocket, names, combined=True)


for _prefix in ("", "/public", "/market"):
    router.add_api_websocket_route(f"{_prefix}/ws", raw_stream)
    router.add_api_websocket_route(f"{_prefix}/ws/{{tail:path}}", raw_stream)
    router.add_api_websocket_route(f"{_prefix}/stream", combined_stream)
router.add_api_websocket_route("/private/stream", combined_stream)  # the official SDK's user streams
