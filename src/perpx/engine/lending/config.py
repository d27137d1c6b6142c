"""Lending terms from the venue config: collateral settings of assets and the ``[lending]`` table.

``[assets.BTC]`` may carry, besides ``decimals``:

* ``index``: the same table as a market's index (``policy``, ``sources``, ``stale_after_s``,
  ``min_sources``, ``outlier_pct``); quotes are prices of one whole unit in the settlement asset;
* ``collateral_haircut``: the share of the index value not counted as collateral (0 <= h < 1);
* ``max_collateral``: the most of the asset one account may hold as loan collateral.

``[lending]`` has ``lender_account`` (the desk account whose balance funds every loan),
``[lending.loanable.USDT]`` (the interest curve by utilisation of the lender's balance:
``base_rate`` at 0, ``rate_at_kink`` at ``kink``, ``max_rate`` at 100%, all annual, linear between)
and ``[lending.collateral.BTC]`` (``initial_ltv`` < ``margin_call_ltv`` < ``liquidation_ltv`` < 1,
``close_factor`` in (0, 1], ``liquidation_penalty`` in [0, 1)).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from perpx.engine.config import ConfigError, check_keys
from perpx.engine.values import RATE_SCALE, AssetId, to_rate_e8, to_units


@dataclass(frozen=True, slots=True)
class LoanableSpec:
    """An asset the lender lends, and its annual rate curve by utilisation (all ``_e8``)."""

    asset: AssetId
    base_rate_e8: int
    kink_e8: int
    rate_at_kink_e8: int
    max_rate_e8: int


@dataclass(frozen=True, slots=True)
class CollateralSpec:
    """An asset accepted as loan collateral and its LTV thresholds (all ``_e8``)."""

    asset: AssetId
    initial_ltv_e8: int
    margin_call_ltv_e8: int
    liquidation_ltv_e8: int
    close_factor_e8: int
    liquidation_penalty_e8: int


@dataclass(frozen=True, slots=True)
class LendingSpec:
    """The ``[lending]`` table: who lends, what can be borrowed and against what."""

    lender_account: int
    loanable: Mapping[AssetId, LoanableSpec]
    collateral: Mapping[AssetId, CollateralSpec]


LENDING_KEYS = ("lender_account", "loanable", "collateral")
LOANABLE_KEYS = ("base_rate", "kink", "rate_at_kink", "max_rate")
COLLATERAL_KEYS = (
    "initial_ltv",
    "margin_call_ltv",
    "liquidation_ltv",
    "close_factor",
    "liquidation_penalty",
)


def parse_haircut(table: Mapping[str, Any], where: str) -> int:
    """``collateral_haircut`` as ``_e8`` (default 0), refused outside [0, 1)."""
    haircut = to_rate_e8(str(table.get("collateral_haircut", "0")), f"{where}.collateral_haircut")
    if not 0 <= haircut < RATE_SCALE:
        raise ConfigError(f"{where}.collateral_haircut must be at least 0 and below 1")
    return haircut


def parse_haircut_tiers(table: Mapping[str, Any], where: str, atom: Decimal) -> tuple[tuple[int, int], ...]:
    """Multi-Assets haircut tiers ``((from_atoms, haircut_e8), ...)``; a plain haircut is one tier.

    ``collateral_haircut_tiers = [["0", "0.05"], ["10", "0.1"]]``: the first 10 units held count at
    95% of the index, every unit beyond at 90% (each tier's haircut applies to the part of the
    holding inside it, as tax brackets do). Sizes start at 0 and rise; haircuts are in [0, 1).
    Giving both this and ``collateral_haircut`` is refused (which one would count?).
    """
    if "collateral_haircut_tiers" not in table:
        return ((0, parse_haircut(table, where)),)
    key = f"{where}.collateral_haircut_tiers"
    if "collateral_haircut" in table:
        raise ConfigError(f"{where}: give collateral_haircut or collateral_haircut_tiers, not both")
    rows = table["collateral_haircut_tiers"]
    if not isinstance(rows, list) or not rows:
        raise ConfigError(f'{key} must be a list of [size, haircut] pairs, e.g. [["0", "0.05"]]')
    tiers: list[tuple[int, int]] = []
    for number, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != 2:
            raise ConfigError(f"{key}[{number}] must be a [size, haircut] pair")
        size = to_units(str(row[0]), atom, f"{key}[{number}] size")
        haircut = to_rate_e8(str(row[1]), f"{key}[{number}] haircut")
        if not 0 <= haircut < RATE_SCALE:
            raise ConfigError(f"{key}[{number}]: the haircut must be at least 0 and below 1")
        if number == 0 and size != 0:
            raise ConfigError(f"{key}: the first tier must start at size 0")
        if tiers and size <= tiers[-1][0]:
            raise ConfigError(f"{key}[{number}]: sizes must rise from one tier to the next")
        tiers.append((size, haircut))
    return tuple(tiers)


def parse_conversion_discount(table: Mapping[str, Any], where: str) -> int:
    """``conversion_discount_bps`` as ``_e8`` (default 0), refused outside [0, 10,000)."""
    key = f"{where}.conversion_discount_bps"
    bps = to_units(str(table.get("conversion_discount_bps", "0")), Decimal(1), key)
    if not 0 <= bps < 10_000:
        raise ConfigError(f"{key} must be at least 0 and below 10000 (basis points of the index)")
    return bps * (RATE_SCALE // 10_000)


def parse_max_collateral(table: Mapping[str, Any], where: str, atom: Decimal) -> int | None:
    """``max_collateral`` in atoms of the asset (``None``: no cap), refused unless positive."""
    if "max_collateral" not in table:
        return None
    atoms = to_units(str(table["max_collateral"]), atom, f"{where}.max_collateral")
    if atoms <= 0:
        raise ConfigError(f"{where}.max_collateral must be greater than zero")
    return atoms


def parse_lending(table: Mapping[str, Any], priced: Mapping[AssetId, bool]) -> LendingSpec:
    """Validate ``[lending]``; ``priced`` says, per listed asset, whether it has a price.

    Raises
    ------
    ConfigError
        Naming the key, for an unknown key, an unlisted or unpriced asset, or thresholds out of order.
    """
    check_keys(table, LENDING_KEYS, "lending")
    lender = table.get("lender_account")
    if not isinstance(lender, int) or isinstance(lender, bool) or lender < 1:
        raise ConfigError("lending.lender_account must be a positive account id")

    def asset(name: str, where: str) -> AssetId:
        if AssetId(name) not in priced:
            raise ConfigError(f"{where}: asset {name} has no [assets.{name}] table")
        if not priced[AssetId(name)]:
            raise ConfigError(f"{where}: asset {name} has no [assets.{name}.index], so it has no price")
        return AssetId(name)

    def rate(row: Mapping[str, Any], key: str, where: str, default: str | None = None) -> int:
        if key not in row and default is None:
            raise ConfigError(f"{where}.{key} is missing")
        value = to_rate_e8(str(row.get(key, default)), f"{where}.{key}")
        if not 0 <= value <= RATE_SCALE * 100:
            raise ConfigError(f"{where}.{key} must be between 0 and 100 (a share, 1 = 100%)")
        return value

    loanable: dict[AssetId, LoanableSpec] = {}
    for name, row in sorted(dict(table.get("loanable", {})).items()):
        where = f"lending.loanable.{name}"
        check_keys(row, LOANABLE_KEYS, where)
        spec = LoanableSpec(
            asset(name, where),
            rate(row, "base_rate", where),
            rate(row, "kink", where, "0.8"),
            rate(row, "rate_at_kink", where),
            rate(row, "max_rate", where),
        )
        if not 0 < spec.kink_e8 < RATE_SCALE:
            raise ConfigError(f"{where}.kink must be between 0 and 1")
        if not spec.base_rate_e8 <= spec.rate_at_kink_e8 <= spec.max_rate_e8:
            raise ConfigError(f"{where}: rates must not fall: base_rate <= rate_at_kink <= max_rate")
        loanable[spec.asset] = spec
    if not loanable:
        raise ConfigError("lending: at least one [lending.loanable.ASSET] table is required")

    collateral: dict[AssetId, CollateralSpec] = {}
    for name, row in sorted(dict(table.get("collateral", {})).items()):
        where = f"lending.collateral.{name}"
        check_keys(row, COLLATERAL_KEYS, where)
        terms = CollateralSpec(
            asset(name, where),
            rate(row, "initial_ltv", where),
            rate(row, "margin_call_ltv", where),
            rate(row, "liquidation_ltv", where),
            rate(row, "close_factor", where, "0.5"),
            rate(row, "liquidation_penalty", where, "0.02"),
        )
        if not 0 < terms.initial_ltv_e8 < terms.margin_call_ltv_e8 < terms.liquidation_ltv_e8 < RATE_SCALE:
            raise ConfigError(f"{where}: need 0 < initial_ltv < margin_call_ltv < liquidation_ltv < 1")
        if not 0 < terms.close_factor_e8 <= RATE_SCALE:
            raise ConfigError(f"{where}.close_factor must be above 0 and at most 1")
        if terms.liquidation_penalty_e8 >= RATE_SCALE:
            raise ConfigError(f"{where}.liquidation_penalty must be below 1")
        collateral[terms.asset] = terms
    if not collateral:
        raise ConfigError("lending: at least one [lending.collateral.ASSET] table is required")
    return LendingSpec(lender, loanable, collateral)
