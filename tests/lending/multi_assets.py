"""A venue for the Multi-Assets Mode rule tables: the lending venue plus the mode and a market maker.

BTC is collateral (5% haircut unless a test sets tiers) with a 1% conversion discount; the
insurance fund's account holds ``fund`` USDT (100,000; it buys converted collateral). ``bob`` is the
counterparty with 1,000,000 USDT.
"""

from __future__ import annotations

from typing import Any

from perpx.engine.commands import Deposit, SetMultiAssetsMode, Withdraw
from perpx.engine.events import Outcome
from perpx.engine.liquidation.insurance import INSURANCE_ACCOUNT
from perpx.engine.values import AssetId, TxId
from tests.lending.helpers import BTC, USDT, LendingVenue, atoms, lending_config, lending_data

MARKET = "BTCUSDT"


def multi_assets_data(**btc: Any) -> dict[str, Any]:
    data = lending_data()
    data["assets"]["BTC"]["conversion_discount_bps"] = 100
    for key, value in btc.items():
        if value is None:
            data["assets"]["BTC"].pop(key, None)
        else:
            data["assets"]["BTC"][key] = value
    return data


class MultiVenue(LendingVenue):
    """:class:`LendingVenue` with Multi-Assets verbs; invariants are checked after every command."""

    def __init__(self, fund: str = "100000", **btc: Any) -> None:
        super().__init__(config=lending_config(multi_assets_data(**btc)))
        self.venue.mark(MARKET, "50000")
        self.price("50000")
        self.venue.account("bob", "1000000")
        self.venue._tx += 1
        self.venue.apply(
            Deposit(
                ts_ns=self.venue.tick(),
                account_id=INSURANCE_ACCOUNT,
                asset=USDT,
                amount_atoms=atoms(fund),
                tx_id=TxId("fund"),
            )
        )

    def mode(self, name: str, enabled: bool = True) -> Outcome:
        return self.venue.apply(
            SetMultiAssetsMode(ts_ns=self.venue.tick(), account_id=self.venue.names[name], enabled=enabled)
        )

    def withdraw(self, name: str, asset: AssetId, amount: str) -> Outcome:
        self.venue._tx += 1
        return self.venue.apply(
            Withdraw(
                ts_ns=self.venue.tick(),
                account_id=self.venue.names[name],
                asset=asset,
                amount_atoms=atoms(amount),
                tx_id=TxId(f"wd-{self.venue._tx}"),
            )
        )

    def trade(self, buyer: str, seller: str, qty: str, price: str) -> None:
        """``seller`` rests a sell, ``buyer`` takes it (both at ``price``)."""
        self.venue.place(seller, MARKET, "SELL", qty, price)
        self.venue.place(buyer, MARKET, "BUY", qty, price)

    def collateral(self, name: str) -> int:
        return self.venue.engine.accounts[self.venue.names[name]].collateral_atoms


__all__ = ["BTC", "MARKET", "USDT", "MultiVenue", "atoms", "multi_assets_data"]
