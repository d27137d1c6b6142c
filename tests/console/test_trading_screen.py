"""The trading screen in a real browser against a real ``perpx serve`` (manual clock, marks by the admin API).

One trader uses the page (key and secret typed into the login form); a second one, driven over
signed REST, makes the market the page must show and trade against.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from ..server.harness import MANUAL_CONFIG, ServerProcess, Trader
from .conftest import ONE_ADDRESS_MANY_PAGES, WatchedPages

MARK = "30000"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(
        tmp_path_factory.mktemp("console-trading") / "data", MANUAL_CONFIG, env=ONE_ADDRESS_MANY_PAGES
    ).start()
    try:
        answer = process.admin("POST", "/marks", {"symbol": "BTCUSDT", "markPrice": MARK, "indexPrice": MARK})
        assert answer.status_code == 200, answer.text
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def maker(server: ServerProcess) -> Trader:
    return server.trader("maker", deposit="1000000")


@pytest.fixture(scope="module")
def user(server: ServerProcess) -> Trader:
    return server.trader("browser", deposit="100000")


def place(server: ServerProcess, trader: Trader, side: str, qty: str, price: str) -> int:
    answer = server.signed(
        "POST",
        "/fapi/v1/order",
        trader,
        {
            "symbol": "BTCUSDT",
            "side": side,
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": qty,
            "price": price,
        },
    )
    assert answer.status_code == 200, answer.text
    order_id: int = answer.json()["orderId"]
    return order_id


def open_logged_in(pages: WatchedPages, server: ServerProcess, user: Trader, width: int = 1280) -> Page:
    page = pages.new(width=width, height=720 if width > 800 else 844)
    page.goto(f"{server.base}/?symbol=BTCUSDT")
    expect(page.locator("#live")).to_have_text("live")
    page.fill("#api-key", user.api_key)
    page.fill("#api-secret", user.secret)
    page.click("#login button[type=submit]")
    expect(page.locator("#order")).to_be_visible()
    return page


def test_the_public_listener_serves_the_trading_screen_at_root(
    server: ServerProcess, pages: WatchedPages
) -> None:
    page = pages.new()
    page.goto(server.base + "/")
    expect(page).to_have_title("perpx - trading")
    expect(page.locator("#market")).to_have_value("BTCUSDT")
    expect(page.locator("#st-mark")).to_have_text("30000")
    expect(page.locator("#live")).to_have_text("live")


def test_the_chart_draws_mark_and_index_history_from_the_price_klines(
    server: ServerProcess, pages: WatchedPages
) -> None:
    page = pages.new()
    with (
        page.expect_request(re.compile(r"/fapi/v1/markPriceKlines\?symbol=BTCUSDT&interval=1m")) as marks,
        page.expect_request(re.compile(r"/fapi/v1/indexPriceKlines\?pair=BTCUSDT&interval=1m")) as indexes,
    ):
        page.goto(f"{server.base}/?symbol=BTCUSDT")
    expect(page.locator("#chart")).to_have_attribute("data-mark-points", re.compile(r"^[1-9][0-9]*$"))
    expect(page.locator("#chart")).to_have_attribute("data-index-points", re.compile(r"^[1-9][0-9]*$"))
    served = server.public("/fapi/v1/markPriceKlines", symbol="BTCUSDT", interval="1m", limit=500)
    assert marks.value.response() is not None and indexes.value.response() is not None
    closes = [row[4] for row in served.json() if float(row[4]) > 0]
    assert page.locator("#chart").get_attribute("data-mark-points") == str(len(closes))
    assert float(closes[-1]) == float(MARK)


def test_the_book_shows_a_resting_order_placed_by_another_client(
    server: ServerProcess, pages: WatchedPages, maker: Trader
) -> None:
    page = pages.new()
    page.goto(f"{server.base}/?symbol=BTCUSDT")
    expect(page.locator("#live")).to_have_text("live")
    place(server, maker, "SELL", "0.5", "30100")
    place(server, maker, "BUY", "0.4", "29900")
    expect(page.locator("#asks tr").filter(has_text="30100.0")).to_contain_text("0.5")
    expect(page.locator("#bids tr").filter(has_text="29900.0")).to_contain_text("0.4")
    expect(page.locator("#spread")).to_contain_text("spread 200.0")
    page.select_option("#group", "1000")
    expect(page.locator("#asks tr").first).to_contain_text("30100")
    pages.shot(page, "trading-book")


def test_an_order_placed_through_the_ticket_is_listed_then_cancelled(
    server: ServerProcess, pages: WatchedPages, user: Trader
) -> None:
    page = open_logged_in(pages, server, user)
    page.select_option("#type", "LIMIT")
    page.fill("#price", "29000")
    page.fill("#qty", "0.01")
    expect(page.locator("#est-notional")).to_have_text("290.00 USDT")
    expect(page.locator("#est-cost")).to_contain_text("USDT")
    page.click("#send")
    expect(page.locator("#order-result")).to_contain_text("limit order placed")
    page.get_by_role("tab", name="Open orders").click()
    row = page.locator("#open-orders tr").filter(has_text="29000")
    expect(row).to_have_count(1)
    open_ids = [o["orderId"] for o in server.signed("GET", "/fapi/v1/openOrders", user).json()]
    assert len(open_ids) == 1
    row.get_by_role("button", name=re.compile("^Cancel")).click()
    expect(page.locator("#open-orders")).to_contain_text("no open orders")
    assert server.signed("GET", "/fapi/v1/openOrders", user).json() == []


def test_a_market_order_through_the_ticket_fills_and_shows_in_positions(
    server: ServerProcess, pages: WatchedPages, user: Trader, maker: Trader
) -> None:
    place(server, maker, "SELL", "0.2", "30050")
    page = open_logged_in(pages, server, user)
    page.select_option("#type", "MARKET")
    page.fill("#qty", "0.1")
    expect(page.locator("#est-liq")).to_have_text("none")
    page.click("#send")
    expect(page.locator("#order-result")).to_contain_text("market order sent")
    row = page.locator("#positions tr[data-symbol=BTCUSDT]")
    expect(row).to_contain_text("0.1")
    expect(row).to_contain_text("30050")
    position = server.signed("GET", "/fapi/v2/positionRisk", user, {"symbol": "BTCUSDT"}).json()[0]
    assert (position["positionAmt"], position["liquidationPrice"]) == ("0.1", "0")
    page.get_by_role("tab", name="Trade history").click()
    expect(page.locator("#fills")).to_contain_text("30050")
    pages.shot(page, "trading-1280x720")


def test_a_refusal_shows_the_venues_message_as_is(
    server: ServerProcess, pages: WatchedPages, user: Trader
) -> None:
    pages.expect_console("status of 400")
    refused = server.signed(
        "POST",
        "/fapi/v1/order",
        user,
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.01",
            "price": "40000",
        },
    )
    assert refused.status_code == 400
    venue = refused.json()
    page = open_logged_in(pages, server, user)
    page.select_option("#type", "LIMIT")
    page.fill("#price", "40000")
    page.fill("#qty", "0.01")
    page.click("#send")
    expect(page.locator("#order-error")).to_have_text(f"{venue['code']} {venue['msg']}")
    pages.shot(page, "trading-refusal")


def test_a_wrong_secret_is_refused_at_login_and_nothing_is_stored(
    server: ServerProcess, pages: WatchedPages, user: Trader
) -> None:
    pages.expect_console("status of 400")
    page = pages.new()
    page.goto(server.base + "/")
    page.fill("#api-key", user.api_key)
    page.fill("#api-secret", "not-the-secret")
    page.click("#login button[type=submit]")
    expect(page.locator("#login-error")).to_contain_text("-1022")
    assert page.evaluate("sessionStorage.length") == 0
    expect(page.locator("#order")).to_be_hidden()


def test_the_ticket_works_from_the_keyboard_alone(
    server: ServerProcess, pages: WatchedPages, user: Trader
) -> None:
    page = pages.new()
    page.goto(f"{server.base}/?symbol=BTCUSDT")
    expect(page.locator("#login-button")).to_be_enabled()
    page.focus("#api-key")
    page.keyboard.type(user.api_key)
    page.keyboard.press("Tab")
    page.keyboard.type(user.secret)
    page.keyboard.press("Enter")
    expect(page.locator("#order")).to_be_visible()
    page.focus("#price")
    page.keyboard.type("29500")
    page.keyboard.press("Tab")
    page.keyboard.type("0.01")
    page.keyboard.press("Enter")
    expect(page.locator("#order-result")).to_contain_text("limit order placed")
    page.focus("#tab-positions")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#tab-open")).to_be_focused()
    expect(page.locator("#p-open")).to_be_visible()
    expect(page.locator("#open-orders")).to_contain_text("29500")
    assert server.signed("DELETE", "/fapi/v1/allOpenOrders", user, {"symbol": "BTCUSDT"}).status_code == 200


def test_a_phone_width_window_has_no_sideways_scroll_and_keeps_the_ticket(
    server: ServerProcess, pages: WatchedPages, user: Trader
) -> None:
    page = open_logged_in(pages, server, user, width=390)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    expect(page.locator("#send")).to_be_visible()
    expect(page.locator("#asks tr").first).to_be_visible()
    pages.shot(page, "trading-phone", full_page=True)


def test_the_page_holds_the_key_in_session_storage_only_never_in_the_url(
    server: ServerProcess, pages: WatchedPages, user: Trader
) -> None:
    page = open_logged_in(pages, server, user)
    assert page.evaluate("sessionStorage.getItem('perpx.apiSecret')") == user.secret
    assert page.evaluate("localStorage.length") == 0
    assert user.api_key not in page.url
    assert user.secret not in page.url
    assert user.secret not in page.evaluate("document.cookie")


def test_the_liquidation_price_shown_before_sending_is_the_venues_after_the_fill(
    server: ServerProcess, pages: WatchedPages, maker: Trader
) -> None:
    thin = server.trader("thin", deposit="400")
    place(server, maker, "SELL", "0.1", "30080")  # behind whatever rests at a better price
    page = open_logged_in(pages, server, thin)
    page.select_option("#type", "MARKET")
    page.fill("#qty", "0.1")
    expect(page.locator("#est-liq")).to_contain_text("~")
    estimate = float(page.locator("#est-liq").inner_text().lstrip("~"))
    page.click("#send")
    expect(page.locator("#positions tr[data-symbol=BTCUSDT] td").nth(1)).to_have_text("0.1")
    venue = server.signed("GET", "/fapi/v2/positionRisk", thin, {"symbol": "BTCUSDT"}).json()[0]
    assert venue["positionAmt"] == "0.1"
    assert abs(estimate - float(venue["liquidationPrice"])) <= 0.5, (estimate, venue)
    expect(page.locator("#positions tr[data-symbol=BTCUSDT]")).to_contain_text(venue["liquidationPrice"])


def test_a_stop_market_order_goes_to_the_algo_route_and_is_cancelled_from_the_list(
    server: ServerProcess, pages: WatchedPages, maker: Trader
) -> None:
    user = server.trader("stopper", deposit="10000")
    place(server, maker, "SELL", "0.05", "30070")
    bought = server.signed(
        "POST",
        "/fapi/v1/order",
        user,
        {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.05"},
    )
    assert bought.status_code == 200, bought.text
    page = open_logged_in(pages, server, user)
    page.check("input[name=side][value=SELL]")
    page.select_option("#type", "STOP_MARKET")
    expect(page.locator("#price-field")).to_be_hidden()
    page.fill("#trigger", "29000")
    page.fill("#qty", "0.05")
    page.check("#reduce-only")
    page.click("#send")
    expect(page.locator("#order-result")).to_contain_text("stop market order placed: algo")
    algos = server.signed("GET", "/fapi/v1/openAlgoOrders", user).json()
    assert [(a["orderType"], a["triggerPrice"], a["reduceOnly"]) for a in algos] == [
        ("STOP_MARKET", "29000", True)
    ]
    page.get_by_role("tab", name="Open orders").click()
    row = page.locator(f"#open-orders tr[data-algo-id='{algos[0]['algoId']}']")
    expect(row).to_contain_text("trigger 29000")
    row.get_by_role("button", name=re.compile("^Cancel")).click()
    expect(page.locator("#open-orders")).to_contain_text("no open orders")
    assert server.signed("GET", "/fapi/v1/openAlgoOrders", user).json() == []


def test_an_open_order_is_amended_in_place(server: ServerProcess, pages: WatchedPages, user: Trader) -> None:
    order_id = place(server, user, "BUY", "0.01", "29100")
    page = open_logged_in(pages, server, user)
    page.get_by_role("tab", name="Open orders").click()
    row = page.locator(f"#open-orders tr[data-order-id='{order_id}']")
    row.get_by_role("button", name=f"Amend order {order_id}").click()
    price = page.get_by_label(f"New price of order {order_id}")
    expect(price).to_be_focused()
    price.fill("29200")
    price.press("Enter")
    expect(page.locator("#order-result")).to_contain_text(f"amended order {order_id}")
    expect(page.locator(f"#open-orders tr[data-order-id='{order_id}']")).to_contain_text("29200")
    order = server.signed("GET", "/fapi/v1/order", user, {"symbol": "BTCUSDT", "orderId": order_id}).json()
    assert order["price"] == "29200"
    assert server.signed("DELETE", "/fapi/v1/allOpenOrders", user, {"symbol": "BTCUSDT"}).status_code == 200


def test_the_close_button_flattens_the_position_at_market(
    server: ServerProcess, pages: WatchedPages, maker: Trader
) -> None:
    closer = server.trader("closer", deposit="10000")
    place(server, maker, "SELL", "0.02", "30060")
    assert server.signed(
        "POST",
        "/fapi/v1/order",
        closer,
        {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.02"},
    ).is_success
    place(server, maker, "BUY", "0.05", "29950")
    page = open_logged_in(pages, server, closer)
    row = page.locator("#positions tr[data-symbol=BTCUSDT]")
    expect(row.locator("td").nth(1)).to_have_text("0.02")
    row.get_by_role("button", name="Close BTCUSDT position at market").click()
    expect(page.locator("#positions")).to_contain_text("no open positions")
    position = server.signed("GET", "/fapi/v2/positionRisk", closer, {"symbol": "BTCUSDT"}).json()[0]
    assert position["positionAmt"] == "0"
