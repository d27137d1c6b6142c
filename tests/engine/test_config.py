"""Venue configuration: parsed once, exactly, or refused with a ConfigError naming the key."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from perpx.config_file import load_config
from perpx.engine.config import DEFAULT_CONFIG_TOML, ConfigError, default_config, parse_config
from perpx.engine.values import MarketId

from .helpers import default_data

USDT = 10**8
Edit = Callable[[dict[str, Any]], None]


def btc(data: dict[str, Any]) -> dict[str, Any]:
    market: dict[str, Any] = data["markets"]["BTCUSDT"]
    return market


def refused(edit: Edit) -> str:
    """The ConfigError message for the demo config changed by ``edit``."""
    data = default_data()
    edit(data)
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return str(info.value)


# ---------------------------------------------------------------------------- the demo venue


def test_the_demo_config_parses_into_exact_integer_units() -> None:
    # Act
    config = default_config()

    # Assert
    btc_spec = config.markets[MarketId("BTCUSDT")]
    eth_spec = config.markets[MarketId("ETHUSDT")]
    assert config.settlement.decimals == 8
    # 0.1 x 0.001 = 0.0001 USDT = 10_000 atoms; 0.01 x 0.001 = 0.00001 USDT = 1_000 atoms
    assert (btc_spec.contract_atoms, eth_spec.contract_atoms) == (10_000, 1_000)
    # 1000 BTC / 0.001 = 1_000_000 lots; 120 BTC = 120_000 lots; 100 USDT
    assert (btc_spec.max_qty_lots, btc_spec.market_max_qty_lots, btc_spec.min_notional_atoms) == (
        1_000_000,
        120_000,
        100 * USDT,
    )
    assert (btc_spec.percent_price_up_e8, btc_spec.percent_price_down_e8) == (105_000_000, 95_000_000)
    assert btc_spec.default_leverage == 20
    assert [(t.min_30d_volume_atoms, t.maker_e8, t.taker_e8) for t in config.fee_tiers] == [
        (0, 20_000, 50_000),
        (15_000_000 * USDT, 16_000, 40_000),
        (250_000_000 * USDT, -5_000, 30_000),
    ]


@pytest.mark.parametrize(
    ("market", "cums_usdt"),
    [
        # BTC: 50k @0.4%, 250k @0.5%, 3M @1%, 20M @2.5%
        # cum_2 = 50,000 x 0.1% = 50; cum_3 = 250,000 x 0.5% + 50 = 1,300 (the Binance FAQ example)
        # cum_4 = 3,000,000 x 1.5% + 1,300 = 46,300
        ("BTCUSDT", [0, 50, 1_300, 46_300]),
        # ETH: 10k @0.5%, 100k @0.65%, 5M @2%
        # cum_2 = 10,000 x 0.15% = 15; cum_3 = 100,000 x 1.35% + 15 = 1,365
        ("ETHUSDT", [0, 15, 1_365]),
    ],
)
def test_bracket_cum_is_derived_not_typed(market: str, cums_usdt: list[int]) -> None:
    # Act
    brackets = default_config().markets[MarketId(market)].brackets

    # Assert
    assert [b.cum_atoms for b in brackets] == [c * USDT for c in cums_usdt]
    assert [b.tier for b in brackets] == list(range(1, len(cums_usdt) + 1))
    assert all(b.floor_atoms == a.cap_atoms for a, b in pairwise(brackets))


def test_a_config_file_is_read_from_disk(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "venue.toml"
    path.write_text(DEFAULT_CONFIG_TOML)

    # Act
    config = load_config(path)

    # Assert
    assert config == default_config()


@pytest.mark.parametrize(
    ("text", "fragment"), [(None, "does not exist"), ("[venue\nname=", "not valid TOML")]
)
def test_a_missing_or_malformed_file_is_a_config_error(
    tmp_path: Path, text: str | None, fragment: str
) -> None:
    # Arrange
    path = tmp_path / "venue.toml"
    if text is not None:
        path.write_text(text)

    # Act / Assert
    with pytest.raises(ConfigError, match=fragment):
        load_config(path)


# ---------------------------------------------------------------------------- refusals


def test_a_tick_and_lot_whose_product_is_finer_than_an_atom_is_refused() -> None:
    # 0.00001 x 0.0001 = 1e-9 USDT, finer than the 1e-8 atom
    def edit(data: dict[str, Any]) -> None:
        btc(data).update(tick_size="0.00001", lot_size="0.0001")

    message = refused(edit)

    assert "markets.BTCUSDT" in message
    assert "tick_size x lot_size" in message


@pytest.mark.parametrize(
    ("tier", "change", "fragment"),
    [
        (1, {"max_leverage": 126}, "markets.BTCUSDT.brackets[1]: leverage may not rise"),
        (1, {"mmr": "0.003"}, "markets.BTCUSDT.brackets[1]: leverage may not rise and mmr may not fall"),
        (1, {"notional_cap": "50000"}, "markets.BTCUSDT.brackets[1].notional_cap must be greater"),
        (0, {"mmr": "0"}, "markets.BTCUSDT.brackets[0].mmr must be between 0 and 1"),
        (0, {"mmr": "0.01"}, "markets.BTCUSDT.brackets[0]: mmr x max_leverage exceeds 1"),  # 0.01 x 125
        (0, {"max_leverage": 0}, "markets.BTCUSDT.brackets[0].max_leverage must be a positive integer"),
        (0, {"max_leverage": "125"}, "markets.BTCUSDT.brackets[0].max_leverage must be a positive integer"),
        (2, {"notional_cap": "3000000.000000001"}, "markets.BTCUSDT.brackets[2].notional_cap"),
    ],
)
def test_a_bad_bracket_is_refused_naming_its_tier(tier: int, change: dict[str, Any], fragment: str) -> None:
    def edit(data: dict[str, Any]) -> None:
        btc(data)["brackets"][tier].update(change)

    assert fragment in refused(edit)


def test_a_market_without_brackets_is_refused() -> None:
    def edit(data: dict[str, Any]) -> None:
        btc(data)["brackets"] = []

    assert "markets.BTCUSDT" in refused(edit)


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        (("venue",), "venue is missing"),
        (("venue", "settlement_asset"), "venue.settlement_asset is missing"),
        (("markets", "BTCUSDT", "tick_size"), "markets.BTCUSDT.tick_size is missing"),
        (("markets", "BTCUSDT", "lot_size"), "markets.BTCUSDT.lot_size is missing"),
        (("markets", "BTCUSDT", "max_qty"), "markets.BTCUSDT.max_qty is missing"),
        (("markets", "BTCUSDT", "base"), "markets.BTCUSDT.base is missing"),
        (
            ("markets", "BTCUSDT", "brackets", 0, "notional_cap"),
            "markets.BTCUSDT.brackets[0].notional_cap is missing",
        ),
        (("markets", "BTCUSDT", "brackets", 0, "mmr"), "markets.BTCUSDT.brackets[0].mmr is missing"),
        (("fee_tiers", 1, "maker"), "fee_tiers[1].maker is missing"),
        (("assets", "USDT"), "venue.settlement_asset USDT has no [assets.USDT] table"),
    ],
)
def test_a_missing_key_is_refused_by_name(path: tuple[str | int, ...], fragment: str) -> None:
    def edit(data: dict[str, Any]) -> None:
        table: Any = data
        for step in path[:-1]:
            table = table[step]
        del table[path[-1]]

    assert fragment in refused(edit)


@pytest.mark.parametrize("garbage", ["abc", "NaN", "inf", "-Infinity", "1e", "0.1.2", "", "0x10", "1,5"])
@pytest.mark.parametrize("key", ["tick_size", "lot_size", "max_qty", "min_notional", "percent_price_up"])
def test_a_value_that_is_not_a_finite_decimal_is_refused_by_name(key: str, garbage: str) -> None:
    def edit(data: dict[str, Any]) -> None:
        btc(data)[key] = garbage

    assert f"markets.BTCUSDT.{key}" in refused(edit)


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        (("markets", "BTCUSDT", "tick_size"), 0.1, "markets.BTCUSDT.tick_size"),
        (("markets", "BTCUSDT", "brackets", 0, "mmr"), 0.004, "markets.BTCUSDT.brackets[0].mmr"),
        (("fee_tiers", 0, "taker"), 0.0005, "fee_tiers[0].taker"),
        (("markets", "BTCUSDT", "percent_price_up"), 1.05, "markets.BTCUSDT.percent_price_up"),
    ],
)
def test_a_toml_float_is_refused_because_decimals_are_written_as_strings(
    path: tuple[str | int, ...], value: float, where: str
) -> None:
    # A TOML float is a binary double: 0.1 is not one tenth. The venue takes strings only.
    def edit(data: dict[str, Any]) -> None:
        table: Any = data
        for step in path[:-1]:
            table = table.setdefault(step, {}) if isinstance(step, str) else table[step]
        table[path[-1]] = value

    message = refused(edit)

    assert where in message
    assert "string" in message


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"max_qty": "1000.0005"}, "markets.BTCUSDT.max_qty 1000.0005 is not a multiple of 0.001"),
        ({"min_qty": "2000"}, "need 0 < min_qty <= max_qty"),
        ({"min_price": "0"}, "need 0 < min_price < max_price"),
        ({"min_price": "0.05"}, "markets.BTCUSDT.min_price"),
        ({"percent_price_up": "1"}, "need percent_price_up > 1"),
        ({"percent_price_down": "1"}, "0 < percent_price_down < 1"),
        ({"market_take_bound": "1"}, "markets.BTCUSDT.market_take_bound must be between 0 and 1"),
        ({"max_open_orders": 0}, "markets.BTCUSDT.max_open_orders must be a positive integer"),
        ({"default_leverage": 126}, "markets.BTCUSDT.default_leverage must be 1..125"),
        ({"tick_size": "-0.1"}, "tick_size and lot_size must be positive"),
    ],
)
def test_a_market_parameter_out_of_range_is_refused(change: dict[str, Any], fragment: str) -> None:
    def edit(data: dict[str, Any]) -> None:
        btc(data).update(change)

    assert fragment in refused(edit)


@pytest.mark.parametrize(
    ("tiers", "fragment"),
    [
        (
            [{"min_30d_volume": "1", "maker": "0.0002", "taker": "0.0005"}],
            "fee_tiers[0].min_30d_volume must be 0",
        ),
        (
            [
                {"min_30d_volume": "0", "maker": "0.0002", "taker": "0.0005"},
                {"min_30d_volume": "0", "maker": "0.0001", "taker": "0.0004"},
            ],
            "fee_tiers[1].min_30d_volume must be greater",
        ),
        ([{"min_30d_volume": "0", "maker": "0.0002", "taker": "-0.0001"}], "fee_tiers[0].taker is negative"),
        (
            [{"min_30d_volume": "0", "maker": "-0.0006", "taker": "0.0005"}],
            "fee_tiers[0]: maker rebate exceeds",
        ),
        ([{"min_30d_volume": "0", "maker": "0.000000001", "taker": "0.0005"}], "fee_tiers[0].maker"),
    ],
)
def test_a_bad_fee_schedule_is_refused(tiers: list[dict[str, str]], fragment: str) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["fee_tiers"] = tiers

    assert fragment in refused(edit)


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda d: d["assets"]["USDT"].update(decimals=19), "assets.USDT.decimals"),
        (lambda d: d["assets"]["USDT"].update(decimals="8"), "assets.USDT.decimals"),
        (lambda d: d["venue"].update(clock="sundial"), "venue.clock"),
        (lambda d: d["venue"].update(durability="maybe"), "venue.durability"),
        (lambda d: d["venue"].update(snapshot_every=0), "venue.snapshot_every"),
        (lambda d: d.update(markets={}), "no [markets.*] table"),
        (lambda d: d["markets"].update(btcusdt=d["markets"].pop("BTCUSDT")), "markets.btcusdt"),
    ],
    ids=[
        "decimals-range",
        "decimals-string",
        "clock",
        "durability",
        "snapshot-every",
        "no-markets",
        "lower-case-name",
    ],
)
def test_a_bad_venue_or_asset_setting_is_refused(edit: Edit, fragment: str) -> None:
    assert fragment in refused(edit)


def test_an_amount_too_large_to_divide_is_a_value_error_not_an_overflow() -> None:
    from perpx.engine.values import to_units

    with pytest.raises(ValueError, match="out of range"):
        to_units("1e999999999", Decimal("0.001"), "quantity")


# ------------------------------------------------------------------ strict: no unknown key anywhere


def _set(path: tuple[str | int, ...], value: Any) -> Edit:
    def edit(data: dict[str, Any]) -> None:
        table: Any = data
        for step in path[:-1]:
            table = table.setdefault(step, {}) if isinstance(step, str) else table[step]
        table[path[-1]] = value

    return edit


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            ("markets", "BTCUSDT", "indx"),
            {"sources": {"a": 1}},
            "unknown key markets.BTCUSDT.indx: did you mean 'index'?",
        ),
        (
            ("markets", "BTCUSDT", "liquidaton_fee"),
            "0.01",
            "markets.BTCUSDT.liquidaton_fee: did you mean 'liquidation_fee'?",
        ),
        (
            ("markets", "BTCUSDT", "brackets", 0, "mmrr"),
            "0.004",
            "markets.BTCUSDT.brackets[0].mmrr: did you mean 'mmr'?",
        ),
        (("venue", "durabilty"), "none", "unknown key venue.durabilty: did you mean 'durability'?"),
        (("fee_tiers", 0, "maker_fee"), "0.0001", "fee_tiers[0].maker_fee: did you mean 'maker'?"),
        (("assets", "USDT", "decimal"), 8, "assets.USDT.decimal: did you mean 'decimals'?"),
        (("server", "ban_afer"), 5, "unknown key server.ban_afer: did you mean 'ban_after'?"),
        (("marktes",), {}, "unknown key marktes: did you mean 'markets'?"),
        (
            ("markets", "BTCUSDT", "colour"),
            "red",
            "unknown key markets.BTCUSDT.colour: the keys here are base, tick_size",
        ),
    ],
)
def test_an_unknown_key_anywhere_is_refused_naming_it_and_the_closest_valid_key(
    path: tuple[str | int, ...], value: Any, message: str
) -> None:
    assert message in refused(_set(path, value))


def test_an_unknown_key_in_an_index_table_is_refused() -> None:
    data = default_data()
    data["markets"]["BTCUSDT"]["index"] = {"sources": {"binance": 1}, "stale_after": 10}

    with pytest.raises(
        ConfigError, match=r"markets\.BTCUSDT\.index\.stale_after: did you mean 'stale_after_s'\?"
    ):
        parse_config(data)


def test_the_server_keys_the_config_allows_are_the_ones_the_server_reads() -> None:
    from perpx.engine.config import SERVER_KEYS
    from perpx.server.limits import _CONFIG

    assert sorted(SERVER_KEYS) == sorted(_CONFIG.values())


def test_check_config_prints_each_markets_pricing_and_refuses_a_misspelt_key(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from perpx.cli import app

    # Arrange
    root = Path(__file__).resolve().parents[2]
    bad = tmp_path / "bad.toml"
    bad.write_text(
        DEFAULT_CONFIG_TOML.replace('min_notional = "100"', 'min_notional = "100"\nliquidaton_fee = "0.01"')
    )

    # Act
    good = CliRunner().invoke(app, ["check-config", str(root / "examples" / "venue.toml")])
    refused = CliRunner().invoke(app, ["check-config", str(bad)])

    # Assert
    assert good.exit_code == 0 and good.output.rstrip().endswith("config OK")
    assert "index: binance policy over binance 3, bybit 2, okx 2; stale after 10 s" in good.output
    assert "funding: every 8 h, interest 0.0001, cap 0.03, floor -0.03" in good.output
    assert "held within index x (1 +/- 0.03)" in good.output and "liquidation fee 0.0125" in good.output
    assert refused.exit_code != 0
    assert "unknown key markets.BTCUSDT.liquidaton_fee: did you mean 'liquidation_fee'?" in refused.output
