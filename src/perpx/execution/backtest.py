"""Backtest one parent order on a risk-lab scenario: the real engine, the scenario's market, TCA.

:func:`backtest` runs the scenario's simulation (:class:`~perpx.sim.runner.simulation.Simulation`)
on its simulated clock, opens and funds an ``algo`` account, lets the market run ``warmup_s``
(so VWAP and IS have history to read), then works the parent through
:class:`~.inprocess.EngineVenue`, interleaving the runner's wake-ups with the simulation's own
work. It returns (and with ``out_dir`` writes) the fills, the child log (why each child was sent)
and a TCA report from :mod:`perpx.tca`::

    OUT/child_log.jsonl   the runner's write-ahead log (:mod:`.childlog`)
    OUT/fills.csv         ts_ms, price, qty, fee, liquidity (the TCA CSV format)
    OUT/tca/              tca.json, fills.parquet, report.html (:func:`perpx.tca.report.write_report`)
    OUT/backtest.json     the run: parent, figures (tracking error, participation, pre_trade: the
                          estimate beside the realised cost, :mod:`perpx.tca.pretrade`), TCA summary

Benchmarks: the arrival (and decision) price is the mid when the parent starts; the tape is
every trade of the market during the parent's life (``own`` by trade id); quotes are the top of
book sampled at every wake-up (``period_s``), so mid-based metrics have that resolution.
Same scenario and seed give the same run.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perpx.execution.childlog import ChildLog, Record
from perpx.execution.model import ParentOrder
from perpx.execution.runner import NS_PER_S, ParentRunner, StepRecord, StrategyFactory
from perpx.execution.simvenue import SimMarket, fills_tca, sample_quote
from perpx.execution.strategy import BoundParent
from perpx.execution.venue import Fill, PublicTrade
from perpx.sim.runner.simulation import START_NS
from perpx.sim.scenario import Scenario, load_scenario
from perpx.tca.analysis import Analysis
from perpx.tca.inputs import Quote
from perpx.tca.pretrade import parent_pre_trade
from perpx.tca.report import write_report

NS_PER_MS = 1_000_000


class BacktestError(ValueError):
    """A backtest that cannot run as asked (unknown market, no book at the start, bad scenario)."""


@dataclass(frozen=True, slots=True)
class BacktestResult:
    """Everything one backtest produced."""

    bound: BoundParent
    fills: list[Fill]
    child_log: list[Record]
    history: list[StepRecord]
    tape: list[PublicTrade]
    quotes: list[Quote]
    analysis: Analysis
    figures: dict[str, Any]

    @property
    def tca(self) -> dict[str, Any]:
        return self.analysis.summary()


def backtest(
    parent: ParentOrder,
    scenario: Scenario | Path | str,
    *,
    seed: int | None = None,
    warmup_s: int = 900,
    deposit: str = "10000000",
    period_s: int = 5,
    algo_seed: int = 0,
    make_strategy: StrategyFactory | None = None,
    out_dir: Path | None = None,
) -> BacktestResult:
    """Work ``parent`` on ``scenario`` (module docstring) and return the fills, log, TCA and figures.

    ``parent.start_ns``/``end_ns`` are not needed: a parent without ``start_ns`` starts after the
    warm-up. The run ends when the parent is done or the scenario's duration is over (then the
    working children are canceled, and the remainder is the TCA's opportunity cost).

    Raises
    ------
    BacktestError
        If the scenario has no such market or no book at the start.
    ParentOrderError
        If the parent cannot be bound to the market.
    """
    loaded = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    if parent.market not in loaded.config.markets:
        raise BacktestError(
            f"market: {parent.market!r} is not in the scenario (has {', '.join(loaded.config.markets)})"
        )
    market = SimMarket.open(loaded, seed, deposit, "algo-backtest-deposit")
    sim, venue, end_of_run = market.sim, market.venue, market.end_of_run_ns
    market.advance_to(parent.start_ns if parent.start_ns is not None else START_NS + warmup_s * NS_PER_S)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    log = ChildLog(None if out_dir is None else out_dir / "child_log.jsonl")
    quotes: list[Quote] = []
    try:
        runner = ParentRunner.start(
            venue, parent, log, seed=algo_seed, make_strategy=make_strategy, period_s=period_s
        )
        sample_quote(venue, parent.market, quotes)
        while not runner.done and sim.now_ns < end_of_run:
            target = min(max(runner.wake_ns, sim.now_ns + 1), sim.now_ns + period_s * NS_PER_S, end_of_run)
            market.advance_to(target)
            sample_quote(venue, parent.market, quotes)
            runner.step()
        if not runner.done:
            runner.cancel_all("scenario ended before the parent finished")
        end_ns = sim.now_ns
    finally:
        log.close()
    bound = runner.bound
    fills = [f for f in venue.fills(parent.market, bound.start_ns) if f.client_order_id in runner.children]
    tape = [t for t in venue.public_trades(parent.market, bound.start_ns) if t.ts_ns <= end_ns]
    analysis = _tca(bound, fills, tape, quotes, end_ns)
    figures = schedule_figures(bound, runner.history, end_ns)
    figures["pre_trade"] = parent_pre_trade(venue, bound, quotes, analysis.fills, end_ns)
    result = BacktestResult(bound, fills, list(log.records), runner.history, tape, quotes, analysis, figures)
    if out_dir is not None:
        _write(out_dir, result)
    return result


def _tca(
    bound: BoundParent, fills: list[Fill], tape: list[PublicTrade], quotes: list[Quote], end_ns: int
) -> Analysis:
    arrival = bound.arrival_ticks * bound.filters.tick_size
    window = (bound.start_ns, end_ns)
    return fills_tca(bound.filters, bound.parent.side, bound.qty_lots, arrival, window, fills, tape, quotes)


def schedule_figures(bound: BoundParent, history: list[StepRecord], end_ns: int) -> dict[str, Any]:
    """Tracking error against the straight-line plan and realised participation, from the steps.

    Tracking error is ``max_t |filled(t) - Q (t - start)/(end - start)| / Q`` over the wake-ups
    (the TWAP definition of the reference, section 5); participation is ``filled / market volume``
    (own fills included) at the end, and its range over the steps after the first 10% of the
    market volume (earlier ratios are noise over a few trades).
    """
    qty = bound.qty_lots
    end = bound.end_ns or end_ns
    span = max(1, end - bound.start_ns)
    tracking = max(
        (
            abs(h.filled_lots - qty * min(1.0, max(0.0, (h.now_ns - bound.start_ns) / span))) / qty
            for h in history
        ),
        default=0.0,
    )
    last = history[-1] if history else None
    volume = last.market_volume_lots if last else 0
    settled = [
        h for h in history if last and h.market_volume_lots >= 0.1 * volume and h.market_volume_lots > 0
    ]
    rates = [h.filled_lots / h.market_volume_lots for h in settled]
    return {
        "tracking_error": round(tracking, 6),
        "filled_lots": last.filled_lots if last else 0,
        "qty_lots": qty,
        "market_volume_lots": volume,
        "participation": round(last.filled_lots / volume, 6) if last and volume else None,
        "participation_min": round(min(rates), 6) if rates else None,
        "participation_max": round(max(rates), 6) if rates else None,
        "steps": len(history),
        "children": sum(h.sent for h in history),
    }


def _write(out: Path, result: BacktestResult) -> None:
    f = result.bound.filters
    with (out / "fills.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["ts_ms", "price", "qty", "fee", "liquidity"])
        for fill in result.fills:
            writer.writerow(
                [
                    fill.ts_ns // NS_PER_MS,
                    fill.price_ticks * f.tick_size,
                    fill.qty_lots * f.lot_size,
                    fill.fee,
                    "MAKER" if fill.is_maker else "TAKER",
                ]
            )
    summary = write_report(result.analysis, out / "tca") if result.fills else result.tca
    (out / "backtest.json").write_text(
        json.dumps(
            {"parent": result.bound.parent.client_algo_id, "figures": result.figures, "tca": summary},
            indent=2,
            default=str,
        )
        + "\n"
    )
