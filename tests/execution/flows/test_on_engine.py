"""Flows on the real engine (the in-process ``EngineVenue``): a bracket, and if-then across markets with a TWAP."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from perpx.execution.document.validate import decode_document
from perpx.execution.flows.algos import RunnerStarter
from perpx.execution.flows.runner import FlowRunner

from ..market import Market


def document(nodes: list[dict[str, Any]], parents: list[dict[str, Any]] | None = None) -> Any:
    return decode_document({"version": 1, "name": "e", "parents": parents or [], "flow": {"nodes": nodes}})


BRACKET = [
    {
        "id": "entry",
        "type": "order",
        "order": {"market": "BTCUSDT", "side": "buy", "qty": "0.5", "type": "limit", "price": "60000.5"},
    },
    {
        "id": "tp",
        "type": "order",
        "oco": "exit",
        "trigger": {"on": "filled", "node": "entry"},
        "order": {
            "market": "BTCUSDT",
            "side": "sell",
            "qty": "0.5",
            "type": "limit",
            "price": "60010",
            "reduce_only": True,
        },
    },
    {
        "id": "sl",
        "type": "order",
        "oco": "exit",
        "trigger": {"on": "filled", "node": "entry"},
        "order": {
            "market": "BTCUSDT",
            "side": "sell",
            "qty": "0.5",
            "type": "stop_market",
            "stop_price": "59990",
            "reduce_only": True,
        },
    },
]


def test_a_bracket_on_the_engine_enters_then_stops_out_and_cancels_its_take_profit() -> None:
    # Arrange
    market = Market()
    runner = FlowRunner(document(BRACKET), market.venue, "bracket-1")

    # Act: the entry crosses the first ask; then the mark falls through the stop
    runner.step()
    entered = market.tv.position("algo", "BTCUSDT")
    working_after_entry = [o.client_order_id for o in market.venue.open_orders("BTCUSDT")]
    market.tv.mark("BTCUSDT", "59990")
    runner.step()
    runner.step()

    # Assert
    assert entered == Decimal("0.5") and working_after_entry == ["bracket-1-c1"]
    assert {n: s.status.value for n, s in runner.nodes.items()} == {
        "entry": "filled",
        "tp": "canceled",
        "sl": "filled",
    }
    assert market.tv.position("algo", "BTCUSDT") == 0
    assert market.venue.open_orders("BTCUSDT") == []
    assert runner.finished


def test_if_then_across_markets_starts_a_twap_on_another_market() -> None:
    # Arrange: ETH quoted deep enough for the TWAP; the condition watches BTC's mark
    market = Market()
    market.tv.mark("ETHUSDT", "3000")
    for i in range(1, 6):
        market.tv.place("mm", "ETHUSDT", "BUY", "1", str(3000 - i))
        market.tv.place("mm", "ETHUSDT", "SELL", "1", str(3000 + i))
    parents = [
        {
            "id": "eth",
            "client_algo_id": "eth-twap-1",
            "algo": "twap",
            "market": "ETHUSDT",
            "side": "buy",
            "qty": "0.2",
            "duration_s": 60,
            "slice_interval_s": 20,
            "passiveness_bps": 0,
            "end_behavior": "complete_aggressive",
        }
    ]
    nodes = [
        {
            "id": "btc-up",
            "type": "condition",
            "when": {
                "on": "price_cross",
                "market": "BTCUSDT",
                "source": "mark",
                "op": ">=",
                "price": "60100",
            },
        },
        {"id": "buy-eth", "type": "algo", "parent": "eth", "trigger": {"on": "done", "node": "btc-up"}},
    ]
    runner = FlowRunner(document(nodes, parents), market.venue, "if-then-1", RunnerStarter(market.venue))
    runner.step()
    market.advance(30)
    runner.step()
    assert market.tv.position("algo", "ETHUSDT") == 0

    # Act
    market.tv.mark("BTCUSDT", "60100")
    for _ in range(30):
        runner.step()
        if runner.finished:
            break
        market.advance(5)

    # Assert
    assert runner.finished
    assert {n: s.status.value for n, s in runner.nodes.items()} == {"btc-up": "done", "buy-eth": "filled"}
    assert market.tv.position("algo", "ETHUSDT") == Decimal("0.2")
    assert market.tv.position("algo", "BTCUSDT") == 0
