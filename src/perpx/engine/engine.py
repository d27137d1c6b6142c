"""The venue engine: a deterministic state machine, ``apply(command) -> events``.

The engine reads no clock, draws no random number and does no I/O. Time comes in
``command.ts_ns``; ids come from counters in the state. The same commands in the same order give
the same events and the same state hash in any process.

The pipeline, in one place (:meth:`Engine.apply`), as exchange-core wires its stages:

0. **time**: the pricing stage does the work due by the command's time (index staleness, mark
   and premium samples, funding), and the consequence stages run on what moved;
1. **the command's handler**, one per command type, from the handler modules (``transfers``,
   ``placing`` with ``matching``, ``amending``, ``settings``, ``markets``, and the stages' own
   commands: spot quotes, conditional orders);
2. **consequences**: conditional orders, then liquidation, repeated until a whole pass does
   nothing.

Business refusals are events with codes (state unchanged). A broken invariant is a bug: the
checker raises and the process stops; recovery replays the journal.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from perpx.engine import amending, block, markets, params, placing, settings, transfers
from perpx.engine.codes import RejectCode
from perpx.engine.commands import (
    AdjustIsolatedMargin,
    AdvanceClock,
    AmendOrder,
    BookBlockTrade,
    BookSpotBlockTrade,
    CancelAllOrders,
    CancelOrder,
    ChangeMarketParams,
    Command,
    CreateAccount,
    Deposit,
    PlaceOrder,
    SetLeverage,
    SetMarginMode,
    SetMarketMode,
    SetMarkPrice,
    UpdateMarketParams,
    Withdraw,
)
from perpx.engine.config import VenueConfig
from perpx.engine.core import Core
from perpx.engine.events import Outcome
from perpx.engine.lending.stage import Lending
from perpx.engine.liquidation import Liquidation
from perpx.engine.parents import Parents
from perpx.engine.pricing.stage import PricingStage
from perpx.engine.stages import ConsequenceStage
from perpx.engine.triggers import Triggers


class Engine(Core):
    """The venue: its state (:class:`~perpx.engine.core.Core`), its handlers and its stages.

    Parameters
    ----------
    config
        The venue's markets, assets and fee schedule.

    Invariants
    ----------
    See :mod:`perpx.engine.invariants`; they hold after every ``apply``.
    """

    def __init__(self, config: VenueConfig) -> None:
        super().__init__(config)
        # the stages, each on the core alone: index, mark and funding (before a command's own work),
        # then the consequence stages in their order: conditional orders fire before liquidation
        self.pricing = PricingStage(self)
        self.triggers = Triggers(self)
        self.liquidation = Liquidation(self)
        self.consequences: tuple[ConsequenceStage, ...] = (self.triggers, self.liquidation)
        self.lending = Lending(
            self
        )  # asset indexes and secured loans: interest before, checks after a command
        self.parents = Parents(self)  # the algo service's parent orders: status and executed lots
        self._handlers: dict[type, Callable[[Any], None]] = {
            CreateAccount: partial(transfers.create_account, self),
            Deposit: partial(transfers.deposit, self),
            Withdraw: partial(transfers.withdraw, self),
            PlaceOrder: partial(placing.place, self),
            CancelOrder: partial(amending.cancel, self),
            CancelAllOrders: partial(amending.cancel_all, self),
            AmendOrder: partial(amending.amend, self),
            SetLeverage: partial(settings.set_leverage, self),
            SetMarginMode: partial(settings.set_margin_mode, self),
            AdjustIsolatedMargin: partial(settings.adjust_isolated_margin, self),
            SetMarkPrice: partial(markets.set_mark_price, self),
            SetMarketMode: partial(markets.set_market_mode, self),
            UpdateMarketParams: partial(markets.update_market_params, self),
            ChangeMarketParams: partial(params.change_market_params, self),
            AdvanceClock: partial(markets.advance_clock, self),
            BookBlockTrade: partial(block.book_block_trade, self),
            BookSpotBlockTrade: partial(block.book_spot_block_trade, self),
            **self.triggers.handlers(),
            **self.pricing.handlers(),
            **self.lending.handlers(),
            **self.multi_assets.handlers(),
            **self.parents.handlers(),
        }

    def apply(self, command: Command) -> Outcome:
        """Apply one command and return the events it caused, in order, its own answer marked out."""
        events = Outcome()
        events.own_start = 0
        self.events = events
        if type(command) is AdvanceClock and command.ts_ns < self.now_ns:
            self.reject_command(
                command,
                None,
                RejectCode.CLOCK_BACKWARDS,
                f"venue time is already {self.now_ns} ns; the clock only moves forward",
            )
            self.commands_applied += 1
            events.own_end = len(events)
            return events
        self.now_ns = max(self.now_ns, command.ts_ns)
        # 0. time: index staleness, mark and premium samples, funding due by now, before the command
        if self.now_ns >= self.pricing.due_ns:
            self.pricing.catch_up(self.now_ns)
            if self.moved or self.risk_dirty:
                self._run_consequences()
            self.moved.clear()
        self.lending.catch_up(self.now_ns)
        self.lending.check()
        handler = self._handlers.get(type(command))
        if handler is None:
            raise TypeError(f"unknown command type {type(command).__name__}")
        # 1. the command itself
        events.own_start = len(events)
        handler(command)
        events.own_end = len(events)
        self.lending.check()
        # 2. consequences: conditional orders and liquidations, until nothing more is due; the fund's
        # unwind is due by time alone (a bare clock tick runs it on schedule)
        if self.moved or self.risk_dirty or self.liquidation.unwind_due(self.now_ns):
            self._run_consequences()
        self.moved.clear()
        if self.parents.children:  # a linked child's fills count for its parent, whatever caused them
            self.parents.observe(events)
        self.commands_applied += 1
        return events

    def _run_consequences(self) -> None:
        """Run every consequence stage over the markets whose prices moved, until all are quiet.

        A stage may place orders whose trades move prices again (a stop that triggers a stop, a
        liquidation that crosses another account's threshold); the loop runs until a full pass does
        nothing. Its bound is a safety net against a stage that keeps reporting work: hitting it is a
        bug.
        """
        for _ in range(10_000):
            acted = False
            for stage in self.consequences:
                if stage.run(self.moved):
                    acted = True
            if not acted:
                return
        raise RuntimeError("consequence stages did not settle after 10,000 passes")
