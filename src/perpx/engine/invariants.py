"""Invariants the engine holds after every command, recomputed from scratch.

A violation is a bug, not a business outcome: :func:`check` raises
:class:`InvariantViolation` and the caller stops. Tests call it after every
command; production may (``perpx serve --check-invariants``).

1. **Conservation** per asset: wallets + isolated margins - open-position cost
   + fees collected + insurance fund = deposits - withdrawals.
2. **Open interest**: per market, long lots = short lots.
3. **Book**: never crossed; every level non-empty; every resting order
   indexed, owned by an existing account, with positive leaves.
4. **Reserved margin**: each position's side sums equal its resting orders',
   and its order margin equals what those orders need.
5. **Reduce-only**: every resting reduce-only order is on the closing side of
   a non-zero position and no larger than it.
6. **Indexes**: client order ids map exactly to open orders.
"""

from __future__ import annotations

from perpx.engine.book import Order
from perpx.engine.engine import Engine
from perpx.engine.values import AssetId, MarketId, OrderId, Side


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
    return problems


def _conservation(engine: Engine, problems: list[str]) -> None:
    assets: dict[AssetId, int] = {}
    for account in engine.accounts.values():
        for asset, balance in account.balances.items():
            assets[asset] = assets.get(asset, 0) + balance
        for position in account.positions.values():
            settle = engine.asset
            assets[settle] = assets.get(settle, 0) + position.isolated_margin_atoms - position.cost_atoms
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
