"""The collateral-crash scenario: many loans at mixed LTVs, then the collateral falls 30% in ten minutes.

It writes a real data directory (journal and config, through ``journal.store.open_store``), so the
lending report, ``perpx replay`` and the server read what it did. The venue is
:data:`perpx.lending.venue.LENDING_VENUE_TOML` (manual clock); account 1 is the lender.

Steps, in venue time from 2026-01-01T00:00:00Z:

1. the lender deposits enough USDT for every loan; each borrower deposits BTC and borrows USDT at an
   LTV spread evenly over ``[min_ltv, max_ltv]`` (both amounts given: Binance's custom LTV);
2. both index sources quote BTC every ``step_s`` seconds along a straight line from ``start`` to
   ``start x (1 - drop)`` over ``minutes`` minutes, then hold the low for as long again; with
   ``okx_silent`` one source goes quiet for a while (a stale collateral index during the drop).

The summary says what the engine did: margin calls, liquidations and their steps, the lender's
bad debt, when the last liquidation happened (counted from the start of the fall: after it, every
loan stayed under its liquidation LTV), and how many loans were still at or above the margin-call
LTV at the end (called, not liquidated: their borrowers must add collateral or repay).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from perpx.engine.commands import AdvanceClock, BorrowLoan, Command, CreateAccount, Deposit, SubmitAssetQuote
from perpx.engine.events import Event, LoanBorrowed, LoanLiquidated, LoanMarginCalled
from perpx.engine.values import AccountId, AssetId, TxId, format_units, to_units
from perpx.journal.store import open_store
from perpx.lending.venue import LENDING_VENUE_TOML

START_NS = 1_767_225_600_000_000_000
NS_PER_S = 1_000_000_000
BTC = AssetId("BTC")
USDT = AssetId("USDT")
ATOM = Decimal("0.00000001")
SOURCES = ("binance", "okx")


@dataclass(frozen=True)
class CrashParams:
    """The scenario's knobs (defaults: the issue's 500 loans and 30% in ten minutes)."""

    loans: int = 500
    start: str = "50000"
    drop: str = "0.30"
    minutes: int = 10
    step_s: int = 10
    min_ltv: str = "0.30"
    max_ltv: str = "0.78"
    collateral_btc: str = "1"
    okx_silent: tuple[int, int] | None = None
    """Seconds (from the start of the fall) during which ``okx`` sends nothing: after 30 s the index
    is below its quorum of 2, so no liquidation happens until ``okx`` quotes again."""


@dataclass
class CrashSummary:
    """What happened, in counts and atoms (USDT and BTC both have 8 decimals)."""

    loans_opened: int = 0
    margin_calls: int = 0
    liquidations: int = 0
    liquidation_steps: int = 0
    loans_closed_by_liquidation: int = 0
    bad_debt_atoms: int = 0
    collateral_sold_atoms: int = 0
    last_liquidation_s: int | None = None
    """Seconds from the start of the fall to the last liquidation (``None``: there was none)."""
    at_margin_call_at_end: int = 0
    low_price: str = ""
    events: int = 0
    timeline: list[tuple[int, str, int, int]] = field(default_factory=list)
    """Per price step: (seconds since the fall began, index, liquidations so far, loans at or over the margin call)."""

    def to_json(self) -> dict[str, object]:
        return {
            "loansOpened": self.loans_opened,
            "marginCalls": self.margin_calls,
            "liquidations": self.liquidations,
            "liquidationSteps": self.liquidation_steps,
            "loansClosedByLiquidation": self.loans_closed_by_liquidation,
            "badDebtUSDT": format_units(self.bad_debt_atoms, ATOM),
            "collateralSoldBTC": format_units(self.collateral_sold_atoms, ATOM),
            "lastLiquidationAfterSeconds": self.last_liquidation_s,
            "loansAtMarginCallAtEnd": self.at_margin_call_at_end,
            "lowPrice": self.low_price,
        }


def _atoms(text: str | Decimal) -> int:
    return to_units(str(text), ATOM, "amount")


def setup_commands(params: CrashParams) -> list[Command]:
    """Accounts, deposits and the loans, before the fall (at ``START_NS`` + a few ms)."""
    t = START_NS
    start = Decimal(params.start)
    collateral = Decimal(params.collateral_btc)
    low, high = Decimal(params.min_ltv), Decimal(params.max_ltv)
    loans: list[Command] = []
    commands: list[Command] = [
        CreateAccount(ts_ns=t, name="lender"),
        Deposit(
            ts_ns=t,
            account_id=AccountId(1),
            asset=USDT,
            amount_atoms=_atoms(start * collateral * params.loans),
            tx_id=TxId("lender-funding"),
        ),
    ]
    commands += [SubmitAssetQuote(ts_ns=t, asset=BTC, source=s, price_atoms=_atoms(start)) for s in SOURCES]
    for n in range(params.loans):
        account = AccountId(n + 2)
        ltv = low + (high - low) * n / max(params.loans - 1, 1)
        loan = (start * collateral * ltv).quantize(ATOM, rounding="ROUND_DOWN")
        commands.append(CreateAccount(ts_ns=t, name=f"borrower-{n}"))
        commands.append(
            Deposit(
                ts_ns=t,
                account_id=account,
                asset=BTC,
                amount_atoms=_atoms(collateral),
                tx_id=TxId(f"btc-{n}"),
            )
        )
        loans.append(
            BorrowLoan(
                ts_ns=t,
                account_id=account,
                loan_asset=USDT,
                collateral_asset=BTC,
                loan_atoms=_atoms(loan),
                collateral_atoms=_atoms(collateral),
            )
        )
    return commands + loans


def price_path(params: CrashParams) -> list[tuple[int, int]]:
    """(time, price in atoms) of every quote step: the fall, then the low held as long again."""
    start = Decimal(params.start)
    low = start * (1 - Decimal(params.drop))
    fall_s = params.minutes * 60
    path = []
    for elapsed in range(params.step_s, 2 * fall_s + 1, params.step_s):
        price = low if elapsed >= fall_s else start + (low - start) * elapsed / fall_s
        path.append((START_NS + NS_PER_S + elapsed * NS_PER_S, _atoms(price.quantize(ATOM))))
    return path


def run_crash(data: Path, params: CrashParams | None = None) -> CrashSummary:
    """Run the scenario into the new data directory ``data``; return its summary."""
    params = params or CrashParams()
    store, _ = open_store(data, LENDING_VENUE_TOML)
    summary = CrashSummary()
    try:
        for events in store.submit_batch(setup_commands(params)):
            _count(summary, events)
        fall_start = START_NS + NS_PER_S
        lending = store.engine.lending
        terms = store.config.lending
        assert terms is not None
        margin_call = terms.collateral[BTC].margin_call_ltv_e8
        for ts, price in price_path(params):
            elapsed = (ts - fall_start) // NS_PER_S
            silent = params.okx_silent
            quiet = silent is not None and silent[0] <= elapsed < silent[1]
            batch: list[Command] = [
                SubmitAssetQuote(ts_ns=ts, asset=BTC, source=s, price_atoms=price)
                for s in SOURCES
                if not (quiet and s == "okx")
            ]
            before = summary.liquidations
            for events in store.submit_batch(batch):
                _count(summary, events)
            over = sum(1 for loan in lending.loans.values() if (lending.ltv_e8(loan) or 0) >= margin_call)
            summary.timeline.append((elapsed, format_units(price, ATOM), summary.liquidations, over))
            if summary.liquidations > before:
                summary.last_liquidation_s = elapsed
            summary.at_margin_call_at_end = over
            summary.low_price = format_units(price, ATOM)
        last = price_path(params)[-1][0]
        for events in store.submit_batch([AdvanceClock(ts_ns=last + NS_PER_S)]):
            _count(summary, events)
    finally:
        store.close()
    return summary


def _count(summary: CrashSummary, events: list[Event]) -> None:
    summary.events += len(events)
    for event in events:
        if isinstance(event, LoanBorrowed):
            summary.loans_opened += 1
        elif isinstance(event, LoanMarginCalled):
            summary.margin_calls += 1
        elif isinstance(event, LoanLiquidated):
            summary.liquidations += 1
            summary.liquidation_steps += len(event.steps)
            summary.bad_debt_atoms += event.bad_debt_atoms
            summary.collateral_sold_atoms += event.collateral_seized_atoms
            if event.closed:
                summary.loans_closed_by_liquidation += 1
