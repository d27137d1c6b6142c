"""The operator console in a real browser: risk monitor, liquidation feed with explanations, markets, risk lab.

A long of 1 BTC backed by 2,000 USDT is opened at 30,000; the test then gaps the mark to 28,000
through the admin API (as an operator or a price feed would) and watches the liquidation appear in
the feed with the text ``perpx explain`` prints for it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from ..server.harness import ADMIN_TOKEN, MANUAL_CONFIG, ServerProcess, Trader
from .conftest import ONE_ADDRESS_MANY_PAGES, WatchedPages


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of risk lab runs: one that passed, one with a failed assertion, one that is not a run."""
    base = tmp_path_factory.mktemp("risklab")
    for name, passed in (("calm-day", True), ("cascade", False)):
        run = base / name
        run.mkdir()
        summary = {
            "scenario": name.replace("-", "_"),
            "assertions": [
                {"name": "fund_survives", "expr": "x", "passed": passed, "value": 1, "detail": ""}
            ],
        }
        (run / "summary.json").write_text(json.dumps(summary))
        (run / "report.html").write_text(f"<html><body><h1>report of {name}</h1></body></html>")
    (base / "notes").mkdir()
    return base


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, runs: Path) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("console-operator") / "data"
    process = ServerProcess(
        data, MANUAL_CONFIG, env={**ONE_ADDRESS_MANY_PAGES, "PERPX_RISKLAB_DIR": str(runs)}
    ).start()
    try:
        yield process
    finally:
        process.stop()


def order(server: ServerProcess, trader: Trader, side: str, qty: str, price: str) -> None:
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


@pytest.fixture(scope="module")
def long_account(server: ServerProcess) -> Trader:
    """Account ``a``: long 1 BTC at 30,000 with 2,000 USDT; a bid of 0.3 at 28,500 below it."""
    assert server.admin(
        "POST", "/marks", {"symbol": "BTCUSDT", "markPrice": "30000", "indexPrice": "30000"}
    ).is_success
    mm = server.trader("mm", deposit="1000000")
    a = server.trader("a", deposit="2000")
    s = server.trader("s", deposit="100000")
    order(server, s, "SELL", "1", "30000")
    order(server, a, "BUY", "1", "30000")
    order(server, mm, "BUY", "0.3", "28500")
    return a


def operator_page(pages: WatchedPages, server: ServerProcess, width: int = 1280) -> Page:
    page = pages.new(width=width, height=720 if width > 800 else 844)
    page.goto(server.admin_base + "/")
    expect(page).to_have_title("perpx - operator console")
    page.fill("#token", ADMIN_TOKEN)
    page.click("#login button[type=submit]")
    expect(page.locator("#app")).to_be_visible()
    return page


def test_a_wrong_token_is_refused_with_the_venues_message(server: ServerProcess, pages: WatchedPages) -> None:
    pages.expect_console("status of 401")
    page = pages.new()
    page.goto(server.admin_base + "/")
    page.fill("#token", "wrong-token")
    page.keyboard.press("Enter")
    expect(page.locator("#login-error")).to_contain_text("-9202")
    expect(page.locator("#app")).to_be_hidden()
    assert page.evaluate("sessionStorage.length") == 0


def test_the_public_listener_does_not_serve_the_operator_console(server: ServerProcess) -> None:

    assert "operator" not in httpx.get(server.base + "/").text
    assert (
        httpx.get(server.base + "/admin/v1/risk", headers={"X-PERPX-ADMIN": ADMIN_TOKEN}).status_code == 404
    )


def test_a_gapped_mark_shows_the_liquidation_with_its_explanation(
    server: ServerProcess, pages: WatchedPages, long_account: Trader
) -> None:
    page = operator_page(pages, server)
    account_row = page.locator(f"#accounts tr[data-account='{long_account.account_id}']")
    expect(account_row).to_contain_text("BTCUSDT 1 cross")
    expect(page.locator("#feed")).to_contain_text("no liquidation or ADL yet")
    moved = server.admin("POST", "/marks", {"symbol": "BTCUSDT", "markPrice": "28000", "indexPrice": "28010"})
    assert moved.status_code == 200, moved.text
    record = page.locator("#feed li").filter(has_text=f"account {long_account.account_id} |")
    expect(record).to_have_count(1, timeout=10_000)
    summary = record.locator("summary")
    summary.focus()
    page.keyboard.press("Enter")
    explanation = record.locator("pre.explain")
    expect(explanation).to_be_visible()
    expect(explanation).to_contain_text(f"account {long_account.account_id} | scope CROSS | BTCUSDT")
    expect(explanation).to_contain_text("Inputs")
    expect(explanation).to_contain_text("BTCUSDT MarkPriceSet: ")
    expect(explanation).to_contain_text("Formula values (before)")
    expect(explanation).to_contain_text("Actions")
    served = server.admin("GET", "/liquidations/explained").json()["records"][0]
    assert served["accountId"] == long_account.account_id
    assert explanation.inner_text().strip() == served["explanation"].strip()
    expect(page.locator("#fund-history")).not_to_contain_text("no movements yet")
    pages.shot(page, "operator-risk-1280x720")
    pages.shot(page, "operator-risk-full", full_page=True)


def test_markets_show_parameters_and_the_audit_log(server: ServerProcess, pages: WatchedPages) -> None:
    changed = server.admin("POST", "/markets/BTCUSDT/params", {"min_notional": "150"})
    assert changed.status_code == 200, changed.text
    page = operator_page(pages, server)
    page.get_by_role("tab", name="Markets").click()
    table = page.get_by_role("table", name="BTCUSDT parameters")
    expect(table.locator("tr").filter(has_text="min_notional")).to_contain_text("150")
    expect(page.locator("#audit tr").filter(has_text="min_notional")).to_contain_text("150")
    pages.shot(page, "operator-markets")


def test_markets_show_a_proposal_with_its_dry_run_approval_and_audit_trail(
    server: ServerProcess, pages: WatchedPages
) -> None:
    def step(operator: str, path: str, body: dict[str, object] | None = None) -> dict[str, object]:
        with httpx.Client(timeout=60) as client:
            answer = client.post(f"{server.admin_base}/admin/v1/proposals{path}", json=body,
                                 headers={"X-PERPX-ADMIN": ADMIN_TOKEN, "X-PERPX-OPERATOR": operator})  # fmt: skip
        assert answer.status_code == 200, answer.text
        body_out: dict[str, object] = answer.json()
        return body_out

    pid = step(
        "alice",
        "",
        {"symbol": "BTCUSDT", "params": {"max_open_orders": "77"}, "reason": "fewer resting orders"},
    )["id"]
    step("alice", f"/{pid}/dry-run", {"scenarios": ["mark_walk"]})
    step("bob", f"/{pid}/approve")
    page = operator_page(pages, server)
    page.get_by_role("tab", name="Markets").click()
    row = page.locator(f"#proposals tr[data-proposal='{pid}']")
    expect(row).to_contain_text("max_open_orders = 77")
    expect(row).to_contain_text("approved")
    expect(row.locator("td").nth(4)).to_have_text("alice")
    expect(row.locator("td").nth(5)).to_have_text("bob")
    expect(row.locator("td.dry-run")).to_contain_text(
        re.compile(r"mark_walk: liq\. \d+ / \d+, ADL \d+ / \d+, bad debt [\d.]+ / [\d.]+")
    )
    audit = page.locator("#audit tr").filter(has_text=f"proposal #{pid}")
    expect(audit).to_have_count(3)
    expect(audit.filter(has_text="approved")).to_contain_text("bob")
    pages.shot(page, "operator-markets-proposals", full_page=True)


def test_the_risk_lab_lists_runs_and_opens_a_report(server: ServerProcess, pages: WatchedPages) -> None:
    page = operator_page(pages, server)
    page.focus("#tab-risk")
    page.keyboard.press("ArrowLeft")
    expect(page.locator("#tab-lab")).to_be_focused()
    rows = page.locator("#runs tr")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="cascade")).to_contain_text("1 of 1 failed: fund_survives")
    expect(rows.filter(has_text="calm-day")).to_contain_text("1 passed")
    rows.filter(has_text="cascade").get_by_role("button").click()
    expect(page.frame_locator("#report").locator("h1")).to_have_text("report of cascade")


def test_the_risk_monitor_is_readable_on_a_phone(server: ServerProcess, pages: WatchedPages) -> None:
    page = operator_page(pages, server, width=390)
    expect(page.locator("#market-risk tr[data-symbol=BTCUSDT]")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    pages.shot(page, "operator-phone")


def test_the_operator_read_routes_need_the_admin_token(server: ServerProcess) -> None:
    for path in ("/risk", "/liquidations/explained", "/risklab/runs", "/risklab/runs/cascade/report"):
        answer = server.admin("GET", path, token="")
        assert (answer.status_code, answer.json()["code"]) == (401, -9202), path


def test_a_report_outside_the_runs_directory_cannot_be_read(server: ServerProcess) -> None:
    escaped = server.admin("GET", "/risklab/runs/..%2F..%2Fetc/report")
    assert escaped.status_code in (400, 404)
    hidden = server.admin("GET", "/risklab/runs/.cascade/report")
    assert (hidden.status_code, hidden.json()["code"]) == (400, -1100)
    missing = server.admin("GET", "/risklab/runs/notes/report")
    assert (missing.status_code, missing.json()["code"]) == (404, -5000)
    assert "no report.html" in missing.json()["msg"]


def test_accounts_are_listed_worst_margin_ratio_first(server: ServerProcess, long_account: Trader) -> None:
    accounts = server.admin("GET", "/risk").json()["accounts"]
    ratios = [float(a["worstMarginRatio"] or "inf") for a in accounts]
    assert ratios == sorted(ratios, reverse=True)
    assert len(accounts) >= 2


def test_the_markets_only_read_skips_the_accounts_scan(server: ServerProcess, long_account: Trader) -> None:
    answer = server.admin("GET", "/risk?limit=0").json()
    assert answer["accounts"] == []
    assert [m["symbol"] for m in answer["markets"]] == ["BTCUSDT", "ETHUSDT"]
