"""Orders, algo orders, trades and income as Binance USDS-M sends them, from the read model's records.

One module builds every order-shaped JSON object, so the REST answers
(``/fapi/v1/order``, ``openOrders``, ``allOrders``, ``algoOrder``) and the
user data stream (``ORDER_TRADE_UPDATE``, ``ALGO_UPDATE``) always agree.

Records hold integers (ticks, lots, atoms, venue milliseconds); this module is
the only place they become Binance's decimal strings. Conventions:

=====================  =====================================================
field                  rule
=====================  =====================================================
prices, quantities     strings, ``"0"`` for none (a MARKET order's price)
ids, times             integers; times in venue milliseconds
``clientOrderId``      the client's, or ``perpx-<orderId>`` when it gave none
``avgPrice``           ``cumQuote / executedQty``, 8 decimals, half-even
``positionSide``       always ``BOTH`` (one-way mode only)
=====================  =====================================================
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from perpx.engine.config import MarketSpec
from perpx.server import wire

OPEN_STATUSES = ("NEW", "PARTIALLY_FILLED")
"""Statuses of an order still on the book."""

ALGO_OPEN_STATUSES = ("NEW",)
"""Statuses of a conditional order still waiting for its trigger."""

_AVG_PLACES = Decimal(10) ** -8


def default_client_order_id(order_id: int) -> str:
    """The client order id shown for an order placed without one (deterministic: from its id)."""
    return f"perpx-{order_id}"


def default_client_algo_id(algo_id: int) -> str:
    """The client algo id shown for a conditional order placed without one."""
    return f"perpx-algo-{algo_id}"


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """One order as the read model keeps it (open or closed)."""

    order_id: int
    account_id: int
    symbol: str
    client_order_id: str
    side: str
    type: str
    orig_type: str
    tif: str
    price_ticks: int | None
    orig_qty_lots: int
    executed_lots: int
    cum_quote_atoms: int
    status: str
    reduce_only: bool
    close_position: bool
    stop_price_ticks: int | None
    working_type: str
    price_protect: bool
    stp: str
    time_ms: int
    update_ms: int
    algo_id: int | None = None
    liquidation: bool = False
    activation_price_ticks: int | None = None
    callback_rate_e8: int | None = None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def evolve(self, **changes: Any) -> OrderRecord:
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class AlgoRecord:
    """One conditional (algo) order as the read model keeps it."""

    algo_id: int
    account_id: int
    symbol: str
    client_algo_id: str
    side: str
    order_type: str
    qty_lots: int | None
    trigger_price_ticks: int | None
    price_ticks: int | None
    tif: str
    working_type: str
    reduce_only: bool
    close_position: bool
    price_protect: bool
    activation_price_ticks: int | None
    callback_rate_e8: int | None
    stp: str
    status: str
    actual_order_id: int | None
    create_ms: int
    update_ms: int
    trigger_ms: int

    @property
    def is_open(self) -> bool:
        return self.status in ALGO_OPEN_STATUSES

    def evolve(self, **changes: Any) -> AlgoRecord:
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class TradeRecord:
    """One side of one trade, as ``userTrades`` lists it."""

    trade_id: int
    account_id: int
    order_id: int
    symbol: str
    side: str
    price_ticks: int
    qty_lots: int
    quote_atoms: int
    realized_pnl_atoms: int
    fee_atoms: int
    time_ms: int
    maker: bool


@dataclass(frozen=True, slots=True)
class IncomeRecord:
    """One ``/fapi/v1/income`` row: a change to the account's wallet and why."""

    tran_id: int
    account_id: int
    symbol: str
    income_type: str
    income_atoms: int
    asset: str
    info: str
    time_ms: int
    trade_id: str


def average_price(cum_quote_atoms: int, executed_lots: int, spec: MarketSpec, atom: Decimal) -> str:
    """``cumQuote / executedQty`` as a price string (``"0"`` before the first fill)."""
    if executed_lots == 0:
        return "0"
    value = (Decimal(cum_quote_atoms) * atom) / (Decimal(executed_lots) * spec.lot_size)
    return plain(value.quantize(_AVG_PLACES, rounding=ROUND_HALF_EVEN))


def plain(value: Decimal) -> str:
    """A Decimal as plain text without exponent or trailing zeros."""
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def rate_percent(rate_e8: int | None) -> str:
    """A ``_e8`` rate as Binance's percent string (callbackRate ``"1"`` = 1%)."""
    if rate_e8 is None:
        return "0"
    return plain(Decimal(rate_e8) / Decimal(10**6))


def order_json(record: OrderRecord, spec: MarketSpec, atom: Decimal) -> dict[str, Any]:
    """The order object of ``/fapi/v1/order`` (POST/GET/DELETE), ``openOrders`` and ``allOrders``."""
    executed = wire.qty(spec, record.executed_lots)
    return {
        "orderId": record.order_id,
        "symbol": record.symbol,
        "status": record.status,
        "clientOrderId": record.client_order_id,
        "price": wire.price(spec, record.price_ticks),
        "avgPrice": average_price(record.cum_quote_atoms, record.executed_lots, spec, atom),
        "origQty": wire.qty(spec, record.orig_qty_lots),
        "executedQty": executed,
        "cumQty": executed,
        "cumQuote": wire.money(record.cum_quote_atoms, atom),
        "timeInForce": record.tif,
        "type": record.type,
        "reduceOnly": record.reduce_only,
        "closePosition": record.close_position,
        "side": record.side,
        "positionSide": "BOTH",
        "stopPrice": wire.price(spec, record.stop_price_ticks),
        "workingType": record.working_type,
        "priceProtect": record.price_protect,
        "origType": record.orig_type,
        "priceMatch": "NONE",
        "selfTradePreventionMode": record.stp,
        "goodTillDate": 0,
        "time": record.time_ms,
        "updateTime": record.update_ms,
        **_trailing_fields(record.activation_price_ticks, record.callback_rate_e8, spec),
    }


def _trailing_fields(activation_ticks: int | None, rate_e8: int | None, spec: MarketSpec) -> dict[str, str]:
    if rate_e8 is None:
        return {}
    return {"activatePrice": wire.price(spec, activation_ticks), "priceRate": rate_percent(rate_e8)}


@dataclass(frozen=True, slots=True)
class Fill:
    """The last fill of an ``ORDER_TRADE_UPDATE`` with ``x=TRADE`` (or ``CALCULATED``)."""

    trade_id: int
    price_ticks: int
    qty_lots: int
    fee_atoms: int
    realized_pnl_atoms: int
    maker: bool


def order_update_json(
    record: OrderRecord,
    spec: MarketSpec,
    atom: Decimal,
    asset: str,
    execution: str,
    event_ms: int,
    fill: Fill | None = None,
    bids_atoms: int = 0,
    asks_atoms: int = 0,
) -> dict[str, Any]:
    """``ORDER_TRADE_UPDATE``: ``execution`` is ``x`` (NEW, TRADE, CANCELED, EXPIRED, AMENDMENT, CALCULATED)."""
    status = "EXPIRED_IN_MATCH" if record.status == "EXPIRED_IN_MATCH" else record.status
    body: dict[str, Any] = {
        "s": record.symbol,
        "c": record.client_order_id,
        "S": record.side,
        "o": record.type,
        "f": record.tif,
        "q": wire.qty(spec, record.orig_qty_lots),
        "p": wire.price(spec, record.price_ticks),
        "ap": average_price(record.cum_quote_atoms, record.executed_lots, spec, atom),
        "sp": wire.price(spec, record.stop_price_ticks),
        "x": execution,
        "X": status,
        "i": record.order_id,
        "l": wire.qty(spec, fill.qty_lots) if fill else "0",
        "z": wire.qty(spec, record.executed_lots),
        "L": wire.price(spec, fill.price_ticks) if fill else "0",
        "n": wire.money(fill.fee_atoms, atom) if fill else "0",
        "N": asset,
        "T": event_ms,
        "t": fill.trade_id if fill else 0,
        "b": wire.money(bids_atoms, atom),
        "a": wire.money(asks_atoms, atom),
        "m": fill.maker if fill else False,
        "R": record.reduce_only,
        "wt": record.working_type,
        "ot": record.orig_type,
        "ps": "BOTH",
        "cp": record.close_position,
        "rp": wire.money(fill.realized_pnl_atoms, atom) if fill else "0",
        "pP": record.price_protect,
        "si": 0,
        "ss": 0,
        "V": record.stp,
        "pm": "NONE",
        "gtd": 0,
    }
    if record.callback_rate_e8 is not None:
        body["AP"] = wire.price(spec, record.activation_price_ticks)
        body["cr"] = rate_percent(record.callback_rate_e8)
    return {"e": "ORDER_TRADE_UPDATE", "E": event_ms, "T": event_ms, "o": body}


def algo_json(record: AlgoRecord, spec: MarketSpec) -> dict[str, Any]:
    """The algo object of ``/fapi/v1/algoOrder`` (POST/GET), ``openAlgoOrders`` and ``allAlgoOrders``."""
    return {
        "algoId": record.algo_id,
        "clientAlgoId": record.client_algo_id,
        "algoType": "CONDITIONAL",
        "orderType": record.order_type,
        "symbol": record.symbol,
        "side": record.side,
        "positionSide": "BOTH",
        "timeInForce": record.tif,
        "quantity": wire.qty(spec, record.qty_lots or 0),
        "algoStatus": record.status,
        "actualOrderId": "" if record.actual_order_id is None else str(record.actual_order_id),
        "triggerPrice": wire.price(spec, record.trigger_price_ticks),
        "price": wire.price(spec, record.price_ticks),
        "icebergQuantity": None,
        "selfTradePreventionMode": record.stp,
        "workingType": record.working_type,
        "priceMatch": "NONE",
        "closePosition": record.close_position,
        "priceProtect": record.price_protect,
        "reduceOnly": record.reduce_only,
        "activatePrice": wire.price(spec, record.activation_price_ticks),
        "callbackRate": rate_percent(record.callback_rate_e8),
        "createTime": record.create_ms,
        "updateTime": record.update_ms,
        "triggerTime": record.trigger_ms,
        "goodTillDate": 0,
    }


def algo_as_order_json(record: AlgoRecord, spec: MarketSpec) -> dict[str, Any]:
    """A conditional order placed through ``POST /fapi/v1/order`` (ccxt before 4.5.90): order-shaped.

    ``orderId`` is the algo id: later queries of it go to ``/fapi/v1/algoOrder``.
    """
    return {
        "orderId": record.algo_id,
        "symbol": record.symbol,
        "status": "NEW" if record.is_open else record.status,
        "clientOrderId": record.client_algo_id,
        "price": wire.price(spec, record.price_ticks),
        "avgPrice": "0",
        "origQty": wire.qty(spec, record.qty_lots or 0),
        "executedQty": "0",
        "cumQty": "0",
        "cumQuote": "0",
        "timeInForce": record.tif,
        "type": record.order_type,
        "reduceOnly": record.reduce_only,
        "closePosition": record.close_position,
        "side": record.side,
        "positionSide": "BOTH",
        "stopPrice": wire.price(spec, record.trigger_price_ticks),
        "workingType": record.working_type,
        "priceProtect": record.price_protect,
        "origType": record.order_type,
        "priceMatch": "NONE",
        "selfTradePreventionMode": record.stp,
        "goodTillDate": 0,
        "time": record.create_ms,
        "updateTime": record.update_ms,
        **_trailing_fields(record.activation_price_ticks, record.callback_rate_e8, spec),
    }


def algo_update_json(record: AlgoRecord, spec: MarketSpec, event_ms: int) -> dict[str, Any]:
    """``ALGO_UPDATE`` of the user data stream."""
    return {
        "e": "ALGO_UPDATE",
        "E": event_ms,
        "T": event_ms,
        "o": {
            "caid": record.client_algo_id,
            "aid": record.algo_id,
            "at": "CONDITIONAL",
            "o": record.order_type,
            "s": record.symbol,
            "S": record.side,
            "ps": "BOTH",
            "f": record.tif,
            "q": wire.qty(spec, record.qty_lots or 0),
            "X": record.status,
            "ai": "" if record.actual_order_id is None else str(record.actual_order_id),
            "tp": wire.price(spec, record.trigger_price_ticks),
            "p": wire.price(spec, record.price_ticks),
            "wt": record.working_type,
            "cp": record.close_position,
            "pP": record.price_protect,
            "R": record.reduce_only,
            "V": record.stp,
            "tt": record.trigger_ms,
            "gtd": 0,
        },
    }


def trade_json(record: TradeRecord, spec: MarketSpec, atom: Decimal, asset: str) -> dict[str, Any]:
    """One element of ``/fapi/v1/userTrades``."""
    return {
        "symbol": record.symbol,
        "id": record.trade_id,
        "orderId": record.order_id,
        "side": record.side,
        "price": wire.price(spec, record.price_ticks),
        "qty": wire.qty(spec, record.qty_lots),
        "realizedPnl": wire.money(record.realized_pnl_atoms, atom),
        "marginAsset": asset,
        "quoteQty": wire.money(record.quote_atoms, atom),
        "commission": wire.money(record.fee_atoms, atom),
        "commissionAsset": asset,
        "time": record.time_ms,
        "positionSide": "BOTH",
        "buyer": record.side == "BUY",
        "maker": record.maker,
    }


def income_json(record: IncomeRecord, atom: Decimal) -> dict[str, Any]:
    """One element of ``/fapi/v1/income``."""
    return {
        "symbol": record.symbol,
        "incomeType": record.income_type,
        "income": wire.money(record.income_atoms, atom),
        "asset": record.asset,
        "info": record.info,
        "time": record.time_ms,
        "tranId": record.tran_id,
        "tradeId": record.trade_id,
    }
