"""One real ``perpx serve`` (a child process, real sockets) for the client compatibility suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.server.harness import ServerProcess, Trader

BTC = "BTCUSDT"


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
