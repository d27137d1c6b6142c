"""The admin listener's ``/metrics`` shows the desk's loan book when the desk is the venue's lender."""

from __future__ import annotations

import re
from pathlib import Path

from perpx.lending.venue import LENDING_TOML
from tests.server.harness import MANUAL_CONFIG
from tests.server.inprocess import in_process_venue

OTC = '\n[otc]\ndesk_account = 1\nmin_notional = "100"\n'


def _gauge(text: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert found is not None, f"{name} missing"
    return float(found.group(1))


def test_loan_book_gauges_follow_a_borrow_and_its_interest(tmp_path: Path) -> None:
    with in_process_venue(tmp_path / "data", MANUAL_CONFIG + LENDING_TOML + OTC) as venue:
        desk = venue.trader("desk", "1000000")
        assert desk.account_id == 1
        for source in ("binance", "okx"):
            assert venue.admin(
                "POST", "/asset-prices", {"asset": "BTC", "source": source, "price": "50000"}
            ).is_success
        borrower = venue.trader("borrower", None)
        funded = venue.admin(
            "POST",
            "/deposits",
            {"accountId": borrower.account_id, "asset": "BTC", "amount": "1", "txId": "b"},
        )
        assert funded.is_success
        empty = venue.client.get("http://admin.test/metrics").text
        venue.ok(
            "POST",
            "/sapi/v2/loan/flexible/borrow",
            borrower,
            {"loanCoin": "USDT", "collateralCoin": "BTC", "loanAmount": "25000", "collateralAmount": "1"},
        )
        lent = venue.client.get("http://admin.test/metrics").text
        assert venue.admin("POST", "/clock", {"advanceMs": 120_000}).is_success  # two minutes of interest
        later = venue.client.get("http://admin.test/metrics").text

    assert _gauge(empty, "perpx_otc_loan_open") == 0 and _gauge(empty, "perpx_otc_loan_book_size") == 0
    assert _gauge(lent, "perpx_otc_loan_open") == 1 and _gauge(lent, "perpx_otc_loan_book_size") == 25000
    assert _gauge(lent, "perpx_otc_loan_average_ltv") == 0.5
    assert 0 < _gauge(lent, "perpx_otc_loan_utilisation") < 0.03
    assert _gauge(later, "perpx_otc_interest_income") > 0
    assert _gauge(later, "perpx_otc_loan_book_size") == 25000 + _gauge(later, "perpx_otc_interest_income")
