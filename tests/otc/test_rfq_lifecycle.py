"""The RFQ lifecycle on the real engine: quote, accept within and after expiry, last look, limits."""

from __future__ import annotations

from decimal import Decimal

import pytest

from perpx.engine.commands import BookBlockTrade
from perpx.engine.events import BlockTradeBooked
from perpx.engine.values import MarketId, Side
from perpx.otc import errors
from perpx.otc.errors import OtcError
from perpx.otc.pricing import QuoteSide
from perpx.otc.store import BOOKING, EXPIRED, FILLED, LAST_LOOK_REJECTED, QUOTED, REJECTED
from tests.engine.helpers import BTC
from tests.otc.kit import desk_kit


def test_two_way_quote_brackets_the_index_and_expires_in_venue_time() -> None:
    kit = desk_kit()

    quote = kit.request(qty="2")

    assert quote.bid_ticks is not None and quote.ask_ticks is not None
    assert quote.bid_ticks < quote.index_ticks < quote.ask_ticks
    assert quote.expires_ns == kit.v.engine.now_ns + 5_000_000_000
    assert kit.desk.store.quote(quote.quote_id) == quote


def test_accept_within_expiry_books_a_block_trade_at_the_quoted_price() -> None:
    kit = desk_kit()
    quote = kit.request(qty="2")

    record = kit.accept(quote.quote_id, Side.BUY)

    assert record.state == FILLED and record.trade_id is not None
    assert kit.v.position("client", BTC) == 2 and kit.v.position("desk", BTC) == -2
    assert kit.desk.store.quote(quote.quote_id) == record
    journaled = kit.v.journal[-1]
    assert isinstance(journaled, BookBlockTrade) and journaled.quote_id == quote.quote_id
    assert journaled.price_ticks == quote.ask_ticks


def test_accept_after_expiry_is_refused_and_recorded_expired() -> None:
    kit = desk_kit()
    quote = kit.request(side=QuoteSide.SELL)
    kit.v.advance(6)

    error = kit.refusal(quote.quote_id)

    assert error.code == errors.QUOTE_EXPIRED
    assert kit.desk.store.quote(quote.quote_id).state == EXPIRED  # type: ignore[union-attr]
    assert kit.v.position("client", BTC) == 0


def test_accept_after_the_index_moved_beyond_last_look_is_rejected_with_the_move() -> None:
    kit = desk_kit()
    quote = kit.request(side=QuoteSide.BUY)
    kit.v.mark(BTC, "30030")  # +10 bps

    error = kit.refusal(quote.quote_id)

    assert error.code == errors.LAST_LOOK and "10.00 bps" in error.message
    stored = kit.desk.store.quote(quote.quote_id)
    assert stored is not None and stored.state == LAST_LOOK_REJECTED
    assert stored.move_bps is not None and Decimal(stored.move_bps) == Decimal(10)
    assert stored.accept_index_ticks == kit.v.ticks(BTC, "30030")


def test_accept_after_a_move_within_last_look_is_booked() -> None:
    kit = desk_kit()
    quote = kit.request(side=QuoteSide.BUY)
    kit.v.mark(BTC, "30012")  # +4 bps

    assert kit.accept(quote.quote_id).state == FILLED


def test_accepting_a_quote_twice_is_refused() -> None:
    kit = desk_kit()
    quote = kit.request(side=QuoteSide.SELL)
    kit.accept(quote.quote_id)

    assert kit.refusal(quote.quote_id).code == errors.QUOTE_NOT_OPEN


def test_accepting_another_clients_quote_is_refused_as_unknown() -> None:
    kit = desk_kit()
    quote = kit.request(side=QuoteSide.SELL)

    assert kit.refusal(quote.quote_id, client="other").code == errors.UNKNOWN_QUOTE
    assert kit.desk.store.quote(quote.quote_id).state == QUOTED  # type: ignore[union-attr]


def test_two_way_accept_without_a_side_is_refused() -> None:
    kit = desk_kit()
    quote = kit.request()

    assert kit.refusal(quote.quote_id).code == errors.SIDE_NOT_QUOTED


def test_request_that_would_breach_the_desks_limit_prices_only_the_reducing_side() -> None:
    kit = desk_kit(max_inventory="3")
    kit.accept(kit.request(side=QuoteSide.BUY, qty="2").quote_id)  # desk short 2

    quote = kit.request(qty="2")

    assert quote.ask_ticks is None and quote.bid_ticks is not None
    with pytest.raises(OtcError) as refused:
        kit.request(side=QuoteSide.BUY, qty="2")
    assert refused.value.code == errors.NOT_QUOTED and "limit" in refused.value.message
    assert kit.desk.store.refused()[-1].reason.startswith("the trade would take")


def test_limit_checked_again_at_accept_when_inventory_moved_since_the_quote() -> None:
    kit = desk_kit(max_inventory="3")
    first = kit.request(side=QuoteSide.BUY, qty="2")
    second = kit.request(side=QuoteSide.BUY, qty="2")
    kit.accept(first.quote_id)

    error = kit.refusal(second.quote_id)

    assert error.code == errors.NOT_QUOTED
    assert kit.desk.store.quote(second.quote_id).state == REJECTED  # type: ignore[union-attr]
    assert kit.v.position("desk", BTC) == -2


def test_engine_margin_refusal_is_recorded_with_the_engines_code() -> None:
    kit = desk_kit()
    kit.v.account("poor", deposit="100")
    quote = kit.desk.request(
        kit.v.engine, kit.v.names["poor"], MarketId(BTC), QuoteSide.BUY, kit.v.lots(BTC, "1")
    )

    record = kit.accept(quote.quote_id, client="poor")

    assert record.state == REJECTED and record.code == -2019
    assert record.reason is not None and record.reason.startswith("the client:")


def test_desk_cannot_request_a_quote_from_itself() -> None:
    kit = desk_kit()

    with pytest.raises(OtcError) as refused:
        kit.request(client="desk")

    assert refused.value.code == errors.NOT_QUOTED


def test_block_trade_events_name_both_accounts_and_the_quote() -> None:
    kit = desk_kit()
    quote = kit.request(side=QuoteSide.SELL, qty="1")
    plan = kit.desk.prepare_accept(kit.v.engine, kit.v.names["client"], quote.quote_id, None)

    events = kit.v.apply(kit.desk.command(plan, kit.v.tick())).own

    sides = {(e.account_id, e.side, e.quote_id) for e in events if isinstance(e, BlockTradeBooked)}
    assert sides == {
        (kit.v.names["client"], Side.SELL, quote.quote_id),
        (kit.v.names["desk"], Side.BUY, quote.quote_id),
    }


def test_quote_being_booked_cannot_be_accepted_again() -> None:
    kit = desk_kit()
    quote = kit.request(side=QuoteSide.SELL)
    kit.desk.prepare_accept(kit.v.engine, kit.v.names["client"], quote.quote_id, None)

    assert kit.desk.store.quote(quote.quote_id).state == BOOKING  # type: ignore[union-attr]
    assert kit.refusal(quote.quote_id).code == errors.QUOTE_NOT_OPEN


def test_abandoned_booking_is_recorded_rejected_with_the_reason() -> None:
    kit = desk_kit()
    quote = kit.request(side=QuoteSide.SELL)
    plan = kit.desk.prepare_accept(kit.v.engine, kit.v.names["client"], quote.quote_id, None)

    kit.desk.abandon(plan, -1001, "the journal could not be written")

    stored = kit.desk.store.quote(quote.quote_id)
    assert stored is not None and (stored.state, stored.code) == (REJECTED, -1001)
    assert kit.v.position("client", BTC) == 0
