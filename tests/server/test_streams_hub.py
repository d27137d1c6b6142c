"""The stream hub in process: stream names, the request protocol, fan-out from a batch, slow clients."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi import WebSocket

from perpx.engine.values import Side
from perpx.server.context import ServerContext
from perpx.server.keys import KeyStore
from perpx.server.streams import Connection, Feed, StreamHub, parse_stream
from tests.server.marketfeed import BTC, T0_MS, MarketFeed

MARKETS = ("BTCUSDT", "ETHUSDT")


@pytest.mark.parametrize(
    ("name", "feed"),
    [
        ("btcusdt@depth", Feed("depth", "BTCUSDT")),
        ("btcusdt@depth@100ms", Feed("depth", "BTCUSDT")),
        ("BTCUSDT@depth@500ms", Feed("depth", "BTCUSDT")),
        ("ethusdt@depth10", Feed("partial", "ETHUSDT", "10", 250)),
        ("btcusdt@depth5@100ms", Feed("partial", "BTCUSDT", "5", 100)),
        ("btcusdt@aggTrade", Feed("aggTrade", "BTCUSDT")),
        ("btcusdt@trade", Feed("trade", "BTCUSDT")),
        ("btcusdt@kline_15m", Feed("kline", "BTCUSDT", "15m")),
        ("btcusdt@markPrice", Feed("markPrice", "BTCUSDT", speed_ms=3000)),
        ("btcusdt@markPrice@1s", Feed("markPrice", "BTCUSDT", speed_ms=1000)),
        ("!markPrice@arr@1s", Feed("markPriceAll", speed_ms=1000)),
        ("btcusdt@bookTicker", Feed("bookTicker", "BTCUSDT")),
        ("btcusdt@ticker", Feed("ticker", "BTCUSDT")),
    ],
)
def test_stream_names_parse_to_feeds(name: str, feed: Feed) -> None:
    # Arrange, Act
    parsed = parse_stream(name, MARKETS)

    # Assert
    assert parsed == feed


@pytest.mark.parametrize(
    "name",
    [
        "btcusdt",
        "dogeusdt@trade",
        "btcusdt@kline_7m",
        "btcusdt@depth7",
        "btcusdt@depth@42ms",
        "btcusdt@nope",
        "@trade",
    ],
)
def test_unknown_stream_names_are_refused(name: str) -> None:
    # Arrange, Act, Assert
    with pytest.raises(ValueError, match="'"):
        parse_stream(name, MARKETS)


def make_hub(tmp_path: Path, feed: MarketFeed | None = None, max_frames: int = 100) -> StreamHub:
    market = feed or MarketFeed(tmp_path)
    ctx = ServerContext(
        config=market.config,
        data_dir=tmp_path,
        keys=KeyStore(tmp_path / "admin.sqlite"),
        admin_token=None,
    )
    return StreamHub(ctx, market.store, market.depth, max_frames=max_frames)


def connection(hub: StreamHub, combined: bool = False) -> Connection:
    conn = Connection(cast(WebSocket, None), combined, hub.max_frames)
    hub.connections.add(conn)
    return conn


def frames(conn: Connection) -> list[Any]:
    out = []
    while not conn.queue.empty():
        out.append(json.loads(conn.queue.get_nowait()))
    return out


def test_subscribe_is_answered_with_a_null_result_and_listed(tmp_path: Path) -> None:
    # Arrange
    hub = make_hub(tmp_path)
    conn = connection(hub)

    # Act
    subscribed = hub.request(
        conn, '{"method":"SUBSCRIBE","params":["btcusdt@depth@100ms","btcusdt@trade"],"id":1}'
    )
    listed = hub.request(conn, '{"method":"LIST_SUBSCRIPTIONS","id":2}')
    unsubscribed = hub.request(conn, '{"method":"UNSUBSCRIBE","params":["btcusdt@trade"],"id":3}')
    after = hub.request(conn, '{"method":"LIST_SUBSCRIPTIONS","id":"x"}')

    # Assert
    assert json.loads(subscribed) == {"result": None, "id": 1}
    assert json.loads(listed) == {"result": ["btcusdt@depth@100ms", "btcusdt@trade"], "id": 2}
    assert json.loads(unsubscribed) == {"result": None, "id": 3}
    assert json.loads(after) == {"result": ["btcusdt@depth@100ms"], "id": "x"}
    assert hub.active == frozenset({Feed("depth", "BTCUSDT")})


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ('{"method":"SUBSCRIBE","params":["btcusdt@nope"],"id":4}', 2),
        ('{"method":"SUBSCRIBE","params":[],"id":4}', 2),
        ('{"method":"FLY","params":[],"id":4}', 2),
        ('{"method":"SUBSCRIBE","params":"btcusdt@trade","id":4}', 1),
        ('{"method":"SET_PROPERTY","params":["speed",1],"id":4}', 0),
        ("{not json", 3),
    ],
)
def test_bad_requests_get_binance_error_codes(tmp_path: Path, text: str, code: int) -> None:
    # Arrange
    hub = make_hub(tmp_path)
    conn = connection(hub)

    # Act
    reply = json.loads(hub.request(conn, text))

    # Assert
    assert reply["error"]["code"] == code
    assert reply["error"]["msg"]
    assert conn.names == {}


def test_a_bad_name_in_a_subscribe_subscribes_none_of_them(tmp_path: Path) -> None:
    # Arrange
    hub = make_hub(tmp_path)
    conn = connection(hub)

    # Act
    reply = json.loads(hub.request(conn, '{"method":"SUBSCRIBE","params":["btcusdt@trade","x@y"],"id":9}'))

    # Assert
    assert reply == {"error": {"code": 2, "msg": "Invalid request: 'x@y': no market X"}, "id": 9}
    assert hub.active == frozenset()


def test_combined_property_can_be_set_and_read(tmp_path: Path) -> None:
    # Arrange
    hub = make_hub(tmp_path)
    conn = connection(hub)

    # Act
    hub.request(conn, '{"method":"SET_PROPERTY","params":["combined",true],"id":1}')
    reply = json.loads(hub.request(conn, '{"method":"GET_PROPERTY","params":["combined"],"id":2}'))

    # Assert
    assert reply == {"result": True, "id": 2}
    assert conn.combined


def test_a_batch_fans_out_depth_trades_and_book_ticker_raw_and_combined(tmp_path: Path) -> None:
    # Arrange
    feed = MarketFeed(tmp_path)
    feed.mark(600_000)
    maker, taker = feed.account("maker"), feed.account("taker")
    hub = make_hub(tmp_path, feed)
    raw, combined = connection(hub), connection(hub, combined=True)
    names = ["btcusdt@depth@100ms", "btcusdt@trade", "btcusdt@aggTrade", "btcusdt@bookTicker"]
    hub.subscribe(raw, names)
    hub.subscribe(combined, ["btcusdt@trade"])
    feed.apply(feed.order(maker, Side.SELL, 600_100, 5))
    start = feed.depth.book_update_id[BTC]

    async def act() -> None:
        hub.loop = asyncio.get_running_loop()
        feed.now_ms = T0_MS + 5_000
        batch = feed.apply(feed.order(taker, Side.BUY, None, 2))
        hub.on_applied(batch, feed.book_changes)
        await asyncio.sleep(0)

    # Act
    asyncio.run(act())

    # Assert
    got = {frame["e"]: frame for frame in frames(raw)}
    assert set(got) == {"depthUpdate", "trade", "aggTrade", "bookTicker"}
    depth = got["depthUpdate"]
    assert (depth["pu"], depth["u"], depth["a"], depth["b"]) == (
        start,
        feed.last_seq,
        [["60010", "0.003"]],
        [],
    )
    assert depth["E"] == depth["T"] == T0_MS + 5_000
    trade = got["trade"]
    assert (trade["s"], trade["p"], trade["q"], trade["m"], trade["X"]) == (
        "BTCUSDT",
        "60010",
        "0.002",
        False,
        "MARKET",
    )
    assert (got["aggTrade"]["a"], got["aggTrade"]["f"], got["aggTrade"]["l"]) == (
        trade["t"],
        trade["t"],
        trade["t"],
    )
    assert (got["bookTicker"]["a"], got["bookTicker"]["A"], got["bookTicker"]["b"]) == ("60010", "0.003", "0")
    [wrapped] = frames(combined)
    assert wrapped == {"stream": "btcusdt@trade", "data": trade}


def test_a_client_that_cannot_keep_up_is_dropped_and_others_still_get_events(tmp_path: Path) -> None:
    # Arrange
    feed = MarketFeed(tmp_path)
    feed.mark(600_000)
    maker = feed.account("maker")
    hub = make_hub(tmp_path, feed, max_frames=2)
    slow, fast = connection(hub), connection(hub)
    hub.subscribe(slow, ["btcusdt@depth"])
    hub.subscribe(fast, ["btcusdt@depth"])

    async def act() -> None:
        hub.loop = asyncio.get_running_loop()
        for i in range(3):
            hub.on_applied(feed.apply(feed.order(maker, Side.BUY, 599_000 - i, 2)), feed.book_changes)
            await asyncio.sleep(0)
            if i < 2:
                fast.queue.get_nowait()

    # Act
    asyncio.run(act())

    # Assert
    assert slow.dropped and slow.done.is_set()
    assert slow not in hub.connections and slow.names == {}
    assert not fast.dropped
    assert [f["b"] for f in frames(fast)] == [[["59899.8", "0.002"]]]
