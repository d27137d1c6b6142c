"""Snapshots and the state hash.

:func:`snapshot` turns the whole engine into plain data (ints, strings, lists,
dicts) in a *canonical* order: maps are sorted by key, and the only sequences
kept in their own order are the ones whose order is state (the FIFO queue of
each price level). Two engines in the same state therefore give byte-identical
snapshots whatever their dicts' insertion history or ``PYTHONHASHSEED``, and
:func:`state_hash` is the SHA-256 of that encoding.

:func:`restore` is the inverse: ``state_hash(restore(c, snapshot(e))) ==
state_hash(e)`` and the restored engine behaves identically.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from perpx.engine.accounts import Account, Position
from perpx.engine.book import Order
from perpx.engine.commands import MarginMode, MarketMode, OrderType, StpMode, TimeInForce
from perpx.engine.config import VenueConfig
from perpx.engine.engine import Engine
from perpx.engine.liquidation import INSURANCE_ACCOUNT
from perpx.engine.params import follows_default, restored_spec
from perpx.engine.values import AccountId, AssetId, ClientOrderId, MarketId, OrderId, Side, TxId

SNAPSHOT_VERSION = 1


def _order_row(order: Order) -> list[Any]:
    return [
        order.order_id,
        order.account_id,
        int(order.side),
        order.order_type.value,
        order.tif.value,
        order.price_ticks,
        order.qty_lots,
        order.filled_lots,
        order.reduce_only,
        order.client_order_id,
        order.stp.value,
        order.ts_ns,
    ]


def _is_pristine(position: Position, default_leverage: int) -> bool:
    """A position record holding nothing a fresh one would not (:func:`perpx.engine.params.follows_default`)."""
    return follows_default(position, default_leverage)


def snapshot(engine: Engine) -> dict[str, Any]:
    """The engine's whole state as canonical plain data."""
    books: dict[str, Any] = {}
    for market in sorted(engine.books):
        book = engine.books[market]
        books[market] = {
            side_name: [
                [price, [_order_row(o) for o in side.levels[price].values()]] for price in sorted(side.levels)
            ]
            for side_name, side in (("bids", book.bids), ("asks", book.asks))
        }
    accounts = []
    for account_id in sorted(engine.accounts):
        account = engine.accounts[account_id]
        positions = []
        for market in sorted(account.positions):
            p = account.positions[market]
            if _is_pristine(p, engine.specs[market].default_leverage):
                continue  # created on demand (even by a refused command); same as absent
            positions.append(
                [
                    market,
                    p.qty_lots,
                    p.cost_atoms,
                    p.isolated_margin_atoms,
                    p.leverage,
                    p.margin_mode.value,
                    p.realized_pnl_atoms,
                ]
            )
        if account_id == INSURANCE_ACCOUNT and not positions and not any(account.balances.values()):
            continue  # the insurance fund's account exists from the start; empty, it is as absent
        accounts.append(
            [
                account_id,
                account.name,
                sorted(account.balances.items()),
                positions,
                sorted(account.volume_days.items()),
            ]
        )
    data: dict[str, Any] = {
        "version": SNAPSHOT_VERSION,
        "venue": engine.config.name,
        "now_ns": engine.now_ns,
        "next_ids": [engine.next_account_id, engine.next_order_id, engine.next_trade_id],
        "commands_applied": engine.commands_applied,
        "marks": sorted(engine.marks.items()),
        "indexes": sorted(engine.indexes.items()),
        "tx_ids": sorted(engine.tx_ids.items()),
        "deposits": sorted(engine.deposits_atoms.items()),
        "withdrawals": sorted(engine.withdrawals_atoms.items()),
        "fees": sorted(engine.fees_atoms.items()),
        "insurance": sorted(engine.insurance_atoms.items()),
        "last_trades": sorted(engine.last_trade_ticks.items()),
        "modes": sorted((m, mode.value) for m, mode in engine.modes.items()),
        "index_stale": sorted(engine.index_stale),
        "pricing": [[market, state.to_row()] for market, state in sorted(engine.pricing.markets.items())],
        "accounts": accounts,
        "books": books,
        "triggers": engine.triggers.snapshot(),
    }
    if engine.liquidation.unwind_due_ns:  # only once the fund has unwound: older snapshots hash as before
        data["fund_unwind_due_ns"] = engine.liquidation.unwind_due_ns
    lending = engine.lending.to_data()
    if lending is not None:  # only once an asset was quoted or a loan made: older snapshots hash as before
        data["lending"] = lending
    net_transfers = [
        [account_id, sorted(engine.accounts[account_id].net_transfers.items())]
        for account_id in sorted(engine.accounts)
        if engine.accounts[account_id].net_transfers
    ]
    if net_transfers:  # only once money moved without trading P&L: older snapshots hash as before
        data["net_transfers"] = net_transfers
    multi_assets = engine.multi_assets.to_data()
    if (
        multi_assets is not None
    ):  # only once an account used Multi-Assets Mode: older snapshots hash as before
        data["multi_assets"] = multi_assets
    parents = engine.parents.to_data()
    if parents is not None:  # only once the algo service recorded a parent: older snapshots hash as before
        data["parents"] = parents
    if engine.param_overrides:  # only when an operator changed a market: older snapshots hash as before
        data["market_params"] = [
            [market, sorted(engine.param_overrides[market].items())]
            for market in sorted(engine.param_overrides)
        ]
    return data


def encode_snapshot(engine: Engine) -> bytes:
    """Canonical JSON bytes of :func:`snapshot`.

    JSON rather than msgpack because ledger totals are unbounded integers:
    msgpack stops at 2**64 (1.8e11 USDT at 8 decimals of cumulative deposits).
    """
    return msgspec.json.encode(snapshot(engine))


UNHASHED_KEYS = ("now_ns", "commands_applied")
"""Bookkeeping left out of the hash, so a refused command leaves the hash unchanged."""


def state_hash(engine: Engine) -> str:
    """SHA-256 (hex) of the canonical snapshot's business state; independent of dict order and hash seed.

    The venue clock and the command counter are not hashed: they move with
    every command, including refused ones, while the hash answers "did this
    change the venue?". Both are still in the snapshot.
    """
    data = snapshot(engine)
    for key in UNHASHED_KEYS:
        del data[key]
    return hashlib.sha256(msgspec.json.encode(data)).hexdigest()


def restore(config: VenueConfig, data: dict[str, Any]) -> Engine:
    """Rebuild an engine from :func:`snapshot` data.

    Raises
    ------
    ValueError
        If the snapshot's version or venue does not match.
    """
    if data.get("version") != SNAPSHOT_VERSION:
        raise ValueError(f"snapshot version {data.get('version')} is not {SNAPSHOT_VERSION}")
    if data.get("venue") != config.name:
        raise ValueError(f"snapshot is of venue {data.get('venue')!r}, config is {config.name!r}")
    engine = Engine(config)
    for market, rows in data.get("market_params", []):
        overrides = {str(name): str(text) for name, text in rows}
        spec = restored_spec(config.markets[MarketId(market)], config.settlement.atom, overrides)
        engine.specs[spec.market] = spec
        engine.param_overrides[spec.market] = overrides
        if spec.market in engine.pricing.markets:
            engine.pricing.markets[spec.market].spec = spec
    engine.now_ns = data["now_ns"]
    engine.next_account_id, engine.next_order_id, engine.next_trade_id = data["next_ids"]
    engine.commands_applied = data["commands_applied"]
    engine.marks = {MarketId(k): v for k, v in data["marks"]}
    engine.indexes = {MarketId(k): v for k, v in data["indexes"]}
    engine.tx_ids = {TxId(k): AccountId(v) for k, v in data["tx_ids"]}
    engine.deposits_atoms = {AssetId(k): v for k, v in data["deposits"]}
    engine.withdrawals_atoms = {AssetId(k): v for k, v in data["withdrawals"]}
    engine.fees_atoms = {AssetId(k): v for k, v in data["fees"]}
    engine.insurance_atoms = {AssetId(k): v for k, v in data["insurance"]}
    engine.last_trade_ticks = {MarketId(k): v for k, v in data["last_trades"]}
    engine.modes.update({MarketId(k): MarketMode(v) for k, v in data["modes"]})
    engine.index_stale = {MarketId(k): None for k in data["index_stale"]}
    engine.liquidation.unwind_due_ns = data.get("fund_unwind_due_ns", 0)
    for account_id, name, balances, positions, volume_days in data["accounts"]:
        account = Account(AccountId(account_id), name)
        account.balances = {AssetId(k): v for k, v in balances}
        account.volume_days = {day: v for day, v in volume_days}
        account.volume_30d_atoms = sum(account.volume_days.values())
        for market, qty, cost, isolated, leverage, mode, realized in positions:
            p = Position(account.account_id, MarketId(market), leverage)
            p.qty_lots, p.cost_atoms, p.isolated_margin_atoms = qty, cost, isolated
            p.margin_mode = MarginMode(mode)
            p.realized_pnl_atoms = realized
            account.positions[p.market] = p
            engine.market_positions[p.market][account.account_id] = p
        engine.accounts[account.account_id] = account
    for account_id, totals in data.get("net_transfers", []):  # older snapshots: every account at 0
        engine.accounts[AccountId(account_id)].net_transfers = {AssetId(k): v for k, v in totals}
    resting: list[Order] = []
    for market, sides in data["books"].items():
        for side_name in ("bids", "asks"):
            for _price, rows in sides[side_name]:
                for row in rows:
                    order = Order(
                        OrderId(row[0]),
                        AccountId(row[1]),
                        MarketId(market),
                        Side(row[2]),
                        OrderType(row[3]),
                        TimeInForce(row[4]),
                        row[5],
                        row[6],
                        row[8],
                        None if row[9] is None else ClientOrderId(row[9]),
                        StpMode(row[10]),
                        row[11],
                    )
                    order.filled_lots = row[7]
                    resting.append(order)
    # Re-book in queue order per level, and index every order in id order (= placement order).
    for order in resting:
        engine.books[order.market].side(order.side).add(order)
    for order in sorted(resting, key=lambda o: o.order_id):
        position = engine.accounts[order.account_id].positions[order.market]
        engine.orders[order.order_id] = order
        position.open_orders[order.order_id] = order
        if order.client_order_id is not None:
            engine.accounts[order.account_id].client_orders[order.client_order_id] = order.order_id
        if order.reduce_only:
            position.reduce_only_orders[order.order_id] = order
        else:
            position.add_exposure(order, order.leaves_lots, engine.specs[order.market].contract_atoms)
    for account in engine.accounts.values():
        for position in account.positions.values():
            position.order_margin_atoms = position.required_order_margin()
    for account in engine.accounts.values():
        for market, position in account.positions.items():
            if position.qty_lots > 0:
                engine.open_interest_lots[market] += position.qty_lots
    if "triggers" in data:  # snapshots from before conditional orders existed hold none
        engine.triggers.restore(data["triggers"])
    for market, row in data.get("pricing", []):  # snapshots from before the pricing stage hold none
        engine.pricing.markets[MarketId(market)].load_row(row)
    engine.pricing.reschedule()
    engine.lending.load(data.get("lending"), engine.now_ns)
    engine.multi_assets.load(data.get("multi_assets"))
    engine.parents.load(data.get("parents"))  # snapshots from before the parent table hold none
    engine.liquidation.rebuild()  # safety bands and ADL holders, recomputed on the restored marks
    return engine
