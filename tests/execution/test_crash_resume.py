"""Crash-resume: a parent rebuilt from its child log and the venue never sends a child twice."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from perpx.engine.commands import PlaceOrder
from perpx.execution.childlog import ChildLog, LostRecord, PlaceRecord, read_log
from perpx.execution.ids import child_id
from perpx.execution.model import ParentOrderError, decode_parent
from perpx.execution.runner import ParentRunner
from perpx.execution.venue import VenueUnavailable

from .market import Market

TWAP: dict[str, Any] = {
    "algo": "twap",
    "market": "BTCUSDT",
    "side": "buy",
    "client_algo_id": "crash-1",
    "qty": "1",
    "duration_s": 600,
    "slice_interval_s": 60,
    "passiveness_bps": 0,
}


def _drive(market: Market, runner: ParentRunner, steps: int) -> None:
    for _ in range(steps):
        if runner.done:
            return
        market.requote()
        market.advance(5)
        runner.step()


def _sent_ids(market: Market) -> Counter[str]:
    return Counter(
        str(c.client_order_id)
        for c in market.commands
        if isinstance(c, PlaceOrder) and c.account_id == market.venue.account_id
    )


def test_restarted_runner_finishes_without_duplicate_children(tmp_path: Path) -> None:
    market = Market()
    log = tmp_path / "crash-1.jsonl"
    parent = decode_parent(TWAP)
    first = market.runner(parent, log)
    _drive(market, first, 60)  # five slices
    first.log.close()  # the process dies here; only the log and the venue survive

    second = market.runner(parent, log)
    _drive(market, second, 200)
    second.log.close()

    sent = _sent_ids(market)
    assert second.done
    assert max(sent.values()) == 1
    assert len(sent) == 10
    assert market.tv.position("algo", "BTCUSDT") == Decimal(1)


def test_child_logged_but_never_sent_is_marked_lost_and_not_resent(tmp_path: Path) -> None:
    market = Market()
    log = tmp_path / "crash-2.jsonl"
    parent = decode_parent(TWAP)
    first = market.runner(parent, log)
    _drive(market, first, 13)
    # the process died after writing the next child's record and before sending it
    index = first.next_index
    first.log.append(
        PlaceRecord(
            index=index,
            client_order_id=child_id("crash-1", index),
            ts_ns=market.venue.now_ns(),
            qty_lots=100,
            price_ticks=600005,
            tif="IOC",
            reason="TWAP slice 3/10: take 100 lots",
        )
    )
    first.log.close()
    with log.open("ab") as torn:
        torn.write(b'{"type":"place","index":')  # and a torn half-record after it

    second = market.runner(parent, log)
    _drive(market, second, 200)
    second.log.close()

    records = read_log(log)
    lost = [r for r in records if isinstance(r, LostRecord)]
    sent = _sent_ids(market)
    assert [r.client_order_id for r in lost] == [child_id("crash-1", index)]
    assert child_id("crash-1", index) not in sent
    assert max(sent.values()) == 1
    assert market.tv.position("algo", "BTCUSDT") == Decimal(1)


def test_resuming_with_a_different_parent_under_the_same_id_is_refused(tmp_path: Path) -> None:
    market = Market()
    log = tmp_path / "crash-3.jsonl"
    first = market.runner(decode_parent(TWAP), log)
    first.step()
    first.log.close()

    with pytest.raises(ParentOrderError, match="client_algo_id"):
        market.runner(decode_parent({**TWAP, "qty": "2"}), log)


def test_a_corrupt_line_inside_the_log_is_an_error_not_a_guess(tmp_path: Path) -> None:
    market = Market()
    log = tmp_path / "crash-4.jsonl"
    first = market.runner(decode_parent(TWAP), log)
    first.step()
    first.log.close()
    lines = log.read_bytes().split(b"\n")
    log.write_bytes(b"\n".join([lines[0], b"garbage", *lines[1:]]))

    with pytest.raises(ValueError, match=r"crash-4.jsonl:2"):
        ChildLog(log)


class _DropFirstSend:
    """The in-process venue, except that the first send is lost in transit (it never reaches the engine)."""

    def __init__(self, venue: Any) -> None:
        self._venue = venue
        self.dropped = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._venue, name)

    def place(self, child: Any) -> Any:
        if not self.dropped:
            self.dropped += 1
            raise VenueUnavailable("connection reset")
        return self._venue.place(child)


def test_a_send_lost_in_transit_is_retired_after_a_period_and_the_parent_goes_on() -> None:
    market = Market()
    flaky = _DropFirstSend(market.venue)
    parent = decode_parent(TWAP)
    runner = ParentRunner.start(flaky, parent, ChildLog(None), period_s=5)

    with pytest.raises(VenueUnavailable):
        runner.step()
    _drive(market, runner, 200)

    sent = _sent_ids(market)
    lost = [r.client_order_id for r in runner.log.records if isinstance(r, LostRecord)]
    assert lost == [child_id("crash-1", 0)]
    assert child_id("crash-1", 0) not in sent
    assert max(sent.values()) == 1
    assert market.tv.position("algo", "BTCUSDT") == Decimal(1)
