"""The multi-asset cascade: accounts margined by BTC alone (Multi-Assets Mode) through a BTC crash.

Wrong-way risk in one picture: a trader long BTCUSDT with BTC as collateral loses twice when BTC
falls (on the position and on the collateral). The scenario writes a real data directory (journal
and config, through ``journal.store.open_store``), so ``perpx explain``, ``perpx replay`` and the
report tools read what it did. The venue is :data:`perpx.lending.venue.LENDING_VENUE_TOML` with a
``conversion_discount_bps`` on BTC (manual clock).

Steps, in venue time from 2026-01-01T00:00:00Z:

1. the insurance fund gets ``fund`` USDT; a market maker gets USDT; ``traders`` accounts each
   deposit BTC (0.5 to 2 BTC, spread evenly), turn Multi-Assets Mode on and open a BTCUSDT
   position at 50,000 against the maker, its notional ``leverage x`` what the collateral counts
   for (leverage spread from 2x to ``max_leverage``; every fifth trader is short, the rest long);
2. every ``step_s`` seconds both index sources quote BTC and the perp's mark moves with it, along a
   straight line from ``start`` to ``start x (1 - drop)`` over ``minutes``, then holds; before each
   step the maker quotes a thin ladder of bids and asks around the new price (what liquidation
   orders can trade against).

The summary counts liquidations by outcome, collateral conversions (BTC sold to the fund, USDT
paid), the fund's result (its USDT equity change plus the BTC it bought at the final index),
deficits the fund covered, ADL, and accounts left in debt.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from perpx.engine.commands import (
    CancelAllOrders,
    Command,
    CreateAccount,
    Deposit,
    OrderType,
    PlaceOrder,
    SetMarkPrice,
    SetMultiAssetsMode,
    SubmitAssetQuote,
    TimeInForce,
)
from perpx.engine.events import (
    AdlStep,
    CollateralConverted,
    DeficitStep,
    Event,
    LiquidationExplained,
    OrderFilled,
)
from perpx.engine.liquidation.insurance import INSURANCE_ACCOUNT, fund_equity
from perpx.engine.values import AccountId, AssetId, MarketId, Side, TxId, format_units, to_units
from perpx.journal.store import open_store
from perpx.lending.venue import LENDING_VENUE_TOML

START_NS = 1_767_225_600_000_000_000
NS_PER_S = 1_000_000_000
BTC = AssetId("BTC")
USDT = AssetId("USDT")
MARKET = MarketId("BTCUSDT")
ATOM = Decimal("0.00000001")
SOURCES = ("binance", "okx")
MAKER_ID = AccountId(2)
CASCADE_TOML = LENDING_VENUE_TOML.replace(
    'max_collateral = "100"\n', 'max_collateral = "100"\nconversion_discount_bps = 100\n'
)
"""The lending venue with a 1% conversion discount on BTC (its haircut is 5%)."""


@dataclass(frozen=True)
class CascadeParams:
    """The scenario's knobs."""

    traders: int = 100
    start: str = "50000"
    drop: str = "0.30"
    minutes: int = 10
    step_s: int = 10
    max_leverage: int = 10
    fund: str = "200000"
    ladder_btc: str = "0.2"
    """BTC the maker quotes at each of its three levels per side, at 0.2%, 0.5% and 1% from the price."""


@dataclass
class CascadeSummary:
    """What happened, in counts and atoms (USDT and BTC both have 8 decimals)."""

    traders: int = 0
    liquidations: int = 0
    partial_liquidations: int = 0
    debt_conversions: int = 0
    """Conversions of accounts with no position left whose debt outgrew their collateral."""
    conversions: int = 0
    btc_sold_atoms: int = 0
    usdt_paid_atoms: int = 0
    deficits_covered_atoms: int = 0
    adl_legs: int = 0
    accounts_in_debt: int = 0
    """Traders left with a negative USDT balance (a debt against the BTC they still hold)."""
    debt_unbacked: int = 0
    """Of those, the ones whose BTC at the haircut value no longer covers the debt (waiting for the
    fund to have money to buy their collateral)."""
    debt_atoms: int = 0
    fund_start_atoms: int = 0
    fund_end_atoms: int = 0
    fund_btc_atoms: int = 0
    final_index_atoms: int = 0
    events: int = 0

    @property
    def fund_result_atoms(self) -> int:
        """The fund's USDT equity change plus the BTC it bought, valued at the final index (down)."""
        btc_value = self.fund_btc_atoms * self.final_index_atoms // 10**8
        return self.fund_end_atoms - self.fund_start_atoms + btc_value

    def to_json(self) -> dict[str, object]:
        def usdt(atoms: int) -> str:
            return format_units(atoms, ATOM)

        return {
            "traders": self.traders,
            "liquidations": self.liquidations,
            "partialLiquidations": self.partial_liquidations,
            "debtConversions": self.debt_conversions,
            "conversions": self.conversions,
            "btcSold": usdt(self.btc_sold_atoms),
            "usdtPaidForBtc": usdt(self.usdt_paid_atoms),
            "deficitsCovered": usdt(self.deficits_covered_atoms),
            "adlLegs": self.adl_legs,
            "accountsInDebt": self.accounts_in_debt,
            "debtUnbacked": self.debt_unbacked,
            "debt": usdt(self.debt_atoms),
            "fundStart": usdt(self.fund_start_atoms),
            "fundEnd": usdt(self.fund_end_atoms),
            "fundBtc": usdt(self.fund_btc_atoms),
            "finalIndex": usdt(self.final_index_atoms),
            "fundResult": usdt(self.fund_result_atoms),
            "events": self.events,
        }


def _atoms(text: str | Decimal) -> int:
    return to_units(str(text), ATOM, "amount")


def run_cascade(data: Path, params: CascadeParams = CascadeParams()) -> CascadeSummary:
    """Run the scenario into the new data directory ``data`` and summarise it.

    Raises
    ------
    FileExistsError
        If ``data`` already holds a journal (the scenario never writes over one).
    """
    if (data / "journal").exists() or (data / "config.toml").exists():
        raise FileExistsError(f"{data} already holds a venue; give a new directory")
    store, _ = open_store(data, CASCADE_TOML)
    summary = CascadeSummary(traders=params.traders)
    clock = [START_NS]

    def submit(command: Command) -> list[Event]:
        events = list(store.submit(command))
        summary.events += len(events)
        for event in events:
            if isinstance(event, LiquidationExplained):
                if event.outcome == "COLLATERAL_CONVERTED":
                    summary.debt_conversions += 1
                elif event.outcome == "PARTIAL":
                    summary.partial_liquidations += 1
                else:
                    summary.liquidations += 1
                for step in event.steps:
                    if isinstance(step, DeficitStep):
                        summary.deficits_covered_atoms += step.amount_atoms
                    elif isinstance(step, AdlStep):
                        summary.adl_legs += len(step.legs)
            elif isinstance(event, CollateralConverted):
                summary.conversions += 1
                summary.btc_sold_atoms += event.sold_atoms
                summary.usdt_paid_atoms += event.proceeds_atoms
        return events

    def tick() -> int:
        clock[0] += 1_000_000
        return clock[0]

    def order(account: AccountId, side: Side, lots: int, price_ticks: int, tif: TimeInForce) -> list[Event]:
        return submit(
            PlaceOrder(
                ts_ns=tick(),
                account_id=account,
                market=MARKET,
                side=side,
                order_type=OrderType.LIMIT,
                qty_lots=lots,
                price_ticks=price_ticks,
                tif=tif,
            )
        )

    spec = store.engine.specs[MARKET]
    start = Decimal(params.start)

    def ticks(price: Decimal) -> int:
        return int(price / spec.tick_size)

    def lots(btc: Decimal) -> int:
        return int(btc / spec.lot_size)

    def move(price: Decimal) -> None:
        for source in SOURCES:
            submit(SubmitAssetQuote(ts_ns=tick(), asset=BTC, source=source, price_atoms=_atoms(price)))
        submit(SetMarkPrice(ts_ns=tick(), market=MARKET, index_ticks=ticks(price), mark_ticks=ticks(price)))

    def ladder(price: Decimal) -> None:
        submit(CancelAllOrders(ts_ns=tick(), account_id=MAKER_ID, market=MARKET))
        size = lots(Decimal(params.ladder_btc))
        for offset in ("0.002", "0.005", "0.01"):
            order(MAKER_ID, Side.BUY, size, ticks(price * (1 - Decimal(offset))), TimeInForce.GTC)
            order(MAKER_ID, Side.SELL, size, ticks(price * (1 + Decimal(offset))), TimeInForce.GTC)

    submit(CreateAccount(ts_ns=tick(), name="lender"))
    submit(CreateAccount(ts_ns=tick(), name="maker"))
    submit(
        Deposit(
            ts_ns=tick(), account_id=MAKER_ID, asset=USDT, amount_atoms=_atoms("100000000"), tx_id=TxId("mm")
        )
    )
    submit(
        Deposit(
            ts_ns=tick(),
            account_id=INSURANCE_ACCOUNT,
            asset=USDT,
            amount_atoms=_atoms(params.fund),
            tx_id=TxId("fund"),
        )
    )
    move(start)
    summary.fund_start_atoms = fund_equity(store.engine)
    haircut = Decimal(store.engine.config.assets[BTC].collateral_haircut_e8) / 10**8
    traders: list[AccountId] = []
    for number in range(params.traders):
        share = Decimal(number) / max(1, params.traders - 1)
        btc = (Decimal("0.5") + Decimal("1.5") * share).quantize(Decimal("0.001"))
        leverage = 2 + (params.max_leverage - 2) * share
        account = AccountId(3 + number)
        submit(CreateAccount(ts_ns=tick(), name=f"trader-{number}"))
        submit(
            Deposit(
                ts_ns=tick(),
                account_id=account,
                asset=BTC,
                amount_atoms=_atoms(btc),
                tx_id=TxId(f"t{number}"),
            )
        )
        submit(SetMultiAssetsMode(ts_ns=tick(), account_id=account, enabled=True))
        size = lots(btc * (1 - haircut) * leverage)
        side = Side.SELL if number % 5 == 4 else Side.BUY
        maker_side = Side.BUY if side is Side.SELL else Side.SELL
        order(MAKER_ID, maker_side, size, ticks(start), TimeInForce.GTC)
        filled = order(account, side, size, ticks(start), TimeInForce.IOC)
        if any(isinstance(e, OrderFilled) and e.account_id == account for e in filled):
            traders.append(account)
        submit(CancelAllOrders(ts_ns=tick(), account_id=MAKER_ID, market=MARKET))
    steps = params.minutes * 60 // params.step_s
    low = start * (1 - Decimal(params.drop))
    fall_ns = clock[0] + NS_PER_S
    price = start
    for step in range(1, 2 * steps + 1):
        clock[0] = max(clock[0], fall_ns + step * params.step_s * NS_PER_S)
        price = start + (low - start) * min(step, steps) / steps
        price = price.quantize(Decimal("0.1"))
        ladder(price)
        move(price)
    engine = store.engine
    summary.fund_end_atoms = fund_equity(engine)
    summary.fund_btc_atoms = engine.accounts[INSURANCE_ACCOUNT].balance(BTC)
    summary.final_index_atoms = _atoms(price)
    for account_id in traders:
        trader = engine.accounts[account_id]
        if trader.balance(USDT) < 0:
            summary.accounts_in_debt += 1
            summary.debt_atoms -= trader.balance(USDT)
            if trader.balance(USDT) + trader.collateral_atoms < 0:
                summary.debt_unbacked += 1
    store.close()
    return summary
