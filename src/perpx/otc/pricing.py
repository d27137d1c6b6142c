"""The desk's pricing model: a two-way price for a size, from the index, depth, volatility and inventory.

Pure: every input is a value (:class:`MarketInputs`, :class:`~perpx.otc.config.PricingParams`), no
clock, no engine. The same inputs always give the same quote.

The model, per request of ``q`` lots (``notional = q x index``), all rates in basis points:

=====================  =============================================================================
line                   formula
=====================  =============================================================================
size check             ``min_notional <= notional <= max_notional``, else refused
depth term             ``depth_spread_bps x q / D`` where ``D`` is the visible depth (lots) within
                       ``depth_band_bps`` of the index on the side the desk gives up (asks for a
                       client buy, bids for a client sell); ``D = 0`` needs the cap (refused)
volatility term        ``vol_spread_mult x range_bps``: the index's high-low range over the last
                       ``vol_window_s``, in bps of the index
half-spread            ``h = base_spread_bps + tier_bps + depth + volatility``, at least 0; a side
                       whose ``h`` exceeds ``max_spread_bps`` is refused
inventory skew         ``u = clamp(inventory / max_inventory, -1, 1)``, or the net delta's usage
                       ``clamp(net / max_net_delta, -1, 1)`` (signed by the symbol's beta) when it
                       is larger; the centre is ``index x (1 - skew_bps x u / 10^4)``: a long desk
                       lowers both prices (sells cheaper, buys cheaper), a short desk raises them
prices                 ``bid = floor(centre x (1 - h / 10^4))``, ``ask = ceil(centre x (1 + h / 10^4))``
                       in ticks: rounding always widens the quote (the desk never rounds against itself)
limits                 a side whose trade would take ``|inventory|`` beyond ``max_inventory`` is
                       refused (the desk cannot take more risk there); likewise a side whose trade
                       would take ``|net delta|`` (``sum beta x position x mark`` across symbols,
                       the trade at the index) beyond ``max_net_delta`` and further from zero
price band             a side outside the venue's band around the mark (``percent_price_down`` ..
                       ``percent_price_up``) is refused: a quote is never outside the band
=====================  =============================================================================

Properties the tests hold the model to: the half-spread never decreases with size; the skew's sign
follows the inventory's; the bid is below the ask; no price leaves the band.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from enum import StrEnum

from perpx.otc.config import PricingParams

BPS = Decimal(10_000)


class QuoteSide(StrEnum):
    """What the client asked for: to buy, to sell, or a two-way price."""

    BUY = "BUY"
    SELL = "SELL"
    TWO_WAY = "TWO_WAY"


@dataclass(frozen=True, slots=True)
class MarketInputs:
    """What the model reads of the market and the desk at the time of the request.

    ``depth_bid_lots``/``depth_ask_lots`` are the resting lots within ``depth_band_bps`` of the
    index; ``band_floor_ticks``/``band_ceiling_ticks`` the venue's price band around the mark;
    ``inventory_lots`` the desk's signed position; ``max_inventory_lots`` its limit (> 0).
    """

    index_ticks: int
    depth_bid_lots: int
    depth_ask_lots: int
    range_bps: Decimal
    band_floor_ticks: int
    band_ceiling_ticks: int
    inventory_lots: int
    max_inventory_lots: int
    tick_size: Decimal
    lot_size: Decimal
    net_delta: Decimal = Decimal(0)
    """The desk's net delta across symbols before the trade: ``sum beta x position x mark``, settlement units."""
    max_net_delta: Decimal | None = None
    """Its limit (``[otc] max_net_delta``); ``None``: no cross-symbol limit."""
    beta: Decimal = Decimal(1)
    """This symbol's beta to the net delta."""


@dataclass(frozen=True, slots=True)
class SidePrice:
    """One side of a quote: its price, or why there is none."""

    price_ticks: int | None
    half_spread_bps: Decimal
    refusal: str | None = None


@dataclass(frozen=True, slots=True)
class PricedQuote:
    """The model's answer: the desk's bid (it buys) and ask (it sells), each priced or refused."""

    qty_lots: int
    centre_ticks: Decimal
    skew_bps: Decimal
    volatility_bps: Decimal
    bid: SidePrice | None
    ask: SidePrice | None
    refusal: str | None = None

    @property
    def priced(self) -> bool:
        """True when at least one side the client asked for has a price."""
        return any(s is not None and s.price_ticks is not None for s in (self.bid, self.ask))


def half_spread_bps(
    qty_lots: int, depth_lots: int, range_bps: Decimal, tier_bps: Decimal, params: PricingParams
) -> Decimal | None:
    """The half-spread for ``qty_lots`` against ``depth_lots`` of visible depth, or ``None`` (no depth).

    Non-decreasing in ``qty_lots`` (the depth term is linear in it) and in ``range_bps``.
    """
    if depth_lots <= 0:
        return None
    depth_term = params.depth_spread_bps * Decimal(qty_lots) / Decimal(depth_lots)
    volatility = params.vol_spread_mult * range_bps
    return max(Decimal(0), params.base_spread_bps + tier_bps + depth_term + volatility)


def skew_bps(inventory_lots: int, max_inventory_lots: int, params: PricingParams) -> Decimal:
    """How far the centre moves below the index (bps, positive when the desk is long)."""
    used = Decimal(inventory_lots) / Decimal(max_inventory_lots)
    used = min(Decimal(1), max(Decimal(-1), used))
    return params.skew_bps * used


def limit_usage(market: MarketInputs) -> Decimal:
    """How much of its limits the desk uses, signed (-1 .. 1): the symbol's, or the net delta's if larger.

    The net delta's usage counts in this symbol through the sign of its beta: a desk long across
    symbols skews a positively correlated symbol's prices down, as a long position in it would.
    """
    own = Decimal(market.inventory_lots) / Decimal(market.max_inventory_lots)
    own = min(Decimal(1), max(Decimal(-1), own))
    if market.max_net_delta is None or market.beta == 0:
        return own
    net = min(Decimal(1), max(Decimal(-1), market.net_delta / market.max_net_delta))
    net = net if market.beta > 0 else -net
    return own if abs(own) >= abs(net) else net


def trade_delta(qty_lots: int, sign: int, market: MarketInputs) -> Decimal:
    """The change of the desk's net delta if it sells (``sign`` 1) or buys (-1) ``qty_lots`` at the index."""
    notional = Decimal(qty_lots) * market.lot_size * Decimal(market.index_ticks) * market.tick_size
    return -sign * notional * market.beta


def range_bps(index_samples: list[int], index_ticks: int) -> Decimal:
    """The high-low range of ``index_samples`` (ticks) in bps of ``index_ticks``; 0 with fewer than two."""
    if len(index_samples) < 2 or index_ticks <= 0:
        return Decimal(0)
    return Decimal(max(index_samples) - min(index_samples)) * BPS / Decimal(index_ticks)


def price_quote(
    side: QuoteSide, qty_lots: int, market: MarketInputs, tier_bps: Decimal, params: PricingParams
) -> PricedQuote:
    """Price ``qty_lots`` for ``side`` with the model of the module docstring."""
    index = Decimal(market.index_ticks)
    skew = params.skew_bps * limit_usage(market)
    centre = index * (1 - skew / BPS)
    volatility = params.vol_spread_mult * market.range_bps
    notional = Decimal(qty_lots) * market.lot_size * index * market.tick_size
    if qty_lots <= 0:
        return PricedQuote(qty_lots, centre, skew, volatility, None, None, "the quantity must be positive")
    if notional < params.min_notional or notional > params.max_notional:
        return PricedQuote(
            qty_lots,
            centre,
            skew,
            volatility,
            None,
            None,
            f"the request is {notional:.2f} of notional at the index; the desk quotes"
            f" {params.min_notional} to {params.max_notional}",
        )
    bid = ask = None
    if side is not QuoteSide.BUY:
        bid = _side(qty_lots, market.depth_bid_lots, market, centre, -1, tier_bps, params)
    if side is not QuoteSide.SELL:
        ask = _side(qty_lots, market.depth_ask_lots, market, centre, 1, tier_bps, params)
    return PricedQuote(qty_lots, centre, skew, volatility, bid, ask)


def _side(
    qty_lots: int,
    depth_lots: int,
    market: MarketInputs,
    centre: Decimal,
    sign: int,
    tier_bps: Decimal,
    params: PricingParams,
) -> SidePrice:
    """The desk's ask (``sign`` 1: it sells, its inventory falls) or bid (-1: it buys)."""
    half = half_spread_bps(qty_lots, depth_lots, market.range_bps, tier_bps, params)
    if half is None:
        return SidePrice(None, params.max_spread_bps, "no visible depth on this side of the book")
    if half > params.max_spread_bps:
        return SidePrice(
            None, half, f"the size needs {half:.2f} bps, over the desk's cap of {params.max_spread_bps}"
        )
    after = market.inventory_lots - sign * qty_lots
    if abs(after) > market.max_inventory_lots and abs(after) > abs(market.inventory_lots):
        return SidePrice(None, half, "the trade would take the desk's inventory beyond its limit")
    if market.max_net_delta is not None:
        net_after = market.net_delta + trade_delta(qty_lots, sign, market)
        if abs(net_after) > market.max_net_delta and abs(net_after) > abs(market.net_delta):
            return SidePrice(
                None, half, "the trade would take the desk's net delta across symbols beyond its limit"
            )
    raw = centre * (1 + sign * half / BPS)
    ticks = int(raw.to_integral_value(rounding=ROUND_CEILING if sign > 0 else ROUND_FLOOR))
    if not market.band_floor_ticks <= ticks <= market.band_ceiling_ticks:
        return SidePrice(None, half, "the price would lie outside the venue's price band around the mark")
    return SidePrice(ticks, half)
