"""The ``perpx`` command line: run a demo session, replay, verify or repair a journal, check a config."""

from __future__ import annotations

import dataclasses
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from perpx.agents.command import audit_app
from perpx.compete.command import compete_command
from perpx.config_file import load_config
from perpx.engine.config import DEFAULT_CONFIG_TOML, ConfigError, MarketSpec
from perpx.engine.values import RATE_SCALE, format_units
from perpx.execution.cli import register_commands as algo_commands
from perpx.journal.store import RecoveryError, open_store, read_config, recover
from perpx.lending.cli import lending_app
from perpx.mcp.command import mcp_command
from perpx.ops.command import incident_app, proposals_app, replay_moment
from perpx.otc.command import desk_app
from perpx.otc.config import describe_otc
from perpx.tca.command import tca_app

app = typer.Typer(
    help="perpx: a deterministic perpetual-futures venue.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)
RATE_UNIT = Decimal(1) / RATE_SCALE


def _fail(message: str, code: int = 2) -> typer.Exit:
    # a message is text ("[venue]" must survive) and one line (a log keeps it whole)
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True, highlight=False)
    return typer.Exit(code)


@app.command()
def demo(
    steps: Annotated[int, typer.Option(help="Rounds of trading to simulate.", min=1)] = 300,
    seed: Annotated[int, typer.Option(help="Seed of the agents' randomness.")] = 7,
    data: Annotated[
        Path | None, typer.Option(help="Data directory (journal, snapshots); a new temp dir if omitted.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="Venue TOML; the embedded demo venue if omitted.")
    ] = None,
) -> None:
    """Run a short simulated session on the real engine and print what happened.

    Market makers quote around a drifting mark price and noise traders take;
    every command is journaled, so `perpx replay DIR` reproduces the state hash.
    """
    from perpx.sim.demo import DemoSession

    directory = data or Path(tempfile.mkdtemp(prefix="perpx-demo-"))
    if directory.exists() and any(directory.iterdir()):
        raise _fail(f"{directory} is not empty; give a new --data directory for a fresh session")
    text = (
        config.read_text() if config is not None else DEFAULT_CONFIG_TOML.replace('durability = "batch"', "")
    )
    try:
        store, _ = open_store(directory, text)
    except RecoveryError as exc:
        raise _fail(str(exc)) from exc
    started = time.perf_counter()
    summary = DemoSession(store, seed).run(steps)
    wall = time.perf_counter() - started
    store.close()
    engine = store.engine
    atom = engine.config.settlement.atom
    table = Table(title=f"perpx demo session ({engine.config.name}, seed {seed})", show_header=False)
    table.add_row("commands", f"{summary.commands:,}")
    table.add_row("events", f"{summary.events:,}")
    table.add_row("trades", f"{summary.trades:,}")
    table.add_row("rejected orders", f"{summary.rejections:,}")
    table.add_row("traded notional", f"{format_units(summary.volume_atoms, atom)} {engine.asset}")
    table.add_row("fees collected", f"{format_units(summary.fees_atoms, atom)} {engine.asset}")
    for market, price in summary.last_marks.items():
        table.add_row(f"last mark {market}", f"{price:f}")
    table.add_row("invariant checks", f"{summary.invariant_checks:,} (all passed)")
    table.add_row(
        "wall time",
        f"{wall:.2f} s ({summary.commands / wall:,.0f} commands/s, each command journaled and fsynced)",
    )
    table.add_row("data directory", str(directory))
    console.print(table)
    console.print(f"state hash: {summary.state_hash}")
    console.print(f"Reproduce the state hash from the journal: [bold]perpx replay {directory}[/]")


@app.command()
def replay(
    directory: Annotated[
        Path | None, typer.Argument(help="Data directory holding config.toml and journal.log.")
    ] = None,
    use_snapshots: Annotated[
        bool,
        typer.Option("--snapshots/--no-snapshots", help="Start from the newest snapshot, or from nothing."),
    ] = False,
    data_option: Annotated[Path | None, typer.Option("--data", help="The data directory (as DIR).")] = None,
    until_seq: Annotated[
        int | None, typer.Option(help="Stop after this journal record (needs --out).")
    ] = None,
    until_time: Annotated[
        str | None, typer.Option(help="Stop at this venue time, ms or ISO 8601 (needs --out).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write the venue at that moment here (new directory).")
    ] = None,
) -> None:
    """Re-apply a journal and print what recovery did and the state hash (from nothing by default).

    Reads only: a torn tail is reported and not applied, never cut. A corrupt journal is refused
    (exit 2) with the record and byte offset; `perpx journal verify DIR` tells more. With
    --until-seq or --until-time and --out: the venue as it was then (`perpx incident replay`).
    """
    data = directory if data_option is None else data_option
    if data is None or (directory is not None and data_option is not None):
        raise _fail("give the data directory once: perpx replay DIR, or perpx replay --data DIR")
    if until_seq is not None or until_time is not None or out is not None:
        replay_moment(data, out, until_seq, until_time)
        return
    try:
        config = read_config(data)
        started = time.perf_counter()
        engine, report = recover(data, config, use_snapshots=use_snapshots)
    except RecoveryError as exc:
        raise _fail(str(exc)) from exc
    wall = time.perf_counter() - started
    for problem in report.problems:
        err.print(f"[yellow]warning:[/] {escape(problem)}", highlight=False, soft_wrap=True)
    for line in report.lines()[:-1]:
        console.print(f"recovery       {line}", highlight=False, markup=False, soft_wrap=True)
    console.print(f"records        {report.last_seq}")
    console.print(f"from snapshot  {report.snapshot_seq}")
    console.print(f"replayed       {report.replayed} in {wall:.2f} s")
    console.print(f"accounts       {len(engine.accounts)}")
    console.print(f"open orders    {len(engine.orders)}")
    console.print(f"state hash     {report.state_hash}")


journal_app = typer.Typer(
    help="Check a data directory, or write a repaired copy of it; neither changes the directory.",
    no_args_is_help=True,
)
app.add_typer(journal_app, name="journal")
app.add_typer(tca_app, name="tca")
app.add_typer(algo_commands(), name="algo")
app.add_typer(proposals_app, name="proposals")
app.add_typer(incident_app, name="incident")
app.add_typer(audit_app, name="audit")
app.add_typer(lending_app, name="lending")
app.add_typer(desk_app, name="desk")
app.command("mcp")(mcp_command)
app.command("compete")(compete_command)


@journal_app.command("verify")
def journal_verify(
    data: Annotated[Path, typer.Argument(help="Data directory holding config.toml and journal.log.")],
    replay_journal: Annotated[
        bool,
        typer.Option(
            "--replay/--no-replay",
            help="Re-apply the journal and compare every snapshot with the state at its record.",
        ),
    ] = True,
) -> None:
    """Check the journal, the snapshots and the read models; exit 0 when clean, 1 when not.

    Reports every run of good records, each damaged byte range (torn tail or corruption), each
    snapshot's checksum and state hash, each read model's last record against the journal's, and
    what a start on this directory would do. Never writes.
    """
    from perpx.journal.verify import verify
    from perpx.server.context import READ_MODELS, stored_seqs

    if not data.is_dir():
        raise _fail(f"{data} is not a directory")
    report = verify(data, replay=replay_journal)
    for line in report.lines()[:-1]:
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    clean = report.clean
    journal_last = scan_last_seq(data)
    try:
        seqs = stored_seqs(data)
    except RecoveryError as exc:
        console.print(f"read models: {exc}", highlight=False, markup=False, soft_wrap=True)
        seqs, clean = {}, False
    for model in READ_MODELS:
        if model.name not in seqs or not (data / model.file).exists():
            continue
        seq = seqs[model.name]
        if seq > journal_last:
            state = "AHEAD of the journal: start-up refuses (perpx serve --rebuild-read-models)"
            clean = False
        elif seq < journal_last:
            state = "behind the journal: start-up catches it up"
        else:
            state = "ok"
        line = f"read model {model.name} ({model.file}): record {seq}, journal {journal_last}: {state}"
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    console.print("verdict: clean" if clean else "verdict: problems found (see above)")
    if not clean:
        raise typer.Exit(1)


def scan_last_seq(data: Path) -> int:
    """The last good record of ``data``'s journal (0 when there is none)."""
    from perpx.journal.journal import last_seq
    from perpx.journal.store import JOURNAL_FILE

    return last_seq(data / JOURNAL_FILE)


@journal_app.command("repair")
def journal_repair(
    data: Annotated[Path, typer.Argument(help="Data directory to repair; it is only read.")],
    out: Annotated[
        Path, typer.Option("--out", help="New (or empty) directory to write the repaired copy to.")
    ],
    cut_at_seq: Annotated[
        int | None,
        typer.Option(
            "--cut-at-seq",
            min=0,
            help="Keep records 1..N (default: every record before the first damage).",
        ),
    ] = None,
) -> None:
    """Write a repaired copy of a data directory into a new one, and say exactly what it dropped.

    The copy holds the config, the journal's records up to the cut byte for byte, the snapshots at
    or before it that verify, and the other files unchanged. DIR itself is never changed. Start the
    copy with `perpx serve --data NEWDIR` (add --rebuild-read-models when it says a read model is
    ahead of the new journal).
    """
    from perpx.journal.verify import repair
    from perpx.server.context import READ_MODELS, stored_seqs

    try:
        report = repair(data, out, cut_at_seq)
        seqs = stored_seqs(out)
    except RecoveryError as exc:
        raise _fail(str(exc)) from exc
    for line in report.lines():
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    ahead = [m.name for m in READ_MODELS if seqs.get(m.name, 0) > report.kept_last_seq]
    if ahead:
        console.print(
            f"read models ahead of the new journal: {', '.join(ahead)}; start the copy with"
            f" `perpx serve --data {out} --rebuild-read-models`",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )


fix_app = typer.Typer(help="The FIX 4.4 gateway's dialect.", no_args_is_help=True)
app.add_typer(fix_app, name="fix")


@fix_app.command("dictionary")
def fix_dictionary() -> None:
    """Write perpx's FIX 4.4 data dictionary for QuickFIX (UseDataDictionary=Y) to stdout."""
    from perpx.fix.dictionary import dictionary_xml

    sys.stdout.write(dictionary_xml())


@app.command()
def explain(
    data: Annotated[Path, typer.Option(help="Data directory holding config.toml and journal.log.")],
    account: Annotated[int, typer.Option(help="Account id whose liquidations and ADL to explain.")],
) -> None:
    """Explain every liquidation and auto-deleveraging of an account: inputs, formulas, actions.

    Replays the journal read-only and prints each record the engine wrote for the account.
    """
    from perpx.engine.values import AccountId
    from perpx.explain import explain as explain_account

    try:
        config = read_config(data)
        wide = Console(width=max(console.width, 150))  # the positions table has twelve columns
        report = explain_account(wide, data, config, AccountId(account))
    except RecoveryError as exc:
        raise _fail(str(exc)) from exc
    for problem in report.problems:
        err.print(f"[yellow]warning:[/] {problem}")


@app.command("check-config")
def check_config(path: Annotated[Path, typer.Argument(help="Venue TOML file.")]) -> None:
    """Validate a venue config (every key known) and list its markets: brackets and pricing."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        raise _fail(str(exc)) from exc
    atom = config.settlement.atom
    for market, spec in config.markets.items():
        console.print(
            f"[bold]{market}[/] tick {spec.tick_size} lot {spec.lot_size} max leverage {spec.max_leverage}x"
        )
        for b in spec.brackets:
            console.print(
                f"  tier {b.tier}: notional [{format_units(b.floor_atoms, atom)}, {format_units(b.cap_atoms, atom)})"
                f" {b.max_leverage}x mmr {format_units(b.mmr_e8, RATE_UNIT)} cum {format_units(b.cum_atoms, atom)}"
            )
        for line in _pricing_lines(spec):
            console.print(f"  {line}", markup=False, soft_wrap=True)
    try:
        for line in describe_otc(config.raw, tuple(str(m) for m in config.markets)):
            console.print(line, markup=False, soft_wrap=True)
    except ConfigError as exc:
        raise _fail(str(exc)) from exc
    console.print("config OK")


def _pricing_lines(spec: MarketSpec) -> list[str]:
    """How a market is priced, funded and liquidated, as check-config prints it."""
    risk = spec.risk

    def rate(value: int) -> str:
        return format_units(value, RATE_UNIT)

    index = spec.index
    lines: list[str] = []
    if index is None:
        lines.append("index: none (manual mark, set with SetMarkPrice / POST /admin/v1/marks); no funding")
    else:
        weights = ", ".join(f"{source} {weight}" for source, weight in index.weights.items())
        lines.append(
            f"index: {index.policy} policy over {weights}; stale after {index.stale_after_ns // 10**9} s,"
            f" quorum {index.min_sources}, outlier {rate(index.outlier_e8)}"
        )
        lines.append(
            f"funding: every {risk.funding_interval_hours} h, interest {rate(risk.interest_rate_e8)},"
            f" cap {rate(risk.funding_cap_e8)}, floor {rate(risk.funding_floor_e8)}"
        )
    lines.append(
        f"mark: {risk.mark_policy} policy, basis window {risk.mark_basis_window_s} s,"
        f" held within index x (1 +/- {rate(risk.mark_index_band_e8)}); profit as collateral: {risk.upnl_collateral}"
    )
    lines.append(f"liquidation fee {rate(risk.liquidation_fee_e8)}, ADL ranking {risk.adl_ranking}")
    return lines


@app.command()
def serve(
    config: Annotated[
        Path | None, typer.Option(help="Venue TOML (a new --data directory needs one unless --demo).")
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address of the public listener (REST, WebSocket).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port for REST and WebSocket.", min=0, max=65535)] = 8080,
    data: Annotated[Path, typer.Option(help="Data directory: journal, snapshots, read models, keys.")] = Path(
        "perpx-data"
    ),
    demo: Annotated[
        bool, typer.Option("--demo", help="Run simulated spot sources, market makers and noise traders too.")
    ] = False,
    tick_ms: Annotated[
        int, typer.Option(help="Wall clock: advance an idle venue this often (ms).", min=10)
    ] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the demo agents.")] = 7,
    admin_host: Annotated[str, typer.Option(help="Address of the admin listener.")] = "127.0.0.1",
    admin_port: Annotated[
        int | None,
        typer.Option(
            help="TCP port of the admin API (/admin/v1) [default: --port + 1]; 0 turns it off.",
            min=0,
            max=65535,
        ),
    ] = None,
    forwarded_allow_ips: Annotated[
        str,
        typer.Option(
            help="Proxies whose X-Forwarded-For/-Proto are believed: comma-separated IPs or networks, or '*'."
            " Default: none (the client address is the socket's peer)."
        ),
    ] = "",
    rebuild_read_models: Annotated[
        bool,
        typer.Option(
            "--rebuild-read-models",
            help="Empty the SQLite read models (API keys kept) and rebuild them from the whole journal;"
            " the way out when a read model is ahead of the journal.",
        ),
    ] = False,
    fix_port: Annotated[
        int | None,
        typer.Option(
            help="Accept FIX 4.4 clients on this TCP port (docs: perpx.fix.gateway); off when absent.",
            min=0,
            max=65535,
        ),
    ] = None,
    fix_host: Annotated[str, typer.Option(help="Address of the FIX acceptor.")] = "127.0.0.1",
    log_format: Annotated[
        str, typer.Option(help="text, or json: one object per line, with the journal seq (perpx.ops.logs).")
    ] = "text",
    log_level: Annotated[
        str, typer.Option(help="warning, info (adds the HTTP access log), debug, error or critical.")
    ] = "warning",
    public_metrics: Annotated[
        bool, typer.Option(help="Serve /metrics on the public port too (always on the admin port).")
    ] = False,
) -> None:
    """Run the venue: Binance USDS-M compatible REST + WebSocket, OpenAPI docs at /docs; the admin API
    on its own port; /health and /ready on both.

    Restarting on the same --data directory resumes exactly where it stopped. Every start prints
    what recovery did; a damaged journal or a read model ahead of it refuses the start and changes
    no file (docs/operations.md). Ctrl-C or SIGTERM stops it cleanly: it prints the last journal
    record, the snapshot and the state hash.
    """
    from perpx.server.serve import ServeError, ServeOptions, run

    options = ServeOptions(
        config,
        host,
        port,
        data,
        demo,
        tick_ms=tick_ms,
        seed=seed,
        admin_host=admin_host,
        admin_port=admin_port,
        forwarded_allow_ips=forwarded_allow_ips,
        rebuild_read_models=rebuild_read_models,
        fix_host=fix_host,
        fix_port=fix_port,
        log_format=log_format,
        log_level=log_level,
        public_metrics=public_metrics,
    )
    try:
        report = run(options)
    except (ServeError, RecoveryError, ConfigError) as exc:
        raise _fail(str(exc)) from None
    except KeyboardInterrupt:
        raise _fail(
            "interrupted while starting; nothing was served (the journal is intact)", code=130
        ) from None
    if report.problem is not None:
        raise typer.Exit(1)


@app.command()
def sweep(
    spec: Annotated[
        Path, typer.Argument(help="Sweep TOML: a scenario, a grid of overrides, seeds, questions.")
    ],
    out: Annotated[Path, typer.Option(help="Directory for the tables, heatmaps and answers.json.")],
    executor: Annotated[
        str, typer.Option(help="local (processes on this machine) or ray (pip install 'perpx[ray]').")
    ] = "local",
    workers: Annotated[
        int | None, typer.Option(help="Runs at a time (default: CPU count, at most 8).", min=1)
    ] = None,
    seeds: Annotated[
        int | None, typer.Option(help="Run seeds 1..N per cell instead of the file's seeds.", min=1)
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Keep the runs already in OUT/results.jsonl; run only the missing ones.")
    ] = False,
    address: Annotated[
        str | None,
        typer.Option(help="Ray cluster address (ray://head:10001, or auto); implies --executor ray."),
    ] = None,
    bisect: Annotated[
        int,
        typer.Option(help="Refine each answer's threshold between grid values by N bisection steps.", min=0),
    ] = 0,
) -> None:
    """Run a scenario over a grid of parameters x seeds, tabulate, draw heatmaps, answer the questions.

    Every finished run is appended to OUT/results.jsonl as it finishes; --resume picks up from it.
    Exits 1 when a run raised (its row holds the error), 2 on a bad sweep file or option.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from perpx.sim.sweep import SweepError, format_answers, format_cell, load_sweep, run_sweep, table_columns
    from perpx.sim.sweep.outputs import format_refined

    try:
        parsed = load_sweep(spec)
        if seeds is not None:
            parsed = dataclasses.replace(parsed, seeds=tuple(range(1, seeds + 1)))
        if address is not None:
            executor = "ray"
        runs = len(parsed.tasks())
        console.print(
            f"[bold]{parsed.name}[/]: {len(parsed.cells())} cells x {len(parsed.seeds)} seeds = {runs} runs"
            f" of {parsed.scenario.name}"
        )
        with Progress(
            TextColumn("runs"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        ) as bar:
            task = bar.add_task("runs", total=runs)
            outcome = run_sweep(
                parsed,
                out,
                executor=executor,
                workers=workers,
                on_progress=lambda done, _total: bar.update(task, completed=done),
                resume=resume,
                address=address,
                bisect_steps=bisect,
            )
    except SweepError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"cannot write the sweep's outputs to {out}: {exc}") from None
    table = Table(title=f"{parsed.name}: per cell, over {len(parsed.seeds)} seeds")
    columns = table_columns(parsed)
    for header in columns.values():
        table.add_column(header, justify="right")
    for cell in outcome.cells:
        table.add_row(*(format_cell(name, cell[name]) for name in columns))
    Console(width=max(console.width, 160)).print(table)  # a dozen columns: never squeeze them to 80
    for line in [*format_answers(outcome.answers), *format_refined(outcome.refined)]:
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    minutes = max(outcome.wall_seconds, 1e-9) / 60
    plural = "s" if outcome.workers > 1 else ""
    console.print(
        f"{runs} runs in {outcome.wall_seconds:.1f} s on {outcome.workers} {outcome.executor} worker{plural}"
        f" ({len(outcome.rows) / minutes:,.1f} runs/minute); outputs in {out}",
        soft_wrap=True,
    )
    if outcome.errors:
        raise _fail(f"{outcome.errors} runs raised; see the 'error' column of {out / 'results.csv'}", code=1)


def _scenario_overrides(pairs: list[str]) -> dict[str, object]:
    """``--override key=value`` pairs as dotted paths and values (a TOML value, else the text)."""
    import tomllib

    out: dict[str, object] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key, text = key.strip(), text.strip()
        if not sep or not key:
            raise _fail(
                f"--override {pair!r}: give key=value (a dotted path into the scenario, e.g. insurance.fund=5000)"
            )
        try:
            value: object = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        out[key] = value
    return out


def _list_scenarios(directory: Path) -> None:
    """One line per scenario file in ``directory``: its name and its description."""
    import tomllib

    if not directory.is_dir():
        raise _fail(f"--list: no scenario directory {directory} (give --scenarios DIR)")
    rows: list[tuple[str, str]] = []
    for path in sorted(directory.glob("*.toml")):
        try:
            doc = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError):
            continue
        if "config_file" not in doc and "config" not in doc:
            continue  # a venue config, not a scenario
        rows.append((str(doc.get("name", path.stem)), " ".join(str(doc.get("description", "")).split())))
    if not rows:
        raise _fail(f"--list: no scenario in {directory}")
    width = max(len(name) for name, _ in rows)
    for name, description in rows:
        typer.echo(f"{name.ljust(width)}  {description}")


@app.command()
def simulate(
    scenario: Annotated[
        Path | None, typer.Argument(help="Scenario TOML (see scenarios/, or --list).", show_default=False)
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Output directory: summary, series, journal, report.", show_default=False),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed of every random draw; the scenario's run.seed if omitted.")
    ] = None,
    override: Annotated[
        list[str] | None,
        typer.Option(
            "--override",
            help="key=value: set a dotted path of the scenario document (insurance.fund=5000,"
            " run.duration_s=600, config.markets.BTCUSDT.funding_cap=0.003); repeatable.",
            show_default=False,
        ),
    ] = None,
    list_: Annotated[
        bool,
        typer.Option("--list", help="List the scenarios in --scenarios with their descriptions, and exit."),
    ] = False,
    scenarios: Annotated[Path, typer.Option(help="Where --list looks for scenarios.")] = Path("scenarios"),
    report: Annotated[
        bool, typer.Option(help="Draw report.html and the PNGs (--no-report: summary only).")
    ] = True,
) -> None:
    """Run a scenario on the real engine on a simulated clock; exit 1 if an assertion fails.

    Writes DIR/summary.json, DIR/series.json, the report, and the journal in DIR/journal
    (`perpx replay DIR/journal`, `perpx explain --data DIR/journal --account N`).
    """
    import sys

    from perpx.sim.result import SUMMARY_FIELDS
    from perpx.sim.runner import RunError, run_scenario
    from perpx.sim.scenario import ScenarioError, load_scenario

    if list_:
        _list_scenarios(scenarios)
        return
    if scenario is None:
        raise _fail("give a scenario file (perpx simulate --list shows the shipped ones)")
    if out is None:
        raise _fail("give --out DIR for the run's outputs")
    overrides = _scenario_overrides(override or [])
    try:
        loaded = load_scenario(scenario, overrides)
        result = run_scenario(
            loaded,
            loaded.default_seed if seed is None else seed,
            out,
            progress=sys.stdout.isatty(),
            report=report,
        )
    except (ScenarioError, RunError, RecoveryError) as exc:
        raise _fail(str(exc)) from exc
    s = result.summary
    table = Table(title=f"perpx simulate {s['scenario']} (seed {s['seed']})", show_header=False)
    for key in SUMMARY_FIELDS:
        if key in ("scenario", "seed", "state_hash", "assertions"):
            continue
        table.add_row(key, f"{s[key]:,}" if isinstance(s[key], int | float) else str(s[key]))
    console.print(table)
    for a in s["assertions"]:
        mark = "[green]PASS[/]" if a["passed"] else "[bold red]FAIL[/]"
        console.print(f"{mark} {a['name']}: {a['detail']}")
    for message in s.get("invariant_messages", []):
        err.print(f"[bold red]invariant:[/] {message}")
    console.print(f"state hash: {s['state_hash']}")
    console.print(f"outputs in {out}; replay with [bold]perpx replay {out / 'journal'}[/]")
    if not result.passed:
        failed = [a["name"] for a in s["assertions"] if not a["passed"]]
        if s.get("invariant_violations"):
            failed.append(f"{s['invariant_violations']} invariant violation(s)")
        err.print(f"[bold red]failed:[/] {'; '.join(failed)}")
        raise typer.Exit(1)


@app.command("default-config")
def default_config_cmd() -> None:
    """Print the embedded demo venue config (a starting point for your own)."""
    typer.echo(DEFAULT_CONFIG_TOML, nl=False)


def main() -> None:
    app()
