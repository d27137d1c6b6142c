"""Staged parameter changes: proposal -> dry run -> approval by another operator -> apply.

In process (the real admin app and sequencer). Each refusal is a code and a message; a rejected or
expired proposal changes nothing; the applied change is in the venue's audit log with both names.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from perpx.ops.proposal_routes import apply_due, on_stop
from perpx.ops.proposals import PROPOSALS_FILE, ProposalBook

from ..server.harness import ADMIN_TOKEN
from ..server.inprocess import ADMIN_BASE, InProcessVenue, in_process_venue

BTC = "BTCUSDT"


@pytest.fixture
def venue(tmp_path: Path) -> Iterator[InProcessVenue]:
    with in_process_venue(tmp_path / "venue") as started:
        yield started


def call(venue: InProcessVenue, operator: str, method: str, path: str, body: Any = None) -> httpx.Response:
    headers = {"X-PERPX-ADMIN": ADMIN_TOKEN, "X-PERPX-OPERATOR": operator}
    answer: httpx.Response = venue.client.request(
        method, f"{ADMIN_BASE}/admin/v1{path}", json=body, headers=headers
    )
    return answer


def params(venue: InProcessVenue) -> dict[str, str]:
    body: dict[str, str] = call(venue, "ops", "GET", f"/markets/{BTC}/params").json()["params"]
    return body


def propose(venue: InProcessVenue, operator: str = "alice", **values: str) -> dict[str, Any]:
    answer = call(venue, operator, "POST", "/proposals",
                  {"symbol": BTC, "params": values, "reason": "fewer resting orders per account"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def dry_run(venue: InProcessVenue, proposal_id: int) -> httpx.Response:
    return call(venue, "alice", "POST", f"/proposals/{proposal_id}/dry-run", {"scenarios": ["mark_walk"]})


def test_a_change_goes_proposal_dry_run_approval_apply_with_its_trail(venue: InProcessVenue) -> None:
    # Arrange
    before = params(venue)
    proposal = propose(venue, max_open_orders="50")
    pid = proposal["id"]

    # Act
    early = call(venue, "bob", "POST", f"/proposals/{pid}/approve")
    ran = dry_run(venue, pid)
    own = call(venue, "alice", "POST", f"/proposals/{pid}/approve")
    approved = call(venue, "bob", "POST", f"/proposals/{pid}/approve")
    staged = params(venue)
    applied = call(venue, "carol", "POST", f"/proposals/{pid}/apply")
    again = call(venue, "carol", "POST", f"/proposals/{pid}/apply")

    # Assert: nothing changed until the apply
    assert proposal["state"] == "proposed"
    assert staged == before
    assert (early.status_code, early.json()["code"]) == (409, -9402)
    assert "dry-run first" in early.json()["msg"]
    assert ran.status_code == 200, ran.text
    comparison = ran.json()["dry_run"]["results"]["mark_walk"]
    assert comparison["applicable"] is True
    assert set(comparison["current"]) == set(comparison["proposed"]) >= {"liquidations", "bad_debt"}
    assert ran.json()["dry_run"]["current"] == {"max_open_orders": before["max_open_orders"]}
    assert (own.status_code, own.json()["code"]) == (403, -9403)
    assert approved.status_code == 200 and approved.json()["approver"] == "bob"
    assert applied.status_code == 200, applied.text
    assert params(venue)["max_open_orders"] == "50"
    assert again.status_code == 409
    body = applied.json()
    assert body["state"] == "applied" and body["applied_seq"] >= 1
    assert [(s["action"], s["operator"]) for s in body["trail"]] == [
        ("proposed", "alice"), ("dry-run", "alice"), ("approved", "bob"), ("applied", "carol")
    ]  # fmt: skip
    audit = call(venue, "ops", "GET", "/audit").text
    assert "proposal 1, approved by bob" in audit


def test_every_proposal_step_is_in_the_audit_log_with_who_and_when(venue: InProcessVenue) -> None:
    # Arrange
    pid = propose(venue, max_open_orders="60")["id"]
    assert dry_run(venue, pid).status_code == 200
    assert call(venue, "bob", "POST", f"/proposals/{pid}/approve").status_code == 200
    assert call(venue, "carol", "POST", f"/proposals/{pid}/apply").status_code == 200
    other = propose(venue, max_open_orders="5")["id"]
    assert (
        call(venue, "bob", "POST", f"/proposals/{other}/reject", {"reason": "too tight"}).status_code == 200
    )

    # Act
    audit = call(venue, "ops", "GET", f"/audit?symbol={BTC}").json()

    # Assert: the steps in order, with who, when and the proposal; the change itself as a param row
    steps = [(r["proposal"], r["action"], r["operator"]) for r in audit if r["kind"] == "proposal"]
    assert steps == [
        (pid, "proposed", "alice"), (pid, "dry-run", "alice"), (pid, "approved", "bob"),
        (pid, "applied", "carol"), (other, "proposed", "alice"), (other, "rejected", "bob"),
    ]  # fmt: skip
    assert all(r["time"] > 0 and r["symbol"] == BTC for r in audit)
    assert next(r["params"] for r in audit if r["kind"] == "proposal") == {"max_open_orders": "60"}
    changes = [(r["param"], r["new"]) for r in audit if r["kind"] == "param"]
    assert changes == [("max_open_orders", "60")]
    assert call(venue, "ops", "GET", "/audit?symbol=ETHUSDT").json() == []


@pytest.mark.parametrize(
    ("name", "code", "says"),
    [
        ("price_unit", -9404, "every price, quantity and position of the market is held in its units"),
        ("qty_unit", -9404, "the tick_size and lot_size filters may change"),
        ("base", -9404, "names the market's positions"),
        ("mark_policy", -9404, "hold state built on it"),
        ("brackets", -1102, "a list of tiers"),
        ("index", -1102, "is a table"),
        ("funding_floor", -1102, "markets.BTCUSDT: need funding_floor <= 0 <= funding_cap"),
        ("no_such_thing", -9405, "is not a market parameter"),
    ],
)
def test_a_parameter_that_cannot_change_or_a_bad_value_is_refused_at_proposal_time(
    venue: InProcessVenue, name: str, code: int, says: str
) -> None:
    # Act
    answer = call(venue, "alice", "POST", "/proposals", {"symbol": BTC, "params": {name: "1"}, "reason": "r"})

    # Assert: the code, why, and what can be proposed instead; nothing recorded
    assert (answer.status_code, answer.json()["code"]) == (400, code)
    assert says in answer.json()["msg"]
    assert code == -1102 or "brackets" in answer.json()["msg"]  # a name refusal lists what can change
    assert call(venue, "ops", "GET", "/proposals").json() == []


def test_a_proposal_scheduled_at_a_venue_time_applies_when_the_clock_reaches_it(
    venue: InProcessVenue,
) -> None:
    # Arrange: approved, scheduled one venue minute ahead
    pid = propose(venue, max_open_orders="40")["id"]
    assert dry_run(venue, pid).status_code == 200
    assert call(venue, "bob", "POST", f"/proposals/{pid}/approve").status_code == 200
    now_ms = venue.ctx.seq.engine.now_ns // 1_000_000
    scheduled = call(venue, "bob", "POST", f"/proposals/{pid}/apply", {"atMs": now_ms + 60_000})
    portal = venue.client.portal
    assert portal is not None
    portal.call(on_stop, venue.ctx)  # the test applies what is due itself (no race with the poller)

    # Act
    early = portal.call(apply_due, venue.ctx)
    advanced = call(venue, "ops", "POST", "/clock", {"advanceMs": 60_000})
    due = portal.call(apply_due, venue.ctx)

    # Assert
    assert scheduled.status_code == 200 and scheduled.json()["state"] == "approved"
    assert early == []
    assert advanced.status_code == 200
    assert due == [pid]
    assert params(venue)["max_open_orders"] == "40"
    body = call(venue, "ops", "GET", f"/proposals/{pid}").json()
    assert [(s["action"], s["operator"]) for s in body["trail"]][-2:] == [
        ("scheduled", "bob"),
        ("applied", "scheduler"),
    ]


def test_a_rejected_proposal_changes_nothing(venue: InProcessVenue) -> None:
    # Arrange
    before = params(venue)
    pid = propose(venue, max_open_orders="10")["id"]
    assert dry_run(venue, pid).status_code == 200

    # Act
    rejected = call(venue, "bob", "POST", f"/proposals/{pid}/reject", {"reason": "too tight"})
    approve = call(venue, "bob", "POST", f"/proposals/{pid}/approve")
    apply = call(venue, "bob", "POST", f"/proposals/{pid}/apply")

    # Assert
    assert rejected.json()["state"] == "rejected"
    assert (approve.status_code, apply.status_code) == (409, 409)
    assert "is rejected" in apply.json()["msg"]
    assert params(venue) == before


def test_an_expired_proposal_cannot_be_approved_or_applied(venue: InProcessVenue) -> None:
    # Arrange: approved, then its lifetime runs out
    before = params(venue)
    pid = propose(venue, max_open_orders="10")["id"]
    assert dry_run(venue, pid).status_code == 200
    assert call(venue, "bob", "POST", f"/proposals/{pid}/approve").status_code == 200
    book = venue.ctx.components.proposals
    book.proposals[pid].expires_ms = 0

    # Act
    apply = call(venue, "bob", "POST", f"/proposals/{pid}/apply")
    listed = call(venue, "ops", "GET", f"/proposals/{pid}").json()

    # Assert
    assert apply.status_code == 409 and "is expired" in apply.json()["msg"]
    assert listed["state"] == "expired"
    assert params(venue) == before


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (
            {"symbol": BTC, "params": {"price_unit": "0.5"}, "reason": "r"},
            400,
            "cannot be changed on a listed market",
        ),
        ({"symbol": BTC, "params": {"tick_size": "0.25"}, "reason": "r"}, 400, "for instance 0.2 or 0.3"),
        ({"symbol": BTC, "params": {"max_open_orders": "-3"}, "reason": "r"}, 400, "not valid"),
        ({"symbol": BTC, "params": {"min_notional": 5.5}, "reason": "r"}, 400, "not a string or an integer"),
        ({"symbol": BTC, "params": {}, "reason": "r"}, 400, "params is empty"),
        ({"symbol": BTC, "params": {"max_open_orders": "9"}, "reason": " "}, 400, "reason is empty"),
        ({"symbol": "NOPE", "params": {"max_open_orders": "9"}, "reason": "r"}, 400, "Invalid symbol"),
    ],
)
def test_a_bad_proposal_is_refused_with_what_to_change(
    venue: InProcessVenue, body: dict[str, Any], status: int, says: str
) -> None:
    # Act
    answer = call(venue, "alice", "POST", "/proposals", body)

    # Assert
    assert answer.status_code == status, answer.text
    assert says in answer.json()["msg"]
    assert call(venue, "ops", "GET", "/proposals").json() == []


def test_unknown_proposal_and_unknown_scenario_are_refused(venue: InProcessVenue) -> None:
    # Arrange
    pid = propose(venue, max_open_orders="10")["id"]

    # Act
    missing = call(venue, "bob", "POST", "/proposals/99/approve")
    scenario = call(venue, "bob", "POST", f"/proposals/{pid}/dry-run", {"scenarios": ["no_such"]})

    # Assert
    assert (missing.status_code, missing.json()["code"]) == (404, -9401)
    assert scenario.status_code == 400 and "no scenario 'no_such'" in scenario.json()["msg"]


def test_proposals_survive_a_restart(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / PROPOSALS_FILE
    book = ProposalBook.open(path)
    proposal = book.propose(BTC, {"max_open_orders": "10"}, "why", "alice", now_ms=1_000)
    book.reject(proposal, "bob", "no", now_ms=2_000)

    # Act
    reopened = ProposalBook.open(path)

    # Assert
    assert reopened.proposals == book.proposals
    assert reopened.get(1).status(now_ms=3_000) == "rejected"
