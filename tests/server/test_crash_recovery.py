"""Rule: an order the client saw acknowledged survives a crash, and nothing the client did not send appears.

The server is killed with SIGKILL while clients are placing orders. After a
restart on the same data directory, every acknowledged order is there with its
id, every order the venue holds is either acknowledged or was in flight (sent,
no answer) when the process died, and a new order gets an id nobody holds.

On a priced market (wall clock, index sources fed by an operator, premium and
funding samples accruing, liquidations under way) the restart also recovers
exactly the state the journal gives: ``perpx replay`` (read-only: no file
changes) and the restarted server's recovery banner print the same record and
state hash, and the liquidation read model holds exactly the journal's
liquidations. A few trials run in CI; ``--run-stress`` runs many more.
"""

from __future__ import annotations

import random
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from perpx.engine.commands import Command
from perpx.engine.events import Event, LiquidationExplained
from perpx.journal.store import JOURNAL_FILE, read_config, recover

from ..journal.files import fingerprint, flip, record_offsets
from .harness import ADMIN_TOKEN, PRICED_CONFIG, ServerProcess, Trader

CLIENTS = 3
CI_TRIALS = 2
STRESS_TRIALS = 25


@dataclass
class Orders:
    """What the clients know: acknowledged orders (client id -> order id) and requests left unanswered."""

    acked: dict[str, int] = field(default_factory=dict)
    in_flight: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)


def _place_until_killed(
    server: ServerProcess, trader: Trader, client: int, orders: Orders, base: int
) -> None:
    n = 0
    while not orders.stop.is_set():
        n += 1
        client_id = f"crash-{client}-{n}"
        price = str(base + (n % 50) * 10)
        with orders.lock:
            orders.in_flight.add(client_id)
        try:
            response = server.signed(
                "POST",
                "/fapi/v1/order",
                trader,
                {
                    "symbol": "BTCUSDT",
                    "side": "BUY",
                    "type": "LIMIT",
                    "timeInForce": "GTC",
                    "quantity": "0.002",
                    "price": price,
                    "newClientOrderId": client_id,
                },
            )
        except httpx.HTTPError:
            return  # the server died with this request in flight
        with orders.lock:
            orders.in_flight.discard(client_id)
            if response.status_code == 200:
                orders.acked[client_id] = int(response.json()["orderId"])
            elif response.status_code != 400:
                return


def _start_clients(
    server: ServerProcess, traders: list[Trader], orders: Orders, base: int
) -> list[threading.Thread]:
    threads = [
        threading.Thread(target=_place_until_killed, args=(server, trader, c, orders, base))
        for c, trader in enumerate(traders)
    ]
    for thread in threads:
        thread.start()
    return threads


def _held(server: ServerProcess, trader: Trader) -> dict[str, int]:
    """Every order of the account the venue knows, open or closed (client id -> order id)."""
    response = server.signed("GET", "/fapi/v1/allOrders", trader, {"symbol": "BTCUSDT", "limit": 1000})
    assert response.status_code == 200, response.text
    return {o["clientOrderId"]: int(o["orderId"]) for o in response.json()}


def _assert_acked_back_and_no_phantoms(held: dict[str, int], orders: Orders) -> None:
    missing = {cid: oid for cid, oid in orders.acked.items() if held.get(cid) != oid}
    assert missing == {}, f"acknowledged orders lost or changed by the crash: {missing}"
    unexplained = set(held) - set(orders.acked) - orders.in_flight
    assert unexplained == set(), f"orders the client never saw acknowledged nor had in flight: {unexplained}"


def _new_order_id(server: ServerProcess, trader: Trader, price: str) -> int:
    return _new_order_id_at(server, trader, price, "after-restart")


def _new_order_id_at(server: ServerProcess, trader: Trader, price: str, client_id: str) -> int:
    params = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.002",
        "price": price,
        "newClientOrderId": client_id,
    }
    response = server.signed("POST", "/fapi/v1/order", trader, params)
    assert response.status_code == 200, response.text
    return int(response.json()["orderId"])


def _replay(data: Path) -> tuple[int, str]:
    """``perpx replay DIR`` in a fresh process: (last record, state hash); it must change no file."""
    before = fingerprint(data)
    out = subprocess.run(
        [sys.executable, "-m", "perpx", "replay", str(data)], capture_output=True, text=True, check=True
    ).stdout
    assert fingerprint(data) == before, "perpx replay changed the data directory"
    records = int(re.findall(r"^records\s+(\d+)$", out, re.MULTILINE)[-1])
    return records, re.findall(r"^state hash\s+([0-9a-f]{64})$", out, re.MULTILINE)[-1]


def _recovered(server: ServerProcess) -> tuple[int, str]:
    """The last start's recovery banner: (last record, state hash)."""
    log = server.log()
    last = int(re.findall(r"perpx: recovery: replayed \d+ journal records.*; last record (\d+)", log)[-1])
    return last, re.findall(r"perpx: recovery: state hash ([0-9a-f]{64})", log)[-1]


def test_acknowledged_orders_survive_kill_9_and_nothing_else_appears(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data").start()
    try:
        marked = server.admin(
            "POST", "/marks", {"symbol": "BTCUSDT", "markPrice": "60000", "indexPrice": "60000"}
        )
        assert marked.status_code == 200, marked.text
        trader = server.trader("crash", deposit="10000000")
        orders = Orders()
        threads = _start_clients(server, [trader] * CLIENTS, orders, base=58000)
        deadline = time.monotonic() + 20
        while len(orders.acked) < 60 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.kill()
        orders.stop.set()
        for thread in threads:
            thread.join(10)
        assert len(orders.acked) >= 60, "the clients got too few acknowledgements before the kill"

        server.start()
        held = _held(server, trader)
        _assert_acked_back_and_no_phantoms(held, orders)
        assert _new_order_id(server, trader, "58000") > max(held.values())
    finally:
        server.stop()


@pytest.mark.parametrize("stop", ["kill -9", "clean stop"])
def test_mid_journal_flip_refuses_the_restart_in_one_line_and_changes_no_file(
    tmp_path: Path, stop: str
) -> None:
    # Arrange: 30 acknowledged orders, a stop, then one flipped byte in the middle record
    data = tmp_path / "data"
    server = ServerProcess(data).start()
    try:
        server.admin("POST", "/marks", {"symbol": "BTCUSDT", "markPrice": "60000", "indexPrice": "60000"})
        trader = server.trader("t", deposit="10000000")
        for n in range(30):
            _new_order_id_at(server, trader, f"{58000 + 10 * n}", f"base-{n}")
    finally:
        server.stop(signal.SIGKILL if stop == "kill -9" else signal.SIGTERM)
    offsets = record_offsets(data / JOURNAL_FILE)
    middle = len(offsets) // 2
    flip(data / JOURNAL_FILE, offsets[middle - 1][0] + 12)
    before = fingerprint(data)
    # Act
    done = subprocess.run(
        [sys.executable, "-m", "perpx", "serve", "--data", str(data), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Assert
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert f"is corrupt at record {middle}, byte {offsets[middle - 1][0]}" in done.stderr
    assert "Refused; no file was changed" in done.stderr and "perpx journal repair" in done.stderr
    assert fingerprint(data) == before


# ---------------------------------------------------------------------------- a priced market


def _quote(server: ServerProcess, price_ticks: int) -> None:
    """One quote from each of the market's index sources (BTCUSDT: binance, okx, bybit); 0.1 per tick."""
    for source in ("binance", "okx", "bybit"):
        answer = server.admin(
            "POST", "/prices", {"symbol": "BTCUSDT", "source": source, "price": f"{price_ticks / 10:.1f}"}
        )
        assert answer.status_code == 200, answer.text


def _feed_until_stopped(server: ServerProcess, rng: random.Random, orders: Orders, start_ticks: int) -> None:
    """The operator's spot feed: the index walks down through the victims' liquidation prices and back."""
    ticks, step = start_ticks, -200
    while not orders.stop.is_set():
        ticks += step + rng.randint(-50, 50)
        if ticks < 588_000 or ticks > 600_000:
            step = -step
        try:
            _quote(server, ticks)
        except (httpx.HTTPError, AssertionError):
            return  # killed mid-quote


def _positions(server: ServerProcess, trader: Trader) -> int:
    account = server.admin("GET", f"/accounts/{trader.account_id}").json()
    return len(account["positions"])


def _liquidation_seqs(server: ServerProcess, up_to: int) -> list[int]:
    """The journal records of the liquidations the admin read model holds, up to record ``up_to``."""
    answer = httpx.get(
        f"{server.admin_base}/admin/v1/liquidations",
        params={"limit": 1000},
        headers={"X-PERPX-ADMIN": ADMIN_TOKEN},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return [r["seq"] for r in answer.json()["records"] if r["seq"] <= up_to]


def _journal_liquidation_seqs(data: Path) -> list[int]:
    """The records whose events hold a liquidation, replaying the journal read-only."""
    seqs: list[int] = []

    def observe(seq: int, _command: Command, events: list[Event]) -> None:
        seqs.extend(seq for e in events if isinstance(e, LiquidationExplained))

    recover(data, read_config(data), use_snapshots=False, observe=observe)
    return seqs


def _priced_trial(directory: Path, seed: int) -> None:
    """One kill -9 on a wall-clock, index-priced market with liquidations under way; see the module doc."""
    rng = random.Random(seed)
    server = ServerProcess(directory, config_text=PRICED_CONFIG, extra_args=("--tick-ms", "50")).start()
    try:
        _quote(server, 600_000)
        maker = server.trader("maker", deposit="10000000")
        victims = [server.trader(f"victim-{i}", deposit=str(650 + 150 * i)) for i in range(3)]
        for i, victim in enumerate(victims):
            lever = server.signed("POST", "/fapi/v1/leverage", victim, {"symbol": "BTCUSDT", "leverage": 100})
            assert lever.status_code == 200, lever.text
            ask = {"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC"}
            rested = server.signed(
                "POST", "/fapi/v1/order", maker, {**ask, "quantity": "1", "price": f"{60010 + i}"}
            )
            assert rested.status_code == 200, rested.text
            bought = server.signed(
                "POST",
                "/fapi/v1/order",
                victim,
                {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "1"},
            )
            assert bought.status_code == 200, bought.text
        bid = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.5"}
        for level in range(12):
            rested = server.signed("POST", "/fapi/v1/order", maker, {**bid, "price": f"{59700 - 40 * level}"})
            assert rested.status_code == 200, rested.text
        _quote(server, 595_000)  # the first victim is liquidated before the clients start
        assert _positions(server, victims[0]) == 0
        clients = [server.trader(f"client-{c}", deposit="1000000") for c in range(CLIENTS)]
        orders = Orders()
        threads = _start_clients(server, clients, orders, base=58800)
        feeder = threading.Thread(target=_feed_until_stopped, args=(server, rng, orders, 595_000))
        feeder.start()
        wanted, deadline = rng.randint(15, 60), time.monotonic() + 20
        while len(orders.acked) < wanted and time.monotonic() < deadline:
            time.sleep(0.005)
        server.kill()
        orders.stop.set()
        for thread in [*threads, feeder]:
            thread.join(10)
        assert len(orders.acked) >= wanted, "the clients got too few acknowledgements before the kill"

        replayed = _replay(directory)
        liquidated = _journal_liquidation_seqs(directory)
        server.start()
        assert _recovered(server) == replayed, (
            "the restart recovered another state than the journal replays to"
        )
        assert liquidated and _liquidation_seqs(server, replayed[0]) == liquidated
        held: dict[str, int] = {}
        for client in clients:
            held |= _held(server, client)
        _assert_acked_back_and_no_phantoms(held, orders)
        _quote(server, 595_000)  # a slow restart can outlast the index's staleness window
        assert _new_order_id(server, clients[0], "58800") > max(held.values())
    finally:
        server.stop()


@pytest.mark.parametrize("seed", range(CI_TRIALS))
def test_priced_market_recovers_the_journal_state_after_kill_9(tmp_path: Path, seed: int) -> None:
    _priced_trial(tmp_path / "data", seed)


@pytest.mark.stress
@pytest.mark.parametrize("seed", range(CI_TRIALS, CI_TRIALS + STRESS_TRIALS))
def test_priced_market_recovers_the_journal_state_after_kill_9_stress(tmp_path: Path, seed: int) -> None:
    _priced_trial(tmp_path / "data", seed)
