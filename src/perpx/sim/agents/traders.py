"""Liquidity takers: noise traders, momentum traders and leveraged position takers.

* :class:`NoiseTrader`: every ``interval_s``, with probability ``trade_prob``, a MARKET order on a
  random side for a log-normal notional around ``notional``; past ``max_position`` it only reduces.
  With ``activity_amplitude`` A (0..1) the probability follows a cycle of ``activity_period_s``
  aligned to the epoch, ``trade_prob x (1 + A cos(2 pi t / period))`` (busiest at the top of each
  period): an intraday volume shape for execution algorithms to follow. A = 0 (the default) draws
  exactly as before.
* :class:`MomentumTrader`: follows the reference price's return over ``lookback_s``: above
  ``threshold_bps`` it goes long ``notional``, below minus it goes short, in between it keeps its
  position (``exit_bps`` flattens when the move has faded).
* :class:`LeveragedTaker`: one account that opens a single leveraged position at a random time in
  ``[entry_start_s, entry_end_s]``, with a leverage drawn from ``leverages``/``leverage_weights``, a
  side drawn with ``long_share``, and a deposit drawn uniformly from ``deposit_range``; the position's
  notional is ``deposit x leverage x utilization``. These are the accounts a crash liquidates.
  With ``reenter`` it opens again after being closed out; ``stop_loss_bps`` adds a close-position
  STOP_MARKET on the mark at that distance. With ``collateral = "BTC"`` the account deposits BTC
  instead (``collateral_range``, in BTC), turns Multi-Assets Mode on, and sizes its position on
  what the BTC counts for in its margin (index x (1 - haircut)); it waits for a fresh BTC index.
"""

from __future__ import annotations

import math
from collections import deque
from decimal import Decimal
from typing import Any, ClassVar

from perpx.engine.commands import (
    Command,
    ConditionalType,
    Deposit,
    PlaceConditionalOrder,
    SetMultiAssetsMode,
    WorkingType,
)
from perpx.engine.values import AssetId, MarketId, Side
from perpx.sim.agents.base import Agent, AgentContext, AgentError, choose_weighted, side_to_reach

NS_PER_S = 1_000_000_000


class NoiseTrader(Agent):
    """Random MARKET orders; see the module doc."""

    kind: ClassVar[str] = "noise_trader"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "leverage": 5,
        "trade_prob": 0.5,
        "notional": "2000",
        "size_sigma": 0.8,
        "max_position": "50000",
        "activity_period_s": 3600,
        "activity_amplitude": 0.0,
    }

    def setup(self, ctx: AgentContext) -> list[Command]:
        super().setup(ctx)
        amplitude = self.number("activity_amplitude")
        if not 0 <= amplitude <= 1 or self.number("activity_period_s") <= 0:
            raise AgentError(
                f"agent {self.name!r}: activity_amplitude must be within 0..1 and activity_period_s positive"
            )
        leverage = int(self.number("leverage"))
        return [ctx.leverage(self.account_id, m, leverage) for m in self.market_list(ctx)]

    def act(self, ctx: AgentContext, now_ns: int) -> list[Command]:
        rng = ctx.rng
        markets = self.market_list(ctx)
        if rng.random() >= self.trade_probability(now_ns):
            return []
        market = markets[rng.randrange(len(markets))]
        mark = ctx.mark_ticks(market)
        if mark is None:
            return []
        size = float(self.amount("notional")) * math.exp(rng.gauss(0.0, self.number("size_sigma")))
        lots = ctx.lots_for_notional(market, ctx.atoms(size), mark)
        position = ctx.position_lots(self.account_id, market)
        spec = ctx.spec(market)
        held_atoms = abs(position) * mark * spec.contract_atoms
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        reduce = False
        if held_atoms >= ctx.atoms(self.params["max_position"]) and position:
            side, reduce = (Side.SELL if position > 0 else Side.BUY), True
            lots = min(lots, abs(position))
        lots = min(lots, spec.market_max_qty_lots)
        if not ctx.tradable_lots(market, lots, mark) and not reduce:
            return []
        if lots <= 0:
            return []
        return [ctx.market_order(self.account_id, market, side, lots, reduce_only=reduce)]

    def trade_probability(self, now_ns: int) -> float:
        """``trade_prob``, moved by the activity cycle when it has an amplitude."""
        prob = self.number("trade_prob")
        amplitude = self.number("activity_amplitude")
        if not amplitude:
            return prob
        period_ns = int(self.number("activity_period_s") * NS_PER_S)
        phase = 2 * math.pi * (now_ns % period_ns) / period_ns
        return min(1.0, prob * (1 + amplitude * math.cos(phase)))


class MomentumTrader(Agent):
    """Trend follower on the reference price; see the module doc."""

    kind: ClassVar[str] = "momentum_trader"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "leverage": 5,
        "lookback_s": 60.0,
        "threshold_bps": 30.0,
        "exit_bps": 5.0,
        "notional": "20000",
    }

    def __init__(self, name: str, params: dict[str, Any]) -> None:
        super().__init__(name, params)
        self.history: dict[MarketId, deque[tuple[int, int]]] = {}

    def setup(self, ctx: AgentContext) -> list[Command]:
        super().setup(ctx)
        leverage = int(self.number("leverage"))
        return [ctx.leverage(self.account_id, m, leverage) for m in self.market_list(ctx)]

    def act(self, ctx: AgentContext, now_ns: int) -> list[Command]:
        commands: list[Command] = []
        lookback_ns = int(self.number("lookback_s") * NS_PER_S)
        for market in self.market_list(ctx):
            reference = ctx.reference_ticks(market)
            mark = ctx.mark_ticks(market)
            if reference is None or mark is None:
                continue
            history = self.history.setdefault(market, deque())
            history.append((now_ns, reference))
            while len(history) > 1 and history[1][0] <= now_ns - lookback_ns:
                history.popleft()
            if history[0][0] > now_ns - lookback_ns:
                continue  # not a full lookback yet
            move_bps = (reference - history[0][1]) * 10_000 / history[0][1]
            position = ctx.position_lots(self.account_id, market)
            lots = ctx.lots_for_notional(market, ctx.atoms(self.params["notional"]), mark)
            if move_bps > self.number("threshold_bps"):
                target = lots
            elif move_bps < -self.number("threshold_bps"):
                target = -lots
            elif abs(move_bps) < self.number("exit_bps"):
                target = 0
            else:
                continue
            step = side_to_reach(position, target)
            if step is None:
                continue
            side, qty = step
            reduce = target == 0
            qty = min(qty, ctx.spec(market).market_max_qty_lots)
            if reduce or ctx.tradable_lots(market, qty, mark):
                commands.append(ctx.market_order(self.account_id, market, side, qty, reduce_only=reduce))
        return commands


class LeveragedTaker(Agent):
    """One leveraged position, opened once (or again after a close-out); see the module doc."""

    kind: ClassVar[str] = "leveraged_taker"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "leverages": [5, 10, 20, 50],
        "leverage_weights": None,
        "long_share": 0.5,
        "deposit_range": ["2000", "20000"],
        "utilization": 0.9,
        "entry_start_s": 0.0,
        "entry_end_s": 300.0,
        "reenter": False,
        "stop_loss_bps": None,
        "collateral": None,
        "collateral_range": ["0.05", "0.2"],
    }

    def __init__(self, name: str, params: dict[str, Any]) -> None:
        super().__init__(name, params)
        leverages = self.params["leverages"]
        if not isinstance(leverages, list) or not leverages or not all(isinstance(x, int) for x in leverages):
            raise AgentError(f"agent {name!r}: leverages must be a non-empty list of whole numbers")
        weights = self.params["leverage_weights"]
        if weights is not None and (not isinstance(weights, list) or len(weights) != len(leverages)):
            raise AgentError(f"agent {name!r}: leverage_weights must be a list as long as leverages")
        self.leverage_choice = 1
        self.side = Side.BUY
        self.entry_ns = 0
        self.entered = False
        self.closed_out = 0

    def setup(self, ctx: AgentContext) -> list[Command]:
        rng = ctx.rng
        low, high = (float(x) for x in self.params["deposit_range"])
        self.params["deposit"] = f"{low + (high - low) * rng.random():.2f}"
        collateral = self.params["collateral"]
        if collateral is not None:
            self.params["deposit"] = "0"
        super().setup(ctx)
        setup: list[Command] = []
        if collateral is not None:
            spec = ctx.engine.config.assets.get(AssetId(str(collateral)))
            if spec is None:
                raise AgentError(
                    f"agent {self.name!r}: collateral {collateral!r} is not an asset of the venue"
                )
            low, high = (float(x) for x in self.params["collateral_range"])
            amount = Decimal(f"{low + (high - low) * rng.random():.6f}")
            setup.append(
                Deposit(
                    ts_ns=ctx.now_ns,
                    account_id=self.account_id,
                    asset=spec.asset,
                    amount_atoms=int(amount / spec.atom),
                    tx_id=ctx.tx_id(f"{self.name}-{self.account_id}-collateral"),
                )
            )
            setup.append(SetMultiAssetsMode(ts_ns=ctx.now_ns, account_id=self.account_id, enabled=True))
        self.leverage_choice = int(
            choose_weighted(rng, self.params["leverages"], self.params["leverage_weights"])
        )
        self.side = Side.BUY if rng.random() < self.number("long_share") else Side.SELL
        start, end = self.number("entry_start_s"), self.number("entry_end_s")
        self.entry_ns = ctx.now_ns + int((start + (end - start) * rng.random()) * NS_PER_S)
        return setup + [ctx.leverage(self.account_id, m, self.leverage_choice) for m in self.market_list(ctx)]

    def act(self, ctx: AgentContext, now_ns: int) -> list[Command]:
        if now_ns < self.entry_ns:
            return []
        market = self.market_list(ctx)[0]
        position = ctx.position_lots(self.account_id, market)
        if position:
            return []
        if self.entered:
            self.closed_out += 1
            self.entered = False
            if not self.params["reenter"]:
                self.entry_ns = 2**62
                return []
        mark = ctx.mark_ticks(market)
        if mark is None or market in ctx.engine.index_stale:
            return []
        spec = ctx.spec(market)
        account = ctx.engine.accounts[self.account_id]
        wallet = (
            account.balance(ctx.engine.asset) + account.collateral_atoms
        )  # collateral: 0 outside the mode
        leverage = min(self.leverage_choice, spec.max_leverage)
        # the engine checks the bracket cap at the market order's worst price (the take bound), not the mark
        worst = mark + mark * spec.market_take_bound_e8 // 10**8 if self.side is Side.BUY else mark
        cap_lots = ctx.lots_for_notional(market, spec.max_notional_at_leverage(leverage) - 1, worst)
        notional = int(wallet * leverage * self.number("utilization"))
        lots = min(ctx.lots_for_notional(market, notional, mark), cap_lots, spec.market_max_qty_lots)
        if not ctx.tradable_lots(market, lots, mark):
            return []
        self.entered = True
        commands: list[Command] = [ctx.market_order(self.account_id, market, self.side, lots)]
        stop = self.params["stop_loss_bps"]
        if stop is not None:
            distance = float(stop) / 10_000
            trigger = mark * (1 - distance) if self.side is Side.BUY else mark * (1 + distance)
            commands.append(
                PlaceConditionalOrder(
                    ts_ns=now_ns,
                    account_id=self.account_id,
                    market=market,
                    side=self.side.opposite,
                    order_type=ConditionalType.STOP_MARKET,
                    trigger_price_ticks=max(1, round(trigger)),
                    working_type=WorkingType.MARK_PRICE,
                    close_position=True,
                )
            )
        return commands
