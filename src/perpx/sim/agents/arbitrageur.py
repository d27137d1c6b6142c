"""A funding/basis arbitrageur: sells the perp when longs pay, buys it when shorts pay.

Each ``interval_s`` it reads ``engine.pricing.view(market)``: the predicted funding rate and the
basis ``(mark - index) / index``. When the rate is at or above ``enter_rate`` (longs pay) or the
basis above ``enter_basis_bps`` it goes short ``notional``; at or below minus those, long; once
both are back inside ``exit_rate`` / ``exit_basis_bps`` it flattens. The spot hedge is off-venue
and not simulated: on the venue the arbitrageur is the flow that pulls the perp back to spot.
"""

from __future__ import annotations

from typing import Any, ClassVar

from perpx.engine.commands import Command
from perpx.engine.values import RATE_SCALE
from perpx.sim.agents.base import Agent, AgentContext, side_to_reach


class FundingArbitrageur(Agent):
    """Trades the perp against funding and basis; see the module doc."""

    kind: ClassVar[str] = "funding_arb"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "leverage": 3,
        "notional": "100000",
        "enter_rate": 0.0005,
        "exit_rate": 0.0002,
        "enter_basis_bps": 20.0,
        "exit_basis_bps": 5.0,
        "slices": 4,
    }

    def setup(self, ctx: AgentContext) -> list[Command]:
        super().setup(ctx)
        leverage = int(self.number("leverage"))
        return [ctx.leverage(self.account_id, m, leverage) for m in self.market_list(ctx)]

    def act(self, ctx: AgentContext, now_ns: int) -> list[Command]:
        commands: list[Command] = []
        for market in self.market_list(ctx):
            view = ctx.engine.pricing.view(market)
            mark, index = view.mark_ticks, view.index_ticks
            if mark is None or index is None or view.index_stale:
                continue
            rate = (view.predicted_funding_rate_e8 or 0) / RATE_SCALE
            basis_bps = (mark - index) * 10_000 / index
            enter_rate, exit_rate = self.number("enter_rate"), self.number("exit_rate")
            enter_basis, exit_basis = self.number("enter_basis_bps"), self.number("exit_basis_bps")
            lots = ctx.lots_for_notional(market, ctx.atoms(self.params["notional"]), mark)
            position = ctx.position_lots(self.account_id, market)
            if rate >= enter_rate or basis_bps >= enter_basis:
                target = -lots
            elif rate <= -enter_rate or basis_bps <= -enter_basis:
                target = lots
            elif abs(rate) <= exit_rate and abs(basis_bps) <= exit_basis:
                target = 0
            else:
                continue
            step = side_to_reach(position, target)
            if step is None:
                continue
            side, qty = step
            # work the order in slices so one call never sweeps the book
            slice_lots = max(1, lots // max(1, int(self.number("slices"))))
            qty = min(qty, slice_lots, ctx.spec(market).market_max_qty_lots)
            reduce = target == 0
            if reduce or ctx.tradable_lots(market, qty, mark):
                commands.append(ctx.market_order(self.account_id, market, side, qty, reduce_only=reduce))
        return commands
