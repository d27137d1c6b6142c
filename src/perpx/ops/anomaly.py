"""Anomaly scores of key series: EWMA mean and variance, z-scores, seasonal by hour for volumes.

A score is ``(x - mean) / sqrt(variance)`` against the exponentially weighted mean and variance of
the values seen *before* ``x`` (so a jump scores against the calm before it, not against itself).
:class:`Ewma` is one such estimator; :class:`HourlyEwma` keeps one per hour of the day (volumes
have a daily shape: 3 a.m. is not 3 p.m.). Until ``warmup`` values have been seen a series scores
0: a fresh estimator knows nothing to be surprised by.

Pure and deterministic: values and their times are inputs; the metrics adapter feeds them at each
scrape and exports the scores as ``perpx_anomaly_score{metric}``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

NS_PER_HOUR = 3_600 * 1_000_000_000


@dataclass
class Ewma:
    """Exponentially weighted mean and variance (West's incremental form) with a z-score."""

    alpha: float = 0.05
    """Weight of each new value; 0.05 remembers about the last 20 values."""
    warmup: int = 20
    """Values seen before a score can be non-zero."""
    min_std: float = 1e-9
    """Floor under the deviation, so a perfectly flat series still scores a step (finitely)."""
    mean: float = 0.0
    var: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], not {self.alpha}")

    def score(self, x: float) -> float:
        """The z-score of ``x`` against what was seen so far (0 during warm-up)."""
        if self.count < self.warmup:
            return 0.0
        return (x - self.mean) / max(math.sqrt(self.var), self.min_std)

    def update(self, x: float) -> float:
        """Score ``x``, then fold it into the mean and variance; returns the score."""
        z = self.score(x)
        if self.count == 0:
            self.mean, self.var = x, 0.0
        else:
            delta = x - self.mean
            self.mean += self.alpha * delta
            self.var = (1 - self.alpha) * (self.var + self.alpha * delta * delta)
        self.count += 1
        return z


@dataclass
class HourlyEwma:
    """One :class:`Ewma` per hour of the day (UTC), chosen by each value's time."""

    alpha: float = 0.2
    warmup: int = 5
    hours: dict[int, Ewma] = field(default_factory=dict)

    def update(self, ts_ns: int, x: float) -> float:
        hour = (ts_ns // NS_PER_HOUR) % 24
        ewma = self.hours.get(hour)
        if ewma is None:
            ewma = self.hours[hour] = Ewma(alpha=self.alpha, warmup=self.warmup)
        return ewma.update(x)


@dataclass(frozen=True, slots=True)
class Detection:
    """How a detector did on a series whose anomaly time is known."""

    first_alarm: int | None
    """Index of the first alarm at or after the anomaly (``None``: missed)."""
    delay: int | None
    """Samples from the anomaly to its first alarm."""
    false_alarms: int
    """Alarms before the anomaly."""


def evaluate(scores: list[float], anomaly_at: int, threshold: float) -> Detection:
    """Detection delay and false alarms of ``|score| >= threshold`` on a series with a known anomaly."""
    alarms = [i for i, z in enumerate(scores) if abs(z) >= threshold]
    false_alarms = sum(1 for i in alarms if i < anomaly_at)
    after = [i for i in alarms if i >= anomaly_at]
    first = after[0] if after else None
    return Detection(first, None if first is None else first - anomaly_at, false_alarms)
