"""An unmodified QuickFIX/Python initiator trading on perpx (run by tests/fix/test_quickfix_e2e.py).

    python qf_trade.py WORKDIR FIX_PORT API_KEY SECRET DICTIONARY REST_BASE TAKER_KEY TAKER_SECRET [place|resume]

``place`` and ``resume`` keep the sequence numbers in WORKDIR's file store (``ResetOnLogon=N``):
``place`` places the order, waits for its New and exits (the test then fills it, and may kill and
restart the venue); ``resume`` logs on again as a restarted client does, QuickFIX asks for the gap
itself, and the fill arrives as a resent (PossDup) report.

Logs on with perpx's signature (computed in ``toAdmin``, where QuickFIX has filled 34 and 52),
validates every message against perpx's dictionary (``UseDataDictionary=Y``), places a LIMIT buy,
has a REST client sell into it, and prints one line per ExecutionReport: ``REPORT 150 39 32 31 14
151 6``. Exit 0 once the order is filled, 1 on a timeout, 2 without a logon.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import quickfix as fix
import quickfix44 as fix44

SOH = "\x01"


class Client(fix.Application):  # type: ignore[misc]
    def __init__(self, api_key: str, secret: str) -> None:
        super().__init__()
        self.api_key, self.secret = api_key, secret
        self.session: object = None
        self.logged_on = threading.Event()
        self.new = threading.Event()
        self.filled = threading.Event()

    def onCreate(self, sid: object) -> None:
        self.session = sid

    def onLogon(self, sid: object) -> None:
        self.logged_on.set()

    def onLogout(self, sid: object) -> None:
        pass

    def toAdmin(self, msg: fix.Message, sid: object) -> None:
        header = msg.getHeader()
        if header.getField(35) != "A":
            return
        payload = SOH.join(
            [
                header.getField(35),
                header.getField(49),
                header.getField(56),
                header.getField(34),
                header.getField(52),
            ]
        )
        signature = base64.b64encode(
            hmac.new(self.secret.encode(), payload.encode(), hashlib.sha256).digest()
        ).decode()
        msg.setField(553, self.api_key)
        msg.setField(fix.RawDataLength(len(signature)))
        msg.setField(fix.RawData(signature))

    def fromAdmin(self, msg: fix.Message, sid: object) -> None:
        pass

    def toApp(self, msg: fix.Message, sid: object) -> None:
        pass

    def fromApp(self, msg: fix.Message, sid: object) -> None:
        if msg.getHeader().getField(35) != "8":
            return
        tags = [150, 39, 32, 31, 14, 151, 6]
        if msg.getHeader().isSetField(43):
            print("POSSDUP", flush=True)
        values = [msg.getField(t) if msg.isSetField(t) else "-" for t in tags]
        print("REPORT " + " ".join(values), flush=True)
        if msg.getField(39) == "0":
            self.new.set()
        if msg.getField(39) == "2":
            self.filled.set()


def rest_sell(base: str, api_key: str, secret: str) -> None:
    query = urllib.parse.urlencode(
        {
            "symbol": "BTCUSDT",
            "side": "SELL",
            "type": "MARKET",
            "quantity": "0.004",
            "timestamp": str(int(time.time() * 1000)),
        }
    )
    signature = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    request = urllib.request.Request(
        f"{base}/fapi/v1/order",
        data=f"{query}&signature={signature}".encode(),
        headers={"X-MBX-APIKEY": api_key},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()


def main() -> int:
    workdir, port, api_key, secret, dictionary, base, taker_key, taker_secret = sys.argv[1:9]
    mode = sys.argv[9] if len(sys.argv) > 9 else "trade"
    reset = "N" if mode in ("place", "resume") else "Y"
    config = Path(workdir) / "initiator.cfg"
    config.write_text(
        "[DEFAULT]\nConnectionType=initiator\nReconnectInterval=2\n"
        f"FileStorePath={workdir}/store\nFileLogPath={workdir}/log\nStartTime=00:00:00\nEndTime=00:00:00\n"
        f"UseDataDictionary=Y\nDataDictionary={dictionary}\nResetOnLogon={reset}\n"
        f"SocketConnectHost=127.0.0.1\nSocketConnectPort={port}\nHeartBtInt=30\n"
        "[SESSION]\nBeginString=FIX.4.4\nSenderCompID=QFCLIENT\nTargetCompID=PERPX\n"
    )
    settings = fix.SessionSettings(str(config))
    app = Client(api_key, secret)
    initiator = fix.SocketInitiator(
        app, fix.FileStoreFactory(settings), settings, fix.FileLogFactory(settings)
    )
    initiator.start()
    try:
        if not app.logged_on.wait(15):
            print("NO LOGON", flush=True)
            return 2
        if mode == "resume":
            return 0 if app.filled.wait(20) else 1
        order = fix44.NewOrderSingle()
        order.setField(fix.ClOrdID("qf-1"))
        order.setField(fix.Side(fix.Side_BUY))
        order.setField(fix.TransactTime())
        order.setField(fix.OrdType(fix.OrdType_LIMIT))
        order.setField(fix.Symbol("BTCUSDT"))
        order.setField(fix.OrderQty(0.004))
        order.setField(fix.Price(60000))
        order.setField(fix.TimeInForce(fix.TimeInForce_GOOD_TILL_CANCEL))
        fix.Session.sendToTarget(order, app.session)
        if not app.new.wait(15):
            return 1
        if mode == "place":
            return 0
        rest_sell(base, taker_key, taker_secret)
        return 0 if app.filled.wait(15) else 1
    finally:
        initiator.stop()


if __name__ == "__main__":
    sys.exit(main())
