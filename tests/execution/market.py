"""A small live market on the real engine for execution tests: a maker that re-quotes, a taker that trades."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from perpx.engine.commands import Command
from perpx.engine.values import MarketId
from perpx.execution.childlog import ChildLog
from perpx.execution.inprocess import EngineVenue
from perpx.execution.model import ParentOrder
from perpx.execution.runner import ParentRunner
from perpx.testkit import Venue

MARKET = "BTCUSDT"


@dataclass
class Market:
    """``tv`` quoted by ``mm`` around ``mid`` (five levels a side), traded by ``algo`` through ``venue``."""

    mid: Decimal = Decimal(60000)
    levels: int = 5
    size: str = "0.5"
    tv: Venue = field(default_factory=lambda: Venue(check=False))
    venue: EngineVenue = field(init=False)
    commands: list[Command] = field(init=False, default_factory=list)
    """Every command the engine applied (the maker's, the flow's and the runner's children)."""

    def __post_init__(self) -> None:
        self.tv.sequencer.add_listener(lambda batch: self.commands.extend(a.command for a in batch))
        self.tv.account("mm", "100000000")
        self.tv.account("flow", "100000000")
        algo = self.tv.account("algo", "100000000")
        self.tv.mark(MARKET, str(self.mid))
        self.venue = EngineVenue(self.tv.sequencer, algo, lambda: self.tv.now_ns)
        self.requote()

    def requote(self) -> None:
        """Cancel the maker's orders and quote again around ``mid`` (0.1 apart)."""
        self.tv.cancel_all("mm", MARKET)
        for i in range(1, self.levels + 1):
            self.tv.place("mm", MARKET, "BUY", self.size, str(self.mid - Decimal("0.5") * i))
            self.tv.place("mm", MARKET, "SELL", self.size, str(self.mid + Decimal("0.5") * i))

    def trade(self, side: str, qty: str) -> None:
        """The flow account takes ``qty`` (tape volume others make)."""
        self.tv.place("flow", MARKET, side, qty)

    def advance(self, seconds: int) -> None:
        self.tv.advance(seconds)

    def runner(
        self, parent: ParentOrder, log: Path | None = None, seed: int = 1, period_s: int = 5
    ) -> ParentRunner:
        """A runner for ``parent`` (resumed when ``log`` already holds it)."""
        child_log = ChildLog(log)
        try:
            return ParentRunner.start(self.venue, parent, child_log, seed=seed, period_s=period_s)
        except Exception:
            child_log.close()
            raise

    def book(self) -> str:
        return self.tv.book_table(MARKET)

    @property
    def market(self) -> MarketId:
        return MarketId(MARKET)
