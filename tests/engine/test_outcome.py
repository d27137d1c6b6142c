"""A command's own answer, apart from what ran before it and what followed from it (``Outcome``).

Adapters answer a client from ``outcome.own``; these rules pin down what lands in each part.
"""

from __future__ import annotations

from perpx.engine.commands import OrderType, PlaceOrder
from perpx.engine.events import (
    LiquidationExplained,
    MarkPriceUpdated,
    OrderAccepted,
    OrderFilled,
    OrderRejected,
    Outcome,
)
from perpx.engine.values import MarketId, Side
from tests.liquidation.helpers import trade
from tests.pricing.helpers import BTC, priced_config, priced_venue, quote_all

from .helpers import venue


def test_an_order_that_trades_answers_with_its_acceptance_and_fills_only() -> None:
    # Arrange
    v = venue("mm", "b")
    v.place("mm", "BTCUSDT", "sell", "0.01", "30000")

    # Act
    outcome = v.place("b", "BTCUSDT", "buy", "0.01", "30000")

    # Assert: acceptance, then both sides of the one trade; nothing before, nothing after
    assert isinstance(outcome, Outcome)
    assert [type(e) for e in outcome.own] == [OrderAccepted, OrderFilled, OrderFilled]
    assert outcome.before == [] and outcome.consequences == []
    assert list(outcome) == outcome.before + outcome.own + outcome.consequences


def test_a_mark_that_liquidates_answers_with_its_own_event_and_the_liquidation_follows() -> None:
    # Arrange
    v = venue("mm", "s")
    v.account("a", "2000")
    trade(v, "a", "s", "1", "30000")
    v.place("mm", "BTCUSDT", "buy", "1", "28100")

    # Act
    outcome = v.mark("BTCUSDT", "28000")

    # Assert: the command's answer is the mark it set; the liquidation is a consequence
    assert [type(e).__name__ for e in outcome.own] == ["MarkPriceSet"]
    assert any(isinstance(e, LiquidationExplained) for e in outcome.consequences)
    assert not any(isinstance(e, LiquidationExplained) for e in outcome.own)


def test_pricing_due_before_a_command_is_not_its_answer() -> None:
    # Arrange: an index-priced market with a book, then ten seconds of quiet
    v = priced_venue("bob", config=priced_config(index={"stale_after_s": 86_400}))
    quote_all(v, {"binance": "30000", "okx": "30010", "bybit": "29990"})
    v.place("bob", BTC, "buy", "1", "30030")
    v.place("bob", BTC, "sell", "1", "30051")
    v.now_ns += 10 * 1_000_000_000

    # Act: a refused order ten seconds later (the pricing stage catches up first)
    outcome = v.apply(
        PlaceOrder(
            ts_ns=v.tick(),
            account_id=v.names["bob"],
            market=MarketId(BTC),
            side=Side.BUY,
            order_type=OrderType.LIMIT,
            qty_lots=0,
            price_ticks=300_000,
        )
    )

    # Assert: the mark update belongs to the time before the command; the answer is the refusal
    assert any(isinstance(e, MarkPriceUpdated) for e in outcome.before)
    assert [type(e) for e in outcome.own] == [OrderRejected]
    assert outcome.consequences == []
