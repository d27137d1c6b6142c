"""Rules of the engine's flow table (``perpx.engine.parents``: ``CreateFlow``, ``RecordFlowNode``,
``CancelFlow``, ``FinishFlow``): what it records and refuses; a replay and a snapshot rebuild it, and a
snapshot from before flows loads with none."""

from __future__ import annotations

import pytest

from perpx.engine.codes import RejectCode
from perpx.engine.commands import CancelFlow, Command, CreateFlow, FinishFlow, ParentStatus, RecordFlowNode
from perpx.engine.engine import Engine
from perpx.engine.events import CommandRejected, FlowEnded, FlowNodeRecorded, FlowOpened
from perpx.engine.state import restore, snapshot, state_hash
from perpx.engine.values import AccountId
from perpx.testkit import Venue


@pytest.fixture
def venue() -> Venue:
    venue = Venue()
    venue.account("owner")
    venue.account("other")
    return venue


def _open(venue: Venue, client: str = "f1", name: str = "owner") -> int:
    events = venue.apply(
        CreateFlow(ts_ns=venue.tick(), account_id=venue.names[name], client_flow_id=client, name="doc")
    )
    opened = [e for e in events if isinstance(e, FlowOpened)]
    assert len(opened) == 1, events
    return opened[0].flow_id


def _node(venue: Venue, flow_id: int, node: str = "entry", status: str = "working") -> Command:
    return RecordFlowNode(ts_ns=venue.tick(), flow_id=flow_id, node=node, status=status, reason="r")


def _refusal(venue: Venue, command: Command) -> RejectCode:
    before = venue.hash()
    events = venue.apply(command)
    refused = [e for e in events if isinstance(e, CommandRejected)]
    assert len(refused) == 1 and venue.hash() == before, events
    return refused[0].code


def test_a_flow_is_opened_with_the_next_id_and_records_its_nodes_in_order(venue: Venue) -> None:
    first, second = _open(venue), _open(venue, "f2")

    recorded = venue.apply(_node(venue, first, "a", "armed"))
    venue.apply(_node(venue, first, "a", "done"))

    assert (first, second) == (1, 2)
    assert [e.status for e in recorded if isinstance(e, FlowNodeRecorded)] == ["armed"]
    row = venue.engine.parents.flows[first]
    assert [(line[1], line[2]) for line in row.nodes] == [("a", "armed"), ("a", "done")]
    assert row.status is ParentStatus.WORKING and row.name == "doc"


def test_a_client_flow_id_is_used_once_per_account_and_must_fit(venue: Venue) -> None:
    _open(venue, "same")

    assert (
        _refusal(
            venue,
            CreateFlow(ts_ns=venue.tick(), account_id=venue.names["owner"], client_flow_id="same", name="d"),
        )
        is RejectCode.BAD_CLIENT_FLOW_ID
    )
    assert (
        _refusal(
            venue,
            CreateFlow(ts_ns=venue.tick(), account_id=venue.names["owner"], client_flow_id="", name="d"),
        )
        is RejectCode.BAD_CLIENT_FLOW_ID
    )
    assert (
        _refusal(
            venue,
            CreateFlow(
                ts_ns=venue.tick(), account_id=venue.names["owner"], client_flow_id="x" * 33, name="d"
            ),
        )
        is RejectCode.BAD_CLIENT_FLOW_ID
    )
    assert (
        _refusal(
            venue, CreateFlow(ts_ns=venue.tick(), account_id=AccountId(999), client_flow_id="n", name="d")
        )
        is RejectCode.UNKNOWN_ACCOUNT
    )
    assert _open(venue, "same", "other") == 2  # another account may use it


def test_an_ended_or_unknown_flow_takes_no_node_cancel_or_end(venue: Venue) -> None:
    flow_id = _open(venue)
    owner, other = venue.names["owner"], venue.names["other"]

    assert (
        _refusal(venue, CancelFlow(ts_ns=venue.tick(), account_id=other, flow_id=flow_id))
        is RejectCode.UNKNOWN_FLOW
    )
    assert _refusal(venue, _node(venue, flow_id, "", "working")) is RejectCode.BAD_FLOW_NODE
    assert (
        _refusal(
            venue, FinishFlow(ts_ns=venue.tick(), flow_id=flow_id, status=ParentStatus.WORKING, reason="")
        )
        is RejectCode.UNKNOWN_FLOW
    )
    ended = venue.apply(
        FinishFlow(ts_ns=venue.tick(), flow_id=flow_id, status=ParentStatus.FINISHED, reason="all ended")
    )
    assert [e.reason for e in ended if isinstance(e, FlowEnded)] == ["all ended"]
    assert _refusal(venue, _node(venue, flow_id)) is RejectCode.UNKNOWN_FLOW
    assert (
        _refusal(venue, CancelFlow(ts_ns=venue.tick(), account_id=owner, flow_id=flow_id))
        is RejectCode.UNKNOWN_FLOW
    )
    assert _refusal(venue, _node(venue, 42)) is RejectCode.UNKNOWN_FLOW


def test_a_replay_and_a_snapshot_rebuild_the_flows_exactly(venue: Venue) -> None:
    flow_id = _open(venue)
    venue.apply(_node(venue, flow_id))
    venue.apply(CancelFlow(ts_ns=venue.tick(), account_id=venue.names["owner"], flow_id=flow_id))
    venue.apply(FinishFlow(ts_ns=venue.tick(), flow_id=flow_id, status=ParentStatus.CANCELLED, reason="c"))
    _open(venue, "f2")

    replayed = Engine(venue.config)
    for command in venue.journal:
        replayed.apply(command)
    restored = restore(venue.config, snapshot(venue.engine))

    assert state_hash(replayed) == state_hash(venue.engine) == state_hash(restored)
    for engine in (replayed, restored):
        assert {f: r.to_row() for f, r in engine.parents.flows.items()} == {
            f: r.to_row() for f, r in venue.engine.parents.flows.items()
        }
        assert engine.parents.flows_by_client == venue.engine.parents.flows_by_client
        assert engine.parents.next_flow_id == 3


def test_flows_change_the_state_hash_and_an_older_snapshot_loads_with_none(venue: Venue) -> None:
    data = snapshot(venue.engine)
    assert "parents" not in data
    before = venue.hash()

    _open(venue)

    assert venue.hash() != before
    old = restore(venue.config, data)
    assert not old.parents.flows and old.parents.next_flow_id == 1
