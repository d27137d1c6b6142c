"""The desk's position on outside hedging venues, in its equity: cash and holdings, marked at perpx's index.

Hedges run on another venue fill there, not on perpx's ledger. The hedger records each fill in the
desk's store (:class:`~perpx.otc.store.OutsideFill`, :meth:`perpx.otc.hedging.Hedger.record_outside_fills`);
the report books them in perpx's timeline at ``booked_ns`` and keeps an :class:`OutsideBook`: the
cash the fills paid or received (settlement atoms) and the position per market (base units). The
outside venue's quote asset is taken to be perpx's settlement asset.

The desk's **outside equity** is ``cash + sum value(position, index)``, where
``value(q, index) = floor(q x index_price / atom)`` at perpx's index of the market (its mark while
it has no index). Its change is split into three lines, each in integer atoms, so they sum to it
exactly by construction:

=========================  ========================================================================
line                       computed as
=========================  ========================================================================
outside hedging cost       per fill: ``value(position after) - value(position before) + cash``, the
                           cash ``floor(-side x price x qty / atom)``: what the fill bought or sold,
                           at the index, less what it paid (negative when the hedge paid the spread)
outside fees               per fill: ``-ceil(fee / atom)`` (a rebate is positive)
outside inventory P&L      per command: the outside position, revalued from the index before the
                           command to the index after it
=========================  ========================================================================

Rounding is always against the desk (cash down, fees up), so the outside figures never flatter it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from perpx.engine.engine import Engine
from perpx.engine.values import MarketId
from perpx.otc.store import OutsideFill

HEDGING_LINE = "outside_hedging_cost"
FEES_LINE = "outside_fees"
INVENTORY_LINE = "outside_inventory_pnl"
LINES = (HEDGING_LINE, FEES_LINE, INVENTORY_LINE)


@dataclass(frozen=True, slots=True)
class OutsideLine:
    """One line of one step, for ``symbol``."""

    symbol: str
    line: str
    atoms: int


def index_price(engine: Engine, market: str) -> Decimal:
    """perpx's index of ``market`` as a price (its mark without an index; 0 without either)."""
    key = MarketId(market)
    ticks = engine.indexes.get(key) or engine.marks.get(key) or 0
    return Decimal(ticks) * engine.specs[key].tick_size


def value_atoms(engine: Engine, market: str, qty: Decimal) -> int:
    """``qty`` (base units, signed) of ``market`` at perpx's index, in settlement atoms, rounded down."""
    if not qty:
        return 0
    value = qty * index_price(engine, market) / engine.config.settlement.atom
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


@dataclass
class OutsideBook:
    """The desk's cash and positions on outside venues, from the fills booked so far (module docstring)."""

    cash_atoms: int = 0
    positions: dict[str, Decimal] = field(default_factory=dict)

    def equity_atoms(self, engine: Engine) -> int:
        """Cash plus the positions at perpx's index now."""
        held = sum(value_atoms(engine, market, qty) for market, qty in sorted(self.positions.items()))
        return self.cash_atoms + held

    def values(self, engine: Engine) -> dict[str, int]:
        """Each position's value at perpx's index now (for the inventory line across a command)."""
        return {market: value_atoms(engine, market, qty) for market, qty in sorted(self.positions.items())}

    def book(self, engine: Engine, fill: OutsideFill) -> list[OutsideLine]:
        """Add ``fill`` to the book; its hedging-cost and fee lines at perpx's index now."""
        if fill.symbol not in engine.specs:
            raise ValueError(
                f"outside fill {fill.trade_id} is for {fill.symbol!r}, not a market of this venue"
            )
        sign = 1 if fill.side == "BUY" else -1
        qty, price, fee = Decimal(fill.qty), Decimal(fill.price), Decimal(fill.fee)
        atom = engine.config.settlement.atom
        before = self.positions.get(fill.symbol, Decimal(0))
        after = before + sign * qty
        cash = int((-sign * price * qty / atom).to_integral_value(rounding=ROUND_FLOOR))
        fee_atoms = int((fee / atom).to_integral_value(rounding=ROUND_CEILING))
        cost = value_atoms(engine, fill.symbol, after) - value_atoms(engine, fill.symbol, before) + cash
        if after:
            self.positions[fill.symbol] = after
        else:
            self.positions.pop(fill.symbol, None)
        self.cash_atoms += cash - fee_atoms
        return [OutsideLine(fill.symbol, HEDGING_LINE, cost), OutsideLine(fill.symbol, FEES_LINE, -fee_atoms)]

    def revaluation(self, engine: Engine, before: dict[str, int]) -> list[OutsideLine]:
        """The inventory lines of the positions valued at ``before`` (:meth:`values`), at the index now."""
        now = self.values(engine)
        return [
            OutsideLine(market, INVENTORY_LINE, now.get(market, 0) - value)
            for market, value in sorted(before.items())
            if now.get(market, 0) != value
        ]
