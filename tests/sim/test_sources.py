"""Spot sources: price processes reproducible by seed, scripted paths, faults, prices to ticks."""

from __future__ import annotations

import itertools
import random
from decimal import Decimal
from pathlib import Path

import pytest

from perpx.sim.sources import (
    Fault,
    GbmJump,
    RegimeSwitching,
    ScriptedPath,
    Source,
    SourceError,
    build_process,
    parse_faults,
    price_to_ticks,
    read_path_csv,
    vary_path,
)


def _path(process: GbmJump | ScriptedPath, times: range) -> list[float]:
    return [process.price_at(float(t)) for t in times]


@pytest.mark.parametrize(
    ("price", "tick", "ticks"),
    [
        (60000.04, "0.1", 600000),  # nearest tick, down
        (60000.06, "0.1", 600001),  # nearest tick, up
        (0.1 + 0.2, "0.1", 3),  # 0.30000000000000004: repr, not float * scale
        (0.00001, "0.1", 1),  # never below one tick
        ("0.038", "0.0001", 380),
    ],
)
def test_price_to_ticks_rounds_to_the_nearest_tick(price: float | str, tick: str, ticks: int) -> None:
    assert price_to_ticks(price, Decimal(tick)) == ticks


def test_price_to_ticks_with_nan_raises() -> None:
    with pytest.raises(SourceError):
        price_to_ticks(float("nan"), Decimal("0.1"))


def test_gbm_with_the_same_seed_gives_the_same_path() -> None:
    # Arrange
    one = GbmJump(60000, 0.8, random.Random(7), jump_rate_per_hour=20, jump_vol=0.01)
    two = GbmJump(60000, 0.8, random.Random(7), jump_rate_per_hour=20, jump_vol=0.01)
    three = GbmJump(60000, 0.8, random.Random(8), jump_rate_per_hour=20, jump_vol=0.01)
    # Act
    a, b, c = _path(one, range(1, 600)), _path(two, range(1, 600)), _path(three, range(1, 600))
    # Assert
    assert a == b
    assert a != c
    assert all(p > 0 for p in a)


def test_gbm_without_volatility_moves_only_by_its_jumps() -> None:
    process = GbmJump(100.0, 0.0, random.Random(3), jump_rate_per_hour=360, jump_mean=0.01, jump_vol=0.0)
    prices = _path(process, range(1, 601))
    moves = sum(1 for a, b in itertools.pairwise(prices) if a != b)
    # about 60 jumps of +1% in 10 minutes at 360 an hour; between them the price is flat
    assert 30 < moves < 100
    assert prices[-1] > 100.0 * 1.01**30


def test_regime_switching_flips_between_its_volatilities() -> None:
    process = RegimeSwitching(100.0, 0.1, 3.0, switch_per_hour=60, rng=random.Random(1))
    _path(process, range(1, 3600))
    assert process.switches >= 10


def test_scripted_path_interpolates_linearly_and_holds_flat_outside() -> None:
    path = ScriptedPath([(0, 100.0), (10, 200.0), (20, 150.0)])
    assert [path.base_at(t) for t in (-5, 0, 5, 10, 15, 20, 99)] == [100, 100, 150, 200, 175, 150, 150]


def test_scripted_path_with_step_interpolation_holds_each_price() -> None:
    path = ScriptedPath([(0, 100.0), (10, 200.0)], interpolation="step")
    assert [path.base_at(t) for t in (0, 9.99, 10)] == [100, 100, 200]


def test_csv_path_reads_timestamp_price_rows_after_a_header(tmp_path: Path) -> None:
    # Arrange
    file = tmp_path / "path.csv"
    file.write_text("timestamp,price\n0,60000\n300,42000\n\n600,51000\n")
    # Act
    process = build_process({"process": "path", "file": "path.csv"}, random.Random(1), tmp_path)
    # Assert
    assert read_path_csv(file) == [(0.0, 60000.0), (300.0, 42000.0), (600.0, 51000.0)]
    assert process.price_at(150) == 51000.0


def test_csv_path_with_a_bad_row_names_the_line(tmp_path: Path) -> None:
    file = tmp_path / "path.csv"
    file.write_text("0,60000\n10,oops\n")
    with pytest.raises(SourceError, match="line 2"):
        read_path_csv(file)


def test_unknown_process_is_refused() -> None:
    with pytest.raises(SourceError, match="process"):
        build_process({"process": "brownian", "start": "1"}, random.Random(1))


def _source(faults: tuple[Fault, ...]) -> Source:
    return Source("okx", "BTCUSDT", ScriptedPath([(0, 100.0)]), random.Random(1), faults=faults)


def test_a_stale_source_stops_quoting_only_inside_its_window() -> None:
    source = _source((Fault("stale", 10, 20),))
    quotes = {t: source.quote(float(t)) for t in (9, 10, 15, 19, 20)}
    assert quotes == {9: 100.0, 10: None, 15: None, 19: None, 20: 100.0}


def test_an_outlier_fault_multiplies_the_price_inside_its_window() -> None:
    source = _source((Fault("outlier", 10, 20, 1000),))
    assert [source.quote(float(t)) for t in (9, 10, 19, 20)] == [100.0, 100000.0, 100000.0, 100.0]


def test_a_controlled_source_is_never_quoted_by_the_feed() -> None:
    source = Source("thin", "X", ScriptedPath([(0, 1.0)]), random.Random(1), controlled=True)
    assert source.quote(0.0) is None and source.quotes == 0


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"kind": "late", "start_s": 0, "end_s": 1}, "kind"),
        ({"kind": "stale", "start_s": 5, "end_s": 5}, "end_s"),
        ({"kind": "outlier", "start_s": 0, "end_s": 1, "factor": 0}, "factor"),
        ({"kind": "stale", "start_s": 0}, "end_s"),
    ],
)
def test_bad_faults_are_refused(row: dict[str, object], message: str) -> None:
    with pytest.raises(SourceError, match=message):
        parse_faults([row], "sources[0]")


# ------------------------------------------------------------------ seeds vary the crash path

CRASH = [(0.0, 60_000.0), (300.0, 60_000.0), (480.0, 52_800.0), (900.0, 55_000.0)]


def test_vary_path_scales_the_move_and_runs_it_faster_from_its_onset() -> None:
    # size 1.5: the 12% drop becomes 18%; speed 2: the 180 s drop takes 90 s from the onset at 300 s
    varied = vary_path(CRASH, 1.5, 2.0)
    expected = [(0.0, 60_000.0), (300.0, 60_000.0), (390.0, 49_200.0), (600.0, 52_500.0)]
    assert [t for t, _ in varied] == [t for t, _ in expected]
    assert [p for _, p in varied] == pytest.approx([p for _, p in expected])
    assert vary_path(CRASH, 1.0, 1.0) == CRASH


def test_a_size_that_takes_the_path_below_zero_is_refused() -> None:
    with pytest.raises(SourceError, match="<= 0"):
        vary_path(CRASH, 9.0, 1.0)


def test_each_seed_draws_its_crash_from_the_stated_ranges_and_reports_it() -> None:
    spec = {
        "process": "path",
        "points": [list(p) for p in CRASH],
        "size_range": [0.7, 1.3],
        "speed_range": [0.5, 2],
    }
    paths = [build_process(spec, random.Random(seed)) for seed in range(20)]
    draws = [p.draws for p in paths if isinstance(p, ScriptedPath)]
    assert len(draws) == 20 and all(0.7 <= d["size"] <= 1.3 and 0.5 <= d["speed"] <= 2 for d in draws)
    assert len({round(d["size"], 9) for d in draws}) == 20  # the path differs from seed to seed
    again = build_process(spec, random.Random(3))
    assert isinstance(again, ScriptedPath) and again.draws == draws[3]


@pytest.mark.parametrize("bounds", [[1.3, 0.7], [0, 1], "wide", [1]])
def test_a_range_that_is_not_low_high_above_zero_is_refused(bounds: object) -> None:
    spec = {"process": "path", "points": [list(p) for p in CRASH], "size_range": bounds}
    with pytest.raises(SourceError, match="size_range"):
        build_process(spec, random.Random(0))
