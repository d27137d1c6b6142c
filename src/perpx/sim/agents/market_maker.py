"""A market maker: inventory-aware quotes around the index, several levels, widening and withdrawing in volatility.

Each ``interval_s`` and each market it trades:

1. **reference**: the index (the spot the maker hedges on), else the mark; with
   ``reference = "mark"`` the mark;
2. **volatility**: ``rv_bps`` = root mean square of the reference's log returns between its
   last ``vol_window`` calls, in basis points (not demeaned: a steady slide counts as risk); ``widen = clamp(rv_bps / calm_vol_bps, 1,
   max_widen)``; above ``withdraw_vol_bps`` the maker cancels everything and stays out for
   ``withdraw_s`` seconds;
3. **inventory**: ``skew = position notional / max_inventory`` (clamped to -1..1) moves the
   quotes' centre by ``skew x skew_bps`` against the position and shrinks the side that would
   grow it (no quotes on that side at ``|skew| = 1``);
4. **quotes**: cancel-all, then ``levels`` post-only (GTX) orders per side at
   ``centre x (1 -/+ (spread_bps / 2 x widen + i x level_step_bps) / 10^4)``, each for
   ``level_notional x depth_factor`` of settlement asset, inside the percent-price band and never
   crossing the opposite best price (post-only orders that would take are refused).

``depth_factor`` is a live knob (1.0 by default): a scripted event sets it to 0.02 to model makers
pulling 98% of their depth.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from typing import Any, ClassVar

from perpx.engine.commands import CancelAllOrders, Command, TimeInForce
from perpx.engine.values import MarketId, Side
from perpx.sim.agents.base import Agent, AgentContext, AgentError


class MarketMaker(Agent):
    """Quotes both sides of every market it trades; see the module doc for the rules."""

    kind: ClassVar[str] = "market_maker"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "leverage": 10,
        "levels": 5,
        "spread_bps": 4.0,
        "level_step_bps": 5.0,
        "level_notional": "20000",
        "max_inventory": "500000",
        "skew_bps": 10.0,
        "vol_window": 20,
        "calm_vol_bps": 3.0,
        "max_widen": 8.0,
        "withdraw_vol_bps": 60.0,
        "withdraw_s": 30.0,
        "depth_factor": 1.0,
        "reference": "index",
    }

    def __init__(self, name: str, params: dict[str, Any]) -> None:
        super().__init__(name, params)
        self.depth_factor = self.number("depth_factor")
        if self.params["reference"] not in ("index", "mark"):
            raise AgentError(f"agent {name!r}: reference must be 'index' or 'mark'")
        self.history: dict[MarketId, deque[float]] = {}
        self.out_until_ns: dict[MarketId, int] = {}
        self.withdrawals = 0
        self.last_widen: dict[MarketId, float] = {}

    def setup(self, ctx: AgentContext) -> list[Command]:
        super().setup(ctx)
        leverage = int(self.number("leverage"))
        return [ctx.leverage(self.account_id, m, leverage) for m in self.market_list(ctx)]

    def realized_vol_bps(self, market: MarketId) -> float:
        """Root mean square of the reference's log returns over the window, in basis points."""
        prices = self.history.get(market)
        if prices is None or len(prices) < 3:
            return 0.0
        values = list(prices)
        returns = [math.log(b / a) for a, b in itertools.pairwise(values)]
        return math.sqrt(sum(r * r for r in returns) / len(returns)) * 10_000

    def act(self, ctx: AgentContext, now_ns: int) -> list[Command]:
        commands: list[Command] = []
        for market in self.market_list(ctx):
            commands.extend(self._quote(ctx, market, now_ns))
        return commands

    def _quote(self, ctx: AgentContext, market: MarketId, now_ns: int) -> list[Command]:
        reference = (
            ctx.mark_ticks(market) if self.params["reference"] == "mark" else ctx.reference_ticks(market)
        )
        band = ctx.price_band_ticks(market)
        if reference is None or band is None:
            return []
        window = int(self.number("vol_window"))
        history = self.history.setdefault(market, deque(maxlen=max(3, window)))
        history.append(float(reference))
        account = self.account_id
        cancel: list[Command] = (
            [CancelAllOrders(ts_ns=now_ns, account_id=account, market=market)]
            if ctx.open_orders(account, market)
            else []
        )
        rv = self.realized_vol_bps(market)
        if rv > self.number("withdraw_vol_bps"):
            if now_ns >= self.out_until_ns.get(market, 0):
                self.withdrawals += 1
            self.out_until_ns[market] = now_ns + int(self.number("withdraw_s") * 1e9)
        if now_ns < self.out_until_ns.get(market, 0) or self.depth_factor <= 0:
            return cancel
        widen = min(max(rv / max(self.number("calm_vol_bps"), 1e-9), 1.0), self.number("max_widen"))
        self.last_widen[market] = widen
        spec = ctx.spec(market)
        position = ctx.position_lots(account, market)
        max_inventory = ctx.atoms(self.params["max_inventory"])
        inventory = position * reference * spec.contract_atoms
        skew = max(-1.0, min(1.0, inventory / max_inventory)) if max_inventory else 0.0
        centre = reference * (1 - skew * self.number("skew_bps") / 10_000)
        half = self.number("spread_bps") / 2 * widen
        step = self.number("level_step_bps") * widen
        level_atoms = int(ctx.atoms(self.params["level_notional"]) * self.depth_factor)
        low, high = band
        best_bid, best_ask = ctx.best_bid_ticks(market), ctx.best_ask_ticks(market)
        orders: list[Command] = []
        for side, shrink in ((Side.BUY, max(0.0, skew)), (Side.SELL, max(0.0, -skew))):
            if shrink >= 1.0:
                continue
            for level in range(int(self.number("levels"))):
                offset = (half + level * step) / 10_000
                raw = centre * (1 - offset) if side is Side.BUY else centre * (1 + offset)
                price = math.floor(raw) if side is Side.BUY else math.ceil(raw)
                if side is Side.BUY and price >= centre:
                    price = math.ceil(centre) - 1
                if side is Side.SELL and price <= centre:
                    price = math.floor(centre) + 1
                if side is Side.BUY and best_ask is not None and price >= best_ask:
                    price = best_ask - 1 - level
                if side is Side.SELL and best_bid is not None and price <= best_bid:
                    price = best_bid + 1 + level
                if not low <= price <= high:
                    break
                lots = ctx.lots_for_notional(market, int(level_atoms * (1 - shrink)), price)
                lots = min(lots, spec.max_qty_lots)
                if not ctx.tradable_lots(market, lots, price):
                    break
                orders.append(ctx.limit_order(account, market, side, lots, price, TimeInForce.GTX))
        return cancel + orders
