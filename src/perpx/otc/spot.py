"""Spot pairs: what the pricing model reads of one, and the whole atoms an accepted quote moves.

A spot pair (``[otc.spot."BTC/USDT"]``) has no book and no mark: the desk prices it with the same
model as a perpetual (:func:`perpx.otc.pricing.price_quote`) from the **asset's index** (the
lending index of ``[assets.BTC]``, quorum of its sources), converted into the pair's ticks:

=====================  =============================================================================
model input            for a spot pair
=====================  =============================================================================
index                  ``floor(index_atoms x settlement atom / tick_size)`` ticks; none while stale
depth                  the pair's configured ``depth`` in lots, on both sides
volatility             the range of the asset's index samples over ``vol_window_s``
price band             ``index x (1 -/+ band_bps / 10^4)``, floor rounded up and ceiling down
inventory              the desk's holding of the base asset less ``target_inventory``, in lots
limit                  ``max_inventory`` in lots; net delta across symbols does not include spot
=====================  =============================================================================

An accepted quote of ``q`` lots at ``p`` ticks moves ``q x lot_size`` of the base asset and
``p x tick_size x q x lot_size`` of the settlement asset, both whole atoms (``perpx.otc.config``
checks the steps), in one :class:`~perpx.engine.commands.BookSpotBlockTrade`.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from perpx.engine.engine import Engine
from perpx.engine.values import AccountId, AssetId
from perpx.otc.config import PricingParams, SpotPair
from perpx.otc.pricing import BPS, MarketInputs, range_bps

ASSET_KEY_PREFIX = "asset:"
""":class:`perpx.otc.market.IndexHistory` keeps an asset's index samples (atoms) under ``asset:BTC``."""


def index_atoms(engine: Engine, pair: SpotPair) -> int | None:
    """The base asset's index in settlement atoms per whole unit, or ``None`` while stale or unpriced."""
    return engine.lending.index_atoms(AssetId(pair.base))


def index_ticks(engine: Engine, pair: SpotPair, atoms: int) -> int:
    """``atoms`` (settlement atoms per whole base unit) in the pair's ticks, rounded down."""
    price = Decimal(atoms) * engine.config.settlement.atom
    return int((price / pair.tick_size).to_integral_value(rounding=ROUND_FLOOR))


def holding_lots(engine: Engine, pair: SpotPair, desk: AccountId) -> int:
    """The desk's holding of the base asset less its target, in the pair's lots (toward zero)."""
    account = engine.accounts.get(desk)
    held = 0 if account is None else account.balance(AssetId(pair.base))
    units = Decimal(held) * engine.config.assets[AssetId(pair.base)].atom - pair.target_inventory
    return int(units / pair.lot_size)


def base_atoms(engine: Engine, pair: SpotPair, qty_lots: int) -> int:
    """``qty_lots`` of the pair in atoms of its base asset (exact: config checks the lot)."""
    return int(Decimal(qty_lots) * pair.lot_size / engine.config.assets[AssetId(pair.base)].atom)


def quote_atoms(engine: Engine, pair: SpotPair, qty_lots: int, price_ticks: int) -> int:
    """What ``qty_lots`` at ``price_ticks`` costs, in settlement atoms (exact: config checks the steps)."""
    value = Decimal(qty_lots) * pair.lot_size * Decimal(price_ticks) * pair.tick_size
    return int(value / engine.config.settlement.atom)


def spot_inputs(
    engine: Engine, pair: SpotPair, desk: AccountId, params: PricingParams, samples_atoms: list[int]
) -> MarketInputs | None:
    """The model's inputs for ``pair`` now (module docstring), or ``None`` without a fresh index."""
    atoms = index_atoms(engine, pair)
    if atoms is None or atoms <= 0:
        return None
    index = index_ticks(engine, pair, atoms)
    if index <= 0:
        return None
    depth = max(0, int(pair.depth / pair.lot_size))
    reach = Decimal(index) * pair.band_bps / BPS
    return MarketInputs(
        index_ticks=index,
        depth_bid_lots=depth,
        depth_ask_lots=depth,
        range_bps=range_bps([*samples_atoms, atoms], atoms),
        band_floor_ticks=int((Decimal(index) - reach).to_integral_value(rounding=ROUND_CEILING)),
        band_ceiling_ticks=int((Decimal(index) + reach).to_integral_value(rounding=ROUND_FLOOR)),
        inventory_lots=holding_lots(engine, pair, desk),
        max_inventory_lots=max(1, int(pair.max_inventory / pair.lot_size)),
        tick_size=pair.tick_size,
        lot_size=pair.lot_size,
    )
