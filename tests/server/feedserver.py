"""A venue whose sequencer makes BTCUSDT trades at a set rate: the server of the slow-consumer test.

Run as ``python -m tests.server.feedserver serve --data DIR --port P --admin-port A --config C``
(the arguments :class:`tests.server.harness.ServerProcess` gives ``perpx serve``) plus
``--trades N --rate R --queue-frames Q --stall-s S``. It serves with the real listeners
(:class:`perpx.server.listeners.VenueServer`); only the stream hub's bounds and the driver differ
from ``perpx serve``. The feed waits until the BTCUSDT mark is set (the test sets it through the
admin API once its clients listen), then makes ``N`` trades at ``R`` a second, each a maker order
and a taker IOC in one journal batch, sides alternating so positions stay flat.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import time
from pathlib import Path

from perpx.engine.commands import (
    AdvanceClock,
    Command,
    CreateAccount,
    Deposit,
    OrderType,
    PlaceOrder,
    TimeInForce,
)
from perpx.engine.events import AccountCreated
from perpx.engine.values import NS_PER_MS, AccountId, AssetId, MarketId, Side, TxId
from perpx.sequencing import Sequencer
from perpx.server.app import build_components
from perpx.server.components import Components
from perpx.server.context import ServerContext, open_venue
from perpx.server.listeners import VenueServer, bind_listeners
from perpx.server.streams import StreamHub

BTC = MarketId("BTCUSDT")
PER_BATCH = 20
QTY_LOTS = 10

log = logging.getLogger("perpx.feed")


class TradeFeed:
    """A sequencer driver: ``total`` trades at ``rate`` a second once the BTCUSDT mark is set."""

    def __init__(self, total: int, rate: float) -> None:
        self.total = total
        self.rate = rate
        self.made = 0
        self.accounts: tuple[AccountId, AccountId] | None = None
        self.started_ns = 0
        self.next_ns = 0

    def setup(self, sequencer: Sequencer) -> None:
        if sequencer.engine.now_ns == 0:  # a new manual-clock venue starts at the wall-clock time
            sequencer.apply([AdvanceClock(ts_ns=time.time_ns())])
        ids = []
        for name in ("feed-maker", "feed-taker"):
            [created] = sequencer.apply([CreateAccount(ts_ns=sequencer.stamp(), name=name)])
            account = next(e for e in created.events if isinstance(e, AccountCreated)).account_id
            deposit = Deposit(
                ts_ns=sequencer.stamp(),
                account_id=account,
                asset=AssetId("USDT"),
                amount_atoms=10_000_000 * 10**8,
                tx_id=TxId(name),
            )
            sequencer.apply([deposit])
            ids.append(account)
        self.accounts = (ids[0], ids[1])

    def due_ns(self) -> int:
        return 2**63 - 1 if self.made >= self.total else self.next_ns

    def run(self, sequencer: Sequencer, wall_ns: int) -> None:
        price = sequencer.engine.marks.get(BTC)
        if price is None or self.accounts is None:
            self.next_ns = wall_ns + 20 * NS_PER_MS
            return
        if self.made == 0:
            self.started_ns = wall_ns
            log.info("feed: started, %d trades at %.0f a second", self.total, self.rate)
        maker, taker = self.accounts
        commands: list[Command] = []
        for _ in range(min(PER_BATCH, self.total - self.made)):
            side = Side.BUY if self.made % 2 == 0 else Side.SELL
            ts = sequencer.stamp()
            commands.append(self._order(ts, maker, side, price, TimeInForce.GTC))
            commands.append(self._order(ts, taker, side.opposite, price, TimeInForce.IOC))
            self.made += 1
        sequencer.apply(commands)
        self.next_ns = self.started_ns + int(self.made / self.rate * 1e9)
        if self.made >= self.total:
            seconds = (time.time_ns() - self.started_ns) / 1e9
            log.info(
                "feed: made %d trades in %.2f s (%.0f a second)", self.made, seconds, self.made / seconds
            )

    @staticmethod
    def _order(ts_ns: int, account: AccountId, side: Side, price: int, tif: TimeInForce) -> PlaceOrder:
        return PlaceOrder(
            ts_ns=ts_ns,
            account_id=account,
            market=BTC,
            side=side,
            order_type=OrderType.LIMIT,
            qty_lots=QTY_LOTS,
            price_ticks=price,
            tif=tif,
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--admin-port", type=int, required=True)
    parser.add_argument("--trades", type=int, required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--queue-frames", type=int, required=True)
    parser.add_argument("--stall-s", type=float, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def components(ctx: ServerContext) -> Components:
        built = build_components(ctx)
        hub = StreamHub(
            ctx, built.marketdata, built.depth, max_frames=args.queue_frames, stall_s=args.stall_s
        )
        return dataclasses.replace(built, streams=hub)

    listeners = bind_listeners("127.0.0.1", args.port, "127.0.0.1", args.admin_port)
    ctx = open_venue(args.data, args.config.read_text(), components)
    ctx.admin_token = os.environ["PERPX_ADMIN_TOKEN"]
    feed = TradeFeed(args.trades, args.rate)
    feed.setup(ctx.seq.core)
    ctx.seq.add_driver(feed)
    for line in asyncio.run(VenueServer(ctx, listeners).serve()).lines():
        print(line, flush=True)


if __name__ == "__main__":
    main()
