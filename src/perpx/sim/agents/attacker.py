"""An attacker following a script: pump the thin spot sources it controls while long the perp, then
try to withdraw the paper gain (the Mango Markets pattern, October 2022).

The script, in seconds from the start:

1. from the start it quotes each source in ``sources`` (spot venues it controls: their ``[[sources]]``
   entries are ``controlled = true``, so only it quotes them) at the venue's current index (at
   ``start_price`` while there is none yet), as an honest thin venue would;
2. at ``open_at_s`` it buys ``position_notional`` of the perp with a MARKET order (``side``);
3. from ``pump_start_s`` to ``pump_end_s`` it quotes ``base x (1 + (pump_factor - 1) x progress)``
   (``base`` = the index when the pump began), so the index, the mark and its unrealised profit rise;
   every ``withdraw_every_s`` it tries to withdraw its whole margin balance (wallet + unrealised PnL);
4. after ``pump_end_s`` its quotes fall back to ``base`` (the pump is released).

The venue's answer to check: the withdrawals are refused beyond the wallet (withdrawable never
includes unrealised profit), so what it can take out is at most deposits + realised PnL.
"""

from __future__ import annotations

from typing import Any, ClassVar

from perpx.engine.commands import Command, SubmitSpotQuote, Withdraw
from perpx.engine.values import Side
from perpx.sim.agents.base import Agent, AgentContext, AgentError

NS_PER_S = 1_000_000_000


class Adversary(Agent):
    """An agent that attacks the venue: the runner audits its accounts as an attacker's.

    Its refused withdrawals, its largest unrealised profit and its realised P&L are reported as
    ``attacker_*`` in the summary, so a scenario can assert the attack paid nothing.
    """


class Attacker(Adversary):
    """Scripted oracle-manipulation attack; see the module doc."""

    kind: ClassVar[str] = "attacker"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "sources": [],
        "leverage": 10,
        "side": "buy",
        "position_notional": "200000",
        "open_at_s": 60.0,
        "pump_start_s": 120.0,
        "pump_end_s": 420.0,
        "pump_factor": 3.0,
        "withdraw_every_s": 30.0,
        "start_price": None,
    }

    def __init__(self, name: str, params: dict[str, Any]) -> None:
        super().__init__(name, params)
        sources = self.params["sources"]
        if not isinstance(sources, list) or not sources:
            raise AgentError(f"agent {name!r}: sources must name the spot sources it controls")
        if self.params["side"] not in ("buy", "sell"):
            raise AgentError(f"agent {name!r}: side must be 'buy' or 'sell'")
        self.start_ns: int | None = None
        self.base_ticks: int | None = None
        self.opened = False
        self.last_withdraw_ns = -(2**62)
        self.withdraw_attempts = 0

    def setup(self, ctx: AgentContext) -> list[Command]:
        super().setup(ctx)
        self.start_ns = ctx.now_ns
        market = self.market_list(ctx)[0]
        index = ctx.spec(market).index
        unknown = [s for s in self.params["sources"] if index is None or s not in index.weights]
        if unknown:
            raise AgentError(f"agent {self.name!r}: {unknown} are not index sources of {market}")
        return [ctx.leverage(self.account_id, market, int(self.number("leverage")))]

    def act(self, ctx: AgentContext, now_ns: int) -> list[Command]:
        start = self.start_ns if self.start_ns is not None else now_ns
        t_s = (now_ns - start) / NS_PER_S
        market = self.market_list(ctx)[0]
        index = ctx.index_ticks(market)
        commands: list[Command] = []
        pump_start, pump_end = self.number("pump_start_s"), self.number("pump_end_s")
        # 1, 3, 4: quote the controlled sources
        if index is None and self.params["start_price"] is not None:
            index = ctx.ticks(market, self.params["start_price"])
        if t_s < pump_start:
            quote = index
        else:
            if self.base_ticks is None:
                self.base_ticks = index
            base = self.base_ticks
            if base is None:
                quote = None
            elif t_s < pump_end:
                progress = (t_s - pump_start) / (pump_end - pump_start)
                quote = max(1, round(base * (1 + (self.number("pump_factor") - 1) * progress)))
            else:
                quote = base
        if quote is not None:
            commands.extend(
                SubmitSpotQuote(ts_ns=now_ns, market=market, source=source, price_ticks=quote)
                for source in self.params["sources"]
            )
        # 2: the perp position
        mark = ctx.mark_ticks(market)
        if not self.opened and t_s >= self.number("open_at_s") and mark is not None:
            lots = ctx.lots_for_notional(market, ctx.atoms(self.params["position_notional"]), mark)
            lots = min(lots, ctx.spec(market).market_max_qty_lots)
            side = Side.BUY if self.params["side"] == "buy" else Side.SELL
            if ctx.tradable_lots(market, lots, mark):
                self.opened = True
                commands.append(ctx.market_order(self.account_id, market, side, lots))
        # 3: try to take the paper gain out
        every_ns = int(self.number("withdraw_every_s") * NS_PER_S)
        if pump_start <= t_s and now_ns - self.last_withdraw_ns >= every_ns and self.opened:
            self.last_withdraw_ns = now_ns
            equity = ctx.engine.risk(self.account_id).margin_balance_atoms
            if equity > 0:
                self.withdraw_attempts += 1
                commands.append(
                    Withdraw(
                        ts_ns=now_ns,
                        account_id=self.account_id,
                        asset=ctx.engine.asset,
                        amount_atoms=equity,
                        tx_id=ctx.tx_id(f"{self.name}-withdraw"),
                    )
                )
        return commands
