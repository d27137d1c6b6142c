"""``perpx desk report``: the desk's P&L, decomposed so that it sums to its change in equity exactly.

The report replays the venue's journal (``DIR/journal.log`` with ``DIR/config.toml``) through the
engine from the first command and watches the desk's account (``[otc] desk_account``) command by
command. The desk's **equity** is its settlement-asset wallet plus, per position, its isolated
margin and its unrealised PnL at the mark (``qty x mark x contract - cost``). For each command in
the window, its change ``E_after - E_before`` is split into lines, each in integer atoms:

=====================  =============================================================================
line                   computed as
=====================  =============================================================================
inventory P&L          ``qty_before x (mark_after - mark_before) x contract`` per market: the
                       position held into the command, revalued at the mark the command left
funding                the desk's ``FundingPaid`` amounts
fees                   minus the fees of the desk's fills and block trades (a rebate is positive)
capital flows          the desk's deposits minus withdrawals (not P&L; shown so the sum closes); a
                       deposit of another asset than the settlement one counts at its index
spread capture         the rest, for a ``BookBlockTrade``: ``sum side x (qty x mark - price x qty)
                       x contract``, the value at the mark of what the desk bought or sold, less
                       what it paid (by client and symbol); for a spot pair's
                       ``BookSpotBlockTrade``, the base asset moved valued at its index less the
                       settlement asset paid (symbol ``BTC/USDT``)
hedging cost           the rest, for a command in which the desk's hedge orders filled: the same
                       measure for hedge fills (negative when the hedge paid the spread)
other                  the rest of any other command that changed the desk's equity (a liquidation,
                       an insurance or ADL transfer, a settlement); zero in a normal day
=====================  =============================================================================

Hedges run on another venue add three lines from their recorded fills (``outside hedging cost``,
``outside fees``, ``outside inventory P&L``; :mod:`perpx.otc.outside_pnl`), and the desk's equity then
includes the outside cash and position at perpx's index.

Because the last three lines of the table are each command's remainder, the lines sum to the change in equity
exactly, by construction; the test holds the remainder to its definition (the trade's value at the
mark) so the construction cannot hide an error.

The desk's equity always holds the non-settlement assets it holds (a spot pair's base asset, the
collateral a liquidation sold it) at their index. When the desk is also the venue's lender
(``[lending] lender_account``), it also holds its loan receivables (:mod:`perpx.otc.lender`),
and three lines join: **interest income**, **liquidation penalties** and **bad debt**, by day and
by client (the borrower); the loan book's KPIs are its size, utilisation, debt-weighted LTV and
interest income (:func:`lending_kpis`, also ``perpx_otc_*`` gauges in ``desk.prom``).

The KPIs come from the desk's store (``DIR/otc.sqlite``): RFQ count, hit ratio, quote-to-trade
latency, refusal, rejection and last-look rates, volume and revenue per client and tier, average
quoted half-spread, inventory turnover, hedge slippage against each hedge's arrival price.

Writes ``report.json``, ``pnl.parquet`` (one row per day, symbol, client and line),
``report.html`` and ``desk.prom`` (the KPIs as Prometheus metrics, text exposition format).
"""

from __future__ import annotations

import html
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from statistics import median
from typing import Any

import polars as pl
from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

from perpx.engine import formulas
from perpx.engine.commands import BookBlockTrade, BookSpotBlockTrade, Command
from perpx.engine.config import VenueConfig
from perpx.engine.engine import Engine
from perpx.engine.events import (
    BlockTradeBooked,
    DepositApplied,
    FundingPaid,
    LoanLiquidated,
    OrderAccepted,
    OrderFilled,
    SpotBlockTradeBooked,
    WithdrawalApplied,
)
from perpx.engine.values import AccountId, MarketId, OrderId
from perpx.execution.ids import parse_child_id
from perpx.journal.journal import iter_commands
from perpx.journal.store import read_config
from perpx.otc import lender
from perpx.otc.config import parse_otc
from perpx.otc.outside_pnl import OutsideBook, OutsideLine
from perpx.otc.store import EXPIRED, FILLED, LAST_LOOK_REJECTED, REJECTED, OtcStore, OutsideFill

LINES = (
    "spread_capture",
    "inventory_pnl",
    "hedging_cost",
    "outside_hedging_cost",
    "outside_fees",
    "outside_inventory_pnl",
    "funding",
    "fees",
    "interest_income",
    "liquidation_penalties",
    "bad_debt",
    "other",
)
"""The P&L lines, in the order the report shows them (capital flows are not P&L)."""
NS_PER_DAY = 86_400 * 1_000_000_000
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
"""Numbers in a refusal's reason: replaced by ``N`` so that reasons of one kind count together."""
NS_PER_MS = 1_000_000
BPS = Decimal(10_000)


class ReportError(ValueError):
    """A data directory the report cannot read (no journal, no ``[otc]`` section)."""


@dataclass
class Ledger:
    """What the replay saw of the desk, in atoms (module docstring)."""

    equity_start_atoms: int = 0
    equity_end_atoms: int = 0
    flows_atoms: int = 0
    rows: dict[tuple[str, str, str, str], int] = field(default_factory=lambda: defaultdict(int))
    """``(day, symbol, client, line) -> atoms``; ``client`` is empty except for spread capture."""
    block_notional_atoms: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    """``(client, symbol) -> notional`` of block trades."""
    hedge_fills: dict[str, list[tuple[int, int, int, int]]] = field(default_factory=lambda: defaultdict(list))
    """``hedge_id -> [(side, price_ticks, qty_lots, fee_atoms)]``."""
    inventory_time_atoms_ns: int = 0
    """The integral of the desk's absolute inventory value over time (for turnover)."""
    start_ns: int | None = None
    end_ns: int | None = None
    liquidations: int = 0
    """Liquidations of the desk's loans in the window."""
    desk_id: int = 0

    def add(self, ts_ns: int, symbol: str, client: str, line: str, atoms: int) -> None:
        if atoms:
            day = datetime.fromtimestamp(ts_ns // 1_000_000_000, UTC).strftime("%Y-%m-%d")
            self.rows[(day, symbol, client, line)] += atoms

    def total(self, line: str) -> int:
        return sum(v for (_, _, _, name), v in self.rows.items() if name == line)

    @property
    def pnl_atoms(self) -> int:
        return sum(self.rows.values())


def equity_atoms(engine: Engine, desk: AccountId) -> int:
    """The desk's equity: wallet, isolated margins, unrealised PnL at the marks (module docstring)."""
    account = engine.accounts.get(desk)
    if account is None:
        return 0
    total = account.balances.get(engine.asset, 0)
    for market, position in account.positions.items():
        total += position.isolated_margin_atoms
        if position.qty_lots:
            spec = engine.specs[market]
            total += formulas.unrealized_pnl_atoms(
                position.qty_lots, position.cost_atoms, engine.marks[market], spec.contract_atoms
            )
    return total


def _positions(engine: Engine, desk: AccountId) -> dict[MarketId, int]:
    account = engine.accounts.get(desk)
    if account is None:
        return {}
    return {m: p.qty_lots for m, p in account.positions.items() if p.qty_lots}


def replay_ledger(
    data: Path,
    desk: AccountId,
    from_ns: int | None = None,
    to_ns: int | None = None,
    outside_fills: Sequence[OutsideFill] = (),
) -> tuple[Ledger, Engine]:
    """Replay ``data``'s journal and decompose the desk's equity changes within ``[from_ns, to_ns)``."""
    commands = iter_commands(data / "journal.log")
    return decompose(read_config(data), commands, desk, from_ns, to_ns, outside_fills)


def decompose(
    config: VenueConfig,
    commands: Iterable[Command],
    desk: AccountId,
    from_ns: int | None = None,
    to_ns: int | None = None,
    outside_fills: Sequence[OutsideFill] = (),
) -> tuple[Ledger, Engine]:
    """Apply ``commands`` to a new engine and decompose the desk's equity changes (module docstring).

    ``outside_fills`` are the hedges' fills on other venues (the store's): each is booked after
    every command stamped at or before its ``booked_ns`` (it was recorded then) and before the
    next (``perpx.otc.outside_pnl``); the desk's equity includes the outside cash and position at
    perpx's index.
    """
    engine = Engine(config)
    ledger = Ledger(desk_id=int(desk))
    hedge_orders: dict[OrderId, str] = {}
    last_ns: int | None = None
    prices = lender.Prices()
    book_before = lender.state(engine, desk, prices)
    outside = OutsideBook()
    pending = sorted(outside_fills, key=lambda f: (f.booked_ns, f.fill_ns, f.venue, f.trade_id))
    next_fill = 0
    for command in commands:
        inside = (from_ns is None or command.ts_ns >= from_ns) and (to_ns is None or command.ts_ns < to_ns)
        if to_ns is not None and command.ts_ns >= to_ns:
            break
        before_equity = (
            equity_atoms(engine, desk)
            + lender.book_value_atoms(engine, book_before.loans, book_before.held, book_before.prices)
            + outside.equity_atoms(engine)
        )
        outside_lines: list[OutsideLine] = []
        while next_fill < len(pending) and pending[next_fill].booked_ns < command.ts_ns:
            fill = pending[next_fill]
            outside_lines.extend(outside.book(engine, fill))
            if inside:
                _note_outside_fill(ledger, engine, fill)
            next_fill += 1
        outside_before = outside.values(engine)
        before_qty = _positions(engine, desk)
        before_marks = {m: engine.marks[m] for m in before_qty}
        if inside and ledger.start_ns is None:
            ledger.start_ns = command.ts_ns
            ledger.equity_start_atoms = before_equity
        if inside and last_ns is not None:
            ledger.inventory_time_atoms_ns += _inventory_value(engine, before_qty) * (
                max(command.ts_ns, last_ns) - last_ns
            )
        outcome = engine.apply(command)
        last_ns = max(command.ts_ns, last_ns or command.ts_ns)
        book_after = lender.state(engine, desk, prices, book_before)
        if not inside:
            _follow_hedges(outcome, desk, hedge_orders, None)
            book_before = book_after
            continue
        ts = engine.now_ns
        after_equity = (
            equity_atoms(engine, desk)
            + lender.book_value_atoms(engine, book_after.loans, book_after.held, book_after.prices)
            + outside.equity_atoms(engine)
        )
        change = after_equity - before_equity
        explained = 0
        for line in [*outside_lines, *outside.revaluation(engine, outside_before)]:
            ledger.add(ts, line.symbol, "", line.line, line.atoms)
            explained += line.atoms
        lending, liquidated = lender.lending_lines(engine, desk, book_before, book_after, outcome)
        book_before = book_after
        penalties: list[lender.LendingLine] = []
        for row in lending:
            ledger.add(ts, row.symbol, row.client, row.line, row.atoms)
            explained += row.atoms
            if row.line == "liquidation_penalties":
                penalties.append(row)
        ledger.liquidations += sum(
            1 for e in outcome if isinstance(e, LoanLiquidated) and e.lender_id == desk
        )
        for market, qty in before_qty.items():
            spec = engine.specs[market]
            moved = formulas.mul(
                formulas.mul(qty, engine.marks[market] - before_marks[market]), spec.contract_atoms
            )
            ledger.add(ts, str(market), "", "inventory_pnl", moved)
            explained += moved
        hedged = _follow_hedges(outcome, desk, hedge_orders, ledger)
        block: BlockTradeBooked | None = None
        spot_block: SpotBlockTradeBooked | None = None
        for event in outcome:
            if getattr(event, "account_id", None) != desk:
                continue
            if isinstance(event, FundingPaid):
                ledger.add(ts, str(event.market), "", "funding", event.amount_atoms)
                explained += event.amount_atoms
            elif isinstance(event, OrderFilled | BlockTradeBooked):
                ledger.add(ts, str(event.market), "", "fees", -event.fee_atoms)
                explained -= event.fee_atoms
                if isinstance(event, BlockTradeBooked):
                    block = event
            elif isinstance(event, SpotBlockTradeBooked):
                spot_block = event
            elif isinstance(event, DepositApplied | WithdrawalApplied):
                flow = lender.value(engine, event.asset, event.amount_atoms, book_after.prices)
                flow = flow if isinstance(event, DepositApplied) else -flow
                ledger.flows_atoms += flow  # another asset than the settlement one: at its index
                explained += flow
        rest = change - explained
        if block is not None and isinstance(command, BookBlockTrade):
            client = str(block.counterparty_id)
            ledger.add(ts, str(block.market), client, "spread_capture", rest)
            spec = engine.specs[block.market]
            notional = formulas.notional_atoms(block.price_ticks, block.qty_lots, spec.contract_atoms)
            ledger.block_notional_atoms[(client, str(block.market))] += notional
        elif spot_block is not None and isinstance(command, BookSpotBlockTrade):
            client = str(spot_block.counterparty_id)
            symbol = f"{spot_block.base_asset}/{spot_block.quote_asset}"
            ledger.add(ts, symbol, client, "spread_capture", rest)
            ledger.block_notional_atoms[(client, symbol)] += spot_block.quote_atoms
        elif hedged:
            ledger.add(ts, hedged, "", "hedging_cost", rest)
        elif liquidated and penalties:
            last = penalties[-1]  # the rounding of valuing seized collateral within the held balance
            ledger.add(ts, last.symbol, last.client, "liquidation_penalties", rest)
        else:
            ledger.add(ts, "", "", "other", rest)
        ledger.end_ns = ts
        ledger.equity_end_atoms = after_equity
    for fill in pending[next_fill:]:  # recorded after the last command: booked at the end
        if ledger.start_ns is None or (to_ns is not None and fill.booked_ns >= to_ns):
            break
        for line in outside.book(engine, fill):
            ledger.add(max(fill.booked_ns, ledger.end_ns or 0), line.symbol, "", line.line, line.atoms)
            ledger.equity_end_atoms += line.atoms
        _note_outside_fill(ledger, engine, fill)
    return ledger, engine


def _note_outside_fill(ledger: Ledger, engine: Engine, fill: OutsideFill) -> None:
    """Add an outside fill to its hedge's TCA, in this venue's ticks and lots (the fee in atoms)."""
    spec = engine.specs[MarketId(fill.symbol)]
    price = int(Decimal(fill.price) / spec.tick_size)
    qty = int(Decimal(fill.qty) / spec.lot_size)
    fee = int(Decimal(fill.fee) / engine.config.settlement.atom)
    ledger.hedge_fills[fill.hedge_id].append((1 if fill.side == "BUY" else -1, price, qty, fee))


def _inventory_value(engine: Engine, positions: dict[MarketId, int]) -> int:
    return sum(
        abs(formulas.mul(formulas.mul(qty, engine.marks[m]), engine.specs[m].contract_atoms))
        for m, qty in positions.items()
    )


def _follow_hedges(
    outcome: Iterable[Any], desk: AccountId, orders: dict[OrderId, str], ledger: Ledger | None
) -> str:
    """Note the desk's hedge children; record their fills. Returns the market of a hedge fill, or ``""``."""
    market = ""
    for event in outcome:
        if isinstance(event, OrderAccepted) and event.account_id == desk and event.client_order_id:
            parsed = parse_child_id(str(event.client_order_id))
            if parsed is not None:
                orders[event.order_id] = parsed[0]
        elif isinstance(event, OrderFilled) and event.account_id == desk:
            market = str(event.market)
            hedge = orders.get(event.order_id, "")
            if ledger is not None:
                ledger.hedge_fills[hedge].append(
                    (int(event.side), event.price_ticks, event.qty_lots, event.fee_atoms)
                )
    return market


# ---------------------------------------------------------------------- KPIs


def _ratio(part: float, whole: float) -> float | None:
    return None if whole == 0 else part / whole


def kpis(
    store: OtcStore, ledger: Ledger, engine: Engine, from_ns: int | None, to_ns: int | None
) -> dict[str, Any]:
    """The desk's KPIs over the window (module docstring); money in the settlement asset."""

    def inside(ts: int) -> bool:
        return (from_ns is None or ts >= from_ns) and (to_ns is None or ts < to_ns)

    atom = engine.config.settlement.atom
    quotes = [q for q in store.quotes() if inside(q.created_ns)]
    refused = [r for r in store.refused() if inside(r.ts_ns)]
    accepted = [q for q in quotes if q.accept_ns is not None]
    filled = [q for q in quotes if q.state == FILLED]
    last_looked = [q for q in quotes if q.state == LAST_LOOK_REJECTED]
    rejected = [q for q in accepted if q.state in (REJECTED, LAST_LOOK_REJECTED, EXPIRED)]
    latencies = [(q.accept_ns - q.created_ns) / NS_PER_MS for q in filled if q.accept_ns is not None]
    half_spreads = [Decimal(text) for q in quotes for text in (q.bid_half_bps, q.ask_half_bps) if text]
    by_client: dict[str, dict[str, Any]] = {}
    by_tier: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"volume": Decimal(0), "revenue": Decimal(0), "trades": 0}
    )
    tiers = {str(q.account_id): q.tier for q in quotes}
    revenue: dict[str, int] = defaultdict(int)
    for (_, _, client, line), atoms in ledger.rows.items():
        if line == "spread_capture":
            revenue[client] += atoms
    for (client, _), notional in ledger.block_notional_atoms.items():
        row = by_client.setdefault(client, {"volume": Decimal(0), "revenue": Decimal(0), "trades": 0})
        row["volume"] += notional * atom
    for client, row in by_client.items():
        row["revenue"] = revenue[client] * atom
        row["trades"] = sum(1 for q in filled if str(q.account_id) == client)
        row["tier"] = tiers.get(client, "standard")
        tier_row = by_tier[row["tier"]]
        tier_row["volume"] += row["volume"]
        tier_row["revenue"] += row["revenue"]
        tier_row["trades"] += row["trades"]
    volume = sum((r["volume"] for r in by_client.values()), Decimal(0))
    span_ns = (ledger.end_ns or 0) - (ledger.start_ns or 0)
    mean_inventory = Decimal(ledger.inventory_time_atoms_ns) / span_ns * atom if span_ns > 0 else Decimal(0)
    hedges = _hedge_rows(store, ledger, engine, inside)
    slipped = [h for h in hedges if h["slippage_bps"] is not None]
    hedge_qty = sum(Decimal(h["filled_qty"]) for h in slipped)
    slippage = (
        sum(Decimal(h["slippage_bps"]) * Decimal(h["filled_qty"]) for h in slipped) / hedge_qty
        if hedge_qty
        else None
    )
    rfq_count = len(quotes) + len(refused)
    return {
        "rfq_count": rfq_count,
        "quotes_given": len(quotes),
        "requests_refused": len(refused),
        "accepts": len(accepted),
        "trades": len(filled),
        "hit_ratio": _ratio(len(filled), len(quotes)),
        "refusal_rate": _ratio(len(refused), rfq_count),
        "rejection_rate": _ratio(len(rejected), len(accepted)),
        "last_look_rate": _ratio(len(last_looked), len(accepted)),
        "quote_to_trade_latency_ms": {
            "median": median(latencies) if latencies else None,
            "max": max(latencies) if latencies else None,
        },
        "average_half_spread_bps": (
            str((sum(half_spreads, Decimal(0)) / len(half_spreads)).quantize(Decimal("0.01")))
            if half_spreads
            else None
        ),
        "volume": _money(volume),
        "mean_abs_inventory": str(mean_inventory.quantize(Decimal("0.01"))),
        "inventory_turnover": str((volume / mean_inventory).quantize(Decimal("0.01")))
        if mean_inventory
        else None,
        "hedge_slippage_bps": None if slippage is None else str(slippage.quantize(Decimal("0.01"))),
        "by_client": {k: _texts(v) for k, v in sorted(by_client.items())},
        "by_tier": {k: _texts(v) for k, v in sorted(by_tier.items())},
        "hedges": hedges,
        "refusals_by_reason": _count(_NUMBER.sub("N", r.reason) for r in refused),
        "lending": lending_kpis(ledger, engine),
    }


def lending_kpis(ledger: Ledger, engine: Engine) -> dict[str, Any]:
    """The loan book's KPIs when the desk is the venue's lender: book size, utilisation, LTV, income.

    ``loan_book_size`` is the open loans' debt at the end, valued at the index; ``utilisation`` the
    engine's ``borrowed / (borrowed + lender's available)`` of the settlement asset (the rate
    curve's input); ``average_ltv`` the debt-weighted LTV, ``sum debt / sum collateral value``;
    the income lines are the window's totals of the P&L lines.
    """
    spec = engine.config.lending
    otc_desk = ledger.desk_id
    if spec is None or spec.lender_account != otc_desk:
        why = "this venue has no [lending] table" if spec is None else "the desk is not the venue's lender"
        return {"status": "absent", "note": f"{why}: the desk has no loan book"}
    atom = engine.config.settlement.atom
    book = lender.book_figures(engine, AccountId(otc_desk))
    assert book is not None  # the desk is the lender
    return {
        "status": "lender",
        "open_loans": book.open_loans,
        "loan_book_size": _money(book.book_size),
        "utilisation": str(book.utilisation),
        "average_ltv": None
        if book.average_ltv is None
        else str(book.average_ltv.quantize(Decimal("0.0001"))),
        "interest_income": _money(ledger.total("interest_income") * atom),
        "liquidation_penalties": _money(ledger.total("liquidation_penalties") * atom),
        "bad_debt": _money(ledger.total("bad_debt") * atom),
        "liquidations": ledger.liquidations,
    }


def _hedge_rows(store: OtcStore, ledger: Ledger, engine: Engine, inside: Any) -> list[dict[str, Any]]:
    """Each hedge's TCA against its arrival price: filled quantity, average price, slippage, fees."""
    rows = []
    atom = engine.config.settlement.atom
    for hedge in store.hedges():
        if not inside(hedge.start_ns):
            continue
        spec = engine.specs[MarketId(hedge.symbol)]
        fills = ledger.hedge_fills.get(hedge.hedge_id, [])
        qty = sum(f[2] for f in fills)
        notional = sum(f[1] * f[2] for f in fills)
        fees = sum(f[3] for f in fills)
        sign = 1 if hedge.side == "BUY" else -1
        avg = Decimal(notional) / qty if qty else None
        slippage = (
            None if avg is None else sign * (avg - hedge.arrival_ticks) / Decimal(hedge.arrival_ticks) * BPS
        )
        rows.append(
            {
                "hedge_id": hedge.hedge_id,
                "venue": hedge.venue or "perpx",
                "symbol": hedge.symbol,
                "side": hedge.side,
                "algo": hedge.algo,
                "qty": str(hedge.qty_lots * spec.lot_size),
                "filled_qty": str(qty * spec.lot_size),
                "arrival_price": str(hedge.arrival_ticks * spec.tick_size),
                "avg_price": None
                if avg is None
                else str((avg * spec.tick_size).quantize(spec.tick_size / 100)),
                "slippage_bps": None if slippage is None else str(slippage.quantize(Decimal("0.01"))),
                "fees": _money(fees * atom),
                "reason": hedge.reason,
            }
        )
    return rows


def _texts(row: dict[str, Any]) -> dict[str, Any]:
    return {k: _money(v) if isinstance(v, Decimal) else v for k, v in row.items()}


def _money(value: Decimal) -> str:
    """Plain decimal text, never an exponent (``0E-8`` reads as ``0``)."""
    return f"{value.normalize():f}" if value else "0"


def _count(values: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for value in values:
        counts[value] += 1
    return dict(sorted(counts.items()))


# ---------------------------------------------------------------------- the report


@dataclass(frozen=True, slots=True)
class DeskReport:
    """The whole report: the ledger's decomposition and the KPIs."""

    ledger: Ledger
    kpis: dict[str, Any]
    atom: Decimal

    def summary(self) -> dict[str, Any]:
        """The P&L lines in the settlement asset, the equity change, and the KPIs."""
        ledger, atom = self.ledger, self.atom
        lines = {line: _money(ledger.total(line) * atom) for line in LINES}
        by = {
            "client": self._group(2, None, clients_only=True),
            "symbol": self._group(1, None),
            "day": self._group(0, None),
        }
        return {
            "pnl": lines,
            "pnl_total": _money(ledger.pnl_atoms * atom),
            "capital_flows": _money(ledger.flows_atoms * atom),
            "equity_start": _money(ledger.equity_start_atoms * atom),
            "equity_end": _money(ledger.equity_end_atoms * atom),
            "equity_change": _money((ledger.equity_end_atoms - ledger.equity_start_atoms) * atom),
            "reconciles": ledger.pnl_atoms + ledger.flows_atoms
            == ledger.equity_end_atoms - ledger.equity_start_atoms,
            "pnl_by": by,
            "lending": {
                line: (
                    _money(ledger.total(line) * atom) if self.kpis["lending"]["status"] == "lender" else None
                )
                for line in ("interest_income", "liquidation_penalties", "bad_debt")
            },
            "kpis": self.kpis,
        }

    def _group(self, index: int, only: str | None, clients_only: bool = False) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for key, atoms in self.ledger.rows.items():
            if clients_only and not key[2]:
                continue
            if only is None or key[3] == only:
                out[key[index] or "-"][key[3]] += atoms
        return {
            k: {line: _money(v * self.atom) for line, v in sorted(row.items())}
            for k, row in sorted(out.items())
        }


def build_report(data: Path, from_ns: int | None = None, to_ns: int | None = None) -> DeskReport:
    """Replay ``data`` and read its desk store (module docstring).

    Raises
    ------
    ReportError
        If ``data`` has no journal or its config has no ``[otc]`` section.
    """
    if not (data / "journal.log").exists():
        raise ReportError(f"{data} holds no journal.log: give the venue's data directory")
    config = read_config(data)
    otc = parse_otc(config.raw, tuple(str(m) for m in config.markets))
    if otc is None:
        raise ReportError(f"{data}/config.toml has no [otc] section: this venue has no desk")
    store = OtcStore.in_dir(data)
    try:
        fills = _checked(store.outside_fills(), config)
        ledger, engine = replay_ledger(data, AccountId(otc.desk_account), from_ns, to_ns, fills)
        figures = kpis(store, ledger, engine, from_ns, to_ns)
    finally:
        store.close()
    return DeskReport(ledger, figures, engine.config.settlement.atom)


def _checked(fills: list[OutsideFill], config: VenueConfig) -> list[OutsideFill]:
    """``fills`` if each names a market of the venue, a side, and finite decimals; else a ReportError."""
    for fill in fills:
        try:
            numbers = [Decimal(fill.price), Decimal(fill.qty), Decimal(fill.fee)]
        except ArithmeticError:
            numbers = []
        if (
            fill.symbol not in config.markets
            or fill.side not in ("BUY", "SELL")
            or len(numbers) != 3
            or not all(n.is_finite() for n in numbers)
        ):
            raise ReportError(
                f"otc.sqlite: outside fill {fill.trade_id!r} of hedge {fill.hedge_id!r} is not readable"
                f" (symbol {fill.symbol!r}, side {fill.side!r}, price {fill.price!r}, qty {fill.qty!r},"
                f" fee {fill.fee!r}); the store was edited or written by another program"
            )
    return fills


def write_report(report: DeskReport, out: Path) -> dict[str, Any]:
    """Write report.json, pnl.parquet, report.html and desk.prom into ``out``; return the summary."""
    out.mkdir(parents=True, exist_ok=True)
    summary = report.summary()
    (out / "report.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    rows = [
        {
            "day": day,
            "symbol": symbol,
            "client": client,
            "line": line,
            "atoms": atoms,
            "amount": _money(atoms * report.atom),
        }
        for (day, symbol, client, line), atoms in sorted(report.ledger.rows.items())
    ]
    schema = {
        "day": pl.String,
        "symbol": pl.String,
        "client": pl.String,
        "line": pl.String,
        "atoms": pl.Int64,
        "amount": pl.String,
    }
    pl.DataFrame(rows, schema=schema).write_parquet(out / "pnl.parquet")
    (out / "report.html").write_text(_html(summary))
    write_metrics(summary, out / "desk.prom")
    return summary


def write_metrics(summary: dict[str, Any], path: Path) -> None:
    """The KPIs and P&L lines as Prometheus gauges (``perpx_otc_*``), in the text exposition format."""
    registry = CollectorRegistry()
    kpi = summary["kpis"]
    plain = {
        "rfq_count": "RFQs received (quoted and refused)",
        "trades": "Block trades booked",
        "hit_ratio": "Booked quotes / quotes given",
        "refusal_rate": "Requests given no price / RFQs",
        "rejection_rate": "Accepts not booked / accepts",
        "last_look_rate": "Accepts rejected by last look / accepts",
        "average_half_spread_bps": "Mean quoted half-spread, bps",
        "volume": "Block-trade notional, settlement asset",
        "inventory_turnover": "Volume / mean absolute inventory value",
        "hedge_slippage_bps": "Quantity-weighted hedge slippage against arrival, bps",
    }
    for name, text in plain.items():
        value = kpi.get(name)
        if value is not None:
            Gauge(f"perpx_otc_{name}", text, registry=registry).set(float(value))
    latency = kpi["quote_to_trade_latency_ms"]["median"]
    if latency is not None:
        Gauge(
            "perpx_otc_quote_to_trade_latency_ms",
            "Median quote-to-trade latency, venue ms",
            registry=registry,
        ).set(latency)
    lending = kpi["lending"]
    if lending["status"] == "lender":
        for name, text in (
            ("loan_book_size", "Open loans' debt at the index, settlement asset"),
            ("loan_utilisation", "Borrowed / (borrowed + lender's available), settlement asset"),
            ("loan_average_ltv", "Debt-weighted LTV of the open loans"),
            ("interest_income", "Interest income of the loan book, settlement asset"),
        ):
            key = name.removeprefix("loan_") if name != "loan_book_size" else name
            if lending.get(key) is not None:
                Gauge(f"perpx_otc_{name}", text, registry=registry).set(float(lending[key]))
    pnl = Gauge("perpx_otc_pnl", "Desk P&L by line, settlement asset", ["line"], registry=registry)
    for line, amount in summary["pnl"].items():
        pnl.labels(line=line).set(float(amount))
    client_volume = Gauge(
        "perpx_otc_client_volume", "Block-trade notional by client", ["client", "tier"], registry=registry
    )
    client_revenue = Gauge(
        "perpx_otc_client_revenue", "Spread capture by client", ["client", "tier"], registry=registry
    )
    for client, row in kpi["by_client"].items():
        client_volume.labels(client=client, tier=row["tier"]).set(float(row["volume"]))
        client_revenue.labels(client=client, tier=row["tier"]).set(float(row["revenue"]))
    write_to_textfile(str(path), registry)


def _table(rows: dict[str, Any]) -> str:
    cells = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows.items()
    )
    return f"<table>{cells}</table>"


def _html(summary: dict[str, Any]) -> str:
    kpi = summary["kpis"]
    flat = {k: v for k, v in kpi.items() if not isinstance(v, dict | list)}
    flat["quote_to_trade_latency_ms (median)"] = kpi["quote_to_trade_latency_ms"]["median"]
    sections = [
        "<h1>perpx desk report</h1>",
        "<h2>P&amp;L (settlement asset)</h2>",
        _table({**summary["pnl"], "total": summary["pnl_total"], "capital flows": summary["capital_flows"]}),
        _table(
            {
                "equity at start": summary["equity_start"],
                "equity at end": summary["equity_end"],
                "change in equity": summary["equity_change"],
                "P&L + flows = change in equity": summary["reconciles"],
            }
        ),
        "<h2>KPIs</h2>",
        _table(flat),
    ]
    for name, rows in (
        ("by client", summary["pnl_by"]["client"]),
        ("by symbol", summary["pnl_by"]["symbol"]),
        ("by day", summary["pnl_by"]["day"]),
    ):
        sections.append(f"<h2>P&amp;L {name}</h2>")
        sections.extend(f"<h3>{html.escape(k)}</h3>{_table(v)}" for k, v in rows.items())
    sections.append("<h2>Clients</h2>")
    sections.extend(f"<h3>{html.escape(k)}</h3>{_table(v)}" for k, v in kpi["by_client"].items())
    sections.append("<h2>Hedges (TCA against arrival)</h2>")
    sections.extend(f"<h3>{html.escape(h['hedge_id'])}</h3>{_table(h)}" for h in kpi["hedges"])
    lending = kpi["lending"]
    if lending["status"] == "lender":
        sections.append(f"<h2>Lending (the desk is the lender)</h2>{_table(lending)}")
    else:
        sections.append(f"<h2>Lending</h2><p>{html.escape(lending['note'])}</p>")
    style = "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:2px 8px;text-align:left}"
    return f"<!doctype html><html><head><meta charset='utf-8'><title>perpx desk report</title><style>{style}</style></head><body>{''.join(sections)}</body></html>\n"
