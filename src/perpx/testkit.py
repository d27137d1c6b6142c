"""A venue harness for tests, examples and the simulator.

:class:`Venue` wraps an :class:`~perpx.engine.engine.Engine` and speaks the
language a trader writes rules in: decimal strings for prices and quantities,
names for accounts. It stamps a monotonic manual time on each command, keeps
every command it applied (a journal in memory), and, with ``check=True``,
verifies every invariant after every command.

Book tables
-----------
:meth:`Venue.book_table` renders a market as exchange-core's feature files do::

    | bid  | price   | ask  |
    |      | 30010.0 | 1.5  |
    | 2    | 30000.0 |      |
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from perpx.engine import invariants
from perpx.engine.commands import (
    AdvanceClock,
    AmendOrder,
    CancelAllOrders,
    CancelOrder,
    Command,
    CreateAccount,
    Deposit,
    OrderType,
    PlaceOrder,
    SetMarkPrice,
    StpMode,
    SubmitSpotQuote,
    TimeInForce,
    Withdraw,
)
from perpx.engine.config import MarketSpec, VenueConfig, default_config
from perpx.engine.engine import Engine
from perpx.engine.events import AccountCreated, Event, OrderAccepted, Outcome
from perpx.engine.state import state_hash
from perpx.engine.values import (
    AccountId,
    AssetId,
    ClientOrderId,
    MarketId,
    OrderId,
    Side,
    TxId,
    format_units,
    to_units,
    units_to_decimal,
)
from perpx.sequencing import Sequencer

START_NS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
STEP_NS = 1_000_000  # each command 1 ms after the previous one


@dataclass
class Venue:
    """An engine plus the conveniences tests want. Not for production paths."""

    config: VenueConfig = field(default_factory=default_config)
    check: bool = True
    engine: Engine = field(init=False)
    sequencer: Sequencer = field(init=False)
    journal: list[Command] = field(init=False, default_factory=list)
    names: dict[str, AccountId] = field(init=False, default_factory=dict)
    now_ns: int = START_NS
    _tx: int = 0

    def __post_init__(self) -> None:
        self.engine = Engine(self.config)
        self.sequencer = Sequencer(self.engine)

    # -------------------------------------------------------------- plumbing

    def tick(self) -> int:
        """Advance manual time by one step and return it."""
        self.now_ns += STEP_NS
        return self.now_ns

    def apply(self, command: Command) -> Outcome:
        """Apply ``command`` through the sequencer, record it, and check invariants if asked."""
        events = self.sequencer.apply_one(command)
        self.journal.append(command)
        if self.check:
            invariants.check(self.engine)
        return events

    def spec(self, market: str) -> MarketSpec:
        return self.config.markets[MarketId(market)]

    def ticks(self, market: str, price: str) -> int:
        return to_units(price, self.spec(market).tick_size, "price")

    def lots(self, market: str, qty: str) -> int:
        return to_units(qty, self.spec(market).lot_size, "quantity")

    def atoms(self, amount: str) -> int:
        return to_units(amount, self.config.settlement.atom, "amount")

    def hash(self) -> str:
        return state_hash(self.engine)

    # -------------------------------------------------------------- commands in trader terms

    def account(self, name: str, deposit: str | None = "100000") -> AccountId:
        """Create account ``name`` and optionally fund it with ``deposit`` of the settlement asset."""
        events = self.apply(CreateAccount(ts_ns=self.tick(), name=name))
        created = events[0]
        assert isinstance(created, AccountCreated)
        self.names[name] = created.account_id
        if deposit is not None:
            self.deposit(name, deposit)
        return created.account_id

    def deposit(self, name: str, amount: str, tx_id: str | None = None) -> Outcome:
        self._tx += 1
        return self.apply(
            Deposit(
                ts_ns=self.tick(),
                account_id=self.names[name],
                asset=self.config.settlement_asset,
                amount_atoms=self.atoms(amount),
                tx_id=TxId(tx_id or f"dep-{self._tx}"),
            )
        )

    def withdraw(self, name: str, amount: str, tx_id: str | None = None) -> Outcome:
        self._tx += 1
        return self.apply(
            Withdraw(
                ts_ns=self.tick(),
                account_id=self.names[name],
                asset=self.config.settlement_asset,
                amount_atoms=self.atoms(amount),
                tx_id=TxId(tx_id or f"wd-{self._tx}"),
            )
        )

    def mark(self, market: str, price: str, index: str | None = None) -> Outcome:
        return self.apply(
            SetMarkPrice(
                ts_ns=self.tick(),
                market=MarketId(market),
                index_ticks=self.ticks(market, index or price),
                mark_ticks=self.ticks(market, price),
            )
        )

    def quote(self, market: str, source: str, price: str) -> Outcome:
        """A spot quote of ``source`` for the index of ``market`` (a market with ``[index]`` sources)."""
        return self.apply(
            SubmitSpotQuote(
                ts_ns=self.tick(),
                market=MarketId(market),
                source=source,
                price_ticks=self.ticks(market, price),
            )
        )

    def advance(self, seconds: int = 0, *, to_ns: int | None = None) -> Outcome:
        """Move venue time forward by ``seconds``, or to ``to_ns``, with one ``AdvanceClock``."""
        self.now_ns = to_ns if to_ns is not None else self.now_ns + seconds * 1_000_000_000
        return self.apply(AdvanceClock(ts_ns=self.now_ns))

    def place(
        self,
        name: str,
        market: str,
        side: str,
        qty: str,
        price: str | None = None,
        *,
        tif: str = "GTC",
        reduce_only: bool = False,
        client_id: str | None = None,
        stp: str = "EXPIRE_MAKER",
    ) -> Outcome:
        """Place an order; ``price=None`` makes it a MARKET order."""
        return self.apply(
            PlaceOrder(
                ts_ns=self.tick(),
                account_id=self.names[name],
                market=MarketId(market),
                side=Side[side.upper()],
                order_type=OrderType.MARKET if price is None else OrderType.LIMIT,
                qty_lots=self.lots(market, qty),
                price_ticks=None if price is None else self.ticks(market, price),
                tif=TimeInForce(tif),
                reduce_only=reduce_only,
                client_order_id=None if client_id is None else ClientOrderId(client_id),
                stp=StpMode(stp),
            )
        )

    def cancel(
        self, name: str, market: str, order_id: int | None = None, client_id: str | None = None
    ) -> Outcome:
        return self.apply(
            CancelOrder(
                ts_ns=self.tick(),
                account_id=self.names[name],
                market=MarketId(market),
                order_id=None if order_id is None else OrderId(order_id),
                client_order_id=None if client_id is None else ClientOrderId(client_id),
            )
        )

    def cancel_all(self, name: str, market: str) -> Outcome:
        return self.apply(
            CancelAllOrders(ts_ns=self.tick(), account_id=self.names[name], market=MarketId(market))
        )

    def amend(self, name: str, market: str, order_id: int, price: str, qty: str) -> Outcome:
        return self.apply(
            AmendOrder(
                ts_ns=self.tick(),
                account_id=self.names[name],
                market=MarketId(market),
                order_id=OrderId(order_id),
                price_ticks=self.ticks(market, price),
                qty_lots=self.lots(market, qty),
            )
        )

    # -------------------------------------------------------------- reading state back

    def balance(self, name: str) -> Decimal:
        """Cross wallet balance in settlement-asset units."""
        atoms = self.engine.accounts[self.names[name]].balance(AssetId(self.config.settlement_asset))
        return units_to_decimal(atoms, self.config.settlement.atom)

    def position(self, name: str, market: str) -> Decimal:
        """Signed position in base units."""
        position = self.engine.position(self.names[name], MarketId(market))
        return units_to_decimal(position.qty_lots, self.spec(market).lot_size)

    def book_table(self, market: str) -> str:
        """The book as a ``| bid | price | ask |`` table, highest price first."""
        spec = self.spec(market)
        book = self.engine.books[MarketId(market)]
        rows: dict[int, list[str]] = {}
        for price, lots in book.bids.depth():
            rows.setdefault(price, ["", ""])[0] = format_units(lots, spec.lot_size)
        for price, lots in book.asks.depth():
            rows.setdefault(price, ["", ""])[1] = format_units(lots, spec.lot_size)
        lines = ["| bid | price | ask |"]
        for price in sorted(rows, reverse=True):
            bid, ask = rows[price]
            lines.append(f"| {bid} | {format_units(price, spec.tick_size)} | {ask} |")
        return "\n".join(lines)


def accepted_id(events: list[Event]) -> OrderId:
    """The order id of the first ``OrderAccepted`` in ``events``."""
    for event in events:
        if isinstance(event, OrderAccepted):
            return event.order_id
    raise AssertionError(f"no OrderAccepted in {events}")


def normalize_table(table: str) -> str:
    """Collapse the spacing of a ``| a | b | c |`` table so tables compare by content."""
    lines = []
    for line in table.strip().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
