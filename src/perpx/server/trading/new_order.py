"""A new order's REST parameters, parsed once for every route that takes them.

``POST /fapi/v1/order``, each item of ``POST /fapi/v1/batchOrders``, the FIX gateway and
``POST /fapi/v1/order/test`` read the same parameters with the same parsers in the same order, so
the same bad parameter gets the same code and text everywhere:

1. :func:`order_head`: ``side``, ``type``, one-way mode (``positionSide``), the unsupported
   parameters, ``newOrderRespType``;
2. :func:`plain_command`: for LIMIT and MARKET, the client id, quantity, price, time in force,
   reduce-only and self-trade prevention, as the ``PlaceOrder`` the engine will be handed.

A conditional type is not a plain order: the REST routes refuse it with ``-4120``
(:func:`algo_type_refused`, Binance's answer since its algo-order migration); it is placed on
``/fapi/v1/algoOrder``.
"""

from __future__ import annotations

from collections.abc import Mapping

from perpx.engine.commands import OrderType, PlaceOrder, TimeInForce
from perpx.engine.config import MarketSpec
from perpx.engine.values import AccountId, ClientOrderId, Side
from perpx.server import wire
from perpx.server.errors import ApiError, mandatory
from perpx.server.trading.params import (
    client_id_of,
    lots,
    one_way,
    order_type_of,
    side_of,
    stp_of,
    ticks,
    tif_of,
    unsupported,
)


def algo_type_refused(kind: str) -> ApiError:
    """Binance's answer to a conditional type on the order routes (``-4120``)."""
    return ApiError(
        400,
        -4120,
        f"Order type not supported for this endpoint. Please use the Algo Order API endpoints instead:"
        f" send {kind} to POST /fapi/v1/algoOrder (algoType=CONDITIONAL, triggerPrice).",
    )


def order_head(values: Mapping[str, str]) -> tuple[Side, str, str]:
    """``(side, type, newOrderRespType)`` of a new order, after the one-way and unsupported checks."""
    side = side_of(values)
    kind = order_type_of(values)
    one_way(values)
    unsupported(values)
    respond = wire.enum_param(values, "newOrderRespType", ("ACK", "RESULT"), "ACK")
    return side, kind, respond


def plain_command(
    spec: MarketSpec, account_id: AccountId, side: Side, kind: str, values: Mapping[str, str]
) -> PlaceOrder:
    """The ``PlaceOrder`` (``ts_ns`` 0: the sequencer stamps it) of a LIMIT or MARKET order.

    Raises the order route's :class:`ApiError` for a parameter it refuses: no quantity, a LIMIT
    without a price, a MARKET with a price or post-only.
    """
    client_id = client_id_of(values, "newClientOrderId")
    order_type = OrderType(kind)
    qty = lots(spec, values, "quantity")
    if qty is None:
        raise mandatory("quantity")
    price = ticks(spec, values, "price")
    tif = tif_of(values)
    if order_type is OrderType.LIMIT and price is None:
        raise mandatory("price")
    if order_type is OrderType.MARKET:
        if price is not None:
            raise ApiError(400, -1106, "Parameter 'price' sent when not required.")
        if values.get("timeInForce") == "GTX":
            raise ApiError(400, -1116, "Invalid timeInForce: a MARKET order cannot be post-only (GTX).")
        tif = TimeInForce.GTC
    return PlaceOrder(
        ts_ns=0,
        account_id=account_id,
        market=spec.market,
        side=side,
        order_type=order_type,
        qty_lots=qty,
        price_ticks=price,
        tif=tif,
        reduce_only=wire.bool_param(values, "reduceOnly"),
        client_order_id=None if client_id is None else ClientOrderId(client_id),
        stp=stp_of(values),
    )
