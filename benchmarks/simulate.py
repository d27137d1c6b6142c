"""Engine commands/s under the agent load of the calm-day and cascade scenarios.

    python benchmarks/simulate.py                 # both scenarios, seed 1, 3 runs per figure
    python benchmarks/simulate.py --runs 5 --scale 2
    python benchmarks/simulate.py --sweep          # also sweeps/cascade_insurance.toml, 1 and 2 workers

For each scenario it runs the simulation once in memory (no journal) and keeps the command stream
its agents and sources produced. Then, per run:

* **engine**: a fresh engine applies the recorded stream (``engine.apply`` only): the engine's
  commands/s under that load, the figure comparable with ``benchmarks/matching.py``;
* **simulation**: the whole run again (agents deciding, sources, sampling, invariant checks every
  ``check_every_s``, no journal): the commands/s a user of ``perpx simulate`` sees.

Figures are medians of ``--runs``. The last line is the JSON result. With ``--sweep``,
:func:`sweep_figures` adds the sweep's cells/minute (one cell = one simulation) with 1 and 2 workers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from perpx.engine.commands import Command
from perpx.engine.engine import Engine
from perpx.engine.events import Event
from perpx.engine.state import state_hash
from perpx.sim.runner import Simulation
from perpx.sim.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
SWEEPS = Path(__file__).resolve().parents[1] / "sweeps"


def record(name: str, seed: int, scale: float) -> tuple[Simulation, list[Command], float]:
    """Run ``name`` once; its simulation, every command it applied, and its wall seconds."""
    scenario = load_scenario(SCENARIOS / f"{name}.toml", {"run.scale": scale})
    sim = Simulation(scenario, seed)
    commands: list[Command] = []
    submit = sim.submit

    def recording(command: Command) -> list[Event]:
        commands.append(command)
        return submit(command)

    sim.submit = recording  # type: ignore[method-assign]
    started = time.perf_counter()
    sim.setup()
    sim.run()
    return sim, commands, time.perf_counter() - started


def engine_rate(sim: Simulation, commands: list[Command]) -> tuple[float, str]:
    """Commands/s of a fresh engine applying ``commands``, and the state hash it reaches."""
    engine = Engine(sim.scenario.config)
    apply = engine.apply
    started = time.perf_counter()
    for command in commands:
        apply(command)
    return len(commands) / (time.perf_counter() - started), state_hash(engine)


def simulation_rate(name: str, seed: int, scale: float) -> float:
    scenario = load_scenario(SCENARIOS / f"{name}.toml", {"run.scale": scale})
    sim = Simulation(scenario, seed)
    started = time.perf_counter()
    sim.setup()
    sim.run()
    return sim.commands / (time.perf_counter() - started)


def sweep_figures(sweep_file: Path | None, workers: tuple[int, ...] = (1, 2)) -> dict[str, Any]:
    """The sweep's cells/minute with 1 and 2 local workers (``--sweep``; nothing without it).

    A cell here is one simulation, a grid point with one seed. Each worker count runs the whole sweep
    (no output files) with the local executor; 2 workers must give the same table as 1, or the
    benchmark fails. Printed per worker count; returned under ``sweep``.
    """
    if sweep_file is None:
        return {}
    from perpx.sim.sweep import load_sweep, run_sweep

    spec = load_sweep(sweep_file)
    figures: dict[str, Any] = {"file": str(sweep_file), "cells": len(spec.tasks()), "cpus": os.cpu_count()}
    tables = []
    for count in workers:
        outcome = run_sweep(spec, None, workers=count)
        assert outcome.errors == 0, f"{outcome.errors} runs of the sweep raised"
        tables.append(outcome.rows)
        per_minute = len(outcome.rows) / outcome.wall_seconds * 60
        figures[f"workers_{count}"] = {
            "wall_seconds": round(outcome.wall_seconds, 2),
            "cells_per_minute": round(per_minute, 1),
        }
        print(
            f"sweep {spec.name:16s} {len(outcome.rows):>5} cells  {count} worker(s)"
            f"  {outcome.wall_seconds:7.1f} s  {per_minute:8.1f} cells/minute"
        )
    assert all(rows == tables[0] for rows in tables), "the sweep's table depends on the worker count"
    return {"sweep": figures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every agent count")
    parser.add_argument("--scenarios", nargs="+", default=["calm_day", "liquidation_cascade"])
    parser.add_argument(
        "--sweep",
        type=Path,
        nargs="?",
        const=SWEEPS / "cascade_insurance.toml",
        default=None,
        help="also time this sweep with 1 and 2 workers (default file: sweeps/cascade_insurance.toml)",
    )
    args = parser.parse_args()
    result: dict[str, Any] = {"python": platform.python_version(), "seed": args.seed, "runs": args.runs}
    for name in args.scenarios:
        sim, commands, _ = record(name, args.seed, args.scale)
        engine_runs = []
        for _ in range(args.runs):
            rate, digest = engine_rate(sim, commands)
            assert digest == sim.summary(1.0)["state_hash"], "the replayed stream reached another state"
            engine_runs.append(rate)
        sim_runs = [simulation_rate(name, args.seed, args.scale) for _ in range(args.runs)]
        row = {
            "commands": len(commands),
            "events": sim.events,
            "sim_seconds": sim.scenario.duration_s,
            "agents": len(sim.agents),
            "liquidations": sim.metrics.liquidations,
            "adl_events": sim.metrics.adl_legs,
            "engine_commands_per_s": round(statistics.median(engine_runs)),
            "simulation_commands_per_s": round(statistics.median(sim_runs)),
        }
        result[name] = row
        print(
            f"{name:22s} {row['commands']:>8,} commands  engine {row['engine_commands_per_s']:>8,}/s"
            f"  whole simulation {row['simulation_commands_per_s']:>8,}/s"
        )
    result.update(sweep_figures(args.sweep))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
