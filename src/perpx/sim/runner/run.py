"""``run_scenario``: the one call behind ``perpx simulate`` and every sweep cell.

It resolves the scenario (a file or a loaded one, with overrides), opens the journal when the run
has a directory, runs a :class:`~perpx.sim.runner.simulation.Simulation`, and writes the files::

    DIR/summary.json, DIR/series.json, DIR/report.html   (:mod:`~perpx.sim.runner.files`)
    DIR/journal/          the venue data directory: config.toml, journal.log, snapshots/
                          perpx replay DIR/journal            reproduces the state hash
                          perpx explain --data DIR/journal --account N   explains a liquidation

The journal's ``config.toml`` is the scenario's venue config with ``durability = "none"`` (a
simulation needs no fsync; the state it replays to is the same). With ``out_dir=None`` (sweeps) the
engine runs in memory with no journal at all. The wall clock is read only for ``wall_seconds`` and
the progress bar, never by the simulation.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from perpx.journal.store import Store, open_store
from perpx.sim.agents import AgentError
from perpx.sim.result import RunResult
from perpx.sim.runner.explanations import explain_largest
from perpx.sim.runner.files import write_result
from perpx.sim.runner.simulation import Simulation
from perpx.sim.scenario import (
    Scenario,
    ScenarioError,
    apply_overrides,
    dump_toml,
    load_scenario,
    scenario_from_document,
)
from perpx.sim.sources import NS_PER_S

JOURNAL_DIR = "journal"


class RunError(RuntimeError):
    """A run that cannot start (for example an output directory that already holds a run)."""


def run_scenario(
    scenario: Scenario | str | Path,
    seed: int,
    out_dir: Path | None,
    *,
    overrides: Mapping[str, object] | None = None,
    progress: bool = False,
    write_outputs: bool = True,
    report: bool = True,
) -> RunResult:
    """Run ``scenario`` with ``seed`` and return its :class:`~perpx.sim.result.RunResult`.

    Parameters
    ----------
    scenario
        A loaded scenario, or the path of a scenario file.
    seed
        Seed of every random draw of the run.
    out_dir
        Where to write the journal, ``summary.json``, ``series.json`` and the report; ``None`` runs
        in memory without a journal (the fast path for sweeps).
    overrides
        Dotted paths to set in the scenario document first (:func:`~perpx.sim.scenario.apply_overrides`).
    progress
        Show a rich progress bar (simulated time, events/s) on the terminal.
    write_outputs
        With ``out_dir``, write the files (``False``: only the journal).
    report
        With the files, draw ``report.html`` and the PNGs too (``False``: summary and series only).

    Raises
    ------
    ScenarioError
        If the scenario or an override is unusable.
    RunError
        If ``out_dir`` already holds a run's journal.
    """
    loaded = _resolve(scenario, overrides)
    store: Store | None = None
    if out_dir is not None:
        out_dir = Path(out_dir)
        journal = out_dir / JOURNAL_DIR
        if (journal / "journal.log").exists():
            raise RunError(
                f"{out_dir} already holds a run ({journal}/journal.log); give a new --out directory"
            )
        config = dict(loaded.doc["config"])
        config["venue"] = {**config.get("venue", {}), "durability": "none"}
        store, _ = open_store(journal, dump_toml(config))
    try:
        sim = Simulation(loaded, seed, store)
    except (AgentError, ValueError) as exc:
        if store is not None:
            store.close(snapshot_on_close=False)
        raise ScenarioError(str(exc)) from exc
    started = time.perf_counter()
    if progress:
        _run_with_progress(sim)
    else:
        sim.setup()
        sim.run()
    if store is not None:
        store.close()
    wall = time.perf_counter() - started
    result = RunResult(
        scenario=loaded.name,
        seed=seed,
        summary=sim.summary(wall),
        series=sim.recorder.series,
        venue_series=sim.recorder.venue_series,
        markers=sim.metrics.markers,
    )
    if out_dir is not None and write_outputs:
        explained = explain_largest(out_dir / JOURNAL_DIR, result.summary, out_dir) if report else {}
        write_result(result, out_dir, draw=report, explanations=explained)
    return result


def _resolve(scenario: Scenario | str | Path, overrides: Mapping[str, object] | None) -> Scenario:
    if isinstance(scenario, Scenario):
        if not overrides:
            return scenario
        return scenario_from_document(
            apply_overrides(scenario.doc, overrides), scenario.base_dir, scenario.path
        )
    return load_scenario(scenario, overrides)


def _run_with_progress(sim: Simulation) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    total = sim.duration_ns / NS_PER_S
    started = time.perf_counter()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:>8.0f} / {task.total:.0f} simulated s"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        transient=False,
    ) as bar:
        task = bar.add_task(sim.scenario.name, total=total, rate="")

        def report(t_s: float, events: int) -> None:
            wall = time.perf_counter() - started
            rate = f"{events / wall:,.0f} events/s" if wall > 0 else ""
            bar.update(task, completed=t_s, rate=rate)

        sim.on_progress = report
        sim.setup()
        sim.run()
        bar.update(task, completed=total)


__all__ = ["JOURNAL_DIR", "RunError", "run_scenario"]
