"""kill -9 while accepts are in flight: after the restart no quote is left BOOKING, and the ledger agrees.

Eight quotes are accepted at once against a real ``perpx serve``; the server is killed with SIGKILL as
soon as the first answer arrives, so the other accepts die somewhere between the desk's BOOKING write
and the engine's answer. After the restart every quote is settled from the journal
(``perpx.otc.reconcile``): the FILLED quotes are exactly the client's block trades, each once, and
the rest are released with -9570 or were never accepted. Which of the accepts the kill catches
BOOKING varies from run to run; the rules hold for every outcome.

Two server starts (~30 s): opt-in, ``pytest --run-stress tests/otc/test_rfq_kill.py``. The default
run settles BOOKING quotes deterministically in ``test_rfq_restart.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

import pytest

from perpx.otc import errors
from tests.otc.test_rfq_routes import OTC_SECTION, SYMBOL
from tests.server.harness import MANUAL_CONFIG, ServerProcess, Trader

pytestmark = pytest.mark.stress

CONFIG = MANUAL_CONFIG + OTC_SECTION.format(desk=1)
QUOTES = 8


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path / "data", config_text=CONFIG).start()
    try:
        yield process
    finally:
        process.stop()


def _ok(server: ServerProcess, method: str, path: str, trader: Trader, params: dict[str, str]) -> object:
    answer = server.signed(method, path, trader, params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_kill_9_between_booking_and_the_answer_leaves_no_quote_booking_and_no_trade_twice(
    server: ServerProcess,
) -> None:
    desk = server.trader("desk", deposit="1000000")
    maker = server.trader("maker", deposit="1000000")
    client = server.trader("client", deposit="1000000")
    assert desk.account_id == 1
    assert server.admin(
        "POST", "/marks", {"symbol": SYMBOL, "markPrice": "30000", "indexPrice": "30000"}
    ).is_success
    for side, price in (("BUY", "29995"), ("SELL", "30005")):
        params = {
            "symbol": SYMBOL,
            "side": side,
            "type": "LIMIT",
            "quantity": "9",
            "price": price,
            "timeInForce": "GTC",
        }
        _ok(server, "POST", "/fapi/v1/order", maker, params)
    quote_ids = []
    for _ in range(QUOTES):
        quote = _ok(
            server, "POST", "/perpx/v1/rfq", client, {"symbol": SYMBOL, "quantity": "0.5", "side": "BUY"}
        )
        assert isinstance(quote, dict)
        quote_ids.append(str(quote["quoteId"]))

    with ThreadPoolExecutor(QUOTES) as pool:
        futures = [pool.submit(server.signed, "POST", f"/perpx/v1/rfq/{q}/accept", client) for q in quote_ids]
        wait(futures, timeout=30, return_when=FIRST_COMPLETED)
        server.kill()
        wait(futures, timeout=30)
    server.start()

    records = [_ok(server, "GET", f"/perpx/v1/rfq/{q}", client, {}) for q in quote_ids]
    trades = _ok(server, "GET", "/fapi/v1/userTrades", client, {"symbol": SYMBOL})
    assert isinstance(trades, list)
    states = {r["status"] for r in records if isinstance(r, dict)}
    filled = {r["tradeId"] for r in records if isinstance(r, dict) and r["status"] == "FILLED"}
    released = [r for r in records if isinstance(r, dict) and r["status"] == "REJECTED"]
    assert "BOOKING" not in states and states <= {"FILLED", "REJECTED", "QUOTED"}
    assert filled == {t["id"] for t in trades if t["orderId"] == 0} and len(filled) >= 1
    assert all(r["code"] == errors.RELEASED_AT_RESTART for r in released)
