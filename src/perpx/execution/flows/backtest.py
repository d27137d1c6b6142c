"""Backtest a strategy document on a risk-lab scenario: the real engine, the scenario's market, TCA.

The flow counterpart of :func:`perpx.execution.backtest.backtest` (one parent): the scenario's
simulation runs on its simulated clock, an ``algo`` account is opened and funded, the market runs
``warmup_s``, then the whole flow runs on :class:`~perpx.execution.inprocess.EngineVenue`, its
wake-ups (every ``period_s``) interleaved with the simulation's own work. When the scenario ends
first, every working order and algo child is canceled. With ``out_dir`` it writes::

    OUT/flow_journal.jsonl       every node's change of state, with why (:mod:`.journal`)
    OUT/children/*.childlog      each algo node's child log: why each child was sent
    OUT/fills.csv                node, market, ts_ms, price, qty, fee, liquidity
    OUT/tca/<node>/              tca.json, fills.parquet, report.html for each node that traded
    OUT/backtest.json            node statuses and reasons, fills per node, TCA summaries

Each trading node's TCA benchmarks against its own arrival (the mid when the node started), over
its own life, against its market's tape; quotes are the top of book sampled at every wake-up.
The same document, scenario and seed give the same run.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perpx.execution.document.model import NodeType, StrategyDocument
from perpx.execution.inprocess import EngineVenue
from perpx.execution.simvenue import SimMarket, fills_tca, sample_quote
from perpx.execution.venue import Fill
from perpx.sim.runner.simulation import START_NS
from perpx.sim.scenario import Scenario, load_scenario
from perpx.tca.analysis import Analysis
from perpx.tca.inputs import Quote
from perpx.tca.report import write_report

from .algos import RunnerStarter
from .journal import FlowJournal
from .runner import FlowRunner

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000


class FlowBacktestError(ValueError):
    """A document that cannot run on the scenario; the message names the place in the document."""


@dataclass
class FlowBacktest:
    """What one flow backtest produced: the runner (nodes, log), fills by node, TCA by node."""

    runner: FlowRunner
    fills: dict[str, list[Fill]]
    analyses: dict[str, Analysis] = field(default_factory=dict)
    end_ns: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "flow": self.runner.flow_id,
            "finished": self.runner.finished,
            "nodes": {
                name: {
                    "status": state.status.value,
                    "reason": state.reason,
                    "filled_lots": state.filled_lots,
                    "qty_lots": state.qty_lots,
                    "avg_price": None if state.avg_price is None else str(state.avg_price),
                    "fills": len(self.fills.get(name, [])),
                }
                for name, state in self.runner.nodes.items()
            },
            "tca": {name: analysis.summary() for name, analysis in self.analyses.items()},
        }


def markets_of(document: StrategyDocument) -> list[tuple[str, str]]:
    """``(path in the document, market)`` of every market the document trades or watches."""
    found = [(f"parents.{pid}.market", p.market) for pid, p in document.parents.items()]
    for i, node in enumerate(document.flow.nodes):
        if node.order is not None:
            found.append((f"flow.nodes[{i}].order.market", node.order.market))
        for name, trigger in (("trigger", node.trigger), ("when", node.when)):
            if trigger is not None and trigger.market is not None:
                found.append((f"flow.nodes[{i}].{name}.market", trigger.market))
    return found


def backtest_flow(
    document: StrategyDocument,
    scenario: Scenario | Path | str,
    *,
    flow_id: str = "backtest",
    seed: int | None = None,
    warmup_s: int = 900,
    deposit: str = "10000000",
    period_s: int = 5,
    out_dir: Path | None = None,
) -> FlowBacktest:
    """Run ``document`` on ``scenario`` (module docstring).

    Raises
    ------
    FlowBacktestError
        If the document names a market the scenario does not have.
    """
    loaded = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    missing = [
        f"{path}: {market!r} is not in the scenario"
        for path, market in markets_of(document)
        if market not in loaded.config.markets
    ]
    if missing:
        raise FlowBacktestError("; ".join(missing) + f" (it has {', '.join(loaded.config.markets)})")
    market_run = SimMarket.open(loaded, seed, deposit, "flow-backtest-deposit")
    sim, venue, end_of_run = market_run.sim, market_run.venue, market_run.end_of_run_ns
    market_run.advance_to(START_NS + warmup_s * NS_PER_S)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    starter = RunnerStarter(venue, None if out_dir is None else out_dir / "children", period_s=period_s)
    journal = FlowJournal(None if out_dir is None else out_dir / "flow_journal.jsonl")
    runner = FlowRunner(document, venue, flow_id, starter, journal)
    markets = sorted({market for _, market in markets_of(document)})
    quotes: dict[str, list[Quote]] = {market: [] for market in markets}
    try:
        _sample(venue, quotes)
        runner.step()
        while not runner.finished and sim.now_ns < end_of_run:
            target = min(sim.now_ns + period_s * NS_PER_S, end_of_run)
            market_run.advance_to(target)
            _sample(venue, quotes)
            runner.step()
        if not runner.finished:
            runner.cancel_all("scenario ended before the flow finished")
    finally:
        runner.close()
    result = FlowBacktest(runner, _node_fills(runner, starter, venue), end_ns=sim.now_ns)
    for name, fills in result.fills.items():
        if fills:
            result.analyses[name] = _tca(runner, name, fills, venue, quotes, sim.now_ns)
    if out_dir is not None:
        _write(out_dir, result)
    return result


def _sample(venue: EngineVenue, quotes: dict[str, list[Quote]]) -> None:
    for market, rows in quotes.items():
        sample_quote(venue, market, rows)


def _node_fills(runner: FlowRunner, starter: RunnerStarter, venue: EngineVenue) -> dict[str, list[Fill]]:
    fills: dict[str, list[Fill]] = {}
    for node in runner.document.flow.nodes:
        state = runner.nodes[node.id]
        if node.order is not None and state.client_order_id is not None:
            market, ids = node.order.market, {state.client_order_id}
        elif node.type is NodeType.ALGO and node.parent is not None:
            parent = runner.document.parents[node.parent]
            handle = starter.handles.get(parent.client_algo_id)
            if handle is None:
                continue
            market, ids = parent.market, set(handle.runner.children)
        else:
            continue
        fills[node.id] = [f for f in venue.fills(market, 0) if f.client_order_id in ids]
    return fills


def _tca(
    runner: FlowRunner,
    name: str,
    fills: list[Fill],
    venue: EngineVenue,
    quotes: dict[str, list[Quote]],
    end_ns: int,
) -> Analysis:
    node, state = next(n for n in runner.document.flow.nodes if n.id == name), runner.nodes[name]
    if node.order is not None:
        market, side = node.order.market, node.order.side
    else:
        assert node.parent is not None
        parent = runner.document.parents[node.parent]
        market, side = parent.market, parent.side
    f = venue.filters(market)
    start_ns = state.started_ns or fills[0].ts_ns
    arrival = state.arrival_price or fills[0].price_ticks * f.tick_size
    qty_lots = max(state.qty_lots, sum(x.qty_lots for x in fills))
    tape = [t for t in venue.public_trades(market, start_ns) if t.ts_ns <= end_ns]
    return fills_tca(f, side, qty_lots, arrival, (start_ns, end_ns), fills, tape, quotes.get(market, []))


def _write(out: Path, result: FlowBacktest) -> None:
    venue = result.runner.venue
    with (out / "fills.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["node", "market", "ts_ms", "price", "qty", "fee", "liquidity"])
        for name, fills in result.fills.items():
            for fill in fills:
                market = next(
                    (n.order.market if n.order else result.runner.document.parents[n.parent or ""].market)
                    for n in result.runner.document.flow.nodes
                    if n.id == name
                )
                f = venue.filters(market)
                writer.writerow(
                    [
                        name,
                        market,
                        fill.ts_ns // NS_PER_MS,
                        fill.price_ticks * f.tick_size,
                        fill.qty_lots * f.lot_size,
                        fill.fee,
                        "MAKER" if fill.is_maker else "TAKER",
                    ]
                )
    for name, analysis in result.analyses.items():
        write_report(analysis, out / "tca" / name)
    (out / "backtest.json").write_text(json.dumps(result.summary(), indent=2, default=str) + "\n")
