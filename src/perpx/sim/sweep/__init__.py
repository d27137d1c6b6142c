"""Parameter sweeps: a grid of scenario overrides x seeds, each point one simulation.

A sweep runs one scenario over a grid of parameter values, several seeds per grid cell, reduces
each run to a row of metrics, and answers questions such as "the smallest insurance fund with no
bad debt in 99% of seeds, for each maintenance margin".

==============  ==================================================================================
module          what it holds
==============  ==================================================================================
``spec``        the sweep file: :func:`load_sweep`, :class:`SweepSpec`, its cells and tasks,
                :func:`check_sweep` (every cell against the scenario, before anything runs)
``metrics``     what a sweep can tabulate, how each metric is read from a run, the aggregate columns
``execute``     tasks to rows, on local processes or Ray (the executors)
``analyse``     per-cell aggregates, the answers to the questions, :class:`SweepOutcome`
``outputs``     tables, answers and heatmaps, as files (CSV, Parquet, JSON, PNG, HTML) and text
``run``         :func:`run_sweep`: check, execute, analyse, write
==============  ==================================================================================
"""

from perpx.sim.sweep.analyse import Answer, SweepOutcome, aggregate, answer
from perpx.sim.sweep.execute import (
    EXECUTORS,
    MAX_DEFAULT_WORKERS,
    CellRunner,
    ProgressCallback,
    default_workers,
    import_ray,
    run_real_cell,
    run_task,
)
from perpx.sim.sweep.metrics import (
    DEFAULT_METRICS,
    DERIVED_METRICS,
    SUMMARY_METRICS,
    aggregate_columns,
    is_known_metric,
    metric_value,
)
from perpx.sim.sweep.outputs import (
    answers_document,
    format_answers,
    format_cell,
    heatmap_figures,
    short_names,
    table_columns,
    write_outputs,
)
from perpx.sim.sweep.run import run_sweep
from perpx.sim.sweep.spec import (
    CellValidator,
    Condition,
    Heatmap,
    Question,
    Row,
    SweepError,
    SweepSpec,
    Task,
    Value,
    check_sweep,
    load_sweep,
    validate_real_cell,
)

__all__ = [
    "DEFAULT_METRICS",
    "DERIVED_METRICS",
    "EXECUTORS",
    "MAX_DEFAULT_WORKERS",
    "SUMMARY_METRICS",
    "Answer",
    "CellRunner",
    "CellValidator",
    "Condition",
    "Heatmap",
    "ProgressCallback",
    "Question",
    "Row",
    "SweepError",
    "SweepOutcome",
    "SweepSpec",
    "Task",
    "Value",
    "aggregate",
    "aggregate_columns",
    "answer",
    "answers_document",
    "check_sweep",
    "default_workers",
    "format_answers",
    "format_cell",
    "heatmap_figures",
    "import_ray",
    "is_known_metric",
    "load_sweep",
    "metric_value",
    "run_real_cell",
    "run_sweep",
    "run_task",
    "short_names",
    "table_columns",
    "validate_real_cell",
    "write_outputs",
]
