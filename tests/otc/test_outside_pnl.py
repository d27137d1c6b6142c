"""The outside position's P&L lines: recorded fills of hedges on another venue, booked in perpx's timeline.

Fills are written by hand here (the end-to-end test against a second perpx server through ccxt is
in ``test_hedging_outside.py``); the desk's venue is the test kit's, its mark at 30000.
"""

from __future__ import annotations

from decimal import Decimal

from perpx.engine.values import AccountId
from perpx.otc.pricing import QuoteSide
from perpx.otc.report import decompose, equity_atoms
from perpx.otc.store import OutsideFill
from tests.engine.helpers import BTC
from tests.otc.kit import DeskKit, desk_kit

ATOM = Decimal("0.00000001")


def _fill(trade_id: str, side: str, price: str, qty: str, fee: str, booked_ns: int) -> OutsideFill:
    return OutsideFill(
        venue="ccxt:binanceusdm",
        trade_id=trade_id,
        hedge_id="H000001",
        symbol=BTC,
        side=side,
        client_order_id=f"H000001-c{trade_id}",
        price=price,
        qty=qty,
        fee=fee,
        fill_ns=booked_ns,
        booked_ns=booked_ns,
    )


def _atoms(amount: str) -> int:
    return int(Decimal(amount) / ATOM)


def _sold_half(kit: DeskKit) -> int:
    """The desk sells 0.5 to the client; the venue time after it."""
    kit.accept(kit.request(side=QuoteSide.BUY, qty="0.5").quote_id)
    return kit.v.now_ns


def test_outside_fill_lines_are_its_value_at_the_index_less_its_price_its_fee_and_the_revaluation() -> None:
    kit = desk_kit()
    desk = AccountId(kit.v.names["desk"])
    booked = _sold_half(kit)
    kit.v.mark(BTC, "30100")  # the outside long 0.5 gains 50 at perpx's index

    fills = [_fill("1", "BUY", "30010.5", "0.5", "1.5", booked)]
    ledger, engine = decompose(kit.v.config, kit.commands, desk, outside_fills=fills)

    assert ledger.total("outside_hedging_cost") == _atoms("-5.25")  # 0.5 x (30000 - 30010.5)
    assert ledger.total("outside_fees") == _atoms("-1.5")
    assert ledger.total("outside_inventory_pnl") == _atoms("50")
    outside_equity = _atoms("15050") - _atoms("15005.25") - _atoms("1.5")
    assert ledger.equity_end_atoms == equity_atoms(engine, desk) + outside_equity
    assert ledger.pnl_atoms + ledger.flows_atoms == ledger.equity_end_atoms - ledger.equity_start_atoms


def test_outside_fill_recorded_after_the_last_command_is_booked_at_the_end() -> None:
    kit = desk_kit()
    desk = AccountId(kit.v.names["desk"])
    booked = _sold_half(kit) + 1_000_000_000

    fills = [_fill("1", "BUY", "29990", "0.5", "-0.25", booked)]  # a maker rebate
    ledger, engine = decompose(kit.v.config, kit.commands, desk, outside_fills=fills)

    assert ledger.total("outside_hedging_cost") == _atoms("5")
    assert ledger.total("outside_fees") == _atoms("0.25")
    assert ledger.equity_end_atoms == equity_atoms(engine, desk) + _atoms("15000") - _atoms("14994.75")
    assert ledger.pnl_atoms + ledger.flows_atoms == ledger.equity_end_atoms - ledger.equity_start_atoms


def test_outside_fill_before_the_window_is_in_the_starting_equity_not_in_the_lines() -> None:
    kit = desk_kit()
    desk = AccountId(kit.v.names["desk"])
    booked = _sold_half(kit)
    kit.v.mark(BTC, "30100")
    start = kit.v.now_ns + 1  # the window opens after the mark at 30100
    kit.v.mark(BTC, "30200")

    fills = [_fill("1", "BUY", "30000", "0.5", "1", booked), _fill("2", "SELL", "30100", "0.2", "0", start)]
    ledger, _ = decompose(kit.v.config, kit.commands, desk, from_ns=start, outside_fills=fills)

    assert ledger.total("outside_fees") == 0  # the first fill's fee is before the window
    assert ledger.total("outside_hedging_cost") == 0  # the second sold at the index
    assert ledger.total("outside_inventory_pnl") == _atoms("30")  # 0.3 held x +100
    assert ledger.pnl_atoms + ledger.flows_atoms == ledger.equity_end_atoms - ledger.equity_start_atoms
