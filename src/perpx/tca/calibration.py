"""Is the pre-trade estimate biased? N simulated algo orders, each estimated before it started.

:func:`calibrate_orders` draws N parent orders (side, quantity log-uniform in a range, duration
uniform in a range, and the simulation's seed: all from one generator seeded by ``seed``), works
each with :func:`perpx.execution.backtest.backtest` on a risk-lab scenario, and keeps the
backtest's ``pre_trade`` block (:mod:`perpx.tca.pretrade`): the estimate from the data before the
parent started and the realised arrival slippage without fees, both in bps, positive = cost.

:func:`statistics` then answers, over the orders that filled anything:

* **bias**: ``d_i = realised_i - predicted_i``; its mean with a Student-t 95% interval and its
  median with a bootstrap 95% interval (percentile, 2,000 resamples, seeded). An interval that
  excludes zero says the estimate is biased;
* **slope**: ordinary least squares of realised on predicted (slope 1 and intercept 0 for an
  unbiased estimate whose size is right), with the slope's 95% interval and ``R^2``;
* **uncertainty**: the share of orders with ``|surprise_std| <= 1`` (about 0.68 when the
  estimate's standard deviation is right) and the standard deviation of ``surprise_std`` (1);
* **the fitted impact coefficient**: ``realised_i - half_spread_i = Y x_i`` through the origin
  with ``x_i = sigma_d sqrt(Q_i / V_d)`` in bps, which is what ``perpx tca calibrate`` prints for
  the next run's ``--impact-y``, and the mean bias that ``Y`` would have left (in-sample).

This module drives the simulator (through the execution backtest), so it is the one part of
``perpx.tca`` the import contract lets reach it; the analysis modules still never do.
"""

from __future__ import annotations

import csv
import html
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from scipy import stats as sps

from perpx.execution.backtest import backtest
from perpx.execution.model import decode_parent
from perpx.sim.scenario import load_scenario
from perpx.tca.estimate import PRIOR_IMPACT_Y
from perpx.tca.inputs import InputError

CALIBRATION_JSON = "calibration.json"
CALIBRATION_HTML = "calibration.html"
ORDERS_CSV = "orders.csv"
CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2_000
END_MARGIN_S = 120
"""The simulation runs this long past the parent's window, so its end is not the scenario's."""
ALGOS = ("twap", "vwap", "pov", "is")
CALM_DAY = Path(__file__).resolve().parents[3] / "scenarios" / "calm_day.toml"
"""The shipped calm day (a source checkout's ``scenarios/``), the default market to trade in."""


@dataclass(frozen=True, slots=True)
class OrderSpec:
    """One simulated parent: what was drawn for it."""

    index: int
    seed: int
    side: str
    qty: Decimal
    duration_s: int

    @property
    def client_algo_id(self) -> str:
        return f"cal-{self.index}"


@dataclass(frozen=True, slots=True)
class Outcome:
    """One order's estimate (made before it started) and realised cost, in bps, positive = cost."""

    index: int
    seed: int
    side: str
    qty: str
    duration_s: int
    fill_rate: float
    predicted_bps: float
    std_bps: float
    half_spread_bps: float
    impact_bps: float
    impact_x_bps: float
    participation: float | None
    realised_bps: float | None

    @property
    def difference_bps(self) -> float | None:
        return None if self.realised_bps is None else self.realised_bps - self.predicted_bps


@dataclass(frozen=True, slots=True)
class Plan:
    """What to draw and how to work it (``perpx tca calibrate``'s options)."""

    orders: int
    seed: int = 1
    scenario: Path = CALM_DAY
    market: str = "BTCUSDT"
    algo: str = "twap"
    qty_min: Decimal = Decimal("0.1")
    qty_max: Decimal = Decimal("5")
    duration_min_s: int = 60
    duration_max_s: int = 600
    warmup_s: int = 600
    passiveness_bps: int = 0
    impact_y: float = PRIOR_IMPACT_Y

    def check(self) -> None:
        """Refuse a plan that cannot run, naming the option."""
        if self.orders < 1:
            raise InputError(f"--orders must be at least 1, was {self.orders}")
        if self.algo not in ALGOS:
            raise InputError(f"--algo must be one of {', '.join(ALGOS)}, was {self.algo!r}")
        if not 0 < self.qty_min <= self.qty_max:
            raise InputError(f"need 0 < --qty-min <= --qty-max, were {self.qty_min} and {self.qty_max}")
        if not 0 < self.duration_min_s <= self.duration_max_s:
            raise InputError(
                f"need 0 < --duration-min-s <= --duration-max-s, were {self.duration_min_s}"
                f" and {self.duration_max_s}"
            )
        if self.warmup_s < 240:
            raise InputError(
                f"--warmup-s must be at least 240 (three one-minute candles), was {self.warmup_s}"
            )
        if not 0 <= self.passiveness_bps <= 10_000:
            raise InputError(f"--passiveness-bps must be 0..10000, was {self.passiveness_bps}")
        if not (math.isfinite(self.impact_y) and self.impact_y > 0):
            raise InputError(f"--impact-y must be a positive number, was {self.impact_y}")
        if not self.scenario.exists():
            raise InputError(f"--scenario: {self.scenario} does not exist")


def draw_orders(plan: Plan) -> list[OrderSpec]:
    """The plan's orders: sides alternate; quantity log-uniform, duration uniform, seed drawn."""
    rng = np.random.default_rng(plan.seed)
    low, high = math.log(plan.qty_min), math.log(plan.qty_max)
    specs = []
    for index in range(plan.orders):
        qty = Decimal(str(math.exp(rng.uniform(low, high)))).quantize(Decimal("0.001"))
        specs.append(
            OrderSpec(
                index=index,
                seed=int(rng.integers(1, 2**31 - 1)),
                side="buy" if index % 2 == 0 else "sell",
                qty=max(qty, plan.qty_min.quantize(Decimal("0.001"))),
                duration_s=int(rng.integers(plan.duration_min_s, plan.duration_max_s + 1)),
            )
        )
    return specs


def run_order(plan: Plan, spec: OrderSpec) -> Outcome:
    """Work one drawn parent on the plan's scenario and keep its ``pre_trade`` block."""
    scenario = load_scenario(
        plan.scenario, {"run.duration_s": plan.warmup_s + spec.duration_s + END_MARGIN_S}
    )
    parent = decode_parent(
        {
            "algo": plan.algo,
            "market": plan.market,
            "side": spec.side,
            "client_algo_id": spec.client_algo_id,
            "qty": str(spec.qty),
            "duration_s": spec.duration_s,
            "passiveness_bps": plan.passiveness_bps,
            **({"pov_target_bps": 1_000} if plan.algo == "pov" else {}),
        }
    )
    result = backtest(parent, scenario, seed=spec.seed, warmup_s=plan.warmup_s)
    block = result.figures["pre_trade"]
    if not block["available"]:
        raise InputError(f"order {spec.index}: no estimate: {block['why']}")
    # the backtest estimates with its own Y; impact is linear in Y, so the plan's Y rescales it
    x = block["impact_bps"] / block["impact_y"]
    return Outcome(
        index=spec.index,
        seed=spec.seed,
        side=spec.side,
        qty=str(spec.qty),
        duration_s=spec.duration_s,
        fill_rate=float(result.tca["fill_rate"]),
        predicted_bps=round(block["half_spread_bps"] + plan.impact_y * x, 4),
        std_bps=block["predicted_std_bps"],
        half_spread_bps=block["half_spread_bps"],
        impact_bps=round(plan.impact_y * x, 4),
        impact_x_bps=round(x, 6),
        participation=block["expected_participation"],
        realised_bps=block["realized_cost_bps"],
    )


def calibrate_orders(plan: Plan, progress: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Run every drawn order of ``plan`` (module docstring), in order; ``progress`` sees each."""
    plan.check()
    outcomes = []
    for spec in draw_orders(plan):
        outcome = run_order(plan, spec)
        outcomes.append(outcome)
        if progress is not None:
            progress(outcome)
    return outcomes


def _interval(low: float, high: float) -> list[float]:
    return [round(low, 4), round(high, 4)]


def _slope(predicted: Any, realised: Any) -> dict[str, Any]:
    """``realised = a + b predicted`` by least squares, ``b``'s 95% interval (t, n - 2) and ``R^2``;
    all ``None`` when every prediction is the same (no slope to fit)."""
    if np.ptp(predicted) == 0:
        return {"slope": None, "slope_ci95": None, "intercept_bps": None, "r2": None}
    fit = sps.linregress(predicted, realised)
    t = float(sps.t.ppf(0.5 + CONFIDENCE / 2, len(predicted) - 2))
    return {
        "slope": round(float(fit.slope), 4),
        "slope_ci95": _interval(float(fit.slope - t * fit.stderr), float(fit.slope + t * fit.stderr)),
        "intercept_bps": round(float(fit.intercept), 4),
        "r2": round(float(fit.rvalue**2), 4),
    }


def statistics(outcomes: Sequence[Outcome], plan: Plan) -> dict[str, Any]:
    """Bias, slope, uncertainty and the fitted ``Y`` over the orders that filled (module docstring).

    Raises
    ------
    InputError
        If fewer than three orders filled anything (no interval can be drawn).
    """
    filled = [o for o in outcomes if o.realised_bps is not None]
    if len(filled) < 3:
        raise InputError(f"only {len(filled)} of {len(outcomes)} orders filled anything: need at least 3")
    predicted = np.array([o.predicted_bps for o in filled])
    realised = np.array([o.realised_bps for o in filled], dtype=float)
    diff = realised - predicted
    n = len(filled)
    mean = float(diff.mean())
    sem = float(diff.std(ddof=1) / math.sqrt(n))
    t = float(sps.t.ppf(0.5 + CONFIDENCE / 2, n - 1))
    median = float(np.median(diff))
    if np.ptp(diff) > 0:
        boot = sps.bootstrap(
            (diff,),
            np.median,
            confidence_level=CONFIDENCE,
            n_resamples=BOOTSTRAP_RESAMPLES,
            method="percentile",
            rng=np.random.default_rng(plan.seed),
        ).confidence_interval
        median_ci = _interval(float(boot.low), float(boot.high))
    else:  # every order missed by the same amount: nothing to resample
        median_ci = _interval(median, median)
    surprise = diff / np.array([o.std_bps for o in filled])
    x = np.array([o.impact_x_bps for o in filled])
    y = realised - np.array([o.half_spread_bps for o in filled])
    denominator = float(x @ x)
    fitted_y = float(x @ y) / denominator if denominator else 0.0
    residual = y - fitted_y * x
    total = float(((y - y.mean()) ** 2).sum())
    refitted = realised - (np.array([o.half_spread_bps for o in filled]) + fitted_y * x)
    return {
        "orders": len(outcomes),
        "filled_orders": n,
        "bias_mean_bps": round(mean, 4),
        "bias_mean_ci95_bps": _interval(mean - t * sem, mean + t * sem),
        "bias_median_bps": round(median, 4),
        "bias_median_ci95_bps": median_ci,
        **_slope(predicted, realised),
        "within_one_std": round(float(np.mean(np.abs(surprise) <= 1)), 4),
        "surprise_std_sd": round(float(surprise.std(ddof=1)), 4),
        "mean_predicted_bps": round(float(predicted.mean()), 4),
        "mean_realised_bps": round(float(realised.mean()), 4),
        "impact_y_used": plan.impact_y,
        "impact_y_fitted": round(fitted_y, 4),
        "impact_y_fit_r2": round(1 - float(residual @ residual) / total, 4) if total > 0 else None,
        "bias_mean_bps_with_fitted_y": round(float(refitted.mean()), 4),
        "conventions": (
            "bps of the arrival mid, positive = cost; realised = arrival slippage without fees of the"
            " filled quantity; predicted = half spread + Y sigma_d sqrt(Q / V_d) from data before the"
            " order started; difference = realised - predicted"
        ),
    }


def headline(summary: dict[str, Any]) -> list[str]:
    """The figures ``perpx tca calibrate`` prints."""
    s = summary
    return [
        f"{s['filled_orders']} of {s['orders']} orders filled; predicted {s['mean_predicted_bps']} bps,"
        f" realised {s['mean_realised_bps']} bps on average",
        f"bias (realised - predicted): mean {s['bias_mean_bps']} bps, 95% CI {s['bias_mean_ci95_bps']};"
        f" median {s['bias_median_bps']} bps, 95% CI {s['bias_median_ci95_bps']}",
        (
            f"realised = {s['intercept_bps']} + {s['slope']} x predicted (slope 95% CI {s['slope_ci95']}),"
            f" R^2 {s['r2']}"
            if s["slope"] is not None
            else "no slope: every order had the same prediction"
        ),
        f"within one predicted std: {s['within_one_std']:.0%} (68% if the std is right);"
        f" sd of surprise {s['surprise_std_sd']}",
        f"impact Y used {s['impact_y_used']}; fitted on these orders {s['impact_y_fitted']}"
        f" (R^2 {s['impact_y_fit_r2']}), which leaves a mean bias of {s['bias_mean_bps_with_fitted_y']} bps",
    ]


def write_calibration(outcomes: Sequence[Outcome], plan: Plan, out: Path) -> dict[str, Any]:
    """Write calibration.json, orders.csv and calibration.html into ``out``; return the JSON."""
    summary = statistics(outcomes, plan)
    out.mkdir(parents=True, exist_ok=True)
    document = {
        "summary": summary,
        "plan": {k: str(v) if isinstance(v, Decimal | Path) else v for k, v in asdict(plan).items()},
        "orders": [asdict(o) for o in outcomes],
    }
    (out / CALIBRATION_JSON).write_text(json.dumps(document, indent=2) + "\n")
    with (out / ORDERS_CSV).open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=[*asdict(outcomes[0]), "difference_bps"])
        writer.writeheader()
        for outcome in outcomes:
            difference = outcome.difference_bps
            writer.writerow(
                {**asdict(outcome), "difference_bps": None if difference is None else round(difference, 4)}
            )
    (out / CALIBRATION_HTML).write_text(_html(outcomes, summary))
    return summary


def _html(outcomes: Sequence[Outcome], summary: dict[str, Any]) -> str:
    filled = [o for o in outcomes if o.realised_bps is not None]
    predicted = [o.predicted_bps for o in filled]
    low, high = min(predicted), max(predicted)
    figure = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("realised against predicted (bps, positive = cost)", "realised - predicted (bps)"),
    )
    figure.add_trace(
        go.Scatter(
            x=predicted,
            y=[o.realised_bps for o in filled],
            mode="markers",
            name="orders",
            text=[f"order {o.index}: {o.side} {o.qty} over {o.duration_s} s" for o in filled],
            error_y={"type": "data", "array": [o.std_bps for o in filled], "visible": True, "thickness": 0.5},
        ),
        row=1,
        col=1,
    )
    figure.add_trace(
        go.Scatter(x=[low, high], y=[low, high], mode="lines", name="realised = predicted"), row=1, col=1
    )
    if summary["slope"] is not None:
        figure.add_trace(
            go.Scatter(
                x=[low, high],
                y=[summary["intercept_bps"] + summary["slope"] * v for v in (low, high)],
                mode="lines",
                name=f"fit: slope {summary['slope']}",
            ),
            row=1,
            col=1,
        )
    figure.add_trace(
        go.Histogram(x=[o.difference_bps for o in filled], name="realised - predicted"), row=1, col=2
    )
    figure.update_layout(title="Pre-trade estimate against realised cost", height=520)
    lines = "".join(f"<li>{html.escape(line)}</li>" for line in headline(summary))
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>perpx tca calibrate</title></head><body>"
        f"<h1>Pre-trade calibration</h1><ul>{lines}</ul><p>{html.escape(summary['conventions'])}</p>"
        + str(figure.to_html(full_html=False, include_plotlyjs=True, include_mathjax=False))
        + "</body></html>\n"
    )
