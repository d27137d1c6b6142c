"""The preview's liquidation price after the trade: hand-computed rows, and the engine's own once filled.

Every row: an account with 1,000 USDT and BTCUSDT marked at 60,000 (first bracket: mmr 0.4 %,
leverage 20; fees: taker 0.05 %, maker 0.02 %). Long ``LP = (C - W') / (|Q| x (1 - mmr))``, short
``LP = (|C| + W') / (|Q| x (1 + mmr))``; ``W'`` is the wallet after the fee (cross) or the isolated
margin after the fee; rounded toward the mark to the 0.1 tick.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import pytest

from tests.server.harness import Trader
from tests.server.inprocess import InProcessVenue, in_process_venue

from .helpers import BTC, limit


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessVenue]:
    with in_process_venue(tmp_path_factory.mktemp("preview-liq") / "data") as venue:
        venue.mark(BTC, "60000")
        yield venue


@dataclass(frozen=True)
class Row:
    margin: str
    before: tuple[tuple[str, str], ...]
    """Fills the account takes first, at 60,000: (side, quantity)."""
    side: str
    qty: str
    price: str
    takes: bool
    """A maker rests the other side at ``price`` first (the order is a taker); else the order rests."""
    now: str | None
    after: str | None


ROWS = [
    # 6000 - (1000 - 3) = 5003 over 0.1 x 0.996
    pytest.param(Row("CROSSED", (), "BUY", "0.1", "60000", True, None, "50231"), id="cross_long_from_flat"),
    # 6000 + 997 = 6997 over 0.1 x 1.004, rounded down
    pytest.param(
        Row("CROSSED", (), "SELL", "0.1", "60000", True, None, "69691.2"), id="cross_short_from_flat"
    ),
    # isolated margin 6000 / 20 - 3 = 297: 5703 over 0.0996
    pytest.param(
        Row("ISOLATED", (), "BUY", "0.1", "60000", True, None, "57259.1"), id="isolated_long_from_flat"
    ),
    # resting, filled as maker: fee 1.18; 5900 - 998.82 = 4901.18 over 0.0996
    pytest.param(Row("CROSSED", (), "BUY", "0.1", "59000", False, None, "49208.7"), id="cross_long_resting"),
    # adds 0.05 to 0.05: now (3000 - 998.5) over 0.05 x 0.996; after: wallet 1000 - 1.5 - 1.5, as one 0.1 fill
    pytest.param(
        Row("CROSSED", (("BUY", "0.05"),), "BUY", "0.05", "60000", True, "40190.8", "50231"),
        id="cross_long_adds",
    ),
    # 0.1 long, sells 0.04: 3600 - (997 - 1.2) = 2604.2 over 0.06 x 0.996
    pytest.param(
        Row("CROSSED", (("BUY", "0.1"),), "SELL", "0.04", "60000", True, "50231", "43577.7"),
        id="cross_long_reduces",
    ),
    pytest.param(
        Row("CROSSED", (("BUY", "0.1"),), "SELL", "0.1", "60000", True, "50231", None), id="cross_long_closes"
    ),
]


def fresh_pair(venue: InProcessVenue, name: str) -> tuple[Trader, Trader]:
    """An account with 1,000 USDT and an agent key on it (no limits); returns (owner, agent)."""
    owner = venue.trader(name, deposit="1000")
    created = venue.admin(
        "POST",
        "/agents",
        {"accountId": owner.account_id, "name": name, "scopes": ["read", "preview", "trade", "cancel"]},
    )
    assert created.status_code == 200, created.text
    data = created.json()
    return owner, Trader(owner.account_id, data["apiKey"], data["apiSecret"])


def liquidation_price(venue: InProcessVenue, trader: Trader) -> str | None:
    rows = venue.ok("GET", "/fapi/v2/positionRisk", trader, {"symbol": BTC})
    if not rows or Decimal(rows[0]["positionAmt"]) == 0:
        return None
    return format(Decimal(rows[0]["liquidationPrice"]).normalize(), "f")


@pytest.mark.parametrize("row", ROWS)
def test_preview_liquidation_price_after_the_trade_matches_the_hand_and_the_engine(
    venue: InProcessVenue, row: Row, request: pytest.FixtureRequest
) -> None:
    name = request.node.callspec.id
    owner, agent = fresh_pair(venue, f"liq-{name}")
    maker = venue.trader(f"liq-maker-{name}")
    if row.margin == "ISOLATED":
        venue.ok("POST", "/fapi/v1/marginType", owner, {"symbol": BTC, "marginType": "ISOLATED"})
    for side, qty in row.before:
        venue.ok("POST", "/fapi/v1/order", maker, limit("SELL" if side == "BUY" else "BUY", qty, "60000"))
        venue.ok("POST", "/fapi/v1/order", agent, limit(side, qty, "60000"))
    other = "SELL" if row.side == "BUY" else "BUY"
    if row.takes:
        venue.ok("POST", "/fapi/v1/order", maker, limit(other, row.qty, row.price))

    preview = venue.ok("POST", "/perpx/v1/agent/preview", agent, limit(row.side, row.qty, row.price))
    venue.ok("POST", "/fapi/v1/order", agent, limit(row.side, row.qty, row.price))
    if not row.takes:
        venue.ok("POST", "/fapi/v1/order", maker, limit(other, row.qty, row.price))
    engine_after = liquidation_price(venue, agent)

    assert preview["liquidationPriceNow"] == row.now
    assert preview["liquidationPriceAfter"] == row.after
    assert engine_after == row.after
