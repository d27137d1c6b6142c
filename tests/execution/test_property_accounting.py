"""Properties of every parent on the real engine: the quantity adds up and no child breaks a rule.

Checked against the engine itself, not the runner's own bookkeeping: the algo account's position
is the parent's filled quantity, its resting orders are the parent's working quantity, and every
``PlaceOrder`` the engine received keeps the parent's limit, clip and reduce-only flag.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from perpx.engine.commands import PlaceOrder
from perpx.engine.values import Side
from perpx.execution.model import decode_parent

from .market import MARKET, Market

ALGOS = ("twap", "vwap", "is", "pov", "scaled", "iceberg")


@st.composite
def parents(draw: st.DrawFn) -> dict[str, Any]:
    algo = draw(st.sampled_from(ALGOS))
    side = draw(st.sampled_from(("buy", "sell")))
    data: dict[str, Any] = {
        "algo": algo,
        "market": MARKET,
        "side": side,
        "client_algo_id": "p1",
        "qty": str(Decimal(draw(st.integers(2, 3000))) / 1000),
        "passiveness_bps": draw(st.sampled_from((0, 1, 5000, 10000))),
        "end_behavior": draw(st.sampled_from(("cancel", "complete_aggressive", "leave_passive"))),
    }
    if algo in ("twap", "vwap", "is"):
        data |= {"duration_s": draw(st.integers(30, 300)), "slice_interval_s": draw(st.integers(10, 60))}
    if algo == "pov":
        data |= {"pov_target_bps": draw(st.integers(500, 3000)), "duration_s": 200}
    if algo == "scaled":
        sign = -1 if side == "buy" else 1
        data |= {
            "ladder_levels": draw(st.integers(1, 6)),
            "ladder_start_price": str(60000 + sign),
            "ladder_end_price": str(60000 + 5 * sign),
        }
    if algo == "iceberg":
        data |= {"display_qty": "0.1", "repeg_ticks": draw(st.sampled_from((1, 3)))}
    if draw(st.booleans()):
        offset = Decimal(draw(st.integers(-20, 20))) / 10
        data["limit_price"] = str(Decimal(60000) + offset)
    if draw(st.booleans()):
        data["max_clip"] = str(Decimal(draw(st.integers(2, 500))) / 1000)
    if data["end_behavior"] == "complete_aggressive" and draw(st.booleans()):
        data["randomize_size_bps"] = 2000
    return data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=parents(),
    flow=st.lists(st.sampled_from(("BUY", "SELL", None)), min_size=5, max_size=40),
    drift=st.integers(-2, 2),
)
def test_filled_working_remaining_add_up_and_children_keep_the_rules(
    data: dict[str, Any], flow: list[str | None], drift: int
) -> None:
    market = Market()
    parent = decode_parent(data)
    runner = market.runner(parent)
    sign = 1 if parent.side.value == "buy" else -1
    account = market.venue.account_id

    for taker in flow:
        market.mid += Decimal(drift) / 2
        market.requote()
        if taker is not None:
            market.trade(taker, "0.05")
        market.advance(7)
        record = runner.step()

        position = market.tv.engine.position(account, market.market)
        position_lots = position.qty_lots
        resting_lots = sum(o.leaves_lots for o in position.open_orders.values())
        assert record.filled_lots + record.working_lots + record.remaining_lots == runner.bound.qty_lots
        assert record.remaining_lots >= 0
        assert position_lots == sign * record.filled_lots
        assert resting_lots == record.working_lots

    event(f"{parent.algo.value}: {'some' if runner.history[-1].filled_lots else 'no'} fills")
    limit = runner.bound.limit_ticks
    clip = runner.bound.max_clip_lots
    side = Side.BUY if sign == 1 else Side.SELL
    for command in market.commands:
        if not isinstance(command, PlaceOrder) or command.account_id != account:
            continue
        assert command.side is side
        assert command.reduce_only == parent.reduce_only
        assert command.price_ticks is not None, (
            "children are always priced (market intents become IOC limits)"
        )
        if limit is not None:
            assert command.price_ticks <= limit if sign == 1 else command.price_ticks >= limit
        if clip is not None:
            assert command.qty_lots <= clip
