"""The participant interface: what a strategy sees each step and what it may ask for.

A **strategy** is a Python class with ``on_step(view: MarketView) -> list[OrderRequest]``: it is
called once per step, in a fixed order, and its orders are sent to the venue through its agent key
(so the venue's limits apply and refusals are counted). A **MCP agent** is a class with
``async on_step(tools: mcp.Client, step: int) -> None``: it trades only through the MCP tools
(``preview_order``, ``place_order``, ...) exactly as an off-the-shelf MCP client would.

Both are named in the competition file as ``path/to/file.py:ClassName`` (relative to the file) and
built with no arguments, or with the ``params`` table as keyword arguments.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, Protocol


@dataclass(frozen=True, slots=True)
class MarketView:
    """One step of the market as a strategy sees it (decimals, never floats)."""

    step: int
    time_s: int
    symbol: str
    mark: Decimal
    best_bid: Decimal | None
    best_ask: Decimal | None
    marks: tuple[Decimal, ...]
    """Every mark so far, oldest first (this step's last)."""
    position: Decimal
    """Base units, positive long."""
    equity: Decimal


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """An order: ``price`` ``None`` is a MARKET order; ``quantity`` in base units."""

    side: Literal["BUY", "SELL"]
    quantity: Decimal
    price: Decimal | None = None
    reduce_only: bool = False


class Strategy(Protocol):
    def on_step(self, view: MarketView) -> list[OrderRequest]: ...


class McpAgent(Protocol):
    async def on_step(self, tools: Any, step: int) -> None: ...


class ParticipantError(ValueError):
    """An entry that cannot be loaded; the message names it and why."""


def load_entry(entry: str, base_dir: Path, params: dict[str, Any]) -> Any:
    """Build the participant named ``path.py:ClassName`` (``path`` relative to ``base_dir``)."""
    path_text, _, name = entry.rpartition(":")
    if not path_text or not name:
        raise ParticipantError(f"entry {entry!r} must be 'path/to/file.py:ClassName'")
    path = (base_dir / path_text).resolve()
    if not path.is_file():
        raise ParticipantError(f"entry {entry!r}: {path} is not a file")
    module_name = f"perpx_participant_{path.stem}_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ParticipantError(f"entry {entry!r}: {path} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    cls = getattr(module, name, None)
    if cls is None:
        raise ParticipantError(f"entry {entry!r}: {path} has no {name}")
    try:
        return cls(**params)
    except TypeError as exc:
        raise ParticipantError(f"entry {entry!r}: cannot build it with params {params}: {exc}") from None
