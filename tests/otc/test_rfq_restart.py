"""A quote left BOOKING when the venue stopped before answering is settled at restart from the journal.

The accept's answer is lost the way a stopping venue loses it (the sequencer answers ``-1007``,
outcome unknown, and the quote stays ``BOOKING``), then the venue is stopped and started again on
the same data directory: the block trade in the journal makes the quote ``FILLED`` with its trade;
a block trade that never reached the journal releases it (``-9570``), and it can no longer be booked.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from perpx.otc import errors
from perpx.server.errors import ApiError
from tests.otc.test_rfq_routes import OTC_SECTION, SYMBOL, Desk
from tests.server.harness import MANUAL_CONFIG, Trader
from tests.server.inprocess import InProcessVenue, in_process_venue

CONFIG = MANUAL_CONFIG + OTC_SECTION.format(desk=1)
LOST = ApiError(503, -1007, "The venue stopped before it could answer; the outcome is unknown.")


def _lose_the_answer(venue: InProcessVenue, monkeypatch: pytest.MonkeyPatch, *, journaled: bool) -> None:
    """The next submit is journaled (or not) and its answer lost, as when the venue stops meanwhile."""
    seq = venue.ctx.seq
    original: Callable[..., Awaitable[Any]] = seq.submit

    async def submit(build: Any, *args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(seq, "submit", original)
        if journaled:
            await original(build, *args, **kwargs)
        raise LOST

    monkeypatch.setattr(seq, "submit", submit)


def _accept_without_answer(
    data: Path, monkeypatch: pytest.MonkeyPatch, *, journaled: bool
) -> tuple[Trader, Trader, str]:
    with in_process_venue(data, CONFIG) as venue:
        desk = Desk(venue)
        quote = venue.ok(
            "POST", "/perpx/v1/rfq", desk.client, {"symbol": SYMBOL, "quantity": "1", "side": "BUY"}
        )
        _lose_the_answer(venue, monkeypatch, journaled=journaled)
        status, code, _ = venue.refused("POST", f"/perpx/v1/rfq/{quote['quoteId']}/accept", desk.client)
        stuck = venue.ok("GET", f"/perpx/v1/rfq/{quote['quoteId']}", desk.client)
        assert (status, code, stuck["status"]) == (503, -1007, "BOOKING")
        return desk.client, desk.desk, quote["quoteId"]


def test_booking_quote_whose_block_trade_is_in_the_journal_is_filled_at_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    client, desk, quote_id = _accept_without_answer(data, monkeypatch, journaled=True)

    with in_process_venue(data, CONFIG) as venue:
        record = venue.ok("GET", f"/perpx/v1/rfq/{quote_id}", client)
        trades = venue.ok("GET", "/fapi/v1/userTrades", client, {"symbol": SYMBOL})
        again = venue.refused("POST", f"/perpx/v1/rfq/{quote_id}/accept", client)
        desk_risk = venue.ok("GET", "/fapi/v2/positionRisk", desk, {"symbol": SYMBOL})

    assert record["status"] == "FILLED" and record["tradeId"] == trades[0]["id"]
    assert len(trades) == 1 and trades[0]["orderId"] == 0 and trades[0]["side"] == "BUY"
    assert again[1] == errors.QUOTE_NOT_OPEN  # booked once, never twice
    assert Decimal(desk_risk[0]["positionAmt"]) == -1


def test_booking_quote_whose_block_trade_never_reached_the_journal_is_released_at_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    client, _, quote_id = _accept_without_answer(data, monkeypatch, journaled=False)

    with in_process_venue(data, CONFIG) as venue:
        record = venue.ok("GET", f"/perpx/v1/rfq/{quote_id}", client)
        trades = venue.ok("GET", "/fapi/v1/userTrades", client, {"symbol": SYMBOL})
        again = venue.refused("POST", f"/perpx/v1/rfq/{quote_id}/accept", client)

    assert record["status"] == "REJECTED" and record["code"] == errors.RELEASED_AT_RESTART
    assert "never reached the journal" in record["reason"] and record["tradeId"] is None
    assert trades == []
    assert again[1] == errors.QUOTE_NOT_OPEN
