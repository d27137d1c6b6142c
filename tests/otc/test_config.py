"""The ``[otc]`` section: defaults, tiers and clients, per-symbol policies, and every mistake named."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from perpx.engine.config import DEFAULT_CONFIG_TOML, ConfigError
from perpx.otc.config import HedgeMode, parse_otc

MARKETS = ("BTCUSDT", "ETHUSDT")


def test_no_section_means_no_desk() -> None:
    assert parse_otc({"venue": {}}, MARKETS) is None


def test_section_with_tiers_clients_and_a_policy_is_read_exactly() -> None:
    config = parse_otc(
        {
            "otc": {
                "desk_account": 7,
                "last_look_bps": "2.5",
                "tiers": {"gold": "-1"},
                "clients": {"9": "gold"},
                "markets": {"BTCUSDT": {"hedge": "immediate", "max_inventory": "12.5"}},
            }
        },
        MARKETS,
    )

    assert config is not None and config.desk_account == 7 and config.last_look_bps == Decimal("2.5")
    assert config.tier_of(9) == "gold" and config.tier_of(10) == "standard"
    assert config.tiers["standard"] == 0
    assert config.policy("BTCUSDT").hedge is HedgeMode.IMMEDIATE
    assert config.policy("BTCUSDT").max_inventory == Decimal("12.5")
    assert config.policy("ETHUSDT").hedge is HedgeMode.THRESHOLD


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({}, "otc.desk_account must be a positive account id"),
        ({"desk_account": 1, "last_look_bsp": "5"}, "did you mean 'last_look_bps'"),
        ({"desk_account": 1, "last_look_bps": 5.0}, "must be a decimal written as a string"),
        ({"desk_account": 1, "base_spread_bps": "-1"}, "otc.base_spread_bps must be zero or more"),
        ({"desk_account": 1, "min_notional": "10", "max_notional": "5"}, "must not exceed otc.max_notional"),
        ({"desk_account": 1, "clients": {"9": "platinum"}}, "otc.clients.9"),
        ({"desk_account": 1, "markets": {"DOGEUSDT": {}}}, "unknown key otc.markets.DOGEUSDT"),
        (
            {"desk_account": 1, "markets": {"BTCUSDT": {"hedge": "sometimes"}}},
            "immediate, threshold, warehouse",
        ),
        (
            {"desk_account": 1, "markets": {"BTCUSDT": {"hedge_threshold": "30", "max_inventory": "20"}}},
            "hedge_threshold must not exceed",
        ),
        ({"desk_account": 1, "quote_ttl_ms": 0}, "otc.quote_ttl_ms must be an integer from 100"),
    ],
)
def test_bad_section_is_refused_with_the_key_named(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_otc({"otc": section}, MARKETS)

    assert message in str(refused.value)


def _check_config(tmp_path: Path, otc: str) -> Result:
    from typer.testing import CliRunner

    from perpx.cli import app

    path = tmp_path / "venue.toml"
    path.write_text(DEFAULT_CONFIG_TOML + otc)
    return CliRunner().invoke(app, ["check-config", str(path)])


def test_check_config_prints_the_desk_its_pricing_and_each_markets_policy(tmp_path: Path) -> None:
    result = _check_config(
        tmp_path,
        '\n[otc]\ndesk_account = 2\nlast_look_bps = "3"\n[otc.tiers]\ngold = "-1"\n'
        '[otc.markets.BTCUSDT]\nhedge = "immediate"\nmax_inventory = "5"\n',
    )

    assert result.exit_code == 0, result.output
    assert "otc: desk account 2; quotes valid 5000 ms; last look 3 bps" in result.output
    assert "tiers: gold -1 bps, standard +0 bps" in result.output
    assert "BTCUSDT: hedge immediate (threshold 2), limit 5, TWAP over 120 s on this venue" in result.output
    assert result.output.rstrip().endswith("config OK")


@pytest.mark.parametrize(
    ("otc", "message"),
    [
        ('\n[otc]\ndesk_account = 2\nlast_look_bsp = "5"\n', "unknown key otc.last_look_bsp: did you mean"),
        (
            '\n[otc]\ndesk_account = 2\n[otc.markets.BTCUSDT]\nhedge = "often"\n',
            "otc.markets.BTCUSDT.hedge must be",
        ),
        ('\n[otc]\ndesk_account = 2\n[otc.markets.DOGEUSDT]\nhedge = "immediate"\n', "otc.markets.DOGEUSDT"),
        ("\n[otc]\ndesk_account = 0\n", "otc.desk_account must be a positive account id"),
    ],
)
def test_check_config_refuses_a_bad_otc_section_naming_the_key(
    tmp_path: Path, otc: str, message: str
) -> None:
    result = _check_config(tmp_path, otc)

    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert "config OK" not in result.output


def test_check_config_without_an_otc_section_prints_no_desk(tmp_path: Path) -> None:
    result = _check_config(tmp_path, "")

    assert result.exit_code == 0 and "otc:" not in result.output
