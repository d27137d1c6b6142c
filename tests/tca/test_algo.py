"""End to end (issue 15): an algo on the simulator, then ``perpx tca --data --algo``, then the
estimate beside the realised cost.

The fixture runs the calm day with a journal and works a TWAP parent in it as the execution
backtest does (:class:`~perpx.execution.inprocess.EngineVenue` on the simulation's sequencer, so
the children are journaled orders), then lets the server's start-up build the read models and puts
the parent's child log where the server keeps it, ``DATA/algos/<algoId>.childlog``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from contextlib import closing
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from perpx.cli import app
from perpx.engine.commands import CreateAccount, Deposit
from perpx.engine.events import AccountCreated
from perpx.engine.values import AccountId, TxId
from perpx.execution.childlog import ChildLog
from perpx.execution.inprocess import EngineVenue
from perpx.execution.model import decode_parent
from perpx.execution.runner import NS_PER_S, ParentRunner
from perpx.journal.store import open_store
from perpx.server.app import build_components
from perpx.server.context import open_venue
from perpx.sim.runner.simulation import START_NS, Simulation
from perpx.sim.scenario import dump_toml, load_scenario
from perpx.tca.algo import algo_children
from tests.tca.test_cli import FIXED_FIELDS

ROOT = Path(__file__).resolve().parents[2]
CALM = ROOT / "scenarios" / "calm_day.toml"
WARMUP_S = 600
ALGO_ID = "7"
CLIENT_ALGO_ID = "tca-e2e-twap"
QTY = Decimal("3")


def _open_account(sim: Simulation) -> AccountId:
    events = sim.submit(CreateAccount(ts_ns=sim.now_ns, name="algo"))
    account = next(e for e in events if isinstance(e, AccountCreated)).account_id
    atom = sim.engine.config.settlement.atom
    sim.submit(
        Deposit(
            ts_ns=sim.now_ns,
            account_id=account,
            asset=sim.engine.asset,
            amount_atoms=int(Decimal("10000000") / atom),
            tx_id=TxId("tca-e2e-deposit"),
        )
    )
    return account


@pytest.fixture(scope="module")
def algo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, Path]:
    """``(data directory, account, child log outside it)`` after a 300 s TWAP buy of 3 BTC."""
    out = tmp_path_factory.mktemp("algo")
    scenario = load_scenario(CALM, {"run.duration_s": WARMUP_S + 420})
    config = dict(scenario.doc["config"])
    config["venue"] = {**config.get("venue", {}), "durability": "none"}
    data = out / "journal"
    store, _ = open_store(data, dump_toml(config))
    sim = Simulation(scenario, 3, store)
    sim.setup()
    account = _open_account(sim)
    venue = EngineVenue(sim.sequencer, account, lambda: sim.now_ns)
    sim.advance_to(START_NS + WARMUP_S * NS_PER_S)
    sim.now_ns = max(sim.now_ns, START_NS + WARMUP_S * NS_PER_S)
    parent = decode_parent(
        {
            "algo": "twap",
            "market": "BTCUSDT",
            "side": "buy",
            "client_algo_id": CLIENT_ALGO_ID,
            "qty": str(QTY),
            "duration_s": 300,
            "slice_interval_s": 30,
            "passiveness_bps": 0,
        }
    )
    log_path = out / "child_log.jsonl"
    log = ChildLog(log_path)
    runner = ParentRunner.start(venue, parent, log, period_s=5)
    end_ns = START_NS + sim.duration_ns
    while not runner.done and sim.now_ns < end_ns:
        target = min(max(runner.wake_ns, sim.now_ns + 1), sim.now_ns + 5 * NS_PER_S, end_ns)
        sim.advance_to(target)
        sim.now_ns = target
        runner.step()
    log.close()
    sim.run()
    store.close()
    open_venue(data, None, build_components).close()
    (data / "algos").mkdir()
    shutil.copy(log_path, data / "algos" / f"{ALGO_ID}.childlog")
    return data, int(account), log_path


def _fingerprint(data: Path) -> dict[str, str]:
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(data.rglob("*")) if p.is_file()
    }


@pytest.mark.parametrize("algo", [ALGO_ID, CLIENT_ALGO_ID])
def test_tca_of_an_algo_reads_its_children_and_its_parent_record(
    algo_run: tuple[Path, int, Path], tmp_path: Path, algo: str
) -> None:
    # Arrange
    data, account, _ = algo_run
    before = _fingerprint(data)
    out = tmp_path / "tca"
    # Act
    result = CliRunner().invoke(
        app, ["tca", "--data", str(data), "--account", str(account), "--algo", algo, "--out", str(out)]
    )
    # Assert
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "tca.json").read_text())
    assert all(name in summary for name in FIXED_FIELDS)
    assert summary["side"] == "buy" and Decimal(summary["qty"]) == QTY
    assert Decimal(summary["filled_qty"]) == QTY and summary["fill_rate"] == "1.0000"
    assert summary["source"]["arrival_price"] == "the child log: the mid when the parent arrived"
    assert summary["source"]["decision_price"].startswith("the arrival price")
    assert summary["algo"]["client_algo_id"] == CLIENT_ALGO_ID
    assert summary["algo"]["child_orders"] == summary["algo"]["children_logged"] > 1
    assert summary["start_ms"] == (START_NS // 1_000_000) + WARMUP_S * 1000
    assert all(summary["identity_check"].values())
    assert _fingerprint(data) == before


def test_tca_of_an_algo_puts_the_estimate_beside_the_realised_cost(
    algo_run: tuple[Path, int, Path], tmp_path: Path
) -> None:
    data, account, _ = algo_run
    out = tmp_path / "tca"
    result = CliRunner().invoke(
        app, ["tca", "--data", str(data), "--account", str(account), "--algo", ALGO_ID, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "tca.json").read_text())
    pre = summary["pre_trade"]
    realised = Decimal(summary["arrival_slippage_bps"])
    assert pre["available"] is True, pre
    assert pre["duration_s"] == 300
    assert pre["impact_fit_n"] > 0  # calibrated on the venue's own taker orders before the start
    assert abs(pre["predicted_cost_bps"] - (pre["half_spread_bps"] + pre["impact_bps"])) < 1e-3
    assert abs(Decimal(str(pre["realized_cost_bps"])) - realised) <= Decimal("0.0001")
    surprise = (pre["realized_cost_bps"] - pre["predicted_cost_bps"]) / pre["predicted_std_bps"]
    assert abs(pre["surprise_std"] - surprise) < 1e-3


def test_tca_of_an_algo_takes_a_child_log_given_outside_the_data_directory(
    algo_run: tuple[Path, int, Path], tmp_path: Path
) -> None:
    data, account, log = algo_run
    result = CliRunner().invoke(
        app,
        [
            *("tca", "--data", str(data), "--account", str(account)),
            *("--algo", "anything", "--child-log", str(log), "--out", str(tmp_path)),
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "tca.json").read_text())["algo"]["child_log"] == str(log)


def test_tca_of_an_algo_without_its_child_log_uses_the_read_models(
    algo_run: tuple[Path, int, Path], tmp_path: Path
) -> None:
    data, account, _ = algo_run
    bare = tmp_path / "data"
    shutil.copytree(data, bare, ignore=shutil.ignore_patterns("algos"))
    result = CliRunner().invoke(
        app,
        [
            *("tca", "--data", str(bare), "--account", str(account)),
            *("--algo", CLIENT_ALGO_ID, "--out", str(tmp_path / "out")),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "tca.json").read_text())
    assert summary["algo"]["child_log"] is None
    assert summary["source"]["qty"] == "the filled quantity (no child log)"
    assert summary["source"]["arrival_price"].startswith(
        "the tape-inferred mid when the first child was sent"
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--algo", "nosuch"], "has no child orders of algo 'nosuch'"),
        (["--algo", ALGO_ID, "--side", "buy"], "--algo fixes the market and side"),
        (
            ["--algo", ALGO_ID, "--child-log", "/nonexistent/x.childlog"],
            "--child-log: /nonexistent/x.childlog does not exist",
        ),
        (["--child-log", "x"], "--child-log goes with --algo"),
    ],
)
def test_tca_of_an_algo_refuses_in_one_line(
    algo_run: tuple[Path, int, Path], tmp_path: Path, options: list[str], message: str
) -> None:
    data, account, _ = algo_run
    result = CliRunner().invoke(
        app, ["tca", "--data", str(data), "--account", str(account), *options, "--out", str(tmp_path)]
    )
    assert result.exit_code == 2 and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1


def test_tca_of_another_accounts_algo_is_refused(algo_run: tuple[Path, int, Path], tmp_path: Path) -> None:
    data, account, _ = algo_run
    result = CliRunner().invoke(
        app,
        [
            "tca",
            "--data",
            str(data),
            "--account",
            str(account + 1),
            "--algo",
            ALGO_ID,
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 2
    assert f"account {account + 1} has no child orders of algo '{ALGO_ID}'" in result.output


def test_children_of_an_algo_exclude_those_of_an_algo_whose_id_extends_it(tmp_path: Path) -> None:
    # Arrange: "a"'s children are a-c0 and a-c1; "a-c1" is another algo whose child is a-c1-c0
    with closing(sqlite3.connect(tmp_path / "readmodel.sqlite")) as db:
        db.execute(
            "CREATE TABLE orders (order_id INTEGER, account_id INTEGER, symbol TEXT, client_order_id TEXT,"
            " side TEXT, time_ms INTEGER)"
        )
        rows = [(1, "a-c0"), (2, "a-c1"), (3, "a-c1-c0"), (4, "a-cx"), (5, "ab-c0"), (6, "a_c0")]
        db.executemany(
            "INSERT INTO orders VALUES (?, 7, 'BTCUSDT', ?, 'BUY', ?)", [(i, c, 1000 + i) for i, c in rows]
        )
        db.execute("INSERT INTO orders VALUES (8, 8, 'BTCUSDT', 'a-c2', 'BUY', 1008)")  # another account
        db.commit()
    # Act
    children = algo_children(tmp_path, 7, "a")
    nested = algo_children(tmp_path, 7, "a-c1")
    # Assert
    assert [(c.order_id, c.index) for c in children] == [(1, 0), (2, 1)]
    assert [(c.order_id, c.client_order_id) for c in nested] == [(3, "a-c1-c0")]


def test_a_file_that_is_not_a_child_log_is_refused(algo_run: tuple[Path, int, Path], tmp_path: Path) -> None:
    data, account, _ = algo_run
    garbage = tmp_path / "x.childlog"
    garbage.write_text('{"type": "place", "index": 0}\nnot json\n')
    result = CliRunner().invoke(
        app,
        [
            *("tca", "--data", str(data), "--account", str(account), "--algo", ALGO_ID),
            *("--child-log", str(garbage), "--out", str(tmp_path / "out")),
        ],
    )
    assert result.exit_code == 2 and "is not a child log" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
