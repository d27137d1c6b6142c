"""What the pricing model reads of the venue: index, depth near it, the price band, the desk's inventory.

Called between commands (in the server's query step, or the simulation's loop), never inside the
engine. :class:`IndexHistory` is a sequencer listener that keeps each market's recent index
samples for the volatility term.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from decimal import Decimal

from perpx.engine import formulas
from perpx.engine.engine import Engine
from perpx.engine.events import AssetIndexUpdated, IndexUpdated, MarkPriceSet
from perpx.engine.values import AccountId, MarketId
from perpx.otc.config import MarketPolicy, PricingParams
from perpx.otc.pricing import BPS, MarketInputs, range_bps
from perpx.sequencing import Applied


class IndexHistory:
    """Each market's index samples ``(ts_ns, index_ticks)`` over the last ``window_s`` seconds."""

    def __init__(self, window_s: int) -> None:
        self.window_ns = window_s * 1_000_000_000
        self.samples: dict[str, deque[tuple[int, int]]] = {}

    def observe(self, batch: list[Applied]) -> None:
        """A sequencer listener: record every index the engine computed or was given (a market's in
        ticks; an asset's, for the spot pairs, in atoms under ``asset:<name>``)."""
        for applied in batch:
            for event in applied.events:
                if isinstance(event, IndexUpdated | MarkPriceSet):
                    self.add(str(event.market), event.ts_ns, event.index_ticks)
                elif isinstance(event, AssetIndexUpdated) and event.index_atoms is not None:
                    self.add(f"asset:{event.asset}", event.ts_ns, event.index_atoms)  # spot pairs (spot.py)

    def add(self, market: str, ts_ns: int, index_ticks: int) -> None:
        samples = self.samples.setdefault(market, deque())
        samples.append((ts_ns, index_ticks))
        while samples and samples[0][0] < ts_ns - self.window_ns:
            samples.popleft()

    def recent(self, market: str, now_ns: int) -> list[int]:
        """The index samples within the window ending at ``now_ns``."""
        since = now_ns - self.window_ns
        return [ticks for ts, ticks in self.samples.get(market, ()) if ts >= since]


def depth_within_lots(
    engine: Engine, market: MarketId, index_ticks: int, band_bps: Decimal
) -> tuple[int, int]:
    """Resting bid and ask lots priced within ``band_bps`` of ``index_ticks``."""
    book = engine.books[market]
    reach = Decimal(index_ticks) * band_bps / BPS
    low, high = Decimal(index_ticks) - reach, Decimal(index_ticks) + reach
    bids = sum(lots for price, lots in book.bids.depth() if price >= low)
    asks = sum(lots for price, lots in book.asks.depth() if price <= high)
    return bids, asks


def desk_position_lots(engine: Engine, desk: AccountId, market: MarketId) -> int:
    """The desk's signed position in ``market`` (0 without a position record)."""
    account = engine.accounts.get(desk)
    position = account.positions.get(market) if account is not None else None
    return 0 if position is None else position.qty_lots


def market_inputs(
    engine: Engine,
    market: MarketId,
    desk: AccountId,
    params: PricingParams,
    policy: MarketPolicy,
    history: IndexHistory,
    betas: Mapping[str, Decimal] | None = None,
    max_net_delta: Decimal | None = None,
    elsewhere: Mapping[str, int] | None = None,
) -> MarketInputs | None:
    """The model's inputs for ``market`` now, or ``None`` when it has no index or mark yet.

    ``betas`` and ``max_net_delta`` are the cross-symbol limit's (``[otc]``); without them the
    net delta is not limited. ``elsewhere`` is the desk's position on outside hedging venues, by
    market, in this venue's lots: it counts in the inventory and the net delta.
    """
    index = engine.indexes.get(market)
    mark = engine.marks.get(market)
    if index is None or mark is None or index <= 0:
        return None
    spec = engine.specs[market]
    bids, asks = depth_within_lots(engine, market, index, params.depth_band_bps)
    samples = [*history.recent(str(market), engine.now_ns), index]
    return MarketInputs(
        index_ticks=index,
        depth_bid_lots=bids,
        depth_ask_lots=asks,
        range_bps=range_bps(samples, index),
        band_floor_ticks=formulas.price_band_ticks(mark, spec.percent_price_down_e8, round_up=True),
        band_ceiling_ticks=formulas.price_band_ticks(mark, spec.percent_price_up_e8, round_up=False),
        inventory_lots=desk_position_lots(engine, desk, market) + (elsewhere or {}).get(str(market), 0),
        max_inventory_lots=max(1, to_units_down(policy.max_inventory, spec.lot_size)),
        tick_size=spec.tick_size,
        lot_size=spec.lot_size,
        net_delta=net_delta(engine, desk, betas or {}, elsewhere),
        max_net_delta=max_net_delta,
        beta=(betas or {}).get(str(market), Decimal(1)),
    )


def net_delta(
    engine: Engine, desk: AccountId, betas: Mapping[str, Decimal], elsewhere: Mapping[str, int] | None = None
) -> Decimal:
    """The desk's net delta across symbols: ``sum beta x position x mark x contract``, settlement units.

    The position is the desk's here plus ``elsewhere`` (on outside hedging venues, in this venue's
    lots). A symbol without a beta counts with beta 1. Exact (Decimal), never rounded.
    """
    account = engine.accounts.get(desk)
    held = {str(m): p.qty_lots for m, p in account.positions.items()} if account is not None else {}
    for market, lots in (elsewhere or {}).items():
        held[market] = held.get(market, 0) + lots
    atom = engine.config.settlement.atom
    total = Decimal(0)
    for market, lots in sorted(held.items()):
        if lots:
            spec = engine.specs[MarketId(market)]
            value = Decimal(lots * engine.marks[MarketId(market)] * spec.contract_atoms) * atom
            total += betas.get(market, Decimal(1)) * value
    return total


def to_units_down(amount: Decimal, unit: Decimal) -> int:
    """``amount`` in whole ``unit``, rounded down (a limit is never rounded up past what was configured)."""
    return int(amount // unit)
