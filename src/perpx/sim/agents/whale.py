"""A whale: large scripted orders, each worked in slices over a window.

``orders`` is a list of tables ``{at_s, side, notional, over_s = 0, slices = 1, market = first}``;
the whale sends slice ``k`` of an order as a MARKET order at ``at_s + k x over_s / slices`` (on its
first call at or after that time). ``side = "close"`` flattens the position instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from perpx.engine.commands import Command
from perpx.engine.values import MarketId, Side
from perpx.sim.agents.base import Agent, AgentContext, AgentError

NS_PER_S = 1_000_000_000


@dataclass
class _Slice:
    at_s: float
    market: str | None
    side: str
    notional: str


class Whale(Agent):
    """Scripted large orders; see the module doc."""

    kind: ClassVar[str] = "whale"
    DEFAULTS: ClassVar[dict[str, Any]] = {"leverage": 10, "orders": []}

    def __init__(self, name: str, params: dict[str, Any]) -> None:
        super().__init__(name, params)
        self.slices: list[_Slice] = []
        for number, row in enumerate(self.params["orders"]):
            where = f"agent {name!r}: orders[{number}]"
            side = str(row.get("side", ""))
            if side not in ("buy", "sell", "close"):
                raise AgentError(f"{where}.side was {side!r}; use 'buy', 'sell' or 'close'")
            try:
                at_s, over_s, count = (
                    float(row["at_s"]),
                    float(row.get("over_s", 0)),
                    int(row.get("slices", 1)),
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise AgentError(f"{where} needs a numeric at_s (and over_s, slices): {exc}") from exc
            notional = str(row.get("notional", "0"))
            if count < 1:
                raise AgentError(f"{where}.slices must be at least 1")
            for k in range(count):
                share = f"{float(notional) / count:.8f}"
                self.slices.append(_Slice(at_s + k * over_s / count, row.get("market"), side, share))
        self.slices.sort(key=lambda s: s.at_s)
        self.start_ns: int | None = None

    def setup(self, ctx: AgentContext) -> list[Command]:
        super().setup(ctx)
        self.start_ns = ctx.now_ns
        leverage = int(self.number("leverage"))
        return [ctx.leverage(self.account_id, m, leverage) for m in self.market_list(ctx)]

    def act(self, ctx: AgentContext, now_ns: int) -> list[Command]:
        start = self.start_ns if self.start_ns is not None else now_ns
        commands: list[Command] = []
        while self.slices and start + int(self.slices[0].at_s * NS_PER_S) <= now_ns:
            piece = self.slices.pop(0)
            market = MarketId(piece.market) if piece.market else self.market_list(ctx)[0]
            mark = ctx.mark_ticks(market)
            if mark is None:
                continue
            spec = ctx.spec(market)
            position = ctx.position_lots(self.account_id, market)
            if piece.side == "close":
                if position:
                    side = Side.SELL if position > 0 else Side.BUY
                    lots = min(abs(position), spec.market_max_qty_lots)
                    commands.append(ctx.market_order(self.account_id, market, side, lots, reduce_only=True))
                continue
            lots = min(
                ctx.lots_for_notional(market, ctx.atoms(piece.notional), mark), spec.market_max_qty_lots
            )
            if ctx.tradable_lots(market, lots, mark):
                side = Side.BUY if piece.side == "buy" else Side.SELL
                commands.append(ctx.market_order(self.account_id, market, side, lots))
        return commands
