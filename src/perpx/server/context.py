"""The running venue as the HTTP and WebSocket handlers see it, and its start-up path.

:func:`open_venue` opens the data directory (one recovery path: snapshot +
journal tail), lets every persistent component catch up on the records it has
not seen yet, and builds the sequencer. Components are the server's read
models and streams: typed fields of ``ctx.components``
(:class:`perpx.server.components.Components`), fed every applied batch by the sequencer.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from perpx.engine.commands import Command
from perpx.engine.config import MarketSpec, VenueConfig
from perpx.engine.events import Outcome
from perpx.journal.store import (
    RecoveryError,
    RecoveryReport,
    Store,
    cannot_write,
    open_store,
    plan_recovery,
    resolve_config,
)
from perpx.server.auth import AdminGuard
from perpx.server.keys import KeyStore
from perpx.server.sequencer import Applied, RequestSequencer

if TYPE_CHECKING:
    from collections.abc import Callable

    from perpx.server.components import Components


class Component(Protocol):
    """A read model or stream of the server.

    ``resume_seq`` is the last journal record a persistent component has applied (``None`` for an
    in-memory one, which starts from the current state instead).
    """

    def resume_seq(self) -> int | None: ...

    def close(self) -> None: ...


class PersistentComponent(Component, Protocol):
    """A component with rows on disk: start-up replays every record after its ``resume_seq``
    through ``on_applied`` (what it returns is for live feeding only and is dropped)."""

    def on_applied(self, batch: list[Applied]) -> object: ...


@dataclass
class ServerContext:
    """Everything a handler needs; one per running server (``request.app.state.ctx``).

    ``serving`` is true from the moment the sequencer and the components have started until the
    venue begins to stop (``GET /ready`` answers 503 outside it). ``admin_guard`` holds the wrong
    admin token counts of both listeners.
    """

    config: VenueConfig
    data_dir: Path
    keys: KeyStore
    admin_token: str | None
    sequencer: RequestSequencer | None = None
    report: RecoveryReport | None = None
    built: Components | None = None
    """The components, once :func:`open_venue` built them (read them as :attr:`components`)."""
    demo: bool = False
    serving: bool = False
    admin_guard: AdminGuard = field(default_factory=AdminGuard)
    rebuilt_read_models: bool = False

    def start_lines(self) -> list[str]:
        """What start-up did, for the banner: the recovery report, then the read models rebuilt."""
        lines = self.report.lines() if self.report is not None else []
        if self.rebuilt_read_models:
            names = ", ".join(model.name for model in READ_MODELS)
            lines.append(f"read models rebuilt from the journal ({names}); API keys kept")
        return lines

    @property
    def specs(self) -> dict[str, MarketSpec]:
        return {str(market): spec for market, spec in self.config.markets.items()}

    @property
    def atom(self) -> Decimal:
        return self.config.settlement.atom

    @property
    def seq(self) -> RequestSequencer:
        if self.sequencer is None:
            raise RuntimeError("the venue is not open yet")
        return self.sequencer

    @property
    def components(self) -> Components:
        if self.built is None:
            raise RuntimeError("the venue's components are not built yet")
        return self.built

    def close(self) -> None:
        if self.sequencer is not None:
            self.sequencer.close()
        if self.built is not None:
            for component in reversed(list(self.built.named().values())):
                component.close()
        self.keys.close()


def admin_token_of(config: VenueConfig) -> str | None:
    """``PERPX_ADMIN_TOKEN`` from the environment, else ``[venue] admin_token``; ``None`` disables admin."""
    token = os.environ.get("PERPX_ADMIN_TOKEN")
    if token:
        return token
    venue = config.raw.get("venue", {})
    value = venue.get("admin_token") if isinstance(venue, dict) else None
    return str(value) if value else None


@dataclass(frozen=True, slots=True)
class StoredReadModel:
    """Where a persistent component keeps its rows and the last journal record they include.

    ``seq_query`` answers that record (no row or no table: 0). A rebuild deletes the file, except
    in a file that also holds data the journal cannot give back: there it drops every table but
    ``keep_tables`` (``admin.sqlite`` keeps the API keys).
    """

    name: str
    file: str
    seq_query: str
    keep_tables: tuple[str, ...] = ()


READ_MODELS = (
    StoredReadModel("readmodel", "readmodel.sqlite", "SELECT value FROM meta WHERE key = 'last_seq'"),
    StoredReadModel("marketdata", "market.sqlite", "SELECT value FROM meta WHERE key = 'last_seq'"),
    StoredReadModel(
        "adminlog",
        "admin.sqlite",
        "SELECT value FROM admin_meta WHERE key = 'resume_seq'",
        keep_tables=("api_keys",),
    ),
    StoredReadModel("lending", "lending.sqlite", "SELECT value FROM lending_meta WHERE key = 'resume_seq'"),
)
"""The persistent components (:meth:`perpx.server.components.Components.persistent`), read before they are opened."""


def stored_seqs(data_dir: Path) -> dict[str, int]:
    """The last journal record each persistent read model holds, read without writing a byte.

    A clean-stopped SQLite file is opened ``immutable``; one with a non-empty write-ahead log (an
    unclean stop) is read from a copy in a temporary directory, so neither the data directory's
    files nor their ``-wal``/``-shm`` companions are created or touched.

    Raises
    ------
    RecoveryError
        If a read-model file is not a readable SQLite database.
    """
    return {model.name: _stored_seq(data_dir / model.file, model.seq_query) for model in READ_MODELS}


def _stored_seq(path: Path, query: str) -> int:
    if not path.exists():
        return 0
    wal = path.with_name(path.name + "-wal")
    try:
        if wal.exists() and wal.stat().st_size > 0:
            with tempfile.TemporaryDirectory(prefix="perpx-probe-") as temp:
                copy = Path(temp) / path.name
                shutil.copyfile(path, copy)
                shutil.copyfile(wal, copy.with_name(copy.name + "-wal"))
                return _query_seq(sqlite3.connect(copy), query)
        return _query_seq(sqlite3.connect(f"{path.resolve().as_uri()}?immutable=1", uri=True), query)
    except sqlite3.DatabaseError as exc:
        raise RecoveryError(
            f"{path} is not a readable SQLite database ({exc}); rebuild the read models from the journal"
            " with `perpx serve --rebuild-read-models`"
        ) from exc
    except OSError as exc:
        raise RecoveryError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _query_seq(db: sqlite3.Connection, query: str) -> int:
    try:
        row = db.execute(query).fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return 0
        raise
    finally:
        db.close()
    return int(row[0]) if row else 0


def reset_read_models(data_dir: Path) -> None:
    """Empty every persistent read model so that start-up rebuilds it from record 1 (API keys are kept)."""
    for model in READ_MODELS:
        path = data_dir / model.file
        if not model.keep_tables:
            for name in (path.name, path.name + "-wal", path.name + "-shm"):
                path.with_name(name).unlink(missing_ok=True)
            continue
        if not path.exists():
            continue
        db = sqlite3.connect(path, isolation_level=None)
        try:
            tables = [
                name
                for (name,) in db.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                )
                if name not in model.keep_tables
            ]
            db.execute("BEGIN")
            for table in tables:
                db.execute(f'DROP TABLE "{table}"')
            db.execute("COMMIT")
        finally:
            db.close()


def check_read_models(seqs: dict[str, int], journal_last_seq: int, data_dir: Path) -> None:
    """Refuse a start where a read model holds records the journal does not have.

    Such a model would list orders, trades and ids the engine never saw, and new ids would collide
    with them. Raises :class:`~perpx.journal.store.RecoveryError` naming the model, its last record,
    the journal's, and the way out.
    """
    for model in READ_MODELS:
        seq = seqs.get(model.name, 0)
        if seq > journal_last_seq:
            raise RecoveryError(
                f"read model '{model.name}' ({data_dir / model.file}) holds records up to {seq} but the"
                f" journal ends at record {journal_last_seq}: the journal lost records {journal_last_seq + 1}..{seq}"
                ' that the read model saw (a power cut with durability = "none", or a journal restored from'
                " an older copy). Refused; no file was changed. Rebuild the read models from the journal"
                " with `perpx serve --rebuild-read-models` (what those records did is lost), or restore the"
                " journal that matches them."
            )


def open_venue(
    data_dir: Path,
    config_text: str | None,
    build_components: Callable[[ServerContext], Components],
    *,
    tick_ms: int = 1000,
    rebuild_read_models: bool = False,
) -> ServerContext:
    """Open ``data_dir``, create the components, catch them up, and build the sequencer (not started).

    ``build_components(ctx)`` creates the read models and streams (usually
    :meth:`perpx.server.components.Components.build`; they may read ``ctx.config`` and open files
    under ``ctx.data_dir``).

    Every check happens before the first write: the config, the journal (a torn tail is the only
    damage that is repaired), the snapshots, and each read model's last record against the
    journal's. So a refused start changes no file. ``rebuild_read_models`` empties the read models
    (keeping the API keys) and replays the whole journal through them.

    Raises
    ------
    RecoveryError
        Every refusal (see :func:`perpx.journal.store.open_store` and :func:`check_read_models`),
        and a data directory that cannot be written, in one line.
    """
    config, _new_text = resolve_config(data_dir, config_text)
    seqs = {model.name: 0 for model in READ_MODELS} if rebuild_read_models else stored_seqs(data_dir)
    plan = plan_recovery(data_dir, config, max_snapshot_seq=min(seqs.values()))
    if not rebuild_read_models:
        check_read_models(seqs, plan.last_seq, data_dir)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        if rebuild_read_models:
            reset_read_models(data_dir)
        ctx = ServerContext(
            config=config,
            data_dir=data_dir,
            keys=KeyStore(data_dir / "admin.sqlite"),
            admin_token=admin_token_of(config),
            rebuilt_read_models=rebuild_read_models,
        )
        ctx.built = build_components(ctx)
        persistent = ctx.built.persistent()
        for name, component in ctx.built.named().items():
            resume = component.resume_seq()
            if resume is not None and resume < plan.snapshot_seq:
                raise RecoveryError(
                    f"read model '{name}' resumes at record {resume}, before the snapshot at record"
                    f" {plan.snapshot_seq} start-up chose; it is missing from the read-model list"
                    " (perpx.server.context.READ_MODELS)"
                )

        def observe(seq: int, command: Command, events: Outcome) -> None:
            batch = [Applied(seq, command, events)]
            for component in persistent.values():
                after = component.resume_seq()
                if after is not None and seq > after:
                    component.on_applied(batch)

        store: Store
        store, report = open_store(data_dir, config_text, observe=observe, plan=plan)
    except OSError as exc:
        raise cannot_write(data_dir, exc) from exc
    except sqlite3.Error as exc:
        raise RecoveryError(
            f"cannot write to the data directory {data_dir} (SQLite: {exc}); perpx needs a writable data"
            " directory with free space (check the mount, its permissions and the free space)"
        ) from exc
    ctx.config = store.config
    ctx.report = report
    sequencer = RequestSequencer(store, manual_clock=store.config.clock == "manual", tick_ms=tick_ms)
    for listener in ctx.built.listeners():
        sequencer.add_listener(listener)
    sequencer.commit_observers.append(ctx.built.metrics.observe_commit)
    ctx.sequencer = sequencer
    return ctx
