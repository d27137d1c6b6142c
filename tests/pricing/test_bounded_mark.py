"""A mark one account cannot walk (issue 9, items 2 and 5): the reproductions on an index-priced market.

The index stays honest (three sources at 30,000) while attackers work the book: self-trades,
tiny quotes, a colluding partner. The mark must stay within ``index x (1 +/- mark_index_band)``
(3% by default), self-trades must never set its last-price input, and after a pump the mark must
not return to the pumped price when the book empties.
"""

from __future__ import annotations

from collections.abc import Iterator

from perpx.engine.commands import SetLeverage
from perpx.engine.events import Event, LiquidationExplained, MarkClamped
from perpx.engine.pricing.mark import index_band_ticks
from perpx.engine.values import MarketId
from perpx.testkit import Venue
from tests.engine.helpers import fills
from tests.pricing.helpers import BTC, of, priced_config, priced_venue, quote_all

MARKET = MarketId(BTC)
FAIR = {"binance": "30000", "okx": "30010", "bybit": "29990"}  # index 30,000
LONG_LIVED = {"stale_after_s": 86_400}
BAND_HIGH = 309_000  # 30,000 x 1.03 in ticks of 0.1


def victim_venue() -> Venue:
    """Index 30,000; ``victim`` short 1 BTC at 30,000 at 10x with 3,200 USDT (liquidation 33,052.7)."""
    v = priced_venue("mm", "x", "y", config=priced_config(index=LONG_LIVED))
    quote_all(v, FAIR)
    v.account("victim", "3200")
    events = v.apply(SetLeverage(ts_ns=v.tick(), account_id=v.names["victim"], market=MARKET, leverage=10))
    assert type(events[0]).__name__ == "LeverageChanged"
    v.place("mm", BTC, "buy", "1", "30000")
    assert fills(v.place("victim", BTC, "sell", "1", "30000"))
    assert v.engine.liquidation.liquidation_price(v.names["victim"], MARKET) == 330_527
    return v


def walk(v: Venue, seconds: int, partner: str | None) -> Iterator[int]:
    """Each second: a trade 4.5% above the mark (with itself, or with ``partner``), then tiny quotes there.

    4.5% is as far as the percent-price band (5% from the mark) lets a buy go. Yields the mark
    after each second.
    """
    seller = partner or "x"
    for _ in range(seconds):
        mark = v.engine.marks[MARKET]
        price = f"{mark * 1045 // 1000 / 10:.1f}"
        above = f"{mark * 1046 // 1000 / 10:.1f}"
        v.cancel_all("x", BTC)
        v.cancel_all(seller, BTC)
        v.place(seller, BTC, "sell", "0.004", price, stp="NONE")
        assert fills(v.place("x", BTC, "buy", "0.004", price, stp="NONE"))
        # tiny quotes (the minimum notional, 100 USDT): the book's mid sits up there too
        assert type(v.place("x", BTC, "buy", "0.004", price)[0]).__name__ == "OrderAccepted"
        assert type(v.place(seller, BTC, "sell", "0.004", above)[0]).__name__ == "OrderAccepted"
        v.advance(1)
        yield v.engine.marks[MARKET]


def test_one_account_trading_with_itself_cannot_walk_the_mark_past_the_band() -> None:
    # Arrange
    v = victim_venue()

    # Act: 90 seconds of self-trades and tiny quotes, each 4.5% above the mark
    marks = list(walk(v, 90, partner=None))

    # Assert: the self-trades set no last price, so two of the mark's three inputs stay at 30,000
    # (price1 from the index, the last real trade) and the walked book mid cannot move the median
    assert v.engine.last_trade_ticks[MARKET] == 300_000  # the victim's trade, still the last one
    walked = v.engine.pricing.view(MARKET).moving_basis_ticks
    assert walked is not None and walked > 310_000  # the book was walked
    assert set(marks) == {300_000}
    assert v.position("victim", BTC) == -1  # liquidation at 33,052.7 is out of reach
    assert v.engine.indexes[MARKET] == 300_000


def test_a_colluding_pair_cannot_walk_the_mark_past_the_band_either() -> None:
    # Arrange
    v = victim_venue()
    clamped: list[MarkClamped] = []
    liquidations: list[LiquidationExplained] = []

    # Act: x and y trade with each other 4.5% above the mark every second, for 90 seconds
    marks = list(walk(v, 90, partner="y"))
    for events in replay_events(v):
        clamped += of(events, MarkClamped)
        liquidations += of(events, LiquidationExplained)

    # Assert: the last price walked (the trades are real) as far as the percent-price band, measured
    # from the bounded mark, lets it: 4.5% above 30,900; the mark did not pass the band
    assert v.engine.last_trade_ticks[MARKET] == BAND_HIGH * 1045 // 1000
    assert max(marks) == BAND_HIGH  # held at index x 1.03 = 30,900
    assert clamped and all(e.mark_ticks <= BAND_HIGH < e.raw_mark_ticks for e in clamped)
    assert not [r for r in liquidations if r.account_id == v.names["victim"]]
    assert v.position("victim", BTC) == -1
    # the ring's own positions offset each other: all it has to show is the fees it paid
    ring = v.engine.risk(v.names["x"]).margin_balance_atoms + v.engine.risk(v.names["y"]).margin_balance_atoms
    assert ring < 2 * 100_000 * 10**8


def replay_events(v: Venue) -> Iterator[list[Event]]:
    """The events of every command ``v`` applied, from a fresh engine (the harness keeps commands only)."""
    fresh = Venue(v.config, check=False)
    for command in v.journal:
        yield fresh.apply(command)
    assert fresh.hash() == v.hash()


def test_after_a_pump_the_mark_does_not_return_to_the_pumped_price_when_the_book_empties() -> None:
    # Arrange: the review's Mango-style pump: sources and book move to 40,000 together, a trade there
    v = priced_venue("mm", "x", "y", config=priced_config(index=LONG_LIVED))
    quote_all(v, FAIR)
    gaps: list[tuple[int, int]] = []

    def note() -> None:
        gaps.append((v.engine.marks[MARKET], v.engine.indexes[MARKET]))

    pumped = {"binance": "40000", "okx": "40010", "bybit": "39990"}
    for source, price in pumped.items():
        v.quote(BTC, source, price)
        note()
    v.place("mm", BTC, "buy", "1", "39995")
    v.place("mm", BTC, "sell", "1", "40005")
    v.place("x", BTC, "sell", "0.01", "40000")
    v.place("y", BTC, "buy", "0.01", "40000")  # last price 40,000
    for _ in range(30):
        v.advance(1)
        note()

    # Act: the sources snap back while the book still sits at 40,000 for 3 seconds, then it empties
    quote_all(v, FAIR)
    note()
    for _ in range(3):
        v.advance(1)
        note()
    v.cancel_all("mm", BTC)
    for _ in range(40):
        v.advance(1)
        note()

    # Assert: every mark within 3% of its index; 30 s after the book emptied the basis is gone
    for mark_ticks, index_ticks in gaps:
        low, high = index_band_ticks(index_ticks, 3_000_000)
        assert low <= mark_ticks <= high, (mark_ticks, index_ticks)
    view = v.engine.pricing.view(MARKET)
    assert view.index_ticks == 300_000 and view.moving_basis_ticks == 300_000
    assert view.mark_ticks is not None and view.mark_ticks <= 300_100  # median(price1, index, 40,000)
