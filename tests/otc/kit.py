"""A desk on a test-kit venue: a funded desk, a client, a market maker's book around 30000."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from decimal import Decimal

from perpx.engine.commands import Command
from perpx.engine.config import parse_config
from perpx.engine.values import MarketId, Side
from perpx.lending.venue import LENDING_VENUE_TOML
from perpx.otc.config import HedgeMode, MarketPolicy, OtcConfig
from perpx.otc.desk import Desk
from perpx.otc.errors import OtcError
from perpx.otc.pricing import QuoteSide
from perpx.otc.store import OtcStore, QuoteRecord
from perpx.testkit import Venue
from tests.engine.helpers import BTC, venue


@dataclass
class DeskKit:
    """The venue, the desk and its store; ``book`` makes a maker's book of ``lots`` a level."""

    v: Venue
    desk: Desk
    commands: list[Command] = field(default_factory=list)
    """Every command the venue's sequencer applied after the kit was set up (the hedges' too)."""

    def request(
        self, client: str = "client", side: QuoteSide = QuoteSide.TWO_WAY, qty: str = "1"
    ) -> QuoteRecord:
        return self.desk.request(
            self.v.engine, self.v.names[client], MarketId(BTC), side, self.v.lots(BTC, qty)
        )

    def accept(self, quote_id: str, side: Side | None = None, client: str = "client") -> QuoteRecord:
        plan = self.desk.prepare_accept(self.v.engine, self.v.names[client], quote_id, side)
        command = self.desk.command(plan, self.v.tick())
        return self.desk.settle(plan, command, list(self.v.apply(command).own))

    def refusal(self, quote_id: str, side: Side | None = None, client: str = "client") -> OtcError:
        try:
            self.accept(quote_id, side, client)
        except OtcError as exc:
            return exc
        raise AssertionError("the accept was not refused")


def desk_kit(
    *,
    hedge: HedgeMode = HedgeMode.WAREHOUSE,
    max_inventory: str = "20",
    threshold: str = "2",
    deposit: str = "1000000",
    lender: bool = False,
) -> DeskKit:
    """The kit; with ``lender`` the venue lends (``perpx.lending.venue``) and the desk, account 1, is its lender."""
    if lender:
        v = venue("desk", config=parse_config(tomllib.loads(LENDING_VENUE_TOML)), deposit=deposit)
        for name in ("client", "maker", "other"):
            v.account(name, deposit=deposit)
    else:
        v = venue("client", "maker", deposit=deposit)
        v.account("desk", deposit=deposit)
        v.account("other", deposit=deposit)
    for i in range(1, 6):
        v.place("maker", BTC, "BUY", "5", str(30000 - 5 * i))
        v.place("maker", BTC, "SELL", "5", str(30000 + 5 * i))
    config = OtcConfig(
        desk_account=int(v.names["desk"]),
        quote_ttl_ms=5000,
        last_look_bps=Decimal(5),
        markets={
            BTC: MarketPolicy(
                hedge=hedge,
                hedge_threshold=Decimal(threshold),
                max_inventory=Decimal(max_inventory),
                hedge_duration_s=60,
            )
        },
    )
    desk = Desk(config, OtcStore(":memory:"))
    v.sequencer.add_listener(desk.history.observe)
    kit = DeskKit(v, desk, list(v.journal))
    v.sequencer.add_listener(lambda batch: kit.commands.extend(applied.command for applied in batch))
    return kit
