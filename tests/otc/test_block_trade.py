"""Block trades on the ledger: booked between client and desk at the agreed price, checked like any fill.

Every test runs the real engine through the test kit with ``check=True``: the invariants (money per
asset, long open interest = short open interest, ...) are verified after every command.
"""

from __future__ import annotations

import msgspec
import pytest

from perpx.engine.codes import RejectCode
from perpx.engine.commands import AnyCommand, BookBlockTrade
from perpx.engine.events import BlockTradeBooked, CommandRejected, Event, OrderFilled
from perpx.engine.liquidation import INSURANCE_ACCOUNT
from perpx.engine.state import state_hash
from perpx.engine.values import MarketId, Side
from perpx.testkit import Venue
from tests.engine.helpers import BTC, venue


def _block(
    v: Venue, client: str, desk: str, side: Side, qty: str, price: str, quote_id: str = "q-1"
) -> list[Event]:
    return list(
        v.apply(
            BookBlockTrade(
                ts_ns=v.tick(),
                client_id=v.names[client],
                desk_id=v.names[desk],
                market=MarketId(BTC),
                side=side,
                qty_lots=v.lots(BTC, qty),
                price_ticks=v.ticks(BTC, price),
                quote_id=quote_id,
            )
        ).own
    )


def test_block_trade_books_both_sides_at_the_quoted_price_without_the_book() -> None:
    v = venue("client", "desk")
    book_before = v.book_table(BTC)

    events = _block(v, "client", "desk", Side.BUY, "2", "30010")

    booked = [e for e in events if isinstance(e, BlockTradeBooked)]
    assert [(e.account_id, e.side, e.is_desk, e.position_lots) for e in booked] == [
        (v.names["client"], Side.BUY, False, 2000),
        (v.names["desk"], Side.SELL, True, -2000),
    ]
    assert booked[0].trade_id == booked[1].trade_id
    assert {e.price_ticks for e in booked} == {v.ticks(BTC, "30010")}
    assert not any(isinstance(e, OrderFilled) for e in events)
    assert v.book_table(BTC) == book_before
    assert v.position("client", BTC) == 2 and v.position("desk", BTC) == -2


def test_block_trade_conserves_money_and_open_interest() -> None:
    v = venue("client", "desk")
    money_before = sum(a.balances.get(v.engine.asset, 0) for a in v.engine.accounts.values())

    _block(v, "client", "desk", Side.SELL, "1.5", "29990")
    _block(v, "client", "desk", Side.BUY, "0.5", "30020", "q-2")

    engine = v.engine
    money_after = sum(a.balances.get(engine.asset, 0) for a in engine.accounts.values())
    assert money_after + engine.fees_atoms[engine.asset] == money_before
    longs = sum(max(p.qty_lots, 0) for p in engine.market_positions[MarketId(BTC)].values())
    shorts = sum(max(-p.qty_lots, 0) for p in engine.market_positions[MarketId(BTC)].values())
    assert longs == shorts == engine.open_interest_lots[MarketId(BTC)] == 1000


def test_block_trade_realises_pnl_like_a_fill() -> None:
    v = venue("client", "desk")
    _block(v, "client", "desk", Side.BUY, "1", "30000")

    events = _block(v, "client", "desk", Side.SELL, "1", "30100", "q-2")

    client_side = next(e for e in events if isinstance(e, BlockTradeBooked) and not e.is_desk)
    desk_side = next(e for e in events if isinstance(e, BlockTradeBooked) and e.is_desk)
    assert client_side.realized_pnl_atoms == 100 * 10**8
    assert desk_side.realized_pnl_atoms == -100 * 10**8
    assert v.engine.open_interest_lots[MarketId(BTC)] == 0


@pytest.mark.parametrize(
    ("client", "desk", "qty", "price", "quote_id", "code"),
    [
        ("client", "client", "1", "30000", "q", RejectCode.BLOCK_SAME_ACCOUNT),
        ("client", "desk", "0", "30000", "q", RejectCode.QTY_NOT_POSITIVE),
        ("client", "desk", "1", "30000", "", RejectCode.BLOCK_QUOTE_ID),
        ("client", "desk", "1", "31600", "q", RejectCode.PERCENT_PRICE),
        ("client", "desk", "1", "28400", "q", RejectCode.PERCENT_PRICE),
        ("client", "desk", "100", "30000", "q", RejectCode.MARGIN_INSUFFICIENT),
        ("poor", "desk", "1", "30000", "q", RejectCode.MARGIN_INSUFFICIENT),
    ],
)
def test_block_trade_that_fails_a_check_is_rejected_and_changes_nothing(
    client: str, desk: str, qty: str, price: str, quote_id: str, code: RejectCode
) -> None:
    v = venue("client", "desk")
    v.account("poor", deposit="10")
    balances_before = {a: acc.balances.copy() for a, acc in v.engine.accounts.items()}

    events = _block(v, client, desk, Side.BUY, qty, price, quote_id)

    assert [(type(e), e.code) for e in events if isinstance(e, CommandRejected)] == [(CommandRejected, code)]
    assert not any(isinstance(e, BlockTradeBooked) for e in events)
    assert v.position("client", BTC) == 0
    assert {a: acc.balances for a, acc in v.engine.accounts.items()} == balances_before
    assert v.engine.open_interest_lots[MarketId(BTC)] == 0


def test_block_trade_desk_without_margin_is_rejected_with_the_desk_named() -> None:
    v = venue("client")
    v.account("desk", deposit="100")

    events = _block(v, "client", "desk", Side.BUY, "1", "30000")

    rejected = next(e for e in events if isinstance(e, CommandRejected))
    assert rejected.code == RejectCode.MARGIN_INSUFFICIENT
    assert rejected.message.startswith("the desk:")


def test_block_trade_survives_the_journal_codec_and_replays_to_the_same_state() -> None:
    v = venue("client", "desk")
    _block(v, "client", "desk", Side.BUY, "1", "30005")

    encoded = [msgspec.msgpack.encode(c) for c in v.journal]
    replayed = Venue()
    for raw in encoded:
        replayed.apply(msgspec.msgpack.decode(raw, type=AnyCommand))

    assert state_hash(replayed.engine) == state_hash(v.engine)


def test_block_trade_with_the_insurance_fund_is_rejected() -> None:
    v = venue("client")
    v.names["fund"] = INSURANCE_ACCOUNT

    events = _block(v, "client", "fund", Side.BUY, "1", "30000")

    assert [e.code for e in events if isinstance(e, CommandRejected)] == [RejectCode.BLOCK_INSURANCE_ACCOUNT]
