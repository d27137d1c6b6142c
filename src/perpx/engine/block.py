"""OTC block trades: a trade between a client and the desk at an agreed price, booked without the book.

:func:`book_block_trade` handles :class:`~perpx.engine.commands.BookBlockTrade`. A block trade is
a fill in everything but its origin, so it passes what any order and any fill passes:

1. **validate**: both accounts exist, differ and are not the insurance fund's (``-9001``,
   ``-9560``, ``-9569``), the market is listed and
   has a mark (``-1121``, ``-9005``), it accepts opening orders (its mode, ``-4400`` / ``-9005`` /
   ``-9009``), the quantity is positive (``-4003``), the quote id is 1 to 64 characters
   (``-9561``), and the price lies within the market's price filter and percent-price band around
   the mark *on both sides* (``placing.price_filter``: ``-4001``, ``-4024``, ``-4025``, ``-4016``);
2. **risk**, for the client then the desk: the open-interest cap (``-9008``), then
   ``placing.margin_refusal`` as for a limit order of this size at this price (``-2027``,
   ``-2019``), then the fill guard (``matching.solvent_after``, ``-9010``): no side may end below
   zero margin balance;
3. **settle** both sides at once with the position arithmetic of every fill
   (``accounts.apply_position_change``): realised PnL, fees (client at its taker rate, desk at
   its maker rate; a rebate only as far as the fee account holds it), the fee account, 30-day
   volume, open interest. Two :class:`~perpx.engine.events.BlockTradeBooked` events share one
   ``trade_id``.

A block trade never sets the market's last price (it did not happen on the book, so it moves no
mark and no trigger), and it leaves the book untouched. Money and open interest are conserved
exactly as by a fill: the invariants (``perpx.engine.invariants``) hold after it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from perpx.engine import formulas
from perpx.engine.accounts import Account, Position, apply_position_change
from perpx.engine.codes import RejectCode
from perpx.engine.commands import BookBlockTrade
from perpx.engine.config import MarketSpec
from perpx.engine.events import BlockTradeBooked
from perpx.engine.liquidation.insurance import INSURANCE_ACCOUNT
from perpx.engine.matching import solvent_after
from perpx.engine.placing import margin_refusal, open_interest_refusal, price_filter
from perpx.engine.values import AccountId, Side, TradeId

if TYPE_CHECKING:
    from perpx.engine.core import Core

_BUY: Final = Side.BUY
_SELL: Final = Side.SELL
MAX_QUOTE_ID_CHARS: Final = 64


def book_block_trade(core: Core, cmd: BookBlockTrade) -> None:
    """Book ``cmd`` if both sides pass every check of an order and a fill (module docstring)."""
    refusal = _refusal(core, cmd)
    if refusal is not None:
        core.reject_command(cmd, cmd.client_id, refusal[0], refusal[1])
        return
    spec = core.specs[cmd.market]
    client = core.accounts[cmd.client_id]
    desk = core.accounts[cmd.desk_id]
    desk_side = _SELL if cmd.side is _BUY else _BUY
    trade_id = core.new_trade_id()
    notional = formulas.notional_atoms(cmd.price_ticks, cmd.qty_lots, spec.contract_atoms)
    client_rate = core.fee_rates(client).taker_e8
    desk_rate = core.fee_rates(desk).maker_e8
    for account, side, rate, other, is_desk in (
        (client, cmd.side, client_rate, cmd.desk_id, False),
        (desk, desk_side, desk_rate, cmd.client_id, True),
    ):
        position = core.position_record(account, cmd.market)
        core.emit(_settle(core, cmd, spec, account, position, side, notional, rate, trade_id, other, is_desk))
        core.touch(position)
        core.trim_reduce_only(position)
    core.post_trade()


def _refusal(core: Core, cmd: BookBlockTrade) -> tuple[RejectCode, str] | None:
    for account_id in (cmd.client_id, cmd.desk_id):
        if account_id not in core.accounts:
            return RejectCode.UNKNOWN_ACCOUNT, f"account {account_id} does not exist"
    if INSURANCE_ACCOUNT in (cmd.client_id, cmd.desk_id):
        return RejectCode.BLOCK_INSURANCE_ACCOUNT, "the insurance fund's account takes no block trades"
    if cmd.client_id == cmd.desk_id:
        return RejectCode.BLOCK_SAME_ACCOUNT, "a block trade needs two accounts: the client's and the desk's"
    if not 1 <= len(cmd.quote_id) <= MAX_QUOTE_ID_CHARS:
        return RejectCode.BLOCK_QUOTE_ID, f"the quote id must be 1 to {MAX_QUOTE_ID_CHARS} characters"
    spec = core.specs.get(cmd.market)
    if spec is None:
        return RejectCode.BAD_SYMBOL, f"market {cmd.market} is not listed on this venue"
    mark = core.marks.get(cmd.market)
    if mark is None:
        return RejectCode.MARKET_CLOSED, f"market {cmd.market} has no mark price yet"
    mode = core.mode_refusal(cmd.market, False)
    if mode is not None:
        return mode
    if cmd.qty_lots <= 0:
        return RejectCode.QTY_NOT_POSITIVE, "quantity must be greater than zero"
    for side in (_BUY, _SELL):
        band = price_filter(core, spec, side, cmd.price_ticks, mark)
        if band is not None:
            return band
    desk_side = _SELL if cmd.side is _BUY else _BUY
    for account_id, side in ((cmd.client_id, cmd.side), (cmd.desk_id, desk_side)):
        refusal = _risk_refusal(core, cmd, spec, core.accounts[account_id], side)
        if refusal is not None:
            who = "the desk" if account_id == cmd.desk_id else "the client"
            return refusal[0], f"{who}: {refusal[1]}"
    return None


def _risk_refusal(
    core: Core, cmd: BookBlockTrade, spec: MarketSpec, account: Account, side: Side
) -> tuple[RejectCode, str] | None:
    position = core.position_record(account, cmd.market)
    refusal = open_interest_refusal(core, spec, position, side, cmd.qty_lots)
    if refusal is not None:
        return refusal
    refusal, _ = margin_refusal(core, account, position, spec, side, cmd.price_ticks, cmd.qty_lots, 0)
    if refusal is not None:
        return refusal
    notional = formulas.notional_atoms(cmd.price_ticks, cmd.qty_lots, spec.contract_atoms)
    fee = max(0, formulas.fee_atoms(notional, core.max_fee_rate_e8))
    if not solvent_after(core, account, position, spec, side, cmd.qty_lots, notional, fee):
        return (
            RejectCode.BEYOND_BANKRUPTCY,
            "the trade would take the account's margin balance below zero at this price",
        )
    return None


def _settle(
    core: Core,
    cmd: BookBlockTrade,
    spec: MarketSpec,
    account: Account,
    position: Position,
    side: Side,
    notional: int,
    rate_e8: int,
    trade_id: TradeId,
    counterparty: AccountId,
    is_desk: bool,
) -> BlockTradeBooked:
    asset = core.asset
    fee = formulas.fee_atoms(notional, rate_e8)
    if fee < 0:
        fee = -min(-fee, max(0, core.fees_atoms.get(asset, 0)))
    realized, oi_delta = apply_position_change(account, position, asset, side, cmd.qty_lots, notional, fee)
    if oi_delta:
        core.open_interest_lots[cmd.market] += oi_delta
    core.fees_atoms[asset] = core.fees_atoms.get(asset, 0) + fee
    account.record_volume(core.now_ns, notional)
    core.margin_changed(account.account_id)
    return BlockTradeBooked(
        ts_ns=core.now_ns,
        trade_id=trade_id,
        quote_id=cmd.quote_id,
        account_id=account.account_id,
        counterparty_id=counterparty,
        market=cmd.market,
        side=side,
        price_ticks=cmd.price_ticks,
        qty_lots=cmd.qty_lots,
        is_desk=is_desk,
        fee_atoms=fee,
        realized_pnl_atoms=realized,
        position_lots=position.qty_lots,
    )
