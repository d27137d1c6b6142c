"""Incident replay and report: the venue as it was at a moment, and a timeline of a window.

:func:`cut_at` finds the last journal record at or before a seq or a venue time;
:func:`replay_copy` writes a data directory holding the journal up to it (``perpx journal
repair --cut-at-seq``'s copy) and a snapshot there, so ``perpx explain --data OUT``,
``perpx replay OUT`` and ``perpx serve --data OUT --rebuild-read-models`` (for the metrics and
the APIs) all see the venue as it was. :func:`moment_figures` computes the metrics' engine
figures on that state.

:func:`timeline` replays a data directory (read-only) and collects, for a window of venue time,
every command, liquidation, price input, and the alerts that would have fired: the rules of
``deploy/prometheus/rules.yml`` that depend on engine state, evaluated on the replayed state at
each venue minute, with the rules' ``for`` delays (:data:`ALERTS_EVALUATED`). :func:`render_html` writes it as one HTML page.
"""

from __future__ import annotations

import html
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from perpx.engine import invariants
from perpx.engine.commands import Command, SetMarkPrice, SubmitSpotQuote
from perpx.engine.engine import Engine
from perpx.engine.events import AdlStep, LiquidationExplained
from perpx.engine.values import format_units
from perpx.journal.journal import scan
from perpx.journal.store import JOURNAL_FILE, RecoveryError, read_config, recover, write_snapshot
from perpx.journal.verify import repair
from perpx.ops.venue_risk import accounts_near_liquidation, index_sources

NS_PER_MINUTE = 60 * 1_000_000_000

ALERTS_EVALUATED = (
    "PerpxIndexBelowQuorum",
    "PerpxMarkIndexGap",
    "PerpxLiquidationSpike",
    "PerpxAutoDeleveraging",
    "PerpxAccountsNearLiquidationRising",
    "PerpxInvariantViolation",
)
"""The alerts :func:`timeline` evaluates (the others depend on the process, the disk or the
network, which a journal does not record)."""

FOR_NS = {"PerpxIndexBelowQuorum": NS_PER_MINUTE, "PerpxMarkIndexGap": 5 * NS_PER_MINUTE}
"""The rules' ``for`` delays, at the timeline's resolution (one evaluation per venue minute)."""


def parse_time_ns(text: str) -> int:
    """Venue time from milliseconds since the epoch (``1764756000000``) or ISO 8601 (UTC if no zone)."""
    stripped = text.strip()
    if stripped.isdigit():
        return int(stripped) * 1_000_000
    try:
        moment = datetime.fromisoformat(stripped.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not a time: give milliseconds since the epoch or ISO 8601") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1_000) * 1_000_000


def time_text(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, UTC).isoformat(timespec="milliseconds")


def cut_at(data: Path, until_seq: int | None = None, until_ns: int | None = None) -> int:
    """The last record of the venue at ``until_seq``, or at venue time ``until_ns``.

    Venue time only moves forward (``Engine.now_ns`` is the largest command time seen), so it
    passes ``until_ns`` at the first record stamped later; that record and everything after it
    (even a spot quote stamped earlier, which arrived after the moment) are left out.

    Raises :class:`RecoveryError` when the bound is before the first record or past the last.
    """
    found = scan(data / JOURNAL_FILE)
    if until_seq is not None:
        if not 1 <= until_seq <= found.last_seq:
            raise RecoveryError(
                f"--until-seq {until_seq} is outside the journal's records 1..{found.last_seq}"
            )
        return until_seq
    if until_ns is None:
        raise RecoveryError("give --until-seq or --until-time")
    last = 0
    for record in found.records:
        if record.command.ts_ns > until_ns:
            break
        last = record.seq
    if last == 0:
        raise RecoveryError(f"no record at or before {time_text(until_ns)}: the journal starts later")
    return last


def replay_copy(data: Path, out: Path, seq: int) -> tuple[Engine, str]:
    """Write ``out``: the journal through ``seq`` and a snapshot there; return the engine and its state hash."""
    repair(data, out, cut_at_seq=seq)
    engine, report = recover(out, read_config(out), use_snapshots=True)
    write_snapshot(out, report.last_seq, engine)
    return engine, report.state_hash


@dataclass(frozen=True, slots=True)
class MarketMoment:
    """A market's metrics figures at a moment (Binance REST units, as text)."""

    symbol: str
    index: str | None
    mark: str | None
    open_interest: str
    sources_live: int | None
    sources_min: int | None
    near_liquidation: int


def moment_figures(engine: Engine) -> list[MarketMoment]:
    """The metrics' engine figures, per market, on a replayed engine."""
    near = accounts_near_liquidation(engine)
    rows = []
    for market, spec in sorted(engine.specs.items()):
        sources = index_sources(engine, market)
        index, mark = engine.indexes.get(market), engine.marks.get(market)
        rows.append(
            MarketMoment(
                symbol=str(market),
                index=None if index is None else format_units(index, spec.tick_size),
                mark=None if mark is None else format_units(mark, spec.tick_size),
                open_interest=format_units(engine.open_interest_lots[market], spec.lot_size),
                sources_live=None if sources is None else sources.live,
                sources_min=None if sources is None else sources.min_sources,
                near_liquidation=near.get(market, 0),
            )
        )
    return rows


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of the timeline."""

    seq: int
    ts_ns: int
    kind: str
    """``command``, ``price``, ``liquidation`` or ``alert``."""
    text: str


@dataclass
class Timeline:
    """What happened in a window of venue time."""

    from_ns: int
    to_ns: int
    entries: list[Entry] = field(default_factory=list)
    commands: Counter[str] = field(default_factory=Counter)

    def alerts(self) -> list[Entry]:
        return [e for e in self.entries if e.kind == "alert"]


@dataclass
class _Watch:
    """Alert state carried from one venue minute to the next."""

    liquidations: list[int] = field(default_factory=list)
    near: list[tuple[int, dict[str, int]]] = field(default_factory=list)
    firing: set[str] = field(default_factory=set)
    pending: dict[str, int] = field(default_factory=dict)
    """Each active condition and the venue time it started (for the rules' ``for`` delays)."""
    minute: int | None = None


def _evaluate(engine: Engine, ts_ns: int, seq: int, watch: _Watch, adl: list[str]) -> list[Entry]:
    """The alert conditions on the state at ``ts_ns``; an entry when one starts (not while it holds)."""
    active: dict[str, str] = {}
    for market, spec in sorted(engine.specs.items()):
        symbol = str(market)
        sources = index_sources(engine, market)
        if sources is not None and sources.live < sources.min_sources:
            active[f"PerpxIndexBelowQuorum {symbol}"] = (
                f"{sources.live} live sources, quorum {sources.min_sources}"
            )
        index, mark = engine.indexes.get(market), engine.marks.get(market)
        if index and mark is not None:
            gap_bps = abs(mark - index) * 10_000 / index
            band_bps = spec.risk.mark_index_band_e8 / 10_000
            if gap_bps >= 0.8 * band_bps:
                active[f"PerpxMarkIndexGap {symbol}"] = f"{gap_bps:.1f} bps, band {band_bps:g} bps"
    recent = [t for t in watch.liquidations if t > ts_ns - 5 * NS_PER_MINUTE]
    watch.liquidations = recent
    if len(recent) > 20:
        active["PerpxLiquidationSpike"] = f"{len(recent)} liquidations in 5 minutes"
    for symbol in adl:
        active[f"PerpxAutoDeleveraging {symbol}"] = "auto-deleveraging"
    near = {str(m): n for m, n in accounts_near_liquidation(engine).items()}
    watch.near = [(t, n) for t, n in watch.near if t >= ts_ns - 15 * NS_PER_MINUTE] + [(ts_ns, near)]
    oldest = watch.near[0][1]
    for symbol, count in near.items():
        if count - oldest.get(symbol, 0) >= 10:
            active[f"PerpxAccountsNearLiquidationRising {symbol}"] = f"{oldest.get(symbol, 0)} -> {count}"
    problems = invariants.violations(engine)
    if problems:
        active["PerpxInvariantViolation"] = "; ".join(problems)[:300]
    for name in list(watch.pending):
        if name not in active:
            del watch.pending[name]
    entries = []
    for name, why in active.items():
        since = watch.pending.setdefault(name, ts_ns)
        if ts_ns - since >= FOR_NS.get(name.split(" ")[0], 0) and name not in watch.firing:
            entries.append(Entry(seq, ts_ns, "alert", f"{name}: {why}"))
            watch.firing.add(name)
    watch.firing &= set(active)
    return entries


def timeline(data: Path, from_ns: int, to_ns: int) -> Timeline:
    """Replay ``data`` from record 1, read-only, through ``to_ns``; collect the window ``[from_ns, to_ns]``.

    Raises :class:`RecoveryError` for a window that ends before it starts or a corrupt journal.
    """
    if to_ns < from_ns:
        raise RecoveryError("--to is before --from")
    engine = Engine(read_config(data))
    found = scan(data / JOURNAL_FILE)
    if found.corrupt:
        raise RecoveryError(f"{data / JOURNAL_FILE} is corrupt; `perpx journal verify {data}` says where")
    result = Timeline(from_ns, to_ns)
    watch = _Watch()
    for record in found.records:
        command, seq, ts = record.command, record.seq, record.command.ts_ns
        if ts > to_ns:
            break
        events = engine.apply(command)
        adl: list[str] = []
        for event in events:
            if isinstance(event, LiquidationExplained):
                watch.liquidations.append(ts)
                if from_ns <= ts:
                    who = f"account {event.account_id} {event.scope} {event.market or ''} {event.outcome}"
                    result.entries.append(Entry(seq, ts, "liquidation", who))
                adl.extend(str(event.market) for step in event.steps if isinstance(step, AdlStep))
        minute = ts // NS_PER_MINUTE
        if ts < from_ns:
            watch.minute = minute
            continue
        result.commands[type(command).__name__] += 1
        result.entries.append(_command_entry(seq, command))
        if adl or minute != watch.minute:
            watch.minute = minute
            result.entries.extend(_evaluate(engine, ts, seq, watch, adl))
    return result


def _command_entry(seq: int, command: Command) -> Entry:
    ts = command.ts_ns
    if isinstance(command, SubmitSpotQuote):
        return Entry(seq, ts, "price", f"{command.market} {command.source} quote {command.price_ticks} ticks")
    if isinstance(command, SetMarkPrice):
        return Entry(
            seq, ts, "price", f"{command.market} mark {command.mark_ticks} index {command.index_ticks} ticks"
        )
    return Entry(seq, ts, "command", type(command).__name__)


KIND_COLOURS = {"alert": "#fde2e1", "liquidation": "#fff3cd", "price": "#e8f1fb", "command": "#ffffff"}


def render_html(data: Path, found: Timeline) -> str:
    """One self-contained HTML page: the window, counts, alerts, then every entry in journal order."""
    esc = html.escape
    alerts = found.alerts()
    counts = "".join(f"<tr><td>{esc(name)}</td><td>{n}</td></tr>" for name, n in found.commands.most_common())
    alert_rows = "".join(
        f"<tr><td>{e.seq}</td><td>{esc(time_text(e.ts_ns))}</td><td>{esc(e.text)}</td></tr>" for e in alerts
    )
    rows = "".join(
        f'<tr style="background:{KIND_COLOURS[e.kind]}"><td>{e.seq}</td><td>{esc(time_text(e.ts_ns))}</td>'
        f"<td>{e.kind}</td><td>{esc(e.text)}</td></tr>"
        for e in found.entries
    )
    evaluated = ", ".join(ALERTS_EVALUATED)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>perpx incident report</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 6px;font-size:13px}}</style>
</head><body>
<h1>perpx incident report</h1>
<p>Data: {esc(str(data))}<br>Window (venue time): {esc(time_text(found.from_ns))} to {esc(time_text(found.to_ns))}</p>
<h2>Alerts that would have fired ({len(alerts)})</h2>
<p>Evaluated on the replayed state at each venue minute, with their <code>for</code> delays: {esc(evaluated)}.</p>
<table><tr><th>seq</th><th>time</th><th>alert</th></tr>{alert_rows}</table>
<h2>Commands ({sum(found.commands.values())})</h2>
<table><tr><th>type</th><th>count</th></tr>{counts}</table>
<h2>Timeline ({len(found.entries)} entries)</h2>
<table><tr><th>seq</th><th>time</th><th>kind</th><th>what</th></tr>{rows}</table>
</body></html>
"""
