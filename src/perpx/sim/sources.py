"""Spot price sources for the simulator: a fair price process per market, and the venues that quote it.

A **price process** is the "true" spot price of a market's underlying over simulated time. A
**source** is one spot venue quoting that price to the index (the names in the market's
``[markets.X.index] sources``): every ``every_s`` seconds it reads the process, adds its own
small noise, applies its faults, and the quote reaches the venue ``latency_s`` later as a
:class:`~perpx.engine.commands.SubmitSpotQuote` stamped with the time it was *made* (so a late
quote is already old when it arrives, as a slow feed is).

Processes
---------
==============  ===================================================================================
``gbm_jump``    geometric Brownian motion with Poisson jumps (Merton): per ``dt`` seconds,
                ``S *= exp((mu - vol**2/2) dt + vol sqrt(dt) Z) * prod(exp(J_i))``, with
                ``N ~ Poisson(jump_rate x dt)`` jumps ``J_i ~ Normal(jump_mean, jump_vol)``;
                ``vol`` and ``mu`` are per year (365 days), ``jump_rate`` per hour
``regime``      the same GBM with a two-state volatility (calm ``vol``, stressed ``stress_vol``);
                the state flips with probability ``switch_per_hour x dt / 3600`` per step
``path``        scripted: ``points = [[t_s, price], ...]`` (or ``file`` = a CSV of
                ``timestamp,price``, timestamp in seconds from the start), **linearly interpolated**
                between points (``interpolation = "step"`` holds each price until the next point);
                flat before the first point and after the last; ``noise_bps`` adds GBM-like noise.
                **Seeds vary the path** where the table states ranges: ``size_range = [lo, hi]``
                scales every move away from the first price by ``size ~ Uniform(lo, hi)`` (1.3: a
                drop of 12% becomes 15.6%), ``speed_range = [lo, hi]`` runs the path from its
                onset (the last point before the price first changes) ``speed ~ Uniform(lo, hi)``
                times as fast (2: a three-minute drop takes ninety seconds). The draws come first
                from the process's generator and are reported in the run's summary (``draws``)
==============  ===================================================================================

Faults of a source
------------------
* ``stale`` in ``[start_s, end_s)``: the source sends nothing (the index drops it once its last
  quote is older than ``stale_after_s``);
* ``outlier`` in ``[start_s, end_s)``: every quote is multiplied by ``factor`` (e.g. 1000: a
  decimals bug, the Synthetix sKRW pattern);
* ``latency_s``: constant delivery delay (a fixed delay keeps each source's quotes in time order,
  which the venue requires).

Every random draw comes from a ``random.Random`` the caller owns (the driver derives one per
process and per source from the seed, :mod:`perpx.sim.seeds`), so a seed fixes every price.

Prices to ticks
---------------
Prices are floats while they are simulated; a quote becomes integer ticks once, in
:func:`price_to_ticks`: ``Decimal(repr(price)) / tick_size`` rounded half-even to the nearest tick
(never ``float * scale``), at least one tick.
"""

from __future__ import annotations

import csv
import math
import random
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any, Protocol

NS_PER_S = 1_000_000_000
SECONDS_PER_YEAR = 365 * 86_400


class SourceError(ValueError):
    """A price process or source description that cannot be used; the message names the key."""


def price_to_ticks(price: float | Decimal | str, tick_size: Decimal) -> int:
    """Convert a simulated price into whole ticks, rounding half-even to the nearest tick.

    The float goes through ``Decimal(repr(price))`` (its shortest exact decimal text), never
    ``float * scale``. The result is at least 1 (a venue price is positive).

    Raises
    ------
    SourceError
        If the price is not finite.
    """
    if isinstance(price, float):
        if not math.isfinite(price):
            raise SourceError(f"price was {price!r}, which is not finite")
        value = Decimal(repr(price))
    else:
        value = Decimal(price)
    ticks = int((value / tick_size).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    return max(1, ticks)


class PriceProcess(Protocol):
    """A market's fair spot price over simulated time; asked at non-decreasing times only."""

    def price_at(self, t_s: float) -> float:
        """The price at ``t_s`` seconds from the scenario start."""
        ...


class GbmJump:
    """Geometric Brownian motion with Merton jumps, stepped at the times it is asked for.

    Parameters
    ----------
    start
        Price at ``t_s = 0``.
    vol, mu
        Annualised volatility and drift.
    jump_rate_per_hour, jump_mean, jump_vol
        Poisson jump intensity and the normal law of each jump's log size.
    rng
        The process's own generator.
    """

    def __init__(
        self,
        start: float,
        vol: float,
        rng: random.Random,
        mu: float = 0.0,
        jump_rate_per_hour: float = 0.0,
        jump_mean: float = 0.0,
        jump_vol: float = 0.0,
    ) -> None:
        self.price = start
        self.vol = vol
        self.mu = mu
        self.jump_rate_per_s = jump_rate_per_hour / 3600
        self.jump_mean = jump_mean
        self.jump_vol = jump_vol
        self.rng = rng
        self.t_s = 0.0

    def _vol_now(self, dt_s: float) -> float:
        return self.vol

    def price_at(self, t_s: float) -> float:
        dt = t_s - self.t_s
        if dt <= 0:
            return self.price
        self.t_s = t_s
        vol = self._vol_now(dt)
        years = dt / SECONDS_PER_YEAR
        log_move = (self.mu - vol * vol / 2) * years + vol * math.sqrt(years) * self.rng.gauss(0.0, 1.0)
        if self.jump_rate_per_s:
            lam = self.jump_rate_per_s * dt
            # Poisson draw by inversion (lam is small per step)
            jumps, p, u = 0, math.exp(-lam), self.rng.random()
            cumulative = p
            while u > cumulative and jumps < 50:
                jumps += 1
                p *= lam / jumps
                cumulative += p
            for _ in range(jumps):
                log_move += self.rng.gauss(self.jump_mean, self.jump_vol)
        self.price *= math.exp(log_move)
        return self.price


class RegimeSwitching(GbmJump):
    """GBM (with optional jumps) whose volatility flips between a calm and a stressed regime."""

    def __init__(
        self,
        start: float,
        vol: float,
        stress_vol: float,
        switch_per_hour: float,
        rng: random.Random,
        **jumps: float,
    ) -> None:
        super().__init__(start, vol, rng, **jumps)
        self.calm_vol = vol
        self.stress_vol = stress_vol
        self.switch_per_s = switch_per_hour / 3600
        self.stressed = False
        self.switches = 0

    def _vol_now(self, dt_s: float) -> float:
        if self.rng.random() < min(1.0, self.switch_per_s * dt_s):
            self.stressed = not self.stressed
            self.switches += 1
        return self.stress_vol if self.stressed else self.calm_vol


class ScriptedPath:
    """A price path through fixed points, linear (or step) between them, with optional noise.

    ``noise_bps`` multiplies the path by ``exp(N)``, ``N`` a random walk with that standard deviation
    per square-root second, pulled back toward zero (half-life 60 s) so the path stays the script.
    """

    def __init__(
        self,
        points: Sequence[tuple[float, float]],
        interpolation: str = "linear",
        noise_bps: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        if not points:
            raise SourceError("a scripted path needs at least one point")
        ordered = sorted(points)
        if any(price <= 0 for _, price in ordered):
            raise SourceError("a scripted path's prices must be greater than zero")
        if interpolation not in ("linear", "step"):
            raise SourceError(f"interpolation was {interpolation!r}; use 'linear' or 'step'")
        self.times = [t for t, _ in ordered]
        self.prices = [p for _, p in ordered]
        self.interpolation = interpolation
        self.noise = noise_bps / 10_000
        self.rng = rng or random.Random(0)
        self.walk = 0.0
        self.t_s = 0.0
        self.draws: dict[str, float] = {}
        """What the seed drew for this path (``size``, ``speed``), for the run's summary."""

    def base_at(self, t_s: float) -> float:
        """The scripted price at ``t_s``, without noise."""
        times, prices = self.times, self.prices
        i = bisect_right(times, t_s)
        if i == 0:
            return prices[0]
        if i == len(times) or self.interpolation == "step":
            return prices[i - 1]
        t0, t1 = times[i - 1], times[i]
        p0, p1 = prices[i - 1], prices[i]
        return p0 + (p1 - p0) * (t_s - t0) / (t1 - t0)

    def price_at(self, t_s: float) -> float:
        dt = t_s - self.t_s
        if self.noise and dt > 0:
            self.t_s = t_s
            decay = 0.5 ** (dt / 60)
            self.walk = self.walk * decay + self.noise * math.sqrt(dt) * self.rng.gauss(0.0, 1.0)
        return self.base_at(t_s) * math.exp(self.walk)


def read_path_csv(path: Path) -> list[tuple[float, float]]:
    """Points of a ``timestamp,price`` CSV (a header row is allowed; timestamp in seconds from start).

    Raises
    ------
    SourceError
        If the file is missing, empty or holds a row that is not two numbers.
    """
    try:
        text = path.read_text()
    except OSError as exc:
        raise SourceError(f"price path file {path}: {exc.strerror or exc}") from exc
    points: list[tuple[float, float]] = []
    for number, row in enumerate(csv.reader(text.splitlines()), 1):
        if not row or not "".join(row).strip():
            continue
        try:
            t_s, price = float(row[0]), float(row[1])
        except (ValueError, IndexError) as exc:
            if number == 1:
                continue  # header
            raise SourceError(f"{path} line {number}: expected 'timestamp,price', was {row!r}") from exc
        points.append((t_s, price))
    if not points:
        raise SourceError(f"{path} holds no 'timestamp,price' rows")
    return points


def _draw(spec: Mapping[str, Any], key: str, rng: random.Random) -> float:
    """``Uniform(lo, hi)`` from ``spec[key] = [lo, hi]`` (both > 0); 1.0 when the key is absent."""
    if key not in spec:
        return 1.0
    bounds = spec[key]
    if (
        not isinstance(bounds, list)
        or len(bounds) != 2
        or not all(isinstance(b, int | float) and not isinstance(b, bool) for b in bounds)
        or not 0 < bounds[0] <= bounds[1]
    ):
        raise SourceError(f"{key} was {bounds!r}; use [low, high] with 0 < low <= high")
    return rng.uniform(float(bounds[0]), float(bounds[1]))


def vary_path(points: Sequence[tuple[float, float]], size: float, speed: float) -> list[tuple[float, float]]:
    """``points`` with every move away from the first price scaled by ``size``, run ``speed`` times as fast.

    Time is scaled from the onset: the last point before the price first changes keeps its time,
    later points come ``speed`` times sooner relative to it. A price that the scaling would take to
    or below zero is refused (the caller's range is too wide for this path).
    """
    ordered = sorted(points)
    if not ordered:
        return []
    base = ordered[0][1]
    onset = next((i - 1 for i, (_, p) in enumerate(ordered) if p != base), len(ordered) - 1)
    anchor = ordered[onset][0]
    out = []
    for i, (t_s, price) in enumerate(ordered):
        scaled = base * (1.0 + size * (price / base - 1.0))
        if scaled <= 0:
            raise SourceError(f"size {size:.3g} takes the path's price {price} to {scaled:.3g} (<= 0)")
        out.append((t_s if i <= onset else anchor + (t_s - anchor) / speed, scaled))
    return out


def build_process(spec: Mapping[str, Any], rng: random.Random, base_dir: Path | None = None) -> PriceProcess:
    """Build a price process from its scenario table (see the module doc for the keys).

    Raises
    ------
    SourceError
        If ``process`` is unknown or a key is missing or of the wrong kind.
    """
    kind = spec.get("process", "gbm_jump")
    try:
        if kind == "path":
            if "file" in spec:
                file = Path(str(spec["file"]))
                if not file.is_absolute() and base_dir is not None:
                    file = base_dir / file
                points = read_path_csv(file)
            else:
                points = [(float(t), float(p)) for t, p in spec["points"]]
            size = _draw(spec, "size_range", rng)
            speed = _draw(spec, "speed_range", rng)
            path = ScriptedPath(
                vary_path(points, size, speed),
                str(spec.get("interpolation", "linear")),
                float(spec.get("noise_bps", 0)),
                rng,
            )
            path.draws = {k: v for k, v in (("size", size), ("speed", speed)) if f"{k}_range" in spec}
            return path
        start = float(spec["start"])
        jumps = {
            "jump_rate_per_hour": float(spec.get("jump_rate_per_hour", 0)),
            "jump_mean": float(spec.get("jump_mean", 0)),
            "jump_vol": float(spec.get("jump_vol", 0)),
        }
        if kind == "gbm_jump":
            return GbmJump(start, float(spec.get("vol", 0.5)), rng, mu=float(spec.get("mu", 0)), **jumps)
        if kind == "regime":
            return RegimeSwitching(
                start,
                float(spec.get("vol", 0.3)),
                float(spec.get("stress_vol", 1.5)),
                float(spec.get("switch_per_hour", 1.0)),
                rng,
                mu=float(spec.get("mu", 0)),
                **jumps,
            )
    except KeyError as exc:
        raise SourceError(f"price process {kind!r} needs the key {exc.args[0]!r}") from exc
    except (TypeError, ValueError) as exc:
        raise SourceError(f"price process {kind!r}: {exc}") from exc
    raise SourceError(f"process was {kind!r}; use 'gbm_jump', 'regime' or 'path'")


@dataclass(frozen=True, slots=True)
class Fault:
    """A window ``[start_s, end_s)`` in which a source misbehaves: ``stale`` or ``outlier`` (x ``factor``)."""

    kind: str
    start_s: float
    end_s: float
    factor: float = 1.0

    def active(self, t_s: float) -> bool:
        return self.start_s <= t_s < self.end_s


@dataclass
class Source:
    """One spot venue quoting a market's fair price into the index.

    ``quote(t_s)`` is what the source publishes at ``t_s``: ``None`` while stale, else the fair price
    times ``exp(noise)`` times the factor of an active outlier fault. ``controlled`` sources are not
    quoted by the runner at all (an agent, the attacker, quotes them).
    """

    name: str
    market: str
    process: PriceProcess
    rng: random.Random
    every_s: float = 1.0
    latency_s: float = 0.0
    noise_bps: float = 0.0
    faults: tuple[Fault, ...] = ()
    controlled: bool = False
    quotes: int = field(default=0, init=False)

    def stale(self, t_s: float) -> bool:
        """True while a stale fault silences the source."""
        return any(f.kind == "stale" and f.active(t_s) for f in self.faults)

    def outlier_factor(self, t_s: float) -> float:
        """The product of the factors of the outlier faults active at ``t_s`` (1.0 when none)."""
        factor = 1.0
        for fault in self.faults:
            if fault.kind == "outlier" and fault.active(t_s):
                factor *= fault.factor
        return factor

    def quote(self, t_s: float) -> float | None:
        """The price this source publishes at ``t_s``, or ``None`` when it is silent."""
        fair = self.process.price_at(t_s)
        if self.controlled or self.stale(t_s):
            return None
        price = fair
        if self.noise_bps:
            price *= math.exp(self.rng.gauss(0.0, self.noise_bps / 10_000))
        self.quotes += 1
        return price * self.outlier_factor(t_s)


def parse_faults(rows: Sequence[Mapping[str, Any]], where: str) -> tuple[Fault, ...]:
    """Faults from their scenario tables: ``{kind, start_s, end_s[, factor]}``.

    Raises
    ------
    SourceError
        If a kind is unknown, a window is empty or a factor is not positive.
    """
    out: list[Fault] = []
    for number, row in enumerate(rows):
        kind = row.get("kind")
        if kind not in ("stale", "outlier"):
            raise SourceError(f"{where}.faults[{number}].kind was {kind!r}; use 'stale' or 'outlier'")
        try:
            fault = Fault(str(kind), float(row["start_s"]), float(row["end_s"]), float(row.get("factor", 1)))
        except KeyError as exc:
            raise SourceError(f"{where}.faults[{number}] needs {exc.args[0]!r}") from exc
        except (TypeError, ValueError) as exc:
            raise SourceError(f"{where}.faults[{number}]: {exc}") from exc
        if fault.end_s <= fault.start_s:
            raise SourceError(f"{where}.faults[{number}]: end_s must be after start_s")
        if fault.kind == "outlier" and fault.factor <= 0:
            raise SourceError(f"{where}.faults[{number}]: factor must be greater than zero")
        out.append(fault)
    return tuple(out)
