"""``perpx serve --demo``: the risk lab's agents and spot sources make a live market, and survive restarts.

In-process tests drive the demo on a fake wall clock (no thread, no socket): fast and exact. The
end-to-end test starts ``perpx serve --demo`` as a user does, reads the market through public REST,
runs the printed ccxt snippet, and restarts the server on the same data directory.
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from perpx.engine.commands import OrderType, PlaceOrder
from perpx.engine.engine import Engine
from perpx.engine.events import OrderAccepted
from perpx.engine.state import state_hash
from perpx.engine.values import MarketId, Side
from perpx.journal.store import CONFIG_FILE, read_config, recover
from perpx.server import demo
from perpx.server.app import build_components
from perpx.server.context import ServerContext, open_venue
from perpx.server.demo import AGENT_PREFIX, TRADER_NAME, DemoCast, DemoDriver, attach_demo
from perpx.server.serve import demo_config_text
from perpx.sim.agents import AGENT_KINDS
from tests.server.harness import ServerProcess, Trader

START_NS = 1_767_225_600_000_000_000
MARKETS = ("BTCUSDT", "ETHUSDT")


class FakeWall:
    """A wall clock the test moves by hand."""

    def __init__(self, now_ns: int = START_NS) -> None:
        self.now_ns = now_ns

    def __call__(self) -> int:
        return self.now_ns


@contextlib.contextmanager
def demo_venue(data_dir: Path, wall: FakeWall, seed: int = 7) -> Iterator[tuple[ServerContext, DemoDriver]]:
    """The demo venue on ``data_dir`` with the demo attached, its sequencer on ``wall`` (not started)."""
    text = None if (data_dir / CONFIG_FILE).exists() else demo_config_text()
    ctx = open_venue(data_dir, text, build_components)
    ctx.seq.wall_ns = wall
    try:
        yield ctx, attach_demo(ctx, seed=seed)
    finally:
        ctx.close()


def drive(
    ctx: ServerContext, driver: DemoDriver, wall: FakeWall, seconds: float, step_s: float = 0.1
) -> None:
    """Move the fake wall clock and run the driver whenever it is due, as the sequencer thread does."""
    end_ns = wall.now_ns + int(seconds * 1e9)
    while wall.now_ns < end_ns:
        wall.now_ns += int(step_s * 1e9)
        if driver.due_ns() <= wall.now_ns:
            driver.run(ctx.seq.core, wall.now_ns)


def agent_orders(engine: Engine) -> set[tuple[int, str, int]]:
    """``(account, market, order id)`` of every open order of a demo agent (not the demo trader)."""
    return {
        (account_id, market, order_id)
        for account_id, account in engine.accounts.items()
        if account.name.startswith(AGENT_PREFIX) and account.name != TRADER_NAME
        for market, position in account.positions.items()
        for order_id in position.open_orders
    }


# ---------------------------------------------------------------------------------------------- the cast


def test_embedded_cast_gives_each_market_every_kind_of_trader() -> None:
    # Arrange
    cast = DemoCast.embedded()

    # Act
    rows = cast.agent_rows([MarketId(m) for m in MARKETS])

    # Assert
    for market in MARKETS:
        kinds = {row["kind"] for row in rows if row["markets"] == [market]}
        assert kinds == {"market_maker", "noise_trader", "momentum_trader", "leveraged_taker", "funding_arb"}
        assert kinds <= set(AGENT_KINDS)
    assert all(row["name"].startswith(AGENT_PREFIX) for row in rows)
    makers = [r for r in rows if r["kind"] == "market_maker" and r["markets"] == ["BTCUSDT"]]
    assert makers[0]["name"] == "demo-mm-BTCUSDT" and 2 <= makers[0]["count"] <= 3


def test_demo_cast_gives_each_index_source_a_row_and_resumes_prices_from_the_venue(tmp_path: Path) -> None:
    # Arrange
    wall = FakeWall()
    with demo_venue(tmp_path / "venue", wall) as (ctx, driver):
        engine = ctx.seq.engine
        fresh = driver.cast.cast(engine)
        drive(ctx, driver, wall, 5)

        # Act
        resumed = driver.cast.cast(engine)

    # Assert
    for name in MARKETS:
        market = MarketId(name)
        index = engine.specs[market].index
        assert index is not None
        assert [s["name"] for s in fresh.sources if s["market"] == market] == list(index.weights)
        assert fresh.prices[market]["start"] == DemoCast.embedded().prices[market]["start"]
        assert resumed.prices[market]["start"] == str(engine.indexes[market] * engine.specs[market].tick_size)
    assert fresh.agents == DemoCast.embedded().agent_rows([MarketId(m) for m in MARKETS])


def test_the_demo_reaches_the_simulator_only_through_its_public_package() -> None:
    # Arrange
    tree = ast.parse(Path(demo.__file__).read_text())

    # Act
    sim_imports = [
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("perpx.sim")
    ]
    plain = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]

    # Assert
    assert sim_imports == ["perpx.sim"]
    assert not [name for name in plain if name.startswith("perpx.sim")]


# ---------------------------------------------------------------------------------------------- in process


def test_demo_after_half_a_minute_has_two_sided_books_trades_and_prices(tmp_path: Path) -> None:
    # Arrange
    wall = FakeWall()
    with demo_venue(tmp_path / "venue", wall) as (ctx, driver):
        # Act
        drive(ctx, driver, wall, 30)

        # Assert
        engine = ctx.seq.engine
        for name in MARKETS:
            market = MarketId(name)
            assert engine.books[market].bids.best_price() is not None, name
            assert engine.books[market].asks.best_price() is not None, name
            assert engine.indexes.get(market) and engine.marks.get(market), name
        assert driver.stats.trades > 10
        assert all(len(accounts) == 1 for accounts in driver.agent_accounts.values())


def test_demo_with_the_same_seed_and_clock_reaches_the_same_state(tmp_path: Path) -> None:
    # Arrange
    hashes = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        wall = FakeWall()
        with demo_venue(tmp_path / name, wall, seed=seed) as (ctx, driver):
            # Act
            drive(ctx, driver, wall, 10)
            hashes.append(state_hash(ctx.seq.engine))

    # Assert
    assert hashes[0] == hashes[1] != hashes[2]


def test_demo_journal_replays_to_the_live_state_hash(tmp_path: Path) -> None:
    # Arrange
    wall = FakeWall()
    data_dir = tmp_path / "venue"
    with demo_venue(data_dir, wall) as (ctx, driver):
        drive(ctx, driver, wall, 15)

        # Act
        live = state_hash(ctx.seq.engine)
        _, report = recover(data_dir, read_config(data_dir), use_snapshots=False)

    # Assert
    assert report.state_hash == live


def test_restart_cancels_previous_agent_orders_reuses_accounts_and_keeps_trader(tmp_path: Path) -> None:
    # Arrange: a first run, with a resting order of the demo trader far below the market
    data_dir = tmp_path / "venue"
    wall = FakeWall()
    with demo_venue(data_dir, wall) as (ctx, driver):
        drive(ctx, driver, wall, 10)
        key = driver.trader_key
        assert key is not None
        trader_order = PlaceOrder(
            ts_ns=ctx.seq.stamp(),
            account_id=key.account_id,
            market=MarketId("BTCUSDT"),
            side=Side.BUY,
            order_type=OrderType.LIMIT,
            qty_lots=10,
            price_ticks=580_000,
        )
        placed = ctx.seq.apply_now([trader_order])[0].events
        assert isinstance(placed[0], OrderAccepted), placed
        stale = agent_orders(ctx.seq.engine)
        accounts_before = len(ctx.seq.engine.accounts)
    assert stale

    # Act: restart on the same directory a minute later
    wall.now_ns += 60 * 10**9
    with demo_venue(data_dir, wall) as (ctx, again):
        engine = ctx.seq.engine
        left = agent_orders(engine)

        # Assert
        assert again.cancelled_orders == len(stale)
        assert not left & stale
        assert again.reused_accounts == len(again.agent_accounts)
        assert len(engine.accounts) == accounts_before
        assert again.trader_key == key
        trader_position = engine.accounts[key.account_id].positions[MarketId("BTCUSDT")]
        assert len(trader_position.open_orders) == 1
        drive(ctx, again, wall, 5)
        assert agent_orders(engine)


# ---------------------------------------------------------------------------------------------- end to end


def _poll(until_s: float, check: Any) -> Any:
    deadline = time.monotonic() + until_s
    while True:
        try:
            result = check()
        except (AssertionError, KeyError, IndexError, ValueError):
            if time.monotonic() > deadline:
                raise
        else:
            return result
        time.sleep(0.25)


def _live_market(server: ServerProcess) -> None:
    for symbol in MARKETS:
        depth = server.public("/fapi/v1/depth", symbol=symbol, limit=5).json()
        assert depth["bids"] and depth["asks"], (symbol, depth)
        assert server.public("/fapi/v1/trades", symbol=symbol, limit=5).json(), symbol
        premium = server.public("/fapi/v1/premiumIndex", symbol=symbol).json()
        assert float(premium["markPrice"]) > 0 and float(premium["indexPrice"]) > 0, premium


def _snippet(log: str) -> str:
    """The last printed ccxt snippet's code, dedented."""
    block = log[log.rindex("    from perpx.client import connect") :]
    code = block[: block.index("    # ccxt.pro")]
    return textwrap.dedent(code)


def _stale_orders(data_dir: Path) -> set[tuple[int, str, int]]:
    engine, _ = recover(data_dir, read_config(data_dir))
    return agent_orders(engine)


@pytest.fixture
def demo_dir(tmp_path: Path) -> Path:
    return tmp_path / "demo"


def test_serve_demo_trades_live_prints_a_working_snippet_and_restarts_cleanly(demo_dir: Path) -> None:
    # Arrange, Act: a fresh demo venue
    server = ServerProcess(demo_dir, config_text=None, demo=True).start()
    try:
        _poll(15, lambda: _live_market(server))
        log = server.log()
        code = _snippet(log)
        connected = re.search(r'connect\("([^"]+)", "([^"]+)", "([^"]+)"\)', code)
        account = re.search(r"\(account (\d+), ", log)
        assert connected and account
        assert len(code.strip().splitlines()) == 3
        assert connected.group(1) == server.base
        assert f"WebSocket {server.ws_base}" in log
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(code, "snippet", "exec"), {})  # the newcomer's first command, as printed
        last, balance = printed.getvalue().split(" ", 1)
        assert float(last) > 0 and "100000" in balance
    finally:
        server.stop()
    stale = _stale_orders(demo_dir)
    assert stale

    # Act: restart on the same directory
    trader = Trader(int(account.group(1)), connected.group(2), connected.group(3))
    again = ServerProcess(demo_dir, config_text=None, demo=True).start()
    try:
        # Assert: the old key still works and the old run's quotes are gone
        response = again.signed("GET", "/fapi/v2/balance", trader)
        assert response.status_code == 200, response.text
        assert f"cancelled {len(stale)} resting orders" in again.log()
        _poll(10, lambda: _live_market(again))
    finally:
        again.stop()
    assert not _stale_orders(demo_dir) & stale
