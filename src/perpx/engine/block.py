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

:func:`book_spot_block_trade` handles :class:`~perpx.engine.commands.BookSpotBlockTrade`, the
spot-style block trade of an ``[otc.spot]`` pair: the client and the desk swap ``base_atoms`` of a
listed asset for ``quote_atoms`` of the settlement asset. It checks the same accounts and quote id
(``-9001``, ``-9560``, ``-9569``, ``-9561``), a listed base asset other than the settlement asset
(``-9002``, ``-9571``), positive amounts (``-9003``), then that each side can deliver
(``-9572``; ``-2018`` / ``-9542`` from the Multi-Assets removal rule): the settlement asset up to the payer's withdrawable balance (unrealised profit and
margin in use stay; Multi-Assets collateral on a stale index counts at zero, as for a withdrawal),
the base asset up to the payer's wallet and only as far as the Multi-Assets removal rule lets
collateral leave. Then both wallets move at once, with no fee and no position: each asset's total
is unchanged (conservation per asset), and the Multi-Assets collateral of both accounts is revalued
through ``MultiAssets.asset_moved``. Two :class:`~perpx.engine.events.SpotBlockTradeBooked`
events share one ``trade_id``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from perpx.engine import formulas
from perpx.engine.accounts import Account, Position, apply_position_change
from perpx.engine.codes import RejectCode
from perpx.engine.commands import BookBlockTrade, BookSpotBlockTrade
from perpx.engine.config import MarketSpec
from perpx.engine.events import BlockTradeBooked, SpotBlockTradeBooked
from perpx.engine.liquidation.insurance import INSURANCE_ACCOUNT
from perpx.engine.matching import solvent_after
from perpx.engine.placing import margin_refusal, open_interest_refusal, price_filter
from perpx.engine.values import AccountId, AssetId, Side, TradeId

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


# ---------------------------------------------------------------- spot-style block trades


def book_spot_block_trade(core: Core, cmd: BookSpotBlockTrade) -> None:
    """Swap the base asset and the settlement asset between client and desk, or refuse (module docstring)."""
    refusal = _spot_refusal(core, cmd)
    if refusal is not None:
        core.reject_command(cmd, cmd.client_id, refusal[0], refusal[1])
        return
    settlement = core.asset
    trade_id = core.new_trade_id()
    client_sign = 1 if cmd.side is _BUY else -1
    for account_id, counterparty, sign, is_desk in (
        (cmd.client_id, cmd.desk_id, client_sign, False),
        (cmd.desk_id, cmd.client_id, -client_sign, True),
    ):
        account = core.accounts[account_id]
        base_balance = account.credit(cmd.base_asset, sign * cmd.base_atoms)
        quote_balance = account.credit(settlement, -sign * cmd.quote_atoms)
        core.margin_changed(account_id)
        core.multi_assets.asset_moved(account_id, cmd.base_asset)
        core.emit(
            SpotBlockTradeBooked(
                ts_ns=core.now_ns,
                trade_id=trade_id,
                quote_id=cmd.quote_id,
                account_id=account_id,
                counterparty_id=counterparty,
                base_asset=cmd.base_asset,
                quote_asset=settlement,
                side=_BUY if sign > 0 else _SELL,
                base_atoms=cmd.base_atoms,
                quote_atoms=cmd.quote_atoms,
                is_desk=is_desk,
                base_balance_atoms=base_balance,
                quote_balance_atoms=quote_balance,
            )
        )


def _spot_refusal(core: Core, cmd: BookSpotBlockTrade) -> tuple[RejectCode, str] | None:
    for account_id in (cmd.client_id, cmd.desk_id):
        if account_id not in core.accounts:
            return RejectCode.UNKNOWN_ACCOUNT, f"account {account_id} does not exist"
    if INSURANCE_ACCOUNT in (cmd.client_id, cmd.desk_id):
        return RejectCode.BLOCK_INSURANCE_ACCOUNT, "the insurance fund's account takes no block trades"
    if cmd.client_id == cmd.desk_id:
        return RejectCode.BLOCK_SAME_ACCOUNT, "a block trade needs two accounts: the client's and the desk's"
    if not 1 <= len(cmd.quote_id) <= MAX_QUOTE_ID_CHARS:
        return RejectCode.BLOCK_QUOTE_ID, f"the quote id must be 1 to {MAX_QUOTE_ID_CHARS} characters"
    if cmd.base_asset not in core.config.assets:
        return RejectCode.UNKNOWN_ASSET, f"asset {cmd.base_asset} is not listed on this venue"
    if cmd.base_asset == core.asset:
        return (
            RejectCode.SPOT_BLOCK_BASE_ASSET,
            f"{cmd.base_asset} is the settlement asset; a spot block trade swaps another asset for it",
        )
    if cmd.base_atoms <= 0 or cmd.quote_atoms <= 0:
        return RejectCode.AMOUNT_NOT_POSITIVE, "both amounts of a spot block trade must be greater than zero"
    buyer, seller = (cmd.client_id, cmd.desk_id) if cmd.side is _BUY else (cmd.desk_id, cmd.client_id)
    for account_id, asset, amount in (
        (buyer, core.asset, cmd.quote_atoms),
        (seller, cmd.base_asset, cmd.base_atoms),
    ):
        refusal = _delivery_refusal(core, core.accounts[account_id], asset, amount)
        if refusal is not None:
            who = "the desk" if account_id == cmd.desk_id else "the client"
            return refusal[0], f"{who}: {refusal[1]}"
    return None


def _delivery_refusal(
    core: Core, account: Account, asset: AssetId, amount_atoms: int
) -> tuple[RejectCode, str] | None:
    """Why ``account`` may not hand over ``amount_atoms`` of ``asset`` (the withdrawal rule), or ``None``."""
    if asset == core.asset:
        risk = core.risk(account.account_id)
        free = risk.withdrawable_atoms
        stale = core.multi_assets.stale_shortfall_atoms(account)
        if stale:  # Multi-Assets Mode: collateral on a stale index counts at zero for new risk
            free = max(0, min(risk.wallet_atoms, risk.free_atoms - stale))
        if amount_atoms > free:
            return (
                RejectCode.SPOT_BLOCK_FUNDS,
                f"{core.money(amount_atoms)} to pay, {core.money(free)} withdrawable"
                " (unrealised profit and margin in use cannot be paid out)",
            )
        return None
    held = account.balance(asset)
    if amount_atoms > held:
        return RejectCode.SPOT_BLOCK_FUNDS, f"{amount_atoms} atoms of {asset} to deliver, {held} held"
    return core.multi_assets.removal_refusal(account, asset, amount_atoms)
