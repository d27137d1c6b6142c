"""The demo session: deterministic per seed, and it runs on a priced venue through spot quotes."""

from __future__ import annotations

from pathlib import Path

from perpx.engine.config import DEFAULT_CONFIG_TOML
from perpx.engine.events import Event, IndexUpdated, OrderRejected
from perpx.engine.values import MarketId
from perpx.journal.store import open_store, recover
from perpx.sim.demo import DemoSession

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "venue.toml"


def test_the_same_seed_gives_the_same_state_hash_in_two_sessions(tmp_path: Path) -> None:
    hashes = []
    for name in ("one", "two"):
        store, _ = open_store(tmp_path / name, DEFAULT_CONFIG_TOML)
        hashes.append(DemoSession(store, seed=5).run(15, check_every=5).state_hash)
        store.close()
    assert hashes[0] == hashes[1]


def test_on_a_priced_venue_the_demo_feeds_quotes_and_trades_without_rejections(tmp_path: Path) -> None:
    # Arrange
    store, _ = open_store(tmp_path, EXAMPLE.read_text())
    seen: list[Event] = []
    session = DemoSession(store, seed=3)
    session.sequencer.add_listener(lambda batch: seen.extend(e for applied in batch for e in applied.events))
    # Act
    summary = session.run(20, check_every=5)
    store.close()
    # Assert: the index is built from the sources, orders are never refused, the journal replays
    assert any(isinstance(e, IndexUpdated) for e in seen)
    assert not [e for e in seen if isinstance(e, OrderRejected)]
    assert summary.trades > 0
    assert store.engine.marks[MarketId("BTCUSDT")] > 0
    engine, _ = recover(tmp_path, store.config)
    assert engine.marks == store.engine.marks
