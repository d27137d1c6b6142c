"""Anomaly scores (:mod:`perpx.ops.anomaly`), measured on series whose anomaly time is known.

Risk lab: ``flash_crash`` (spot starts falling at t = 300 s) must alarm on the first sample of
the fall with no alarm before it; ``calm_day`` (no anomaly; its first hour) must not alarm at all. Volumes: a
daily shape (quiet nights, busy days) with one night spike; the hourly detector finds the spike
without alarming on the shape, while a plain EWMA, its variance inflated by the daily swing, misses it.

Print the figures: ``pytest tests/ops/test_anomaly.py -s``.
"""

from __future__ import annotations

import math

import pytest

from perpx.ops.anomaly import NS_PER_HOUR, Detection, Ewma, HourlyEwma, evaluate
from perpx.sim.runner.run import run_scenario

THRESHOLD = 4.0
"""``|z| >= 4``: the alert rule's threshold."""


def index_returns_bps(scenario: str, duration_s: int | None = None) -> tuple[list[float], list[float]]:
    """The 5-10 s index returns (bps) of a risk lab run, with the time of each."""
    overrides = None if duration_s is None else {"run.duration_s": duration_s}
    result = run_scenario(f"scenarios/{scenario}.toml", 1, None, write_outputs=False, overrides=overrides)
    series = result.series["BTCUSDT"]
    times, returns = [], []
    for i in range(1, len(series["index"])):
        before, now = series["index"][i - 1], series["index"][i]
        if math.isnan(before) or math.isnan(now):
            continue
        times.append(series["t_s"][i])
        returns.append(math.log(now / before) * 10_000)
    return times, returns


def test_flat_series_scores_a_step_and_warmup_scores_zero() -> None:
    # Arrange
    detector = Ewma(warmup=5)

    # Act
    warm = [detector.update(10.0) for _ in range(5)]
    calm = detector.update(10.0)
    step = detector.update(11.0)

    # Assert
    assert warm == [0.0] * 5
    assert calm == 0.0
    assert step > 1e6


def test_alpha_outside_zero_one_is_refused() -> None:
    with pytest.raises(ValueError, match="alpha"):
        Ewma(alpha=0.0)


def test_flash_crash_is_detected_on_its_first_sample_without_false_alarms() -> None:
    # Arrange
    times, returns = index_returns_bps("flash_crash")
    detector = Ewma()
    anomaly_at = next(i for i, t in enumerate(times) if t > 300)

    # Act
    found = evaluate([detector.update(x) for x in returns], anomaly_at, THRESHOLD)

    # Assert
    print(f"flash_crash: anomaly at sample {anomaly_at} (t={times[anomaly_at]} s): {found}")
    assert found.delay == 0
    assert found.false_alarms == 0


def test_calm_day_raises_no_alarm() -> None:
    # Arrange
    _, returns = index_returns_bps("calm_day", duration_s=3_600)  # its first hour: 360 samples
    detector = Ewma()

    # Act
    found = evaluate([detector.update(x) for x in returns], len(returns), THRESHOLD)

    # Assert
    print(f"calm_day: {len(returns)} samples: {found}")
    assert found == Detection(first_alarm=None, delay=None, false_alarms=0)


def daily_volumes(days: int, spike_day: int, spike_hour: int) -> list[tuple[int, float]]:
    """Hourly volumes: 100 at night, 1,000 by day, +-3% wobble; one night hour at 5x."""
    out = []
    for hour in range(days * 24):
        of_day = hour % 24
        base = 1_000.0 if 8 <= of_day < 20 else 100.0
        wobble = 1 + 0.03 * math.sin(hour * 1.7)
        volume = base * wobble * (5 if hour == spike_day * 24 + spike_hour else 1)
        out.append((hour * NS_PER_HOUR, volume))
    return out


def test_hourly_detector_finds_a_night_spike_a_plain_ewma_misses() -> None:
    # Arrange: 14 days; at 03:00 on day 10 the volume is 5x a normal night
    series = daily_volumes(14, spike_day=10, spike_hour=3)
    anomaly_at = 10 * 24 + 3
    hourly, plain = HourlyEwma(), Ewma()

    # Act
    seasonal = evaluate([hourly.update(ts, v) for ts, v in series], anomaly_at, THRESHOLD)
    flat = evaluate([plain.update(v) for _, v in series], anomaly_at, THRESHOLD)

    # Assert
    print(f"volumes, hourly EWMA: {seasonal}; plain EWMA: {flat}")
    assert seasonal.delay == 0
    assert seasonal.false_alarms == 0
    assert flat.first_alarm is None  # the daily swing inflates its variance: the spike hides in it
