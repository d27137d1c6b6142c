"""The ``depth`` component: a REST snapshot plus the diff stream rebuilds the engine's book exactly.

The client side below follows ccxt.pro's ``binanceusdm`` rules (section 6 of the
API contract): drop diffs with ``u`` below the snapshot's ``lastUpdateId`` L,
start at the diff with ``U <= L <= u`` or ``pu == L``, then require every
``pu`` to equal the previous ``u``; a quantity of 0 removes the level.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from perpx.engine.commands import AdvanceClock, AmendOrder, CancelOrder, Command, TimeInForce
from perpx.engine.events import OrderAccepted, OrderAmended, OrderCanceled, OrderExpired, OrderFilled
from perpx.engine.values import NS_PER_MS, AccountId, MarketId, OrderId, Side
from perpx.server.marketdata.depth import DepthDiff, DepthSnapshot, DepthTracker
from tests.server.marketfeed import BTC, MarketFeed


class ClientBook:
    """A depth-stream client: a snapshot, then diffs under ccxt's continuity rules."""

    def __init__(self, snapshot: DepthSnapshot) -> None:
        self.nonce = snapshot.update_id
        self.bids = dict(snapshot.bids)
        self.asks = dict(snapshot.asks)
        self.synced = False

    def apply(self, diff: DepthDiff) -> None:
        if diff.last_seq < self.nonce:
            return
        if self.synced:
            assert diff.previous_seq == self.nonce, f"gap: pu {diff.previous_seq} after u {self.nonce}"
        else:
            assert diff.first_seq <= self.nonce <= diff.last_seq or diff.previous_seq == self.nonce
            self.synced = True
        for levels, side in ((diff.bids, self.bids), (diff.asks, self.asks)):
            for price, lots in levels:
                if lots:
                    side[price] = lots
                else:
                    side.pop(price, None)
        self.nonce = diff.last_seq

    def levels(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        return sorted(self.bids.items(), reverse=True), sorted(self.asks.items())


def engine_levels(
    feed: MarketFeed, market: MarketId = BTC
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    book = feed.engine.books[market]
    return book.bids.depth(), book.asks.depth()


def snapshot(feed: MarketFeed, market: MarketId = BTC) -> DepthSnapshot:
    return feed.depth.snapshot(feed.engine, market, None)


def random_batch(
    rng: random.Random, feed: MarketFeed, accounts: list[AccountId], live: list[OrderId]
) -> list[Command]:
    commands: list[Command] = []
    for _ in range(rng.randint(1, 6)):
        feed.now_ms += rng.randint(0, 900)
        account = rng.choice(accounts)
        side = rng.choice((Side.BUY, Side.SELL))
        near = 600_000 + (-1 if side is Side.BUY else 1) * rng.randint(0, 40)
        roll = rng.random()
        if roll < 0.45 or not live:
            commands.append(feed.order(account, side, near, rng.randint(2, 9)))
        elif roll < 0.6:
            crossing = 600_000 + (1 if side is Side.BUY else -1) * rng.randint(0, 30)
            tif = rng.choice((TimeInForce.IOC, TimeInForce.GTC, TimeInForce.FOK))
            commands.append(feed.order(account, side, crossing, rng.randint(2, 25), tif))
        elif roll < 0.65:
            commands.append(feed.order(account, side, None, rng.randint(2, 12)))
        elif roll < 0.85:
            order_id = rng.choice(live)
            owner = feed.engine.orders[order_id].account_id if order_id in feed.engine.orders else account
            commands.append(CancelOrder(ts_ns=feed.ts, account_id=owner, market=BTC, order_id=order_id))
        elif roll < 0.95:
            order_id = rng.choice(live)
            order = feed.engine.orders.get(order_id)
            if order is None:
                continue
            price = order.price_ticks + rng.randint(-30, 30)
            commands.append(
                AmendOrder(
                    ts_ns=feed.ts,
                    account_id=order.account_id,
                    market=BTC,
                    order_id=order_id,
                    price_ticks=price,
                    qty_lots=max(order.filled_lots + 2, order.qty_lots + rng.randint(-3, 3)),
                )
            )
        else:
            commands.append(AdvanceClock(ts_ns=feed.ts))
    return commands


@pytest.mark.parametrize("seed", range(6))
def test_snapshot_plus_diffs_rebuilds_the_book_after_random_orders(tmp_path: Path, seed: int) -> None:
    # Arrange
    rng = random.Random(seed)
    feed = MarketFeed(tmp_path)
    feed.mark(600_000)
    accounts = [feed.account(f"a{i}") for i in range(4)]
    live: list[OrderId] = []
    clients: list[ClientBook] = []
    changed_batches = 0

    # Act: random batches; a new client joins now and then from a fresh snapshot
    for step in range(120):
        if step % 30 == 0:
            clients.append(ClientBook(snapshot(feed)))
        before = engine_levels(feed)
        feed.apply(*random_batch(rng, feed, accounts, live))
        live = list(feed.engine.orders)
        for diff in feed.book_changes.diffs:
            for client in clients:
                client.apply(diff)
        changed_batches += engine_levels(feed) != before

        # Assert: every client's book equals the engine's after every batch
        for client in clients:
            assert client.levels() == engine_levels(feed)
        assert bool(feed.book_changes.diffs) == (engine_levels(feed) != before)
    assert changed_batches > 60


def test_diff_ids_are_journal_records_and_chain_through_pu(tmp_path: Path) -> None:
    # Arrange
    feed = MarketFeed(tmp_path)
    feed.mark(600_000)
    maker = feed.account("maker")
    start = snapshot(feed).update_id

    # Act
    [first] = feed.apply(feed.order(maker, Side.BUY, 599_990, 3))
    first_diffs = feed.book_changes.diffs
    feed.apply(AdvanceClock(ts_ns=feed.ts + NS_PER_MS))
    quiet_diffs = feed.book_changes.diffs
    batch = feed.apply(feed.order(maker, Side.SELL, 600_010, 2), feed.order(maker, Side.BUY, 599_990, 4))
    second_diffs = feed.book_changes.diffs

    # Assert
    assert [(d.first_seq, d.last_seq, d.previous_seq, d.bids, d.asks) for d in first_diffs] == [
        (first.seq, first.seq, start, [(599_990, 3)], [])
    ]
    assert quiet_diffs == []
    assert [(d.first_seq, d.last_seq, d.previous_seq, d.bids, d.asks) for d in second_diffs] == [
        (batch[0].seq, batch[1].seq, first.seq, [(599_990, 7)], [(600_010, 2)])
    ]
    assert snapshot(feed).update_id == batch[1].seq


def test_tracker_started_on_a_running_book_takes_its_orders_and_the_last_record(tmp_path: Path) -> None:
    # Arrange: an order rests before the tracker sees anything (a restart with a full book)
    feed = MarketFeed(tmp_path)
    feed.mark(600_000)
    maker = feed.account("maker")
    feed.last_seq += 1
    placed_seq = feed.last_seq
    events = feed.engine.apply(feed.order(maker, Side.SELL, 600_020, 5))
    order_id = next(e.order_id for e in events if isinstance(e, OrderAccepted))
    feed.depth = DepthTracker(feed.config, lambda: feed.engine, lambda: feed.last_seq)

    # Act
    start = snapshot(feed)
    [canceled] = feed.apply(CancelOrder(ts_ns=feed.ts, account_id=maker, market=BTC, order_id=order_id))

    # Assert
    assert start.update_id == placed_seq
    assert start.asks == [(600_020, 5)]
    assert [(d.previous_seq, d.last_seq, d.asks) for d in feed.book_changes.diffs] == [
        (placed_seq, canceled.seq, [(600_020, 0)])
    ]


def test_book_top_changes_are_reported_once(tmp_path: Path) -> None:
    # Arrange
    feed = MarketFeed(tmp_path)
    feed.mark(600_000)
    maker = feed.account("maker")

    # Act
    feed.apply(feed.order(maker, Side.BUY, 599_990, 3))
    top_after_bid = feed.book_changes.tops
    feed.apply(feed.order(maker, Side.BUY, 599_900, 3))
    top_after_deeper_bid = feed.book_changes.tops

    # Assert
    assert [(t.bid, t.ask) for t in top_after_bid] == [((599_990, 3), None)]
    assert top_after_deeper_bid == []


def test_order_events_the_tracker_reads_are_the_ones_the_engine_emits() -> None:
    # Arrange, Act: every event class that can change a resting level
    kinds = {OrderAccepted, OrderFilled, OrderCanceled, OrderExpired, OrderAmended}

    # Assert: a guard for the day the engine adds another one (update DepthTracker.on_applied)
    from perpx.engine import events

    book_events = {
        cls
        for cls in vars(events).values()
        if isinstance(cls, type) and issubclass(cls, events.Event) and cls.__name__.startswith("Order")
    }
    assert book_events - {events.OrderRejected} == kinds
