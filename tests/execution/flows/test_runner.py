"""Flow rules on an in-memory venue: OCO, OTO, bracket, if-then across markets, triggers, restarts."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from perpx.execution.document.validate import decode_document, load_document
from perpx.execution.flows.algos import AlgoProgress
from perpx.execution.flows.runner import FlowRunner
from perpx.execution.flows.state import NodeStatus
from perpx.execution.model import FieldError, ParentOrder, ParentOrderError

from .memvenue import MemVenue

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "strategies"
S = 1_000_000_000


def order(side: str, qty: str, kind: str = "limit", market: str = "BTCUSDT", **extra: Any) -> dict[str, Any]:
    return {"market": market, "side": side, "qty": qty, "type": kind, **extra}


def flow(*nodes: dict[str, Any], parents: list[dict[str, Any]] | None = None) -> FlowRunner:
    document = decode_document(
        {"version": 1, "name": "t", "parents": parents or [], "flow": {"nodes": list(nodes)}}
    )
    return FlowRunner(document, MemVenue(), "f1")


def statuses(runner: FlowRunner) -> dict[str, str]:
    return {name: state.status.value for name, state in runner.nodes.items()}


def venue(runner: FlowRunner) -> MemVenue:
    assert isinstance(runner.venue, MemVenue)
    return runner.venue


def bracket() -> FlowRunner:
    runner = FlowRunner(load_document(EXAMPLES / "bracket.toml"), MemVenue(), "br1")
    runner.step()
    return runner


def test_a_bracket_sends_its_entry_and_holds_the_exits_until_it_fills() -> None:
    runner = bracket()

    assert statuses(runner) == {"entry": "working", "take-profit": "pending", "stop-loss": "pending"}
    assert [c.client_order_id for c in venue(runner).sent] == ["br1-c0"]


def test_a_bracket_stop_fires_on_the_mark_and_cancels_the_take_profit() -> None:
    # Arrange: the entry fills, so the take-profit rests and the stop is armed
    runner = bracket()
    mem = venue(runner)
    mem.fill("br1-c0", 500, 600_000)
    runner.step()
    assert statuses(runner) == {"entry": "filled", "take-profit": "working", "stop-loss": "armed"}

    # Act: the mark falls to the stop, then the stop's market order fills
    mem.marks["BTCUSDT"] = 585_000
    runner.step()
    stop = mem.sent[-1]
    mem.fill(stop.client_order_id, 500, 584_990)
    runner.step()

    # Assert
    assert (stop.price_ticks, stop.side.value, stop.reduce_only, stop.qty_lots) == (None, "sell", True, 500)
    assert statuses(runner) == {"entry": "filled", "take-profit": "canceled", "stop-loss": "filled"}
    assert mem.working() == [] and runner.finished
    assert runner.nodes["take-profit"].reason == "OCO: stop-loss filled first"


def test_a_bracket_take_profit_disarms_the_stop_for_good() -> None:
    runner = bracket()
    mem = venue(runner)
    mem.fill("br1-c0", 500, 600_000)
    runner.step()
    mem.fill("br1-c1", 200, 630_000)  # a partial fill of the take-profit is enough for the OCO

    runner.step()
    mem.marks["BTCUSDT"] = 500_000
    runner.step()

    assert statuses(runner)["stop-loss"] == "canceled"
    assert len(mem.sent) == 2  # the stop never sent an order


def test_oto_a_rejected_parent_skips_its_child_and_fires_on_rejected() -> None:
    runner = flow(
        {"id": "a", "type": "order", "order": order("buy", "0.01", price="60000")},
        {
            "id": "b",
            "type": "order",
            "trigger": {"on": "filled", "node": "a"},
            "order": order("sell", "0.01", price="61000"),
        },
        {
            "id": "c",
            "type": "order",
            "trigger": {"on": "rejected", "node": "a"},
            "order": order("buy", "0.005", "market"),
        },
    )
    venue(runner).refuse.add("f1-c0")

    runner.step()

    assert statuses(runner) == {"a": "rejected", "b": "skipped", "c": "working"}
    assert "venue refused: -2019 Margin is insufficient." in runner.nodes["a"].reason


def test_if_then_across_markets_waits_for_the_other_markets_mark() -> None:
    # Arrange: when BTC's mark rises to 65,000, buy ETH
    runner = flow(
        {
            "id": "btc-up",
            "type": "condition",
            "when": {
                "on": "price_cross",
                "market": "BTCUSDT",
                "source": "mark",
                "op": ">=",
                "price": "65000",
            },
        },
        {
            "id": "eth",
            "type": "order",
            "trigger": {"on": "done", "node": "btc-up"},
            "order": order("buy", "1", "market", market="ETHUSDT"),
        },
    )
    mem = venue(runner)
    mem.marks["BTCUSDT"] = 649_999
    runner.step()
    assert mem.sent == [] and statuses(runner)["btc-up"] == "armed"

    # Act
    mem.marks["BTCUSDT"] = 650_000
    runner.step()

    # Assert
    assert [(c.market, c.qty_lots, c.price_ticks) for c in mem.sent] == [("ETHUSDT", 1000, None)]
    assert runner.nodes["btc-up"].reason == "condition held: BTCUSDT mark >= 65000"


def test_partially_filled_fires_at_exactly_its_share() -> None:
    runner = flow(
        {"id": "a", "type": "order", "order": order("buy", "0.01", price="60000")},
        {
            "id": "b",
            "type": "order",
            "trigger": {"on": "partially_filled", "node": "a", "pct": 50},
            "order": order("sell", "0.002", price="62000"),
        },
    )
    runner.step()
    mem = venue(runner)
    mem.fill("f1-c0", 4, 600_000)
    runner.step()
    assert statuses(runner)["b"] == "pending"  # 40%

    mem.fill("f1-c0", 1, 600_000)
    runner.step()

    assert statuses(runner)["b"] == "working"  # 50%


def test_time_trigger_and_wait_node() -> None:
    runner = flow(
        {"id": "pause", "type": "wait", "wait_s": 30},
        {
            "id": "later",
            "type": "order",
            "trigger": {"on": "time", "after_s": 60},
            "order": order("buy", "0.001", "market"),
        },
        {
            "id": "after-pause",
            "type": "order",
            "trigger": {"on": "done", "node": "pause"},
            "order": order("buy", "0.002", "market"),
        },
    )
    mem = venue(runner)
    runner.step()
    mem.now += 29 * S
    runner.step()
    assert mem.sent == []

    mem.now += 1 * S
    runner.step()
    assert [c.qty_lots for c in mem.sent] == [2]
    mem.now += 30 * S
    runner.step()
    assert [c.qty_lots for c in mem.sent] == [2, 1]


def test_a_tca_trigger_cancels_an_order_that_slipped_too_far() -> None:
    # Arrange: arrival mid is 60,000.0; fills at 60,030 are 5 bp of slippage on a buy
    runner = flow(
        {"id": "a", "type": "order", "order": order("buy", "0.01", price="60100")},
        {
            "id": "stop",
            "type": "cancel",
            "targets": ["a"],
            "trigger": {"on": "tca", "node": "a", "metric": "arrival_slippage_bps", "op": ">=", "value": 5},
        },
    )
    runner.step()
    mem = venue(runner)
    mem.fill("f1-c0", 3, 600_290)  # 4.83 bp
    runner.step()
    assert statuses(runner)["stop"] == "pending"

    mem.fill("f1-c0", 3, 600_310)  # average 60,030.0: 5 bp
    runner.step()

    assert statuses(runner) == {"a": "canceled", "stop": "done"}
    assert runner.nodes["a"].avg_price == Decimal("60030")
    assert mem.working() == []


def test_a_restarted_runner_adopts_its_order_instead_of_sending_it_again() -> None:
    first = bracket()
    mem = venue(first)

    second = FlowRunner(first.document, mem, "br1")
    second.step()

    assert len(mem.sent) == 1 and statuses(second)["entry"] == "working"


def test_a_send_that_fails_in_transit_is_retried_with_the_same_id() -> None:
    runner = flow({"id": "a", "type": "order", "order": order("buy", "0.01", price="60000")})
    mem = venue(runner)
    mem.down = True
    runner.step()
    assert statuses(runner)["a"] == "pending" and "retried" in runner.nodes["a"].reason

    mem.down = False
    runner.step()

    assert [c.client_order_id for c in mem.sent] == ["f1-c0"] and statuses(runner)["a"] == "working"


@pytest.mark.parametrize("kind", ["price_cross", "stop_market"])
def test_an_order_whose_answer_was_lost_is_adopted_after_its_price_moved_back(kind: str) -> None:
    # Arrange: a buy when BTC's mark reaches 61,000 (a triggered limit, or a stop); the venue takes
    # the order but its answer is lost
    crossing = {"on": "price_cross", "market": "BTCUSDT", "source": "mark", "op": ">=", "price": "61000"}
    node: dict[str, Any] = (
        {"id": "a", "type": "order", "trigger": crossing, "order": order("buy", "0.01", price="61000")}
        if kind == "price_cross"
        else {"id": "a", "type": "order", "order": order("buy", "0.01", "stop_market", stop_price="61000")}
    )
    runner = flow(node)
    mem = venue(runner)
    runner.step()
    mem.marks["BTCUSDT"] = 610_000
    mem.lose_next_answer = True

    # Act: the wake-up that sends it; the venue comes back after the price fell back
    runner.step()
    mem.down = False
    mem.marks["BTCUSDT"] = 600_000
    runner.step()

    # Assert: the retry with the same id found it on the venue: followed as working, sent once
    assert [c.client_order_id for c in mem.sent] == ["f1-c0"]
    assert statuses(runner)["a"] == "working"


def test_cancel_all_cancels_working_orders_and_pending_nodes() -> None:
    runner = bracket()

    runner.cancel_all("Ctrl-C")

    assert statuses(runner) == {"entry": "canceled", "take-profit": "canceled", "stop-loss": "canceled"}
    assert venue(runner).working() == [] and runner.finished


@pytest.mark.parametrize(
    ("qty", "reason"),
    [("0.0005", "qty 0.0005 is not a positive multiple of 0.001"), ("1", None)],
)
def test_an_order_off_the_lot_grid_is_rejected_with_a_reason(qty: str, reason: str | None) -> None:
    runner = flow({"id": "a", "type": "order", "order": order("buy", qty, price="60000")})
    runner.step()
    assert (runner.nodes["a"].status is NodeStatus.REJECTED) == (reason is not None)
    if reason:
        assert runner.nodes["a"].reason == reason


class FakeAlgo:
    def __init__(self, parent: ParentOrder) -> None:
        self.qty_lots = int(Decimal(str(parent.qty)) / Decimal("0.001"))
        self.filled = 0
        self.canceled = False

    def step(self) -> None:
        self.filled = min(self.qty_lots, self.filled + 500)

    def progress(self) -> AlgoProgress:
        qty = self.filled * Decimal("0.001")
        return AlgoProgress(
            self.qty_lots,
            self.filled,
            qty,
            qty * 60_000,
            self.canceled or self.filled == self.qty_lots,
            Decimal(60_000),
        )

    def cancel(self) -> None:
        self.canceled = True

    def close(self) -> None:
        self.closed = True


class Starter:
    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.started: list[FakeAlgo] = []

    def start(self, parent: ParentOrder) -> FakeAlgo:
        if self.refuse:
            raise ParentOrderError([FieldError("qty", "below the market's minimum")])
        self.started.append(FakeAlgo(parent))
        return self.started[-1]

    def resume(self, parent: ParentOrder) -> FakeAlgo:
        return self.started[-1]


PARENT = {
    "id": "p",
    "client_algo_id": "a-1",
    "algo": "twap",
    "market": "BTCUSDT",
    "side": "buy",
    "qty": "2",
    "duration_s": 600,
}


def test_an_algo_node_reports_progress_and_starts_what_waits_on_it() -> None:
    runner = flow(
        {"id": "work", "type": "algo", "parent": "p"},
        {
            "id": "hedge",
            "type": "order",
            "trigger": {"on": "partially_filled", "node": "work", "pct": 50},
            "order": order("sell", "0.1", "market", market="ETHUSDT"),
        },
        parents=[PARENT],
    )
    runner.algos = Starter()
    runner.step()
    assert statuses(runner) == {"work": "working", "hedge": "pending"}

    runner.step()  # 1,000 of 2,000 lots

    assert statuses(runner) == {"work": "working", "hedge": "working"}
    runner.step()
    runner.step()  # 2,000 of 2,000
    assert statuses(runner)["work"] == "filled"


def test_an_algo_that_cannot_start_is_rejected_with_its_reason() -> None:
    runner = flow({"id": "work", "type": "algo", "parent": "p"}, parents=[PARENT])
    runner.algos = Starter(refuse=True)

    runner.step()

    assert runner.nodes["work"].status is NodeStatus.REJECTED
    assert runner.nodes["work"].reason == "parent p cannot run: qty: below the market's minimum"


def test_a_bad_flow_id_is_rejected() -> None:
    with pytest.raises(ValueError, match="flow_id must be"):
        FlowRunner(load_document(EXAMPLES / "bracket.toml"), MemVenue(), "has space")
