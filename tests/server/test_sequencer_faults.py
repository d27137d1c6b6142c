"""The sequencer tells a refused command (not applied, safe to retry) from an engine failure (stop).

Rules:

* a command no journal record can hold is refused alone, before the journal, and the rest of
  its batch is journaled and applied;
* a journal that cannot be written refuses the batch as "not applied", reports
  ``journal_not_writable`` with the errno text, keeps answering reads, and resumes by itself
  with the first write that succeeds;
* only an engine failure, or a failed write that could not be undone, stops the sequencer.

Faults are injected through the journal writer's one-syscall seams (see
``tests/journal/test_journal_write_faults.py``).
"""

from __future__ import annotations

import asyncio
import errno
import os
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from perpx.engine.commands import Command, CreateAccount, Deposit
from perpx.engine.config import DEFAULT_CONFIG_TOML
from perpx.engine.state import state_hash
from perpx.engine.values import AccountId, AssetId, TxId
from perpx.journal.journal import scan
from perpx.journal.store import JOURNAL_FILE, open_store
from perpx.server.errors import ApiError
from perpx.server.sequencer import Applied, RequestSequencer, SequencerState

from .inprocess import in_process_venue

USDT = AssetId("USDT")
ORDER = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.01", "price": "30000"}


def failing(times: int, code: int, real: Callable[..., Any]) -> Callable[..., Any]:
    """``real`` that raises ``OSError(code)`` on its first ``times`` calls (``times < 0``: always)."""
    left = [times]

    def call(*args: Any) -> Any:
        if left[0] != 0:
            left[0] -= 1
            raise OSError(code, os.strerror(code))
        return real(*args)

    return call


def deposit(amount_atoms: int, tx: str) -> Callable[[int], Command]:
    return lambda ts: Deposit(
        ts_ns=ts, account_id=AccountId(1), asset=USDT, amount_atoms=amount_atoms, tx_id=TxId(tx)
    )


def create(name: str) -> Callable[[int], Command]:
    return lambda ts: CreateAccount(ts_ns=ts, name=name)


def run(
    tmp_path: Path, scenario: Callable[[RequestSequencer], Coroutine[Any, Any, None]], **options: Any
) -> RequestSequencer:
    """Open a store in ``tmp_path``, run ``scenario`` against its sequencer, stop it."""

    async def main() -> RequestSequencer:
        store, _ = open_store(tmp_path, DEFAULT_CONFIG_TOML)
        sequencer = RequestSequencer(store, manual_clock=options.pop("manual_clock", True), **options)
        try:
            await scenario(sequencer)
        finally:
            await sequencer.shutdown(snapshot=False)
        return sequencer

    return asyncio.run(main())


async def one_batch(sequencer: RequestSequencer, builders: list[Callable[[int], Command]]) -> list[Any]:
    """Queue every builder before the sequencer thread starts, so they form one batch; their outcomes."""
    tasks = [asyncio.create_task(sequencer.submit(build)) for build in builders]
    await asyncio.sleep(0)
    sequencer.start(asyncio.get_running_loop())
    return list(await asyncio.gather(*tasks, return_exceptions=True))


def refusal(outcome: Any) -> tuple[int, int, str]:
    assert isinstance(outcome, ApiError), outcome
    return outcome.status, outcome.code, outcome.msg


def test_unencodable_command_is_refused_alone_and_rest_of_its_batch_proceeds(tmp_path: Path) -> None:
    outcomes: list[Any] = []

    async def scenario(sequencer: RequestSequencer) -> None:
        outcomes.extend(
            await one_batch(
                sequencer,
                [create("a"), deposit(10**36, "huge"), create("b"), create("\ud800"), deposit(5, "ok")],
            )
        )
        outcomes.append(sequencer.status())

    # Act
    run(tmp_path, scenario)
    # Assert: the three good commands were journaled together, with consecutive seqs
    good = [outcome for outcome in outcomes if isinstance(outcome, Applied)]
    assert [type(a.command).__name__ for a in good] == ["CreateAccount", "CreateAccount", "Deposit"]
    assert [a.seq for a in good] == [good[0].seq, good[0].seq + 1, good[0].seq + 2]
    huge, surrogate = refusal(outcomes[1]), refusal(outcomes[3])
    assert huge[:2] == (400, -1130) and "64-bit" in huge[2] and "not applied" in huge[2]
    assert surrogate[:2] == (400, -1130) and "UTF-8" in surrogate[2]
    assert outcomes[-1].state is SequencerState.RUNNING
    journaled = [r.command for r in scan(tmp_path / JOURNAL_FILE).records]
    assert [a.command for a in good] == journaled[-3:]


def test_builder_that_raises_is_refused_alone_and_sequencer_keeps_serving(tmp_path: Path) -> None:
    outcomes: list[Any] = []

    def broken(ts: int) -> Command:
        raise KeyError("a bug in a handler's builder")

    async def scenario(sequencer: RequestSequencer) -> None:
        outcomes.extend(await one_batch(sequencer, [create("a"), broken, create("b")]))
        outcomes.append(await sequencer.submit(create("c")))
        outcomes.append(sequencer.status())

    # Act
    run(tmp_path, scenario)
    # Assert
    assert refusal(outcomes[1])[:2] == (500, -1000) and "not applied" in refusal(outcomes[1])[2]
    assert all(isinstance(outcomes[i], Applied) for i in (0, 2, 3))
    assert outcomes[-1].state is SequencerState.RUNNING


def test_full_journal_refuses_as_not_applied_answers_reads_and_resumes_when_space_returns(
    tmp_path: Path,
) -> None:
    seen: dict[str, Any] = {}

    async def scenario(sequencer: RequestSequencer) -> None:
        sequencer.start(asyncio.get_running_loop())
        await sequencer.submit(create("a"))
        writer = sequencer.store.writer
        seen["hash"] = await sequencer.query(state_hash)
        writer._write_some = failing(2, errno.ENOSPC, writer._write_some)  # type: ignore[method-assign]
        for tx in ("1", "2"):
            try:
                await sequencer.submit(deposit(5, tx))
            except ApiError as exc:
                seen.setdefault("refusals", []).append(exc)
        seen["status"] = sequencer.status()
        seen["read"] = await sequencer.query(state_hash)
        seen["applied"] = await sequencer.submit(deposit(5, "3"))
        seen["after"] = sequencer.status()

    # Act
    run(tmp_path, scenario)
    # Assert: both refusals say "not applied" with the errno text; reads go on; the third is applied
    for refused in seen["refusals"]:
        status, code, msg = refusal(refused)
        assert (status, code) == (503, -1001)
        assert "[Errno 28] No space left on device" in msg and "not applied" in msg
    assert seen["status"].state is SequencerState.JOURNAL_NOT_WRITABLE and not seen["status"].ready
    assert seen["status"].reason is not None and "No space left on device" in seen["status"].reason
    assert seen["read"] == seen["hash"]
    assert isinstance(seen["applied"], Applied)
    assert seen["after"].state is SequencerState.RUNNING and seen["after"].ready
    deposits = [r.command for r in scan(tmp_path / JOURNAL_FILE).records if isinstance(r.command, Deposit)]
    assert [d.tx_id for d in deposits] == ["3"]


def test_journal_that_cannot_be_undone_stops_the_engine_with_how_to_recover(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    async def scenario(sequencer: RequestSequencer) -> None:
        sequencer.start(asyncio.get_running_loop())
        writer = sequencer.store.writer
        writer._fsync = failing(1, errno.EIO, writer._fsync)  # type: ignore[method-assign]
        writer._truncate = failing(1, errno.EIO, writer._truncate)  # type: ignore[method-assign]
        for name in ("a", "b"):
            try:
                await sequencer.submit(create(name))
            except ApiError as exc:
                seen[name] = exc
        seen["status"] = sequencer.status()

    # Act
    run(tmp_path, scenario)
    # Assert: the outcome of the first is unknown; every later request is refused; the reason says what to do
    assert refusal(seen["a"])[:2] == (503, -1007)
    later = refusal(seen["b"])
    assert later[:2] == (503, -1001) and "the engine stopped" in later[2]
    status = seen["status"]
    assert status.state is SequencerState.STOPPED
    assert "Input/output error" in status.reason and "restart the venue" in status.reason


def test_engine_failure_stops_the_sequencer_and_the_status_says_why(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def explode(command: Command) -> Any:
        raise AssertionError("broken invariant")

    async def scenario(sequencer: RequestSequencer) -> None:
        sequencer.start(asyncio.get_running_loop())
        # the handler table, not the method: a compiled engine's methods cannot be replaced
        sequencer.store.engine._handlers[CreateAccount] = explode
        try:
            await sequencer.submit(create("a"))
        except ApiError as exc:
            seen["error"] = exc
        seen["status"] = sequencer.status()

    run(tmp_path, scenario)
    assert refusal(seen["error"])[:2] == (503, -1007)
    assert seen["status"].state is SequencerState.STOPPED and "broken invariant" in seen["status"].reason


def test_status_is_starting_then_running_then_stopped_after_a_shutdown(tmp_path: Path) -> None:
    seen: list[SequencerState] = []

    async def scenario(sequencer: RequestSequencer) -> None:
        seen.append(sequencer.status().state)
        sequencer.start(asyncio.get_running_loop())
        seen.append(sequencer.status().state)

    sequencer = run(tmp_path, scenario)
    seen.append(sequencer.status().state)
    assert seen == [SequencerState.STARTING, SequencerState.RUNNING, SequencerState.STOPPED]
    assert sequencer.status().reason == "the venue was shut down" and not sequencer.status().ready


def test_failed_idle_tick_waits_a_tick_before_trying_again(tmp_path: Path) -> None:
    # Arrange: a wall-clock venue whose clock the test moves; the journal is full from the first tick on
    wall = [1_700_000_000_000_000_000]
    attempts: list[int] = []
    seen: dict[str, Any] = {}

    async def scenario(sequencer: RequestSequencer) -> None:
        sequencer.start(asyncio.get_running_loop())
        writer = sequencer.store.writer
        full = failing(-1, errno.ENOSPC, writer._write_some)

        def counted(data: memoryview, offset: int) -> int:
            attempts.append(len(data))
            written: int = full(data, offset)
            return written

        writer._write_some = counted  # type: ignore[method-assign]
        wall[0] += 2_000_000_000
        deadline = time.monotonic() + 30
        while sequencer.status().state is SequencerState.RUNNING and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for _ in range(5):  # each query is one more turn of the sequencer loop
            seen["hash"] = await sequencer.query(state_hash)
        seen["status"] = sequencer.status()

    # Act
    run(tmp_path, scenario, manual_clock=False, tick_ms=1000, wall_ns=lambda: wall[0])
    # Assert: one failed tick, no retry while the clock stands still, and the thread still answers
    assert seen["status"].state is SequencerState.JOURNAL_NOT_WRITABLE
    assert len(attempts) == 1
    assert seen["hash"]


# ---------------------------------------------------------------------- through HTTP


def test_disk_full_while_running_refuses_orders_keeps_reads_and_resumes_by_itself(tmp_path: Path) -> None:
    with in_process_venue(tmp_path / "venue") as venue:
        # Arrange
        trader = venue.trader()
        venue.mark("BTCUSDT", "30000")
        venue.ok("POST", "/fapi/v1/order", trader, ORDER)
        sequencer = venue.ctx.seq
        before = state_hash(sequencer.engine)
        writer = sequencer.store.writer
        writer._write_some = failing(3, errno.ENOSPC, writer._write_some)  # type: ignore[method-assign]
        # Act: three refused commands (an order, a cancel-all, an admin deposit)
        refused = [
            venue.signed("POST", "/fapi/v1/order", trader, ORDER),
            venue.signed("DELETE", "/fapi/v1/allOpenOrders", trader, {"symbol": "BTCUSDT"}),
            venue.admin(
                "POST",
                "/deposits",
                {"accountId": trader.account_id, "asset": "USDT", "amount": "1", "txId": "disk-full"},
            ),
        ]
        status = sequencer.status()
        reads = [
            venue.signed("GET", "/fapi/v1/openOrders", trader, {"symbol": "BTCUSDT"}),
            venue.signed("GET", "/fapi/v2/account", trader),
            venue.client.get("/fapi/v1/depth", params={"symbol": "BTCUSDT"}),
        ]
        unchanged = state_hash(sequencer.engine)
        again = venue.signed("POST", "/fapi/v1/order", trader, ORDER)
        # Assert
        for answer in refused:
            assert answer.status_code == 503, answer.text
            assert answer.json()["code"] == -1001 and "not applied" in answer.json()["msg"]
            assert "No space left on device" in answer.json()["msg"]
        assert status.state is SequencerState.JOURNAL_NOT_WRITABLE
        assert [r.status_code for r in reads] == [200, 200, 200]
        assert len(reads[0].json()) == 1
        assert unchanged == before
        assert again.status_code == 200, again.text
        assert sequencer.status().state is SequencerState.RUNNING
        final = state_hash(sequencer.engine)
    # the journal holds exactly what was acknowledged: a restart rebuilds the same state
    store, report = open_store(tmp_path / "venue")
    assert report.problems == () and state_hash(store.engine) == final
    store.close(snapshot_on_close=False)


def test_admin_state_answers_while_the_journal_is_full(tmp_path: Path) -> None:
    with in_process_venue(tmp_path / "venue") as venue:
        writer = venue.ctx.seq.store.writer
        writer._write_some = failing(-1, errno.ENOSPC, writer._write_some)  # type: ignore[method-assign]
        refused = venue.admin("POST", "/accounts", {"name": "late"})
        state = venue.admin("GET", "/state")
        assert refused.status_code == 503 and refused.json()["code"] == -1001
        assert state.status_code == 200 and state.json()["stateHash"] == state_hash(venue.ctx.seq.engine)


@pytest.mark.parametrize("code", [errno.EROFS, errno.EIO])
def test_read_only_or_failing_disk_is_reported_with_its_errno_text(tmp_path: Path, code: int) -> None:
    seen: dict[str, Any] = {}

    async def scenario(sequencer: RequestSequencer) -> None:
        sequencer.start(asyncio.get_running_loop())
        writer = sequencer.store.writer
        writer._write_some = failing(1, code, writer._write_some)  # type: ignore[method-assign]
        try:
            await sequencer.submit(create("a"))
        except ApiError as exc:
            seen["error"] = exc
        seen["status"] = sequencer.status()

    run(tmp_path, scenario)
    assert refusal(seen["error"])[:2] == (503, -1001)
    assert os.strerror(code) in seen["status"].reason
