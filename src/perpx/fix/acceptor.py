"""The FIX acceptor: sockets around the sans-I/O :class:`~perpx.fix.session.Session`.

One asyncio task per connection reads frames, hands them to its session, writes what the session
answers and passes application messages, in order, to the :class:`Application` (the venue side:
orders, market data). A second task ticks the session once a second (heartbeats, test requests,
the logon timeout). Messages the venue produces for a CompID (:meth:`Acceptor.deliver`) go to its
connection when it is logged on, and into its session store otherwise, so a client that comes back
gets them by resend.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable
from typing import Protocol

from perpx.fix.codec import Field, FixMessage, FrameReader
from perpx.fix.session import Authenticate, Session, SessionState, sending_time
from perpx.fix.store import SessionStore

log = logging.getLogger("perpx.fix")

READ_BYTES = 64 * 1024
TICK_S = 1.0


class Application(Protocol):
    """The venue side of the gateway."""

    def on_logon(self, connection: Connection) -> None: ...

    async def on_message(self, connection: Connection, message: FixMessage) -> None: ...

    def on_close(self, connection: Connection) -> None: ...


class Connection:
    """One logged-on (or logging-on) client: its session and its socket's writer."""

    def __init__(self, acceptor: Acceptor, writer: asyncio.StreamWriter, now_ns: int) -> None:
        self.acceptor = acceptor
        self.writer = writer
        self.session = Session(
            acceptor.store, acceptor.authenticate, our_comp_id=acceptor.our_comp_id, now_ns=now_ns
        )
        self.logged_on = False

    @property
    def comp_id(self) -> str:
        return self.session.peer_comp_id

    @property
    def api_key(self) -> str:
        return self.session.api_key

    def send_app(self, msg_type: str, body: tuple[Field, ...]) -> None:
        """Store, then send, one application message on this session."""
        frame = self.session.send_app(msg_type, body, self.acceptor.clock())
        if frame is not None:
            self.writer.write(frame)

    def write(self, frames: list[bytes]) -> None:
        for frame in frames:
            self.writer.write(frame)


class Acceptor:
    """Accepts FIX clients on one listening socket; see the module docstring."""

    def __init__(
        self,
        store: SessionStore,
        authenticate: Authenticate,
        application: Application,
        *,
        our_comp_id: str = "PERPX",
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.store = store
        self.authenticate = authenticate
        self.application = application
        self.our_comp_id = our_comp_id
        self.clock = clock
        self.connections: dict[str, Connection] = {}
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (0 picks a free port); return the port."""
        self._server = await asyncio.start_server(self._serve, host, port)
        return int(self._server.sockets[0].getsockname()[1])

    async def start_on(self, sock: socket.socket) -> None:
        """Accept on a socket already bound and listening (``perpx serve`` binds before it opens the venue)."""
        self._server = await asyncio.start_server(self._serve, sock=sock)

    async def close(self) -> None:
        """Stop listening and close every connection (each session logs out first)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for connection in list(self.connections.values()):
            connection.writer.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def deliver(self, comp_id: str, msg_type: str, body: tuple[Field, ...]) -> None:
        """An application message for ``comp_id``: sent now if it is logged on, stored for resend otherwise."""
        connection = self.connections.get(comp_id)
        if connection is not None and connection.session.state is SessionState.ACTIVE:
            connection.send_app(msg_type, body)
            return
        if self.store.seqs(comp_id) is not None:
            self.store.append(comp_id, msg_type, sending_time(self.clock()), body)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        connection = Connection(self, writer, self.clock())
        ticker = asyncio.create_task(self._tick(connection))
        frames = FrameReader()
        reason = "the client closed the connection"
        try:
            while connection.session.state is not SessionState.CLOSED:
                data = await reader.read(READ_BYTES)
                if not data:
                    break
                for item in frames.feed(data):
                    step = connection.session.receive(item, self.clock())
                    connection.write(step.frames)
                    if step.logged_on:
                        self._logged_on(connection)
                    for message in step.app:
                        await self.application.on_message(connection, message)
                    if step.close is not None:
                        reason = step.close
                        break
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            reason = "the connection broke"
        except (
            asyncio.CancelledError
        ):  # the venue is stopping; end quietly (the task is the connection's own)
            reason = "the venue is shutting down"
        finally:
            ticker.cancel()
            self._closed(connection, reason)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self._tasks.discard(task)

    def _logged_on(self, connection: Connection) -> None:
        previous = self.connections.get(connection.comp_id)
        if previous is not None and previous is not connection:
            previous.session.disconnected()
            previous.writer.close()
        self.connections[connection.comp_id] = connection
        connection.logged_on = True
        log.info("fix: %s logged on", connection.comp_id)
        self.application.on_logon(connection)

    def _closed(self, connection: Connection, reason: str) -> None:
        connection.session.disconnected()
        if self.connections.get(connection.comp_id) is connection:
            del self.connections[connection.comp_id]
        if connection.logged_on:
            log.info("fix: %s disconnected: %s", connection.comp_id, reason)
            self.application.on_close(connection)

    async def _tick(self, connection: Connection) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            step = connection.session.tick(self.clock())
            connection.write(step.frames)
            if step.close is not None:
                connection.writer.close()
                return
