"""The OTC desk over FIX 4.4: QuoteRequest (R) -> Quote (S), and NewOrderSingle (D) on a QuoteID.

The same desk as the REST routes (:func:`perpx.server.otc_routes.quote_for` and
:func:`~perpx.server.otc_routes.book_quote`), so the same model, checks, codes and records:

* ``R``: ``QuoteReqID(131)``, one ``NoRelatedSym(146)`` entry with ``Symbol(55)``, ``OrderQty(38)``
  and ``Side(54)`` (1 buy, 2 sell; absent for a two-way price). Answered with ``S``:
  ``QuoteID(117)``, ``BidPx(132)``/``OfferPx(133)`` and their sizes, ``ValidUntilTime(62)`` (venue
  time); or with ``QuoteRequestReject (AG)``, ``QuoteRequestRejectReason(658)`` and ``Text(58)``
  holding the perpx code and reason.
* ``D`` with ``OrdType(40)=D`` (previously quoted) and ``QuoteID(117)``: ``Side(54)`` takes the
  desk's offer (1) or hits its bid (2); ``Symbol`` and ``OrderQty``, when sent, must be the
  quote's. Answered with one ``ExecutionReport`` ``150=F``/``39=2`` (the whole block at the quoted
  price, ``OrderID(37)`` ``block-<tradeId>``), or ``150=8`` with the code and reason in ``Text``.
"""

from __future__ import annotations

from decimal import Decimal

from perpx.engine.config import MarketSpec
from perpx.engine.values import Side
from perpx.fix.acceptor import Connection
from perpx.fix.codec import Field, FixMessage
from perpx.fix.session import sending_time
from perpx.otc.pricing import QuoteSide
from perpx.otc.store import QuoteRecord
from perpx.server import wire
from perpx.server.context import ServerContext
from perpx.server.errors import ApiError
from perpx.server.otc_routes import book_quote, desk_service, quote_for

SIDES = {"1": Side.BUY, "2": Side.SELL}


async def quote_request(
    ctx: ServerContext, connection: Connection, account: int, message: FixMessage
) -> None:
    """Answer a QuoteRequest with a Quote, or a QuoteRequestReject saying why."""
    req_id = message.get(131) or ""
    symbol = message.get(55) or ""
    try:
        if not req_id:
            raise ApiError(400, -1102, "QuoteReqID(131) is required.")
        spec = wire.market_param({"symbol": symbol}, ctx.specs)
        side_text = message.get(54)
        if side_text is not None and side_text not in SIDES:
            raise ApiError(400, -1102, f"Side(54) {side_text!r}: use 1 (buy) or 2 (sell), or leave it out.")
        side = QuoteSide.TWO_WAY if side_text is None else QuoteSide(SIDES[side_text].name)
        qty_lots = wire.to_lots(spec, wire.plain_decimal(message.get(38) or "", "OrderQty"), "OrderQty")
        if qty_lots <= 0:
            raise ApiError(400, -1102, "OrderQty(38) must be greater than zero.")
        record = await quote_for(ctx, account, spec, side, qty_lots, None)
    except ApiError as exc:
        reason = "1" if exc.code == -1121 else "99"
        reject: tuple[Field, ...] = ((131, req_id or "?"), (658, reason), (146, "1"), (55, symbol or "?"))
        connection.send_app("AG", (*reject, (58, f"{exc.code}: {exc.msg}")))
        return
    connection.send_app("S", quote_fields(record, spec, req_id))


def quote_fields(record: QuoteRecord, spec: MarketSpec, req_id: str) -> tuple[Field, ...]:
    """A Quote (S) for ``record``: the desk's bid and offer, sizes, validity in venue time."""
    fields: list[Field] = [(131, req_id), (117, record.quote_id), (55, record.symbol)]
    size = wire.qty(spec, record.qty_lots)
    if record.bid_ticks is not None:
        fields.append((132, wire.price(spec, record.bid_ticks)))
    if record.ask_ticks is not None:
        fields.append((133, wire.price(spec, record.ask_ticks)))
    if record.bid_ticks is not None:
        fields.append((134, size))
    if record.ask_ticks is not None:
        fields.append((135, size))
    fields += [(62, sending_time(record.expires_ns)), (60, sending_time(record.created_ns))]
    return tuple(fields)


async def quoted_order(
    ctx: ServerContext, connection: Connection, account: int, message: FixMessage, reject_exec_id: str
) -> None:
    """A NewOrderSingle on a quote: book it and report the block trade, or report the refusal."""
    quote_id = message.get(117) or ""
    try:
        if not quote_id:
            raise ApiError(400, -1102, "QuoteID(117) is required with OrdType(40)=D.")
        side = SIDES.get(message.get(54) or "")
        if side is None:
            raise ApiError(400, -1102, "Side(54) must be 1 (take the offer) or 2 (hit the bid).")
        quote = desk_quote(ctx, account, quote_id)
        spec = ctx.specs.get(quote.symbol)
        if spec is None:  # a spot pair's quote (perpx.otc.spot): its steps are not a market's
            raise ApiError(
                400,
                -1102,
                f"Quote {quote_id} is for the spot pair {quote.symbol}: accept it with"
                f" POST /perpx/v1/rfq/{quote_id}/accept; FIX books perpetuals' quotes only.",
            )
        if message.get(55) not in (None, quote.symbol):
            raise ApiError(400, -1102, f"Symbol(55) must be the quote's, {quote.symbol}.")
        qty = message.get(38)
        if qty is not None and Decimal(wire.qty(spec, quote.qty_lots)) != wire.plain_decimal(qty, "OrderQty"):
            raise ApiError(400, -1102, f"OrderQty(38) must be the quote's, {wire.qty(spec, quote.qty_lots)}.")
        record, price_ticks = await book_quote(ctx, account, quote_id, side)
    except ApiError as exc:
        connection.send_app("8", _rejection(message, exc, reject_exec_id))
        return
    connection.send_app("8", block_report(message, record, spec, side, price_ticks))


def desk_quote(ctx: ServerContext, account: int, quote_id: str) -> QuoteRecord:
    """The caller's quote, or ``-9562`` as the REST route answers."""
    record = desk_service(ctx).desk.store.quote(quote_id)
    if record is None or record.account_id != account:
        raise ApiError(400, -9562, f"Quote {quote_id[:64]!r} is not one of yours.")
    return record


def block_report(
    message: FixMessage, record: QuoteRecord, spec: MarketSpec, side: Side, price_ticks: int
) -> tuple[Field, ...]:
    """ExecutionReport 150=F, 39=2: the whole block at the quoted price."""
    qty = wire.qty(spec, record.qty_lots)
    price = wire.price(spec, price_ticks)
    fields: list[Field] = [(37, f"block-{record.trade_id}")]
    if message.get(11):
        fields.append((11, message.get(11) or ""))
    fields += [
        (17, f"block-{record.trade_id}"),
        (150, "F"),
        (39, "2"),
        (55, record.symbol),
        (54, "1" if side is Side.BUY else "2"),
        (38, qty),
        (40, "D"),
        (44, price),
        (32, qty),
        (31, price),
        (151, "0"),
        (14, qty),
        (6, price),
        (60, sending_time(record.accept_ns or record.created_ns)),
        (117, record.quote_id),
    ]
    return tuple(fields)


def _rejection(message: FixMessage, error: ApiError, exec_id: str) -> tuple[Field, ...]:
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
        (103, "99"),
    ]
    if message.get(117):
        fields.append((117, message.get(117) or ""))
    fields.append((58, f"{error.code}: {error.msg}"))
    return tuple(fields)
