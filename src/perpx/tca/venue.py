"""An account's fills and its market's tape, read from a perpx data directory (read-only).

The server keeps two SQLite read models: ``DATA/readmodel.sqlite`` (every account's fills,
``trades``) and ``DATA/market.sqlite`` (the public tape, ``trades``, and ``candles``). Both are
opened with ``mode=ro``: TCA never writes into a venue's directory. ``DATA/config.toml`` gives
tick, lot and atom sizes, so integer ticks, lots and atoms become exact decimals here.

The venue stores no quotes. The mid is inferred from the tape
(:func:`perpx.tca.benchmarks.quotes_from_tape`: the last print at the bid, a sell taker's, and the
last at the ask, a buy taker's); every report says so in ``spread.mid_source``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from perpx.engine.config import MarketSpec, VenueConfig
from perpx.journal.store import RecoveryError, read_config
from perpx.tca.benchmarks import quotes_from_tape
from perpx.tca.inputs import Fill, InputError, Quote, Side, Trade

READMODEL_FILE = "readmodel.sqlite"
MARKET_FILE = "market.sqlite"
TAPE_MID = "inferred from the tape (last sell-taker print = bid, last buy-taker print = ask); the venue stores no quotes"
MINUTE_MS = 60_000
LOOKBACK_MS = 3_600_000
"""Tape read before the first fill, so the inferred quote at the first fill has both sides."""
LOOKAHEAD_MS = 300_000
"""Tape read after the last fill: the longest markout horizon."""


@contextmanager
def read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """``path`` opened read-only; a missing file is an :class:`InputError`, not a new database.

    The read models are WAL databases. While a server has them open, ``DATA/x.sqlite-wal`` exists
    and holds the latest batches: they are read with ``mode=ro`` (through the server's shared
    memory file). When the server has closed them cleanly there is no ``-wal`` file and everything
    is in the main file: ``immutable=1`` reads it without creating the ``-wal``/``-shm`` files a
    read-only WAL reader would otherwise leave behind, so the directory is left byte for byte.
    """
    if not path.exists():
        raise InputError(f"{path} does not exist: is this a perpx data directory whose server has run?")
    live = path.with_name(path.name + "-wal").exists()
    mode = "mode=ro" if live else "mode=ro&immutable=1"
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?{mode}", uri=True)) as db:
            yield db
    except sqlite3.Error as exc:
        raise InputError(f"{path}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class VenueFill:
    """One of the account's fills with its side (an account may have traded both ways)."""

    side: Side
    order_id: int
    fill: Fill


@dataclass(frozen=True, slots=True)
class Market:
    """One market's units: ticks, lots and fee atoms to decimals."""

    spec: MarketSpec
    atom: Decimal

    def price(self, ticks: int) -> Decimal:
        return ticks * self.spec.tick_size

    def qty(self, lots: int) -> Decimal:
        return lots * self.spec.lot_size


def open_config(data: Path) -> VenueConfig:
    try:
        return read_config(data)
    except RecoveryError as exc:
        raise InputError(str(exc)) from exc


def market(config: VenueConfig, symbol: str) -> Market:
    for market_id, spec in config.markets.items():
        if str(market_id) == symbol:
            return Market(spec, config.assets[spec.settlement_asset].atom)
    raise InputError(f"no market {symbol} in this venue (markets: {', '.join(map(str, config.markets))})")


def account_symbols(data: Path, account: int, from_ms: int | None, to_ms: int | None) -> list[str]:
    """The symbols the account traded in the window, for choosing one."""
    with read_only(data / READMODEL_FILE) as db:
        rows = db.execute(
            "SELECT DISTINCT symbol FROM trades WHERE account_id = ? AND time_ms BETWEEN ? AND ? ORDER BY symbol",
            (account, from_ms or 0, to_ms if to_ms is not None else 2**62),
        ).fetchall()
    return [str(r[0]) for r in rows]


def account_fills(
    data: Path, units: Market, account: int, symbol: str, from_ms: int | None, to_ms: int | None
) -> list[VenueFill]:
    """The account's fills in ``symbol`` within ``[from_ms, to_ms]``, oldest first."""
    with read_only(data / READMODEL_FILE) as db:
        rows = db.execute(
            "SELECT trade_id, order_id, side, price_ticks, qty_lots, fee_atoms, time_ms, maker FROM trades"
            " WHERE account_id = ? AND symbol = ? AND time_ms BETWEEN ? AND ? ORDER BY time_ms, trade_id",
            (account, symbol, from_ms or 0, to_ms if to_ms is not None else 2**62),
        ).fetchall()
    return [
        VenueFill(
            Side.BUY if side == "BUY" else Side.SELL,
            order_id,
            Fill(
                time_ms=time_ms,
                price=units.price(price),
                qty=units.qty(qty),
                fee=fee * units.atom,
                maker=bool(maker),
                trade_id=trade_id,
            ),
        )
        for trade_id, order_id, side, price, qty, fee, time_ms, maker in rows
    ]


@dataclass(frozen=True, slots=True)
class Tape:
    """The market's prints (for VWAP) and the quotes inferred from them (for the mid)."""

    trades: list[Trade]
    quotes: list[Quote]


def tape(data: Path, units: Market, symbol: str, from_ms: int, to_ms: int) -> Tape:
    """The public trades of ``symbol`` in ``[from_ms, to_ms]`` and the quotes they imply."""
    with read_only(data / MARKET_FILE) as db:
        rows = db.execute(
            "SELECT id, ts_ms, price_ticks, qty_lots, buyer_maker FROM trades"
            " WHERE market = ? AND ts_ms BETWEEN ? AND ? ORDER BY id",
            (symbol, from_ms, to_ms),
        ).fetchall()
    trades = [Trade(ts, units.price(p), units.qty(q), trade_id) for trade_id, ts, p, q, _ in rows]
    quotes = quotes_from_tape([(ts, units.price(p), bool(bm)) for _, ts, p, _, bm in rows])
    return Tape(trades, quotes)


@dataclass(frozen=True, slots=True)
class Candle:
    """One minute of the tape: close price and volume."""

    open_ms: int
    close: Decimal
    volume: Decimal


def minute_candles(data: Path, units: Market, symbol: str) -> list[Candle]:
    """Every one-minute candle of ``symbol``, oldest first."""
    with read_only(data / MARKET_FILE) as db:
        rows = db.execute(
            "SELECT open_ms, close_ticks, volume_lots FROM candles WHERE market = ? AND res_ms = ? ORDER BY open_ms",
            (symbol, MINUTE_MS),
        ).fetchall()
    return [Candle(o, units.price(c), units.qty(v)) for o, c, v in rows]


@dataclass(frozen=True, slots=True)
class TakerOrder:
    """One order's taker fills, for calibrating impact: its side, size, average price, first fill."""

    side: Side
    qty: Decimal
    avg_price: Decimal
    first_ms: int


def taker_orders(data: Path, units: Market, symbol: str) -> list[TakerOrder]:
    """Every order's taker fills in ``symbol`` on the venue (all accounts), oldest first."""
    with read_only(data / READMODEL_FILE) as db:
        rows = db.execute(
            "SELECT order_id, side, sum(qty_lots), sum(price_ticks * qty_lots), min(time_ms) FROM trades"
            " WHERE symbol = ? AND maker = 0 GROUP BY order_id, side ORDER BY min(time_ms), order_id",
            (symbol,),
        ).fetchall()
    return [
        TakerOrder(
            Side.BUY if side == "BUY" else Side.SELL,
            units.qty(lots),
            Decimal(value) / lots * units.spec.tick_size,
            first_ms,
        )
        for _, side, lots, value, first_ms in rows
        if lots
    ]
