"""Structured logs: ``perpx serve --log-format json`` writes one JSON object per line.

Each line has ``ts`` (UTC, ISO 8601 with microseconds), ``level``, ``logger`` and ``msg``; a line
about a command or a batch of commands carries the journal record it concerns as ``seq`` (and
``seq_last`` for a range), given by the caller as ``extra={"seq": ...}``, so a log search joins
the journal (``perpx replay --until-seq``, ``perpx explain``). An exception adds ``exc`` (the
formatted traceback). Other ``extra`` fields of a line are kept when JSON can carry them.

uvicorn's own lines (start-up, errors, and the access log at ``--log-level info``) are JSON too
(:func:`route_uvicorn`): an access line also carries ``client``, ``method``, ``path``, ``http`` and
``status``.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, Final

LOG_FORMATS: Final = ("text", "json")

LOG_LEVELS: Final = ("critical", "error", "warning", "info", "debug")
"""``perpx serve --log-level``: uvicorn's levels (``info`` adds its access log)."""

ACCESS_LOGGER: Final = "uvicorn.access"
UVICORN_LOGGERS: Final = ("uvicorn", "uvicorn.error", ACCESS_LOGGER)
"""The loggers uvicorn configures with handlers of its own (text) when a server is built."""

TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
"""Attributes every record has; anything else on a record came from ``extra``."""


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring for the fields)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="microseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.name == ACCESS_LOGGER and isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, http, status = record.args
            line.update(client=str(client), method=str(method), path=str(path), http=str(http), status=status)
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value if isinstance(value, str | int | float | bool | None) else str(value)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure(log_format: str, level: int = logging.INFO) -> None:
    """Send the root logger's lines to stderr in ``log_format`` (``text`` or ``json``)."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"--log-format must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler])


def route_uvicorn(log_format: str) -> None:
    """In ``json``: send uvicorn's loggers through the root handler (this module's format).

    Call it after the uvicorn servers are built: building one installs uvicorn's text handlers on
    its loggers. In ``text`` uvicorn keeps its own lines.
    """
    if log_format != "json":
        return
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
