"""The resumable results file: every finished run's row, appended as it finishes.

A sweep of thousands of runs must survive a Ctrl-C, a lost Ray node or a closed laptop.
``results.jsonl`` in the sweep's directory holds one JSON line per finished run, written and
flushed as the run finishes, after a first line naming the sweep it belongs to (its scenario file,
the scenario's text, the axes and the metrics: everything but the seeds, so a resume may add
seeds). ``perpx sweep ... --resume`` reads it and runs only the (cell, seed) pairs it lacks; a file
of another sweep is refused with a message, never mixed in. A half-written last line (the process
died mid-write) is ignored: that run simply runs again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, TextIO

from perpx.sim.sweep.spec import Row, SweepError, SweepSpec

RESULTS_FILE = "results.jsonl"


def fingerprint(spec: SweepSpec) -> str:
    """What identifies a sweep's runs apart from its seeds: scenario (path and text), axes, metrics."""
    try:
        scenario_text = spec.scenario.read_text(encoding="utf-8")
    except OSError as exc:
        raise SweepError(f"cannot read the scenario {spec.scenario}: {exc}") from exc
    document = {
        "scenario": str(spec.scenario.resolve()),
        "scenario_sha256": hashlib.sha256(scenario_text.encode()).hexdigest(),
        "axes": {axis: list(values) for axis, values in spec.axes.items()},
        "metrics": list(spec.metrics),
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


class ResultsFile:
    """``results.jsonl`` of one sweep: load what is there, append rows as runs finish."""

    def __init__(self, out_dir: Path, spec: SweepSpec) -> None:
        self.path = out_dir / RESULTS_FILE
        self.spec = spec
        self.fingerprint = fingerprint(spec)
        self._file: TextIO | None = None

    def load(self) -> dict[tuple[int, int], Row]:
        """The rows already there, by ``(cell, seed)``; empty when there is no file.

        Raises
        ------
        SweepError
            If the file belongs to another sweep (or is not a results file).
        """
        if not self.path.exists():
            return {}
        lines = self.path.read_text(encoding="utf-8").splitlines()
        header = _parse(lines[0]) if lines else None
        if not isinstance(header, dict) or header.get("sweep") != self.fingerprint:
            raise SweepError(
                f"{self.path} holds the runs of another sweep (its scenario, axes or metrics differ);"
                " delete it or give another --out"
            )
        rows: dict[tuple[int, int], Row] = {}
        for line in lines[1:]:
            row = _parse(line)
            if isinstance(row, dict) and "cell" in row and "seed" in row:
                rows[int(row["cell"]), int(row["seed"])] = row
        return rows

    def open(self, keep: bool) -> None:
        """Open for appending; ``keep`` False starts a fresh file (header only)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not keep or not self.path.exists()
        if not fresh:
            text = self.path.read_text(encoding="utf-8")
            if text and not text.endswith("\n"):  # a half-written last line: end it, it is skipped
                self.path.write_text(text + "\n", encoding="utf-8")
        self._file = self.path.open("w" if fresh else "a", encoding="utf-8")
        if fresh:
            self._write({"sweep": self.fingerprint, "name": self.spec.name})

    def append(self, row: Row) -> None:
        """Write one finished run's row and flush it."""
        self._write(row)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _write(self, document: dict[str, Any]) -> None:
        assert self._file is not None, "open() the results file first"
        self._file.write(json.dumps(document, sort_keys=True) + "\n")
        self._file.flush()


def _parse(line: str) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None


__all__ = ["RESULTS_FILE", "ResultsFile", "fingerprint"]
