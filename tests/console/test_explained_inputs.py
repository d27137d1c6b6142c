"""The operator console's liquidation explanations are ``perpx explain``'s text, Inputs lines included.

In process (the real admin app and sequencer): a long of 1 BTC backed by 2,000 USDT is opened at
30,000 and the mark is set to 28,000 through the admin API; the explanation the console shows
must be, character for character, what ``perpx explain`` renders from the journal for that record.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from perpx.console.explained import TEXT_WIDTH
from perpx.explain import collect, render
from perpx.journal.store import read_config

from ..server.harness import Trader
from ..server.inprocess import InProcessVenue, in_process_venue

BTC = "BTCUSDT"


@pytest.fixture
def venue(tmp_path: Path) -> Iterator[InProcessVenue]:
    with in_process_venue(tmp_path / "venue") as started:
        yield started


def limit(venue: InProcessVenue, trader: Trader, side: str, qty: str, price: str) -> None:
    params = {
        "symbol": BTC,
        "side": side,
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": qty,
        "price": price,
    }
    venue.ok("POST", "/fapi/v1/order", trader, params)


def explain_text(data: Path, account_id: int) -> str:
    records, _ = collect(data, read_config(data), account_id)
    text = io.StringIO()
    render(Console(file=text, width=TEXT_WIDTH, color_system=None, force_terminal=False), read_config(data),
           records[-1:], account_id)  # fmt: skip
    return text.getvalue()


def test_a_liquidation_explanation_has_the_inputs_lines_of_perpx_explain(venue: InProcessVenue) -> None:
    # Arrange: a long at 30,000 with 2,000 USDT, a bid below it to take the liquidation
    venue.mark(BTC, "30000")
    mm, long, short = venue.trader("mm", "1000000"), venue.trader("a", "2000"), venue.trader("s", "100000")
    limit(venue, short, "SELL", "1", "30000")
    limit(venue, long, "BUY", "1", "30000")
    limit(venue, mm, "BUY", "0.3", "28500")

    # Act: the mark gaps down
    venue.mark(BTC, "28000")
    served = venue.admin("GET", "/liquidations/explained").json()["records"]

    # Assert
    record = next(r for r in served if r["accountId"] == long.account_id)
    assert "Inputs" in record["explanation"]
    assert f"{BTC} MarkPriceSet: " in record["explanation"]
    assert "'mark_ticks': " in record["explanation"]
    assert record["explanation"] == explain_text(venue.ctx.data_dir, long.account_id)
