"""freqtrade end to end, live futures mode against a real ``perpx serve`` (opt-in: marker ``freqtrade``).

freqtrade pins its own ccxt and pandas, so it lives in a virtual environment of its own; the test
runs its ``freqtrade`` executable (``PERPX_FREQTRADE``, else the one on ``PATH``)::

    python3 -m venv /tmp/ft && /tmp/ft/bin/pip install freqtrade==2026.9
    PERPX_FREQTRADE=/tmp/ft/bin/freqtrade pytest -m freqtrade tests/compat/test_freqtrade.py

The venue is a demo venue (market makers quote BTCUSDT on a wall clock). freqtrade trades it with
``dry_run: false``, ``trading_mode: futures``, ``margin_mode: isolated``, the trivial strategy
:data:`STRATEGY` (always long, exit by ROI after a minute), a market entry, and its
stop-loss on the exchange. The only perpx-specific setting is ccxt's URL map, from
:func:`perpx.client.api_urls`. The test checks, on the venue's own REST answers: an entry fill
(BUY), the stop placed as an algo order (``STOP_MARKET``, reduce-only), an exit fill (SELL) and
that stop cancelled after the exit; and that freqtrade logged the ROI exit and no error. About two
minutes; every wait has a deadline and freqtrade and the server are stopped in ``finally``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from perpx.client import api_urls
from tests.server.harness import ServerProcess, Trader

BTC = "BTCUSDT"
STRATEGY = '''
"""A trivial futures strategy: always long, out after a minute (ROI), a 5% stop on the exchange."""

from pandas import DataFrame

from freqtrade.strategy import IStrategy


class PerpxTrivial(IStrategy):
    INTERFACE_VERSION = 3
    timeframe = "1m"
    can_short = False
    minimal_roi = {"1": -1}
    stoploss = -0.05
    startup_candle_count = 0
    process_only_new_candles = False

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["enter_long"] = 1
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["exit_long"] = 0
        return dataframe
'''
"""freqtrade's strategy file, written next to the config (freqtrade imports it; pytest never does)."""
CYCLE_DEADLINE_S = 300.0


def freqtrade_executable() -> str | None:
    return os.environ.get("PERPX_FREQTRADE") or shutil.which("freqtrade")


def freqtrade_config(server: ServerProcess, trader: Trader, directory: Path) -> dict[str, Any]:
    ccxt = {
        "urls": {"api": api_urls(server.base)},
        "options": {"fetchMarkets": {"types": ["linear"]}, "fetchCurrencies": False},
    }
    return {
        "max_open_trades": 1,
        "stake_currency": "USDT",
        "stake_amount": 200,
        "tradable_balance_ratio": 0.9,
        "fiat_display_currency": "",
        "dry_run": False,
        "trading_mode": "futures",
        "margin_mode": "isolated",
        "timeframe": "1m",
        "cancel_open_orders_on_exit": True,
        "unfilledtimeout": {"entry": 1, "exit": 1, "unit": "minutes"},
        # Binance futures tickers carry no price for freqtrade: it prices from the book
        "entry_pricing": {"price_side": "other", "use_order_book": True, "order_book_top": 1},
        "exit_pricing": {"price_side": "other", "use_order_book": True, "order_book_top": 1},
        "order_types": {
            "entry": "market",
            "exit": "market",
            "stoploss": "market",
            "stoploss_on_exchange": True,
            "stoploss_on_exchange_interval": 60,
        },
        "exchange": {
            "name": "binance",
            "key": trader.api_key,
            "secret": trader.secret,
            "ccxt_config": ccxt,
            "ccxt_async_config": ccxt,
            "pair_whitelist": ["BTC/USDT:USDT"],
            "pair_blacklist": [],
        },
        "pairlists": [{"method": "StaticPairList"}],
        "bot_name": "perpx-e2e",
        "initial_state": "running",
        "internals": {"process_throttle_secs": 3},
        "db_url": f"sqlite:///{directory / 'trades.sqlite'}",
        "user_data_dir": str(directory / "user_data"),
    }


def wait_for(
    what: str,
    deadline: float,
    check: Callable[[], Any],
    log: Callable[[], str],
    bot: subprocess.Popen[bytes],
) -> Any:
    """Poll ``check`` until it answers something true; fail at ``deadline``, or as soon as freqtrade
    exits, with its log's tail."""
    while time.monotonic() < deadline:
        if bot.poll() is not None:
            pytest.fail(
                f"freqtrade exited ({bot.returncode}) before '{what}'; its log ends:\n{log()[-4000:]}"
            )
        found = check()
        if found:
            return found
        time.sleep(1)
    pytest.fail(f"freqtrade did not reach '{what}' in time; its log ends:\n{log()[-4000:]}")


@pytest.mark.freqtrade
@pytest.mark.timeout(600)
def test_freqtrade_live_futures_enters_stops_on_the_exchange_and_exits(tmp_path: Path) -> None:
    # Arrange
    executable = freqtrade_executable()
    if executable is None:
        pytest.skip("no freqtrade: install it in its own venv and set PERPX_FREQTRADE (see the module doc)")
    server = ServerProcess(tmp_path / "data", config_text=None, demo=True).start()
    bot: subprocess.Popen[bytes] | None = None
    log_path = tmp_path / "freqtrade.log"
    try:
        trader = server.trader("freqtrade", deposit="10000")
        config_path = tmp_path / "config.json"
        config_path.write_text(json.dumps(freqtrade_config(server, trader, tmp_path)))
        strategies = tmp_path / "strategies"
        strategies.mkdir()
        (tmp_path / "user_data").mkdir()
        (strategies / "PerpxTrivial.py").write_text(STRATEGY)

        def signed(path: str, **params: Any) -> list[dict[str, Any]]:
            answer = server.signed("GET", path, trader, {"symbol": BTC, **params})
            assert answer.status_code == 200, answer.text
            rows: list[dict[str, Any]] = answer.json()
            return rows

        def log() -> str:
            return log_path.read_text(errors="replace") if log_path.exists() else ""

        # Act: freqtrade trades until one whole cycle is on the venue
        with open(log_path, "wb") as out:
            bot = subprocess.Popen(
                [
                    executable,
                    "trade",
                    "--config",
                    str(config_path),
                    "--strategy",
                    "PerpxTrivial",
                    "--strategy-path",
                    str(strategies),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=tmp_path,
            )
        deadline = time.monotonic() + CYCLE_DEADLINE_S
        entry = wait_for(
            "an entry fill",
            deadline,
            lambda: [t for t in signed("/fapi/v1/userTrades") if t["side"] == "BUY"],
            log,
            bot,
        )
        stops = wait_for(
            "its stop on the exchange",
            deadline,
            lambda: [a for a in signed("/fapi/v1/allAlgoOrders") if a["orderType"] == "STOP_MARKET"],
            log,
            bot,
        )
        exit_fill = wait_for(
            "an exit fill",
            deadline,
            lambda: [t for t in signed("/fapi/v1/userTrades") if t["side"] == "SELL"],
            log,
            bot,
        )
        first_stop = stops[0]["algoId"]
        cancelled = wait_for(
            "the stop cancelled after the exit",
            deadline,
            lambda: [
                a
                for a in signed("/fapi/v1/allAlgoOrders")
                if a["algoId"] == first_stop and a["algoStatus"] == "CANCELED"
            ],
            log,
            bot,
        )
        # Assert
        assert entry[0]["qty"] == exit_fill[0]["qty"]
        assert stops[0]["side"] == "SELL" and (stops[0]["reduceOnly"] or stops[0]["closePosition"])
        assert float(stops[0]["triggerPrice"]) < float(entry[0]["price"])
        assert cancelled
        text = " ".join(log().split())  # the console wraps long records: compare on words
        assert "stoploss market order added for BTC/USDT:USDT" in text, text[-4000:]
        assert "Exit for BTC/USDT:USDT detected. Reason: roi" in text, text[-4000:]
        assert " - ERROR - " not in text, text[-4000:]
    finally:
        if bot is not None and bot.poll() is None:
            bot.terminate()
            try:
                bot.wait(30)
            except subprocess.TimeoutExpired:
                bot.kill()
                bot.wait(10)
        server.stop()
