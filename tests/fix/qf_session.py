"""One QuickFIX/Python initiator session driven line by line (run by tests/fix/test_quickfix_e2e.py).

    python qf_session.py WORKDIR FIX_PORT API_KEY SECRET DICTIONARY SENDER_COMP_ID [TAG=VALUE ...]

QuickFIX sometimes aborts the process, so each session runs in its own process with one
SocketInitiator. The TAG=VALUE arguments are added to the Logon in ``toAdmin`` (``9406=Y`` for a
drop-copy session, ``8013=Y`` for cancel on disconnect), beside perpx's signature. The session
validates every message against the dictionary (``UseDataDictionary=Y``, ``ResetOnLogon=Y``).

stdin takes one JSON command a line:

- ``{"send": "D", "fields": [[11, "x"], ...], "groups": [[146, [[[55, "BTCUSDT"]]]]]}`` sends an
  application message built with QuickFIX (groups as ``[counter, [[entry fields], ...]]``);
- ``{"logout": true}`` stops the initiator (Logout) and exits 0;
- ``{"drop": true}`` ends the process at once, without Logout.

stdout has one JSON object a line: ``{"event": "logon"}``, ``{"event": "timeout"}``, every
application message received (``{"in": "8", "fields": [[tag, value], ...]}``, with ``"entries"``
read through QuickFIX's repeating-group API for W and X) and every message QuickFIX sends other
than Heartbeat, Logon and the test's own (``{"out": "3", ...}``: QuickFIX rejecting what it got).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

import quickfix as fix
import quickfix44 as fix44

SOH = "\x01"
ENTRY_TAGS = (279, 269, 270, 271, 55)
EMIT = threading.Lock()


def emit(event: dict[str, Any]) -> None:
    with EMIT:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()


def flat(msg: fix.Message) -> list[list[object]]:
    """Every field of a message in wire order (header, body, groups, trailer)."""
    fields: list[list[object]] = []
    for part in msg.toString().split(SOH):
        if "=" in part:
            tag, value = part.split("=", 1)
            fields.append([int(tag), value])
    return fields


def entries(msg: fix.Message, kind: str) -> list[dict[str, str]]:
    """NoMDEntries(268) read entry by entry through QuickFIX's group API (needs the dictionary)."""
    group = (
        fix44.MarketDataSnapshotFullRefresh.NoMDEntries()
        if kind == "W"
        else fix44.MarketDataIncrementalRefresh.NoMDEntries()
    )
    count = int(msg.getField(268))
    found: list[dict[str, str]] = []
    for i in range(1, count + 1):
        msg.getGroup(i, group)
        found.append({str(t): group.getField(t) for t in ENTRY_TAGS if group.isSetField(t)})
    return found


class Client(fix.Application):  # type: ignore[misc]
    def __init__(self, api_key: str, secret: str, logon_extra: list[tuple[int, str]]) -> None:
        super().__init__()
        self.api_key, self.secret, self.logon_extra = api_key, secret, logon_extra
        self.session: object = None
        self.logged_on = threading.Event()

    def onCreate(self, sid: object) -> None:
        self.session = sid

    def onLogon(self, sid: object) -> None:
        emit({"event": "logon"})
        self.logged_on.set()

    def onLogout(self, sid: object) -> None:
        emit({"event": "logout"})

    def toAdmin(self, msg: fix.Message, sid: object) -> None:
        header = msg.getHeader()
        kind = header.getField(35)
        if kind != "A":
            if kind != "0":
                emit({"out": kind, "fields": flat(msg)})
            return
        payload = SOH.join(header.getField(t) for t in (35, 49, 56, 34, 52))
        signature = base64.b64encode(
            hmac.new(self.secret.encode(), payload.encode(), hashlib.sha256).digest()
        ).decode()
        msg.setField(553, self.api_key)
        msg.setField(fix.RawDataLength(len(signature)))
        msg.setField(fix.RawData(signature))
        for tag, value in self.logon_extra:
            msg.setField(tag, value)

    def fromAdmin(self, msg: fix.Message, sid: object) -> None:
        kind = msg.getHeader().getField(35)
        if kind in ("3", "5"):
            emit({"in": kind, "fields": flat(msg)})

    def toApp(self, msg: fix.Message, sid: object) -> None:
        pass

    def fromApp(self, msg: fix.Message, sid: object) -> None:
        kind = msg.getHeader().getField(35)
        event: dict[str, Any] = {"in": kind, "fields": flat(msg)}
        if kind in ("W", "X"):
            event["entries"] = entries(msg, kind)
        emit(event)


def build(command: dict[str, Any]) -> fix.Message:
    msg = fix.Message()
    msg.getHeader().setField(fix.BeginString("FIX.4.4"))
    msg.getHeader().setField(fix.MsgType(command["send"]))
    for tag, value in command.get("fields", []):
        msg.setField(int(tag), str(value))
    for counter, rows in command.get("groups", []):
        for row in rows:
            group = fix.Group(int(counter), int(row[0][0]))
            for tag, value in row:
                group.setField(int(tag), str(value))
            msg.addGroup(group)
    return msg


def main() -> int:
    workdir, port, api_key, secret, dictionary, sender = sys.argv[1:7]
    extra = [(int(t), v) for t, v in (arg.split("=", 1) for arg in sys.argv[7:])]
    config = Path(workdir) / "initiator.cfg"
    config.write_text(
        "[DEFAULT]\nConnectionType=initiator\nReconnectInterval=2\n"
        f"FileStorePath={workdir}/store\nFileLogPath={workdir}/log\nStartTime=00:00:00\nEndTime=00:00:00\n"
        f"UseDataDictionary=Y\nDataDictionary={dictionary}\nResetOnLogon=Y\n"
        f"SocketConnectHost=127.0.0.1\nSocketConnectPort={port}\nHeartBtInt=30\n"
        f"[SESSION]\nBeginString=FIX.4.4\nSenderCompID={sender}\nTargetCompID=PERPX\n"
    )
    settings = fix.SessionSettings(str(config))
    app = Client(api_key, secret, extra)
    initiator = fix.SocketInitiator(
        app, fix.FileStoreFactory(settings), settings, fix.FileLogFactory(settings)
    )
    initiator.start()
    if not app.logged_on.wait(15):
        emit({"event": "timeout"})
        initiator.stop()
        return 2
    for line in sys.stdin:
        command = json.loads(line)
        if command.get("drop"):
            os._exit(0)
        if command.get("logout"):
            break
        fix.Session.sendToTarget(build(command), app.session)
    initiator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
