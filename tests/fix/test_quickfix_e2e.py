"""An unmodified QuickFIX initiator (quickfix-ssl) logs on to ``perpx serve --fix-port``, validates every
message against the shipped dictionary, places a limit order and gets its fill from a REST seller."""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from perpx.fix.dictionary import dictionary_xml
from perpx.fix.session import sending_time

from ..server.harness import MANUAL_CONFIG, Trader
from .venue import FixVenue

pytest.importorskip("quickfix", reason="the QuickFIX client (pip install quickfix-ssl==1.15.1.post4)")


def test_quickfix_initiator_trades_and_is_filled_by_a_rest_order(tmp_path: Path) -> None:
    # Arrange
    server = FixVenue(tmp_path / "data", config_text=MANUAL_CONFIG).start()
    fix_port = server.fix_port
    try:
        maker, taker = server.trader("qf-maker"), server.trader("qf-taker")
        dictionary = tmp_path / "FIX44-perpx.xml"
        dictionary.write_text(dictionary_xml())
        work = tmp_path / "qf"
        work.mkdir()
        # Act
        done = subprocess.run(
            [
                sys.executable,
                str(Path(__file__).with_name("qf_trade.py")),
                str(work),
                str(fix_port),
                maker.api_key,
                maker.secret,
                str(dictionary),
                server.base,
                taker.api_key,
                taker.secret,
            ],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
    finally:
        server.stop()
    # Assert: New, then the fill with Cum/Leaves/Avg, every message valid under the dictionary
    reports = [line.split()[1:] for line in done.stdout.splitlines() if line.startswith("REPORT")]
    assert done.returncode == 0, done.stdout + done.stderr
    assert reports[0][:2] == ["0", "0"]
    assert reports[-1] == ["F", "2", "0.004", "60000", "0.004", "0", "60000"]


@pytest.mark.parametrize("crash", [False, True], ids=["disconnect", "server-kill-9"])
def test_quickfix_initiator_recovers_a_fill_made_while_it_was_away(tmp_path: Path, crash: bool) -> None:
    # Arrange
    server = FixVenue(tmp_path / "data", config_text=MANUAL_CONFIG).start()
    fix_port = server.fix_port
    try:
        maker, taker = server.trader("qf-away"), server.trader("qf-seller")
        dictionary = tmp_path / "FIX44-perpx.xml"
        dictionary.write_text(dictionary_xml())
        work = tmp_path / "qf"
        work.mkdir()
        script = str(Path(__file__).with_name("qf_trade.py"))
        args = [str(work), str(fix_port), maker.api_key, maker.secret, str(dictionary), server.base]
        args += [taker.api_key, taker.secret]
        placed = subprocess.run(
            [sys.executable, script, *args, "place"], capture_output=True, text=True, timeout=60, check=False
        )
        assert placed.returncode == 0 and placed.stdout.startswith("REPORT 0 0"), (
            placed.stdout + placed.stderr
        )
        # Act: the order fills while the client is away (after a venue crash and restart, if asked)
        if crash:
            server.kill()
            server.start()
        sold = server.signed(
            "POST",
            "/fapi/v1/order",
            taker,
            {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.004"},
        )
        assert sold.status_code == 200, sold.text
        resumed = subprocess.run(
            [sys.executable, script, *args, "resume"], capture_output=True, text=True, timeout=60, check=False
        )
        lines = resumed.stdout.splitlines()
    finally:
        server.stop()
    # Assert: the fill came back as a resent report, QuickFIX validating it against the dictionary
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    filled = lines.index("REPORT F 2 0.004 60000 0.004 0 60000")
    assert lines[filled - 1] == "POSSDUP"


# ---------------------------------------------------------------------- one venue, many QuickFIX sessions

SYMBOL = "BTCUSDT"
SESSION_SCRIPT = str(Path(__file__).with_name("qf_session.py"))


class QfSession:
    """A QuickFIX initiator in its own process (``qf_session.py``), fed JSON commands, read as events."""

    def __init__(
        self,
        venue: FixVenue,
        trader: Trader,
        comp_id: str,
        work: Path,
        *logon: str,
        opened: list[QfSession],
    ) -> None:
        work.mkdir(parents=True, exist_ok=True)
        dictionary = work / "FIX44-perpx.xml"
        dictionary.write_text(dictionary_xml())
        self.comp_id, self.work = comp_id, work
        self.process = subprocess.Popen(
            [
                sys.executable,
                SESSION_SCRIPT,
                str(work),
                str(venue.fix_port),
                trader.api_key,
                trader.secret,
                str(dictionary),
                comp_id,
                *logon,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        opened.append(self)
        self.events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self.unread: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.expect_event("logon")

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.events.put(json.loads(line))
        self.events.put(None)

    def _next(self, deadline: float) -> dict[str, Any]:
        try:
            event = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"{self.comp_id}: timed out; seen {self.seen}") from None
        if event is None:
            stderr = self.process.stderr.read() if self.process.stderr else ""
            raise AssertionError(f"{self.comp_id}: the QuickFIX process ended; seen {self.seen}\n{stderr}")
        self.seen.append(event)
        return event

    def expect_event(self, name: str) -> None:
        deadline = time.monotonic() + 20
        while self._next(deadline).get("event") != name:
            pass

    def expect(self, kind: str, **tags: str) -> Message:
        """The next received application message of this type whose tags (``t150="F"``) match."""
        deadline = time.monotonic() + 10
        for i, event in enumerate(self.unread):
            if _matches(event, kind, tags):
                return Message(self.unread.pop(i))
        while True:
            event = self._next(deadline)
            if _matches(event, kind, tags):
                return Message(event)
            self.unread.append(event)

    def send(self, kind: str, fields: list[tuple[int, str]], groups: list[Any] | None = None) -> None:
        assert self.process.stdin is not None
        command = {"send": kind, "fields": fields, "groups": groups or []}
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def close(self, *, drop: bool = False) -> None:
        """End the session (Logout, or a hard exit with ``drop``); nothing QuickFIX got was refused."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"drop": True} if drop else {"logout": True}) + "\n")
        self.process.stdin.flush()
        assert self.process.wait(timeout=30) == 0, self.process.stderr.read() if self.process.stderr else ""
        while (event := self.events.get(timeout=5)) is not None:
            self.seen.append(event)
        self.end()
        refusals = [e for e in self.seen if e.get("out") in ("3", "j") or e.get("in") == "3"]
        assert refusals == [], refusals
        logs = "".join(p.read_text(errors="replace") for p in (self.work / "log").glob("*event*.log"))
        assert "Tag appears more than once" not in logs and "Reject" not in logs, logs

    def end(self) -> None:
        """Kill the process if it still runs, and close its pipes."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


class Message:
    """A received message: tag lookups over its wire fields, and the QuickFIX-parsed MD entries."""

    def __init__(self, event: dict[str, Any]) -> None:
        self.fields = [(int(tag), str(value)) for tag, value in event["fields"]]
        self.entries: list[dict[str, str]] = event.get("entries", [])

    def get(self, tag: int) -> str | None:
        return next((value for t, value in self.fields if t == tag), None)


def _matches(event: dict[str, Any], kind: str, tags: dict[str, str]) -> bool:
    if event.get("in") != kind:
        return False
    message = Message(event)
    return all(message.get(int(t[1:])) == v for t, v in tags.items())


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FixVenue]:
    process = FixVenue(tmp_path_factory.mktemp("qf-venue") / "data", config_text=MANUAL_CONFIG).start()
    try:
        yield process
    finally:
        process.stop()


Open = Callable[..., QfSession]


@pytest.fixture
def qf(venue: FixVenue, tmp_path: Path) -> Iterator[Open]:
    """Open QuickFIX sessions on the module's venue: ``qf(trader, comp_id, "9406=Y")``; all end after the test."""
    opened: list[QfSession] = []

    def open_session(trader: Trader, comp_id: str, *logon: str) -> QfSession:
        session = QfSession(venue, trader, comp_id, tmp_path / comp_id, *logon, opened=opened)
        return session

    yield open_session
    for session in opened:
        session.end()


def new_order(cl_ord_id: str, side: str, qty: str, price: str) -> list[tuple[int, str]]:
    return [
        (11, cl_ord_id),
        (55, SYMBOL),
        (54, side),
        (60, sending_time(time.time_ns())),
        (38, qty),
        (40, "2"),
        (44, price),
        (59, "1"),
    ]


def rest_limit(venue: FixVenue, trader: Trader, side: str, qty: str, price: str, tif: str = "GTC") -> int:
    placed = venue.signed(
        "POST",
        "/fapi/v1/order",
        trader,
        {
            "symbol": SYMBOL,
            "side": side,
            "type": "LIMIT",
            "quantity": qty,
            "price": price,
            "timeInForce": tif,
        },
    )
    assert placed.status_code == 200, placed.text
    return int(placed.json()["orderId"])


def open_orders(venue: FixVenue, trader: Trader) -> list[dict[str, Any]]:
    answer = venue.signed("GET", "/fapi/v1/openOrders", trader, {"symbol": SYMBOL})
    assert answer.status_code == 200, answer.text
    orders: list[dict[str, Any]] = answer.json()
    return orders


def test_quickfix_replaces_asks_the_status_of_then_cancels_an_order_by_its_latest_clordid(
    venue: FixVenue, qf: Open
) -> None:
    trader = venue.trader("qf-cxl")
    client = qf(trader, "QFCXL")
    client.send("D", new_order("r-1", "1", "0.010", "50000"))
    new = client.expect("8", t150="0")
    # Act
    client.send(
        "G",
        [(41, "r-1"), (11, "r-2"), (55, SYMBOL), (54, "1"), (38, "0.008"), (40, "2"), (44, "50001")],
    )
    replaced = client.expect("8", t150="5")
    client.send("H", [(11, "r-2"), (790, "st-1"), (55, SYMBOL), (54, "1")])
    status = client.expect("8", t150="I")
    client.send("F", [(41, "r-2"), (11, "r-3"), (55, SYMBOL), (54, "1"), (60, sending_time(time.time_ns()))])
    canceled = client.expect("8", t150="4")
    client.close()
    # Assert
    assert [replaced.get(t) for t in (37, 11, 41, 39, 38, 44, 151)] == [
        new.get(37),
        "r-2",
        "r-1",
        "0",
        "0.008",
        "50001",
        "0.008",
    ]
    assert [status.get(t) for t in (37, 11, 39, 38, 44, 790)] == [
        new.get(37),
        "r-2",
        "0",
        "0.008",
        "50001",
        "st-1",
    ]
    assert [canceled.get(t) for t in (37, 11, 41, 39, 151)] == [new.get(37), "r-3", "r-2", "4", "0"]
    assert open_orders(venue, trader) == []


def test_quickfix_gets_an_order_the_filters_refuse_as_a_reject_with_rest_s_reason(
    venue: FixVenue, qf: Open
) -> None:
    trader = venue.trader("qf-bad")
    client = qf(trader, "QFBAD")
    client.send("D", new_order("b-1", "1", "0.0001", "59000"))
    rejected = client.expect("8", t150="8")
    client.close()
    rest = venue.signed(
        "POST",
        "/fapi/v1/order",
        trader,
        {
            "symbol": SYMBOL,
            "side": "BUY",
            "type": "LIMIT",
            "quantity": "0.0001",
            "price": "59000",
            "timeInForce": "GTC",
        },
    )
    assert (rejected.get(11), rejected.get(39)) == ("b-1", "8")
    assert rejected.get(58) == f"{rest.json()['code']}: {rest.json()['msg']}"


def test_rejects_have_unique_exec_ids_across_sessions_that_reset_their_numbers(
    venue: FixVenue, qf: Open
) -> None:
    # Arrange: the same CompID logs on twice with ResetSeqNumFlag=Y; each session's first order is refused
    trader = venue.trader("qf-bad-twice")
    exec_ids = []
    for attempt in ("1", "2"):
        client = qf(trader, "QFBAD2")
        # Act
        client.send("D", new_order(f"bb-{attempt}", "1", "0.0001", "59000"))
        exec_ids.append(client.expect("8", t150="8").get(17))
        client.close()
    # Assert: both were the session's message 2, yet their ExecIDs differ
    assert None not in exec_ids and exec_ids[0] != exec_ids[1], exec_ids


def test_quickfix_mass_cancel_is_answered_by_a_report_and_cancels_every_open_order(
    venue: FixVenue, qf: Open
) -> None:
    trader = venue.trader("qf-mass")
    client = qf(trader, "QFMASS")
    client.send("D", new_order("m-1", "1", "0.002", "51000"))
    client.expect("8", t11="m-1", t150="0")
    client.send("D", new_order("m-2", "1", "0.003", "52000"))
    client.expect("8", t11="m-2", t150="0")
    before = open_orders(venue, trader)
    # Act
    client.send("q", [(11, "mc-1"), (530, "1"), (55, SYMBOL), (60, sending_time(time.time_ns()))])
    report = client.expect("r")
    canceled = {client.expect("8", t150="4").get(11), client.expect("8", t150="4").get(11)}
    client.close()
    # Assert
    assert len(before) == 2
    assert [report.get(t) for t in (11, 530, 531, 533, 55)] == ["mc-1", "1", "1", "2", SYMBOL]
    assert canceled == {"m-1", "m-2"}
    assert open_orders(venue, trader) == []


def test_quickfix_market_data_snapshot_equals_the_rest_book_and_increments_follow_rest_orders(
    venue: FixVenue, qf: Open
) -> None:
    # Arrange: two asks and a bid from REST, so the snapshot has a repeating group of three
    maker, taker = venue.trader("qf-md-maker"), venue.trader("qf-md-taker")
    rest_limit(venue, maker, "SELL", "0.005", "62000")
    rest_limit(venue, maker, "SELL", "0.002", "62500")
    rest_limit(venue, maker, "BUY", "0.002", "50000")
    client = qf(venue.trader("qf-md-reader"), "QFMD")
    # Act: subscribe to bids, offers and trades; a REST order adds to a level, a REST taker trades
    client.send(
        "V",
        [(262, "md-1"), (263, "1"), (264, "0")],
        [[267, [[[269, "0"]], [[269, "1"]], [[269, "2"]]]], [146, [[[55, SYMBOL]]]]],
    )
    snapshot = client.expect("W")
    book = venue.public("/fapi/v1/depth", symbol=SYMBOL, limit=1000).json()
    rest_limit(venue, maker, "SELL", "0.002", "62000")
    changed = client.expect("X")
    book_after = venue.public("/fapi/v1/depth", symbol=SYMBOL, limit=1000).json()
    bought = venue.signed(
        "POST",
        "/fapi/v1/order",
        taker,
        {"symbol": SYMBOL, "side": "BUY", "type": "MARKET", "quantity": "0.003"},
    )
    assert bought.status_code == 200, bought.text
    traded_level = client.expect("X")
    trade = client.expect("X")
    unsubscribed_at = len(client.seen)
    client.send(
        "V", [(262, "md-1"), (263, "2"), (264, "0")], [[267, [[[269, "0"]]]], [146, [[[55, SYMBOL]]]]]
    )
    rest_limit(venue, maker, "SELL", "0.002", "62500")
    client.send(
        "V",
        [(262, "md-2"), (263, "0"), (264, "1")],
        [[267, [[[269, "0"]], [[269, "1"]]]], [146, [[[55, SYMBOL]]]]],
    )
    top = client.expect("W")
    book_top = venue.public("/fapi/v1/depth", symbol=SYMBOL, limit=5).json()
    client.send(
        "V", [(262, "md-3"), (263, "0"), (264, "0")], [[267, [[[269, "0"]]]], [146, [[[55, "NOPEUSDT"]]]]]
    )
    unknown = client.expect("Y")
    after_unsubscribe = [e.get("in") for e in client.seen[unsubscribed_at:]]
    client.close()
    cleared = venue.signed("DELETE", "/fapi/v1/allOpenOrders", maker, {"symbol": SYMBOL})
    # Assert: QuickFIX parsed the groups; levels and update ids are REST's
    assert cleared.status_code == 200, cleared.text
    rest_levels = [("0", p, q) for p, q in book["bids"]] + [("1", p, q) for p, q in book["asks"]]
    assert len(snapshot.entries) == len(rest_levels) >= 3
    assert [(e["269"], Decimal(e["270"]), Decimal(e["271"])) for e in snapshot.entries] == [
        (t, Decimal(p), Decimal(q)) for t, p, q in rest_levels
    ]
    assert snapshot.get(25044) == str(book["lastUpdateId"])
    assert changed.entries == [{"279": "1", "269": "1", "270": "62000", "271": "0.007", "55": SYMBOL}]
    assert changed.get(25044) == str(book_after["lastUpdateId"])
    assert traded_level.entries == [{"279": "1", "269": "1", "270": "62000", "271": "0.004", "55": SYMBOL}]
    assert int(traded_level.get(25044) or 0) > int(changed.get(25044) or 0)
    assert trade.entries == [{"279": "0", "269": "2", "270": "62000", "271": "0.003", "55": SYMBOL}]
    assert "X" not in after_unsubscribe, after_unsubscribe
    assert top.get(262) == "md-2" and top.get(25044) == str(book_top["lastUpdateId"])
    assert [(e["269"], e["270"]) for e in top.entries] == [("0", "50000"), ("1", "62000")]
    assert (unknown.get(262), unknown.get(281)) == ("md-3", "0")


def test_quickfix_drop_copy_session_receives_a_rest_originated_fill(venue: FixVenue, qf: Open) -> None:
    trader, taker = venue.trader("qf-drop"), venue.trader("qf-drop-taker")
    client = qf(trader, "QFDROP", "9406=Y")
    order_id = rest_limit(venue, trader, "SELL", "0.003", "60500")
    new = client.expect("8", t150="0")
    # Act: a REST taker fills the account's REST order
    rest_limit(venue, taker, "BUY", "0.003", "60500", tif="IOC")
    fill = client.expect("8", t150="F")
    client.send("D", new_order("dc-1", "1", "0.001", "40000"))
    refused = client.expect("j")
    client.close()
    # Assert
    assert new.get(37) == fill.get(37) == str(order_id)
    assert [fill.get(t) for t in (39, 32, 31, 14, 151, 6, 1057)] == [
        "2",
        "0.003",
        "60500",
        "0.003",
        "0",
        "60500",
        "N",
    ]
    assert (refused.get(380), refused.get(372)) == ("6", "D")


def test_quickfix_drop_copy_session_receives_the_reports_of_another_fix_session_s_order(
    venue: FixVenue, qf: Open
) -> None:
    # Arrange: one account, a drop-copy session and an order-entry session, each its own QuickFIX process
    trader, taker = venue.trader("qf-drop-fix"), venue.trader("qf-drop-fix-taker")
    drop = qf(trader, "QFDROP2", "9406=Y")
    entry = qf(trader, "QFENTRY")
    # Act: the order-entry session sells; a REST taker fills it
    entry.send("D", new_order("e-1", "2", "0.003", "60600"))
    placed = entry.expect("8", t150="0")
    copied = drop.expect("8", t150="0")
    rest_limit(venue, taker, "BUY", "0.003", "60600", tif="IOC")
    filled = entry.expect("8", t150="F")
    copied_fill = drop.expect("8", t150="F")
    entry.close()
    drop.close()
    # Assert: the drop copy saw the same reports, ExecIDs included
    assert [copied.get(t) for t in (37, 11, 17, 39)] == [placed.get(t) for t in (37, 11, 17, 39)]
    assert [copied_fill.get(t) for t in (37, 11, 17, 39, 14, 151, 31)] == [
        filled.get(t) for t in (37, 11, 17, 39, 14, 151, 31)
    ]
    assert [filled.get(t) for t in (11, 39, 14, 151, 31)] == ["e-1", "2", "0.003", "0", "60600"]


def test_quickfix_cancel_on_disconnect_cancels_open_orders_when_its_process_ends(
    venue: FixVenue, qf: Open
) -> None:
    trader = venue.trader("qf-cod")
    client = qf(trader, "QFCOD", "8013=Y")
    client.send("D", new_order("cod-1", "1", "0.003", "44000"))
    client.expect("8", t150="0")
    before = open_orders(venue, trader)
    # Act: the initiator's process ends without a Logout
    client.close(drop=True)
    deadline = time.monotonic() + 10
    after = before
    while time.monotonic() < deadline and after:
        time.sleep(0.05)
        after = open_orders(venue, trader)
    # Assert
    assert [o["clientOrderId"] for o in before] == ["cod-1"]
    assert after == []
