"""The FIX gateway's venue side: orders in, execution reports out, on the same sequencer as REST.

Order messages reuse the REST order path (:func:`perpx.server.trading.orders.place_order` and its
siblings): a FIX order passes the same filters and is refused with the same code and text, which
travels in ``Text(58)``. Execution reports are made from the same ``ORDER_TRADE_UPDATE`` messages
the trading read model builds for the user data stream, so FIX, REST and WebSocket always agree
on an order's state.

Who gets a report: the session that placed the order (its ClOrdIDs are kept in the session store,
so a report made while the client is away, or after a restart, is stored for its resend), and
every logged-on drop-copy session (``DropCopy(9406)=Y``) of the account, whatever interface the
order came from.

==========  ================================================================================
in          what the gateway does
==========  ================================================================================
``D``       places the order (OrdType 1 market, 2 limit, 3 stop, 4 stop-limit; TimeInForce 1, 3,
            4; ExecInst ``6`` post-only, ``E`` reduce-only); a refusal is an ExecutionReport
            150=8 with the reason; acceptance and fills come as reports 150=0 and 150=F
``F``       cancels (OrderID(37) or OrigClOrdID(41)); a refusal is an OrderCancelReject 434=1
``G``       amends price and quantity; a refusal is an OrderCancelReject 434=2
``H``       an ExecutionReport 150=I with the order's state
``q``       cancels every open order of the symbol; answered by an OrderMassCancelReport ``r``
``V``       book snapshots ``W`` and incremental refreshes ``X`` (:mod:`perpx.fix.marketdata`)
``R``       the OTC desk's quote ``S`` (or ``AG``); a ``D`` with OrdType ``D`` and QuoteID(117)
            books that quote as a block trade (:mod:`perpx.server.otc_fix`)
other       BusinessMessageReject 380=3
==========  ================================================================================
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import time
from collections.abc import Mapping
from decimal import Decimal
from functools import partial
from typing import Any

from perpx.engine.commands import CancelAllOrders
from perpx.engine.values import AccountId, MarketId
from perpx.fix.acceptor import Acceptor, Connection
from perpx.fix.codec import Field, FixMessage
from perpx.fix.logon import KeyView, LogonLimiter, authenticator
from perpx.fix.marketdata import MarketDataDesk
from perpx.fix.store import SessionStore
from perpx.server import otc_fix
from perpx.server.context import ServerContext
from perpx.server.errors import ApiError
from perpx.server.trading.orders import amend_order, cancel_one, place_order
from perpx.server.trading.params import readmodel_of, refused, spec_of

log = logging.getLogger("perpx.fix")

SESSION_FILE = "fix.sqlite"
"""The FIX session store in the data directory (sequence numbers, sent messages, FIX-placed orders)."""

EXEC_TYPE = {"NEW": "0", "CANCELED": "4", "AMENDMENT": "5", "EXPIRED": "C", "TRADE": "F", "CALCULATED": "F"}
ORD_STATUS = {
    "NEW": "0",
    "PARTIALLY_FILLED": "1",
    "FILLED": "2",
    "CANCELED": "4",
    "EXPIRED": "C",
    "EXPIRED_IN_MATCH": "C",
    "REJECTED": "8",
}
ORD_TYPE_IN = {"1": "MARKET", "2": "LIMIT", "3": "STOP_MARKET", "4": "STOP"}
ORD_TYPE_OUT = {"MARKET": "1", "LIMIT": "2", "STOP_MARKET": "3", "STOP": "4"}
CONDITIONAL_TYPES = ("STOP_MARKET", "STOP")
TIF_IN = {"1": "GTC", "3": "IOC", "4": "FOK"}
TIF_OUT = {"GTC": "1", "IOC": "3", "FOK": "4", "GTX": "1"}
OPEN_STATUSES = ("NEW", "PARTIALLY_FILLED")
UNKNOWN_ORDER_CODES = (-2011, -2013)


class FixGateway:
    """The acceptor's :class:`~perpx.fix.acceptor.Application` on a running venue; see the module doc."""

    def __init__(self, ctx: ServerContext, sock: socket.socket) -> None:
        self.ctx = ctx
        self.sock = sock
        """The bound, listening socket (bound before the data directory was opened, as the others)."""
        host, port = sock.getsockname()[:2]
        self.host = str(host)
        self.port = int(port)
        self.store = SessionStore(ctx.data_dir / SESSION_FILE)
        self.acceptor = Acceptor(self.store, authenticator(self._key, LogonLimiter()), self)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.marketdata = MarketDataDesk(ctx)
        self._status_ids = itertools.count(1)
        self._boot = f"{time.time_ns():x}"
        """Makes the ExecIDs of rejects and status reports (not journal events) unique across restarts."""
        self._accounts: dict[str, AccountId] = {}
        """CompID -> account of every logged-on session."""
        self._known: dict[str, AccountId] = {}
        """CompID -> account of every session ever bound (its reports are stored while it is away)."""
        self._drop_copies: dict[int, set[str]] = {}
        self._pending: dict[tuple[int, str], str] = {}
        """``(account, clientOrderId)`` of an order being placed -> the CompID placing it."""
        self._requests: dict[int, tuple[str, str]] = {}
        """An order being cancelled or amended over FIX -> (the request's ClOrdID, the order's ClOrdID)."""

    # ------------------------------------------------------------------ lifetime

    async def start(self) -> int:
        """Listen for FIX clients (after the sequencer started); return the port."""
        self.loop = self.marketdata.loop = asyncio.get_running_loop()
        for comp_id, api_key in self.store.bindings():
            key = self.ctx.keys.get(api_key)
            if key is not None:
                self._known[comp_id] = key.account_id
        self._watch()
        await self.acceptor.start_on(self.sock)
        log.warning("fix: accepting FIX 4.4 on %s:%d (TargetCompID PERPX)", self.host, self.port)
        return self.port

    async def stop(self) -> None:
        """Close every FIX connection and stop listening (before the sequencer drains)."""
        await self.acceptor.close()

    def close(self) -> None:
        self.store.close()

    def resume_seq(self) -> int | None:
        return None

    def _key(self, api_key: str) -> KeyView | None:
        key = self.ctx.keys.get(api_key)
        return None if key is None else KeyView(key.api_key, key.secret, key.allows("trade"))

    # ------------------------------------------------------------------ sessions

    def on_logon(self, connection: Connection) -> None:
        key = self.ctx.keys.get(connection.api_key)
        if key is None:
            return
        self._accounts[connection.comp_id] = key.account_id
        self._known[connection.comp_id] = key.account_id
        logon = connection.session.logon
        if logon is not None and logon.get(9406) == "Y":
            self._drop_copies.setdefault(int(key.account_id), set()).add(connection.comp_id)
        self._watch()

    def on_close(self, connection: Connection) -> None:
        account = self._accounts.pop(connection.comp_id, None)
        self.marketdata.drop(connection.comp_id)
        if account is not None:
            self._drop_copies.get(account, set()).discard(connection.comp_id)
        self._watch()
        logon = connection.session.logon
        if account is not None and logon is not None and logon.get(8013) == "Y":
            asyncio.get_running_loop().create_task(self._cancel_on_disconnect(account, connection.comp_id))

    def _watch(self) -> None:
        model = readmodel_of(self.ctx)
        model.publish = True
        model.watch("fix", frozenset(self._known.values()))

    async def _cancel_on_disconnect(self, account: AccountId, comp_id: str) -> None:
        """``CancelOrdersOnDisconnect(8013)=Y``: cancel the account's open orders in every market."""
        for spec in self.ctx.specs.values():
            market = spec.market
            try:
                await self.ctx.seq.submit(partial(_cancel_all, account, market))
            except ApiError as exc:
                log.warning("fix %s: cancel on disconnect in %s failed: %s", comp_id, market, exc.msg)

    # ------------------------------------------------------------------ application messages

    async def on_message(self, connection: Connection, message: FixMessage) -> None:
        kind = message.msg_type
        account = self._accounts.get(connection.comp_id)
        key = self.ctx.keys.get(connection.api_key)
        if account is None or key is None:
            self._business_reject(connection, message, 4, "the session has no account")
            return
        if kind in ("D", "F", "G", "q", "R"):
            logon = connection.session.logon
            if logon is not None and logon.get(9406) == "Y":
                self._business_reject(connection, message, 6, "a drop-copy session may not send orders")
                return
            if not key.allows("trade"):
                self._business_reject(connection, message, 6, "the API key lacks the trade scope")
                return
        if kind == "D":
            with self.ctx.components.metrics.order_ack_timer("fix"):
                await self._new_order(connection, account, message)
        elif kind == "F":
            with self.ctx.components.metrics.order_ack_timer("fix"):
                await self._cancel(connection, account, message)
        elif kind == "G":
            await self._replace(connection, account, message)
        elif kind == "H":
            self._status(connection, account, message)
        elif kind == "q":
            await self._mass_cancel(connection, account, message)
        elif kind == "V":
            await self.marketdata.request(connection.comp_id, message, connection.send_app)
        elif kind == "R":
            await otc_fix.quote_request(self.ctx, connection, int(account), message)
        else:
            self._business_reject(connection, message, 3, f"unsupported message type {kind}")

    async def _new_order(self, connection: Connection, account: AccountId, message: FixMessage) -> None:
        if message.get(40) == "D":  # previously quoted: the OTC desk books the quote (perpx.server.otc_fix)
            await otc_fix.quoted_order(self.ctx, connection, int(account), message, self._exec_id("reject"))
            return
        cl_ord_id = message.get(11) or ""
        if message.get(43) == "Y" and cl_ord_id and self._known_order(account, message) is not None:
            self._status(connection, account, message)  # a resent order already placed: its state
            return
        try:
            self.ctx.components.limits.count_account_orders(account)  # REST's order limits hold on FIX too
        except ApiError as exc:
            connection.send_app("8", _rejection(message, exc, self._exec_id("reject")))
            return
        values = _order_values(message)
        self._pending[(account, cl_ord_id)] = connection.comp_id
        try:
            answer = await place_order(self.ctx, account, values)
        except ApiError as exc:
            self._pending.pop((account, cl_ord_id), None)
            connection.send_app("8", _rejection(message, exc, self._exec_id("reject")))
            return
        if values["type"] in CONDITIONAL_TYPES:  # no order exists until it triggers; answered as its algo id
            self._pending.pop((account, cl_ord_id), None)
            self.store.own_algo(int(answer["orderId"]), connection.comp_id, cl_ord_id)
            connection.send_app("8", _conditional_new(message, answer))

    async def _cancel(self, connection: Connection, account: AccountId, message: FixMessage) -> None:
        values = self._reference(connection, message)
        target = self._target(account, values)
        if target is not None:
            self._requests[target] = (message.get(11) or "", message.get(41) or "")
        try:
            await cancel_one(self.ctx, account, values)
        except ApiError as exc:
            connection.send_app("9", _cancel_reject(message, exc, "1"))
        finally:
            if target is not None:
                self._requests.pop(target, None)

    async def _replace(self, connection: Connection, account: AccountId, message: FixMessage) -> None:
        values = {
            **self._reference(connection, message),
            "side": _side(message),
            "quantity": message.get(38) or "",
            "price": message.get(44) or "",
        }
        target = self._target(account, values)
        if target is not None:
            self._requests[target] = (message.get(11) or "", message.get(41) or "")
        try:
            await amend_order(self.ctx, account, values)
        except ApiError as exc:
            connection.send_app("9", _cancel_reject(message, exc, "2"))
        finally:
            if target is not None:
                self._requests.pop(target, None)

    def _exec_id(self, kind: str) -> str:
        """A unique ExecID for a report no journal event makes (a reject, a status): never reused."""
        return f"{kind}-{self.ctx.seq.last_seq}-{self._boot}-{next(self._status_ids)}"

    def _reference(self, connection: Connection, message: FixMessage) -> dict[str, str]:
        """The order a F, G or H names; a ClOrdID given by a replace (G) names the order it renamed.

        REST knows an order by the clientOrderId it was placed with; FIX clients name it by the
        ClOrdID of the last accepted replace, which only this session's store knows.
        """
        values = _reference(message)
        named = values.get("origClientOrderId")
        if named is not None:
            order_id = self.store.order_named(connection.comp_id, named)
            if order_id is not None:
                del values["origClientOrderId"]
                values["orderId"] = str(order_id)
        return values

    def _target(self, account: AccountId, values: Mapping[str, str]) -> int | None:
        """The order id a cancel or replace names, if the read model knows it."""
        try:
            spec = spec_of(self.ctx, values)
        except ApiError:
            return None
        order_id = int(values["orderId"]) if values.get("orderId", "").isdigit() else None
        record = readmodel_of(self.ctx).order(
            account, str(spec.market), order_id, values.get("origClientOrderId")
        )
        return None if record is None else record.order_id

    def _known_order(self, account: AccountId, message: FixMessage) -> int | None:
        try:
            spec = spec_of(self.ctx, {"symbol": message.get(55) or ""})
        except ApiError:
            return None
        record = readmodel_of(self.ctx).order(account, str(spec.market), None, message.get(11))
        return None if record is None else record.order_id

    def _status(self, connection: Connection, account: AccountId, message: FixMessage) -> None:
        values = self._reference(connection, message)
        try:
            spec = spec_of(self.ctx, values)
        except ApiError as exc:
            connection.send_app("8", _rejection(message, exc, self._exec_id("reject")))
            return
        order_id = int(values["orderId"]) if values.get("orderId", "").isdigit() else None
        record = readmodel_of(self.ctx).order(
            account, str(spec.market), order_id, values.get("origClientOrderId")
        )
        if record is None:
            connection.send_app(
                "8",
                _rejection(message, ApiError(400, -2013, "Order does not exist."), self._exec_id("reject")),
            )
            return
        from perpx.server.orders_wire import order_json

        body = order_json(record, spec, self.ctx.atom)
        fields = _report_fields(
            exec_id=self._exec_id(f"status-{record.order_id}"),
            exec_type="I",
            order=body,
            cl_ord_id=self._cl_ord_id(record.order_id, {"c": body.get("clientOrderId")}),
        )
        if message.get(790):
            fields.append((790, message.get(790) or ""))
        connection.send_app("8", tuple(fields))

    async def _mass_cancel(self, connection: Connection, account: AccountId, message: FixMessage) -> None:
        symbol = message.get(55) or ""
        base: list[Field] = [(11, message.get(11) or "?"), (37, "NONE"), (530, message.get(530) or "1")]
        try:
            spec = spec_of(self.ctx, {"symbol": symbol})
            market = spec.market
            open_before = len(readmodel_of(self.ctx).open_orders(account, str(market)))
            applied = await self.ctx.seq.submit(
                lambda ts: CancelAllOrders(ts_ns=ts, account_id=account, market=market)
            )
            refused(applied)
        except ApiError as exc:
            connection.send_app("r", (*base, (531, "0"), (55, symbol or "?"), (58, exc.msg)))
            return
        connection.send_app("r", (*base, (531, "1"), (533, str(open_before)), (55, symbol)))

    def _business_reject(self, connection: Connection, message: FixMessage, reason: int, text: str) -> None:
        if message.msg_type in ("3", "j"):
            return
        connection.send_app(
            "j",
            ((45, message.get(34) or "0"), (372, message.msg_type or "?"), (380, str(reason)), (58, text)),
        )

    # ------------------------------------------------------------------ reports

    def on_order_messages(self, messages: list[tuple[int, int, dict[str, Any]]]) -> None:
        """The read model's order messages of a batch (journal thread): reports, handed to the loop."""
        if not self._known or self.loop is None or not messages:
            return
        wanted = set(self._known.values())
        mine = [
            (seq, account, payload)
            for seq, account, payload in messages
            if account in wanted and payload.get("e") in ("ORDER_TRADE_UPDATE", "ALGO_UPDATE")
        ]
        if mine:
            self.loop.call_soon_threadsafe(self._deliver, mine)

    def _deliver(self, messages: list[tuple[int, int, dict[str, Any]]]) -> None:
        for _seq, _account, payload in messages:  # first: the orders FIX-placed conditional orders made
            if payload["e"] == "ALGO_UPDATE" and payload["o"].get("ai"):
                owned = self.store.algo_owner(int(payload["o"]["aid"]))
                if owned is not None and self.store.order_owner(int(payload["o"]["ai"])) is None:
                    self.store.own_order(int(payload["o"]["ai"]), *owned)
        counters: dict[tuple[int, int], int] = {}
        for seq, account, payload in messages:
            if payload["e"] != "ORDER_TRADE_UPDATE":
                continue
            order = payload["o"]
            order_id = int(order["i"])
            count = counters[(seq, order_id)] = counters.get((seq, order_id), 0) + 1
            owner = self._owner(account, order_id, str(order.get("c") or ""))
            cl_ord_id, orig = self._requests.get(order_id, (self._cl_ord_id(order_id, order), ""))
            fields = _report_fields(
                exec_id=f"{seq}-{order_id}-{count}",
                exec_type=EXEC_TYPE.get(order["x"], "I"),
                order=_as_order(order),
                cl_ord_id=cl_ord_id,
                fill=order if order["x"] in ("TRADE", "CALCULATED") else None,
            )
            if orig:
                fields.append((41, orig))
            if order_id in self._requests and order["x"] in ("CANCELED", "AMENDMENT"):
                self.store.own_order(order_id, owner or "", cl_ord_id)
            recipients = set(self._drop_copies.get(account, set()))
            if owner:
                recipients.add(owner)
            for comp_id in sorted(recipients):
                self.acceptor.deliver(comp_id, "8", tuple(fields))

    def _owner(self, account: int, order_id: int, client_id: str) -> str | None:
        owned = self.store.order_owner(order_id)
        if owned is not None:
            return owned[0]
        comp_id = self._pending.pop((account, client_id), None)
        if comp_id is not None:
            self.store.own_order(order_id, comp_id, client_id)
        return comp_id

    def _cl_ord_id(self, order_id: int, order: Mapping[str, Any]) -> str:
        owned = self.store.order_owner(order_id)
        return owned[1] if owned is not None and owned[1] else str(order.get("c") or "")


def _cancel_all(account: AccountId, market: MarketId, ts_ns: int) -> CancelAllOrders:
    return CancelAllOrders(ts_ns=ts_ns, account_id=account, market=market)


def _side(message: FixMessage) -> str:
    return {"1": "BUY", "2": "SELL"}.get(message.get(54) or "", message.get(54) or "")


def _order_values(message: FixMessage) -> dict[str, str]:
    """A NewOrderSingle as the REST order parameters (what REST would refuse, FIX refuses alike)."""
    values: dict[str, str] = {"symbol": message.get(55) or "", "side": _side(message)}
    kind = message.get(40) or ""
    values["type"] = ORD_TYPE_IN.get(kind, f"OrdType({kind})")
    if message.get(38):
        values["quantity"] = message.get(38) or ""
    if message.get(44):
        values["price"] = message.get(44) or ""
    if message.get(99):
        values["stopPrice"] = message.get(99) or ""
    if message.get(11):
        values["newClientOrderId"] = message.get(11) or ""
    exec_inst = (message.get(18) or "").split()
    if values["type"] != "MARKET" and (values["type"] in ("LIMIT", "STOP")):
        values["timeInForce"] = "GTX" if "6" in exec_inst else TIF_IN.get(message.get(59) or "1", "GTC")
    if "E" in exec_inst:
        values["reduceOnly"] = "true"
    values["newOrderRespType"] = "ACK"
    return values


def _reference(message: FixMessage) -> dict[str, str]:
    values = {"symbol": message.get(55) or ""}
    if message.get(37) and message.get(37) != "NONE":
        values["orderId"] = message.get(37) or ""
    elif message.get(41):
        values["origClientOrderId"] = message.get(41) or ""
    elif message.get(11):
        values["origClientOrderId"] = message.get(11) or ""
    return values


def _as_order(update: Mapping[str, Any]) -> dict[str, Any]:
    """An ``ORDER_TRADE_UPDATE`` body as the fields of an order object :func:`_report_fields` reads."""
    return {
        "orderId": update["i"],
        "symbol": update["s"],
        "side": update["S"],
        "type": update["o"],
        "timeInForce": update["f"],
        "origQty": update["q"],
        "price": update["p"],
        "avgPrice": update["ap"],
        "executedQty": update["z"],
        "status": update["X"],
        "stopPrice": update["sp"],
        "updateTime": update["T"],
    }


def _report_fields(
    *,
    exec_id: str,
    exec_type: str,
    order: Mapping[str, Any],
    cl_ord_id: str,
    fill: Mapping[str, Any] | None = None,
) -> list[Field]:
    status = str(order["status"])
    qty = Decimal(str(order["origQty"]))
    cum = Decimal(str(order["executedQty"]))
    leaves = qty - cum if status in OPEN_STATUSES else Decimal(0)
    fields: list[Field] = [(37, str(order["orderId"]))]
    if cl_ord_id:
        fields.append((11, cl_ord_id))
    fields += [
        (17, exec_id),
        (150, exec_type),
        (39, ORD_STATUS.get(status, "0")),
        (55, str(order["symbol"])),
        (54, "1" if order["side"] == "BUY" else "2"),
        (38, _text(qty)),
        (40, ORD_TYPE_OUT.get(str(order["type"]), "2")),
    ]
    if Decimal(str(order["price"])) != 0:
        fields.append((44, str(order["price"])))
    if Decimal(str(order.get("stopPrice") or "0")) != 0:
        fields.append((99, str(order["stopPrice"])))
    fields.append((59, TIF_OUT.get(str(order["timeInForce"]), "1")))
    if order.get("timeInForce") == "GTX":
        fields.append((18, "6"))
    if fill is not None:
        fields += [(32, str(fill["l"])), (31, str(fill["L"]))]
    fields += [(151, _text(leaves)), (14, _text(cum)), (6, str(order["avgPrice"]))]
    if fill is not None:
        fields += [(12, str(fill["n"])), (13, "3"), (1057, "N" if fill.get("m") else "Y")]
    return fields


def _text(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"


def _rejection(message: FixMessage, error: ApiError, exec_id: str) -> tuple[Field, ...]:
    """ExecutionReport 150=8 for an order the venue refused; Text(58) is REST's reason, code first."""
    reason = "1" if error.code == -1121 else "99"
    fields: list[Field] = [(37, "NONE")]
    if message.get(11):
        fields.append((11, message.get(11) or ""))
    fields += [
        (17, exec_id),
        (150, "8"),
        (39, "8"),
        (55, message.get(55) or "?"),
        (54, message.get(54) or "1"),
        (151, "0"),
        (14, "0"),
        (6, "0"),
        (103, reason),
        (58, f"{error.code}: {error.msg}"),
    ]
    return tuple(fields)


def _conditional_new(message: FixMessage, answer: Mapping[str, Any]) -> tuple[Field, ...]:
    fields: list[Field] = [
        (37, f"algo-{answer['orderId']}"),
        (11, message.get(11) or ""),
        (17, f"algo-{answer['orderId']}-new"),
        (150, "0"),
        (39, "0"),
        (55, message.get(55) or ""),
        (54, message.get(54) or ""),
        (38, message.get(38) or "0"),
        (40, message.get(40) or ""),
        (151, message.get(38) or "0"),
        (14, "0"),
        (6, "0"),
    ]
    if message.get(99):
        fields.append((99, message.get(99) or ""))
    return tuple(fields)


def _cancel_reject(message: FixMessage, error: ApiError, response_to: str) -> tuple[Field, ...]:
    reason = "1" if error.code in UNKNOWN_ORDER_CODES else "99"
    return (
        (37, message.get(37) or "NONE"),
        (11, message.get(11) or "?"),
        (41, message.get(41) or "?"),
        (39, "8"),
        (434, response_to),
        (102, reason),
        (58, f"{error.code}: {error.msg}"),
    )
