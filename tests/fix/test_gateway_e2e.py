"""FIX order entry on a real ``perpx serve --fix-port``: orders, fills from REST, cancels, refusals, drop copy.

The client here is a plain socket speaking FIX through perpx's codec (the QuickFIX initiator test
is the independent one); the venue is the default manual-clock one with BTCUSDT marked at 60,000.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from perpx.fix.codec import Field, FixMessage, FrameReader, encode
from perpx.fix.logon import logon_signature
from perpx.fix.session import sending_time

from ..server.harness import MANUAL_CONFIG, Trader
from .venue import FixVenue

SYMBOL = "BTCUSDT"


class FixClient:
    """A FIX 4.4 initiator over a blocking socket: logon with perpx's signature, send, wait for a type."""

    def __init__(self, port: int, trader: Trader, comp_id: str, seq: int = 0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.trader, self.comp_id, self.seq = trader, comp_id, seq
        self.reader = FrameReader()
        self.inbox: list[FixMessage] = []

    def send(self, msg_type: str, body: list[Field]) -> None:
        self.seq += 1
        stamp = sending_time(time.time_ns())
        header: list[Field] = [
            (35, msg_type),
            (49, self.comp_id),
            (56, "PERPX"),
            (34, str(self.seq)),
            (52, stamp),
        ]
        if msg_type == "A":
            signature = logon_signature(self.trader.secret, "A", self.comp_id, "PERPX", str(self.seq), stamp)
            body = [*body, (95, str(len(signature))), (96, signature), (553, self.trader.api_key)]
        self.sock.sendall(encode([*header, *body]))

    def logon(self, *extra: Field, reset: bool = True) -> FixMessage:
        body: list[Field] = [(98, "0"), (108, "30"), *extra]
        if reset:
            body.append((141, "Y"))
        self.send("A", body)
        return self.expect("A")

    def expect(self, msg_type: str, **tags: str) -> FixMessage:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for i, message in enumerate(self.inbox):
                if message.msg_type == msg_type and all(
                    message.get(int(t[1:])) == v for t, v in tags.items()
                ):
                    return self.inbox.pop(i)
            data = self.sock.recv(65536)
            assert data, (
                f"connection closed while waiting for {msg_type} {tags}; inbox {[m.text() for m in self.inbox]}"
            )
            self.inbox += [m for m in self.reader.feed(data) if isinstance(m, FixMessage)]
        raise AssertionError(f"no {msg_type} {tags}; inbox {[m.text() for m in self.inbox]}")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FixVenue]:
    process = FixVenue(tmp_path_factory.mktemp("fix") / "data", config_text=MANUAL_CONFIG).start()
    try:
        yield process
    finally:
        process.stop()


def order(cl_ord_id: str, side: str, qty: str, price: str | None = None, *extra: Field) -> list[Field]:
    body: list[Field] = [
        (11, cl_ord_id),
        (55, SYMBOL),
        (54, side),
        (60, sending_time(time.time_ns())),
        (38, qty),
    ]
    body += [(40, "2"), (44, price), (59, "1")] if price is not None else [(40, "1")]
    return [*body, *extra]


def test_limit_order_is_acknowledged_then_filled_by_a_rest_order_with_cum_leaves_and_avg(
    server: FixVenue,
) -> None:
    # Arrange
    maker = server.trader("fix-maker")
    client = FixClient(server.fix_port, maker, "MAKER1")
    client.logon()
    # Act: rest 0.010 BTC at 59,000 over FIX; a REST client sells 0.004 into it
    client.send("D", order("m-1", "1", "0.010", "59000"))
    new = client.expect("8", t150="0")
    taker = server.trader("rest-taker")
    sold = server.signed(
        "POST",
        "/fapi/v1/order",
        taker,
        {"symbol": SYMBOL, "side": "SELL", "type": "MARKET", "quantity": "0.004"},
    )
    assert sold.status_code == 200, sold.text
    fill = client.expect("8", t150="F")
    client.close()
    # Assert
    assert (new.get(11), new.get(39), new.get(151), new.get(14)) == ("m-1", "0", "0.01", "0")
    assert (fill.get(11), fill.get(39), fill.get(32), fill.get(31)) == ("m-1", "1", "0.004", "59000")
    assert (fill.get(14), fill.get(151), fill.get(6)) == ("0.004", "0.006", "59000")
    assert fill.get(37) == new.get(37) and fill.get(17) != new.get(17)


def test_order_the_filters_refuse_is_rejected_with_rest_s_reason(server: FixVenue) -> None:
    client = FixClient(server.fix_port, server.trader("fix-bad"), "BAD1")
    client.logon()
    client.send("D", order("b-1", "1", "0.0001", "59000"))
    rejected = client.expect("8", t150="8")
    client.close()
    assert (rejected.get(11), rejected.get(39)) == ("b-1", "8")
    assert (rejected.get(58) or "").startswith("-4003") or "quantity" in (rejected.get(58) or "").lower()


def test_cancel_and_replace_answer_with_reports_and_an_unknown_order_with_a_cancel_reject(
    server: FixVenue,
) -> None:
    client = FixClient(server.fix_port, server.trader("fix-cxl"), "CXL1")
    client.logon()
    client.send("D", order("c-1", "1", "0.010", "50000"))
    client.expect("8", t150="0")
    client.send(
        "G", [(41, "c-1"), (11, "c-2"), (55, SYMBOL), (54, "1"), (38, "0.008"), (40, "2"), (44, "50001")]
    )
    replaced = client.expect("8", t150="5")
    client.send("F", [(41, "c-1"), (11, "c-3"), (55, SYMBOL), (54, "1")])
    canceled = client.expect("8", t150="4")
    client.send("F", [(41, "nope"), (11, "c-4"), (55, SYMBOL), (54, "1")])
    reject = client.expect("9")
    client.close()
    assert (replaced.get(11), replaced.get(41), replaced.get(38), replaced.get(44)) == (
        "c-2",
        "c-1",
        "0.008",
        "50001",
    )
    assert (canceled.get(11), canceled.get(39), canceled.get(151)) == ("c-3", "4", "0")
    assert (reject.get(11), reject.get(434), reject.get(102)) == ("c-4", "1", "1")


def test_drop_copy_session_receives_rest_fills_and_may_not_send_orders(server: FixVenue) -> None:
    trader = server.trader("fix-drop")
    drop = FixClient(server.fix_port, trader, "DROP1")
    drop.logon((9406, "Y"))
    placed = server.signed(
        "POST",
        "/fapi/v1/order",
        trader,
        {
            "symbol": SYMBOL,
            "side": "BUY",
            "type": "LIMIT",
            "quantity": "0.003",
            "price": "40000",
            "timeInForce": "GTC",
        },
    )
    assert placed.status_code == 200, placed.text
    copy = drop.expect("8", t150="0")
    drop.send("D", order("d-1", "1", "0.001", "40000"))
    refused = drop.expect("j")
    drop.close()
    assert copy.get(37) == str(placed.json()["orderId"])
    assert (refused.get(380), refused.get(372)) == ("6", "D")


def test_a_fill_missed_while_disconnected_comes_back_by_resend_as_a_possdup(server: FixVenue) -> None:
    # Arrange: an order rests, the client drops without logging out
    maker = server.trader("fix-away")
    first = FixClient(server.fix_port, maker, "AWAY1")
    first.logon()
    first.send("D", order("a-1", "2", "0.003", "61000"))
    first.expect("8", t150="0")
    first.close()
    time.sleep(0.3)
    # Act: it fills while the client is away; the client comes back without a reset
    buyer = server.trader("rest-buyer")
    bought = server.signed(
        "POST",
        "/fapi/v1/order",
        buyer,
        {"symbol": SYMBOL, "side": "BUY", "type": "MARKET", "quantity": "0.003"},
    )
    assert bought.status_code == 200, bought.text
    time.sleep(0.3)
    again = FixClient(server.fix_port, maker, "AWAY1", seq=first.seq)
    again.logon(reset=False)
    again.send("2", [(7, "1"), (16, "0")])
    missed = again.expect("8", t150="F")
    again.close()
    # Assert
    assert (missed.get(11), missed.get(39), missed.get(43), missed.get(14)) == ("a-1", "2", "Y", "0.003")


def entries(message: FixMessage) -> list[tuple[str, str, str]]:
    """``(MDEntryType, MDEntryPx, MDEntrySize)`` of a W, in order."""
    types, prices, sizes = message.all(269), message.all(270), message.all(271)
    return list(zip(types, prices, sizes, strict=True))


def test_market_data_snapshot_equals_the_rest_book_and_increments_follow_its_changes(
    server: FixVenue,
) -> None:
    # Arrange: a resting ask from REST, a FIX client subscribing to bids, offers and trades
    maker = server.trader("md-maker")
    placed = server.signed(
        "POST",
        "/fapi/v1/order",
        maker,
        {
            "symbol": SYMBOL,
            "side": "SELL",
            "type": "LIMIT",
            "quantity": "0.005",
            "price": "70000",
            "timeInForce": "GTC",
        },
    )
    assert placed.status_code == 200, placed.text
    client = FixClient(server.fix_port, server.trader("md-reader"), "MD1")
    client.logon()
    # Act
    client.send(
        "V",
        [
            (262, "md-1"),
            (263, "1"),
            (264, "0"),
            (267, "3"),
            (269, "0"),
            (269, "1"),
            (269, "2"),
            (146, "1"),
            (55, SYMBOL),
        ],
    )
    snapshot = client.expect("W")
    rest = server.public("/fapi/v1/depth", symbol=SYMBOL, limit=1000).json()
    more = server.signed(
        "POST",
        "/fapi/v1/order",
        maker,
        {
            "symbol": SYMBOL,
            "side": "SELL",
            "type": "LIMIT",
            "quantity": "0.002",
            "price": "70000",
            "timeInForce": "GTC",
        },
    )
    assert more.status_code == 200, more.text
    increment = client.expect("X")
    client.send(
        "V", [(262, "md-2"), (263, "0"), (264, "0"), (267, "1"), (269, "9"), (146, "1"), (55, SYMBOL)]
    )
    refused = client.expect("Y")
    client.close()
    # Assert: the snapshot is REST's book at REST's update id; the increment moves the 70,000 level
    assert snapshot.get(25044) == str(rest["lastUpdateId"])
    rest_levels = [("0", p, q) for p, q in rest["bids"]] + [("1", p, q) for p, q in rest["asks"]]
    assert [(t, str(float(p)), str(float(q))) for t, p, q in entries(snapshot)] == [
        (t, str(float(p)), str(float(q))) for t, p, q in rest_levels
    ]
    assert int(increment.get(25044) or 0) > int(snapshot.get(25044) or 0)
    assert (increment.get(279), increment.get(269), increment.get(270), increment.get(271)) == (
        "1",
        "1",
        "70000",
        "0.007",
    )
    assert (refused.get(262), refused.get(281)) == ("md-2", "8")


def test_a_fill_after_a_server_kill_9_reaches_the_client_by_resend_after_both_restart(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # Arrange: a FIX order rests; the client drops; the venue is killed with SIGKILL and restarted
    venue = FixVenue(tmp_path_factory.mktemp("fix-kill") / "data", config_text=MANUAL_CONFIG).start()
    fix_port = venue.fix_port
    try:
        maker, buyer = venue.trader("kill-maker"), venue.trader("kill-buyer")
        first = FixClient(fix_port, maker, "KILL1")
        first.logon()
        first.send("D", order("k-1", "2", "0.002", "62000"))
        first.expect("8", t150="0")
        first.close()
        venue.kill()
        venue.start()
        # Act: the order fills after the restart, then the client returns without a reset
        bought = venue.signed(
            "POST",
            "/fapi/v1/order",
            buyer,
            {"symbol": SYMBOL, "side": "BUY", "type": "MARKET", "quantity": "0.002"},
        )
        assert bought.status_code == 200, bought.text
        time.sleep(0.3)
        again = FixClient(fix_port, maker, "KILL1", seq=first.seq)
        again.logon(reset=False)
        again.send("2", [(7, "1"), (16, "0")])
        missed = again.expect("8", t150="F")
        again.close()
    finally:
        venue.stop()
    # Assert
    assert (missed.get(11), missed.get(39), missed.get(43), missed.get(14)) == ("k-1", "2", "Y", "0.002")


def test_a_possdup_new_order_already_placed_is_answered_with_its_status_not_placed_twice(
    server: FixVenue,
) -> None:
    trader = server.trader("fix-dup")
    client = FixClient(server.fix_port, trader, "DUP1")
    client.logon()
    client.send("D", order("dup-1", "1", "0.003", "45000"))
    client.expect("8", t150="0")
    client.seq += 1
    stamp = sending_time(time.time_ns())
    header: list[Field] = [
        (35, "D"),
        (49, "DUP1"),
        (56, "PERPX"),
        (34, str(client.seq)),
        (43, "Y"),
        (122, stamp),
        (52, stamp),
    ]
    client.sock.sendall(encode([*header, *order("dup-1", "1", "0.003", "45000")]))
    status = client.expect("8", t150="I")
    client.close()
    open_orders = server.signed("GET", "/fapi/v1/openOrders", trader, {"symbol": SYMBOL}).json()
    assert (status.get(11), status.get(39)) == ("dup-1", "0")
    assert len(open_orders) == 1


def test_cancel_on_disconnect_cancels_the_account_s_open_orders_when_the_connection_drops(
    server: FixVenue,
) -> None:
    trader = server.trader("fix-cod")
    client = FixClient(server.fix_port, trader, "COD1")
    client.logon((8013, "Y"))
    client.send("D", order("cod-1", "1", "0.003", "44000"))
    client.expect("8", t150="0")
    before = server.signed("GET", "/fapi/v1/openOrders", trader, {"symbol": SYMBOL}).json()
    client.close()
    deadline = time.monotonic() + 10
    after = before
    while time.monotonic() < deadline and after:
        time.sleep(0.05)
        after = server.signed("GET", "/fapi/v1/openOrders", trader, {"symbol": SYMBOL}).json()
    assert len(before) == 1 and after == []


def test_a_stop_order_placed_over_fix_reports_the_fill_of_the_order_it_triggers(
    server: FixVenue,
) -> None:
    # Arrange: a trade at 60,000 sets the last price, asks wait at 60,200; a FIX stop-market buy at 60,100
    seller, buyer = server.trader("stop-seller"), server.trader("stop-prompt")
    for qty, price in (("0.002", "60000"), ("0.010", "60200")):
        rested = server.signed(
            "POST",
            "/fapi/v1/order",
            seller,
            {
                "symbol": SYMBOL,
                "side": "SELL",
                "type": "LIMIT",
                "quantity": qty,
                "price": price,
                "timeInForce": "GTC",
            },
        )
        assert rested.status_code == 200, rested.text
    market_buy = {"symbol": SYMBOL, "side": "BUY", "type": "MARKET", "quantity": "0.002"}
    first = server.signed("POST", "/fapi/v1/order", buyer, market_buy)
    assert first.status_code == 200, first.text
    client = FixClient(server.fix_port, server.trader("fix-stop"), "STOP1")
    client.logon()
    body: list[Field] = [
        (11, "s-1"),
        (55, SYMBOL),
        (54, "1"),
        (60, sending_time(time.time_ns())),
        (38, "0.003"),
    ]
    client.send("D", [*body, (40, "3"), (99, "60100")])
    accepted = client.expect("8", t150="0")
    # Act: a REST trade at 60,200 moves the last price through the stop
    second = server.signed("POST", "/fapi/v1/order", buyer, market_buy)
    assert second.status_code == 200, second.text
    fill = client.expect("8", t150="F")
    client.close()
    # Assert
    assert (accepted.get(11), accepted.get(99)) == ("s-1", "60100")
    assert (fill.get(11), fill.get(32), fill.get(31), fill.get(39)) == ("s-1", "0.003", "60200", "2")


def test_fix_orders_count_against_the_account_s_order_limits_as_rest_orders_do(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    venue = FixVenue(
        tmp_path_factory.mktemp("fix-limits") / "data",
        config_text=MANUAL_CONFIG,
        env={"PERPX_ORDER_LIMIT_10S": "2"},
    ).start()
    fix_port = venue.fix_port
    try:
        client = FixClient(fix_port, venue.trader("fix-limited"), "LIM1")
        client.logon()
        for n in range(3):
            client.send("D", order(f"l-{n}", "1", "0.003", "50000"))
        accepted = [client.expect("8", t150="0"), client.expect("8", t150="0")]
        refused = client.expect("8", t150="8")
        client.close()
    finally:
        venue.stop()
    assert [m.get(11) for m in accepted] == ["l-0", "l-1"]
    assert refused.get(11) == "l-2" and (refused.get(58) or "").startswith("-1015")


def fix_acks(server: FixVenue) -> float:
    """``perpx_order_ack_seconds_count{interface="fix"}`` scraped from the admin listener's ``/metrics``."""
    text = httpx.get(f"{server.admin_base}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "perpx_order_ack_seconds_count" and sample.labels == {"interface": "fix"}:
                return float(sample.value)
    raise AssertionError("no perpx_order_ack_seconds_count{interface='fix'} in /metrics")


def test_fix_orders_and_cancels_are_timed_in_the_order_ack_metric(server: FixVenue) -> None:
    # Arrange
    client = FixClient(server.fix_port, server.trader("fix-timed"), "TIMED1")
    client.logon()
    before = fix_acks(server)

    # Act: one order and its cancel
    client.send("D", order("t-1", "1", "0.010", "50000"))
    client.expect("8", t150="0")
    client.send("F", [(41, "t-1"), (11, "t-2"), (55, SYMBOL), (54, "1"), (60, sending_time(time.time_ns()))])
    client.expect("8", t150="4")
    client.close()

    # Assert
    assert fix_acks(server) - before == 2
