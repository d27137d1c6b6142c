"""Venues whose BTCUSDT (and optionally ETHUSDT) take their marks from spot index sources."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from perpx.engine.config import VenueConfig, parse_config
from perpx.engine.events import Event, FundingPaid, FundingSettled
from perpx.testkit import START_NS, Venue
from tests.engine.helpers import default_data

BTC = "BTCUSDT"
ETH = "ETHUSDT"
S = 1_000_000_000
HOUR = 3_600 * S
SOURCES = {"binance": 3, "okx": 2, "bybit": 2}

E = TypeVar("E", bound=Event)


def priced_config(
    risk: Mapping[str, Any] | None = None,
    index: Mapping[str, Any] | None = None,
    eth_index: Mapping[str, Any] | None = None,
    market: str = BTC,
) -> VenueConfig:
    """The demo venue with an ``[index]`` table on ``market`` (and ETHUSDT if ``eth_index``).

    Defaults: the issue's sources ``binance = 3, okx = 2, bybit = 2``, binance
    policy, stale after 10 s, quorum 2, outlier 5%.
    """
    data = default_data()
    table = {
        "policy": "binance",
        "sources": dict(SOURCES),
        "stale_after_s": 10,
        "min_sources": 2,
        "outlier_pct": "0.05",
    }
    table.update(index or {})
    data["markets"][market]["index"] = table
    data["markets"][market].update(risk or {})
    if eth_index is not None:
        data["markets"][ETH]["index"] = {"sources": dict(SOURCES), **eth_index}
    return parse_config(data)


def priced_venue(*names: str, deposit: str = "100000", config: VenueConfig | None = None) -> Venue:
    """A venue on ``config`` (default :func:`priced_config`) with one funded account per name."""
    v = Venue(config or priced_config())
    for name in names:
        v.account(name, deposit)
    return v


def quote_all(v: Venue, prices: Mapping[str, str], market: str = BTC) -> list[Event]:
    events: list[Event] = []
    for source, price in prices.items():
        events += v.quote(market, source, price)
    return events


def of(events: Sequence[Event], kind: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]


def boundary(k: int, interval_hours: int = 8) -> int:
    """The k-th funding boundary after the harness's start (2026-01-01T00:00Z is itself one)."""
    return START_NS + k * interval_hours * HOUR


def settlement_balances(events: Sequence[Event]) -> None:
    """Assert every settlement in ``events`` sums to zero: payments + residue = 0, per market and time."""
    for settled in of(events, FundingSettled):
        paid = [
            e.amount_atoms
            for e in of(events, FundingPaid)
            if e.market == settled.market and e.funding_time_ns == settled.funding_time_ns
        ]
        assert len(paid) == settled.positions
        assert sum(-a for a in paid if a < 0) == settled.paid_atoms
        assert sum(a for a in paid if a > 0) == settled.received_atoms
        assert settled.paid_atoms == settled.received_atoms + settled.residue_atoms
        assert sum(paid) + settled.residue_atoms == 0
        assert 0 <= settled.residue_atoms < max(1, settled.positions)
