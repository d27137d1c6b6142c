"""Binance's algo-service JSON: the algo order object and the sub-order object, from the service's state.

Field by field as Binance's ``/sapi/v1/algo/futures`` answers them (``openOrders`` and
``historicalOrders`` list the same object; ``subOrders`` lists children):

==================  ===================================================================================
``totalQty``        the parent's quantity, after rounding down to the lot size
``executedQty``     base executed by its children (the engine's parent table: journaled);
                    ``executedAmt`` the quote value of those fills (the read model)
``avgPrice``        ``executedAmt / executedQty`` (``"0"`` before the first fill)
``bookTime``        when it was accepted (ms, venue time); ``endTime`` when it ended (0 while working)
``algoStatus``      WORKING, FINISHED, CANCELLED, or EXPIRED (perpx: ended with a remainder)
``algoType``        TWAP or VP; a perpx parent (``POST /perpx/v1/algo``) shows its algorithm, e.g. POV
``reason``          perpx: why it ended (Binance has no such field)
==================  ===================================================================================

Quantities are formatted with the market's lot size, prices with its tick size, money with the
settlement asset's atom, as every other route does (:mod:`perpx.server.wire`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from perpx.engine.config import MarketSpec
from perpx.execution.childlog import PlaceRecord
from perpx.execution.venue import TimeInForce
from perpx.server import wire
from perpx.server.algos.service import Algo, AlgoService
from perpx.server.orders_wire import average_price

TIF_NAMES = {
    TimeInForce.GTC.value: "GOOD_TILL_CANCEL",
    TimeInForce.IOC.value: "IMMEDIATE_OR_CANCEL",
    TimeInForce.POST_ONLY.value: "POST_ONLY",
}


def algo_json(service: AlgoService, algo: Algo, spec: MarketSpec, atom: Decimal) -> dict[str, Any]:
    """One algo order object, as ``openOrders`` and ``historicalOrders`` list it."""
    rows = [row for row in service.child_rows(algo) if row is not None]
    lots = algo.row.executed_lots  # the engine's count, from the journal
    quote = sum(row.record.cum_quote_atoms for row in rows)
    parent = algo.created.parent
    return {
        "algoId": algo.algo_id,
        "symbol": parent.market,
        "side": parent.side.value.upper(),
        "positionSide": "BOTH",
        "totalQty": wire.qty(spec, algo.row.qty_lots),
        "executedQty": wire.qty(spec, lots),
        "executedAmt": wire.money(quote, atom),
        "avgPrice": average_price(quote, lots, spec, atom) if lots else "0",
        "clientAlgoId": parent.client_algo_id,
        "bookTime": algo.created.book_ms,
        "endTime": algo.end_ms,
        "algoStatus": algo.status.value,
        "algoType": algo.created.algo_type,
        "urgency": algo.created.urgency,
        "reason": algo.row.reason,
    }


def sub_orders_json(
    service: AlgoService, algo: Algo, spec: MarketSpec, atom: Decimal, asset: str, page: int, page_size: int
) -> dict[str, Any]:
    """``subOrders``: the children the venue accepted, in the order sent, one page of them."""
    places = {r.client_order_id: r for r in algo.records() if isinstance(r, PlaceRecord)}
    rows = [row for row in service.child_rows(algo) if row is not None]
    readmodel = service.ctx.components.readmodel
    account = algo.created.account_id
    items: list[dict[str, Any]] = []
    for row in rows[(page - 1) * page_size : page * page_size]:
        record = row.record
        fills = readmodel.trades(account, record.symbol, None, None, None, 1000, order_id=record.order_id)
        place = places.get(row.client_order_id)
        items.append(
            {
                "algoId": algo.algo_id,
                "orderId": record.order_id,
                "orderStatus": record.status,
                "executedQty": wire.qty(spec, record.executed_lots),
                "executedAmt": wire.money(record.cum_quote_atoms, atom),
                "feeAmt": wire.money(sum(t.fee_atoms for t in fills), atom),
                "feeAsset": asset,
                "bookTime": record.time_ms,
                "avgPrice": average_price(record.cum_quote_atoms, record.executed_lots, spec, atom)
                if record.executed_lots
                else "0",
                "side": record.side,
                "symbol": record.symbol,
                "subId": 1 + (place.index if place is not None else 0),
                "timeInForce": "IMMEDIATE_OR_CANCEL"
                if record.type == "MARKET"
                else TIF_NAMES.get(place.tif if place is not None else record.tif, record.tif),
                "origQty": wire.qty(spec, record.orig_qty_lots),
                "clientOrderId": record.client_order_id,
            }
        )
    return {
        "total": len(rows),
        "executedQty": wire.qty(spec, sum(r.record.executed_lots for r in rows)),
        "executedAmt": wire.money(sum(r.record.cum_quote_atoms for r in rows), atom),
        "subOrders": items,
    }
