"""Invariants the engine holds after every command, recomputed from scratch.

A violation is a bug, not a business outcome: :func:`check` raises
:class:`InvariantViolation` and the caller stops. Tests call it after every
command; production may (``perpx serve --check-invariants``).

1. **Conservation** per asset: wallets + isolated margins - open-position cost
   + fees collected + insurance fund + collateral held by loans = deposits -
   withdrawals (a loan moves money between accounts; its debt is not money).
2. **Open interest**: per market, long lots = short lots.
3. **Book**: never crossed; every level non-empty; every resting order
   indexed, owned by an existing account, with positive leaves.
4. **Reserved margin**: each position's side sums equal its resting orders',
   and its order margin equals what those orders need.
5. **Reduce-only**: every resting reduce-only order is on the closing side of
   a non-zero position and no larger than it.
6. **Indexes**: client order ids map exactly to open orders.
7. **Conditional orders**: every untriggered order belongs to an existing
   account and listed market, sits in exactly the index place its type, side,
   working type and trailing state call for (sorted lists hold exactly the
   pending orders, in order), per-account counts and client algo ids match,
   no account exceeds ``max_algo_orders``, and none is due at the current
   prices (unless price protection holds it).
8. **Funding and pricing**: per market, funding paid = funding received +
   rounding residue (sent to the insurance fund), with ``0 <= residue <=``
   the number of payments; every position record is indexed under its market
   (``Engine.market_positions``, which funding settles); only markets with
   index sources are index-stale; basis samples lie in their window, oldest first;
   every mark lies within ``index x (1 +/- mark_index_band)``.
* **Loans**: every open loan belongs to an existing account, is indexed once under
  its (account, loan asset, collateral asset), has a positive debt and nothing negative.
* **Liquidation and the fund**: no scope (cross account, isolated position) outside
  the insurance fund is at or over 100% margin ratio unless all its positions are in
  paused markets (index stale, or halted); no account holding nothing has a
  negative wallet (no fill leaves one, and the fund covers nothing outside a
  liquidation or a settlement); the fund's equity is never below zero, except while
  it holds positions and all of them are paused (a forced takeover beyond its equity
  is deleveraged in the same command); the fee account never goes below zero (no
  rebate beyond the fees collected). The safety bands hold every account with a
  position (so a mark update can find every scope that needs a look). A known
  headroom ``H`` (``Engine.headroom_atoms``) belongs to an account without an
  isolated position and is a lower bound of its slack: ``(10**8 - 1) x H <=``
  the cross scope's slack on the current marks.
"""

from __future__ import annotations

from perpx.engine.book import Order
from perpx.engine.engine import Engine
from perpx.engine.pricing.mark import index_band_ticks
from perpx.engine.triggers import (
    FALL,
    RISE,
    ConditionalOrder,
    TriggerIndex,
    protection_blocks,
    quiet_range,
    reached,
)
from perpx.engine.values import RATE_SCALE, AccountId, AlgoId, AssetId, ClientAlgoId, MarketId, OrderId, Side


class InvariantViolation(AssertionError):
    """The engine's state broke a rule it must never break."""


def check(engine: Engine) -> None:
    """Verify every invariant; raise :class:`InvariantViolation` naming the first broken one."""
    problems = violations(engine)
    if problems:
        raise InvariantViolation("; ".join(problems))


def violations(engine: Engine) -> list[str]:
    """Every broken invariant, as sentences (empty when the state is sound)."""
    problems: list[str] = []
    _conservation(engine, problems)
    _open_interest(engine, problems)
    _books(engine, problems)
    _positions(engine, problems)
    _liquidation(engine, problems)
    _conditional_orders(engine, problems)
    _pricing(engine, problems)
    _loans(engine, problems)
    _multi_assets(engine, problems)
    return problems


def _conservation(engine: Engine, problems: list[str]) -> None:
    assets: dict[AssetId, int] = {}
    for account in engine.accounts.values():
        for asset, balance in account.balances.items():
            assets[asset] = assets.get(asset, 0) + balance
        for position in account.positions.values():
            settle = engine.asset
            assets[settle] = assets.get(settle, 0) + position.isolated_margin_atoms - position.cost_atoms
    for asset, atoms in engine.lending.collateral_held().items():  # collateral held by open loans
        assets[asset] = assets.get(asset, 0) + atoms
    names = set(assets) | set(engine.deposits_atoms) | set(engine.fees_atoms)
    for asset in sorted(names):
        held = assets.get(asset, 0) + engine.fees_atoms.get(asset, 0) + engine.insurance_atoms.get(asset, 0)
        net = engine.deposits_atoms.get(asset, 0) - engine.withdrawals_atoms.get(asset, 0)
        if held != net:
            problems.append(f"conservation of {asset}: ledger holds {held} atoms but net deposits are {net}")


def _open_interest(engine: Engine, problems: list[str]) -> None:
    long_lots: dict[MarketId, int] = {}
    short_lots: dict[MarketId, int] = {}
    for account in engine.accounts.values():
        for market, position in account.positions.items():
            if position.qty_lots > 0:
                long_lots[market] = long_lots.get(market, 0) + position.qty_lots
            elif position.qty_lots < 0:
                short_lots[market] = short_lots.get(market, 0) - position.qty_lots
    for market in engine.specs:
        if engine.open_interest_lots[market] != long_lots.get(market, 0):
            problems.append(
                f"open interest of {market}: tracked {engine.open_interest_lots[market]}"
                f" but positions hold {long_lots.get(market, 0)} long"
            )
        if long_lots.get(market, 0) != short_lots.get(market, 0):
            problems.append(
                f"open interest of {market}: {long_lots.get(market, 0)} long vs {short_lots.get(market, 0)} short"
            )


def _books(engine: Engine, problems: list[str]) -> None:
    seen: dict[OrderId, Order] = {}
    for market, book in engine.books.items():
        if book.is_crossed():
            problems.append(f"book {market} is crossed: {book.bids.best_price()} >= {book.asks.best_price()}")
        for side in (book.bids, book.asks):
            if sorted(side.keys) != side.keys or len(side.keys) != len(side.levels):
                problems.append(f"book {market}: level keys out of order or out of step with levels")
            for price, level in side.levels.items():
                if not level:
                    problems.append(f"book {market}: empty level at {price}")
                for order in level.values():
                    seen[order.order_id] = order
                    if order.price_ticks != price or order.leaves_lots <= 0:
                        problems.append(f"book {market}: {order!r} misfiled or empty at level {price}")
                    account = engine.accounts.get(order.account_id)
                    if account is None or order.order_id not in account.positions[market].open_orders:
                        problems.append(f"book {market}: {order!r} is not indexed by its account")
    if seen.keys() != engine.orders.keys():
        problems.append(f"order index holds {len(engine.orders)} orders but the books hold {len(seen)}")


def _positions(engine: Engine, problems: list[str]) -> None:
    for account in engine.accounts.values():
        open_client_ids = {
            o.client_order_id: o.order_id
            for p in account.positions.values()
            for o in p.open_orders.values()
            if o.client_order_id is not None
        }
        if open_client_ids != account.client_orders:
            problems.append(
                f"account {account.account_id}: client order id index out of step with open orders"
            )
        for market, position in account.positions.items():
            contract = engine.specs[market].contract_atoms
            sums = [0, 0, 0, 0]
            for order in position.open_orders.values():
                if order.reduce_only:
                    if order.order_id not in position.reduce_only_orders:
                        problems.append(f"{order!r}: reduce-only order missing from its index")
                    closing = Side.SELL if position.qty_lots > 0 else Side.BUY
                    if (
                        position.qty_lots == 0
                        or order.side is not closing
                        or order.leaves_lots > abs(position.qty_lots)
                    ):
                        problems.append(
                            f"{order!r}: reduce-only order could increase position {position.qty_lots}"
                        )
                    continue
                offset = 0 if order.side is Side.BUY else 2
                sums[offset] += order.leaves_lots
                sums[offset + 1] += order.price_ticks * order.leaves_lots * contract
            expected = [
                position.buy_qty_lots,
                position.buy_notional_atoms,
                position.sell_qty_lots,
                position.sell_notional_atoms,
            ]
            if sums != expected:
                problems.append(
                    f"account {account.account_id} {market}: order sums {expected} != resting {sums}"
                )
            if position.order_margin_atoms != position.required_order_margin():
                problems.append(
                    f"account {account.account_id} {market}: reserved order margin {position.order_margin_atoms}"
                    f" != required {position.required_order_margin()}"
                )
            if not position.is_isolated and position.isolated_margin_atoms:
                problems.append(
                    f"account {account.account_id} {market}: cross position holds isolated margin"
                )


def _conditional_orders(engine: Engine, problems: list[str]) -> None:
    triggers = engine.triggers
    counts: dict[tuple[AccountId, MarketId], int] = {}
    clients: dict[AccountId, dict[ClientAlgoId, AlgoId]] = {}
    for algo_id, order in triggers.orders.items():
        if order.algo_id != algo_id or not 0 < algo_id < triggers.next_algo_id:
            problems.append(f"{order!r}: filed under algo id {algo_id} (next id {triggers.next_algo_id})")
        if order.account_id not in engine.accounts or order.market not in engine.specs:
            problems.append(f"{order!r}: unknown account or market")
            continue
        if triggers.by_account.get(order.account_id, {}).get(algo_id) is not order:
            problems.append(f"{order!r}: missing from its account's conditional orders")
        scope = (order.account_id, order.market)
        counts[scope] = counts.get(scope, 0) + 1
        if order.client_algo_id is not None:
            clients.setdefault(order.account_id, {})[order.client_algo_id] = algo_id
        if order.is_trailing != (order.callback_rate_e8 is not None):
            problems.append(f"{order!r}: callback rate on a non-trailing order or missing on a trailing one")
        if order.activated and not order.is_trailing:
            problems.append(f"{order!r}: only trailing stops activate")
        if order.is_trailing and not order.activated and order.activation_price_ticks is None:
            problems.append(f"{order!r}: a trailing stop without activation price must be active")
        _not_due(engine, order, problems)
    if sum(len(mine) for mine in triggers.by_account.values()) != len(triggers.orders):
        problems.append("conditional orders by account hold orders that are not open")
    if counts != triggers.counts:
        problems.append(f"conditional order counts {triggers.counts} != open orders {counts}")
    for (account_id, market), count in counts.items():
        if count > engine.specs[market].risk.max_algo_orders:
            problems.append(
                f"account {account_id} has {count} conditional orders in {market}, over the limit"
            )
    if clients != triggers.client_ids:
        problems.append("client algo id index out of step with open conditional orders")
    if isinstance(triggers.index, TriggerIndex):
        _trigger_index(triggers.index, triggers.orders, problems)


def _not_due(engine: Engine, order: ConditionalOrder, problems: list[str]) -> None:
    """An open conditional order is never due at the prices the engine last showed it."""
    price = engine.triggers.price_of(order.market, order.working_type)
    if price is None:
        if order.activated:
            problems.append(f"{order!r}: active trailing stop without a price to follow")
        return
    mark = engine.marks.get(order.market)
    last = engine.last_trade_ticks.get(order.market)
    if order.price_protect and protection_blocks(
        mark, last, engine.specs[order.market].risk.trigger_protect_e8
    ):
        return  # the current prices are hidden from it
    if order.activated:
        buy = order.side is Side.BUY
        if (price < order.extreme_ticks) if buy else (price > order.extreme_ticks):
            problems.append(f"{order!r}: trailing extreme {order.extreme_ticks} behind the price {price}")
        if reached(order.trailing_level(), RISE if buy else FALL, price):
            problems.append(f"{order!r}: trailing stop due at {price} but not triggered")
        return
    level, direction = order.pending_level()
    if reached(level, direction, price):
        problems.append(f"{order!r}: due at {price} but not triggered")


def _trigger_index(index: TriggerIndex, orders: dict[AlgoId, ConditionalOrder], problems: list[str]) -> None:
    indexed: dict[AlgoId, ConditionalOrder] = {}
    for (market, working_type, protected, direction), entries in index.levels.items():
        if entries != sorted(entries):
            problems.append(f"trigger index {market} {working_type}: level list out of order")
        for key, algo_id in entries:
            order = orders.get(algo_id)
            if order is None or order.activated:
                problems.append(f"trigger index {market}: entry for algo id {algo_id}, not a pending order")
                continue
            level, order_direction = order.pending_level()
            if (order.market, order.working_type, order.price_protect, order_direction) != (
                market,
                working_type,
                protected,
                direction,
            ) or key != -direction * level:
                problems.append(f"{order!r}: filed in the wrong level list or at the wrong key")
            indexed[algo_id] = order
    for (market, working_type, protected, side), active in index.trailing.items():
        lo, hi = index.quiet[(market, working_type, protected, side)]
        for algo_id, order in active.items():
            if orders.get(algo_id) is not order or not order.activated:
                problems.append(f"trigger index {market}: {order!r} among active trailing stops")
                continue
            if (order.market, order.working_type, order.price_protect, int(order.side)) != (
                market,
                working_type,
                protected,
                side,
            ):
                problems.append(f"{order!r}: filed under the wrong active trailing key")
            own_lo, own_hi = quiet_range(order)
            if lo < own_lo or hi > own_hi:
                problems.append(f"{order!r}: quiet range [{lo}, {hi}] is outside [{own_lo}, {own_hi}]")
            indexed[algo_id] = order
    held = sum(len(e) for e in index.levels.values()) + sum(len(a) for a in index.trailing.values())
    if indexed.keys() != orders.keys() or held != len(orders):
        problems.append(f"trigger index holds {held} entries, {len(orders)} orders are open")
    per_market: dict[MarketId, int] = {}
    for order in orders.values():
        per_market[order.market] = per_market.get(order.market, 0) + 1
    if {m: c for m, c in index.counts.items() if c} != per_market:
        problems.append(f"trigger index counts {index.counts} != open orders per market {per_market}")


def _pricing(engine: Engine, problems: list[str]) -> None:
    pricing = engine.pricing
    for market, state in pricing.markets.items():
        if state.paid_atoms != state.received_atoms + state.residue_atoms:
            problems.append(
                f"funding of {market}: paid {state.paid_atoms} != received {state.received_atoms}"
                f" + residue {state.residue_atoms}"
            )
        if not 0 <= state.residue_atoms <= state.payments:
            problems.append(
                f"funding of {market}: residue {state.residue_atoms} outside [0, {state.payments} payments]"
            )
        window_ns = state.spec.risk.mark_basis_window_s * 1_000_000_000
        times = [ts for ts, _ in state.basis]
        processed = state.processed_ns
        if times != sorted(times) or len(times) != len(dict.fromkeys(times)):
            problems.append(f"basis samples of {market} out of order")
        if times and processed is not None and (times[-1] > processed or times[0] <= processed - window_ns):
            problems.append(f"basis samples of {market} outside the window ending at {processed}")
    for market in engine.index_stale:
        if not pricing.priced(market):
            problems.append(f"{market} is flagged index-stale but has no index sources")
    for market, mark_ticks in engine.marks.items():
        index_ticks = engine.indexes.get(market)
        if index_ticks is None:
            continue
        low, high = index_band_ticks(index_ticks, engine.specs[market].risk.mark_index_band_e8)
        if not low <= mark_ticks <= high:
            problems.append(
                f"mark of {market} is {mark_ticks}, outside [{low}, {high}] around index {index_ticks}"
            )
    for account in engine.accounts.values():
        for market, position in account.positions.items():
            if engine.market_positions[market].get(account.account_id) is not position:
                problems.append(
                    f"account {account.account_id} {market}: position missing from its market's index"
                )


def _liquidation(engine: Engine, problems: list[str]) -> None:
    from perpx.engine.liquidation.figures import is_paused, liquidatable, scope_figures
    from perpx.engine.liquidation.insurance import INSURANCE_ACCOUNT, fund_equity

    stage = engine.liquidation
    for account_id, account in engine.accounts.items():
        if account_id == INSURANCE_ACCOUNT:
            continue
        holding = False
        for position in account.positions.values():
            if position.qty_lots or position.isolated_margin_atoms:
                holding = True
        if (
            not holding
            and account.balance(engine.asset) < 0
            and not engine.multi_assets.holds_collateral(account)
        ):
            problems.append(
                f"account {account_id} holds nothing but its wallet is {account.balance(engine.asset)}"
            )
        held = tuple(m for m, p in account.positions.items() if p.qty_lots)
        if account_id not in stage.watch.pending and set(held) != set(
            stage.watch.markets_of.get(account_id, ())
        ):
            problems.append(
                f"account {account_id}: safety bands cover {stage.watch.markets_of.get(account_id)} not {held}"
            )
        for market in stage._scopes(account):
            figures = scope_figures(engine, account, market)
            if liquidatable(figures) and any(not row.paused for row in figures.positions):
                problems.append(
                    f"account {account_id} scope {market or 'CROSS'}: margin ratio {figures.ratio_e8} is at or over"
                    " 100% in a live market, not liquidated"
                )
    _headroom(engine, problems)
    fund = engine.accounts[INSURANCE_ACCOUNT]
    fund_held = [m for m, p in fund.positions.items() if p.qty_lots]
    live = [m for m in fund_held if not is_paused(engine, m)]
    if (live or not fund_held) and fund_equity(engine) < 0:
        problems.append(
            f"insurance fund equity {fund_equity(engine)} is below zero with"
            + (f" live positions {live}" if live else " no position: it covered more than it held")
        )
    for asset, fees in engine.fees_atoms.items():
        if fees < 0:
            problems.append(f"the fee account of {asset} is {fees}: it paid out more than it collected")


def _headroom(engine: Engine, problems: list[str]) -> None:
    from perpx.engine.formulas import maintenance_bound_e8, safety_slack_e8

    watch = engine.liquidation.watch
    for account_id, headroom in engine.headroom_atoms.items():
        account = engine.accounts[account_id]
        balance = account.balance(engine.asset) + account.collateral_atoms
        bound = 0
        for market, position in account.positions.items():
            if not position.qty_lots:
                continue
            if position.is_isolated:
                problems.append(f"account {account_id} has a headroom and an isolated position in {market}")
            contract = engine.specs[market].contract_atoms
            mark = engine.marks[market]
            balance += position.qty_lots * mark * contract - position.cost_atoms
            bound += maintenance_bound_e8(abs(position.qty_lots) * mark * contract, watch.bounds[market])
        slack = safety_slack_e8(balance, bound)
        if (RATE_SCALE - 1) * headroom > slack:
            problems.append(
                f"account {account_id}: headroom {headroom} atoms claims more than its slack {slack} (e8)"
            )


def _loans(engine: Engine, problems: list[str]) -> None:
    """Every open loan: of an existing account, indexed once by its pair, with debt > 0 and nothing negative."""
    lending = engine.lending
    if len(lending.by_key) != len(lending.loans):
        problems.append(f"loans: {len(lending.loans)} open but {len(lending.by_key)} indexed by pair")
    for loan_id, loan in lending.loans.items():
        if loan.account_id not in engine.accounts:
            problems.append(f"loan {loan_id}: account {loan.account_id} does not exist")
        if lending.by_key.get((loan.account_id, loan.loan_asset, loan.collateral_asset)) != loan_id:
            problems.append(f"loan {loan_id}: not indexed under its account and pair")
        if loan.principal_atoms < 0 or loan.interest_atoms < 0 or loan.collateral_atoms < 0:
            problems.append(f"loan {loan_id}: a negative principal, interest or collateral")
        if loan.debt_atoms <= 0:
            problems.append(f"loan {loan_id}: open with no debt")
        if loan_id >= lending.next_loan_id:
            problems.append(f"loan {loan_id}: id not below the next loan id {lending.next_loan_id}")


def _multi_assets(engine: Engine, problems: list[str]) -> None:
    """Every account's collateral figure and holder entries match its balances at the kept prices."""
    multi = engine.multi_assets
    for account_id, account in engine.accounts.items():
        expected = multi.value_atoms(account, fresh_only=False)
        if account.collateral_atoms != expected:
            problems.append(
                f"account {account_id}: collateral counts {account.collateral_atoms}, its balances {expected}"
            )
        for asset, holders in multi.holders.items():
            holds = multi.is_enabled(account_id) and account.balance(asset) > 0
            if holds != (account_id in holders):
                problems.append(
                    f"account {account_id}: {asset} holder index is {not holds}, should be {holds}"
                )
