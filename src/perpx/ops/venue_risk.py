"""Read-only figures of a live engine for the metrics: index sources and accounts near liquidation.

Called on the sequencer between batches (:meth:`RequestSequencer.query`), like every read of the
engine; nothing here changes it. Ages are on the venue clock (``Engine.now_ns``), the clock every
staleness decision of the engine uses, so an age over ``stale_after`` here is exactly a source the
index leaves out.
"""

from __future__ import annotations

from dataclasses import dataclass

from perpx.engine.engine import Engine
from perpx.engine.liquidation.insurance import INSURANCE_ACCOUNT
from perpx.engine.margin import isolated_margin_ratio_e8
from perpx.engine.values import RATE_SCALE, MarketId

NEAR_LIQUIDATION_RATIO_E8 = 80 * RATE_SCALE // 100
"""A scope at or over this margin ratio (80%) is near liquidation (100% is liquidated)."""


@dataclass(frozen=True, slots=True)
class IndexSources:
    """One priced market's sources: each configured source's quote age and how many are fresh."""

    ages_ns: dict[str, int | None]
    """Venue time since each configured source's latest quote; ``None``: it never quoted."""
    live: int
    """Sources whose quote is no older than ``stale_after`` (those the index may use)."""
    min_sources: int
    """The quorum: below it the index freezes and the market trades reduce-only."""


def index_sources(engine: Engine, market: MarketId) -> IndexSources | None:
    """The sources of ``market``'s index now; ``None`` for a market without index sources."""
    spec = engine.specs[market].index
    state = engine.pricing.markets.get(market)
    if spec is None or state is None:
        return None
    ages: dict[str, int | None] = {}
    live = 0
    for source in sorted(spec.weights):
        quote = state.quotes.get(source)
        if quote is None:
            ages[source] = None
            continue
        age = max(0, engine.now_ns - quote.ts_ns)
        ages[source] = age
        if age <= spec.stale_after_ns:
            live += 1
    return IndexSources(ages_ns=ages, live=live, min_sources=spec.min_sources)


def accounts_near_liquidation(engine: Engine) -> dict[MarketId, int]:
    """Per market, accounts with a position there whose margin scope is at or over 80%.

    A cross account counts under every market it holds a cross position in (its one ratio covers
    them all); an isolated position counts under its market on its own ratio. The insurance fund
    is not a trader and is left out.
    """
    counts: dict[MarketId, int] = {}
    for market, holders in sorted(engine.market_positions.items()):
        near = 0
        for account_id, position in holders.items():
            if account_id == INSURANCE_ACCOUNT or position.qty_lots == 0:
                continue
            risk = engine.risk(account_id)
            if position.is_isolated:
                row = next(r for r in risk.positions if r.market == market)
                ratio = isolated_margin_ratio_e8(row)
            else:
                ratio = risk.margin_ratio_e8
            if ratio >= NEAR_LIQUIDATION_RATIO_E8:
                near += 1
        counts[market] = near
    return counts
