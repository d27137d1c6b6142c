"""``perpx explain``: the liquidation and ADL records of one account, for a person.

The journal is replayed read-only (``recover(...)``) with an observer that keeps
every :class:`~perpx.engine.events.LiquidationExplained` record naming the account (as the
liquidated account, or as an ADL counterparty), together with the latest index and mark
computations of the markets involved, and the record is printed with its inputs, every formula
value and each action with its result. In Multi-Assets Mode the margin balance shows the
collateral at index x (1 - haircut), and each collateral conversion its arithmetic (price =
index x (1 - discount), sold = ceil(debt / price), proceeds = floor(sold x price)). The
account's secured-loan liquidations (``LoanLiquidated``) follow, with their close-factor steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from perpx.engine.commands import Command
from perpx.engine.config import VenueConfig
from perpx.engine.events import (
    AdlStep,
    CancelStep,
    ConversionStep,
    DeficitStep,
    Event,
    FeeStep,
    LiquidationExplained,
    LoanLiquidated,
    MarginKeptStep,
    OrderStep,
    ScopeFigures,
    TakeoverStep,
)
from perpx.engine.values import RATE_SCALE, AccountId, MarketId, format_units
from perpx.journal.store import RecoveryReport, recover
from perpx.lending.explain import explain_event

PRICING_EVENTS = ("IndexUpdated", "MarkPriceUpdated", "MarkPriceSet")


@dataclass
class Record:
    """One explanation record and what the venue knew of its markets' prices then."""

    seq: int
    event: LiquidationExplained | LoanLiquidated
    prices: dict[str, Event] = field(default_factory=dict)


def collect(directory: Path, config: VenueConfig, account_id: int) -> tuple[list[Record], RecoveryReport]:
    """Replay the journal in ``directory`` (read-only) and keep the records naming ``account_id``.

    Liquidation records (as the liquidated account or an ADL counterparty) and the liquidations
    of the account's secured loans, in journal order.
    """
    latest: dict[tuple[str, str], Event] = {}
    found: list[Record] = []

    def observe(seq: int, _command: Command, events: list[Event]) -> None:
        for event in events:
            name = type(event).__name__
            if name in PRICING_EVENTS:
                latest[(str(getattr(event, "market", "")), name)] = event
            elif isinstance(event, LiquidationExplained) and _names(event, account_id):
                markets = {row.market for row in event.before.positions}
                prices = {f"{m} {n}": e for (m, n), e in sorted(latest.items()) if m in markets}
                found.append(Record(seq, event, prices))
            elif isinstance(event, LoanLiquidated) and event.account_id == account_id:
                found.append(Record(seq, event))

    _engine, report = recover(directory, config, use_snapshots=False, observe=observe)
    return found, report


def _names(event: LiquidationExplained, account_id: int) -> bool:
    if event.account_id == account_id:
        return True
    return any(leg.account_id == account_id for s in event.steps if isinstance(s, AdlStep) for leg in s.legs)


class _Units:
    def __init__(self, config: VenueConfig) -> None:
        self.config = config
        self.atom = config.settlement.atom
        self.asset = config.settlement_asset

    def money(self, atoms: int | None) -> str:
        return "-" if atoms is None else f"{format_units(atoms, self.atom)} {self.asset}"

    def price(self, market: str, ticks: int | None) -> str:
        if ticks is None:
            return "--"
        return format_units(ticks, self.config.markets[MarketId(market)].tick_size)

    def exact_price(self, market: str, value_atoms: int, lots: int) -> str:
        """A value in atoms for ``lots`` as a price, to 8 decimals (bankruptcy prices are rarely whole ticks)."""
        spec = self.config.markets[MarketId(market)]
        if lots == 0:
            return "-"
        price = Decimal(value_atoms) * self.atom / (Decimal(lots) * spec.lot_size)
        return f"{price.quantize(Decimal('0.00000001')).normalize():f}"

    def qty(self, market: str, lots: int) -> str:
        return format_units(lots, self.config.markets[MarketId(market)].lot_size)

    @staticmethod
    def rate(rate_e8: int) -> str:
        if rate_e8 >= 2**62:
            return "infinite (margin balance <= 0)"
        return f"{Decimal(rate_e8) * 100 / RATE_SCALE:.4f}%"


def _time(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def _positions_table(units: _Units, figures: ScopeFigures) -> Table:
    table = Table(show_edge=False, pad_edge=False, box=None)
    for header in (
        "market",
        "mode",
        "qty",
        "entry",
        "index",
        "mark",
        "notional",
        "uPnL",
        "tier",
        "mmr",
        "cum",
        "MM",
    ):
        table.add_column(header, justify="right" if header not in ("market", "mode") else "left")
    for row in figures.positions:
        entry = units.exact_price(row.market, abs(row.cost_atoms), abs(row.qty_lots))
        table.add_row(
            row.market + (" (paused)" if row.paused else ""),
            "isolated" if row.isolated else "cross",
            units.qty(row.market, row.qty_lots),
            entry,
            units.price(row.market, row.index_ticks),
            units.price(row.market, row.mark_ticks),
            units.money(row.notional_atoms),
            units.money(row.unrealized_pnl_atoms),
            str(row.bracket),
            units.rate(row.mmr_e8),
            units.money(row.cum_atoms),
            units.money(row.maintenance_atoms),
        )
    return table


def _figures_lines(units: _Units, figures: ScopeFigures, wallet_label: str) -> list[str]:
    if figures.collateral_atoms:
        return [
            f"{wallet_label:<26}{units.money(figures.wallet_atoms)}",
            f"{'collateral (haircut)':<26}{units.money(figures.collateral_atoms)}"
            "   = sum of each asset held x its last fresh index x (1 - haircut tier), rounded down",
            f"{'margin balance':<26}{units.money(figures.margin_balance_atoms)}   = wallet + collateral + uPnL",
            f"{'maintenance margin (MM)':<26}{units.money(figures.maintenance_atoms)}   = sum of notional x mmr - cum",
            f"{'margin ratio':<26}{units.rate(figures.ratio_e8)}   = MM / margin balance (liquidated at 100%)",
        ]
    return [
        f"{wallet_label:<26}{units.money(figures.wallet_atoms)}",
        f"{'margin balance':<26}{units.money(figures.margin_balance_atoms)}   = wallet + uPnL",
        f"{'maintenance margin (MM)':<26}{units.money(figures.maintenance_atoms)}   = sum of notional x mmr - cum",
        f"{'margin ratio':<26}{units.rate(figures.ratio_e8)}   = MM / margin balance (liquidated at 100%)",
    ]


def _step_lines(units: _Units, market: str | None, step: Any, account_id: int) -> list[str]:
    if isinstance(step, CancelStep):
        ids = ", ".join(str(i) for i in step.order_ids)
        return [f"cancelled open orders {ids}; margin ratio after: {units.rate(step.ratio_after_e8)}"]
    if isinstance(step, OrderStep):
        kind = "partial liquidation" if step.partial else "liquidation"
        lines = [
            f"{kind} order #{step.order_id}: IOC {step.side.name} {units.qty(step.market, step.qty_lots)}"
            f" limited at the bankruptcy price {units.price(step.market, step.limit_ticks)}"
            f" (the whole position is worth {units.money(step.bankruptcy_value_atoms)} there)"
        ]
        for fill in step.fills:
            lines.append(
                f"    filled {units.qty(step.market, fill.qty_lots)} at {units.price(step.market, fill.price_ticks)}"
                f" against account {fill.maker_account_id} (trade {fill.trade_id})"
            )
        lines.append(
            f"    filled {units.qty(step.market, step.filled_lots)}, expired {units.qty(step.market, step.expired_lots)}"
            " (the book had no more at or better than the limit)"
            if step.expired_lots
            else f"    filled {units.qty(step.market, step.filled_lots)} in full"
        )
        return lines
    if isinstance(step, MarginKeptStep):
        return [f"kept {units.money(step.amount_atoms)} of freed margin in the isolated position"]
    if isinstance(step, FeeStep):
        return [
            f"clearance fee {units.money(step.fee_atoms)} to the insurance fund"
            f" = min(ceil({units.money(step.notional_atoms)} x {units.rate(step.rate_e8)}) = {units.money(step.due_atoms)},"
            f" left above bankruptcy {units.money(step.surplus_atoms)})"
        ]
    if isinstance(step, TakeoverStep):
        assert market is not None
        return _takeover_lines(units, market, step)
    if isinstance(step, AdlStep):
        assert market is not None
        lines = [
            f"auto-deleveraged {units.qty(market, step.qty_lots)} the fund could not take, at the bankruptcy price"
            f" ({units.money(step.value_atoms)}); shortfall borne by counterparties {units.money(step.shortfall_atoms)};"
            f" queue of {step.queue_size} ranked by {step.ranking}"
        ]
        for leg in step.legs:
            you = "  <- this account" if leg.account_id == account_id else ""
            lines.append(
                f"    #{leg.rank} account {leg.account_id} (quantile {leg.quantile}/5, score {leg.score}):"
                f" closed {units.qty(market, leg.qty_lots)} for {units.money(leg.value_atoms)},"
                f" realised {units.money(leg.realized_pnl_atoms)}"
                + (
                    f", cancelled orders {', '.join(str(i) for i in leg.canceled_order_ids)}"
                    if leg.canceled_order_ids
                    else ""
                )
                + you
            )
        return lines
    if isinstance(step, ConversionStep):
        spec = units.config.assets[step.asset]
        amount = f"{format_units(step.sold_atoms, spec.atom)} {step.asset}"
        return [
            f"converted {amount} to the insurance fund for {units.money(step.proceeds_atoms)}"
            f" to pay a debt of {units.money(step.debt_before_atoms)} (left {units.money(step.debt_after_atoms)})",
            f"    price {units.money(step.price_atoms)} per {step.asset} = floor(index {units.money(step.index_atoms)}"
            f" x (1 - discount {units.rate(step.discount_e8)}))",
            f"    sold = min(held, ceil(debt / price)); proceeds = floor(sold x price) = {units.money(step.proceeds_atoms)}",
            f"    it counted {units.money(step.haircut_value_atoms)} in the margin (index x (1 - haircut))",
        ]
    if isinstance(step, DeficitStep):
        uncovered = (
            f"; {units.money(step.uncovered_atoms)} was beyond the fund's equity"
            if step.uncovered_atoms
            else ""
        )
        return [
            f"insurance fund covered a deficit of {units.money(step.amount_atoms)}"
            f" (fund cash after {units.money(step.fund_cash_atoms)}){uncovered}"
        ]
    return [repr(step)]


def _takeover_lines(units: _Units, market: str, step: TakeoverStep) -> list[str]:
    """The fund's takeover, and when its cap refused lots its equity covered, the cap's arithmetic."""
    lines = []
    if step.qty_lots:
        how = "had to take (no ADL counterparty left)" if step.forced else "took over"
        lines.append(
            f"insurance fund {how} {units.qty(market, step.qty_lots)} at the bankruptcy price"
            f" {units.exact_price(market, step.value_atoms, step.qty_lots)} ({units.money(step.value_atoms)});"
            f" cost to the fund on the mark {units.money(step.loss_atoms)}, fund equity before"
            f" {units.money(step.fund_equity_atoms)}"
        )
    if step.capped_lots:
        cap_e8 = units.config.markets[MarketId(market)].risk.insurance_takeover_cap_e8
        cap = "the market's cap" if cap_e8 is None else f"{Decimal(cap_e8) / RATE_SCALE:f} x"
        lines.append(
            f"takeover capped: {cap} fund equity {units.money(step.fund_equity_atoms)} bounds the fund's"
            f" whole book; it left room for {units.qty(market, step.capacity_lots)} here, so"
            f" {units.qty(market, step.capped_lots)} the fund's equity would have covered go to ADL"
        )
    return lines


def render(console: Console, config: VenueConfig, records: list[Record], account_id: int) -> None:
    """Print each record as a panel: inputs, formula values, actions, result."""
    units = _Units(config)
    if not records:
        console.print(
            f"account {account_id} was never liquidated nor auto-deleveraged in this journal,"
            " and no loan of it was liquidated"
        )
        return
    for record in records:
        event = record.event
        if isinstance(event, LoanLiquidated):
            lines = explain_event(config, record.seq, event)
            console.print(
                Panel(Text("\n".join(lines)), title=f"account {event.account_id} | loan {event.loan_id}")
            )
            continue
        wallet_label = (
            "wallet balance"
            if event.scope == "CROSS"
            else ("insurance fund cash" if event.scope == "FUND" else "isolated margin")
        )
        parts: list[Any] = []
        role = (
            "liquidated"
            if event.account_id == account_id
            else f"ADL counterparty of account {event.account_id}"
        )
        parts.append(Text(f"{_time(event.ts_ns)} | journal record {record.seq} | {role}", style="bold"))
        parts.append(Text("Inputs", style="bold underline"))
        for label, price_event in record.prices.items():
            fields = {
                k: getattr(price_event, k)
                for k in price_event.__struct_fields__
                if k not in ("ts_ns", "market")
            }
            parts.append(Text(f"  {label}: {fields}"))
        parts.append(_positions_table(units, event.before))
        parts.append(Text("Formula values (before)", style="bold underline"))
        parts.extend(Text("  " + line) for line in _figures_lines(units, event.before, wallet_label))
        if event.market is not None:
            parts.append(
                Text(
                    f"  {'liquidation price':<26}{units.price(event.market, event.liquidation_price_ticks)}"
                    "   (bracket loop: the tier holding the notional at that price)"
                )
            )
            if event.bankruptcy_value_atoms is not None:
                parts.append(
                    Text(
                        f"  {'bankruptcy value':<26}{units.money(event.bankruptcy_value_atoms)}"
                        f"   = side x (entry notional - (margin balance - uPnL of this position)); limit"
                        f" {units.price(event.market, event.bankruptcy_price_ticks)}"
                    )
                )
            parts.append(Text(f"  {'liquidation fee rate':<26}{units.rate(event.liquidation_fee_e8)}"))
            if event.partial_plan_lots:
                parts.append(
                    Text(
                        f"  {'partial plan':<26}{units.qty(event.market, event.partial_plan_lots)}"
                        " (fewest lots that bring the ratio under 100% at the mark, after the fee)"
                    )
                )
        parts.append(Text("Actions", style="bold underline"))
        for number, step in enumerate(event.steps, 1):
            for index, line in enumerate(_step_lines(units, event.market, step, account_id)):
                parts.append(Text(f"  {number}. {line}" if index == 0 else f"     {line}"))
        parts.append(Text(f"Result: {event.outcome}", style="bold underline"))
        parts.extend(Text("  " + line) for line in _figures_lines(units, event.after, wallet_label))
        title = f"account {event.account_id} | scope {event.scope}" + (
            f" | {event.market}" if event.market else ""
        )
        console.print(Panel(Group(*parts), title=title, expand=False))


def explain(console: Console, directory: Path, config: VenueConfig, account_id: AccountId) -> RecoveryReport:
    records, report = collect(directory, config, account_id)
    render(console, config, records, account_id)
    return report
