"""What every signed trading route shares: authentication, Binance parameters, the command's answer.

Parsers turn one wire parameter into an engine value or raise the Binance code a client acts on;
:func:`answer` and :func:`refused` read a command's result from its own events only.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TypeVar

from fastapi import Request

from perpx.engine.codes import RejectCode
from perpx.engine.commands import ConditionalType, StpMode, TimeInForce, WorkingType
from perpx.engine.config import MarketSpec
from perpx.engine.events import CommandRejected, ConditionalOrderRejected, Event, OrderRejected
from perpx.engine.liquidation import INSURANCE_ACCOUNT
from perpx.engine.values import RATE_SCALE, AccountId, Side
from perpx.server import wire
from perpx.server.context import ServerContext
from perpx.server.errors import ApiError, bad_key, bad_param, engine_refusal, service_unavailable
from perpx.server.orders_wire import OrderRecord
from perpx.server.readmodel import MAX_ROWS, ReadModel, apply_to_order
from perpx.server.rest import Params, ctx_of, signed
from perpx.server.sequencer import Applied

MAX_BATCH_ORDERS = 5
MAX_BATCH_CANCELS = 10
RESERVED_CLIENT_PREFIXES = ("perpx-", "autoclose-")
ORDER_TYPES = ("LIMIT", "MARKET", *(t.value for t in ConditionalType))
STP_MODES = tuple(m.value for m in StpMode)
CANCEL_ALL_DONE = {"code": 200, "msg": "The operation of cancel all open order is done."}
PERCENT_E8 = Decimal(100) / RATE_SCALE


# ---------------------------------------------------------------------- authentication and parameters


def readmodel_of(ctx: ServerContext) -> ReadModel:
    """The read model, if it is serving; ``503`` once it stopped (a restart catches it up)."""
    model = ctx.components.readmodel
    if model.failure is not None:
        raise service_unavailable(
            f"the read model stopped ({model.failure}); restart the venue to recover it"
        )
    return model


async def auth(request: Request, scope: str, weight: int = 1) -> tuple[ServerContext, AccountId, Params]:
    """Authenticate; the insurance fund's account is never reachable through a key."""
    key, params = await signed(request, scope, weight)
    if key.account_id == INSURANCE_ACCOUNT:
        raise bad_key()
    return ctx_of(request), key.account_id, params


def spec_of(ctx: ServerContext, values: Mapping[str, str]) -> MarketSpec:
    return wire.market_param(values, ctx.specs)


def optional_symbol(ctx: ServerContext, values: Mapping[str, str]) -> str | None:
    if not values.get("symbol"):
        return None
    return str(spec_of(ctx, values).market)


def refusal(code: RejectCode, message: str) -> ApiError:
    """An engine refusal; filter failures keep their own text (ccxt reads ``LOT_SIZE`` from it)."""
    if message.startswith("Filter failure"):
        return ApiError(400, int(code), message)
    if code is RejectCode.UNKNOWN_ORDER:
        return ApiError(400, -2011, "Unknown order sent.")
    return engine_refusal(code, message)


def unknown_order_sent() -> ApiError:
    return ApiError(400, -2011, "Unknown order sent.")


def no_answer(what: str) -> ApiError:
    return ApiError(500, -1000, f"An unknown error occurred: the engine answered the {what} with no result.")


def lots(spec: MarketSpec, values: Mapping[str, str], name: str) -> int | None:
    value = wire.decimal_param(values, name, optional=True)
    return None if value is None else wire.to_lots(spec, value, name)


def ticks(spec: MarketSpec, values: Mapping[str, str], name: str) -> int | None:
    value = wire.decimal_param(values, name, optional=True)
    return None if value is None else wire.to_ticks(spec, value, name)


def row_limit(values: Mapping[str, str], default: int, hi: int = MAX_ROWS) -> int:
    return wire.int_param(values, "limit", default=default, lo=1, hi=hi)


def client_id_of(values: Mapping[str, str], name: str) -> str | None:
    client_id = wire.client_id_param(values, name)
    if client_id is not None and client_id.startswith(RESERVED_CLIENT_PREFIXES):
        raise ApiError(
            400,
            -4015,
            f"Client order id is not valid: the prefixes {', '.join(RESERVED_CLIENT_PREFIXES)} are reserved by the venue.",
        )
    return client_id


def side_of(values: Mapping[str, str]) -> Side:
    return Side.BUY if wire.enum_param(values, "side", ("BUY", "SELL")) == "BUY" else Side.SELL


def one_way(values: Mapping[str, str]) -> None:
    position_side = values.get("positionSide")
    if position_side and position_side != "BOTH":
        raise ApiError(
            400,
            -4061,
            "Order's position side does not match user's setting. perpx runs one-way mode only:"
            " send positionSide BOTH (or omit it).",
        )


def unsupported(values: Mapping[str, str]) -> None:
    match = values.get("priceMatch")
    if match and match != "NONE":
        raise ApiError(400, -1102, "Parameter 'priceMatch' is not supported on perpx: send a price.")
    if values.get("goodTillDate"):
        raise ApiError(
            400, -1102, "Parameter 'goodTillDate' is not supported on perpx (no GTD time in force)."
        )


def tif_of(values: Mapping[str, str]) -> TimeInForce:
    text = values.get("timeInForce") or "GTC"
    if text == "GTD":
        raise ApiError(
            400, -1116, "Invalid timeInForce: GTD is not supported on perpx; use GTC, IOC, FOK or GTX."
        )
    if text not in TimeInForce.__members__:
        raise ApiError(400, -1116, f"Invalid timeInForce {text!r}; use GTC, IOC, FOK or GTX.")
    return TimeInForce(text)


def working_type_of(values: Mapping[str, str]) -> WorkingType:
    return WorkingType(
        wire.enum_param(values, "workingType", ("MARK_PRICE", "CONTRACT_PRICE"), "CONTRACT_PRICE")
    )


def stp_of(values: Mapping[str, str]) -> StpMode:
    return StpMode(wire.enum_param(values, "selfTradePreventionMode", STP_MODES, StpMode.EXPIRE_MAKER.value))


def callback_rate_e8(values: Mapping[str, str]) -> int | None:
    """Binance's ``callbackRate`` is a percent (``"1"`` = 1%)."""
    rate = wire.decimal_param(values, "callbackRate", optional=True)
    if rate is None:
        return None
    return wire.to_units(
        rate,
        PERCENT_E8,
        "callbackRate",
        lambda: bad_param("callbackRate", f"{rate} has more decimals than the venue keeps"),
    )


def order_type_of(values: Mapping[str, str]) -> str:
    text = wire.required(values, "type")
    if text not in ORDER_TYPES:
        raise ApiError(400, -1116, f"Invalid orderType {text!r}.")
    return text


def order_ref(values: Mapping[str, str]) -> tuple[int | None, str | None]:
    order_id = wire.id_param(values, "orderId")
    client_id = values.get("origClientOrderId") or None
    if order_id is None and client_id is None:
        raise ApiError(
            400, -1102, "Param 'orderId' or 'origClientOrderId' must be sent, but both were empty/null!"
        )
    return order_id, client_id


# ---------------------------------------------------------------------- the command's own answer

REFUSALS = (OrderRejected, ConditionalOrderRejected, CommandRejected)
"""The events a handler answers a command with when it refuses it."""

E = TypeVar("E", bound=Event)


def refused(applied: Applied) -> None:
    """Raise the command's refusal, if its handler refused it.

    A handler's first own event is its answer: an acceptance (or nothing, for a cancel-all that
    found nothing) or one of :data:`REFUSALS`. Events before it (work that was due) and after it
    (triggers, liquidations) belong to other commands' orders and are never read as the answer.
    """
    own = applied.events.own
    if own and isinstance(own[0], REFUSALS):
        raise refusal(own[0].code, own[0].message)


def answer(applied: Applied, accepted: type[E], what: str) -> E:
    """The command's acceptance event (its first own event); a refusal is raised as its ``ApiError``."""
    refused(applied)
    own = applied.events.own
    if own and isinstance(own[0], accepted):
        return own[0]
    raise no_answer(what)


def order_after(applied: Applied, record: OrderRecord, contract_atoms: int) -> OrderRecord:
    """``record`` as the command left it: its own events and its consequences folded in.

    The read model folds the same events the same way (:func:`perpx.server.readmodel.apply_to_order`),
    so the answer equals what a query sent after it returns, without reading SQLite back.
    """
    events = applied.events
    return apply_to_order(record, events[events.own_start :], contract_atoms)
