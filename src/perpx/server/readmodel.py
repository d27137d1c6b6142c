"""The trading read model: every order, algo order, trade, income and margin change, in SQLite.

Built from engine events alone (never from engine state), so a fresh
``DATA/readmodel.sqlite`` rebuilt from the journal is identical to one kept up
to date live. :class:`ReadModel` is a persistent component
(:class:`perpx.server.context.Component`):

* ``on_applied`` runs in the sequencer's pipeline after every journaled batch,
  before any caller is answered: one SQLite transaction per batch holds the
  rows *and* the batch's last journal sequence number, so a request sees its
  own writes, and a crash between the journal commit and this one is repaired
  at start-up by replaying the records after ``resume_seq()``;
* queries run on the handlers' thread through a second connection (WAL: a
  reader sees the last committed batch and never blocks the writer).

Tables
------
=================  ==============================================================
``orders``         one row per accepted order (open or closed): status NEW,
                   PARTIALLY_FILLED, FILLED, CANCELED, EXPIRED, EXPIRED_IN_MATCH
                   (self-trade prevention); refused orders are never stored
``algo_orders``    one row per accepted conditional order: NEW, TRIGGERED (its
                   order was placed), FINISHED (that order closed), CANCELED,
                   EXPIRED, REJECTED (refused when it triggered)
``trades``         one row per fill per account (``userTrades``)
``income``         REALIZED_PNL, COMMISSION, FUNDING_FEE, TRANSFER, INSURANCE_CLEAR
``margin_changes`` isolated margin added (type 1) or removed (type 2)
``touched``        last update time per (account, symbol), ``""`` = the wallet
``meta``           ``last_seq``
=================  ==============================================================

A failure while applying a batch rolls the transaction back and stops the read
model (it logs why and answers from its last good state); the next start-up
catches it up from the journal.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import fields
from decimal import Decimal
from operator import attrgetter
from typing import Any, TypeVar

from perpx.engine.config import MarketSpec
from perpx.engine.events import (
    BlockTradeBooked,
    ConditionalOrderAccepted,
    ConditionalOrderCanceled,
    ConditionalOrderExpired,
    ConditionalOrderRejected,
    ConditionalOrderTriggered,
    DepositApplied,
    Event,
    ExpireReason,
    FundingPaid,
    InsuranceFundChanged,
    IsolatedMarginAdjusted,
    LeverageChanged,
    MarginModeChanged,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    PositionSettled,
    PositionTransferred,
    SpotBlockTradeBooked,
    WithdrawalApplied,
)
from perpx.engine.values import NS_PER_MS, Side
from perpx.server.context import ServerContext
from perpx.server.orders_wire import (
    AlgoRecord,
    Fill,
    IncomeRecord,
    OrderRecord,
    TradeRecord,
    algo_update_json,
    default_client_algo_id,
    default_client_order_id,
    order_update_json,
)
from perpx.server.sequencer import Applied

log = logging.getLogger("perpx.readmodel")

READMODEL_FILE = "readmodel.sqlite"
MAX_ROWS = 1000

R = TypeVar("R", OrderRecord, AlgoRecord, TradeRecord, IncomeRecord)

Message = tuple[int, int, dict[str, Any]]
"""``(journal seq, account id, payload)``: one user-data-stream message the batch produced."""

_STP_EXPIRY = (ExpireReason.STP_TAKER, ExpireReason.STP_MAKER)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    order_id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL, symbol TEXT NOT NULL,
    client_order_id TEXT NOT NULL, side TEXT NOT NULL, type TEXT NOT NULL, orig_type TEXT NOT NULL,
    tif TEXT NOT NULL, price_ticks INTEGER, orig_qty_lots INTEGER NOT NULL,
    executed_lots INTEGER NOT NULL, cum_quote_atoms INTEGER NOT NULL, status TEXT NOT NULL,
    reduce_only INTEGER NOT NULL, close_position INTEGER NOT NULL, stop_price_ticks INTEGER,
    working_type TEXT NOT NULL, price_protect INTEGER NOT NULL, stp TEXT NOT NULL,
    time_ms INTEGER NOT NULL, update_ms INTEGER NOT NULL, algo_id INTEGER,
    liquidation INTEGER NOT NULL, activation_price_ticks INTEGER, callback_rate_e8 INTEGER);
CREATE INDEX IF NOT EXISTS orders_by_account ON orders (account_id, symbol, order_id);
CREATE INDEX IF NOT EXISTS orders_by_client ON orders (account_id, client_order_id);
CREATE INDEX IF NOT EXISTS orders_open ON orders (account_id, status);
CREATE TABLE IF NOT EXISTS algo_orders (
    algo_id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL, symbol TEXT NOT NULL,
    client_algo_id TEXT NOT NULL, side TEXT NOT NULL, order_type TEXT NOT NULL, qty_lots INTEGER,
    trigger_price_ticks INTEGER, price_ticks INTEGER, tif TEXT NOT NULL, working_type TEXT NOT NULL,
    reduce_only INTEGER NOT NULL, close_position INTEGER NOT NULL, price_protect INTEGER NOT NULL,
    activation_price_ticks INTEGER, callback_rate_e8 INTEGER, stp TEXT NOT NULL, status TEXT NOT NULL,
    actual_order_id INTEGER, create_ms INTEGER NOT NULL, update_ms INTEGER NOT NULL,
    trigger_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS algo_by_account ON algo_orders (account_id, symbol, algo_id);
CREATE INDEX IF NOT EXISTS algo_by_client ON algo_orders (account_id, client_algo_id);
CREATE TABLE IF NOT EXISTS trades (
    trade_id INTEGER NOT NULL, account_id INTEGER NOT NULL, order_id INTEGER NOT NULL,
    symbol TEXT NOT NULL, side TEXT NOT NULL, price_ticks INTEGER NOT NULL, qty_lots INTEGER NOT NULL,
    quote_atoms INTEGER NOT NULL, realized_pnl_atoms INTEGER NOT NULL, fee_atoms INTEGER NOT NULL,
    time_ms INTEGER NOT NULL, maker INTEGER NOT NULL, PRIMARY KEY (account_id, trade_id, order_id));
CREATE INDEX IF NOT EXISTS trades_by_symbol ON trades (account_id, symbol, trade_id);
CREATE TABLE IF NOT EXISTS income (
    tran_id INTEGER PRIMARY KEY AUTOINCREMENT, account_id INTEGER NOT NULL, symbol TEXT NOT NULL,
    income_type TEXT NOT NULL, income_atoms INTEGER NOT NULL, asset TEXT NOT NULL, info TEXT NOT NULL,
    time_ms INTEGER NOT NULL, trade_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS income_by_account ON income (account_id, time_ms);
CREATE TABLE IF NOT EXISTS margin_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT, account_id INTEGER NOT NULL, symbol TEXT NOT NULL,
    type INTEGER NOT NULL, amount_atoms INTEGER NOT NULL, time_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS touched (
    account_id INTEGER NOT NULL, symbol TEXT NOT NULL, update_ms INTEGER NOT NULL,
    PRIMARY KEY (account_id, symbol));
"""

_ORDER_COLUMNS = tuple(f.name for f in fields(OrderRecord))
_ALGO_COLUMNS = tuple(f.name for f in fields(AlgoRecord))
_TRADE_COLUMNS = tuple(f.name for f in fields(TradeRecord))
_INCOME_COLUMNS = tuple(f.name for f in fields(IncomeRecord))
_order_row = attrgetter(*_ORDER_COLUMNS)
_algo_row = attrgetter(*_ALGO_COLUMNS)
_trade_row = attrgetter(*_TRADE_COLUMNS)
"""A record's row, its fields in column order: what ``dataclasses.astuple`` gives for these flat
records (ints, strings, bools, ``None``) without its recursive deep copy, which cost more than the
SQLite writes of a one-order batch."""


def _record(kind: type[R], row: tuple[Any, ...]) -> R:
    """A record from its row, with SQLite's 0/1 turned back into bools where the field is one."""
    values: list[Any] = [
        bool(value) if f.type == "bool" else value for f, value in zip(fields(kind), row, strict=True)
    ]
    return kind(*values)


def _ms(ts_ns: int) -> int:
    return ts_ns // NS_PER_MS


def _side(side: Side) -> str:
    return "BUY" if side is Side.BUY else "SELL"


class ReadModel:
    """Orders, algo orders, trades, income and margin history of every account; see the module doc.

    ``publish`` (set by the user data stream once it runs) makes ``on_applied`` also build the
    ``ORDER_TRADE_UPDATE`` / ``ALGO_UPDATE`` messages of the accounts in ``watched`` and return them,
    for its feeder to hand to the user data stream (the stream never reads them off the model).
    """

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.asset = str(ctx.config.settlement_asset)
        self.atom: Decimal = ctx.atom
        self.specs: dict[str, MarketSpec] = ctx.specs
        path = ctx.data_dir / READMODEL_FILE
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._reader = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._read_lock = threading.Lock()
        row = self._db.execute("SELECT value FROM meta WHERE key = 'last_seq'").fetchone()
        self._last_seq: int = row[0] if row else 0
        self.failure: str | None = None
        self.publish = False
        self.watched: frozenset[int] = frozenset()
        self._watchers: dict[str, frozenset[int]] = {}
        self._messages: list[Message] = []
        self._seq = self._last_seq
        self._open: dict[int, OrderRecord] = {
            r.order_id: r
            for r in self._select(
                self._db, OrderRecord, "orders", "status IN ('NEW', 'PARTIALLY_FILLED')", ()
            )
        }
        self._open_algos: dict[int, AlgoRecord] = {
            r.algo_id: r for r in self._select(self._db, AlgoRecord, "algo_orders", "status = 'NEW'", ())
        }
        self._touched: dict[tuple[int, str], int] = {
            (a, s): t for a, s, t in self._db.execute("SELECT account_id, symbol, update_ms FROM touched")
        }
        self._children: dict[int, int] = {}
        self._orders_out: dict[int, OrderRecord] = {}
        self._algos_out: dict[int, AlgoRecord] = {}
        self._trades_out: list[TradeRecord] = []
        self._income_out: list[tuple[Any, ...]] = []
        self._margin_out: list[tuple[int, str, int, int, int]] = []
        self._touched_out: dict[tuple[int, str], int] = {}

    # ------------------------------------------------------------------ component

    def resume_seq(self) -> int:
        return self._last_seq

    def watch(self, watcher: str, accounts: frozenset[int]) -> None:
        """The accounts ``watcher`` (the user data stream, the FIX gateway) wants order messages of.

        ``watched`` is the union over every watcher; each consumer keeps the messages it wants.
        """
        self._watchers[watcher] = accounts
        self.watched = frozenset().union(*self._watchers.values())

    def on_applied(self, batch: list[Applied]) -> list[Message]:
        """Apply a journaled batch in one transaction (sequencer's pipeline); return its user-stream messages."""
        self._messages = []
        if self.failure is not None or not batch:
            return []
        try:
            for applied in batch:
                self._seq = applied.seq
                for event in applied.events:
                    self._apply(event)
            self._flush(batch[-1].seq)
        except Exception as exc:
            self.failure = f"{type(exc).__name__}: {exc}"
            self._messages = []
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            log.exception(
                "read model stopped at seq %d; a restart catches it up",
                batch[0].seq,
                extra={"seq": batch[0].seq},
            )
            raise
        return self._messages

    def close(self) -> None:
        self._db.close()
        self._reader.close()

    # ------------------------------------------------------------------ events

    def _apply(self, event: Event) -> None:
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)

    def _touch(self, account_id: int, symbol: str, ms: int) -> None:
        self._touched[(account_id, symbol)] = ms
        self._touched_out[(account_id, symbol)] = ms

    def _emit(self, account_id: int, payload: dict[str, Any]) -> None:
        self._messages.append((self._seq, account_id, payload))

    def _wants(self, account_id: int) -> bool:
        return self.publish and account_id in self.watched

    def _put_order(self, record: OrderRecord) -> None:
        self._orders_out[record.order_id] = record
        if record.is_open:
            self._open[record.order_id] = record
            return
        self._open.pop(record.order_id, None)
        if record.algo_id is not None:
            algo = self._algo_for_update(record.algo_id)
            if algo is not None and algo.status == "TRIGGERED":
                self._put_algo(algo.evolve(status="FINISHED", update_ms=record.update_ms))

    def _put_algo(self, record: AlgoRecord) -> None:
        self._algos_out[record.algo_id] = record
        if record.is_open:
            self._open_algos[record.algo_id] = record
        else:
            self._open_algos.pop(record.algo_id, None)
        if self._wants(record.account_id):
            spec = self.specs[record.symbol]
            self._emit(record.account_id, algo_update_json(record, spec, record.update_ms))

    def _algo_for_update(self, algo_id: int) -> AlgoRecord | None:
        found = self._algos_out.get(algo_id) or self._open_algos.get(algo_id)
        if found is not None:
            return found
        rows = self._select(self._db, AlgoRecord, "algo_orders", "algo_id = ?", (algo_id,))
        return rows[0] if rows else None

    def _order_update(self, record: OrderRecord, execution: str, ms: int, fill: Fill | None = None) -> None:
        if self._wants(record.account_id):
            spec = self.specs[record.symbol]
            payload = order_update_json(record, spec, self.atom, self.asset, execution, ms, fill)
            self._emit(record.account_id, payload)

    def _on_accepted(self, e: OrderAccepted) -> None:
        ms = _ms(e.ts_ns)
        algo_id = self._children.pop(e.order_id, None)
        algo = self._algo_for_update(algo_id) if algo_id is not None else None
        liquidation = e.client_order_id == f"autoclose-{e.order_id}"
        client_id: str
        if e.client_order_id is not None:
            client_id = e.client_order_id
        elif algo is not None:
            client_id = algo.client_algo_id
        else:
            client_id = default_client_order_id(e.order_id)
        record = OrderRecord(
            order_id=e.order_id,
            account_id=e.account_id,
            symbol=str(e.market),
            client_order_id=client_id,
            side=_side(e.side),
            type=e.order_type.value,
            orig_type=algo.order_type if algo is not None else e.order_type.value,
            tif=e.tif.value,
            price_ticks=e.price_ticks,
            orig_qty_lots=e.qty_lots,
            executed_lots=0,
            cum_quote_atoms=0,
            status="NEW",
            reduce_only=e.reduce_only,
            close_position=algo.close_position if algo is not None else False,
            stop_price_ticks=algo.trigger_price_ticks if algo is not None else None,
            working_type=algo.working_type if algo is not None else "CONTRACT_PRICE",
            price_protect=algo.price_protect if algo is not None else False,
            stp=e.stp.value,
            time_ms=ms,
            update_ms=ms,
            algo_id=algo_id,
            liquidation=liquidation,
            activation_price_ticks=algo.activation_price_ticks if algo is not None else None,
            callback_rate_e8=algo.callback_rate_e8 if algo is not None else None,
        )
        self._put_order(record)
        self._order_update(record, "NEW", ms)

    def _on_filled(self, e: OrderFilled) -> None:
        ms = _ms(e.ts_ns)
        symbol = str(e.market)
        spec = self.specs[symbol]
        quote = e.price_ticks * e.qty_lots * spec.contract_atoms
        self._trades_out.append(
            TradeRecord(
                trade_id=e.trade_id,
                account_id=e.account_id,
                order_id=e.order_id,
                symbol=symbol,
                side=_side(e.side),
                price_ticks=e.price_ticks,
                qty_lots=e.qty_lots,
                quote_atoms=quote,
                realized_pnl_atoms=e.realized_pnl_atoms,
                fee_atoms=e.fee_atoms,
                time_ms=ms,
                maker=e.is_maker,
            )
        )
        if e.realized_pnl_atoms:
            self._income(e.account_id, symbol, "REALIZED_PNL", e.realized_pnl_atoms, "", ms, str(e.trade_id))
        if e.fee_atoms:
            self._income(e.account_id, symbol, "COMMISSION", -e.fee_atoms, "", ms, str(e.trade_id))
        self._touch(e.account_id, symbol, ms)
        self._touch(e.account_id, "", ms)
        record = self._open.get(e.order_id)
        if record is None:
            log.error("fill of order %d, which the read model does not hold open", e.order_id)
            return
        record = order_moved(record, e, spec.contract_atoms)
        self._put_order(record)
        fill = Fill(e.trade_id, e.price_ticks, e.qty_lots, e.fee_atoms, e.realized_pnl_atoms, e.is_maker)
        self._order_update(record, "CALCULATED" if record.liquidation else "TRADE", ms, fill)

    def _on_block(self, e: BlockTradeBooked) -> None:
        """An OTC block trade (``perpx.engine.block``): a trade row with order id 0, its PnL and fee."""
        ms = _ms(e.ts_ns)
        symbol = str(e.market)
        quote = e.price_ticks * e.qty_lots * self.specs[symbol].contract_atoms
        self._trades_out.append(
            TradeRecord(
                trade_id=e.trade_id,
                account_id=e.account_id,
                order_id=0,
                symbol=symbol,
                side=_side(e.side),
                price_ticks=e.price_ticks,
                qty_lots=e.qty_lots,
                quote_atoms=quote,
                realized_pnl_atoms=e.realized_pnl_atoms,
                fee_atoms=e.fee_atoms,
                time_ms=ms,
                maker=e.is_desk,
            )
        )
        info = f"BLOCK {e.quote_id}"
        if e.realized_pnl_atoms:
            self._income(
                e.account_id, symbol, "REALIZED_PNL", e.realized_pnl_atoms, info, ms, str(e.trade_id)
            )
        if e.fee_atoms:
            self._income(e.account_id, symbol, "COMMISSION", -e.fee_atoms, info, ms, str(e.trade_id))
        self._touch(e.account_id, symbol, ms)
        self._touch(e.account_id, "", ms)

    def _on_spot_block(self, e: SpotBlockTradeBooked) -> None:
        """An OTC spot block trade (``perpx.engine.block``): two income rows, one per asset, named like
        Binance's coin swaps (``COIN_SWAP_DEPOSIT`` for what came in, ``COIN_SWAP_WITHDRAW`` for what
        went out), info ``BLOCK <quoteId>`` and the trade id."""
        ms = _ms(e.ts_ns)
        info = f"BLOCK {e.quote_id}"
        sign = 1 if e.side is Side.BUY else -1
        for asset, atoms in ((e.base_asset, sign * e.base_atoms), (e.quote_asset, -sign * e.quote_atoms)):
            kind = "COIN_SWAP_DEPOSIT" if atoms > 0 else "COIN_SWAP_WITHDRAW"
            self._income_out.append((e.account_id, "", kind, atoms, str(asset), info, ms, str(e.trade_id)))
        self._touch(e.account_id, "", ms)

    def _move_order(self, e: OrderCanceled | OrderExpired | OrderAmended, execution: str) -> None:
        record = self._open.get(e.order_id)
        if record is None:
            log.error("%s of order %d, which the read model does not hold open", type(e).__name__, e.order_id)
            return
        record = order_moved(record, e, self.specs[record.symbol].contract_atoms)
        self._put_order(record)
        self._order_update(record, execution, record.update_ms)

    def _on_canceled(self, e: OrderCanceled) -> None:
        self._move_order(e, "CANCELED")

    def _on_expired(self, e: OrderExpired) -> None:
        self._move_order(e, "EXPIRED")

    def _on_amended(self, e: OrderAmended) -> None:
        self._move_order(e, "AMENDMENT")

    def _on_algo_accepted(self, e: ConditionalOrderAccepted) -> None:
        self._put_algo(algo_record(e))

    def _on_algo_triggered(self, e: ConditionalOrderTriggered) -> None:
        algo = self._algo_for_update(e.algo_id)
        if algo is None:
            return
        ms = _ms(e.ts_ns)
        if e.order_id is not None:
            self._children[e.order_id] = e.algo_id
        self._put_algo(
            algo.evolve(
                status="TRIGGERED",
                actual_order_id=e.order_id,
                trigger_price_ticks=e.trigger_price_ticks,
                update_ms=ms,
                trigger_ms=ms,
            )
        )

    def _end_algo(self, algo_id: int | None, status: str, ts_ns: int) -> None:
        algo = self._algo_for_update(algo_id) if algo_id is not None else None
        if algo is not None:
            self._put_algo(algo.evolve(status=status, update_ms=_ms(ts_ns)))

    def _on_algo_rejected(self, e: ConditionalOrderRejected) -> None:
        self._end_algo(e.algo_id, "REJECTED", e.ts_ns)  # algo_id None: refused when placed, never stored

    def _on_algo_canceled(self, e: ConditionalOrderCanceled) -> None:
        self._end_algo(e.algo_id, "CANCELED", e.ts_ns)

    def _on_algo_expired(self, e: ConditionalOrderExpired) -> None:
        self._end_algo(e.algo_id, "EXPIRED", e.ts_ns)

    def _income(
        self, account_id: int, symbol: str, kind: str, atoms: int, info: str, ms: int, trade_id: str = ""
    ) -> None:
        self._income_out.append((account_id, symbol, kind, atoms, self.asset, info, ms, trade_id))

    def _on_deposit(self, e: DepositApplied) -> None:
        ms = _ms(e.ts_ns)
        self._income(e.account_id, "", "TRANSFER", e.amount_atoms, f"DEPOSIT {e.tx_id}", ms)
        self._touch(e.account_id, "", ms)

    def _on_withdrawal(self, e: WithdrawalApplied) -> None:
        ms = _ms(e.ts_ns)
        self._income(e.account_id, "", "TRANSFER", -e.amount_atoms, f"WITHDRAW {e.tx_id}", ms)
        self._touch(e.account_id, "", ms)

    def _on_funding(self, e: FundingPaid) -> None:
        ms = _ms(e.ts_ns)
        self._income(e.account_id, str(e.market), "FUNDING_FEE", e.amount_atoms, "", ms)
        self._touch(e.account_id, "", ms)

    def _on_settled(self, e: PositionSettled) -> None:
        ms = _ms(e.ts_ns)
        if e.realized_pnl_atoms:
            self._income(e.account_id, str(e.market), "REALIZED_PNL", e.realized_pnl_atoms, "SETTLEMENT", ms)
        self._touch(e.account_id, str(e.market), ms)
        self._touch(e.account_id, "", ms)

    def _on_transferred(self, e: PositionTransferred) -> None:
        ms = _ms(e.ts_ns)
        if e.realized_pnl_atoms:
            self._income(
                e.account_id, str(e.market), "REALIZED_PNL", e.realized_pnl_atoms, e.reason.value, ms
            )
        self._touch(e.account_id, str(e.market), ms)
        self._touch(e.account_id, "", ms)

    def _on_insurance(self, e: InsuranceFundChanged) -> None:
        ms = _ms(e.ts_ns)
        symbol = "" if e.market is None else str(e.market)
        self._income(e.account_id, symbol, "INSURANCE_CLEAR", -e.amount_atoms, e.reason, ms)
        self._touch(e.account_id, "", ms)

    def _on_isolated(self, e: IsolatedMarginAdjusted) -> None:
        ms = _ms(e.ts_ns)
        kind = 1 if e.delta_atoms > 0 else 2
        self._margin_out.append((e.account_id, str(e.market), kind, abs(e.delta_atoms), ms))
        self._touch(e.account_id, str(e.market), ms)
        self._touch(e.account_id, "", ms)

    def _on_settings(self, e: LeverageChanged | MarginModeChanged) -> None:
        self._touch(e.account_id, str(e.market), _ms(e.ts_ns))

    # ------------------------------------------------------------------ writing

    def _flush(self, last_seq: int) -> None:
        db = self._db
        db.execute("BEGIN")
        if self._orders_out:
            db.executemany(
                f"INSERT OR REPLACE INTO orders ({', '.join(_ORDER_COLUMNS)})"
                f" VALUES ({', '.join('?' * len(_ORDER_COLUMNS))})",
                [_order_row(r) for r in self._orders_out.values()],
            )
        if self._algos_out:
            db.executemany(
                f"INSERT OR REPLACE INTO algo_orders ({', '.join(_ALGO_COLUMNS)})"
                f" VALUES ({', '.join('?' * len(_ALGO_COLUMNS))})",
                [_algo_row(r) for r in self._algos_out.values()],
            )
        if self._trades_out:
            db.executemany(
                f"INSERT OR REPLACE INTO trades ({', '.join(_TRADE_COLUMNS)})"
                f" VALUES ({', '.join('?' * len(_TRADE_COLUMNS))})",
                [_trade_row(r) for r in self._trades_out],
            )
        if self._income_out:
            db.executemany(
                "INSERT INTO income (account_id, symbol, income_type, income_atoms, asset, info, time_ms,"
                " trade_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                self._income_out,
            )
        if self._margin_out:
            db.executemany(
                "INSERT INTO margin_changes (account_id, symbol, type, amount_atoms, time_ms)"
                " VALUES (?, ?, ?, ?, ?)",
                self._margin_out,
            )
        if self._touched_out:
            db.executemany(
                "INSERT OR REPLACE INTO touched (account_id, symbol, update_ms) VALUES (?, ?, ?)",
                [(a, s, t) for (a, s), t in self._touched_out.items()],
            )
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('last_seq', ?)", (last_seq,))
        db.execute("COMMIT")
        self._last_seq = last_seq
        self._orders_out.clear()
        self._algos_out.clear()
        self._trades_out.clear()
        self._income_out.clear()
        self._margin_out.clear()
        self._touched_out.clear()

    # ------------------------------------------------------------------ queries (any thread)

    @staticmethod
    def _select(
        db: sqlite3.Connection,
        kind: type[R],
        table: str,
        where: str,
        args: Iterable[Any],
        order: str = "",
        limit: int | None = None,
    ) -> list[R]:
        columns = ", ".join(f.name for f in fields(kind))
        sql = f"SELECT {columns} FROM {table} WHERE {where}"
        if order:
            sql += f" ORDER BY {order}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_record(kind, row) for row in db.execute(sql, tuple(args))]

    def _read(
        self,
        kind: type[R],
        table: str,
        where: str,
        args: Iterable[Any],
        order: str = "",
        limit: int | None = None,
    ) -> list[R]:
        with self._read_lock:
            return self._select(self._reader, kind, table, where, args, order, limit)

    def order(
        self, account_id: int, symbol: str, order_id: int | None = None, client_order_id: str | None = None
    ) -> OrderRecord | None:
        """An order of the account in ``symbol`` by id, or by client id (the newest with it)."""
        if order_id is not None:
            rows = self._read(
                OrderRecord,
                "orders",
                "order_id = ? AND account_id = ? AND symbol = ?",
                (order_id, account_id, symbol),
            )
        elif client_order_id is not None:
            rows = self._read(
                OrderRecord,
                "orders",
                "account_id = ? AND client_order_id = ? AND symbol = ?",
                (account_id, client_order_id, symbol),
                "order_id DESC",
                1,
            )
        else:
            return None
        return rows[0] if rows else None

    def open_orders(self, account_id: int, symbol: str | None = None) -> list[OrderRecord]:
        """The account's open orders (in ``symbol`` if given), oldest first."""
        where = "account_id = ? AND status IN ('NEW', 'PARTIALLY_FILLED')"
        args: list[Any] = [account_id]
        if symbol is not None:
            where += " AND symbol = ?"
            args.append(symbol)
        return self._read(OrderRecord, "orders", where, args, "order_id")

    def all_orders(
        self,
        account_id: int,
        symbol: str,
        from_id: int | None,
        start_ms: int | None,
        end_ms: int | None,
        limit: int,
    ) -> list[OrderRecord]:
        """Orders of the account in ``symbol``, oldest first: from ``from_id``, else the newest ``limit``."""
        where, args = self._window("account_id = ? AND symbol = ?", [account_id, symbol], start_ms, end_ms)
        if from_id is not None:
            return self._read(
                OrderRecord, "orders", where + " AND order_id >= ?", [*args, from_id], "order_id", limit
            )
        rows = self._read(OrderRecord, "orders", where, args, "order_id DESC", limit)
        return rows[::-1]

    def liquidation_orders(
        self, account_id: int, symbol: str | None, start_ms: int | None, end_ms: int | None, limit: int
    ) -> list[OrderRecord]:
        """The account's liquidation orders (``autoclose-``), in ``symbol`` or all: the newest ``limit``,
        oldest first."""
        where = "account_id = ? AND liquidation = 1"
        args: list[Any] = [account_id]
        if symbol is not None:
            where += " AND symbol = ?"
            args.append(symbol)
        where, args = self._window(where, args, start_ms, end_ms)
        rows = self._read(OrderRecord, "orders", where, args, "order_id DESC", limit)
        return rows[::-1]

    def trades(
        self,
        account_id: int,
        symbol: str,
        from_id: int | None,
        start_ms: int | None,
        end_ms: int | None,
        limit: int,
        order_id: int | None = None,
    ) -> list[TradeRecord]:
        """Fills of the account in ``symbol``, oldest first: from ``from_id``, else the newest ``limit``."""
        where, args = self._window("account_id = ? AND symbol = ?", [account_id, symbol], start_ms, end_ms)
        if order_id is not None:
            where += " AND order_id = ?"
            args.append(order_id)
        if from_id is not None:
            return self._read(
                TradeRecord, "trades", where + " AND trade_id >= ?", [*args, from_id], "trade_id", limit
            )
        rows = self._read(TradeRecord, "trades", where, args, "trade_id DESC, order_id DESC", limit)
        return rows[::-1]

    def income(
        self,
        account_id: int,
        symbol: str | None,
        income_type: str | None,
        start_ms: int | None,
        end_ms: int | None,
        limit: int,
    ) -> list[IncomeRecord]:
        """Income rows, oldest first; without ``start_ms`` the newest ``limit``."""
        where, args = self._window("account_id = ?", [account_id], start_ms, end_ms)
        if symbol is not None:
            where += " AND symbol = ?"
            args.append(symbol)
        if income_type is not None:
            where += " AND income_type = ?"
            args.append(income_type)
        if start_ms is not None:
            return self._read(IncomeRecord, "income", where, args, "tran_id", limit)
        return self._read(IncomeRecord, "income", where, args, "tran_id DESC", limit)[::-1]

    def algo(
        self, account_id: int, algo_id: int | None = None, client_algo_id: str | None = None
    ) -> AlgoRecord | None:
        """A conditional order of the account by id, or by client id (the newest with it)."""
        if algo_id is not None:
            rows = self._read(
                AlgoRecord, "algo_orders", "algo_id = ? AND account_id = ?", (algo_id, account_id)
            )
        elif client_algo_id is not None:
            rows = self._read(
                AlgoRecord,
                "algo_orders",
                "account_id = ? AND client_algo_id = ?",
                (account_id, client_algo_id),
                "algo_id DESC",
                1,
            )
        else:
            return None
        return rows[0] if rows else None

    def open_algos(self, account_id: int, symbol: str | None = None) -> list[AlgoRecord]:
        where = "account_id = ? AND status = 'NEW'"
        args: list[Any] = [account_id]
        if symbol is not None:
            where += " AND symbol = ?"
            args.append(symbol)
        return self._read(AlgoRecord, "algo_orders", where, args, "algo_id")

    def all_algos(
        self,
        account_id: int,
        symbol: str,
        from_id: int | None,
        start_ms: int | None,
        end_ms: int | None,
        limit: int,
    ) -> list[AlgoRecord]:
        where, args = self._window(
            "account_id = ? AND symbol = ?", [account_id, symbol], start_ms, end_ms, "create_ms"
        )
        if from_id is not None:
            return self._read(
                AlgoRecord, "algo_orders", where + " AND algo_id >= ?", [*args, from_id], "algo_id", limit
            )
        return self._read(AlgoRecord, "algo_orders", where, args, "algo_id DESC", limit)[::-1]

    def margin_changes(
        self,
        account_id: int,
        symbol: str,
        kind: int | None,
        start_ms: int | None,
        end_ms: int | None,
        limit: int,
    ) -> list[tuple[str, int, int, int]]:
        """``(symbol, type, amount_atoms, time_ms)`` of isolated margin changes, newest first."""
        where, args = self._window("account_id = ? AND symbol = ?", [account_id, symbol], start_ms, end_ms)
        if kind is not None:
            where += " AND type = ?"
            args.append(kind)
        sql = (
            f"SELECT symbol, type, amount_atoms, time_ms FROM margin_changes WHERE {where}"
            f" ORDER BY id DESC LIMIT {int(limit)}"
        )
        with self._read_lock:
            return [(r[0], r[1], r[2], r[3]) for r in self._reader.execute(sql, args)]

    def update_ms(self, account_id: int, symbol: str = "") -> int:
        """Venue ms of the last change to the account's wallet (``""``) or its position in ``symbol``."""
        return self._touched.get((account_id, symbol), 0)

    @staticmethod
    def _window(
        where: str, args: list[Any], start_ms: int | None, end_ms: int | None, column: str = "time_ms"
    ) -> tuple[str, list[Any]]:
        if start_ms is not None:
            where += f" AND {column} >= ?"
            args.append(start_ms)
        if end_ms is not None:
            where += f" AND {column} <= ?"
            args.append(end_ms)
        return where, args


def algo_record(e: ConditionalOrderAccepted) -> AlgoRecord:
    """A new conditional order's record, from its acceptance."""
    ms = _ms(e.ts_ns)
    return AlgoRecord(
        algo_id=e.algo_id,
        account_id=e.account_id,
        symbol=str(e.market),
        client_algo_id=e.client_algo_id or default_client_algo_id(e.algo_id),
        side=_side(e.side),
        order_type=e.order_type.value,
        qty_lots=e.qty_lots,
        trigger_price_ticks=e.trigger_price_ticks,
        price_ticks=e.price_ticks,
        tif=e.tif.value,
        working_type=e.working_type.value,
        reduce_only=e.reduce_only,
        close_position=e.close_position,
        price_protect=e.price_protect,
        activation_price_ticks=e.activation_price_ticks,
        callback_rate_e8=e.callback_rate_e8,
        stp=e.stp.value,
        status="NEW",
        actual_order_id=None,
        create_ms=ms,
        update_ms=ms,
        trigger_ms=0,
    )


def placed_order(e: OrderAccepted) -> OrderRecord:
    """A plain order's record at its acceptance (no conditional-order parent, no liquidation flag).

    The read model builds the same record for such an order (:meth:`ReadModel._on_accepted`).
    """
    ms = _ms(e.ts_ns)
    return OrderRecord(
        order_id=e.order_id,
        account_id=e.account_id,
        symbol=str(e.market),
        client_order_id=e.client_order_id or default_client_order_id(e.order_id),
        side=_side(e.side),
        type=e.order_type.value,
        orig_type=e.order_type.value,
        tif=e.tif.value,
        price_ticks=e.price_ticks,
        orig_qty_lots=e.qty_lots,
        executed_lots=0,
        cum_quote_atoms=0,
        status="NEW",
        reduce_only=e.reduce_only,
        close_position=False,
        stop_price_ticks=None,
        working_type="CONTRACT_PRICE",
        price_protect=False,
        stp=e.stp.value,
        time_ms=ms,
        update_ms=ms,
    )


def order_moved(record: OrderRecord, e: Event, contract_atoms: int) -> OrderRecord:
    """``record`` after one event of its order (a fill, close or amend); any other event leaves it.

    The one place an order's figures and status move: the read model and the routes that answer
    from a command's events both call it, so they cannot disagree.
    """
    if isinstance(e, OrderFilled):
        return record.evolve(
            executed_lots=record.executed_lots + e.qty_lots,
            cum_quote_atoms=record.cum_quote_atoms + e.price_ticks * e.qty_lots * contract_atoms,
            status="FILLED" if e.leaves_lots == 0 else "PARTIALLY_FILLED",
            update_ms=_ms(e.ts_ns),
        )
    if isinstance(e, OrderCanceled):
        return record.evolve(status="CANCELED", update_ms=_ms(e.ts_ns))
    if isinstance(e, OrderExpired):
        status = "EXPIRED_IN_MATCH" if e.reason in _STP_EXPIRY else "EXPIRED"
        return record.evolve(status=status, update_ms=_ms(e.ts_ns))
    if isinstance(e, OrderAmended):
        return record.evolve(price_ticks=e.price_ticks, orig_qty_lots=e.qty_lots, update_ms=_ms(e.ts_ns))
    return record


def apply_to_order(record: OrderRecord, events: Iterable[Event], contract_atoms: int) -> OrderRecord:
    """``record`` after every event of ``events`` that names its order, in order."""
    order_id = record.order_id
    for e in events:
        if getattr(e, "order_id", None) == order_id:
            record = order_moved(record, e, contract_atoms)
    return record


_HANDLERS: dict[type, Any] = {
    OrderAccepted: ReadModel._on_accepted,
    OrderFilled: ReadModel._on_filled,
    BlockTradeBooked: ReadModel._on_block,
    SpotBlockTradeBooked: ReadModel._on_spot_block,
    OrderCanceled: ReadModel._on_canceled,
    OrderExpired: ReadModel._on_expired,
    OrderAmended: ReadModel._on_amended,
    ConditionalOrderAccepted: ReadModel._on_algo_accepted,
    ConditionalOrderTriggered: ReadModel._on_algo_triggered,
    ConditionalOrderRejected: ReadModel._on_algo_rejected,
    ConditionalOrderCanceled: ReadModel._on_algo_canceled,
    ConditionalOrderExpired: ReadModel._on_algo_expired,
    DepositApplied: ReadModel._on_deposit,
    WithdrawalApplied: ReadModel._on_withdrawal,
    FundingPaid: ReadModel._on_funding,
    PositionSettled: ReadModel._on_settled,
    PositionTransferred: ReadModel._on_transferred,
    InsuranceFundChanged: ReadModel._on_insurance,
    IsolatedMarginAdjusted: ReadModel._on_isolated,
    LeverageChanged: ReadModel._on_settings,
    MarginModeChanged: ReadModel._on_settings,
}
