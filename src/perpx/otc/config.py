"""The ``[otc]`` section of a venue config: the desk's account, its pricing, last look, limits and hedging.

Every decimal is a string (as in the rest of the venue config); quantities are in the market's base
asset, notionals in the settlement asset, rates in basis points. An example, with the defaults::

    [otc]
    desk_account = 2                # the account that takes the other side of every block trade
    quote_ttl_ms = 5000             # a quote is valid this long, in venue time
    last_look_bps = "5"             # an accept is rejected only if the index moved more than this
    min_notional = "10000"          # smallest request, at the index
    max_notional = "10000000"       # largest request, at the index
    base_spread_bps = "2"           # half-spread floor
    depth_spread_bps = "4"          # + this x (size / visible depth on the side the desk gives)
    depth_band_bps = "50"           # depth counted within this distance of the index
    vol_spread_mult = "0.5"         # + this x the index's range over the last vol_window_s, in bps
    vol_window_s = 300
    skew_bps = "10"                 # the mid moves against inventory by this at the limit
    max_spread_bps = "150"          # half-spread cap; a request that needs more is refused

    [otc.tiers]                     # bps added to the half-spread per client tier
    standard = "0"
    gold = "-1"

    [otc.clients]                   # account id -> tier (others are "standard")
    "7" = "gold"

    max_net_delta = "2000000"       # |net delta| across symbols, settlement asset (absent: no limit)

    [otc.betas]                     # symbol -> beta to the net delta (others: 1)
    ETHUSDT = "1.2"

    [otc.markets.BTCUSDT]
    hedge = "threshold"             # immediate | threshold | warehouse
    hedge_threshold = "2"           # threshold: hedge the whole position once |position| exceeds this
    max_inventory = "20"            # |desk position| never beyond this after a block trade
    hedge_algo = "TWAP"             # TWAP | POV | IS (perpx.execution)
    hedge_duration_s = 120
    venue = "ccxt:binanceusdm"      # hedges on another venue (or "http://host:port", a perpx); absent: perpx's book

    [otc.spot."BTC/USDT"]           # a spot pair: a listed asset against the settlement asset
    tick_size = "0.01"              # price step of the pair's quotes (settlement units)
    lot_size = "0.0001"             # quantity step (base units)
    max_inventory = "20"            # |desk holding - target| never beyond this after a block trade
    target_inventory = "0"          # the holding the desk skews towards
    depth = "50"                    # the visible depth the size term divides by (base units)
    band_bps = "500"                # no quote further than this from the asset's index

The engine only lists ``otc`` as a known table; this module checks its keys the way the engine
checks its own (an unknown key is an error naming the closest valid one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from perpx.engine.config import ConfigError, check_keys
from perpx.otc.outside import check_venue_name

OTC_KEYS = (
    "desk_account",
    "quote_ttl_ms",
    "last_look_bps",
    "min_notional",
    "max_notional",
    "base_spread_bps",
    "depth_spread_bps",
    "depth_band_bps",
    "vol_spread_mult",
    "vol_window_s",
    "skew_bps",
    "max_spread_bps",
    "tiers",
    "clients",
    "markets",
    "max_net_delta",
    "betas",
    "spot",
)
SPOT_KEYS = ("tick_size", "lot_size", "max_inventory", "target_inventory", "depth", "band_bps")
MARKET_KEYS = ("hedge", "hedge_threshold", "max_inventory", "hedge_algo", "hedge_duration_s", "venue")
HEDGE_ALGOS = ("TWAP", "POV", "IS")
DEFAULT_TIER = "standard"


class HedgeMode(StrEnum):
    """How the desk hedges a symbol's inventory after a block trade (``perpx.otc.hedging``)."""

    IMMEDIATE = "immediate"
    """Hedge the whole position after every block trade."""
    THRESHOLD = "threshold"
    """Hedge the whole position once its size exceeds ``hedge_threshold``."""
    WAREHOUSE = "warehouse"
    """Keep the inventory (within ``max_inventory``, which the quotes enforce); hedge only an excess."""


@dataclass(frozen=True, slots=True)
class MarketPolicy:
    """One symbol's inventory limit and hedging policy, quantities in base units."""

    hedge: HedgeMode = HedgeMode.THRESHOLD
    hedge_threshold: Decimal = Decimal(2)
    max_inventory: Decimal = Decimal(20)
    hedge_algo: str = "TWAP"
    hedge_duration_s: int = 120
    venue: str = ""
    """Where hedges run: ``""`` perpx's own book, ``"ccxt:<id>"`` or a perpx URL (``perpx.otc.outside``)."""


@dataclass(frozen=True, slots=True)
class PricingParams:
    """The pricing model's parameters (``perpx.otc.pricing``), in basis points unless named otherwise."""

    base_spread_bps: Decimal = Decimal(2)
    depth_spread_bps: Decimal = Decimal(4)
    depth_band_bps: Decimal = Decimal(50)
    vol_spread_mult: Decimal = Decimal("0.5")
    vol_window_s: int = 300
    skew_bps: Decimal = Decimal(10)
    max_spread_bps: Decimal = Decimal(150)
    min_notional: Decimal = Decimal(10_000)
    max_notional: Decimal = Decimal(10_000_000)


@dataclass(frozen=True, slots=True)
class SpotPair:
    """A spot pair the desk quotes: ``base`` against the settlement asset, booked as wallet transfers.

    ``tick_size x lot_size`` is a whole number of settlement atoms and ``lot_size`` a whole number
    of base atoms, so every accepted quote moves whole atoms of both assets (checked at parse).
    """

    symbol: str
    base: str
    tick_size: Decimal = Decimal("0.01")
    lot_size: Decimal = Decimal("0.0001")
    max_inventory: Decimal = Decimal(20)
    target_inventory: Decimal = Decimal(0)
    depth: Decimal = Decimal(50)
    band_bps: Decimal = Decimal(500)


@dataclass(frozen=True, slots=True)
class OtcConfig:
    """The whole ``[otc]`` section."""

    desk_account: int
    quote_ttl_ms: int = 5000
    last_look_bps: Decimal = Decimal(5)
    pricing: PricingParams = field(default_factory=PricingParams)
    tiers: Mapping[str, Decimal] = field(default_factory=lambda: {DEFAULT_TIER: Decimal(0)})
    clients: Mapping[int, str] = field(default_factory=dict)
    markets: Mapping[str, MarketPolicy] = field(default_factory=dict)
    max_net_delta: Decimal | None = None
    """The limit on the desk's net delta across symbols (``sum beta x position x mark``), or none."""
    betas: Mapping[str, Decimal] = field(default_factory=dict)
    spot: Mapping[str, SpotPair] = field(default_factory=dict)
    """The spot pairs by symbol (``"BTC/USDT"``): quoted from the asset's index, booked as transfers."""

    def beta(self, market: str) -> Decimal:
        """The symbol's beta to the net delta (1 when the config names none)."""
        return self.betas.get(market, Decimal(1))

    def tier_of(self, account_id: int) -> str:
        """The client's tier name (``standard`` when the config names none)."""
        return self.clients.get(account_id, DEFAULT_TIER)

    def policy(self, market: str) -> MarketPolicy:
        """The symbol's policy; a symbol without a ``[otc.markets.X]`` table gets the defaults."""
        return self.markets.get(market, MarketPolicy())


def parse_otc(data: Mapping[str, Any], listed_markets: tuple[str, ...]) -> OtcConfig | None:
    """The ``[otc]`` table of a parsed venue TOML, or ``None`` when the venue has no desk.

    Raises
    ------
    ConfigError
        If a key is unknown, a value is malformed or out of range, or a market is not listed.
    """
    table = data.get("otc")
    if table is None:
        return None
    check_keys(table, OTC_KEYS, "otc")
    desk = table.get("desk_account")
    if not isinstance(desk, int) or isinstance(desk, bool) or desk < 1:
        raise ConfigError("otc.desk_account must be a positive account id (an integer)")
    defaults = PricingParams()
    pricing = PricingParams(
        base_spread_bps=_bps(table, "base_spread_bps", defaults.base_spread_bps),
        depth_spread_bps=_bps(table, "depth_spread_bps", defaults.depth_spread_bps),
        depth_band_bps=_bps(table, "depth_band_bps", defaults.depth_band_bps, positive=True),
        vol_spread_mult=_bps(table, "vol_spread_mult", defaults.vol_spread_mult),
        vol_window_s=_int(table, "vol_window_s", defaults.vol_window_s, 1, 86_400),
        skew_bps=_bps(table, "skew_bps", defaults.skew_bps),
        max_spread_bps=_bps(table, "max_spread_bps", defaults.max_spread_bps, positive=True),
        min_notional=_bps(table, "min_notional", defaults.min_notional),
        max_notional=_bps(table, "max_notional", defaults.max_notional, positive=True),
    )
    if pricing.min_notional > pricing.max_notional:
        raise ConfigError("otc.min_notional must not exceed otc.max_notional")
    tiers_table = table.get("tiers", {DEFAULT_TIER: "0"})
    check_keys(tiers_table, tuple(tiers_table) if isinstance(tiers_table, Mapping) else (), "otc.tiers")
    tiers = {str(name): _decimal(value, f"otc.tiers.{name}") for name, value in tiers_table.items()}
    tiers.setdefault(DEFAULT_TIER, Decimal(0))
    clients: dict[int, str] = {}
    clients_table = table.get("clients", {})
    check_keys(
        clients_table, tuple(clients_table) if isinstance(clients_table, Mapping) else (), "otc.clients"
    )
    for key, tier in clients_table.items():
        if not str(key).isdigit() or str(tier) not in tiers:
            raise ConfigError(f"otc.clients.{key} must map an account id to a tier of otc.tiers ({tier!r})")
        clients[int(key)] = str(tier)
    markets: dict[str, MarketPolicy] = {}
    markets_table = table.get("markets", {})
    check_keys(markets_table, listed_markets, "otc.markets")
    for market, policy in markets_table.items():
        markets[str(market)] = _policy(policy, f"otc.markets.{market}")
    betas_table = table.get("betas", {})
    check_keys(betas_table, listed_markets, "otc.betas")
    betas = {str(m): _decimal(v, f"otc.betas.{m}") for m, v in betas_table.items()}
    max_net_delta = (
        _bps(table, "max_net_delta", Decimal(0), positive=True) if "max_net_delta" in table else None
    )
    spot_table = table.get("spot", {})
    check_keys(spot_table, tuple(spot_table) if isinstance(spot_table, Mapping) else (), "otc.spot")
    spot = {str(symbol): _spot_pair(str(symbol), pair, data) for symbol, pair in spot_table.items()}
    return OtcConfig(
        spot=spot,
        max_net_delta=max_net_delta,
        betas=betas,
        desk_account=desk,
        quote_ttl_ms=_int(table, "quote_ttl_ms", 5000, 100, 600_000),
        last_look_bps=_bps(table, "last_look_bps", Decimal(5)),
        pricing=pricing,
        tiers=tiers,
        clients=clients,
        markets=markets,
    )


def _policy(table: Any, where: str) -> MarketPolicy:
    check_keys(table, MARKET_KEYS, where)
    defaults = MarketPolicy()
    mode = str(table.get("hedge", defaults.hedge.value))
    if mode not in tuple(m.value for m in HedgeMode):
        raise ConfigError(f"{where}.hedge must be one of immediate, threshold, warehouse (was {mode!r})")
    algo = str(table.get("hedge_algo", defaults.hedge_algo))
    if algo not in HEDGE_ALGOS:
        raise ConfigError(f"{where}.hedge_algo must be one of {', '.join(HEDGE_ALGOS)} (was {algo!r})")
    venue = table.get("venue", "")
    if not isinstance(venue, str):
        raise ConfigError(f"{where}.venue must be a string (was {venue!r})")
    problem = check_venue_name(venue, f"{where}.venue")
    if problem is not None:
        raise ConfigError(problem)
    policy = MarketPolicy(
        venue=venue,
        hedge=HedgeMode(mode),
        hedge_threshold=_bps(table, "hedge_threshold", defaults.hedge_threshold, where=where),
        max_inventory=_bps(table, "max_inventory", defaults.max_inventory, positive=True, where=where),
        hedge_algo=algo,
        hedge_duration_s=_int(table, "hedge_duration_s", defaults.hedge_duration_s, 1, 86_400, where),
    )
    if policy.hedge_threshold > policy.max_inventory:
        raise ConfigError(f"{where}.hedge_threshold must not exceed {where}.max_inventory")
    return policy


def _spot_pair(symbol: str, table: Any, data: Mapping[str, Any]) -> SpotPair:
    where = f"otc.spot.{symbol}"
    check_keys(table, SPOT_KEYS, where)
    assets = data.get("assets", {})
    settlement = str(data.get("venue", {}).get("settlement_asset", ""))
    base, _, quote = symbol.partition("/")
    if quote != settlement or base not in assets or base == settlement:
        raise ConfigError(
            f"{where}: a spot pair is BASE/{settlement or 'SETTLEMENT'} with BASE a listed asset other than"
            f" the settlement asset (listed: {', '.join(sorted(str(a) for a in assets))})"
        )
    d = SpotPair(symbol, base)
    pair = SpotPair(
        symbol=symbol,
        base=base,
        tick_size=_bps(table, "tick_size", d.tick_size, positive=True, where=where),
        lot_size=_bps(table, "lot_size", d.lot_size, positive=True, where=where),
        max_inventory=_bps(table, "max_inventory", d.max_inventory, positive=True, where=where),
        target_inventory=_bps(table, "target_inventory", d.target_inventory, where=where),
        depth=_bps(table, "depth", d.depth, positive=True, where=where),
        band_bps=_bps(table, "band_bps", d.band_bps, positive=True, where=where),
    )
    base_atom = Decimal(1).scaleb(-int(assets[base].get("decimals", 0)))
    settle_atom = Decimal(1).scaleb(-int(assets[settlement].get("decimals", 0)))
    if pair.lot_size % base_atom or (pair.tick_size * pair.lot_size) % settle_atom:
        raise ConfigError(
            f"{where}: lot_size must be a whole number of {base} atoms and tick_size x lot_size a whole"
            f" number of {settlement} atoms"
        )
    return pair


def _decimal(value: Any, where: str) -> Decimal:
    if not isinstance(value, str):
        raise ConfigError(f'{where} must be a decimal written as a string, like "2.5" (was {value!r})')
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ConfigError(f"{where} is not a decimal number: {value!r}") from None
    if not number.is_finite():
        raise ConfigError(f"{where} must be a finite number (was {value!r})")
    return number


def _bps(
    table: Mapping[str, Any], key: str, default: Decimal, *, positive: bool = False, where: str = "otc"
) -> Decimal:
    if key not in table:
        return default
    value = _decimal(table[key], f"{where}.{key}")
    if value < 0 or (positive and value == 0):
        bound = "greater than zero" if positive else "zero or more"
        raise ConfigError(f"{where}.{key} must be {bound} (was {table[key]!r})")
    return value


def _int(table: Mapping[str, Any], key: str, default: int, lo: int, hi: int, where: str = "otc") -> int:
    value = table.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ConfigError(f"{where}.{key} must be an integer from {lo} to {hi} (was {value!r})")
    return value


def describe_otc(data: Mapping[str, Any], listed_markets: tuple[str, ...]) -> list[str]:
    """What ``perpx check-config`` prints of the ``[otc]`` section (nothing without one).

    Raises
    ------
    ConfigError
        As :func:`parse_otc`: the message names the key's dotted path (``otc.markets.BTCUSDT.hedge``).
    """
    config = parse_otc(data, listed_markets)
    if config is None:
        return []
    p = config.pricing
    lines = [
        f"otc: desk account {config.desk_account}; quotes valid {config.quote_ttl_ms} ms;"
        f" last look {config.last_look_bps} bps; notional {p.min_notional} to {p.max_notional}",
        f"  half-spread {p.base_spread_bps} bps + {p.depth_spread_bps} x size/depth (within"
        f" {p.depth_band_bps} bps) + {p.vol_spread_mult} x range over {p.vol_window_s} s,"
        f" cap {p.max_spread_bps} bps; skew {p.skew_bps} bps at the limit",
        "  tiers: " + ", ".join(f"{name} {bps:+} bps" for name, bps in sorted(config.tiers.items())),
    ]
    if config.max_net_delta is not None:
        betas = ", ".join(f"{m} {b}" for m, b in sorted(config.betas.items())) or "all 1"
        lines.append(f"  net delta across symbols within {config.max_net_delta} (betas: {betas})")
    for market, policy in sorted(config.markets.items()):
        lines.append(
            f"  {market}: hedge {policy.hedge.value} (threshold {policy.hedge_threshold}), limit"
            f" {policy.max_inventory}, {policy.hedge_algo} over {policy.hedge_duration_s} s"
            f" on {policy.venue or 'this venue'}"
        )
    for symbol, pair in sorted(config.spot.items()):
        lines.append(
            f"  {symbol} (spot): tick {pair.tick_size}, lot {pair.lot_size}, limit {pair.max_inventory}"
            f" around {pair.target_inventory}, depth {pair.depth}, band {pair.band_bps} bps"
        )
    return lines
