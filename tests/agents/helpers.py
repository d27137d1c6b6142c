"""An in-process venue with an agent on it, for the agent tests."""

from __future__ import annotations

from typing import Any

from tests.server.harness import Trader
from tests.server.inprocess import InProcessVenue

BTC = "BTCUSDT"


def new_agent(venue: InProcessVenue, name: str, **policy: Any) -> tuple[str, Trader]:
    """An account with ``deposit`` USDT and an agent key held to ``policy`` (scopes default to all but algo)."""
    owner = venue.trader(name)
    body = {
        "accountId": owner.account_id,
        "name": name,
        "scopes": ["read", "preview", "trade", "cancel"],
        **policy,
    }
    created = venue.admin("POST", "/agents", body)
    assert created.status_code == 200, created.text
    data = created.json()
    return data["agentId"], Trader(owner.account_id, data["apiKey"], data["apiSecret"])


def limit(side: str, qty: str, price: str, **extra: Any) -> dict[str, Any]:
    return {
        "symbol": BTC,
        "side": side,
        "type": "LIMIT",
        "quantity": qty,
        "price": price,
        "timeInForce": "GTC",
        **extra,
    }
