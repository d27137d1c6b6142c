"""The WebSocket API's methods: each one a REST route's handler, called with the frame's parameters.

No method parses an order, checks an agent or builds a command itself: ``order.place`` is
:func:`perpx.server.trading.orders.place_plain_order` (the parser ``POST /fapi/v1/order``, batch
orders and FIX use, the agent guard, the sequencer), ``order.cancel`` is ``cancel_one``,
``order.modify`` is ``amend_order``, ``order.status`` is ``order_status``, the account methods are
the answers of ``/fapi/v2`` and ``/fapi/v3`` account routes, the user data stream methods are the
listenKey routes'. So a request gets the same answer and the same refusal on both interfaces.

==========================  ============================  ========  ======  ============================
method                      REST twin                     security  weight  parameters besides signing
==========================  ============================  ========  ======  ============================
``order.place``             ``POST /fapi/v1/order``       trade     1       the order's (a conditional
                                                                            type is -4120, as on REST)
``order.modify``            ``PUT /fapi/v1/order``        trade     1       symbol, orderId or
                                                                            origClientOrderId, side,
                                                                            quantity, price
``order.cancel``            ``DELETE /fapi/v1/order``     trade     1       symbol, orderId or
                                                                            origClientOrderId
``order.status``            ``GET /fapi/v1/order``        read      1       symbol, orderId or
                                                                            origClientOrderId
``account.balance``         ``GET /fapi/v2/balance``      read      5
``v2/account.balance``      ``GET /fapi/v3/balance``      read      5
``account.status``          ``GET /fapi/v2/account``      read      5
``v2/account.status``       ``GET /fapi/v3/account``      read      5
``account.position``        ``GET /fapi/v2/positionRisk`` read      5       symbol (optional)
``v2/account.position``     ``GET /fapi/v3/positionRisk`` read      5       symbol (optional)
``userDataStream.start``    ``POST /fapi/v1/listenKey``   key       1       apiKey only (no signature)
``userDataStream.ping``     ``PUT /fapi/v1/listenKey``    key       1       apiKey only
``userDataStream.stop``     ``DELETE /fapi/v1/listenKey`` key       1       apiKey only
``session.logon``           none                          key       2       refused -4056 (perpx keys
                                                                            are HMAC; Binance logs on
                                                                            with Ed25519 keys only)
``session.status``          none                          none      2
``session.logout``          none                          none      2
==========================  ============================  ========  ======  ============================

Every signed method also takes ``apiKey``, ``timestamp``, ``recvWindow``, ``signature`` and
``returnRateLimits``; any other parameter is refused with ``-1104`` naming it (REST ignores unknown
names; a frame's parameters are a closed set, so a misspelt one is caught).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from perpx.agents.guard import PREVIEW_FIELD
from perpx.engine.values import AccountId
from perpx.server.context import ServerContext
from perpx.server.rest import Params
from perpx.server.trading.account import (
    account_v2_answer,
    account_v3_answer,
    account_view,
    balances_answer,
    position_risk_v2_answer,
    position_risk_v3_answer,
)
from perpx.server.trading.orders import amend_order, cancel_one, order_status, place_plain_order

Handler = Callable[[ServerContext, AccountId, Mapping[str, str]], Awaitable[Any]]

SIGNING: Final = frozenset({"apiKey", "timestamp", "recvWindow", "signature", "returnRateLimits"})
"""The parameters every signed method takes besides its own."""
KEYED: Final = frozenset({"apiKey", "returnRateLimits"})

ORDER_NAMES: Final = frozenset(
    {
        "symbol",
        "side",
        "positionSide",
        "type",
        "timeInForce",
        "quantity",
        "reduceOnly",
        "price",
        "newClientOrderId",
        "stopPrice",
        "closePosition",
        "activationPrice",
        "callbackRate",
        "workingType",
        "priceProtect",
        "newOrderRespType",
        "priceMatch",
        "selfTradePreventionMode",
        "goodTillDate",
        PREVIEW_FIELD,
    }
)
"""``order.place``'s parameters: Binance's, and the agents' preview token (the shared parser refuses
the ones perpx does not support with their own codes, as on REST)."""
REFERENCE_NAMES: Final = frozenset({"symbol", "orderId", "origClientOrderId"})


@dataclass(frozen=True, slots=True)
class Method:
    """One method: its handler, how it is authenticated, its weight and the parameters it reads.

    ``security`` is ``"signed"`` (apiKey + timestamp + signature, with ``scope``), ``"keyed"``
    (apiKey only, as the listenKey routes) or ``"none"``. ``new_orders`` counts against the
    account's order-rate limits; ``ack_timed`` is observed as ``perpx_order_ack_seconds{interface="ws"}``.
    """

    handler: Handler
    security: str
    scope: str
    weight: int
    names: frozenset[str]
    new_orders: int = 0
    ack_timed: bool = False


async def _place(ctx: ServerContext, account_id: AccountId, values: Mapping[str, str]) -> Any:
    return await place_plain_order(ctx, account_id, values)


async def _modify(ctx: ServerContext, account_id: AccountId, values: Mapping[str, str]) -> Any:
    return await amend_order(ctx, account_id, values)


async def _cancel(ctx: ServerContext, account_id: AccountId, values: Mapping[str, str]) -> Any:
    return await cancel_one(ctx, account_id, values)


async def _status(ctx: ServerContext, account_id: AccountId, values: Mapping[str, str]) -> Any:
    return order_status(ctx, account_id, values)


async def _balance_v2(ctx: ServerContext, account_id: AccountId, values: Mapping[str, str]) -> Any:
    return balances_answer(await account_view(ctx, account_id))


async def _account_v2(ctx: ServerContext, account_id: AccountId, values: Mapping[str, str]) -> Any:
    return account_v2_answer(await account_view(ctx, account_id))


async def _account_v3(ctx: ServerContext, account_id: AccountId, values: Mapping[str, str]) -> Any:
    return account_v3_answer(await account_view(ctx, account_id))


async def _position_v2(ctx: ServerContext, account_id: AccountId, values: Mapping[str, str]) -> Any:
    view = await account_view(ctx, account_id)
    return position_risk_v2_answer(ctx, Params(dict(values), b"", b""), view)


async def _position_v3(ctx: ServerContext, account_id: AccountId, values: Mapping[str, str]) -> Any:
    view = await account_view(ctx, account_id)
    return position_risk_v3_answer(ctx, Params(dict(values), b"", b""), view)


async def _stream_start(ctx: ServerContext, account_id: AccountId, values: Mapping[str, str]) -> Any:
    return {"listenKey": ctx.components.userstream.create(int(account_id))}


async def _stream_ping(ctx: ServerContext, account_id: AccountId, values: Mapping[str, str]) -> Any:
    return {"listenKey": ctx.components.userstream.extend(int(account_id))}


async def _stream_stop(ctx: ServerContext, account_id: AccountId, values: Mapping[str, str]) -> Any:
    ctx.components.userstream.delete(int(account_id))
    return {}


_ACCOUNT = SIGNING
_POSITION = SIGNING | {"symbol"}

METHODS: Final[dict[str, Method]] = {
    "order.place": Method(_place, "signed", "trade", 1, SIGNING | ORDER_NAMES, new_orders=1, ack_timed=True),
    "order.modify": Method(
        _modify, "signed", "trade", 1, SIGNING | REFERENCE_NAMES | {"side", "quantity", "price", "priceMatch"}
    ),
    "order.cancel": Method(_cancel, "signed", "trade", 1, SIGNING | REFERENCE_NAMES, ack_timed=True),
    "order.status": Method(_status, "signed", "read", 1, SIGNING | REFERENCE_NAMES),
    "account.balance": Method(_balance_v2, "signed", "read", 5, _ACCOUNT),
    "v2/account.balance": Method(_balance_v2, "signed", "read", 5, _ACCOUNT),
    "account.status": Method(_account_v2, "signed", "read", 5, _ACCOUNT),
    "v2/account.status": Method(_account_v3, "signed", "read", 5, _ACCOUNT),
    "account.position": Method(_position_v2, "signed", "read", 5, _POSITION),
    "v2/account.position": Method(_position_v3, "signed", "read", 5, _POSITION),
    "userDataStream.start": Method(_stream_start, "keyed", "read", 1, KEYED),
    "userDataStream.ping": Method(_stream_ping, "keyed", "read", 1, KEYED),
    "userDataStream.stop": Method(_stream_stop, "keyed", "read", 1, KEYED),
}
"""Every method a request may name, but the ``session.*`` ones (:mod:`perpx.server.wsapi.session`)."""
