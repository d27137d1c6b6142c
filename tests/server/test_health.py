"""``/health`` and ``/ready`` as rules: liveness never depends on the venue, readiness names what is wrong.

In process (the real apps and sequencer, no socket): each test puts the venue into one state
readiness must notice (a journal that cannot be written, an engine stopped, a read model behind
or stopped, the venue stopping, a sequencer that does not answer) and checks both routes on both
listeners. Journal faults go through the writer's one-syscall seams, as in
``test_sequencer_faults.py``.
"""

from __future__ import annotations

import asyncio
import errno
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from perpx.sequencing import Sequencer
from perpx.server import health
from perpx.server.health import Readiness, ReadinessProbe

from .inprocess import ADMIN_BASE, InProcessVenue, in_process_venue
from .test_sequencer_faults import failing


@pytest.fixture
def venue(tmp_path: Path) -> Iterator[InProcessVenue]:
    with in_process_venue(tmp_path / "venue") as started:
        started.trader("someone")
        yield started


def probe(venue: InProcessVenue) -> dict[str, tuple[int, dict[str, Any]]]:
    """``/health`` and ``/ready`` on both listeners: ``{"public /ready": (status, body), ...}``."""
    answers = {}
    for listener, base in (("public", ""), ("admin", ADMIN_BASE)):
        for route in ("/health", "/ready"):
            answer = venue.client.get(f"{base}{route}")
            answers[f"{listener} {route}"] = (answer.status_code, answer.json())
    return answers


def not_ready(venue: InProcessVenue) -> list[str]:
    """The reasons ``/ready`` gives on both listeners (they must agree), checking ``/health`` stays 200."""
    answers = probe(venue)
    assert answers["public /health"] == answers["admin /health"] == (200, {"status": "alive"})
    status, body = answers["public /ready"]
    assert status == 503, body
    assert answers["admin /ready"][0] == 503
    assert body["status"] == "not ready"
    reasons: list[str] = body["reasons"]
    return reasons


def test_ready_when_serving_and_every_read_model_is_caught_up(venue: InProcessVenue) -> None:
    # Act
    answers = probe(venue)
    # Assert
    last_seq = venue.ctx.seq.last_seq
    assert (
        answers["public /ready"] == answers["admin /ready"] == (200, {"status": "ready", "lastSeq": last_seq})
    )
    assert last_seq >= 3  # clock, account, deposit


def test_ready_is_503_while_the_journal_is_not_writable_and_200_once_a_write_succeeds(
    venue: InProcessVenue,
) -> None:
    # Arrange
    writer = venue.ctx.seq.store.writer
    writer._write_some = failing(1, errno.ENOSPC, writer._write_some)  # type: ignore[method-assign]
    assert venue.admin("POST", "/accounts", {"name": "refused"}).status_code == 503
    # Act
    reasons = not_ready(venue)
    written = venue.admin("POST", "/accounts", {"name": "written"})
    # Assert
    [reason] = reasons
    assert reason.startswith("the journal is not writable: ") and "No space left on device" in reason
    assert written.status_code == 200, written.text
    assert venue.client.get("/ready").status_code == 200


def test_ready_is_503_with_the_reason_when_the_engine_stopped(venue: InProcessVenue) -> None:
    # Arrange: a failed write that cannot be undone stops the engine
    writer = venue.ctx.seq.store.writer
    writer._fsync = failing(1, errno.EIO, writer._fsync)  # type: ignore[method-assign]
    writer._truncate = failing(1, errno.EIO, writer._truncate)  # type: ignore[method-assign]
    assert venue.admin("POST", "/accounts", {"name": "unknown"}).status_code == 503
    # Act
    reasons = not_ready(venue)
    # Assert
    [reason] = reasons
    assert reason.startswith("the engine stopped: ") and "restart the venue" in reason


def test_ready_is_503_while_a_read_model_is_behind(
    venue: InProcessVenue, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange
    last_seq = venue.ctx.seq.last_seq
    monkeypatch.setattr(venue.ctx.components.readmodel, "resume_seq", lambda: last_seq - 2)
    # Act
    reasons = not_ready(venue)
    # Assert
    assert reasons == [
        f"read model 'readmodel' is at journal record {last_seq - 2}, the journal at {last_seq}"
    ]


def test_ready_is_503_when_a_read_model_stopped(
    venue: InProcessVenue, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange
    monkeypatch.setattr(venue.ctx.components.readmodel, "failure", "OperationalError: disk I/O error")
    # Act
    reasons = not_ready(venue)
    # Assert
    assert reasons == [
        "read model 'readmodel' stopped: OperationalError: disk I/O error; restart the venue to catch it up"
    ]


def test_ready_is_503_while_the_venue_stops(venue: InProcessVenue) -> None:
    # Arrange
    venue.ctx.serving = False
    try:
        # Act
        reasons = not_ready(venue)
    finally:
        venue.ctx.serving = True
    # Assert
    assert reasons == ["the venue is starting or stopping"]


class Blocker:
    """A sequencer driver that holds the sequencer thread until released (a stuck batch)."""

    def __init__(self) -> None:
        self.holding = threading.Event()
        self.release = threading.Event()
        self.ran = False

    def due_ns(self) -> int:
        return 2**63 - 1 if self.ran else 0

    def run(self, sequencer: Sequencer, wall_ns: int) -> None:
        self.ran = True
        self.holding.set()
        self.release.wait(10)


def test_ready_is_503_when_the_sequencer_does_not_answer(
    venue: InProcessVenue, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange
    monkeypatch.setattr(health, "QUERY_TIMEOUT_S", 0.2)
    blocker = Blocker()
    venue.ctx.seq.add_driver(blocker)
    assert blocker.holding.wait(10)
    try:
        # Act
        reasons = not_ready(venue)
    finally:
        blocker.release.set()
    # Assert
    assert reasons == [
        "the sequencer did not answer: Internal error; the venue did not answer the query in time."
    ]
    assert venue.client.get("/ready").status_code == 200


def test_concurrent_ready_checks_share_one_sequencer_query(monkeypatch: pytest.MonkeyPatch) -> None:
    # Arrange
    checks = 0

    async def readiness(ctx: object) -> Readiness:
        nonlocal checks
        checks += 1
        await asyncio.sleep(0.05)
        return Readiness(7)

    monkeypatch.setattr(health, "readiness", readiness)
    shared = ReadinessProbe(None)  # type: ignore[arg-type]

    async def main() -> list[Readiness]:
        first = await asyncio.gather(*(shared.check() for _ in range(20)))
        return [*first, await shared.check()]

    # Act
    answers = asyncio.run(main())
    # Assert
    assert checks == 2  # twenty at once share one; the one after them runs its own
    assert {a.last_seq for a in answers} == {7}
