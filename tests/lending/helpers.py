"""A lending venue for the rule tables: the demo venue plus BTC as priced collateral and a USDT lender.

Money in the tables is decimal text: ``"39000"`` USDT, ``"0.5"`` BTC; atoms are 10**-8 of both.
Account ``lender`` is account 1 (``[lending] lender_account = 1``), funded with 1,000,000 USDT.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from perpx.engine.commands import (
    AdjustLoanCollateral,
    BorrowLoan,
    Deposit,
    LtvDirection,
    RepayLoan,
    SubmitAssetQuote,
)
from perpx.engine.config import DEFAULT_CONFIG_TOML, VenueConfig, parse_config
from perpx.engine.events import CommandRejected, Event, Outcome
from perpx.engine.lending.loans import Loan
from perpx.engine.values import AssetId, TxId, to_units
from perpx.lending.venue import LENDING_TOML
from perpx.testkit import Venue

BTC = AssetId("BTC")
USDT = AssetId("USDT")
ATOM = Decimal("0.00000001")


def lending_data() -> dict[str, Any]:
    """The demo venue with the lending tables, as a mutable mapping."""
    return tomllib.loads(DEFAULT_CONFIG_TOML + LENDING_TOML)


def lending_config(data: dict[str, Any] | None = None) -> VenueConfig:
    return parse_config(data if data is not None else lending_data())


def atoms(amount: str) -> int:
    return to_units(amount, ATOM, "amount")


@dataclass
class LendingVenue:
    """A :class:`~perpx.testkit.Venue` (invariants checked after every command) with loan verbs."""

    config: VenueConfig = field(default_factory=lending_config)
    venue: Venue = field(init=False)

    def __post_init__(self) -> None:
        self.venue = Venue(self.config)
        self.venue.account("lender", "1000000")

    def borrower(self, name: str, btc: str = "10", usdt: str | None = None) -> None:
        self.venue.account(name, usdt)
        self.deposit(name, BTC, btc)

    def deposit(self, name: str, asset: AssetId, amount: str) -> Outcome:
        self.venue._tx += 1
        return self.venue.apply(
            Deposit(
                ts_ns=self.venue.tick(),
                account_id=self.venue.names[name],
                asset=asset,
                amount_atoms=atoms(amount),
                tx_id=TxId(f"dep-{self.venue._tx}"),
            )
        )

    def price(self, btc: str, sources: tuple[str, ...] = ("binance", "okx")) -> Outcome:
        """Both sources quote BTC at ``btc`` USDT (a fresh index at that price)."""
        events = Outcome()
        for source in sources:
            events.extend(
                self.venue.apply(
                    SubmitAssetQuote(
                        ts_ns=self.venue.tick(), asset=BTC, source=source, price_atoms=atoms(btc)
                    )
                )
            )
        return events

    def borrow(self, name: str, loan: str | None = None, collateral: str | None = None) -> Outcome:
        return self.venue.apply(
            BorrowLoan(
                ts_ns=self.venue.tick(),
                account_id=self.venue.names[name],
                loan_asset=USDT,
                collateral_asset=BTC,
                loan_atoms=None if loan is None else atoms(loan),
                collateral_atoms=None if collateral is None else atoms(collateral),
            )
        )

    def repay(
        self, name: str, amount: str = "0", *, full: bool = False, collateral_return: bool = True
    ) -> Outcome:
        return self.venue.apply(
            RepayLoan(
                ts_ns=self.venue.tick(),
                account_id=self.venue.names[name],
                loan_asset=USDT,
                collateral_asset=BTC,
                repay_atoms=atoms(amount),
                full_repayment=full,
                collateral_return=collateral_return,
            )
        )

    def adjust(self, name: str, amount: str, direction: LtvDirection) -> Outcome:
        return self.venue.apply(
            AdjustLoanCollateral(
                ts_ns=self.venue.tick(),
                account_id=self.venue.names[name],
                loan_asset=USDT,
                collateral_asset=BTC,
                amount_atoms=atoms(amount),
                direction=direction,
            )
        )

    def loan(self, name: str) -> Loan | None:
        return self.venue.engine.lending.loan_of(self.venue.names[name], USDT, BTC)

    def balance(self, name: str, asset: AssetId) -> int:
        return self.venue.engine.accounts[self.venue.names[name]].balance(asset)


def rejection(events: list[Event]) -> tuple[int, str] | None:
    """The (code, message) of the command's rejection, or ``None``."""
    for event in events:
        if isinstance(event, CommandRejected):
            return int(event.code), event.message
    return None


def of_type(events: list[Event], kind: type[Event]) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]
