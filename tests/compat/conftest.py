"""One real ``perpx serve`` (a child process, real sockets) for the client compatibility suite.

Tests marked ``freqtrade`` (freqtrade end to end, minutes long, freqtrade in its own venv) run only
when asked: ``pytest -m freqtrade`` or ``PERPX_FREQTRADE=/path/to/freqtrade``; otherwise they are
reported as skipped with the way to run them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.server.harness import ServerProcess, Trader

BTC = "BTCUSDT"


def _freqtrade_requested(config: pytest.Config) -> bool:
    if os.environ.get("PERPX_FREQTRADE"):
        return True
    markexpr = str(config.getoption("markexpr", default="") or "")
    return "freqtrade" in markexpr and "not freqtrade" not in markexpr


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _freqtrade_requested(config):
        return
    skip = pytest.mark.skip(
        reason="freqtrade end to end: run with -m freqtrade or PERPX_FREQTRADE=<freqtrade>"
    )
    for item in items:
        if "freqtrade" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("compat") / "data").start()
    try:
        for symbol, price in ((BTC, "60000"), ("ETHUSDT", "3000")):
            answer = process.admin(
                "POST", "/marks", {"symbol": symbol, "markPrice": price, "indexPrice": price}
            )
            assert answer.status_code == 200, answer.text
        yield process
    finally:
        process.stop()


def cross(server: ServerProcess, taker: Trader, side: str = "BUY", qty: str = "0.01") -> dict[str, object]:
    """A fill for ``taker``: a fresh maker rests the other side at 60000, the taker takes it at market."""
    maker = server.trader(f"maker-for-{taker.account_id}-{side}")
    other = "SELL" if side == "BUY" else "BUY"
    rest = {
        "symbol": BTC,
        "side": other,
        "type": "LIMIT",
        "quantity": qty,
        "price": "60000",
        "timeInForce": "GTC",
    }
    assert server.signed("POST", "/fapi/v1/order", maker, rest).status_code == 200
    taken = server.signed(
        "POST", "/fapi/v1/order", taker, {"symbol": BTC, "side": side, "type": "MARKET", "quantity": qty}
    )
    assert taken.status_code == 200, taken.text
    answer: dict[str, object] = taken.json()
    return answer
