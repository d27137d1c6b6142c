"""``perpx tca estimate --venue URL`` against a real ``perpx serve`` child process.

The venue runs on a manual clock. Over six minutes a maker quotes ten dollars wide around a
moving price and a taker hits both sides each minute, so the public REST has candles, aggTrades
that say which side was the maker, and taker orders to fit the impact coefficient on. The estimate
read over REST must equal the one read from the same venue's data directory.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from perpx.cli import app
from tests.server.harness import MANUAL_CONFIG, ServerProcess

SYMBOL = "BTCUSDT"
PATH_USD = (0, 20, 10, 40, 30, 60)
"""The mid's offset from 60,000 in each of the six minutes."""
ESTIMATE = ["tca", "estimate", "--symbol", SYMBOL, "--side", "buy", "--qty", "0.01", "--duration-s", "60"]


def _order(server: ServerProcess, trader: object, **params: str) -> None:
    answer = server.signed("POST", "/fapi/v1/order", trader, {"symbol": SYMBOL, **params})  # type: ignore[arg-type]
    assert answer.status_code == 200, answer.text


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("rest") / "data", config_text=MANUAL_CONFIG).start()
    try:
        marked = process.admin(
            "POST", "/marks", {"symbol": SYMBOL, "markPrice": "60000", "indexPrice": "60000"}
        )
        assert marked.status_code == 200, marked.text
        maker, taker = process.trader("rest-maker"), process.trader("rest-taker")
        for offset in PATH_USD:
            mid = 60_000 + offset
            _order(
                process,
                maker,
                side="SELL",
                type="LIMIT",
                quantity="0.002",
                price=str(mid + 5),
                timeInForce="GTC",
            )
            _order(
                process,
                maker,
                side="BUY",
                type="LIMIT",
                quantity="0.003",
                price=str(mid - 5),
                timeInForce="GTC",
            )
            _order(process, taker, side="BUY", type="MARKET", quantity="0.002")
            _order(process, taker, side="SELL", type="MARKET", quantity="0.003")
            advanced = process.admin("POST", "/clock", {"advanceMs": 60_000})
            assert advanced.status_code == 200, advanced.text
        yield process
    finally:
        process.stop()


def test_estimate_from_a_running_venue_prints_the_calibration_it_fitted(server: ServerProcess) -> None:
    # Act
    result = CliRunner().invoke(app, [*ESTIMATE, "--venue", server.base])
    # Assert
    assert result.exit_code == 0, result.output
    fit = re.search(r"impact calibration: Y = (-?[\d.]+) on n = (\d+) taker orders, R\^2 = ", result.output)
    assert fit is not None, result.output
    assert 8 <= int(fit.group(2)) <= 2 * len(PATH_USD)  # the first orders have no inferred quote before them
    assert "expected participation" in result.output
    assert f"from {server.base}: {len(PATH_USD)} one-minute candles" in result.output


def test_estimate_over_rest_equals_the_estimate_from_the_data_directory(server: ServerProcess) -> None:
    over_rest = CliRunner().invoke(app, [*ESTIMATE, "--venue", server.base])
    from_files = CliRunner().invoke(app, [*ESTIMATE, "--data", str(server.data_dir)])
    assert over_rest.exit_code == 0 and from_files.exit_code == 0, over_rest.output + from_files.output
    assert over_rest.output.splitlines()[:5] == from_files.output.splitlines()[:5]


@pytest.mark.parametrize(
    ("venue", "message"),
    [
        ("ftp://example", "--venue must be an http(s) URL"),
        ("http://127.0.0.1:9", "cannot reach it"),
    ],
)
def test_estimate_from_an_unusable_venue_says_why_in_one_line(venue: str, message: str) -> None:
    result = CliRunner().invoke(app, [*ESTIMATE, "--venue", venue])
    assert result.exit_code == 2 and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1


def test_estimate_of_an_unknown_symbol_relays_the_venue_s_error(server: ServerProcess) -> None:
    args = [a if a != SYMBOL else "NOPEUSDT" for a in ESTIMATE]
    result = CliRunner().invoke(app, [*args, "--venue", server.base])
    assert result.exit_code == 2, result.output
    assert "/fapi/v1/depth: the venue answered 400: -1121 Invalid symbol." in result.output
