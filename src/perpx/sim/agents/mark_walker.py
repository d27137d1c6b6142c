"""A ring that walks the mark through the book while the index stays honest, then tries to cash out.

Two accounts, the walker and its partner (``partner = false``: the walker alone, trading with itself
with self-trade prevention off). The script, in seconds from the start:

1. at ``open_at_s`` the walker buys ``position_notional`` of the perp with a MARKET order: the
   position the walk should make look profitable;
2. from ``walk_start_s`` to ``walk_end_s``, every ``interval_s``: the partner sells the walker
   ``walk_notional`` at ``step_bps`` above the mark (within the percent-price band), so the last
   price moves up, and both keep a tiny bid and ask there, so the book's mid moves up: two of the
   mark's three inputs come from the book;
3. at ``cash_out_at_s`` the ring tries to turn the walked mark into money:

   * the walker opens ``cash_out_notional`` more on its paper profit (a MARKET buy);
   * it withdraws its whole margin balance, paper profit included;
   * both close their positions into the book with MARKET orders (the market makers' quotes).

What the venue must do: the mark stays within ``index x (1 +/- mark_index_band)``; self-trades set no
last price; the paper profit backs no new position (it is valued at the index) and cannot be
withdrawn; closing into the market makers' honest quotes realises no profit for the ring as a whole.
"""

from __future__ import annotations

from typing import Any, ClassVar

from perpx.engine.commands import (
    CancelAllOrders,
    Command,
    OrderType,
    PlaceOrder,
    StpMode,
    TimeInForce,
    Withdraw,
)
from perpx.engine.values import Side
from perpx.sim.agents.attacker import Adversary
from perpx.sim.agents.base import AgentContext, AgentError

NS_PER_S = 1_000_000_000


class MarkWalker(Adversary):
    """Scripted mark walk by a colluding pair (or one self-trading account); see the module doc."""

    kind: ClassVar[str] = "mark_walker"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "leverage": 20,
        "partner": True,
        "position_notional": "100000",
        "open_at_s": 30.0,
        "walk_start_s": 60.0,
        "walk_end_s": 240.0,
        "walk_notional": "2000",
        "step_bps": 450.0,
        "cash_out_at_s": 240.0,
        "cash_out_notional": "500000",
    }

    def __init__(self, name: str, params: dict[str, Any]) -> None:
        super().__init__(name, params)
        if not 0 < self.number("step_bps") < 10_000:
            raise AgentError(f"agent {name!r}: step_bps must be between 0 and 10000")
        self.start_ns: int | None = None
        self.opened = False
        self.cashed_out = False
        self.withdraw_attempts = 0

    @property
    def partner_id(self) -> Any:
        return self.accounts[1] if len(self.accounts) > 1 else self.accounts[0]

    def setup(self, ctx: AgentContext) -> list[Command]:
        commands = super().setup(ctx)
        if self.params["partner"]:
            self.accounts.append(ctx.open_account(f"{self.name}-partner", self.params["deposit"]))
        self.start_ns = ctx.now_ns
        leverage = int(self.number("leverage"))
        for market in self.market_list(ctx):
            commands += [ctx.leverage(account, market, leverage) for account in self.accounts]
        return commands

    def act(self, ctx: AgentContext, now_ns: int) -> list[Command]:
        start = self.start_ns if self.start_ns is not None else now_ns
        t_s = (now_ns - start) / NS_PER_S
        market = self.market_list(ctx)[0]
        mark = ctx.mark_ticks(market)
        if mark is None:
            return []
        walker, partner = self.account_id, self.partner_id
        if not self.opened and t_s >= self.number("open_at_s"):
            lots = ctx.lots_for_notional(market, ctx.atoms(self.params["position_notional"]), mark)
            lots = min(lots, ctx.spec(market).market_max_qty_lots)
            if ctx.tradable_lots(market, lots, mark):
                self.opened = True
                return [ctx.market_order(walker, market, Side.BUY, lots)]
        if self.cashed_out:
            return self._close(ctx, market)
        if self.opened and t_s >= self.number("cash_out_at_s"):
            self.cashed_out = True
            return self._cash_out(ctx, now_ns, market, mark)
        if not (self.number("walk_start_s") <= t_s < self.number("walk_end_s")):
            return []
        band = ctx.price_band_ticks(market)
        price = mark + mark * int(self.number("step_bps")) // 10_000
        if band is not None:
            price = min(price, band[1])
        lots = ctx.lots_for_notional(market, ctx.atoms(self.params["walk_notional"]), price)
        spec = ctx.spec(market)
        # the tiny quotes carry the minimum notional, rounded up to whole lots
        tiny = -(-spec.min_notional_atoms // (price * spec.contract_atoms))
        quote = max(spec.min_qty_lots, tiny)
        # on the market's current tick and step filters (an operator may have made them coarser)
        step = spec.tick_step_ticks
        price = max(step, price - price % step)
        lots, quote = ctx.on_step(market, lots), -(-quote // spec.lot_step_lots) * spec.lot_step_lots
        if not lots:
            return []
        commands: list[Command] = [
            CancelAllOrders(ts_ns=now_ns, account_id=a, market=market) for a in self.accounts
        ]
        commands += [
            self._limit(now_ns, partner, market, Side.SELL, lots, price),
            self._limit(now_ns, walker, market, Side.BUY, lots, price),
            self._limit(now_ns, walker, market, Side.BUY, quote, price),
            self._limit(now_ns, partner, market, Side.SELL, quote, price + step),
        ]
        return commands

    def _limit(self, now_ns: int, account: Any, market: Any, side: Side, lots: int, price: int) -> PlaceOrder:
        return PlaceOrder(
            ts_ns=now_ns,
            account_id=account,
            market=market,
            side=side,
            order_type=OrderType.LIMIT,
            qty_lots=lots,
            price_ticks=price,
            tif=TimeInForce.GTC,
            stp=StpMode.NONE,
        )

    def _cash_out(self, ctx: AgentContext, now_ns: int, market: Any, mark: int) -> list[Command]:
        """Stop walking; open more on the paper profit; try to withdraw it (the closes come next)."""
        walker = self.account_id
        commands: list[Command] = [
            CancelAllOrders(ts_ns=now_ns, account_id=a, market=market) for a in self.accounts
        ]
        more = ctx.lots_for_notional(market, ctx.atoms(self.params["cash_out_notional"]), mark)
        more = min(more, ctx.spec(market).market_max_qty_lots)
        if more:
            commands.append(ctx.market_order(walker, market, Side.BUY, more))
        equity = ctx.engine.risk(walker).margin_balance_atoms
        if equity > 0:
            self.withdraw_attempts += 1
            commands.append(
                Withdraw(
                    ts_ns=now_ns,
                    account_id=walker,
                    asset=ctx.engine.asset,
                    amount_atoms=equity,
                    tx_id=ctx.tx_id(f"{self.name}-withdraw"),
                )
            )
        return commands

    def _close(self, ctx: AgentContext, market: Any) -> list[Command]:
        """Close whatever the ring still holds into the book, one MARKET order per account per call."""
        commands: list[Command] = []
        for account in self.accounts:
            held = ctx.position_lots(account, market)
            if held:
                side = Side.SELL if held > 0 else Side.BUY
                lots = min(abs(held), ctx.spec(market).market_max_qty_lots)
                commands.append(ctx.market_order(account, market, side, lots, reduce_only=True))
        return commands
