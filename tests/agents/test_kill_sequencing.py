"""The kill switch holds at sequencing time: an order admitted before a kill is not sequenced after it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from perpx.agents.audit import AUDIT_FILE
from perpx.agents.guard import Reservation, agent_guard
from perpx.engine.commands import AmendOrder, PlaceOrder
from perpx.journal.journal import scan
from perpx.journal.store import JOURNAL_FILE
from tests.server.inprocess import in_process_venue

from .helpers import BTC, limit, new_agent


def test_order_admitted_before_a_kill_is_refused_when_it_reaches_the_sequencer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with in_process_venue(tmp_path / "data") as venue:
        venue.mark(BTC, "60000")
        agent_id, agent = new_agent(venue, "late-kill")
        guard = agent_guard(venue.ctx)
        admit = guard.admit

        async def admit_then_kill(*args: Any) -> Reservation | None:
            reservation = await admit(*args)
            guard.store.set_killed(agent_id, True)  # the kill lands between admission and sequencing
            return reservation

        monkeypatch.setattr(guard, "admit", admit_then_kill)

        refused = venue.refused("POST", "/fapi/v1/order", agent, limit("BUY", "0.002", "59000"))
        journal = scan(venue.ctx.data_dir / JOURNAL_FILE)
        audit = [json.loads(line) for line in (venue.ctx.data_dir / AUDIT_FILE).read_text().splitlines()]

    placed = [
        r
        for r in journal.records
        if isinstance(r.command, PlaceOrder) and r.command.account_id == agent.account_id
    ]
    assert refused[1] == -9302 and "killed before this order was sequenced" in refused[2]
    assert placed == []
    assert [(e["action"], e["decision"], e.get("stage")) for e in audit[-2:]] == [
        ("place_order", "allowed", None),
        ("place_order", "refused", "sequencing"),
    ]


def test_amend_admitted_before_a_kill_is_refused_when_it_reaches_the_sequencer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with in_process_venue(tmp_path / "data") as venue:
        venue.mark(BTC, "60000")
        agent_id, agent = new_agent(venue, "late-kill-amend")
        placed = venue.ok("POST", "/fapi/v1/order", agent, limit("BUY", "0.002", "59000"))
        guard = agent_guard(venue.ctx)
        admit_amend = guard.admit_amend

        async def admit_then_kill(*args: Any) -> None:
            await admit_amend(*args)
            guard.store.set_killed(agent_id, True)

        monkeypatch.setattr(guard, "admit_amend", admit_then_kill)
        amend = {
            "symbol": BTC,
            "orderId": placed["orderId"],
            "side": "BUY",
            "quantity": "0.003",
            "price": "59100",
        }

        refused = venue.refused("PUT", "/fapi/v1/order", agent, amend)
        after = venue.ok("GET", "/fapi/v1/order", agent, {"symbol": BTC, "orderId": placed["orderId"]})
        journal = scan(venue.ctx.data_dir / JOURNAL_FILE)

    assert refused[1] == -9302 and "killed before this amend was sequenced" in refused[2]
    assert (after["price"], after["origQty"]) == ("59000", "0.002")
    assert not [r for r in journal.records if isinstance(r.command, AmendOrder)]


def test_kill_answers_the_sequence_number_it_took_effect_at(tmp_path: Path) -> None:
    with in_process_venue(tmp_path / "data") as venue:
        venue.mark(BTC, "60000")
        agent_id, agent = new_agent(venue, "kill-seq")
        venue.ok("POST", "/fapi/v1/order", agent, limit("BUY", "0.002", "59000"))

        one = venue.admin("POST", f"/agents/{agent_id}/kill", {"on": True}).json()
        every = venue.admin("POST", "/kill", {"on": True}).json()
        last = scan(venue.ctx.data_dir / JOURNAL_FILE).last_seq

    assert one["killSeq"] == last and every["killSeq"] == last
