"""A stale or an outlier index source never causes a liquidation (markets priced from their index).

Sources binance (weight 3), okx (2), bybit (2); binance policy: a source more than 5% from the
median weighs nothing; fewer than 2 fresh sources (10 s) freeze the index and the mark, and
liquidations in the market pause until the quorum is back.
"""

from __future__ import annotations

from perpx.engine.events import IndexStaleChanged, LiquidationExplained
from perpx.engine.values import MarketId
from perpx.testkit import Venue
from tests.pricing.helpers import of, priced_venue, quote_all

from .helpers import BTC, qty, records, trade

FAIR = {"binance": "30000", "okx": "30010", "bybit": "29990"}
MARKET = MarketId(BTC)


def long_near_liquidation() -> Venue:
    v = priced_venue("a", "s", "mm")
    quote_all(v, FAIR)
    v.withdraw("a", "98000")  # 2,000 left: long 1 BTC is liquidated at 28,127.6
    trade(v, "a", "s", "1", "30000")
    assert v.engine.liquidation.liquidation_price(v.names["a"], MARKET) == 281_276
    return v


def test_an_outlier_source_never_causes_a_liquidation() -> None:
    v = long_near_liquidation()
    events = v.quote(BTC, "okx", "20000")  # a crash on one source only: dropped as an outlier
    assert records(events) == []
    assert v.engine.marks[MARKET] > 299_000 and qty(v, "a") == 1_000


def test_a_stale_source_never_causes_a_liquidation_and_the_pause_ends_with_the_quorum() -> None:
    v = long_near_liquidation()
    went = of(v.advance(11), IndexStaleChanged)  # every source older than 10 s: below quorum
    assert went and went[0].stale
    assert records(v.quote(BTC, "bybit", "25000")) == []  # one fresh source: still below quorum
    assert v.engine.marks[MARKET] == 300_000 and qty(v, "a") == 1_000  # the mark stays frozen
    back = v.quote(BTC, "binance", "25000")  # quorum again, at the crashed price: now it is liquidated
    assert [e.stale for e in of(back, IndexStaleChanged)] == [False]
    (record,) = [e for e in back if isinstance(e, LiquidationExplained)]
    assert record.outcome == "CLOSED" and qty(v, "a") == 0
