"""Cancel, cancel-all, client order ids, and amend (Binance modify-order semantics).

Amend keeps an order's queue place only when the price is unchanged and the
quantity goes down; any other change sends it to the back of its (new) level,
where it trades at once if the new price crosses.
"""

from __future__ import annotations

import pytest

from perpx.engine.codes import RejectCode
from perpx.engine.commands import AmendOrder, CancelAllOrders
from perpx.engine.events import CommandRejected, OrderCanceled
from perpx.engine.values import ClientOrderId, MarketId, OrderId

from .helpers import BTC, book, code_of, kinds, order_ids, rest, summary, table, venue

# ---------------------------------------------------------------------------- cancel


def test_cancel_removes_the_order_and_its_margin() -> None:
    # Arrange: a bid of 1 @ 30000 reserves 30000 / 20 = 1500 USDT
    v = venue("a")
    order = rest(v, "a", "BUY", "1", "30000")
    assert v.engine.risk(v.names["a"]).order_margin_atoms == 1500 * 10**8

    # Act
    events = v.cancel("a", BTC, order)

    # Assert
    assert summary(v, events, {order: "A"}) == [("canceled", "A", "1")]
    assert book(v) == table("| bid | price | ask |")
    assert v.engine.risk(v.names["a"]).order_margin_atoms == 0


def test_cancel_with_unknown_id_is_rejected() -> None:
    # Arrange
    v = venue("a")
    rest(v, "a", "BUY", "1", "30000")
    before = v.hash()

    # Act
    events = v.cancel("a", BTC, order_id=999)

    # Assert
    assert code_of(events) == RejectCode.UNKNOWN_ORDER
    assert v.hash() == before


def test_cancel_of_another_accounts_order_is_rejected_as_unknown() -> None:
    # Arrange
    v = venue("a", "b")
    order = rest(v, "a", "BUY", "1", "30000")

    # Act
    events = v.cancel("b", BTC, order)

    # Assert
    assert code_of(events) == RejectCode.UNKNOWN_ORDER
    assert order in v.engine.orders


def test_cancel_of_a_filled_order_is_rejected_as_unknown() -> None:
    # Arrange
    v = venue("a", "b")
    order = rest(v, "a", "BUY", "1", "30000")
    v.place("b", BTC, "SELL", "1", "30000")

    # Act
    events = v.cancel("a", BTC, order)

    # Assert
    assert code_of(events) == RejectCode.UNKNOWN_ORDER


def test_cancel_without_any_id_is_a_bad_parameter() -> None:
    # Arrange
    v = venue("a")

    # Act
    events = v.cancel("a", BTC)

    # Assert
    assert code_of(events) == RejectCode.BAD_PARAMETER


def test_cancel_by_client_order_id() -> None:
    # Arrange
    v = venue("a")
    keep = rest(v, "a", "BUY", "1", "29000", client_id="keep")
    order = rest(v, "a", "BUY", "1", "30000", client_id="mine-1")

    # Act
    events = v.cancel("a", BTC, client_id="mine-1")

    # Assert
    assert summary(v, events, {order: "A"}) == [("canceled", "A", "1")]
    assert list(v.engine.accounts[v.names["a"]].client_orders.items()) == [("keep", keep)]


def test_cancel_all_cancels_only_the_accounts_orders_in_that_market() -> None:
    # Arrange
    v = venue("a", "b")
    v.mark("ETHUSDT", "2000")
    a1 = rest(v, "a", "BUY", "1", "29000")
    a2 = rest(v, "a", "SELL", "2", "31000")
    rest(v, "b", "BUY", "3", "29500")
    eth = v.place("a", "ETHUSDT", "BUY", "1", "2000")

    # Act
    events = v.cancel_all("a", BTC)

    # Assert: a's two BTC orders in id order; b's order and a's ETH order remain
    assert summary(v, events, {a1: "A1", a2: "A2"}) == [("canceled", "A1", "1"), ("canceled", "A2", "2")]
    assert book(v) == table(
        """
        | bid | price | ask |
        | 3   | 29500 |     |
        """
    )
    assert kinds(eth) == ["OrderAccepted"]
    assert len(v.engine.books[MarketId("ETHUSDT")].bids.depth()) == 1


def test_cancel_all_with_nothing_open_changes_nothing() -> None:
    # Arrange
    v = venue("a")
    before = v.hash()

    # Act
    events = v.cancel_all("a", BTC)

    # Assert
    assert events == []
    assert v.hash() == before


def test_cancel_all_in_an_unknown_market_is_rejected() -> None:
    # Arrange
    v = venue("a")

    # Act
    events = v.apply(CancelAllOrders(ts_ns=v.tick(), account_id=v.names["a"], market=MarketId("XRPUSDT")))

    # Assert
    assert code_of(events) == RejectCode.BAD_SYMBOL


# ---------------------------------------------------------------------------- client order ids


def test_a_client_order_id_in_use_by_an_open_order_is_rejected() -> None:
    # Arrange
    v = venue("a")
    rest(v, "a", "BUY", "1", "29000", client_id="dup")

    # Act
    events = v.place("a", BTC, "BUY", "1", "29100", client_id="dup")

    # Assert
    assert summary(v, events) == [("rejected", RejectCode.DUPLICATE_CLIENT_ORDER_ID)]
    assert book(v) == table(
        """
        | bid | price | ask |
        | 1   | 29000 |     |
        """
    )


@pytest.mark.parametrize("how", ["canceled", "filled", "ioc-never-rested"])
def test_a_client_order_id_is_reusable_once_its_order_is_gone(how: str) -> None:
    # Arrange
    v = venue("a", "b")
    if how == "canceled":
        v.cancel("a", BTC, rest(v, "a", "BUY", "1", "29000", client_id="again"))
    elif how == "filled":
        rest(v, "a", "BUY", "1", "30000", client_id="again")
        v.place("b", BTC, "SELL", "1", "30000")
    else:
        v.place("a", BTC, "BUY", "1", "29000", tif="IOC", client_id="again")

    # Act
    events = v.place("a", BTC, "BUY", "1", "29500", client_id="again")

    # Assert
    assert kinds(events) == ["OrderAccepted"]
    assert v.engine.accounts[v.names["a"]].client_orders[ClientOrderId("again")] in v.engine.orders


def test_the_same_client_order_id_may_be_used_by_two_accounts() -> None:
    # Arrange
    v = venue("a", "b")
    rest(v, "a", "BUY", "1", "29000", client_id="same")

    # Act
    events = v.place("b", BTC, "BUY", "1", "29000", client_id="same")

    # Assert
    assert kinds(events) == ["OrderAccepted"]


@pytest.mark.parametrize("client_id", ["", "x" * 37])
def test_a_client_order_id_must_be_1_to_36_characters(client_id: str) -> None:
    # Arrange
    v = venue("a")

    # Act
    events = v.place("a", BTC, "BUY", "1", "29000", client_id=client_id)

    # Assert
    assert summary(v, events) == [("rejected", RejectCode.BAD_PARAMETER)]


# ---------------------------------------------------------------------------- amend: priority


def test_amend_to_a_smaller_quantity_at_the_same_price_keeps_priority() -> None:
    # Arrange: A then B at 30000
    v = venue("a", "b", "t")
    a = rest(v, "a", "SELL", "2", "30000")
    b = rest(v, "b", "SELL", "1", "30000")

    # Act
    events = v.amend("a", BTC, a, "30000", "1")

    # Assert: A is still first, and is the one a taker meets
    assert summary(v, events, {a: "A"}) == [("amended", "A", "30000", "1", "1", True, "CLIENT")]
    assert order_ids(v)["asks"] == [a, b]
    assert book(v) == table(
        """
        | bid | price | ask |
        |     | 30000 | 2   |
        """
    )
    taken = v.place("t", BTC, "BUY", "1", "30000")
    assert [row[1] for row in summary(v, taken) if row[0] == "filled"][1] == a


@pytest.mark.parametrize(
    ("price", "qty", "asks_out"),
    [
        ("30000", "3", ["B", "A"]),  # same price, more quantity: back of the level
        ("30100", "2", ["B", "A"]),  # new price: back of the new level (B is there already)
        ("30100", "1", ["B", "A"]),  # new price, less quantity: still a new level
    ],
    ids=["qty-up", "price-change", "price-change-qty-down"],
)
def test_amend_of_price_or_up_in_quantity_goes_to_the_back_of_the_queue(
    price: str, qty: str, asks_out: list[str]
) -> None:
    # Arrange: A at 30000; B at the amended price (or behind A at 30000)
    v = venue("a", "b")
    a = rest(v, "a", "SELL", "2", "30000")
    b = rest(v, "b", "SELL", "1", price)

    # Act
    events = v.amend("a", BTC, a, price, qty)

    # Assert
    assert summary(v, events, {a: "A"}) == [("amended", "A", price, qty, qty, False, "CLIENT")]
    names = {a: "A", b: "B"}
    assert [names[i] for i in order_ids(v)["asks"]] == asks_out


def test_amend_away_and_back_loses_priority() -> None:
    # Arrange
    v = venue("a", "b")
    a = rest(v, "a", "BUY", "1", "30000")
    b = rest(v, "b", "BUY", "1", "30000")

    # Act
    v.amend("a", BTC, a, "29900", "1")
    v.amend("a", BTC, a, "30000", "1")

    # Assert
    assert order_ids(v)["bids"] == [b, a]


def test_an_amend_that_crosses_trades_at_once_as_taker() -> None:
    # Arrange: A bids 1 @ 29900; B offers 1 @ 30000
    v = venue("a", "b")
    a = rest(v, "a", "BUY", "1", "29900")
    b = rest(v, "b", "SELL", "1", "30000")

    # Act: A moves its bid up to 30100, through the offer
    events = v.amend("a", BTC, a, "30100", "1")

    # Assert: trades at the maker price 30000, A pays the taker rate (15 USDT), B the maker (6 USDT)
    assert summary(v, events, {a: "A", b: "B"}) == [
        ("amended", "A", "30100", "1", "1", False, "CLIENT"),
        ("filled", "A", "30000", "1", "taker", 1_500_000_000, 0),
        ("filled", "B", "30000", "1", "maker", 600_000_000, 0),
    ]
    assert book(v) == table("| bid | price | ask |")


def test_an_amend_that_crosses_in_part_rests_the_remainder_at_the_new_price() -> None:
    # Arrange
    v = venue("a", "b")
    a = rest(v, "a", "BUY", "1", "29900")
    b = rest(v, "b", "SELL", "1", "30000")

    # Act
    events = v.amend("a", BTC, a, "30000", "3")

    # Assert
    assert summary(v, events, {a: "A", b: "B"}) == [
        ("amended", "A", "30000", "3", "3", False, "CLIENT"),
        ("filled", "A", "30000", "1", "taker", 1_500_000_000, 0),
        ("filled", "B", "30000", "1", "maker", 600_000_000, 0),
    ]
    assert book(v) == table(
        """
        | bid | price | ask |
        | 2   | 30000 |     |
        """
    )


def test_amend_of_a_partly_filled_order_sets_its_total_quantity() -> None:
    # Arrange: A offers 3, 1 of it is taken
    v = venue("a", "t")
    a = rest(v, "a", "SELL", "3", "30000")
    v.place("t", BTC, "BUY", "1", "30000")

    # Act: total 2 means 1 left to fill
    events = v.amend("a", BTC, a, "30000", "2")

    # Assert
    assert summary(v, events, {a: "A"}) == [("amended", "A", "30000", "2", "1", True, "CLIENT")]
    assert book(v) == table(
        """
        | bid | price | ask |
        |     | 30000 | 1   |
        """
    )


# ---------------------------------------------------------------------------- amend: refusals


@pytest.mark.parametrize("qty", ["1", "0.5"])
def test_amend_to_a_quantity_not_above_the_filled_part_is_rejected(qty: str) -> None:
    # Arrange: A offers 3, 1 of it is taken
    v = venue("a", "t")
    a = rest(v, "a", "SELL", "3", "30000")
    v.place("t", BTC, "BUY", "1", "30000")
    before = v.hash()

    # Act
    events = v.amend("a", BTC, a, "30000", qty)

    # Assert
    assert summary(v, events) == [("rejected", RejectCode.AMEND_BELOW_FILLED)]
    assert v.hash() == before


def test_amend_of_an_unknown_order_is_rejected() -> None:
    # Arrange
    v = venue("a")

    # Act
    events = v.amend("a", BTC, 4242, "30000", "1")

    # Assert
    assert summary(v, events) == [("rejected", RejectCode.ORDER_NOT_FOUND)]


def test_amend_by_client_order_id() -> None:
    # Arrange
    v = venue("a")
    a = rest(v, "a", "BUY", "2", "29000", client_id="cl-1")

    # Act
    events = v.apply(
        AmendOrder(
            ts_ns=v.tick(),
            account_id=v.names["a"],
            market=MarketId(BTC),
            client_order_id=ClientOrderId("cl-1"),
            price_ticks=v.ticks(BTC, "29000"),
            qty_lots=v.lots(BTC, "1"),
        )
    )

    # Assert
    assert summary(v, events, {a: "A"}) == [("amended", "A", "29000", "1", "1", True, "CLIENT")]


def test_amend_that_changes_nothing_is_rejected() -> None:
    # Arrange
    v = venue("a")
    a = rest(v, "a", "BUY", "1", "29000")
    before = v.hash()

    # Act
    events = v.amend("a", BTC, a, "29000", "1")

    # Assert
    assert summary(v, events) == [("rejected", RejectCode.AMEND_NOTHING)]
    assert v.hash() == before


@pytest.mark.parametrize(
    ("side", "price", "qty", "code"),
    [
        ("BUY", "31500.1", "1", RejectCode.PERCENT_PRICE),  # above mark 30000 x 1.05
        ("SELL", "28499.9", "1", RejectCode.PERCENT_PRICE),  # below mark 30000 x 0.95
        ("BUY", "29000", "1000.001", RejectCode.QTY_ABOVE_MAX),
        ("BUY", "29000", "0.003", RejectCode.MIN_NOTIONAL),  # 0.003 x 29000 = 87 < 100 USDT
        ("BUY", "0", "1", RejectCode.PRICE_NOT_POSITIVE),
    ],
)
def test_amend_is_held_to_the_order_filters(side: str, price: str, qty: str, code: RejectCode) -> None:
    # Arrange
    v = venue("a")
    a = rest(v, "a", side, "1", "29000" if side == "BUY" else "31000")
    before = v.hash()

    # Act
    events = v.amend("a", BTC, a, price, qty)

    # Assert: refused, and the order is untouched
    assert summary(v, events) == [("rejected", code)]
    assert v.hash() == before


def test_amend_of_a_post_only_order_into_the_opposite_side_is_rejected() -> None:
    # Arrange
    v = venue("a", "b")
    a = rest(v, "a", "BUY", "1", "29900", tif="GTX")
    rest(v, "b", "SELL", "1", "30000")
    before = v.hash()

    # Act
    events = v.amend("a", BTC, a, "30000", "1")

    # Assert
    assert summary(v, events) == [("rejected", RejectCode.POST_ONLY_WOULD_TAKE)]
    assert v.hash() == before


def test_amend_that_needs_more_margin_than_available_is_rejected() -> None:
    # Arrange: 1000 USDT at 20x; a bid of 0.6 @ 30000 reserves 18000 / 20 = 900 USDT
    v = venue("a", deposit="1000")
    a = rest(v, "a", "BUY", "0.6", "30000")
    before = v.hash()

    # Act: 0.7 @ 30000 would need 21000 / 20 = 1050 > 1000 USDT
    events = v.amend("a", BTC, a, "30000", "0.7")

    # Assert
    assert summary(v, events) == [("rejected", RejectCode.MARGIN_INSUFFICIENT)]
    assert v.hash() == before
    # 0.66 @ 30000 needs 19800 / 20 = 990 <= 1000: accepted
    assert kinds(v.amend("a", BTC, a, "30000", "0.66")) == ["OrderAmended"]


def test_amend_names_the_untouched_order_in_its_rejection() -> None:
    # Arrange
    v = venue("a")
    a = rest(v, "a", "BUY", "1", "29000")

    # Act
    events = v.amend("a", BTC, a, "29000", "1")

    # Assert
    assert getattr(events[0], "order_id", None) == OrderId(a)
    assert not any(isinstance(e, OrderCanceled | CommandRejected) for e in events)
