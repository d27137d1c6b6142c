"""End to end: a simulator run's journal, read models built by the server's start-up, then
``perpx tca --data`` and ``perpx tca estimate`` read them without changing a byte.

``perpx simulate`` writes only the journal; the read models (``readmodel.sqlite``,
``market.sqlite``) are the server's, so the fixture opens the journal directory once with the
server's :func:`open_venue` (which replays the journal through them) and closes it.
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
from perpx.server.app import build_components
from perpx.server.context import open_venue
from perpx.sim.runner import run_scenario
from tests.tca.test_cli import FIXED_FIELDS

ROOT = Path(__file__).resolve().parents[2]
CALM = ROOT / "scenarios" / "calm_day.toml"
LOT = Decimal("0.001")


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    run_scenario(CALM, 3, out, overrides={"run.duration_s": 240}, write_outputs=False)
    data = out / "journal"
    open_venue(data, None, build_components).close()
    return data


def _read(path: Path) -> closing[sqlite3.Connection]:
    """The test's own reads leave no ``-wal``/``-shm`` behind either."""
    return closing(sqlite3.connect(f"{path.as_uri()}?mode=ro&immutable=1", uri=True))


def _fingerprint(data: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(data.iterdir()) if p.is_file()}


def _busiest_taker(data: Path) -> tuple[int, int, Decimal]:
    """The account with the most taker buys: its id, fill count and bought lots."""
    with _read(data / "readmodel.sqlite") as db:
        account, count, lots = db.execute(
            "SELECT account_id, count(*), sum(qty_lots) FROM trades WHERE side = 'BUY' AND maker = 0"
            " AND account_id NOT IN (SELECT account_id FROM trades WHERE maker = 1)"
            " GROUP BY account_id ORDER BY count(*) DESC, account_id LIMIT 1"
        ).fetchone()
    return int(account), int(count), Decimal(lots) * LOT


def test_tca_from_the_venue_reads_the_accounts_fills_and_changes_no_file(venue: Path, tmp_path: Path) -> None:
    # Arrange
    account, count, bought = _busiest_taker(venue)
    before = _fingerprint(venue)
    out = tmp_path / "tca"
    # Act
    result = CliRunner().invoke(
        app, ["tca", "--data", str(venue), "--account", str(account), "--side", "buy", "--out", str(out)]
    )
    # Assert
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "tca.json").read_text())
    assert all(name in summary for name in FIXED_FIELDS)
    assert summary["fill_count"] == count and Decimal(summary["filled_qty"]) == bought
    assert summary["maker_share"] == "0.0000" and summary["fill_rate"] == "1.0000"
    assert all(summary["identity_check"].values())
    assert summary["is_spread_impact"] is not None  # the tape gave a mid at every fill
    assert summary["mid_source"].startswith("inferred from the tape")
    assert summary["source"]["arrival_price"] == "the tape-inferred mid in force at the first fill"
    assert Decimal(summary["market_qty"]) >= bought
    assert (out / "fills.parquet").exists() and (out / "report.html").exists()
    assert _fingerprint(venue) == before


def test_tca_from_the_venue_needs_a_side_when_the_account_traded_both(venue: Path, tmp_path: Path) -> None:
    account, _, _ = _busiest_taker(venue)
    with _read(venue / "readmodel.sqlite") as db:
        sides = {r[0] for r in db.execute("SELECT side FROM trades WHERE account_id = ?", (account,))}
    result = CliRunner().invoke(
        app, ["tca", "--data", str(venue), "--account", str(account), "--out", str(tmp_path)]
    )
    if sides == {"BUY", "SELL"}:
        assert result.exit_code == 2 and "give --side" in result.output
    else:
        assert result.exit_code == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--account", "999999"], "account 999999 has no fills"),
        ([], "--data needs --account"),
        (["--account", "1", "--from", "soon"], "--from: not an integer number of milliseconds: 'soon'"),
        (["--account", "x"], "--account: not an account id: 'x'"),
        (["--account", "1", "--algo", "a1"], "account 1 has no child orders of algo 'a1'"),
        (["--account", "1", "--algo", "a1", "--from", "0"], "give either --algo or --from/--to, not both"),
    ],
)
def test_tca_from_the_venue_refuses_in_one_line(
    venue: Path, tmp_path: Path, options: list[str], message: str
) -> None:
    result = CliRunner().invoke(app, ["tca", "--data", str(venue), *options, "--out", str(tmp_path)])
    assert result.exit_code == 2 and message in result.output and len(result.output.strip().splitlines()) == 1


def test_tca_from_a_directory_without_read_models_says_so(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["tca", "--data", str(tmp_path), "--account", "1", "--out", str(tmp_path)]
    )
    assert result.exit_code == 2 and "not a perpx data directory" in result.output


def test_estimate_prints_cost_std_participation_and_the_impact_fit(venue: Path) -> None:
    # Arrange
    before = _fingerprint(venue)
    # Act
    result = CliRunner().invoke(
        app,
        [
            "tca",
            "estimate",
            "--symbol",
            "BTCUSDT",
            "--side",
            "buy",
            "--qty",
            "1",
            "--duration-s",
            "60",
            "--data",
            str(venue),
        ],
    )
    # Assert
    assert result.exit_code == 0, result.output
    assert "expected cost" in result.output and "std" in result.output
    assert "expected participation" in result.output
    fit = next(line for line in result.output.splitlines() if line.startswith("impact calibration"))
    assert int(fit.split("n = ")[1].split()[0]) > 0
    assert _fingerprint(venue) == before


def test_estimate_refuses_an_unknown_symbol(venue: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "tca",
            "estimate",
            "--symbol",
            "DOGEUSDT",
            "--side",
            "buy",
            "--qty",
            "1",
            "--duration-s",
            "60",
            "--data",
            str(venue),
        ],
    )
    assert result.exit_code == 2 and "no market DOGEUSDT" in result.output


def test_tca_from_a_live_venue_reads_what_its_write_ahead_log_holds(venue: Path, tmp_path: Path) -> None:
    # Arrange: a copy whose read model a writer holds open with one more fill still in the WAL
    live = tmp_path / "live"
    shutil.copytree(venue, live)
    account, count, _ = _busiest_taker(venue)
    with closing(sqlite3.connect(live / "readmodel.sqlite")) as writer:
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute(
            "INSERT INTO trades SELECT trade_id + 1000000, account_id, order_id, symbol, side, price_ticks,"
            " qty_lots, quote_atoms, realized_pnl_atoms, fee_atoms, time_ms + 1, maker FROM trades"
            " WHERE account_id = ? AND side = 'BUY' ORDER BY time_ms DESC LIMIT 1",
            (account,),
        )
        writer.commit()
        assert (live / "readmodel.sqlite-wal").exists()
        # Act
        result = CliRunner().invoke(
            app,
            [
                "tca",
                "--data",
                str(live),
                "--account",
                str(account),
                "--side",
                "buy",
                "--out",
                str(tmp_path / "o"),
            ],
        )
    # Assert
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "o" / "tca.json").read_text())["fill_count"] == count + 1


def test_tca_from_the_venue_compares_the_realized_cost_with_the_pre_trade_estimate(
    venue: Path, tmp_path: Path
) -> None:
    # Arrange: a taker's buys from the fourth minute on, when three closed candles precede them
    with _read(venue / "market.sqlite") as db:
        (start,) = db.execute("SELECT min(ts_ms) FROM trades").fetchone()
    after = start - start % 60_000 + 180_000
    with _read(venue / "readmodel.sqlite") as db:
        (account,) = db.execute(
            "SELECT account_id FROM trades WHERE side = 'BUY' AND maker = 0 AND time_ms >= ?"
            " GROUP BY account_id ORDER BY count(*) DESC, account_id LIMIT 1",
            (after,),
        ).fetchone()
    args = ["tca", "--data", str(venue), "--account", str(account), "--side", "buy", "--from", str(after)]
    # Act
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path)])
    # Assert: the prediction used only what came before, and its realized figure is the arrival slippage
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "tca.json").read_text())
    pre = summary["pre_trade"]
    assert pre["available"] is True and pre["impact_fit_n"] > 0 and pre["predicted_std_bps"] > 0
    assert pre["predicted_cost_bps"] == pytest.approx(pre["half_spread_bps"] + pre["impact_bps"], abs=1e-3)
    assert pre["realized_cost_bps"] == pytest.approx(float(summary["arrival_slippage_bps"]), abs=1e-3)
