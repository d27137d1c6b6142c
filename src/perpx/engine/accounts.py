"""Accounts, their per-market positions, and the rolling volume that picks a fee tier.

Ledger shape
------------
* ``Account.balances[asset]`` is the cross wallet balance in atoms (deposits,
  withdrawals, realised PnL of cross positions, fees, released isolated margin).
* ``Position.isolated_margin_atoms`` is margin moved out of the cross wallet
  into one isolated position; realised PnL of an isolated position lands there.
* ``Position.cost_atoms`` is the signed entry notional of the open position.
  Across all accounts, ``sum(balances) + sum(isolated) - sum(cost)`` plus fees
  collected equals net deposits: a trade moves exactly its notional from buyer
  to seller, which shows up as cost on one side and realised PnL on the other.

Open-order exposure is kept as running sums per position (lots and notional of
the non-reduce-only resting orders per side), so the order margin of a
position is O(1) to recompute after any change.
"""

from __future__ import annotations

from typing import Final

from perpx.engine import formulas
from perpx.engine.book import Order
from perpx.engine.commands import MarginMode
from perpx.engine.values import NS_PER_DAY, AccountId, AssetId, ClientOrderId, MarketId, OrderId, Side

VOLUME_WINDOW_DAYS: Final = 30

# Constants rather than module lookups when compiled with mypyc.
_BUY: Final = Side.BUY
_ISOLATED: Final = MarginMode.ISOLATED


class Position:
    """One account's state in one market: position, settings and open-order exposure."""

    __slots__ = (
        "account_id",
        "buy_notional_atoms",
        "buy_qty_lots",
        "cost_atoms",
        "isolated_margin_atoms",
        "leverage",
        "margin_mode",
        "market",
        "open_orders",
        "order_margin_atoms",
        "qty_lots",
        "realized_pnl_atoms",
        "reduce_only_orders",
        "sell_notional_atoms",
        "sell_qty_lots",
    )

    def __init__(self, account_id: AccountId, market: MarketId, leverage: int) -> None:
        self.account_id = account_id
        self.market = market
        self.qty_lots = 0
        self.cost_atoms = 0
        self.isolated_margin_atoms = 0
        self.leverage = leverage
        self.margin_mode = MarginMode.CROSS
        self.realized_pnl_atoms = 0
        self.open_orders: dict[OrderId, Order] = {}
        self.reduce_only_orders: dict[OrderId, Order] = {}
        self.buy_qty_lots = 0
        self.buy_notional_atoms = 0
        self.sell_qty_lots = 0
        self.sell_notional_atoms = 0
        self.order_margin_atoms = 0

    @property
    def is_isolated(self) -> bool:
        return self.margin_mode is _ISOLATED

    def add_exposure(self, order: Order, lots: int, contract_atoms: int) -> None:
        """Count ``lots`` of a resting non-reduce-only order in the side sums (negative removes)."""
        notional = formulas.mul(order.price_ticks * lots, contract_atoms)
        if order.side is _BUY:
            self.buy_qty_lots += lots
            self.buy_notional_atoms += notional
        else:
            self.sell_qty_lots += lots
            self.sell_notional_atoms += notional

    def required_order_margin(self) -> int:
        """Initial margin the open orders need (Binance one-way style), rounded up.

        Orders that would only close the current position need none. Of each
        side's opening part (priced pro rata at its orders' average price),
        only the larger side is charged: in one-way mode both sides cannot
        add exposure at the same time.
        """
        buy_open, sell_open = self.opening_notionals()
        worst = buy_open if buy_open > sell_open else sell_open
        return formulas.initial_margin_atoms(worst, self.leverage) if worst else 0

    def opening_notionals(self) -> tuple[int, int]:
        """Notional of the buy and the sell orders beyond what would close the position (pro rata)."""
        # Runs after every change to a position's orders: the common cases (a flat
        # position, or a side that cannot close anything) take no call at all.
        qty = self.qty_lots
        lots = self.buy_qty_lots
        if lots <= 0:
            buy_open = 0
        elif qty >= 0:
            buy_open = self.buy_notional_atoms
        else:
            buy_open = _opening_notional(lots, self.buy_notional_atoms, -qty)
        lots = self.sell_qty_lots
        if lots <= 0:
            sell_open = 0
        elif qty <= 0:
            sell_open = self.sell_notional_atoms
        else:
            sell_open = _opening_notional(lots, self.sell_notional_atoms, qty)
        return buy_open, sell_open

    def worst_case_notional(self, mark_ticks: int, contract_atoms: int) -> int:
        """Largest exposure the position and its open orders could reach, in atoms.

        Per direction: the position at the mark, plus that side's opening
        orders at the larger of their own notional and their lots at the mark
        (an order below the mark can still fill and be marked up). The larger
        direction counts. It does not depend on the order the orders arrived in.
        """
        buy_open, sell_open = self.opening_notionals()
        qty = self.qty_lots
        lot_at_mark = mark_ticks * contract_atoms
        long_lots = qty if qty > 0 else 0
        short_lots = -qty if qty < 0 else 0
        buy_open_lots = max(0, self.buy_qty_lots - short_lots)
        sell_open_lots = max(0, self.sell_qty_lots - long_lots)
        long_side = formulas.mul(long_lots, lot_at_mark) + max(
            buy_open, formulas.mul(buy_open_lots, lot_at_mark)
        )
        short_side = formulas.mul(short_lots, lot_at_mark) + max(
            sell_open, formulas.mul(sell_open_lots, lot_at_mark)
        )
        return long_side if long_side > short_side else short_side

    def margin_after(
        self, side: Side, add_lots: int, add_notional: int, mark_ticks: int, contract_atoms: int
    ) -> tuple[int, int]:
        """``(order margin, worst-case notional)`` if ``add_lots`` worth ``add_notional`` joined ``side``.

        One pass over the figures of :meth:`required_order_margin` and :meth:`worst_case_notional`
        as they would be, without changing the position (negative lots and notional take away, as
        an amend's old size does). The placement check's hot path.
        """
        buy_lots, buy_notional = self.buy_qty_lots, self.buy_notional_atoms
        sell_lots, sell_notional = self.sell_qty_lots, self.sell_notional_atoms
        if side is _BUY:
            buy_lots += add_lots
            buy_notional += add_notional
        else:
            sell_lots += add_lots
            sell_notional += add_notional
        qty = self.qty_lots
        long_lots = qty if qty > 0 else 0
        short_lots = -qty if qty < 0 else 0
        if buy_lots <= 0:
            buy_open = 0
        elif short_lots == 0:
            buy_open = buy_notional
        else:
            buy_open = _opening_notional(buy_lots, buy_notional, short_lots)
        if sell_lots <= 0:
            sell_open = 0
        elif long_lots == 0:
            sell_open = sell_notional
        else:
            sell_open = _opening_notional(sell_lots, sell_notional, long_lots)
        larger = buy_open if buy_open > sell_open else sell_open
        margin = formulas.initial_margin_atoms(larger, self.leverage) if larger else 0
        lot_at_mark = mark_ticks * contract_atoms
        buy_open_lots = buy_lots - short_lots
        sell_open_lots = sell_lots - long_lots
        buy_at_mark = formulas.mul(buy_open_lots, lot_at_mark) if buy_open_lots > 0 else 0
        sell_at_mark = formulas.mul(sell_open_lots, lot_at_mark) if sell_open_lots > 0 else 0
        long_side = formulas.mul(long_lots, lot_at_mark) + (
            buy_open if buy_open > buy_at_mark else buy_at_mark
        )
        short_side = formulas.mul(short_lots, lot_at_mark) + (
            sell_open if sell_open > sell_at_mark else sell_at_mark
        )
        return margin, long_side if long_side > short_side else short_side

    def is_idle(self) -> bool:
        """No position, no orders, no isolated margin: nothing to keep but settings."""
        return self.qty_lots == 0 and not self.open_orders and self.isolated_margin_atoms == 0


class PositionChange:
    """What buying or selling lots for a value does to one position, computed before it is applied.

    The new figures of the position (``qty_lots``, ``cost_atoms``, ``isolated_margin_atoms``), the PnL
    the closing part realises, the change of the cross wallet (``wallet_atoms``: realised PnL and
    fee of a cross position; for an isolated one, minus the initial margin an opening part moves in, plus the
    margin a closing part releases, ``released_atoms``) and of long open interest. Pure: the matching guard previews a
    fill with it, and :func:`apply_position_change` applies the same figures, so the check and the
    ledger can never disagree.
    """

    __slots__ = (
        "cost_atoms",
        "isolated_margin_atoms",
        "oi_delta_lots",
        "qty_lots",
        "realized_atoms",
        "released_atoms",
        "wallet_atoms",
    )

    def __init__(
        self,
        realized_atoms: int,
        qty_lots: int,
        cost_atoms: int,
        isolated_margin_atoms: int,
        wallet_atoms: int,
        oi_delta_lots: int,
        released_atoms: int,
    ) -> None:
        self.realized_atoms = realized_atoms
        self.released_atoms = released_atoms
        self.qty_lots = qty_lots
        self.cost_atoms = cost_atoms
        self.isolated_margin_atoms = isolated_margin_atoms
        self.wallet_atoms = wallet_atoms
        self.oi_delta_lots = oi_delta_lots


def position_change(
    qty_lots: int,
    cost_atoms: int,
    isolated_margin_atoms: int,
    isolated: bool,
    leverage: int,
    side: Side,
    trade_lots: int,
    value_atoms: int,
    fee_atoms: int = 0,
) -> PositionChange:
    """Buy (``side`` BUY) or sell ``trade_lots`` for a total of ``value_atoms`` from the given position figures.

    ``fee_atoms`` (a trading fee; negative for a rebate) is paid from the position's scope: the
    cross wallet, or the isolated margin, before any margin is released, so a full close never
    leaves a fee behind in a flat position.

    The closing part realises PnL against its share of the cost basis; the opening part adds to
    the cost basis. Values split pro rata, the closing part rounding toward zero, so the two parts
    add up to ``value_atoms`` exactly (for a fill at a tick price the split is exact). An isolated
    close releases the closed lots' pro-rata share of the isolated margin plus the PnL they
    realised, so the lots that stay keep their share and a close at the mark leaves the margin
    ratio where it was. A partial close never releases a negative amount (a loss beyond the closed
    lots' margin stays in the position, where the fill guard and liquidation see it, instead of
    reaching into the cross wallet); a full close releases what is left, which the fill guard
    keeps at or above zero for every voluntary fill (``released_atoms`` < 0 is what it refuses).
    An isolated open moves the initial margin of the opening value out of the cross wallet.
    """
    old_qty = qty_lots
    realized = 0
    wallet = 0
    released = 0
    if isolated:
        isolated_margin_atoms -= fee_atoms
    else:
        wallet -= fee_atoms
    if old_qty == 0 or (old_qty > 0) == (side is _BUY):
        closed, opened = 0, trade_lots
    else:
        closed = min(trade_lots, old_qty if old_qty >= 0 else -old_qty)
        opened = trade_lots - closed
    closed_value = value_atoms if opened == 0 else formulas.trunc_div(value_atoms * closed, trade_lots)
    if closed:
        removed = formulas.cost_removed_atoms(cost_atoms, closed, old_qty)
        realized = formulas.realized_value_pnl_atoms(1 if old_qty > 0 else -1, closed_value, removed)
        cost_atoms -= removed
        qty_lots += closed * side
        if isolated:
            released = (
                formulas.isolated_margin_released_atoms(isolated_margin_atoms, closed, old_qty) + realized
            )
            if released < 0 and closed < (old_qty if old_qty >= 0 else -old_qty):
                released = 0
            isolated_margin_atoms += realized - released
            wallet += released
        else:
            wallet += realized
    if opened:
        open_value = value_atoms - closed_value
        cost_atoms += side * open_value
        qty_lots += opened * side
        if isolated:
            margin = formulas.initial_margin_atoms(open_value, leverage)
            wallet -= margin
            isolated_margin_atoms += margin
    oi_delta = (qty_lots if qty_lots > 0 else 0) - (old_qty if old_qty > 0 else 0)
    return PositionChange(realized, qty_lots, cost_atoms, isolated_margin_atoms, wallet, oi_delta, released)


def preview_position_change(
    position: Position, side: Side, trade_lots: int, value_atoms: int, fee_atoms: int = 0
) -> PositionChange:
    """:func:`position_change` from ``position``'s current figures (nothing is changed)."""
    return position_change(
        position.qty_lots,
        position.cost_atoms,
        position.isolated_margin_atoms,
        position.margin_mode is _ISOLATED,
        position.leverage,
        side,
        trade_lots,
        value_atoms,
        fee_atoms,
    )


def apply_position_change(
    account: Account,
    position: Position,
    asset: AssetId,
    side: Side,
    qty_lots: int,
    value_atoms: int,
    fee_atoms: int = 0,
) -> tuple[int, int]:
    """Buy (``side`` BUY) or sell ``qty_lots`` for a total of ``value_atoms``; return ``(realized, long OI delta)``.

    The one place a position changes hands, for fills (value = qty x price x contract, with the
    fill's fee) and for venue transfers at an exact value (insurance takeover, ADL; no fee). The
    figures are those of :func:`position_change`.
    """
    change = preview_position_change(position, side, qty_lots, value_atoms, fee_atoms)
    position.qty_lots = change.qty_lots
    position.cost_atoms = change.cost_atoms
    position.isolated_margin_atoms = change.isolated_margin_atoms
    position.realized_pnl_atoms += change.realized_atoms
    if change.wallet_atoms:
        account.credit(asset, change.wallet_atoms)
    return change.realized_atoms, change.oi_delta_lots


def _opening_notional(side_lots: int, side_notional: int, closable_lots: int) -> int:
    if side_lots <= closable_lots:
        return 0
    if closable_lots == 0:
        return side_notional
    return formulas.ceil_div(formulas.mul(side_notional, side_lots - closable_lots), side_lots)


class Account:
    """A trading account: wallets per asset, positions per market, order and transfer indexes."""

    __slots__ = (
        "account_id",
        "balances",
        "client_orders",
        "collateral_atoms",
        "name",
        "net_transfers",
        "positions",
        "volume_30d_atoms",
        "volume_days",
    )

    def __init__(self, account_id: AccountId, name: str) -> None:
        self.account_id = account_id
        self.name = name
        self.balances: dict[AssetId, int] = {}
        self.positions: dict[MarketId, Position] = {}
        self.client_orders: dict[ClientOrderId, OrderId] = {}
        self.volume_days: dict[int, int] = {}
        self.volume_30d_atoms = 0
        self.net_transfers: dict[AssetId, int] = {}
        """Money moved in minus money moved out without trading P&L, per asset (atoms; an asset at 0 is
        absent): deposits, withdrawals, loan payouts and repayments, collateral posted and returned.
        ``sessionLossLimit`` takes it off the change in equity, so a deposit cannot hide a loss."""
        self.collateral_atoms = 0
        """Multi-Assets Mode: what the account's collateral assets count for in its cross margin
        balance (index x (1 - haircut), at each asset's last fresh index); 0 outside the mode.
        Kept by :mod:`perpx.engine.collateral`; derived from the balances and prices, not hashed."""

    def balance(self, asset: AssetId) -> int:
        return self.balances.get(asset, 0)

    def credit(self, asset: AssetId, amount_atoms: int) -> int:
        """Add ``amount_atoms`` (negative debits) and return the new balance."""
        balance = self.balances.get(asset, 0) + amount_atoms
        self.balances[asset] = balance
        return balance

    def credit_transfer(self, asset: AssetId, amount_atoms: int) -> int:
        """:meth:`credit` money that enters (positive) or leaves the account without trading P&L, and
        count it in :attr:`net_transfers`; return the new balance."""
        total = self.net_transfers.get(asset, 0) + amount_atoms
        if total:
            self.net_transfers[asset] = total
        else:
            self.net_transfers.pop(asset, None)
        return self.credit(asset, amount_atoms)

    def record_volume(self, ts_ns: int, notional_atoms: int) -> None:
        """Add a fill's notional to today's bucket and drop days older than the window."""
        day = ts_ns // NS_PER_DAY
        days = self.volume_days
        days[day] = days.get(day, 0) + notional_atoms
        self.volume_30d_atoms += notional_atoms
        self.expire_volume(ts_ns)

    def expire_volume(self, ts_ns: int) -> None:
        """Forget daily volume that has left the 30-day window ending at ``ts_ns``."""
        oldest = ts_ns // NS_PER_DAY - (VOLUME_WINDOW_DAYS - 1)
        days = self.volume_days
        for first in days:  # only the oldest day: days are added in time order
            if first >= oldest:
                return  # the usual case: nothing has left the window
            break
        for day in list(days):
            if day >= oldest:
                break
            self.volume_30d_atoms -= days.pop(day)
