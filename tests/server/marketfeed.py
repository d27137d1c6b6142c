"""An engine with the market-data components attached, fed batch by batch as the sequencer feeds them.

No server and no journal: each ``apply`` runs commands through the engine,
numbers them like journal records and hands the batch to :class:`TradeStore`
and :class:`DepthTracker`, so read-model tests run in milliseconds.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from perpx.engine.commands import (
    Command,
    CreateAccount,
    Deposit,
    OrderType,
    PlaceOrder,
    SetMarkPrice,
    TimeInForce,
)
from perpx.engine.config import VenueConfig, default_config
from perpx.engine.engine import Engine
from perpx.engine.events import AccountCreated, OrderAccepted
from perpx.engine.values import NS_PER_MS, AccountId, AssetId, MarketId, OrderId, Side, TxId
from perpx.server.marketdata.depth import NO_CHANGES, DepthTracker
from perpx.server.marketdata.trades import TradeStore
from perpx.server.sequencer import Applied

BTC = MarketId("BTCUSDT")
T0_MS = 1_699_999_200_000
"""2023-11-14 22:00:00 UTC: a whole hour, so every interval up to 1h starts here."""


class MarketFeed:
    """An engine plus the ``marketdata`` and ``depth`` components; ``now_ms`` stamps the commands."""

    def __init__(self, data_dir: Path, config: VenueConfig | None = None, start_ms: int = T0_MS) -> None:
        self.config = config or default_config()
        self.engine = Engine(self.config)
        self.last_seq = 0
        self.now_ms = start_ms
        self.store = TradeStore(data_dir / "market.sqlite")
        self.depth = DepthTracker(self.config, lambda: self.engine, lambda: self.last_seq)
        self.batches: list[list[Applied]] = []
        self.book_changes = NO_CHANGES
        """What the depth tracker made of the last batch."""

    def apply(self, *commands: Command) -> list[Applied]:
        batch: list[Applied] = []
        for command in commands:
            self.last_seq += 1
            batch.append(Applied(self.last_seq, command, self.engine.apply(command)))
        self.store.on_applied(batch)
        self.book_changes = self.depth.on_applied(batch)
        self.batches.append(batch)
        return batch

    @property
    def ts(self) -> int:
        return self.now_ms * NS_PER_MS

    def account(self, name: str, usdt: str = "10000000") -> AccountId:
        [created] = self.apply(CreateAccount(ts_ns=self.ts, name=name))
        account = next(e for e in created.events if isinstance(e, AccountCreated)).account_id
        atoms = int(Decimal(usdt) * 10**8)
        self.apply(
            Deposit(
                ts_ns=self.ts, account_id=account, asset=AssetId("USDT"), amount_atoms=atoms, tx_id=TxId(name)
            )
        )
        return account

    def mark(self, price_ticks: int, market: MarketId = BTC) -> None:
        self.apply(
            SetMarkPrice(ts_ns=self.ts, market=market, index_ticks=price_ticks, mark_ticks=price_ticks)
        )

    def order(
        self,
        account: AccountId,
        side: Side,
        price_ticks: int | None,
        qty_lots: int,
        tif: TimeInForce = TimeInForce.GTC,
        market: MarketId = BTC,
    ) -> PlaceOrder:
        return PlaceOrder(
            ts_ns=self.ts,
            account_id=account,
            market=market,
            side=side,
            order_type=OrderType.LIMIT if price_ticks is not None else OrderType.MARKET,
            price_ticks=price_ticks,
            qty_lots=qty_lots,
            tif=tif,
        )

    def trade(
        self,
        maker: AccountId,
        taker: AccountId,
        taker_side: Side,
        price_ticks: int,
        qty_lots: int,
        at_ms: int,
    ) -> None:
        """One trade at ``at_ms``: ``maker`` rests the size, ``taker`` takes it with an IOC order."""
        self.now_ms = at_ms
        self.apply(
            self.order(maker, taker_side.opposite, price_ticks, qty_lots),
            self.order(taker, taker_side, price_ticks, qty_lots, TimeInForce.IOC),
        )


def accepted(batch: list[Applied]) -> list[OrderId]:
    return [e.order_id for a in batch for e in a.events if isinstance(e, OrderAccepted)]
