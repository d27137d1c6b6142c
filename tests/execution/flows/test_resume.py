"""A flow resumed from its journal after a crash: nothing sent twice, nothing that happened forgotten."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from perpx.execution.childlog import PlaceRecord, read_log
from perpx.execution.document.validate import decode_document, load_document
from perpx.execution.flows.algos import RunnerStarter
from perpx.execution.flows.journal import FlowJournal, read_journal
from perpx.execution.flows.runner import FlowRunner

from ..market import Market
from .memvenue import MemVenue

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "strategies"


@pytest.fixture(autouse=True)
def closing(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Close every runner a test built (a crashed process's files close when it dies)."""
    built: list[FlowRunner] = []
    original = FlowRunner.__post_init__

    def track(self: FlowRunner) -> None:
        built.append(self)
        original(self)

    monkeypatch.setattr(FlowRunner, "__post_init__", track)
    yield
    for runner in built:
        runner.close()


def placed(log: Path) -> set[str]:
    """Client order ids of the children a child log says were sent; each id at most once."""
    ids = [r.client_order_id for r in read_log(log) if isinstance(r, PlaceRecord)]
    assert len(ids) == len(set(ids))
    return set(ids)


def statuses(runner: FlowRunner) -> dict[str, str]:
    return {name: state.status.value for name, state in runner.nodes.items()}


def test_a_restarted_bracket_keeps_its_state_and_sends_nothing_twice(tmp_path: Path) -> None:
    # Arrange: the entry filled and the exits started, then the process died
    document, mem, path = load_document(EXAMPLES / "bracket.toml"), MemVenue(), tmp_path / "flow.jsonl"
    first = FlowRunner(document, mem, "br1", journal=FlowJournal(path))
    first.step()
    mem.fill("br1-c0", 500, 600_000)
    first.step()

    # Act
    second = FlowRunner(document, mem, "br1", journal=FlowJournal(path))
    second.step()
    mem.marks["BTCUSDT"] = 585_000
    second.step()
    mem.fill("br1-c2", 500, 584_990)
    second.step()

    # Assert
    assert [c.client_order_id for c in mem.sent] == ["br1-c0", "br1-c1", "br1-c2"]
    assert statuses(second) == {"entry": "filled", "take-profit": "canceled", "stop-loss": "filled"}
    assert mem.working() == []


def test_a_condition_that_held_before_the_crash_is_not_asked_again(tmp_path: Path) -> None:
    nodes: list[dict[str, Any]] = [
        {
            "id": "up",
            "type": "condition",
            "when": {
                "on": "price_cross",
                "market": "BTCUSDT",
                "source": "mark",
                "op": ">=",
                "price": "61000",
            },
        },
        {"id": "wait", "type": "wait", "wait_s": 60, "trigger": {"on": "done", "node": "up"}},
    ]
    document = decode_document({"version": 1, "name": "c", "flow": {"nodes": nodes}})
    mem, path = MemVenue(), tmp_path / "flow.jsonl"
    mem.marks["BTCUSDT"] = 610_000
    FlowRunner(document, mem, "c1", journal=FlowJournal(path)).step()
    mem.marks["BTCUSDT"] = 600_000

    second = FlowRunner(document, mem, "c1", journal=FlowJournal(path))
    mem.now += 60 * 1_000_000_000
    second.step()

    assert statuses(second) == {"up": "done", "wait": "done"}


def test_an_order_the_journal_missed_is_adopted_from_the_venue(tmp_path: Path) -> None:
    # Arrange: the process died after sending the entry and before its line reached the disk
    document, mem, path = load_document(EXAMPLES / "bracket.toml"), MemVenue(), tmp_path / "flow.jsonl"
    FlowRunner(document, mem, "br1", journal=FlowJournal(path)).step()
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]) + lines[-1][:20])  # the last record, torn

    # Act
    second = FlowRunner(document, mem, "br1", journal=FlowJournal(path))

    # Assert
    assert len(mem.sent) == 1 and statuses(second)["entry"] == "working"
    assert second.nodes["entry"].reason == "adopted br1-c0 from the venue after a restart"
    assert [type(r).__name__ for r in read_journal(path)] == ["StartedRecord", "NodeRecord"]


def test_a_journal_of_another_flow_is_refused(tmp_path: Path) -> None:
    document, mem, path = load_document(EXAMPLES / "bracket.toml"), MemVenue(), tmp_path / "flow.jsonl"
    FlowRunner(document, mem, "br1", journal=FlowJournal(path)).step()

    with pytest.raises(ValueError, match="does not belong to flow 'br2'"):
        FlowRunner(document, mem, "br2", journal=FlowJournal(path))


def test_an_algo_node_resumes_from_its_child_log_without_duplicate_children(tmp_path: Path) -> None:
    # Arrange: a TWAP node on the engine, interrupted half way
    market = Market()
    parents = [
        {
            "id": "p",
            "client_algo_id": "resume-twap",
            "algo": "twap",
            "market": "BTCUSDT",
            "side": "buy",
            "qty": "0.4",
            "duration_s": 120,
            "slice_interval_s": 20,
            "passiveness_bps": 0,
            "end_behavior": "complete_aggressive",
        }
    ]
    document = decode_document(
        {
            "version": 1,
            "name": "r",
            "parents": parents,
            "flow": {"nodes": [{"id": "work", "type": "algo", "parent": "p"}]},
        }
    )
    journal, logs = tmp_path / "flow.jsonl", tmp_path / "children"
    first = FlowRunner(document, market.venue, "r1", RunnerStarter(market.venue, logs), FlowJournal(journal))
    for _ in range(3):
        first.step()
        market.advance(20)
    sent_before = placed(logs / "resume-twap.childlog")

    # Act: a new runner (new starter, new journal reader) on the same files and venue
    second = FlowRunner(document, market.venue, "r1", RunnerStarter(market.venue, logs), FlowJournal(journal))
    for _ in range(20):
        second.step()
        if second.finished:
            break
        market.advance(10)

    # Assert
    assert second.finished and statuses(second) == {"work": "filled"}
    assert market.tv.position("algo", "BTCUSDT") == Decimal("0.4")
    sent = placed(logs / "resume-twap.childlog")
    assert sent_before and sent_before <= sent
    states = [market.venue.order("BTCUSDT", cid) for cid in sorted(sent)]
    assert sum(state.filled_lots for state in states if state is not None) == 400


def test_resuming_an_algo_without_its_child_log_is_refused(tmp_path: Path) -> None:
    market = Market()
    parents = [
        {
            "id": "p",
            "client_algo_id": "no-log",
            "algo": "twap",
            "market": "BTCUSDT",
            "side": "buy",
            "qty": "0.1",
            "duration_s": 60,
        }
    ]
    document = decode_document(
        {
            "version": 1,
            "name": "r",
            "parents": parents,
            "flow": {"nodes": [{"id": "work", "type": "algo", "parent": "p"}]},
        }
    )
    journal = tmp_path / "flow.jsonl"
    FlowRunner(document, market.venue, "r2", RunnerStarter(market.venue), FlowJournal(journal)).step()

    with pytest.raises(Exception, match="no child log to resume no-log from"):
        FlowRunner(document, market.venue, "r2", RunnerStarter(market.venue), FlowJournal(journal))
