"""Venue configuration: a TOML file parsed once, at the edge, into frozen specs.

Every decimal in the file is a string and is converted exactly into the
engine's integer units (``values.py``). Anything that cannot be represented
exactly, or that breaks a rule below, raises :class:`ConfigError` naming the
key, so a bad file never starts a venue.

Rules checked here
------------------
* ``price_unit * qty_unit * 10**decimals`` is a whole number of atoms (the
  notional of one lot at one tick, ``contract_atoms``), so every notional is an
  exact integer product. The units default to ``tick_size`` and ``lot_size``.
* ``tick_size`` and ``lot_size`` (the filters orders must sit on) are whole
  multiples of ``price_unit`` and ``qty_unit`` (the integer units the engine holds
  prices and quantities in, fixed for the market's life).
* Brackets are ordered by ``notional_cap`` with non-increasing leverage and
  non-decreasing maintenance rate; each tier's ``cum`` (maintenance amount) is
  derived, never typed: ``cum_n = floor_n * (mmr_n - mmr_(n-1)) + cum_(n-1)``.
* Fee tiers are ordered by ``min_30d_volume``, the first starting at 0.
* A market's filters and limits obey :func:`check_market_limits`; the same
  function checks an operator's change of them while the venue runs
  (:func:`with_market_params`, the ``UpdateMarketParams`` command).
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from perpx.engine import formulas
from perpx.engine.values import (
    RATE_SCALE,
    AssetId,
    MarketId,
    format_units,
    to_decimal,
    to_rate_e8,
    to_units,
)

if TYPE_CHECKING:
    from perpx.engine.lending.config import LendingSpec

ClockMode = Literal["wall", "manual"]
Durability = Literal["batch", "none"]


class ConfigError(ValueError):
    """A venue configuration that cannot be used; the message names the key."""


@dataclass(frozen=True, slots=True)
class AssetSpec:
    """One asset of the ledger: balances are integer atoms of ``10**-decimals``."""

    asset: AssetId
    decimals: int
    index: IndexSpec | None = None
    """Spot sources of the asset's price in the settlement asset (``lending/config.py``)."""
    collateral_haircut_e8: int = 0
    max_collateral_atoms: int | None = None
    haircut_tiers: tuple[tuple[int, int], ...] = ()
    """Multi-Assets Mode: ``(from_atoms, haircut_e8)`` tiers by the size held, the first from 0
    (``collateral_haircut_tiers``; a plain ``collateral_haircut`` is one tier)."""
    conversion_discount_e8: int = 0
    """Multi-Assets Mode: below the index, the price at which a liquidation converts the asset."""

    @property
    def atom(self) -> Decimal:
        return Decimal(1).scaleb(-self.decimals)


@dataclass(frozen=True, slots=True)
class FeeTier:
    """Maker/taker rates that apply from ``min_30d_volume_atoms`` of traded notional upward."""

    min_30d_volume_atoms: int
    maker_e8: int
    taker_e8: int


@dataclass(frozen=True, slots=True)
class Bracket:
    """One leverage bracket: notional in ``[floor_atoms, cap_atoms)`` uses ``mmr_e8`` and ``cum_atoms``."""

    tier: int
    floor_atoms: int
    cap_atoms: int
    max_leverage: int
    mmr_e8: int
    cum_atoms: int


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """Spot sources of a market's index and how they combine (see ``pricing/index.py``)."""

    policy: str
    weights: Mapping[str, int]
    stale_after_ns: int
    min_sources: int
    outlier_e8: int


@dataclass(frozen=True, slots=True)
class RiskSpec:
    """Pricing, funding, trigger and liquidation parameters of a market (Binance defaults)."""

    liquidation_fee_e8: int
    funding_interval_hours: int
    interest_rate_e8: int
    funding_cap_e8: int
    funding_floor_e8: int
    impact_margin_notional_atoms: int
    premium_sample_s: int
    mark_basis_window_s: int
    trigger_protect_e8: int
    mark_policy: str
    max_open_interest_lots: int | None
    max_algo_orders: int
    adl_ranking: str = "binance"
    """Order of the auto-deleveraging queue: ``binance`` (PnL% x margin ratio) or
    ``profit_leverage`` (BitMEX-style PnL% x effective leverage, as Bybit, Poloniex, CoinEx)."""
    mark_index_band_e8: int = 3_000_000
    """The mark is clamped to ``index x (1 +/- band)`` (``mechanics.md`` 20, "The band"): two of the mark's three
    inputs come from the book, so without a bound one account could walk it away from the index."""
    upnl_collateral: str = "conservative"
    """How unrealised profit backs new exposure: ``conservative`` (the less favourable of mark and
    index) or ``mark`` (Binance)."""

    insurance_takeover_cap_e8: int | None = None
    """The most notional the insurance fund may hold in this market, as a multiple of its equity
    (``insurance_takeover_cap``, e.g. 2 = twice its equity; None = no cap: a takeover is bounded only by
    the fund's equity covering its loss). What a takeover would put beyond the cap is auto-deleveraged."""
    insurance_unwind_clip_e8: int = 0
    """The share of a fund position sent to the book per unwind step (``insurance_unwind_clip``, at least
    one lot; 0 = the fund keeps what it takes over)."""
    insurance_unwind_interval_s: int = 60
    """Simulated or venue seconds between two unwind steps of the fund."""
    insurance_unwind_limit_e8: int = 1_000_000
    """How far from the mark an unwind order may fill (``insurance_unwind_limit``, 0.01 = 1%)."""

    @property
    def upnl_collateral_conservative(self) -> bool:
        return self.upnl_collateral == "conservative"

    @property
    def funding_interval_ns(self) -> int:
        return self.funding_interval_hours * 3_600_000_000_000


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """A linear perpetual quoted and settled in the venue's settlement asset.

    Units and filters. ``tick_size`` and ``lot_size`` are the market's *units*: every price the
    engine holds is a whole number of ``tick_size`` (``*_ticks``) and every quantity a whole
    number of ``lot_size`` (``*_lots``), in orders, positions, events, journals, snapshots and
    read models. They are fixed for the market's life (the config's ``price_unit`` and
    ``qty_unit``, by default its ``tick_size`` and ``lot_size`` at listing). The tick and step
    *filters* orders must sit on are ``tick_step_ticks`` units and ``lot_step_lots`` units
    (:attr:`filter_tick_size`, :attr:`filter_lot_size`); an operator's proposal may change them
    (:mod:`perpx.engine.params`) without touching a stored price or quantity.
    """

    market: MarketId
    base: str
    settlement_asset: AssetId
    tick_size: Decimal
    lot_size: Decimal
    contract_atoms: int
    min_price_ticks: int
    max_price_ticks: int
    min_qty_lots: int
    max_qty_lots: int
    market_max_qty_lots: int
    min_notional_atoms: int
    percent_price_up_e8: int
    percent_price_down_e8: int
    market_take_bound_e8: int
    max_open_orders: int
    brackets: tuple[Bracket, ...]
    default_leverage: int
    risk: RiskSpec
    index: IndexSpec | None
    tick_step_ticks: int = 1
    """The tick filter in price units: an order's price is a multiple of it (``tick_size`` / ``price_unit``)."""
    lot_step_lots: int = 1
    """The step filter in quantity units: an order's quantity is a multiple of it (``lot_size`` / ``qty_unit``)."""

    @property
    def filter_tick_size(self) -> Decimal:
        """The tick size orders must be placed on, as published (exchangeInfo ``PRICE_FILTER.tickSize``)."""
        return self.tick_size * self.tick_step_ticks

    @property
    def filter_lot_size(self) -> Decimal:
        """The step orders' quantities must be placed on, as published (``LOT_SIZE.stepSize``)."""
        return self.lot_size * self.lot_step_lots

    @property
    def max_leverage(self) -> int:
        return self.brackets[0].max_leverage

    def bracket_for_notional(self, notional_atoms: int) -> Bracket:
        """The tier whose ``[floor, cap)`` holds ``notional_atoms`` (the last tier above its cap)."""
        for bracket in self.brackets:
            if notional_atoms < bracket.cap_atoms:
                return bracket
        return self.brackets[-1]

    def max_notional_at_leverage(self, leverage: int) -> int:
        """Largest position notional allowed at ``leverage``: cap of the last tier that permits it."""
        cap = 0
        for bracket in self.brackets:
            if bracket.max_leverage >= leverage:
                cap = bracket.cap_atoms
        return cap


@dataclass(frozen=True, slots=True)
class VenueConfig:
    """The whole venue: assets, fee schedule and markets, as the engine sees them."""

    name: str
    settlement_asset: AssetId
    clock: ClockMode
    durability: Durability
    assets: Mapping[AssetId, AssetSpec]
    fee_tiers: tuple[FeeTier, ...]
    markets: Mapping[MarketId, MarketSpec]
    snapshot_every: int = 100_000
    lending: LendingSpec | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def settlement(self) -> AssetSpec:
        return self.assets[self.settlement_asset]


def parse_config(data: Mapping[str, Any]) -> VenueConfig:
    """Validate a parsed TOML mapping into a :class:`VenueConfig`."""
    try:
        return _parse(data)
    except ConfigError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(str(exc)) from exc


VENUE_KEYS = ("name", "settlement_asset", "clock", "durability", "snapshot_every", "admin_token")
SERVER_KEYS = ("rate_limit_weight_1m", "order_limit_10s", "order_limit_1m", "ban_after")
"""``[server]`` keys: read by the server (``perpx.server.limits``), listed here so the config is checked whole."""
TOP_TABLES = ("venue", "assets", "fee_tiers", "markets", "server", "lending", "otc")
ASSET_KEYS = (
    "decimals",
    "index",
    "collateral_haircut",
    "max_collateral",
    "collateral_haircut_tiers",
    "conversion_discount_bps",
)
FEE_TIER_KEYS = ("min_30d_volume", "maker", "taker")
RISK_KEYS = (
    "liquidation_fee",
    "funding_interval_hours",
    "interest_rate",
    "funding_cap",
    "funding_floor",
    "impact_margin_notional",
    "premium_sample_s",
    "mark_basis_window_s",
    "trigger_protect",
    "mark_policy",
    "max_open_interest",
    "max_algo_orders",
    "adl_ranking",
    "mark_index_band",
    "upnl_collateral",
    "insurance_takeover_cap",
    "insurance_unwind_clip",
    "insurance_unwind_interval_s",
    "insurance_unwind_limit",
)
MARKET_KEYS = (
    "base",
    "tick_size",
    "lot_size",
    "price_unit",
    "qty_unit",
    "min_qty",
    "max_qty",
    "market_max_qty",
    "min_price",
    "max_price",
    "min_notional",
    "percent_price_up",
    "percent_price_down",
    "market_take_bound",
    "max_open_orders",
    "default_leverage",
    "brackets",
    "index",
    *RISK_KEYS,
)
INDEX_KEYS = ("policy", "sources", "stale_after_s", "min_sources", "outlier_pct")
BRACKET_KEYS = ("notional_cap", "max_leverage", "mmr")


def check_keys(table: Any, allowed: Sequence[str], where: str) -> None:
    """Refuse a key of ``table`` that is not in ``allowed``, naming it and the closest valid key.

    A misspelt key is not a default: ``liquidaton_fee`` silently leaving the fee at its default, or
    ``[markets.X.indx]`` leaving a market without index or funding, is the kind of mistake that
    costs money. ``where`` is the table's dotted name (empty for the top level).

    Raises
    ------
    ConfigError
        If ``table`` is not a table, or one of its keys is unknown.
    """
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where or 'the config'} must be a table, not {type(table).__name__}")
    for key in table:
        if key in allowed:
            continue
        name = f"{where}.{key}" if where else str(key)
        close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else f"the keys here are {', '.join(allowed)}"
        raise ConfigError(f"unknown key {name}: {hint}")


def _require(table: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in table:
        raise ConfigError(f"{where}.{key} is missing" if where else f"{key} is missing")
    return table[key]


def _reject_floats(value: Any, where: str) -> None:
    """Every decimal is written as a string: a TOML float is binary and may not be what was typed."""
    if isinstance(value, float):
        raise ConfigError(f'{where} was the float {value!r}; write decimals as strings, like "{value}"')
    if isinstance(value, Mapping):
        for key, item in value.items():
            _reject_floats(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _reject_floats(item, f"{where}[{index}]")


def _parse(data: Mapping[str, Any]) -> VenueConfig:
    _reject_floats(data, "")
    check_keys(data, TOP_TABLES, "")
    venue = _require(data, "venue", "")
    check_keys(venue, VENUE_KEYS, "venue")
    check_keys(data.get("server", {}), SERVER_KEYS, "server")
    settlement = AssetId(str(_require(venue, "settlement_asset", "venue")))
    clock = venue.get("clock", "wall")
    if clock not in ("wall", "manual"):
        raise ConfigError(f"venue.clock was {clock!r}; use 'wall' or 'manual'")
    durability = venue.get("durability", "batch")
    if durability not in ("batch", "none"):
        raise ConfigError(f"venue.durability was {durability!r}; use 'batch' or 'none'")

    assets: dict[AssetId, AssetSpec] = {}
    for name, table in dict(data.get("assets", {})).items():
        check_keys(table, ASSET_KEYS, f"assets.{name}")
        decimals = table.get("decimals")
        if not isinstance(decimals, int) or not 0 <= decimals <= 18:
            raise ConfigError(f"assets.{name}.decimals was {decimals!r}; use an integer 0..18")
        assets[AssetId(name)] = _parse_asset(name, table, decimals)
    if settlement not in assets:
        raise ConfigError(f"venue.settlement_asset {settlement} has no [assets.{settlement}] table")
    lending = None
    if "lending" in data:
        from perpx.engine.lending.config import parse_lending

        priced = {a: a == settlement or spec.index is not None for a, spec in assets.items()}
        lending = parse_lending(data["lending"], priced)
    atom = assets[settlement].atom

    fee_tiers = _parse_fee_tiers(data.get("fee_tiers", []), atom)

    markets: dict[MarketId, MarketSpec] = {}
    for name, table in dict(data.get("markets", {})).items():
        markets[MarketId(name)] = _parse_market(name, table, settlement, atom)
    if not markets:
        raise ConfigError("no [markets.*] table: a venue needs at least one market")

    snapshot_every = venue.get("snapshot_every", 100_000)
    if not isinstance(snapshot_every, int) or snapshot_every < 1:
        raise ConfigError(f"venue.snapshot_every was {snapshot_every!r}; use a positive integer")
    return VenueConfig(
        name=str(venue.get("name", "perpx")),
        settlement_asset=settlement,
        clock=clock,
        durability=durability,
        assets=assets,
        fee_tiers=fee_tiers,
        markets=markets,
        snapshot_every=snapshot_every,
        lending=lending,
        raw=data,
    )


def _parse_asset(name: str, table: Mapping[str, Any], decimals: int) -> AssetSpec:
    """An ``[assets.X]`` table: decimals, and the collateral settings of ``lending/config.py``."""
    from perpx.engine.lending.config import (
        parse_conversion_discount,
        parse_haircut_tiers,
        parse_max_collateral,
    )

    where = f"assets.{name}"
    atom = Decimal(1).scaleb(-decimals)
    tiers = parse_haircut_tiers(table, where, atom)
    return AssetSpec(
        AssetId(name),
        decimals,
        _parse_index(table.get("index"), f"{where}.index"),
        tiers[0][1],  # the plain haircut, or the first tier's (what assetIndex shows as bidBuffer)
        parse_max_collateral(table, where, atom),
        tiers,
        parse_conversion_discount(table, where),
    )


def _parse_fee_tiers(rows: list[Mapping[str, Any]], atom: Decimal) -> tuple[FeeTier, ...]:
    if not rows:
        rows = [{"min_30d_volume": "0", "maker": "0.0002", "taker": "0.0005"}]
    tiers: list[FeeTier] = []
    for index, row in enumerate(rows):
        where = f"fee_tiers[{index}]"
        check_keys(row, FEE_TIER_KEYS, where)
        tier = FeeTier(
            min_30d_volume_atoms=to_units(
                str(_require(row, "min_30d_volume", where)), atom, f"{where}.min_30d_volume"
            ),
            maker_e8=to_rate_e8(str(_require(row, "maker", where)), f"{where}.maker"),
            taker_e8=to_rate_e8(str(_require(row, "taker", where)), f"{where}.taker"),
        )
        if tier.taker_e8 < 0:
            raise ConfigError(f"{where}.taker is negative; only the maker rate may be a rebate")
        if tier.maker_e8 + tier.taker_e8 < 0:
            raise ConfigError(f"{where}: maker rebate exceeds the taker fee, so every trade would lose money")
        if tiers and tier.min_30d_volume_atoms <= tiers[-1].min_30d_volume_atoms:
            raise ConfigError(f"{where}.min_30d_volume must be greater than the tier before it")
        tiers.append(tier)
    if tiers[0].min_30d_volume_atoms != 0:
        raise ConfigError("fee_tiers[0].min_30d_volume must be 0 so every account has a tier")
    return tuple(tiers)


def _parse_market(name: str, table: Mapping[str, Any], settlement: AssetId, atom: Decimal) -> MarketSpec:
    where = f"markets.{name}"
    check_keys(table, MARKET_KEYS, where)
    if not name.isalnum() or not name.isupper():
        raise ConfigError(f"{where}: market names are upper-case letters and digits, like BTCUSDT")
    tick_filter = to_decimal(str(_require(table, "tick_size", where)), f"{where}.tick_size")
    lot_filter = to_decimal(str(_require(table, "lot_size", where)), f"{where}.lot_size")
    if tick_filter <= 0 or lot_filter <= 0:
        raise ConfigError(f"{where}: tick_size and lot_size must be positive")
    tick = to_decimal(str(table.get("price_unit", f"{tick_filter:f}")), f"{where}.price_unit")
    lot = to_decimal(str(table.get("qty_unit", f"{lot_filter:f}")), f"{where}.qty_unit")
    tick_step = filter_steps(tick_filter, tick, f"{where}.tick_size", "price_unit")
    lot_step = filter_steps(lot_filter, lot, f"{where}.lot_size", "qty_unit")
    contract = tick * lot / atom
    if contract != contract.to_integral_value():
        names = (
            "price_unit x qty_unit"
            if "price_unit" in table or "qty_unit" in table
            else "tick_size x lot_size"
        )
        raise ConfigError(
            f"{where}: {names} = {tick * lot} is finer than one atom ({atom}); "
            "raise the asset's decimals or coarsen the tick or lot (or their units)"
        )

    def lots(key: str, default: str | None = None) -> int:
        raw = table.get(key, default)
        if raw is None:
            raise ConfigError(f"{where}.{key} is missing")
        return to_units(str(raw), lot, f"{where}.{key}")

    def rate(key: str, default: str) -> int:
        return to_rate_e8(str(table.get(key, default)), f"{where}.{key}")

    min_qty = lots("min_qty", str(lot_filter))
    max_qty = lots("max_qty")
    market_max_qty = lots("market_max_qty", str(table.get("max_qty")))
    min_price_ticks = to_units(str(table.get("min_price", str(tick_filter))), tick, f"{where}.min_price")
    max_price_ticks = to_units(str(table.get("max_price", "1000000000")), tick, f"{where}.max_price")
    max_open_orders = table.get("max_open_orders", 200)
    if not isinstance(max_open_orders, int) or isinstance(max_open_orders, bool):
        raise ConfigError(f"{where}.max_open_orders must be a positive integer")

    brackets = _parse_brackets(table.get("brackets", []), where, atom)
    default_leverage = table.get("default_leverage", min(20, brackets[0].max_leverage))
    if not isinstance(default_leverage, int) or not 1 <= default_leverage <= brackets[0].max_leverage:
        raise ConfigError(f"{where}.default_leverage must be 1..{brackets[0].max_leverage}")
    spec = MarketSpec(
        market=MarketId(name),
        base=str(_require(table, "base", where)),
        settlement_asset=settlement,
        tick_size=tick,
        lot_size=lot,
        contract_atoms=int(contract),
        min_price_ticks=min_price_ticks,
        max_price_ticks=max_price_ticks,
        min_qty_lots=min_qty,
        max_qty_lots=max_qty,
        market_max_qty_lots=market_max_qty,
        min_notional_atoms=to_units(str(table.get("min_notional", "0")), atom, f"{where}.min_notional"),
        percent_price_up_e8=rate("percent_price_up", "1.05"),
        percent_price_down_e8=rate("percent_price_down", "0.95"),
        market_take_bound_e8=rate("market_take_bound", "0.05"),
        max_open_orders=max_open_orders,
        brackets=brackets,
        default_leverage=default_leverage,
        risk=_parse_risk(table, where, atom, lot),
        index=_parse_index(table.get("index"), f"{where}.index"),
        tick_step_ticks=tick_step,
        lot_step_lots=lot_step,
    )
    check_market_limits(spec)
    return spec


MAX_FILTER_STEPS = 1_000_000
"""The largest tick or lot filter, in units (a coarser filter is a mistyped value, not a market)."""


def filter_steps(size: Decimal, unit: Decimal, key: str, unit_key: str) -> int:
    """How many ``unit`` make the filter ``size``: a whole number from 1 to :data:`MAX_FILTER_STEPS`.

    Raises
    ------
    ConfigError
        If ``unit`` is not positive or ``size`` is not a whole multiple of it (naming ``key``).
    """
    if unit <= 0:
        raise ConfigError(f"{key.rsplit('.', 1)[0]}.{unit_key} must be positive")
    steps = size / unit
    if steps != steps.to_integral_value() or not 1 <= steps <= MAX_FILTER_STEPS:
        raise ConfigError(
            f"{key} = {size:f} is not a whole multiple of the market's {unit_key} {unit:f}"
            f" (from 1 to {MAX_FILTER_STEPS} units): prices and quantities are held in that unit"
        )
    return int(steps)


def parse_market_table(name: str, table: Mapping[str, Any], settlement: AssetId, atom: Decimal) -> MarketSpec:
    """One ``[markets.NAME]`` table into a :class:`MarketSpec`, by every rule a config file obeys.

    The path by which an operator's change of a non-live parameter is checked
    (:mod:`perpx.engine.params`): the changed market is re-read as if it were written so.

    Raises
    ------
    ConfigError
        Naming the key of the first rule broken.
    """
    try:
        return _parse_market(name, table, settlement, atom)
    except ConfigError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, ArithmeticError) as exc:
        raise ConfigError(str(exc)) from exc


def check_market_limits(spec: MarketSpec) -> None:
    """The rules on a market's filters and limits, shared by config parsing and parameter changes.

    Raises
    ------
    ConfigError
        Naming the key (``markets.<NAME>.<key>``) of the first rule broken.
    """
    where = f"markets.{spec.market}"
    if not 0 < spec.min_qty_lots <= spec.max_qty_lots or spec.market_max_qty_lots <= 0:
        raise ConfigError(f"{where}: need 0 < min_qty <= max_qty and market_max_qty > 0")
    if not 0 < spec.min_price_ticks < spec.max_price_ticks:
        raise ConfigError(f"{where}: need 0 < min_price < max_price")
    if spec.min_notional_atoms < 0:
        raise ConfigError(f"{where}.min_notional must not be negative")
    if not (spec.percent_price_up_e8 > RATE_SCALE and 0 < spec.percent_price_down_e8 < RATE_SCALE):
        raise ConfigError(f"{where}: need percent_price_up > 1 and 0 < percent_price_down < 1")
    if not 0 < spec.market_take_bound_e8 < RATE_SCALE:
        raise ConfigError(f"{where}.market_take_bound must be between 0 and 1")
    if spec.max_open_orders < 1:
        raise ConfigError(f"{where}.max_open_orders must be a positive integer")
    if not 0 <= spec.risk.liquidation_fee_e8 < RATE_SCALE:
        raise ConfigError(f"{where}.liquidation_fee must be between 0 and 1")
    cap = spec.risk.max_open_interest_lots
    if cap is not None and cap <= 0:
        raise ConfigError(f"{where}.max_open_interest must be positive (leave it out for no cap)")


MARKET_PARAMS: tuple[str, ...] = (
    "min_qty",
    "max_qty",
    "market_max_qty",
    "min_price",
    "max_price",
    "min_notional",
    "percent_price_up",
    "percent_price_down",
    "market_take_bound",
    "max_open_orders",
    "max_open_interest",
    "liquidation_fee",
)
"""The market parameters an operator may change while the venue runs (config-file names and units).

Brackets, the default leverage, index sources and funding settings change through an approved
proposal's ``ChangeMarketParams`` instead (:mod:`perpx.engine.params`, which rebuilds what the
stages derive from them), and so do the tick and lot filters (never their units).
"""

NO_CAP = "none"
"""The text of ``max_open_interest`` when the market has no open-interest cap."""

_RATE_UNIT = Decimal(1) / RATE_SCALE
_PLAIN = re.compile(r"[0-9]{1,20}(\.[0-9]{1,18})?")
"""A value an operator sends: plain digits, no sign or exponent (a huge exponent would overflow Decimal)."""


def market_params(spec: MarketSpec, atom: Decimal) -> dict[str, str]:
    """The changeable parameters of ``spec`` as config-file text (``"100"``, ``"1.05"``), by name."""
    cap = spec.risk.max_open_interest_lots
    return {
        "min_qty": format_units(spec.min_qty_lots, spec.lot_size),
        "max_qty": format_units(spec.max_qty_lots, spec.lot_size),
        "market_max_qty": format_units(spec.market_max_qty_lots, spec.lot_size),
        "min_price": format_units(spec.min_price_ticks, spec.tick_size),
        "max_price": format_units(spec.max_price_ticks, spec.tick_size),
        "min_notional": format_units(spec.min_notional_atoms, atom),
        "percent_price_up": format_units(spec.percent_price_up_e8, _RATE_UNIT),
        "percent_price_down": format_units(spec.percent_price_down_e8, _RATE_UNIT),
        "market_take_bound": format_units(spec.market_take_bound_e8, _RATE_UNIT),
        "max_open_orders": str(spec.max_open_orders),
        "max_open_interest": NO_CAP if cap is None else format_units(cap, spec.lot_size),
        "liquidation_fee": format_units(spec.risk.liquidation_fee_e8, _RATE_UNIT),
    }


def with_market_params(spec: MarketSpec, atom: Decimal, changes: Mapping[str, str]) -> MarketSpec:
    """``spec`` with ``changes`` (parameter name -> config-file text) applied, checked as the config is.

    Raises
    ------
    ConfigError
        If a name is not in :data:`MARKET_PARAMS`, a value cannot be represented exactly in the
        market's units, or the result breaks a rule of :func:`check_market_limits`.
    """
    where = f"markets.{spec.market}"
    fields: dict[str, Any] = {}
    risk: dict[str, Any] = {}
    for name, text in sorted(changes.items()):
        key = f"{where}.{name}"
        if name not in MARKET_PARAMS:
            raise ConfigError(
                f"{key} cannot be changed while the venue runs; changeable: {', '.join(MARKET_PARAMS)}"
                " (brackets, default leverage, funding settings and index sources change through a"
                " proposal: POST /admin/v1/proposals)"
            )
        plain = isinstance(text, str) and (
            _PLAIN.fullmatch(text) or (name == "max_open_interest" and text == NO_CAP)
        )
        if not plain:
            raise ConfigError(
                f'{key} was {str(text)[:40]!r}; write a plain non-negative decimal, like "100" or "0.05"'
            )
        try:
            if name in ("min_qty", "max_qty", "market_max_qty"):
                fields[f"{name}_lots"] = to_units(text, spec.lot_size, key)
            elif name in ("min_price", "max_price"):
                fields[f"{name}_ticks"] = to_units(text, spec.tick_size, key)
            elif name == "min_notional":
                fields["min_notional_atoms"] = to_units(text, atom, key)
            elif name in ("percent_price_up", "percent_price_down", "market_take_bound"):
                fields[f"{name}_e8"] = to_rate_e8(text, key)
            elif name == "max_open_orders":
                if not text.isdigit() or len(text) > 9:
                    raise ConfigError(f"{key} must be a positive integer")
                fields["max_open_orders"] = int(text)
            elif name == "max_open_interest":
                risk["max_open_interest_lots"] = (
                    None if text == NO_CAP else to_units(text, spec.lot_size, key)
                )
            else:  # liquidation_fee
                risk["liquidation_fee_e8"] = to_rate_e8(text, key)
        except ConfigError:
            raise
        except (ValueError, ArithmeticError) as exc:
            raise ConfigError(str(exc)) from exc
    if risk:
        fields["risk"] = replace(spec.risk, **risk)
    changed = replace(spec, **fields)
    check_market_limits(changed)
    return changed


def _parse_risk(table: Mapping[str, Any], where: str, atom: Decimal, lot: Decimal) -> RiskSpec:
    def rate(key: str, default: str) -> int:
        return to_rate_e8(str(table.get(key, default)), f"{where}.{key}")

    def whole(key: str, default: int, low: int = 1) -> int:
        value = table.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ConfigError(f"{where}.{key} must be an integer >= {low}")
        return value

    interval = whole("funding_interval_hours", 8)
    if 24 % interval:
        raise ConfigError(f"{where}.funding_interval_hours must divide 24 (1, 2, 3, 4, 6, 8, 12 or 24)")
    cap, floor = rate("funding_cap", "0.03"), rate("funding_floor", "-0.03")
    if not floor <= 0 <= cap:
        raise ConfigError(f"{where}: need funding_floor <= 0 <= funding_cap")
    mark_policy = table.get("mark_policy", "binance")
    if mark_policy not in ("binance", "ema"):
        raise ConfigError(f"{where}.mark_policy was {mark_policy!r}; use 'binance' or 'ema'")
    max_oi = table.get("max_open_interest")
    adl_ranking = table.get("adl_ranking", "binance")
    if adl_ranking not in ("binance", "profit_leverage"):
        raise ConfigError(f"{where}.adl_ranking was {adl_ranking!r}; use 'binance' or 'profit_leverage'")
    band = rate("mark_index_band", "0.03")
    if not 0 < band < RATE_SCALE:
        raise ConfigError(f"{where}.mark_index_band must be between 0 and 1 (a fraction of the index)")
    upnl_collateral = table.get("upnl_collateral", "conservative")
    if upnl_collateral not in ("conservative", "mark"):
        raise ConfigError(
            f"{where}.upnl_collateral was {upnl_collateral!r}; use 'conservative' (the less favourable"
            " of mark and index) or 'mark'"
        )
    takeover_cap_text = table.get("insurance_takeover_cap")
    takeover_cap = (
        None
        if takeover_cap_text is None
        else to_rate_e8(str(takeover_cap_text), f"{where}.insurance_takeover_cap")
    )
    if takeover_cap is not None and takeover_cap < 0:
        raise ConfigError(f"{where}.insurance_takeover_cap must not be negative (leave it out for no cap)")
    unwind_clip = rate("insurance_unwind_clip", "0")
    if not 0 <= unwind_clip <= RATE_SCALE:
        raise ConfigError(
            f"{where}.insurance_unwind_clip must be between 0 and 1 (a share of the fund's position)"
        )
    unwind_limit = rate("insurance_unwind_limit", "0.01")
    if not 0 < unwind_limit < RATE_SCALE:
        raise ConfigError(f"{where}.insurance_unwind_limit must be between 0 and 1 (a fraction of the mark)")
    return RiskSpec(
        liquidation_fee_e8=rate("liquidation_fee", "0.0125"),
        funding_interval_hours=interval,
        interest_rate_e8=rate("interest_rate", "0.0001"),
        funding_cap_e8=cap,
        funding_floor_e8=floor,
        impact_margin_notional_atoms=to_units(
            str(table.get("impact_margin_notional", "200")), atom, f"{where}.impact_margin_notional"
        ),
        premium_sample_s=whole("premium_sample_s", 5),
        mark_basis_window_s=whole("mark_basis_window_s", 30),
        trigger_protect_e8=rate("trigger_protect", "0.05"),
        mark_policy=mark_policy,
        max_open_interest_lots=None
        if max_oi is None
        else to_units(str(max_oi), lot, f"{where}.max_open_interest"),
        max_algo_orders=whole("max_algo_orders", 100),
        adl_ranking=adl_ranking,
        mark_index_band_e8=band,
        upnl_collateral=upnl_collateral,
        insurance_takeover_cap_e8=takeover_cap,
        insurance_unwind_clip_e8=unwind_clip,
        insurance_unwind_interval_s=whole("insurance_unwind_interval_s", 60),
        insurance_unwind_limit_e8=unwind_limit,
    )


def _parse_index(table: Mapping[str, Any] | None, where: str) -> IndexSpec | None:
    if table is None:
        return None
    check_keys(table, INDEX_KEYS, where)
    policy = table.get("policy", "binance")
    if policy not in ("binance", "capped", "weighted_median"):
        raise ConfigError(f"{where}.policy was {policy!r}; use 'binance', 'capped' or 'weighted_median'")
    sources = table.get("sources")
    if not isinstance(sources, dict) or not sources:
        raise ConfigError(f"{where}.sources must be a table of source name = integer weight")
    weights: dict[str, int] = {}
    for name, weight in sources.items():
        if not isinstance(weight, int) or isinstance(weight, bool) or weight <= 0:
            raise ConfigError(f"{where}.sources.{name} must be a positive integer weight")
        weights[str(name)] = weight
    stale = table.get("stale_after_s", 10)
    min_sources = table.get("min_sources", 1)
    if not isinstance(stale, int) or stale < 1:
        raise ConfigError(f"{where}.stale_after_s must be a positive integer")
    if not isinstance(min_sources, int) or not 1 <= min_sources <= len(weights):
        raise ConfigError(f"{where}.min_sources must be 1..{len(weights)} (the number of sources)")
    outlier = to_rate_e8(str(table.get("outlier_pct", "0.05")), f"{where}.outlier_pct")
    if not 0 < outlier < RATE_SCALE:
        raise ConfigError(f"{where}.outlier_pct must be between 0 and 1")
    return IndexSpec(
        policy=policy,
        weights=dict(sorted(weights.items())),
        stale_after_ns=stale * 1_000_000_000,
        min_sources=min_sources,
        outlier_e8=outlier,
    )


def _parse_brackets(rows: list[Mapping[str, Any]], where: str, atom: Decimal) -> tuple[Bracket, ...]:
    if not rows:
        raise ConfigError(f"{where}: at least one [[{where}.brackets]] tier is required")
    brackets: list[Bracket] = []
    floor_atoms = 0
    previous_mmr_e8 = 0
    cum_atoms = 0
    for index, row in enumerate(rows):
        here = f"{where}.brackets[{index}]"
        check_keys(row, BRACKET_KEYS, here)
        cap_atoms = to_units(str(_require(row, "notional_cap", here)), atom, f"{here}.notional_cap")
        leverage = _require(row, "max_leverage", here)
        mmr_e8 = to_rate_e8(str(_require(row, "mmr", here)), f"{here}.mmr")
        if not isinstance(leverage, int) or leverage < 1:
            raise ConfigError(f"{here}.max_leverage must be a positive integer")
        if cap_atoms <= floor_atoms:
            raise ConfigError(f"{here}.notional_cap must be greater than the tier before it")
        if not 0 < mmr_e8 < RATE_SCALE:
            raise ConfigError(f"{here}.mmr must be between 0 and 1")
        if brackets and (leverage > brackets[-1].max_leverage or mmr_e8 < previous_mmr_e8):
            raise ConfigError(f"{here}: leverage may not rise and mmr may not fall from one tier to the next")
        if mmr_e8 * leverage > RATE_SCALE:
            raise ConfigError(
                f"{here}: mmr x max_leverage exceeds 1, so a new position would be liquidatable"
            )
        cum_atoms = formulas.bracket_cum_atoms(floor_atoms, mmr_e8, previous_mmr_e8, cum_atoms)
        brackets.append(Bracket(index + 1, floor_atoms, cap_atoms, leverage, mmr_e8, cum_atoms))
        floor_atoms = cap_atoms
        previous_mmr_e8 = mmr_e8
    return tuple(brackets)


DEFAULT_CONFIG_TOML = """\
[venue]
name = "demo"
settlement_asset = "USDT"
clock = "manual"

[assets.USDT]
decimals = 8

[[fee_tiers]]
min_30d_volume = "0"
maker = "0.0002"
taker = "0.0005"

[[fee_tiers]]
min_30d_volume = "15000000"
maker = "0.00016"
taker = "0.0004"

[[fee_tiers]]
min_30d_volume = "250000000"
maker = "-0.00005"
taker = "0.0003"

[markets.BTCUSDT]
base = "BTC"
tick_size = "0.1"
lot_size = "0.001"
min_qty = "0.001"
max_qty = "1000"
market_max_qty = "120"
min_notional = "100"
percent_price_up = "1.05"
percent_price_down = "0.95"
market_take_bound = "0.05"
max_open_orders = 200

[[markets.BTCUSDT.brackets]]
notional_cap = "50000"
max_leverage = 125
mmr = "0.004"

[[markets.BTCUSDT.brackets]]
notional_cap = "250000"
max_leverage = 100
mmr = "0.005"

[[markets.BTCUSDT.brackets]]
notional_cap = "3000000"
max_leverage = 50
mmr = "0.01"

[[markets.BTCUSDT.brackets]]
notional_cap = "20000000"
max_leverage = 20
mmr = "0.025"

[markets.ETHUSDT]
base = "ETH"
tick_size = "0.01"
lot_size = "0.001"
min_qty = "0.001"
max_qty = "10000"
market_max_qty = "2000"
min_notional = "20"
percent_price_up = "1.05"
percent_price_down = "0.95"
market_take_bound = "0.05"
max_open_orders = 200

[[markets.ETHUSDT.brackets]]
notional_cap = "10000"
max_leverage = 100
mmr = "0.005"

[[markets.ETHUSDT.brackets]]
notional_cap = "100000"
max_leverage = 75
mmr = "0.0065"

[[markets.ETHUSDT.brackets]]
notional_cap = "5000000"
max_leverage = 25
mmr = "0.02"
"""
"""The embedded demo venue: two markets, Binance-like brackets and a three-tier fee schedule."""


def default_config() -> VenueConfig:
    """The embedded demo venue configuration."""
    return parse_config(tomllib.loads(DEFAULT_CONFIG_TOML))
