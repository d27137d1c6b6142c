"""The liquidation stage: margin calls, the book, the insurance fund, then auto-deleveraging.

Registered last in ``engine.consequences`` (after conditional orders), it runs whenever a mark
moved or an account changed (``engine.risk_dirty``: fills, transfers, funding, isolated margin).

What it does for a scope at or over 100% (Binance USDS-M model)
----------------------------------------------------------------
1. **Cancel** the open orders in scope (cross: every cross market of the account; isolated: that
   market) and recompute. Below 100% again: done (``ORDERS_CANCELED``).
2. **Partial**: for the position with the largest maintenance margin (cross) or the isolated
   position, the fewest lots whose close *at the mark*, minus the clearance fee on them, brings
   the ratio back under 100% (:meth:`Liquidation._partial_plan`). This exists only where the
   brackets allow it: closing lots frees ``mmr`` of their notional and costs ``liquidation_fee``
   of it, so it helps only in tiers whose ``mmr`` exceeds the fee (or when a smaller notional
   drops to a lower tier). An IOC order for those lots goes to the book, limited at the
   bankruptcy price; an isolated position keeps the margin its fills free. Below 100%: done
   (``PARTIAL``).
3. **Full**: an IOC order for the whole position, limited at the bankruptcy price (recomputed).
   What the book does not absorb is **taken over by the insurance fund** at the bankruptcy price
   as far as the fund's equity allows (:mod:`.insurance`); the rest is **auto-deleveraged**
   against opposite positions in ranking order at the same price (:mod:`.adl`). (``CLOSED``)
   The **clearance fee** (``liquidation_fee x`` the liquidated lots' notional at the mark, capped
   by what is left above bankruptcy) is paid to the fund after the book fills and before the
   takeover, so it is there to absorb the loss. Liquidation orders pay no trading fee.
4. **Deficit**: closing at or better than bankruptcy leaves nothing to cover; if rounding ever
   left an account with no position and a negative wallet, the fund pays it back to zero as far
   as its equity goes, and reports any part it could not (``DeficitStep.uncovered_atoms``). The
   fund never covers anything outside a liquidation: the fill guard (``mechanics.md`` 29) keeps
   every voluntary fill from leaving a deficit.
5. **Unwind**: where a market sets ``insurance_unwind_clip``, the fund sends a slice of each
   position it holds to the book every ``insurance_unwind_interval_s``, limited to
   ``insurance_unwind_limit`` from the mark (:mod:`.unwind`), instead of holding it forever.

One position of a cross account is handled per pass; the consequence loop repeats until no
scope is at or over 100%. Due scopes are handled least distressed first (the book's liquidity
goes first to the accounts it can still save), ordered by a key of the state only. Markets whose
index is stale, or which are halted, are paused: their positions are not liquidated until the
market is live again. After the scopes, the fund itself: if its equity is below zero, its largest
position is auto-deleveraged at the fund's bankruptcy price (``FUND_DELEVERAGED``).

Every liquidation emits a :class:`~perpx.engine.events.LiquidationExplained` record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Final

from perpx.engine import formulas
from perpx.engine.accounts import Account, Position, preview_position_change
from perpx.engine.book import Order
from perpx.engine.commands import MarketMode, OrderType, StpMode, TimeInForce
from perpx.engine.events import (
    AdlLeg,
    AdlStep,
    CancelStep,
    DeficitStep,
    FeeStep,
    IsolatedMarginAdjusted,
    LiquidationExplained,
    LiquidationFill,
    LiquidationStepT,
    MarginKeptStep,
    OrderAccepted,
    OrderFilled,
    OrderStep,
    ScopeFigures,
    TakeoverStep,
    TransferReason,
)
from perpx.engine.liquidation import adl
from perpx.engine.liquidation.figures import (
    CROSS,
    is_paused,
    liquidatable,
    scope_figures,
    scope_name,
    scope_positions,
)
from perpx.engine.liquidation.figures import fund_figures as _fund_figures
from perpx.engine.liquidation.insurance import (
    INSURANCE_ACCOUNT,
    ensure_fund_account,
    fund_cash,
    fund_equity,
    move_cash,
)
from perpx.engine.liquidation.transfer import transfer
from perpx.engine.liquidation.unwind import takeover_capacity_lots, unwind_fund
from perpx.engine.liquidation.watch import RiskWatch
from perpx.engine.values import RATE_SCALE, AccountId, ClientOrderId, MarketId, OrderId, Side

if TYPE_CHECKING:
    from perpx.engine.core import Core

FUND_SCOPE = "FUND"
_HALTED: Final = MarketMode.HALTED


@dataclass(frozen=True, slots=True)
class FundSummary:
    """The insurance fund at a glance (settlement-asset atoms)."""

    cash_atoms: int
    wallet_atoms: int
    equity_atoms: int
    positions: dict[MarketId, int]


class Liquidation:
    """The consequence stage for liquidation, the insurance fund and ADL; also their queries."""

    def __init__(self, engine: Core) -> None:
        self.engine = engine
        self.watch = RiskWatch(engine)
        ensure_fund_account(engine)
        self._paused: tuple[MarketId, ...] = ()
        self._seen_marks: dict[MarketId, int] = {}
        self.unwind_due_ns = 0
        """Venue time from which the fund's next unwind step may run (state: kept in snapshots)."""

    # ------------------------------------------------------------------ queries

    def liquidation_price(self, account_id: AccountId, market: MarketId) -> int | None:
        """Displayed liquidation price (ticks) of the account's position in ``market``; None for "--".

        Binance's one-way formula with the bracket loop (:func:`formulas.liquidation_price_ticks`):
        isolated ``W'`` is the isolated margin; cross ``W'`` is the cross wallet minus the
        maintenance margin plus the unrealised PnL of the account's other cross positions.
        """
        account = self.engine.accounts.get(account_id)
        position = account.positions.get(market) if account is not None else None
        if account is None or position is None or position.qty_lots == 0:
            return None
        return self._liquidation_ticks(
            account, position, position.qty_lots, position.cost_atoms, position.isolated_margin_atoms, 0
        )

    def liquidation_price_after(
        self,
        account_id: AccountId,
        market: MarketId,
        side: Side,
        qty_lots: int,
        price_ticks: int,
        fee_atoms: int,
    ) -> int | None:
        """:meth:`liquidation_price` as it would be once the account traded ``qty_lots`` on ``side`` at
        ``price_ticks`` in one fill paying ``fee_atoms`` (a pre-trade preview); nothing is changed.

        The position after is :func:`perpx.engine.accounts.preview_position_change`'s, the one
        settlement uses, so a single fill at that price gives exactly this price. ``None`` when the
        account is unknown or flat after the trade.
        """
        account = self.engine.accounts.get(account_id)
        if account is None:
            return None
        spec = self.engine.specs[market]
        position = account.positions.get(market) or Position(account_id, market, spec.default_leverage)
        value = formulas.notional_atoms(price_ticks, qty_lots, spec.contract_atoms)
        change = preview_position_change(position, side, qty_lots, value, fee_atoms)
        if change.qty_lots == 0:
            return None
        return self._liquidation_ticks(
            account,
            position,
            change.qty_lots,
            change.cost_atoms,
            change.isolated_margin_atoms,
            change.wallet_atoms,
        )

    def _liquidation_ticks(
        self,
        account: Account,
        position: Position,
        qty_lots: int,
        cost_atoms: int,
        isolated_margin_atoms: int,
        wallet_change_atoms: int,
    ) -> int | None:
        engine = self.engine
        market = position.market
        spec = engine.specs[market]
        if position.is_isolated:
            other_equity = isolated_margin_atoms
        else:
            other_equity = account.balance(engine.asset) + wallet_change_atoms + account.collateral_atoms
            for row in scope_figures(engine, account, None).positions:
                if row.market != market:
                    other_equity += row.unrealized_pnl_atoms - row.maintenance_atoms
        tiers = tuple((b.floor_atoms, b.cap_atoms, b.mmr_e8, b.cum_atoms) for b in spec.brackets)
        ticks, _tier = formulas.liquidation_price_ticks(
            1 if qty_lots > 0 else -1,
            abs(qty_lots),
            cost_atoms,
            other_equity,
            spec.contract_atoms,
            tiers,
        )
        return ticks

    def adl_quantile(self, account_id: AccountId, market: MarketId) -> int:
        """ADL lights of the account's position in ``market``: 1..5 (5 = first in line), 0 if flat."""
        return adl.quantile(self.engine, self.watch, account_id, market)

    def insurance_fund(self) -> FundSummary:
        engine = self.engine
        account = engine.accounts[INSURANCE_ACCOUNT]
        return FundSummary(
            cash_atoms=fund_cash(engine),
            wallet_atoms=account.balance(engine.asset),
            equity_atoms=fund_equity(engine),
            positions={m: p.qty_lots for m, p in sorted(account.positions.items()) if p.qty_lots},
        )

    def due_by_full_scan(self) -> list[tuple[AccountId, str]]:
        """Every live scope at or over 100%, by checking every account (tests and benchmarks)."""
        engine = self.engine
        out: list[tuple[AccountId, str]] = []
        for account_id in sorted(engine.accounts):
            if account_id == INSURANCE_ACCOUNT:
                continue
            account = engine.accounts[account_id]
            for market in self._scopes(account):
                figures = scope_figures(engine, account, market)
                if liquidatable(figures) and any(not r.paused for r in figures.positions):
                    out.append((account_id, scope_name(market)))
        return out

    def rebuild(self) -> None:
        """Recompute every band and the paused markets from the state (after a restore)."""
        ensure_fund_account(self.engine)
        self.watch.rebuild()
        self._paused = self._paused_markets()
        self._seen_marks = dict(self.engine.marks)

    # ------------------------------------------------------------------ the stage

    def run(self, moved: Mapping[MarketId, None]) -> bool:
        engine = self.engine
        watch = self.watch
        marks = engine.marks
        seen = self._seen_marks
        paused = self._paused_markets() if engine.index_stale or self._halted() else ()
        # a market needs a scan when its mark changed since the last scan (a new last trade price
        # alone moves no band), or when it was paused and is live again
        scan = [m for m in moved if m not in paused and m in marks and marks[m] != seen.get(m)]
        scan += [m for m in self._paused if m not in paused and m not in scan and m in marks]
        self._paused = paused
        dirty = engine.risk_dirty
        if not scan and not dirty:
            if not self._fund_live():
                return False
            return self._fund_check() or self._unwind()
        candidates: dict[AccountId, None] = dict(dirty)
        dirty.clear()
        if scan:
            watch.flush()
            for market in scan:
                seen[market] = marks[market]
                for account_id in watch.pop_due(market, marks[market]):
                    candidates[account_id] = None
        due: list[tuple[Any, ...]] = []
        converted = False
        for account_id in candidates:
            account = engine.accounts.get(account_id)
            if account is None or account_id == INSURANCE_ACCOUNT:
                continue
            if engine.multi_assets.debt_due(account):
                converted = self._convert_debt(account) or converted
                continue
            if watch.check(account):
                for scope in self._scopes(account):
                    figures = scope_figures(engine, account, scope)
                    if liquidatable(figures) and any(not r.paused for r in figures.positions):
                        due.append((*self._urgency(figures), account_id, scope_name(scope), scope))
        due.sort(key=lambda row: row[:4])
        acted = False
        for row in due:
            due_id: AccountId = row[2]
            due_scope: MarketId | None = row[4]
            acted = self._liquidate(engine.accounts[due_id], due_scope) or acted
        return self._fund_check() or acted or converted or self._unwind()

    def unwind_due(self, now_ns: int) -> bool:
        """A step of the fund's unwind is due at ``now_ns`` (the engine runs the stages for it).

        True when the next step's time has come and the fund holds a position in a market that sets
        an unwind clip and is live: venue time alone (an ``AdvanceClock`` with no price move) makes
        the fund unwind on schedule. A position no market may unwind never makes it due, so an idle
        fund costs each command one look at its (few) positions.
        """
        if now_ns < self.unwind_due_ns:
            return False
        engine = self.engine
        for market, position in engine.accounts[INSURANCE_ACCOUNT].positions.items():
            if (
                position.qty_lots
                and engine.specs[market].risk.insurance_unwind_clip_e8
                and not is_paused(engine, market)
            ):
                return True
        return False

    def _unwind(self) -> bool:
        """One unwind step of the fund's positions when one is due (:mod:`.unwind`)."""
        if self.engine.now_ns < self.unwind_due_ns or not self._fund_live():
            return False
        acted, self.unwind_due_ns = unwind_fund(self.engine)
        return acted

    def _halted(self) -> bool:
        return _HALTED in self.engine.modes.values()

    def _fund_live(self) -> bool:
        """The fund holds a position (its equity moves with the marks)."""
        for position in self.engine.accounts[INSURANCE_ACCOUNT].positions.values():
            if position.qty_lots:
                return True
        return False

    def _paused_markets(self) -> tuple[MarketId, ...]:
        engine = self.engine
        return tuple(m for m in engine.specs if is_paused(engine, m))

    @staticmethod
    def _scopes(account: Account) -> list[MarketId | None]:
        scopes: list[MarketId | None] = []
        cross = False
        for market in sorted(account.positions):
            position = account.positions[market]
            if position.qty_lots == 0:
                continue
            if position.is_isolated:
                scopes.append(market)
            else:
                cross = True
        return ([None] if cross else []) + scopes

    @staticmethod
    def _urgency(figures: ScopeFigures) -> tuple[int, Fraction | int]:
        """Sort key, least distressed first: the exact ratio, then (bankrupt) the size of the hole."""
        if figures.margin_balance_atoms > 0:
            return 0, Fraction(figures.maintenance_atoms, figures.margin_balance_atoms)
        return 1, -figures.margin_balance_atoms

    def _deficit(self, account: Account) -> int:
        """A negative wallet of an account holding nothing else (no position, no isolated margin).

        In Multi-Assets Mode a negative wallet backed by collateral is a debt, not a deficit: the
        collateral is converted first (:meth:`_convert_debt`), and only what it cannot pay is one.
        """
        wallet = account.balance(self.engine.asset)
        if wallet >= 0 or self.engine.multi_assets.holds_collateral(account):
            return 0
        for position in account.positions.values():
            if position.qty_lots or position.isolated_margin_atoms:
                return 0
        return -wallet

    # ------------------------------------------------------------------ one scope

    def _liquidate(self, account: Account, scope: MarketId | None) -> bool:
        engine = self.engine
        before = scope_figures(engine, account, scope)
        if not liquidatable(before):
            return False
        live = [row for row in before.positions if not row.paused]
        if not live:
            return False
        steps: list[LiquidationStepT] = []
        canceled = self._cancel_scope_orders(account, scope)
        if canceled:
            now = scope_figures(engine, account, scope)
            steps.append(CancelStep(order_ids=canceled, ratio_after_e8=now.ratio_e8))
            if not liquidatable(now):
                self._explain(account, scope, None, "ORDERS_CANCELED", before, steps, None, None, None, 0)
                return True
        target = min(live, key=lambda row: (-row.maintenance_atoms, row.market))
        market = target.market
        position = account.positions[market]
        spec = engine.specs[market]
        mark = engine.marks[market]
        display = self.liquidation_price(account.account_id, market)
        plan = self._partial_plan(account, scope, position)
        bankruptcy: tuple[int, int] | None = None
        if plan:
            wallet_before = account.balance(engine.asset)
            step, bankruptcy = self._book_order(account, scope, position, plan, partial=True)
            steps.append(step)
            if step.filled_lots:
                if position.is_isolated:
                    # liquidation orders pay no fee: the wallet moved by the released margin only
                    released = account.balance(engine.asset) - wallet_before
                    steps.append(self._keep_margin(account, position, released))
                surplus = scope_figures(engine, account, scope).margin_balance_atoms
                steps.append(
                    self._clearance_fee(
                        account, scope, position, step.filled_lots, mark, surplus, position.is_isolated
                    )
                )
            if not liquidatable(scope_figures(engine, account, scope)):
                self._explain(
                    account,
                    scope,
                    market,
                    "PARTIAL",
                    before,
                    steps,
                    display,
                    bankruptcy,
                    spec.risk.liquidation_fee_e8,
                    plan,
                )
                return True
        whole = abs(position.qty_lots)
        sign = 1 if position.qty_lots > 0 else -1
        wallet_start = account.balance(engine.asset)
        step, bankruptcy = self._book_order(account, scope, position, whole, partial=False)
        steps.append(step)
        remaining = abs(position.qty_lots)
        # What will be left above bankruptcy is known now: the margin balance, plus what closing the
        # remaining lots at the bankruptcy price instead of the mark changes (plus, isolated, what the
        # fills already released to the cross wallet). The fee goes to the fund before the fund decides
        # how much it can take over. The remaining lots' value is rounded against the account, as an
        # ADL leg rounds it: when the fund takes nothing over, nobody takes the rounding atom, so the
        # fee must not count on it (or it would leave the scope one atom below zero).
        released = account.balance(engine.asset) - wallet_start if scope is not None else 0
        at_bankruptcy = formulas.pro_rata_atoms(bankruptcy[0], remaining, whole, round_up=sign < 0)
        surplus = (
            released
            + scope_figures(engine, account, scope).margin_balance_atoms
            + sign * (at_bankruptcy - remaining * mark * spec.contract_atoms)
        )
        from_isolated = position.is_isolated and remaining > 0
        steps.append(self._clearance_fee(account, scope, position, whole, mark, surplus, from_isolated))
        if remaining:
            self._absorb(account, position, remaining, whole, bankruptcy[0], mark, steps)
        if scope is None and self._flat(account) and account.balance(engine.asset) < 0:
            steps.extend(engine.multi_assets.convert(account))  # Multi-Assets Mode: pay the debt
        deficit = self._deficit(account)
        if deficit:
            steps.append(self._cover(account, deficit))
        self._explain(
            account,
            scope,
            market,
            "CLOSED",
            before,
            steps,
            display,
            bankruptcy,
            spec.risk.liquidation_fee_e8,
            plan,
        )
        return True

    @staticmethod
    def _flat(account: Account) -> bool:
        """No position and no isolated margin left."""
        for position in account.positions.values():
            if position.qty_lots or position.isolated_margin_atoms:
                return False
        return True

    def _convert_debt(self, account: Account) -> bool:
        """Multi-Assets Mode, no position left: the collateral no longer covers the settlement debt.

        Converts collateral to the insurance fund at the index less the discount until the debt is
        paid (:meth:`MultiAssets.convert`); what no collateral is left to pay, the fund covers as a
        deficit. Recorded as a ``COLLATERAL_CONVERTED`` liquidation. Nothing at a stale index.
        """
        engine = self.engine
        before = scope_figures(engine, account, None)
        steps: list[LiquidationStepT] = list(engine.multi_assets.convert(account))
        if not steps:
            return False
        deficit = self._deficit(account)
        if deficit:
            steps.append(self._cover(account, deficit))
        self._explain(account, None, None, "COLLATERAL_CONVERTED", before, steps, None, None, None, 0)
        return True

    def _cancel_scope_orders(self, account: Account, scope: MarketId | None) -> tuple[OrderId, ...]:
        """Cancel the scope's open orders: every cross market's (cross) or the isolated market's."""
        orders: list[Order] = []
        for market in sorted(account.positions):
            position = account.positions[market]
            if (scope is None and not position.is_isolated) or market == scope:
                orders.extend(order for _, order in sorted(position.open_orders.items()))
        return self._cancel(orders)

    def _cancel(self, orders: list[Order]) -> tuple[OrderId, ...]:
        engine = self.engine
        for order in orders:
            engine.cancel_order(order)
        if orders:
            engine.post_trade()
        return tuple(order.order_id for order in orders)

    def _partial_plan(self, account: Account, scope: MarketId | None, position: Position) -> int:
        """The fewest lots whose liquidation brings the scope back under 100%; 0 if none does.

        Selling ``q`` of ``Q`` lots (a long; a short buys) into the book down to the bankruptcy
        price leaves the margin balance less the *slippage* against the mark (the book walked
        level by level) and less the clearance fee on ``q`` at the mark, and the maintenance
        margin of ``Q - q`` lots (in the tier of their notional) plus the scope's others.
        ``excess(q) = 10**8 x MM' - (10**8 - 1) x balance'`` is convex in ``q``: maintenance
        margin is convex in the notional, the slippage grows as the walk goes deeper, the fee is
        linear. So its minimum is found by bisecting its slope, and the fewest lots that restore
        (``excess <= 0``) by bisecting the falling part before it. It helps only where the
        brackets allow: closing lots frees ``mmr`` of their notional but costs ``liquidation_fee``
        of it plus the slippage. A ``q`` the book cannot fill at or better than the bankruptcy
        price is not a plan.
        """
        engine = self.engine
        size = abs(position.qty_lots)
        if size < 2:
            return 0
        figures = scope_figures(engine, account, scope)
        balance = figures.margin_balance_atoms
        if balance <= 0:
            return 0
        spec = engine.specs[position.market]
        mark = engine.marks[position.market]
        contract = spec.contract_atoms
        fee_rate = spec.risk.liquidation_fee_e8
        sign = 1 if position.qty_lots > 0 else -1
        own = next(r for r in figures.positions if r.market == position.market)
        others = figures.maintenance_atoms - own.maintenance_atoms
        value = formulas.bankruptcy_value_atoms(sign, position.cost_atoms, balance - own.unrealized_pnl_atoms)
        limit = formulas.bankruptcy_limit_ticks(value, size, contract, sign)
        # the levels a reduce order could take, best first, down (a long) or up (a short) to the limit
        book = engine.books[position.market]
        levels: list[tuple[int, int]] = []
        depth = 0
        for price, lots in book.opposite(Side.SELL if sign > 0 else Side.BUY).depth():
            if (price - limit) * sign < 0:
                break
            levels.append((price, lots))
            depth += lots
            if depth >= size - 1:
                break
        top = min(size - 1, depth)
        if top < 1:
            return 0

        def excess(q: int) -> int:
            proceeds = 0  # what q lots fetch in the book, in atoms (a short: what they cost)
            left = q
            for price, lots in levels:
                take = lots if lots < left else left
                proceeds += price * take * contract
                left -= take
                if left == 0:
                    break
            slippage = sign * (q * mark * contract - proceeds)
            after = balance - slippage
            after -= formulas.clearance_fee_atoms(q * mark * contract, fee_rate, after)
            notional = (size - q) * mark * contract
            bracket = spec.bracket_for_notional(notional)
            maintenance = others + formulas.maintenance_margin_atoms(
                notional, bracket.mmr_e8, bracket.cum_atoms
            )
            if after <= 0:
                return 2**62
            return RATE_SCALE * maintenance - (RATE_SCALE - 1) * after

        low, high = 1, top  # the minimum: the first q whose next step does not fall
        while low < high:
            middle = (low + high) // 2
            if excess(middle + 1) >= excess(middle):
                high = middle
            else:
                low = middle + 1
        if excess(low) > 0:
            return 0
        first, last = 1, low  # falling on [1, low]: the first q that restores
        while first < last:
            middle = (first + last) // 2
            if excess(middle) <= 0:
                last = middle
            else:
                first = middle + 1
        return first if excess(first) <= 0 else 0

    def _book_order(
        self, account: Account, scope: MarketId | None, position: Position, qty: int, partial: bool
    ) -> tuple[OrderStep, tuple[int, int]]:
        """Send an IOC reduce-only order for ``qty`` lots limited at the bankruptcy price.

        Returns the step and ``(bankruptcy value of the whole position, limit ticks)``.
        """
        engine = self.engine
        market = position.market
        spec = engine.specs[market]
        sign = 1 if position.qty_lots > 0 else -1
        figures = scope_figures(engine, account, scope)
        own = next(r for r in figures.positions if r.market == market)
        other_equity = figures.margin_balance_atoms - own.unrealized_pnl_atoms
        value = formulas.bankruptcy_value_atoms(sign, position.cost_atoms, other_equity)
        limit = formulas.bankruptcy_limit_ticks(value, abs(position.qty_lots), spec.contract_atoms, sign)
        side = Side.SELL if sign > 0 else Side.BUY
        order_limit = max(limit, 1) if side is Side.SELL else limit
        order_id = engine.new_order_id()
        order = Order(
            order_id,
            account.account_id,
            market,
            side,
            OrderType.LIMIT,
            TimeInForce.IOC,
            order_limit,
            qty,
            True,
            ClientOrderId(f"autoclose-{order_id}"),
            StpMode.EXPIRE_MAKER,
            engine.now_ns,
            fee_free=True,
        )
        engine.emit(
            OrderAccepted(
                ts_ns=engine.now_ns,
                order_id=order_id,
                account_id=account.account_id,
                market=market,
                side=side,
                order_type=OrderType.LIMIT,
                tif=TimeInForce.IOC,
                price_ticks=order_limit,
                qty_lots=qty,
                reduce_only=True,
                client_order_id=order.client_order_id,
                stp=order.stp,
            )
        )
        makers: dict[int, AccountId] = {}
        taken: list[OrderFilled] = []
        for event in engine.match(order, position):
            if event.order_id == order_id:
                taken.append(event)
            else:
                makers[event.trade_id] = event.account_id
        fills = tuple(
            LiquidationFill(
                trade_id=f.trade_id,
                maker_account_id=makers[f.trade_id],
                price_ticks=f.price_ticks,
                qty_lots=f.qty_lots,
            )
            for f in taken
        )
        filled = sum(f.qty_lots for f in fills)
        step = OrderStep(
            order_id=order_id,
            market=market,
            side=side,
            partial=partial,
            qty_lots=qty,
            bankruptcy_value_atoms=value,
            limit_ticks=order_limit,
            filled_lots=filled,
            fills=fills,
            expired_lots=qty - filled,
        )
        return step, (value, limit)

    def _keep_margin(self, account: Account, position: Position, released: int) -> LiquidationStepT:
        """Move the margin a partial liquidation's fills released back into the isolated position.

        The fills release their share of the isolated margin to the cross wallet, as any close
        does; a partial liquidation keeps it in the position, which is what lowers its ratio.
        """
        engine = self.engine
        account.credit(engine.asset, -released)
        position.isolated_margin_atoms += released
        engine.headroom_atoms.pop(account.account_id, None)
        engine.emit(
            IsolatedMarginAdjusted(
                ts_ns=engine.now_ns,
                account_id=account.account_id,
                market=position.market,
                delta_atoms=released,
                isolated_margin_atoms=position.isolated_margin_atoms,
            )
        )
        return MarginKeptStep(amount_atoms=released)

    def _clearance_fee(
        self,
        account: Account,
        scope: MarketId | None,
        position: Position,
        lots: int,
        mark: int,
        surplus: int,
        from_isolated: bool,
    ) -> FeeStep:
        engine = self.engine
        spec = engine.specs[position.market]
        notional = formulas.notional_atoms(mark, lots, spec.contract_atoms)
        rate = spec.risk.liquidation_fee_e8
        fee = formulas.clearance_fee_atoms(notional, rate, surplus)
        move_cash(
            engine, account, position.market if from_isolated else scope, fee, "CLEARANCE_FEE", from_isolated
        )
        return FeeStep(
            qty_lots=lots,
            notional_atoms=notional,
            rate_e8=rate,
            due_atoms=formulas.ceil_div(notional * rate, RATE_SCALE),
            surplus_atoms=surplus,
            fee_atoms=fee,
        )

    # ------------------------------------------------------------------ what the book could not absorb

    def _absorb(
        self,
        account: Account,
        position: Position,
        remaining: int,
        whole: int,
        value: int,
        mark: int,
        steps: list[LiquidationStepT],
    ) -> None:
        """Insurance takeover of ``remaining`` lots at the bankruptcy price, as far as the fund can; ADL the rest.

        The fund takes lots while its equity covers the loss on them and, where the market sets
        ``insurance_takeover_cap``, while its position stays within the cap
        (:func:`.unwind.takeover_capacity_lots`). ``value`` is the bankruptcy value of ``whole`` lots. The liquidated account gets its
        share rounded in its favour; ADL counterparties theirs in theirs; the fund the remainder.
        """
        engine = self.engine
        market = position.market
        sign = 1 if position.qty_lots > 0 else -1
        lot = mark * engine.specs[market].contract_atoms
        total = formulas.pro_rata_atoms(value, remaining, whole, round_up=sign > 0)

        def adl_value(lots: int) -> int:
            return formulas.pro_rata_atoms(value, lots, whole, round_up=sign < 0)

        def fund_loss(lots: int) -> int:
            return sign * (total - adl_value(remaining - lots) - lots * lot)

        equity = fund_equity(engine)
        loss_all = fund_loss(remaining)
        if loss_all <= 0 or loss_all <= equity:
            taken = remaining
        elif equity <= 0:
            taken = 0
        else:
            taken = min(remaining, equity * remaining // loss_all)
            while taken < remaining and fund_loss(taken + 1) <= equity:
                taken += 1
            while taken > 0 and fund_loss(taken) > equity:
                taken -= 1
        capacity = takeover_capacity_lots(engine, market, sign, equity)
        capped = 0
        if capacity is not None and capacity < taken:
            capped, taken = taken - capacity, capacity
        rest = remaining - taken
        if taken or capped:
            fund_value = total - adl_value(rest) if taken else 0
            if taken:
                self._to_fund(account, market, sign, taken, fund_value)
            steps.append(
                TakeoverStep(
                    qty_lots=taken,
                    value_atoms=fund_value,
                    loss_atoms=fund_loss(taken) if taken else 0,
                    fund_equity_atoms=equity,
                    capacity_lots=taken if capacity is None else capacity,
                    forced=False,
                    capped_lots=capped,
                )
            )
        if rest:
            self._deleverage(account, market, sign, rest, adl_value(rest), lot, steps)

    def _to_fund(self, account: Account, market: MarketId, sign: int, lots: int, value: int) -> None:
        engine = self.engine
        fund = engine.accounts[INSURANCE_ACCOUNT]
        seller, buyer = (account, fund) if sign > 0 else (fund, account)
        transfer(engine, seller, buyer, market, lots, value, TransferReason.INSURANCE_TAKEOVER)

    def _deleverage(
        self,
        account: Account,
        market: MarketId,
        sign: int,
        lots: int,
        value: int,
        lot: int,
        steps: list[LiquidationStepT],
    ) -> int:
        """Close ``lots`` of ``account``'s position (sign ``sign``) for ``value`` against the ADL queue.

        Each counterparty bears its share of the shortfall (``value`` against the mark) only as far
        as its own margin balance goes: a leg never takes a counterparty below zero, so the queue
        moves on to the next one. Returns the lots closed against the queue.
        """
        engine = self.engine
        rows = adl.queue(engine, self.watch, market, -sign, account.account_id)
        legs: list[AdlLeg] = []
        left = lots
        done_lots = done_value = 0
        shortfall = sign * (value - lots * lot)  # what the counterparties bear against the mark, all lots
        for rank, row in enumerate(rows, 1):
            if left == 0:
                break
            take = min(left, abs(row.position.qty_lots))
            other = engine.accounts[row.account_id]
            if shortfall > 0:
                scope = row.position.market if row.position.is_isolated else None
                room = scope_figures(engine, other, scope).margin_balance_atoms - 1  # a leg may round 1 up
                take = min(take, max(0, room) * lots // shortfall)
                if take == 0:
                    continue
            canceled = self._cancel(
                [
                    o
                    for m in sorted(other.positions)
                    for _, o in sorted(other.positions[m].open_orders.items())
                ]
            )
            done_lots += take
            cumulative = formulas.pro_rata_atoms(value, done_lots, lots, round_up=False)
            leg_value = cumulative - done_value
            done_value = cumulative
            seller, buyer = (account, other) if sign > 0 else (other, account)
            realized_seller, realized_buyer = transfer(
                engine, seller, buyer, market, take, leg_value, TransferReason.ADL
            )
            legs.append(
                AdlLeg(
                    account_id=row.account_id,
                    rank=rank,
                    score=f"{row.score.numerator}/{row.score.denominator}",
                    quantile=adl.quantile_of(rank - 1, len(rows)),
                    qty_lots=take,
                    value_atoms=leg_value,
                    realized_pnl_atoms=realized_buyer if sign > 0 else realized_seller,
                    canceled_order_ids=canceled,
                )
            )
            left -= take
        steps.append(
            AdlStep(
                qty_lots=done_lots,
                value_atoms=done_value,
                shortfall_atoms=sign * (done_value - done_lots * lot),
                ranking=engine.specs[market].risk.adl_ranking,
                queue_size=len(rows),
                legs=tuple(legs),
            )
        )
        if left and account.account_id != INSURANCE_ACCOUNT:
            # when the fund itself holds the other side, or the queue's margin could not bear the
            # shortfall: the fund takes the rest, whatever its equity, and deleverages itself next
            # (never for the fund's own deleveraging: every opposite position is then someone else's)
            equity = fund_equity(engine)
            rest_value = value - done_value
            self._to_fund(account, market, sign, left, rest_value)
            steps.append(
                TakeoverStep(
                    qty_lots=left,
                    value_atoms=rest_value,
                    loss_atoms=sign * (rest_value - left * lot),
                    fund_equity_atoms=equity,
                    capacity_lots=0,
                    forced=True,
                )
            )
        return done_lots

    # ------------------------------------------------------------------ deficits and the fund

    def _cover(self, account: Account, deficit: int) -> DeficitStep:
        """Pay ``deficit`` back to ``account`` from the fund, at most the fund's equity."""
        engine = self.engine
        covered = min(deficit, max(0, fund_equity(engine)))
        move_cash(engine, account, None, -covered, "DEFICIT_COVER", False)
        return DeficitStep(
            amount_atoms=covered, fund_cash_atoms=fund_cash(engine), uncovered_atoms=deficit - covered
        )

    def _fund_check(self) -> bool:
        """Deleverage the fund's largest live position if the fund's equity is below zero."""
        if not self._fund_live():
            return False
        engine = self.engine
        fund = engine.accounts[INSURANCE_ACCOUNT]
        live = [p for m, p in sorted(fund.positions.items()) if p.qty_lots and not is_paused(engine, m)]
        if not live:
            return False
        equity = fund_equity(engine)
        if equity >= 0:
            return False
        cash = fund_cash(engine) + fund.balance(engine.asset)
        before = _fund_figures(engine, cash, fund)
        rows = {r.market: r for r in before.positions}
        position = min(live, key=lambda p: (-rows[p.market].notional_atoms, p.market))
        market = position.market
        sign = 1 if position.qty_lots > 0 else -1
        lots = abs(position.qty_lots)
        value = formulas.bankruptcy_value_atoms(
            sign, position.cost_atoms, equity - rows[market].unrealized_pnl_atoms
        )
        mark = engine.marks[market]
        steps: list[LiquidationStepT] = []
        contract = engine.specs[market].contract_atoms
        if not self._deleverage(fund, market, sign, lots, value, mark * contract, steps):
            return False  # no counterparty can bear any of it now; the fund stays short of equity
        after = _fund_figures(engine, fund_cash(engine) + fund.balance(engine.asset), fund)
        engine.emit(
            LiquidationExplained(
                ts_ns=engine.now_ns,
                account_id=INSURANCE_ACCOUNT,
                scope=FUND_SCOPE,
                market=market,
                outcome="FUND_DELEVERAGED",
                threshold_e8=RATE_SCALE,
                before=before,
                after=after,
                liquidation_price_ticks=None,
                bankruptcy_value_atoms=value,
                bankruptcy_price_ticks=formulas.bankruptcy_limit_ticks(
                    value, lots, engine.specs[market].contract_atoms, sign
                ),
                liquidation_fee_e8=0,
                partial_plan_lots=0,
                steps=tuple(steps),
            )
        )
        return True

    def _explain(
        self,
        account: Account,
        scope: MarketId | None,
        market: MarketId | None,
        outcome: str,
        before: ScopeFigures,
        steps: list[LiquidationStepT],
        display: int | None,
        bankruptcy: tuple[int, int] | None,
        fee_rate: int | None,
        plan: int,
    ) -> None:
        engine = self.engine
        engine.emit(
            LiquidationExplained(
                ts_ns=engine.now_ns,
                account_id=account.account_id,
                scope=scope_name(scope) if scope is not None else CROSS,
                market=market,
                outcome=outcome,
                threshold_e8=RATE_SCALE,
                before=before,
                after=scope_figures(engine, account, scope),
                liquidation_price_ticks=display,
                bankruptcy_value_atoms=None if bankruptcy is None else bankruptcy[0],
                bankruptcy_price_ticks=None if bankruptcy is None else bankruptcy[1],
                liquidation_fee_e8=fee_rate or 0,
                partial_plan_lots=plan,
                steps=tuple(steps),
            )
        )


__all__ = ["FUND_SCOPE", "FundSummary", "Liquidation", "scope_positions"]
