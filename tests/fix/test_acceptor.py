"""The acceptor over real sockets: logon, an application round trip, and a message kept for a client away."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from perpx.fix.acceptor import Acceptor, Connection
from perpx.fix.codec import Field, FixMessage, FrameReader, encode
from perpx.fix.logon import KeyView, LogonLimiter, authenticator, logon_signature
from perpx.fix.session import sending_time
from perpx.fix.store import SessionStore

KEYS = {"key-1": KeyView("key-1", "s3cr3t", can_trade=True)}


class EchoApp:
    """Answers every NewOrderSingle with an ExecutionReport carrying its ClOrdID."""

    def __init__(self) -> None:
        self.logons: list[str] = []
        self.closed: list[str] = []

    def on_logon(self, connection: Connection) -> None:
        self.logons.append(connection.comp_id)

    async def on_message(self, connection: Connection, message: FixMessage) -> None:
        connection.send_app("8", ((11, message.get(11) or ""), (150, "0"), (39, "0")))

    def on_close(self, connection: Connection) -> None:
        self.closed.append(connection.comp_id)


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seq: int = 0) -> None:
        self.reader, self.writer, self.seq = reader, writer, seq
        self.frames = FrameReader()
        self.inbox: list[FixMessage] = []

    def send(self, msg_type: str, body: list[Field]) -> None:
        self.seq += 1
        stamp = sending_time(time.time_ns())
        header: list[Field] = [
            (35, msg_type),
            (49, "CLIENT1"),
            (56, "PERPX"),
            (34, str(self.seq)),
            (52, stamp),
        ]
        if msg_type == "A":
            signature = logon_signature("s3cr3t", "A", "CLIENT1", "PERPX", str(self.seq), stamp)
            body = [*body, (95, str(len(signature))), (96, signature), (553, "key-1")]
        self.writer.write(encode([*header, *body]))

    async def expect(self, msg_type: str) -> FixMessage:
        while True:
            for i, message in enumerate(self.inbox):
                if message.msg_type == msg_type:
                    return self.inbox.pop(i)
            data = await asyncio.wait_for(self.reader.read(65536), 5)
            assert data, f"closed while waiting for {msg_type}"
            self.inbox += [m for m in self.frames.feed(data) if isinstance(m, FixMessage)]


async def _connect(port: int, seq: int = 0) -> Client:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    return Client(reader, writer, seq)


def test_client_logs_on_sends_an_order_and_gets_its_report_then_a_missed_report_by_resend(
    tmp_path: Path,
) -> None:
    async def scenario() -> tuple[list[str], list[str], FixMessage, FixMessage]:
        store = SessionStore(tmp_path / "fix.sqlite")
        app = EchoApp()
        acceptor = Acceptor(store, authenticator(KEYS.get, LogonLimiter()), app)
        port = await acceptor.start("127.0.0.1", 0)
        try:
            client = await _connect(port)
            client.send("A", [(98, "0"), (108, "30"), (141, "Y")])
            await client.expect("A")
            client.send("D", [(11, "c-1")])
            report = await client.expect("8")
            client.writer.close()
            for _ in range(100):
                if app.closed:
                    break
                await asyncio.sleep(0.01)
            acceptor.deliver("CLIENT1", "8", ((11, "c-1"), (150, "F"), (39, "2")))
            again = await _connect(port, seq=client.seq)
            again.send("A", [(98, "0"), (108, "30")])
            await again.expect("A")
            again.send("2", [(7, "1"), (16, "0")])
            missed = await again.expect("8")
            while missed.get(150) != "F":
                missed = await again.expect("8")
            again.writer.close()
        finally:
            await acceptor.close()
            store.close()
        return app.logons, app.closed, report, missed

    logons, closed, report, missed = asyncio.run(scenario())
    assert logons == ["CLIENT1", "CLIENT1"] and closed[0] == "CLIENT1"
    assert (report.get(11), report.get(150)) == ("c-1", "0")
    assert (missed.get(11), missed.get(150), missed.get(43)) == ("c-1", "F", "Y")
