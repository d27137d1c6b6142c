"""Public REST market data end to end: a real ``perpx serve`` and the unmodified ccxt ``binanceusdm``.

One server for the module: the default venue (manual clock, marks set by the
admin API), a book of four levels and three trades two minutes apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.server.harness import ServerProcess, Trader

SYMBOL = "BTC/USDT:USDT"


@dataclass
class Seeded:
    server: ServerProcess
    maker: Trader
    taker: Trader


def order(server: ServerProcess, trader: Trader, side: str, quantity: str, price: str | None = None) -> Any:
    params = {"symbol": "BTCUSDT", "side": side, "quantity": quantity, "newOrderRespType": "RESULT"}
    if price is None:
        params["type"] = "MARKET"
    else:
        params.update(type="LIMIT", price=price, timeInForce="GTC")
    response = server.signed("POST", "/fapi/v1/order", trader, params)
    assert response.status_code == 200, response.text
    return response.json()


def advance(server: ServerProcess, ms: int) -> None:
    response = server.admin("POST", "/clock", {"advanceMs": ms})
    assert response.status_code == 200, response.text


def seed(server: ServerProcess) -> Seeded:
    """Mark 60000; trades: buy 0.002 @ 60010, then (+2 min) sell 0.003 @ 59990 and buy 0.001 @ 60010."""
    assert server.admin("POST", "/marks", {"symbol": "BTCUSDT", "markPrice": "60000"}).status_code == 200
    maker, taker = server.trader("maker"), server.trader("taker")
    order(server, maker, "BUY", "0.010", "59990")
    order(server, maker, "BUY", "0.010", "59980")
    order(server, maker, "SELL", "0.005", "60010")
    order(server, maker, "SELL", "0.004", "60020")
    order(server, taker, "BUY", "0.002")
    advance(server, 120_000)
    order(server, taker, "SELL", "0.003")
    order(server, taker, "BUY", "0.002")
    return Seeded(server, maker, taker)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    server = ServerProcess(tmp_path_factory.mktemp("public") / "data").start()
    try:
        yield seed(server)
    finally:
        server.stop()


def test_exchange_info_lists_what_ccxt_reads_and_ccxt_loads_it(seeded: Seeded) -> None:
    # Arrange
    server = seeded.server
    exchange = server.ccxt(seeded.taker)

    # Act
    info = server.public("/fapi/v1/exchangeInfo").json()
    markets = exchange.load_markets()

    # Assert
    btc = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
    assert {k: btc[k] for k in ("contractType", "status", "baseAsset", "quoteAsset", "marginAsset")} == {
        "contractType": "PERPETUAL",
        "status": "TRADING",
        "baseAsset": "BTC",
        "quoteAsset": "USDT",
        "marginAsset": "USDT",
    }
    filters = {f["filterType"]: f for f in btc["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.1"
    assert filters["LOT_SIZE"] == {
        "filterType": "LOT_SIZE",
        "minQty": "0.001",
        "maxQty": "1000",
        "stepSize": "0.001",
    }
    assert filters["MARKET_LOT_SIZE"]["maxQty"] == "120"
    assert filters["MIN_NOTIONAL"]["notional"] == "100"
    assert filters["PERCENT_PRICE"]["multiplierUp"] == "1.0500"
    assert set(btc["orderTypes"]) >= {
        "LIMIT",
        "MARKET",
        "STOP_MARKET",
        "TAKE_PROFIT_MARKET",
        "TRAILING_STOP_MARKET",
    }
    market = markets[SYMBOL]
    assert (market["linear"], market["active"], market["settle"]) == (True, True, "USDT")
    assert (market["precision"]["price"], market["precision"]["amount"]) == (0.1, 0.001)
    assert (market["limits"]["cost"]["min"], market["limits"]["market"]["max"]) == (100.0, 120.0)


def test_ccxt_order_book_is_the_rest_depth_with_its_update_id(seeded: Seeded) -> None:
    # Arrange
    server = seeded.server
    exchange = server.ccxt(seeded.taker)

    # Act
    book = exchange.fetch_order_book(SYMBOL, 5)
    rest = server.public("/fapi/v1/depth", symbol="BTCUSDT", limit=5).json()

    # Assert: 59990 lost 0.003 to the sell, 60010 sold 0.004 of 0.005
    assert book["bids"] == [[59990.0, 0.007], [59980.0, 0.01]]
    assert book["asks"] == [[60010.0, 0.001], [60020.0, 0.004]]
    assert book["nonce"] == rest["lastUpdateId"] > 0
    assert rest["bids"] == [["59990", "0.007"], ["59980", "0.01"]]


def test_ccxt_fetch_trades_reads_aggregate_trades_with_sides(seeded: Seeded) -> None:
    # Arrange
    exchange = seeded.server.ccxt(seeded.taker)

    # Act
    trades = exchange.fetch_trades(SYMBOL)
    recent = seeded.server.public("/fapi/v1/trades", symbol="BTCUSDT", limit=2).json()

    # Assert
    assert [(t["side"], t["price"], t["amount"]) for t in trades] == [
        ("buy", 60010.0, 0.002),
        ("sell", 59990.0, 0.003),
        ("buy", 60010.0, 0.002),
    ]
    assert trades[1]["timestamp"] - trades[0]["timestamp"] == 120_000
    assert [(r["price"], r["qty"], r["quoteQty"], r["isBuyerMaker"]) for r in recent] == [
        ("59990", "0.003", "179.97", True),
        ("60010", "0.002", "120.02", False),
    ]


def test_ccxt_fetch_ohlcv_has_a_candle_per_minute_with_gaps_filled(seeded: Seeded) -> None:
    # Arrange
    exchange = seeded.server.ccxt(seeded.taker)

    # Act
    candles = exchange.fetch_ohlcv(SYMBOL, "1m")

    # Assert: the first trade's minute, one quiet minute at its close, the minute of the last two
    assert [c[1:] for c in candles] == [
        [60010.0, 60010.0, 60010.0, 60010.0, 0.002],
        [60010.0, 60010.0, 60010.0, 60010.0, 0.0],
        [59990.0, 60010.0, 59990.0, 60010.0, 0.005],
    ]
    assert candles[1][0] - candles[0][0] == 60_000


def test_ccxt_fetch_ticker_has_24h_statistics(seeded: Seeded) -> None:
    # Arrange
    exchange = seeded.server.ccxt(seeded.taker)

    # Act
    ticker = exchange.fetch_ticker(SYMBOL)

    # Assert
    assert (ticker["last"], ticker["open"], ticker["high"], ticker["low"]) == (
        60010.0,
        60010.0,
        60010.0,
        59990.0,
    )
    assert ticker["baseVolume"] == pytest.approx(0.007)
    assert ticker["quoteVolume"] == pytest.approx(420.01)


def test_ccxt_fetch_funding_rate_of_a_market_without_index_sources(seeded: Seeded) -> None:
    # Arrange
    exchange = seeded.server.ccxt(seeded.taker)

    # Act
    funding = exchange.fetch_funding_rate(SYMBOL)

    # Assert
    assert (funding["markPrice"], funding["indexPrice"], funding["fundingRate"]) == (60000.0, 60000.0, 0.0)


def test_price_book_ticker_and_premium_index_answer_one_or_all(seeded: Seeded) -> None:
    # Arrange
    server = seeded.server

    # Act
    prices = server.public("/fapi/v2/ticker/price").json()
    book = server.public("/fapi/v1/ticker/bookTicker", symbol="BTCUSDT").json()
    premium = server.public("/fapi/v1/premiumIndex").json()
    interest = server.public("/fapi/v1/openInterest", symbol="BTCUSDT").json()

    # Assert
    assert [(p["symbol"], p["price"]) for p in prices] == [("BTCUSDT", "60010"), ("ETHUSDT", "0")]
    assert (book["bidPrice"], book["bidQty"], book["askPrice"], book["askQty"]) == (
        "59990",
        "0.007",
        "60010",
        "0.001",
    )
    assert [p["symbol"] for p in premium] == ["BTCUSDT", "ETHUSDT"]
    assert interest["openInterest"] == "0.001"


@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        ("/fapi/v1/depth", {"symbol": "NOPE"}, -1121),
        ("/fapi/v1/depth", {}, -1102),
        ("/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "7m"}, -1102),
        ("/fapi/v1/aggTrades", {"symbol": "BTCUSDT", "limit": "5000"}, -1102),
        ("/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1m", "startTime": "9", "endTime": "1"}, -1128),
    ],
)
def test_bad_market_data_requests_get_binance_codes(
    seeded: Seeded, path: str, params: dict[str, str], code: int
) -> None:
    # Arrange, Act
    response = seeded.server.public(path, **params)

    # Assert
    assert response.status_code == 400
    assert response.json()["code"] == code


def test_exchange_info_follows_market_mode_and_parameter_changes(seeded: Seeded) -> None:
    # Arrange
    server = seeded.server
    halted = server.admin("POST", "/markets/ETHUSDT/mode", {"mode": "halted"})
    changed = server.admin("POST", "/markets/ETHUSDT/params", {"min_notional": "50", "max_open_orders": 100})
    assert (halted.status_code, changed.status_code) == (200, 200), (halted.text, changed.text)

    # Act
    info = server.public("/fapi/v1/exchangeInfo").json()
    markets = server.ccxt(seeded.taker).load_markets()

    # Assert
    eth = next(s for s in info["symbols"] if s["symbol"] == "ETHUSDT")
    filters = {f["filterType"]: f for f in eth["filters"]}
    assert eth["status"] == "SETTLING"
    assert (filters["MIN_NOTIONAL"]["notional"], filters["MAX_NUM_ORDERS"]["limit"]) == ("50", 100)
    assert markets["ETH/USDT:USDT"]["active"] is False
    assert markets[SYMBOL]["active"] is True


def test_restart_keeps_trades_and_klines_and_rebuilds_them_from_the_journal(seeded: Seeded) -> None:
    """Last in the module: it restarts the shared server on its data directory."""
    # Arrange
    server = seeded.server
    trades = server.public("/fapi/v1/aggTrades", symbol="BTCUSDT").json()
    klines = server.public("/fapi/v1/klines", symbol="BTCUSDT", interval="1m").json()
    depth = server.public("/fapi/v1/depth", symbol="BTCUSDT").json()

    # Act
    server.stop()
    server.start()

    # Assert
    assert len(trades) == 3
    assert server.public("/fapi/v1/aggTrades", symbol="BTCUSDT").json() == trades
    assert server.public("/fapi/v1/klines", symbol="BTCUSDT", interval="1m").json() == klines
    after = server.public("/fapi/v1/depth", symbol="BTCUSDT").json()
    assert (after["bids"], after["asks"]) == (depth["bids"], depth["asks"])
    assert after["lastUpdateId"] >= depth["lastUpdateId"]

    # Act: lose the read model; start-up rebuilds it from the journal
    server.stop()
    for path in server.data_dir.glob("market.sqlite*"):
        path.unlink()
    server.start()

    # Assert
    assert server.public("/fapi/v1/aggTrades", symbol="BTCUSDT").json() == trades
    assert server.public("/fapi/v1/klines", symbol="BTCUSDT", interval="1m").json() == klines
