"""The user data stream: listenKeys and the private WebSocket (Binance USDS-M).

listenKey lifecycle (Binance's rules, wall-clock time)
------------------------------------------------------
* ``POST /fapi/v1/listenKey`` creates a key valid for 60 minutes; a POST while the
  account's key is active returns the same key and extends it.
* ``PUT`` extends the account's active key by 60 minutes (``-1125`` if it has none).
* ``DELETE`` closes it: its connections get ``listenKeyExpired`` and are closed.
* An expired key's connections get ``{"e": "listenKeyExpired", ...}`` and are closed.
* Keys live in memory: after a restart clients create new ones (ccxt re-authenticates).

Connections: ``/private/ws?listenKey=<key>`` (ccxt.pro 4.5.90) and, through
:func:`serve_private`, the legacy ``/ws/<listenKey>``. The stream is push-only.

Events (built in the sequencer's pipeline after every journaled batch, delivered
through ``loop.call_soon_threadsafe`` into a bounded queue per connection; a
connection that falls :data:`QUEUE_LIMIT` messages behind is closed, code 1008):

=======================  ==========================================================================
``ORDER_TRADE_UPDATE``   every order event; ``x`` NEW, TRADE, CANCELED, EXPIRED, AMENDMENT,
                         CALCULATED (fills of a liquidation order); built by the read model
``ALGO_UPDATE``          conditional orders: NEW, TRIGGERED, FINISHED, CANCELED, EXPIRED, REJECTED
``ACCOUNT_UPDATE``       ``m`` ORDER, DEPOSIT, WITHDRAW, FUNDING_FEE, MARGIN_TYPE_CHANGE,
                         MARGIN_TRANSFER (isolated margin), INSURANCE_CLEAR (clearance fee, deficit
                         cover, insurance takeover), ADL, ADJUSTMENT (market settlement),
                         ASSET_TRANSFER (a secured loan paid out or repaid), AUTO_EXCHANGE
                         (Multi-Assets Mode: collateral converted); ``B`` the settlement asset
                         and every other asset the command changed, ``P`` the positions the
                         command changed (``pa "0"`` when closed). Figures are the account's state when the batch was applied.
``ACCOUNT_CONFIG_UPDATE`` leverage changes (``ac.s``, ``ac.l``)
``MARGIN_CALL``          once when the cross margin ratio (or an isolated position's) reaches
                         :data:`MARGIN_CALL_RATIO_E8` (80%); again only after it fell below
``LOAN_MARGIN_CALL``     a secured loan reached its margin-call LTV; ``LOAN_LIQUIDATION`` its
                         collateral was sold (:mod:`perpx.server.lending_stream`)
``PERPX_ALGO_UPDATE``    perpx: a parent of the algo service started, executed or ended (``a``: the
                         ``/sapi/v1/algo/futures`` algo object; Binance sends no such event)
``listenKeyExpired``     the key expired or was deleted
=======================  ==========================================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect

from perpx.engine.config import MarketSpec
from perpx.engine.engine import Engine
from perpx.engine.events import (
    BlockTradeBooked,
    CollateralConverted,
    DepositApplied,
    Event,
    FundingPaid,
    InsuranceFundChanged,
    IsolatedMarginAdjusted,
    LeverageChanged,
    LoanBorrowed,
    LoanLiquidated,
    LoanMarginCalled,
    LoanRepaid,
    MarginModeChanged,
    MarkPriceSet,
    MarkPriceUpdated,
    OrderFilled,
    PositionSettled,
    PositionTransferred,
    SpotBlockTradeBooked,
    TransferReason,
    WithdrawalApplied,
)
from perpx.engine.liquidation import INSURANCE_ACCOUNT
from perpx.engine.margin import isolated_margin_ratio_e8, position_risk
from perpx.engine.values import RATE_SCALE, AccountId, MarketId, Side
from perpx.server import wire
from perpx.server.context import ServerContext
from perpx.server.errors import ApiError, bad_key
from perpx.server.keys import new_token
from perpx.server.lending_stream import loan_message
from perpx.server.readmodel import Message, ReadModel
from perpx.server.rest import ctx_of, keyed
from perpx.server.sequencer import Applied
from perpx.server.trading.account import break_even_price, entry_price, fee_tier

log = logging.getLogger("perpx.userstream")

router = APIRouter(tags=["user data stream"])

LISTEN_KEY_VALIDITY_MS = 60 * 60 * 1000
QUEUE_LIMIT = 10_000
SWEEP_INTERVAL_S = 1.0
MARGIN_CALL_RATIO_E8 = 80 * RATE_SCALE // 100
"""Margin ratio (maintenance / margin balance) at which MARGIN_CALL is pushed: 80%."""

_CLOSE = None


@dataclass
class ListenKey:
    key: str
    account_id: int
    expires_ms: int


SLOW_REASON = "the client did not keep up with its user data stream"
"""The close reason (code 1008) of a connection whose outbox filled up."""


@dataclass(eq=False)
class Connection:
    """One private WebSocket: its account and its bounded outbox (``None`` closes it)."""

    listen_key: str
    account_id: int
    queue: asyncio.Queue[dict[str, Any] | None] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_LIMIT + 1)
    )
    close_code: int = 1000
    close_reason: str = ""


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class UserStream:
    """listenKeys, live connections, and the fan-out of user events (an in-memory component)."""

    def __init__(self, ctx: ServerContext, readmodel: ReadModel) -> None:
        self.ctx = ctx
        self.readmodel = readmodel
        """Builds the order and algo messages (``ORDER_TRADE_UPDATE``, ``ALGO_UPDATE``) of the accounts
        this stream tells it to watch, and its feeder hands them to :meth:`on_applied`."""
        self.validity_ms = LISTEN_KEY_VALIDITY_MS
        self.keys: dict[str, ListenKey] = {}
        self.by_account: dict[int, str] = {}
        self.connections: dict[int, set[Connection]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self._watched: frozenset[int] = frozenset()
        self._margin_called: set[tuple[int, str]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self.slow_drops = 0
        """Connections closed because the client did not keep up, since the start."""
        self.closed = 0
        """Connections ended for any other reason since the start (``perpx_ws_disconnects_total``)."""

    # ------------------------------------------------------------------ component (sequencer's pipeline)

    def resume_seq(self) -> int | None:
        return None

    def close(self) -> None:
        return None

    def on_applied(self, batch: list[Applied], order_messages: list[Message]) -> None:
        """Build this batch's messages for the watched accounts and hand them to the loop.

        ``order_messages`` are what the read model built from the same batch (it is fed first and
        hands them over: :meth:`perpx.server.components.Components.listeners`).
        """
        watched = self._watched
        loop = self.loop
        if not watched or loop is None or self.ctx.sequencer is None:
            return
        engine = self.ctx.seq.engine
        by_seq: dict[int, list[tuple[int, dict[str, Any]]]] = {}
        for seq, account_id, payload in order_messages:
            by_seq.setdefault(seq, []).append((account_id, payload))
        out: list[tuple[int, dict[str, Any]]] = []
        marks_moved = False
        touched: set[int] = set()
        for applied in batch:
            out.extend(by_seq.get(applied.seq, ()))
            for account_id, payload in self._account_updates(engine, applied.events, watched):
                out.append((account_id, payload))
                touched.add(account_id)
            marks_moved = marks_moved or any(
                isinstance(e, MarkPriceSet | MarkPriceUpdated) for e in applied.events
            )
        check = watched if marks_moved else touched
        for account_id in sorted(check):
            out.extend((account_id, p) for p in self._margin_calls(engine, account_id))
        if out:
            loop.call_soon_threadsafe(self._deliver, out)

    def _account_updates(
        self, engine: Engine, events: list[Event], watched: frozenset[int]
    ) -> list[tuple[int, dict[str, Any]]]:
        groups: dict[tuple[int, str], dict[str, Any]] = {}
        configs: list[tuple[int, dict[str, Any]]] = []
        for event in events:
            account_id = getattr(event, "account_id", None)
            if account_id is None or account_id not in watched:
                continue
            if isinstance(event, LeverageChanged):
                ms = wire.ms(event.ts_ns)
                configs.append(
                    (
                        account_id,
                        {
                            "e": "ACCOUNT_CONFIG_UPDATE",
                            "E": ms,
                            "T": ms,
                            "ac": {"s": str(event.market), "l": event.leverage},
                        },
                    )
                )
                continue
            if isinstance(event, LoanMarginCalled | LoanLiquidated):  # the loan book (lending_stream.py)
                configs.append((account_id, loan_message(event, self.ctx.config)))
                continue
            reason = _reason(event)
            if reason is None:
                continue
            group = groups.setdefault(
                (account_id, reason), {"ms": wire.ms(event.ts_ns), "markets": [], "change": 0, "assets": {}}
            )
            market = getattr(event, "market", None)
            if market is not None and market not in group["markets"]:
                group["markets"].append(market)
            if isinstance(event, DepositApplied | WithdrawalApplied) and event.asset != engine.asset:
                sign = 1 if isinstance(event, DepositApplied) else -1  # another asset: its own B row
                group["assets"][event.asset] = group["assets"].get(event.asset, 0) + sign * event.amount_atoms
            elif isinstance(event, DepositApplied):
                group["change"] += event.amount_atoms
            elif isinstance(event, WithdrawalApplied):
                group["change"] -= event.amount_atoms
            elif isinstance(event, CollateralConverted):  # Multi-Assets Mode: collateral sold for USDT
                group["change"] += event.proceeds_atoms
                group["assets"][event.asset] = group["assets"].get(event.asset, 0) - event.sold_atoms
            elif isinstance(event, LoanBorrowed) and event.loan_asset == engine.asset:
                group["change"] += event.loan_atoms
            elif isinstance(event, LoanRepaid) and event.loan_asset == engine.asset:
                group["change"] -= event.repaid_atoms
            elif isinstance(event, SpotBlockTradeBooked):  # an OTC spot block trade: both wallets move
                sign = 1 if event.side is Side.BUY else -1
                group["change"] -= sign * event.quote_atoms
                group["assets"][event.base_asset] = (
                    group["assets"].get(event.base_asset, 0) + sign * event.base_atoms
                )
        out = list(configs)
        for (account_id, reason), group in groups.items():
            payload = self._account_update(engine, account_id, reason, group)
            if payload is not None:
                out.append((account_id, payload))
        return out

    def _account_update(
        self, engine: Engine, account_id: int, reason: str, group: dict[str, Any]
    ) -> dict[str, Any] | None:
        account = engine.accounts.get(AccountId(account_id))
        if account is None:
            return None
        atom = self.ctx.atom
        asset = str(engine.asset)
        isolated = sum(p.isolated_margin_atoms for p in account.positions.values())
        balance = account.balance(engine.asset)
        taker_e8 = fee_tier(engine, account)[1].taker_e8
        rows = []
        for market in group["markets"]:
            position = account.positions.get(market)
            if position is None:
                continue
            spec = engine.specs[market]
            mark = engine.marks.get(market, 0)
            figures = position_risk(position, spec, mark)
            entry = entry_price(position.cost_atoms, position.qty_lots, spec, atom)
            rows.append(
                {
                    "s": str(market),
                    "pa": wire.qty(spec, position.qty_lots),
                    "ep": entry,
                    "bep": break_even_price(entry, position.qty_lots, taker_e8),
                    "cr": wire.money(position.realized_pnl_atoms, atom),
                    "up": wire.money(figures.unrealized_pnl_atoms if position.qty_lots else 0, atom),
                    "mt": "isolated" if position.is_isolated else "cross",
                    "iw": wire.money(position.isolated_margin_atoms, atom),
                    "ps": "BOTH",
                    "ma": asset,
                }
            )
        ms = group["ms"]
        return {
            "e": "ACCOUNT_UPDATE",
            "E": ms,
            "T": ms,
            "a": {
                "m": reason,
                "B": [
                    {
                        "a": asset,
                        "wb": wire.money(balance + isolated, atom),
                        "cw": wire.money(balance, atom),
                        "bc": wire.money(group["change"], atom),
                    },
                    *(
                        {
                            "a": str(other),
                            "wb": wire.money(account.balance(other), atom),
                            "cw": wire.money(account.balance(other), atom),
                            "bc": wire.money(change, atom),
                        }
                        for other, change in sorted(group["assets"].items())
                    ),
                ],
                "P": rows,
            },
        }

    def _margin_calls(self, engine: Engine, account_id: int) -> list[dict[str, Any]]:
        """MARGIN_CALL when a scope's ratio first reaches the threshold (cross, then each isolated)."""
        account = engine.accounts.get(AccountId(account_id))
        if account is None:
            return []
        risk = engine.risk(AccountId(account_id))
        atom = self.ctx.atom
        out: list[dict[str, Any]] = []
        ms = wire.ms(engine.now_ns)
        cross_rows: list[dict[str, Any]] = []
        for row in risk.positions:
            position = account.positions[row.market]
            spec = engine.specs[row.market]
            if not row.qty_lots:
                continue
            item = _margin_call_row(row.market, spec, engine, position.is_isolated, row, atom)
            if position.is_isolated:
                over = isolated_margin_ratio_e8(row) >= MARGIN_CALL_RATIO_E8
                if self._crossed(account_id, str(row.market), over):
                    out.append(
                        {"e": "MARGIN_CALL", "E": ms, "cw": wire.money(risk.wallet_atoms, atom), "p": [item]}
                    )
            else:
                cross_rows.append(item)
        over = bool(cross_rows) and risk.margin_ratio_e8 >= MARGIN_CALL_RATIO_E8
        if self._crossed(account_id, "", over):
            out.insert(
                0, {"e": "MARGIN_CALL", "E": ms, "cw": wire.money(risk.wallet_atoms, atom), "p": cross_rows}
            )
        return out

    def _crossed(self, account_id: int, scope: str, over: bool) -> bool:
        key = (account_id, scope)
        if not over:
            self._margin_called.discard(key)
            return False
        if key in self._margin_called:
            return False
        self._margin_called.add(key)
        return True

    def publish(self, account_id: int, payload: dict[str, Any]) -> None:
        """Send one message to ``account_id``'s connections, from any thread (the algo service's
        ``PERPX_ALGO_UPDATE``); nothing when no connection of the account listens."""
        loop = self.loop
        if loop is not None and account_id in self._watched:
            loop.call_soon_threadsafe(self._deliver, [(account_id, payload)])

    # ------------------------------------------------------------------ connections (event loop)

    def _deliver(self, messages: list[tuple[int, dict[str, Any]]]) -> None:
        for account_id, payload in messages:
            for connection in tuple(self.connections.get(account_id, ())):
                if connection.queue.qsize() >= QUEUE_LIMIT:
                    self._drop(connection, 1008, SLOW_REASON)
                    continue
                connection.queue.put_nowait(payload)

    def _drop(
        self, connection: Connection, code: int, reason: str, last: dict[str, Any] | None = None
    ) -> None:
        """Detach ``connection`` and tell its writer to send ``last`` (if any) and close."""
        self._detach(connection)
        connection.close_code, connection.close_reason = code, reason
        while not connection.queue.empty():
            connection.queue.get_nowait()
        if last is not None:
            connection.queue.put_nowait(last)
        connection.queue.put_nowait(_CLOSE)

    def attach(self, listen_key: str) -> Connection:
        """A new connection of an active key (``-1125`` if the key does not exist or expired)."""
        key = self.keys.get(listen_key)
        if key is None or key.expires_ms <= _wall_ms():
            raise ApiError(400, -1125, "This listenKey does not exist.")
        connection = Connection(listen_key, key.account_id)
        self.connections.setdefault(key.account_id, set()).add(connection)
        self._refresh_watched()
        return connection

    def _detach(self, connection: Connection) -> None:
        mine = self.connections.get(connection.account_id)
        if mine is not None:
            mine.discard(connection)
            if not mine:
                del self.connections[connection.account_id]
        self._refresh_watched()

    def _refresh_watched(self) -> None:
        watched = frozenset(self.connections)
        self._watched = watched
        self.readmodel.watch("userstream", watched)

    # ------------------------------------------------------------------ listen keys (event loop)

    def create(self, account_id: int) -> str:
        now = _wall_ms()
        current = self.by_account.get(account_id)
        if current is not None and self.keys[current].expires_ms > now:
            self.keys[current].expires_ms = now + self.validity_ms
            return current
        if current is not None:
            self._expire(current)
        key = new_token(64)
        self.keys[key] = ListenKey(key, account_id, now + self.validity_ms)
        self.by_account[account_id] = key
        return key

    def extend(self, account_id: int) -> str:
        now = _wall_ms()
        current = self.by_account.get(account_id)
        if current is None or self.keys[current].expires_ms <= now:
            raise ApiError(400, -1125, "This listenKey does not exist.")
        self.keys[current].expires_ms = now + self.validity_ms
        return current

    def delete(self, account_id: int) -> None:
        current = self.by_account.get(account_id)
        if current is not None:
            self._expire(current)

    def _expire(self, listen_key: str) -> None:
        key = self.keys.pop(listen_key, None)
        if key is None:
            return
        if self.by_account.get(key.account_id) == listen_key:
            del self.by_account[key.account_id]
        now = _wall_ms()
        notice = {"e": "listenKeyExpired", "E": now, "listenKey": listen_key}
        for connection in tuple(self.connections.get(key.account_id, ())):
            if connection.listen_key == listen_key:
                self._drop(connection, 1000, "listenKey expired", notice)

    def sweep(self) -> None:
        """Expire every key past its validity."""
        now = _wall_ms()
        for listen_key in [k for k, v in self.keys.items() if v.expires_ms <= now]:
            self._expire(listen_key)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL_S)
            try:
                self.sweep()
            except Exception:
                log.exception("listenKey sweep failed")


def _reason(event: Event) -> str | None:
    """The ``ACCOUNT_UPDATE`` reason (``a.m``) of an event that changes a wallet or a position."""
    if isinstance(event, OrderFilled | BlockTradeBooked | SpotBlockTradeBooked):
        return "ORDER"
    if isinstance(event, DepositApplied):
        return "DEPOSIT"
    if isinstance(event, WithdrawalApplied):
        return "WITHDRAW"
    if isinstance(event, FundingPaid):
        return "FUNDING_FEE"
    if isinstance(event, MarginModeChanged):
        return "MARGIN_TYPE_CHANGE"
    if isinstance(event, IsolatedMarginAdjusted):
        return "MARGIN_TRANSFER"
    if isinstance(event, InsuranceFundChanged):
        return None if event.reason == "COLLATERAL_CONVERSION" else "INSURANCE_CLEAR"  # AUTO_EXCHANGE
    if isinstance(event, PositionTransferred):
        return "ADL" if event.reason is TransferReason.ADL else "INSURANCE_CLEAR"
    if isinstance(event, PositionSettled):
        return "ADJUSTMENT"
    if isinstance(event, CollateralConverted):
        return "AUTO_EXCHANGE"  # Multi-Assets Mode: a liquidation sold collateral for the settlement asset
    if isinstance(event, LoanBorrowed | LoanRepaid):
        return "ASSET_TRANSFER"  # a secured loan paid out or repaid (lending_stream.py)
    return None


def _margin_call_row(
    market: MarketId, spec: MarketSpec, engine: Engine, isolated: bool, row: Any, atom: Any
) -> dict[str, Any]:
    return {
        "s": str(market),
        "ps": "BOTH",
        "pa": wire.qty(spec, row.qty_lots),
        "mt": "ISOLATED" if isolated else "CROSSED",
        "iw": wire.money(row.isolated_margin_atoms, atom),
        "mp": wire.price(spec, engine.marks.get(market, 0)),
        "up": wire.money(row.unrealized_pnl_atoms, atom),
        "mm": wire.money(row.maintenance_margin_atoms, atom),
    }


# ---------------------------------------------------------------------- lifecycle


async def on_start(ctx: ServerContext) -> None:
    stream = ctx.components.userstream
    stream.loop = asyncio.get_running_loop()
    stream.readmodel.publish = True
    stream._sweeper = asyncio.create_task(stream._sweep_forever())


async def on_stop(ctx: ServerContext) -> None:
    stream = ctx.components.userstream
    if stream._sweeper is not None:
        stream._sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stream._sweeper
        stream._sweeper = None
    for connections in list(stream.connections.values()):
        for connection in tuple(connections):
            stream._drop(connection, 1001, "the venue is shutting down")


# ---------------------------------------------------------------------- REST


async def _account(request: Request) -> tuple[UserStream, int]:
    key, _params = await keyed(request, "read")
    if key.account_id == INSURANCE_ACCOUNT:
        raise bad_key()
    stream = ctx_of(request).components.userstream
    return stream, int(key.account_id)


@router.post("/fapi/v1/listenKey")
async def create_listen_key(request: Request) -> dict[str, Any]:
    """Start a user data stream: a listenKey valid 60 minutes (the active one, extended, if any)."""
    stream, account_id = await _account(request)
    return {"listenKey": stream.create(account_id)}


@router.put("/fapi/v1/listenKey")
async def keepalive_listen_key(request: Request) -> dict[str, Any]:
    """Extend the account's active listenKey by 60 minutes."""
    stream, account_id = await _account(request)
    return {"listenKey": stream.extend(account_id)}


@router.delete("/fapi/v1/listenKey")
async def close_listen_key(request: Request) -> dict[str, Any]:
    """Close the account's user data stream."""
    stream, account_id = await _account(request)
    stream.delete(account_id)
    return {}


# ---------------------------------------------------------------------- WebSocket


@router.websocket("/private/ws")
async def private_ws(websocket: WebSocket) -> None:
    """The user data stream ccxt.pro 4.5.90 opens: ``/private/ws?listenKey=<key>``."""
    await serve_private(websocket, websocket.query_params.get("listenKey", ""), websocket.app.state.ctx)


async def serve_private(websocket: WebSocket, listen_key: str, ctx: ServerContext) -> None:
    """Serve one user data stream connection until the client leaves or the key expires.

    An unknown or expired key is refused before the handshake completes (HTTP 403).
    """
    stream = ctx.components.userstream
    try:
        connection = stream.attach(listen_key)
    except ApiError:
        await websocket.close(code=1008)
        return
    await websocket.accept()
    writer = asyncio.create_task(_write(websocket, connection))
    reader = asyncio.create_task(_read(websocket))
    try:
        await asyncio.wait({writer, reader}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stream._detach(connection)
        if connection.close_reason == SLOW_REASON:
            stream.slow_drops += 1
        else:
            stream.closed += 1
        for task in (writer, reader):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await task


async def _write(websocket: WebSocket, connection: Connection) -> None:
    while True:
        payload = await connection.queue.get()
        if payload is _CLOSE:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await websocket.close(code=connection.close_code, reason=connection.close_reason)
            return
        await websocket.send_text(json.dumps(payload, separators=(",", ":")))


async def _read(websocket: WebSocket) -> None:
    """Drain what the client sends (the stream takes no requests) until it disconnects."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
