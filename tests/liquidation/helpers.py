"""Shared vocabulary of the liquidation tests: venues with positions, the fund, records.

Money is in atoms of USDT (``USDT = 10**8``); BTCUSDT prices in ticks of 0.1, quantities in lots
of 0.001 BTC (``contract_atoms = 10,000``: one lot at one tick).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from perpx.engine.commands import Deposit, MarginMode, SetMarginMode
from perpx.engine.config import VenueConfig
from perpx.engine.events import Event, LiquidationExplained
from perpx.engine.liquidation import INSURANCE_ACCOUNT
from perpx.engine.values import AccountId, AssetId, MarketId, TxId
from perpx.testkit import Venue
from tests.engine.helpers import BTC, USDT, config_with

__all__ = [
    "BTC",
    "USDT",
    "account_id",
    "config_with",
    "isolate",
    "liq_config",
    "make_venue",
    "qty",
    "records",
    "seed_fund",
    "steps",
    "trade",
    "wallet",
]

T = TypeVar("T")


def liq_config(**market: Any) -> VenueConfig:
    """The demo venue with BTCUSDT keys replaced (``liquidation_fee="0.002"``)."""
    return config_with(market=dict(market))


def make_venue(config: VenueConfig | None = None, mark: str = "30000", **deposits: str) -> Venue:
    """A venue with the BTCUSDT mark set and one account per keyword, funded with its value."""
    v = Venue(config) if config is not None else Venue()
    v.mark(BTC, mark)
    for name, amount in deposits.items():
        v.account(name, amount)
    return v


def isolate(v: Venue, name: str, market: str = BTC) -> None:
    v.apply(
        SetMarginMode(
            ts_ns=v.tick(), account_id=v.names[name], market=MarketId(market), mode=MarginMode.ISOLATED
        )
    )


def trade(v: Venue, buyer: str, seller: str, qty: str, price: str, market: str = BTC) -> None:
    """``seller`` rests a sell, ``buyer`` takes it (both positions open or change)."""
    v.place(seller, market, "sell", qty, price)
    events = v.place(buyer, market, "buy", qty, price)
    assert any(type(e).__name__ == "OrderFilled" for e in events), events


def seed_fund(v: Venue, amount: str) -> None:
    """Deposit into the insurance fund's account (its wallet is part of the fund's equity)."""
    v.apply(
        Deposit(
            ts_ns=v.tick(),
            account_id=INSURANCE_ACCOUNT,
            asset=AssetId("USDT"),
            amount_atoms=v.atoms(amount),
            tx_id=TxId(f"fund-{v.tick()}"),
        )
    )


def records(events: Sequence[Event]) -> list[LiquidationExplained]:
    return [e for e in events if isinstance(e, LiquidationExplained)]


def steps(record: LiquidationExplained, kind: type[T]) -> list[T]:
    return [s for s in record.steps if isinstance(s, kind)]


def wallet(v: Venue, name: str) -> int:
    return v.engine.accounts[v.names[name]].balance(AssetId("USDT"))


def qty(v: Venue, name: str, market: str = BTC) -> int:
    return v.engine.position(v.names[name], MarketId(market)).qty_lots


def account_id(v: Venue, name: str) -> AccountId:
    return v.names[name]
