"""The cross-symbol delta limit: the desk's net delta (sum beta x position x mark) bounds and skews its quotes.

Rule rows on the pure model (30,000 index, 1 BTC = 1,000 lots = 30,000 of notional), then the same
limit on a venue: a BTC position leaves no room for an ETH quote that adds to the net delta, and
an accept is checked again against the net delta at the time.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from perpx.engine.values import MarketId, Side
from perpx.otc import errors
from perpx.otc.config import OtcConfig, PricingParams
from perpx.otc.desk import Desk
from perpx.otc.errors import OtcError
from perpx.otc.market import net_delta
from perpx.otc.pricing import MarketInputs, QuoteSide, limit_usage, price_quote
from perpx.otc.store import OtcStore
from tests.otc.kit import DeskKit, desk_kit

PARAMS = PricingParams(min_notional=Decimal(1000), max_notional=Decimal(10_000_000), skew_bps=Decimal(10))
ETH = "ETHUSDT"


def _inputs(net: str, limit: str | None, beta: str = "1", inventory_lots: int = 0) -> MarketInputs:
    return MarketInputs(
        index_ticks=300_000,
        depth_bid_lots=50_000,
        depth_ask_lots=50_000,
        range_bps=Decimal(0),
        band_floor_ticks=285_000,
        band_ceiling_ticks=315_000,
        inventory_lots=inventory_lots,
        max_inventory_lots=20_000,
        tick_size=Decimal("0.1"),
        lot_size=Decimal("0.001"),
        net_delta=Decimal(net),
        max_net_delta=None if limit is None else Decimal(limit),
        beta=Decimal(beta),
    )


@pytest.mark.parametrize(
    ("net", "limit", "beta", "client_side", "priced"),
    [
        ("0", "50000", "1", QuoteSide.BUY, True),  # desk sells 1: -30,000, within
        ("-30000", "50000", "1", QuoteSide.BUY, False),  # -60,000: beyond
        ("-30000", "50000", "1", QuoteSide.SELL, True),  # desk buys back to 0
        ("40000", "50000", "0.5", QuoteSide.SELL, False),  # +15,000 -> 55,000
        ("40000", "50000", "0.25", QuoteSide.SELL, True),  # +7,500 -> 47,500
        ("60000", "50000", "1", QuoteSide.SELL, False),  # already beyond: no further
        ("60000", "50000", "1", QuoteSide.BUY, True),  # already beyond: back toward zero is fine
        ("-30000", "50000", "-1", QuoteSide.SELL, False),  # negative beta: a buy lowers the net delta
        ("-30000", None, "1", QuoteSide.BUY, True),  # no limit configured
    ],
)
def test_a_side_that_would_take_the_net_delta_beyond_its_limit_has_no_price(
    net: str, limit: str | None, beta: str, client_side: QuoteSide, priced: bool
) -> None:
    quote = price_quote(client_side, 1000, _inputs(net, limit, beta), Decimal(0), PARAMS)

    side = quote.ask if client_side is QuoteSide.BUY else quote.bid
    assert side is not None
    assert (side.price_ticks is not None) is priced
    if not priced:
        assert side.refusal == "the trade would take the desk's net delta across symbols beyond its limit"


@pytest.mark.parametrize(
    ("net", "limit", "beta", "inventory_lots", "usage"),
    [
        ("25000", "50000", "1", 0, "0.5"),  # the net delta's usage when it is the larger
        ("25000", "50000", "-1", 0, "-0.5"),  # signed by the beta
        ("25000", "50000", "1", 15_000, "0.75"),  # the symbol's own usage when it is the larger
        ("-100000", "50000", "1", 0, "-1"),  # clamped
        ("25000", None, "1", 0, "0"),  # no limit: only the symbol's inventory skews
    ],
)
def test_skew_follows_the_larger_of_the_symbols_and_the_net_deltas_usage(
    net: str, limit: str | None, beta: str, inventory_lots: int, usage: str
) -> None:
    inputs = _inputs(net, limit, beta, inventory_lots)

    quote = price_quote(QuoteSide.TWO_WAY, 1000, inputs, Decimal(0), PARAMS)

    assert limit_usage(inputs) == Decimal(usage)
    assert quote.skew_bps == PARAMS.skew_bps * Decimal(usage)


def _two_symbol_kit(limit: str, betas: dict[str, Decimal] | None = None) -> DeskKit:
    kit = desk_kit(max_inventory="20")
    v = kit.v
    v.mark(ETH, "2000")
    for i in range(1, 4):
        v.place("maker", ETH, "BUY", "50", str(2000 - i))
        v.place("maker", ETH, "SELL", "50", str(2000 + i))
    config = dataclasses.replace(kit.desk.config, max_net_delta=Decimal(limit), betas=betas or {})
    desk = Desk(config, OtcStore(":memory:"))
    v.sequencer.add_listener(desk.history.observe)
    kit.desk = desk
    return kit


def _eth_request(kit: DeskKit, side: QuoteSide, qty: str) -> str:
    quote = kit.desk.request(kit.v.engine, kit.v.names["client"], MarketId(ETH), side, kit.v.lots(ETH, qty))
    return quote.quote_id


def test_a_btc_position_leaves_no_room_for_an_eth_quote_adding_to_the_net_delta() -> None:
    kit = _two_symbol_kit("50000")
    kit.accept(kit.request(side=QuoteSide.SELL, qty="1").quote_id)  # the desk buys 1 BTC: +30,000

    with pytest.raises(OtcError) as refused:
        _eth_request(kit, QuoteSide.SELL, "15")  # the desk would buy 30,000 of ETH: 60,000
    reducing = kit.desk.store.quote(_eth_request(kit, QuoteSide.BUY, "15"))

    assert net_delta(kit.v.engine, kit.desk.desk_id, {}) == Decimal(30000)
    assert refused.value.code == errors.NOT_QUOTED and "net delta across symbols" in refused.value.message
    assert reducing is not None and reducing.ask_ticks is not None


def test_an_eth_beta_counts_its_position_in_the_net_delta() -> None:
    kit = _two_symbol_kit("50000", {ETH: Decimal("0.5")})
    kit.accept(kit.request(side=QuoteSide.SELL, qty="1").quote_id)  # +30,000

    quote = kit.desk.store.quote(_eth_request(kit, QuoteSide.SELL, "15"))  # +30,000 x 0.5 = 45,000

    assert quote is not None and quote.bid_ticks is not None


def test_an_accept_is_refused_when_the_net_delta_moved_beyond_the_limit_since_the_quote() -> None:
    kit = _two_symbol_kit("50000")
    eth_quote = _eth_request(kit, QuoteSide.SELL, "15")  # the desk would buy 30,000 of ETH
    kit.accept(kit.request(side=QuoteSide.SELL, qty="1").quote_id)  # meanwhile it buys 1 BTC

    refusal = kit.refusal(eth_quote, Side.SELL)

    stored = kit.desk.store.quote(eth_quote)
    assert refusal.code == errors.NOT_QUOTED and "net delta" in refusal.message
    assert stored is not None and stored.state == "REJECTED"


def test_config_reads_the_limit_and_betas_and_names_a_bad_one() -> None:
    from perpx.engine.config import ConfigError
    from perpx.otc.config import parse_otc

    markets = ("BTCUSDT", ETH)
    config = parse_otc(
        {"otc": {"desk_account": 1, "max_net_delta": "2000000", "betas": {ETH: "1.2"}}}, markets
    )

    assert isinstance(config, OtcConfig) and config.max_net_delta == Decimal(2_000_000)
    assert config.beta(ETH) == Decimal("1.2") and config.beta("BTCUSDT") == 1
    for section, message in (
        ({"max_net_delta": "0"}, "otc.max_net_delta must be greater than zero"),
        ({"betas": {"DOGEUSDT": "1"}}, "unknown key otc.betas.DOGEUSDT"),
        ({"betas": {ETH: 1.2}}, "otc.betas.ETHUSDT must be a decimal written as a string"),
    ):
        with pytest.raises(ConfigError, match=message):
            parse_otc({"otc": {"desk_account": 1, **section}}, markets)
