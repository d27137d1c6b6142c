"""An example lending venue: the demo venue plus BTC as priced collateral and a USDT lender.

``[lending] lender_account = 1``: the first account created is the lender. BTC's index takes two
sources (``binance``, ``okx``), both needed (quorum 2), stale after 30 s. LTVs follow Binance's
flexible loans as reported for some pairs (78 / 85 / 91%); close factor 50%, penalty 2%.
"""

from __future__ import annotations

from perpx.engine.config import DEFAULT_CONFIG_TOML

LENDING_TOML = """
[assets.BTC]
decimals = 8
collateral_haircut = "0.05"
max_collateral = "100"

[assets.BTC.index]
policy = "binance"
sources = { binance = 1, okx = 1 }
stale_after_s = 30
min_sources = 2

[lending]
lender_account = 1

[lending.loanable.USDT]
base_rate = "0.05"
kink = "0.8"
rate_at_kink = "0.1"
max_rate = "1"

[lending.collateral.BTC]
initial_ltv = "0.78"
margin_call_ltv = "0.85"
liquidation_ltv = "0.91"
close_factor = "0.5"
liquidation_penalty = "0.02"
"""
"""The lending tables, appended to the demo venue's config."""

LENDING_VENUE_TOML = DEFAULT_CONFIG_TOML + LENDING_TOML
"""The whole example venue's config text."""
