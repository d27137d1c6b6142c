"""The lending and collateral keys of the venue config: what is accepted, and each refusal by key."""

from __future__ import annotations

from typing import Any

import pytest

from perpx.engine.config import ConfigError, parse_config
from tests.lending.helpers import BTC, USDT, lending_data


def test_lending_config_parses_into_terms_in_e8() -> None:
    config = parse_config(lending_data())
    assert config.lending is not None
    terms = config.lending.collateral[BTC]
    assert (terms.initial_ltv_e8, terms.margin_call_ltv_e8, terms.liquidation_ltv_e8) == (
        78_000_000,
        85_000_000,
        91_000_000,
    )
    assert config.lending.loanable[USDT].rate_at_kink_e8 == 10_000_000
    btc = config.assets[BTC]
    assert (btc.collateral_haircut_e8, btc.max_collateral_atoms) == (5_000_000, 100 * 10**8)
    assert btc.index is not None and btc.index.min_sources == 2


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, key = path.split(".")
    for name in parents:
        data = data[name]
    data[key] = value


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("lending.collateral.BTC.margin_call_ltv", "0.95", "initial_ltv < margin_call_ltv < liquidation_ltv"),
        ("lending.collateral.BTC.initial_ltv", "0", "initial_ltv < margin_call_ltv"),
        ("lending.collateral.BTC.close_factor", "0", "close_factor"),
        ("lending.collateral.BTC.liquidation_penalty", "1", "liquidation_penalty"),
        ("lending.collateral.BTC.liquidaton_ltv", "0.9", "did you mean 'liquidation_ltv'"),
        ("lending.lender_account", 0, "lender_account"),
        ("lending.loanable.USDT.max_rate", "0.01", "rates must not fall"),
        ("assets.BTC.collateral_haircut", "1", "collateral_haircut"),
        ("assets.BTC.max_collateral", "0", "max_collateral"),
        ("assets.BTC.haircut", "0.1", "unknown key assets.BTC.haircut"),
    ],
)
def test_bad_lending_keys_are_refused_naming_the_key(path: str, value: Any, message: str) -> None:
    data = lending_data()
    _set(data, path, value)
    with pytest.raises(ConfigError, match=message):
        parse_config(data)


def test_collateral_without_an_index_is_refused() -> None:
    data = lending_data()
    del data["assets"]["BTC"]["index"]
    with pytest.raises(ConfigError, match=r"no \[assets.BTC.index\]"):
        parse_config(data)


def test_collateral_of_an_unlisted_asset_is_refused() -> None:
    data = lending_data()
    data["lending"]["collateral"]["ETH"] = dict(data["lending"]["collateral"]["BTC"])
    with pytest.raises(ConfigError, match=r"asset ETH has no \[assets.ETH\] table"):
        parse_config(data)
