"""The competition file (TOML): the market, the rules every participant shares, the participants.

.. code-block:: toml

    name = "example"
    scenario = "../../scenarios/calm_day.toml"   # its price process for the symbol drives the mark
    symbol = "BTCUSDT"
    seed = 7
    steps = 120
    step_s = 60
    capital = "10000"                            # USDT each participant starts with

    [maker]                                       # the house market maker quoting around the mark
    levels = 5
    spread_bps = 5
    quantity = "0.05"

    [limits]                                      # the agent policy's limits, the same for everyone
    maxOrderNotional = "5000"

    [[participants]]
    name = "momentum"
    kind = "strategy"                             # or "mcp"
    entry = "momentum.py:Momentum"
    params = { lookback = 5 }
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from perpx.agents.policy import PolicyError, parse_policy, positive_decimal
from perpx.engine.config import DEFAULT_CONFIG_TOML, parse_config

KINDS = ("strategy", "mcp")


class CompetitionError(ValueError):
    """A competition file that cannot be run; the message names the field."""


@dataclass(frozen=True, slots=True)
class ParticipantSpec:
    name: str
    kind: str
    entry: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Competition:
    name: str
    base_dir: Path
    scenario: Path
    symbol: str
    seed: int
    steps: int
    step_s: int
    capital: Decimal
    maker_levels: int
    maker_spread_bps: int
    maker_quantity: Decimal
    limits: dict[str, Any]
    participants: tuple[ParticipantSpec, ...]


def load_competition(path: Path) -> Competition:
    """Read and check ``path``.

    Raises
    ------
    CompetitionError
        Unreadable TOML, a missing or malformed field, an unknown symbol, invalid limits, or
        participants with duplicate names.
    """
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CompetitionError(f"{path}: {exc}") from None
    base = path.resolve().parent
    symbols = tuple(str(m) for m in parse_config(tomllib.loads(DEFAULT_CONFIG_TOML)).markets)

    def need(name: str, kind: type, default: Any = None) -> Any:
        value = doc.get(name, default)
        if value is None or not isinstance(value, kind) or isinstance(value, bool) != (kind is bool):
            raise CompetitionError(f"{path}: '{name}' must be a {kind.__name__}")
        return value

    symbol = need("symbol", str, "BTCUSDT")
    if symbol not in symbols:
        raise CompetitionError(f"{path}: symbol {symbol!r} is not listed; use one of {list(symbols)}")
    scenario = base / need("scenario", str)
    if not scenario.is_file():
        raise CompetitionError(f"{path}: scenario {scenario} is not a file")
    steps, step_s = need("steps", int, 120), need("step_s", int, 60)
    if not 1 <= steps <= 100_000 or not 1 <= step_s <= 86_400:
        raise CompetitionError(f"{path}: steps must be 1..100000 and step_s 1..86400")
    maker = doc.get("maker", {})
    limits = doc.get("limits", {})
    try:
        capital = positive_decimal(need("capital", str, "10000"), "capital")
        maker_quantity = positive_decimal(str(maker.get("quantity", "0.05")), "maker.quantity")
        parse_policy({"scopes": ["trade"], "limits": limits}, symbols)
    except PolicyError as exc:
        raise CompetitionError(f"{path}: {exc}") from None
    rows = doc.get("participants", [])
    if not isinstance(rows, list) or not rows:
        raise CompetitionError(f"{path}: add at least one [[participants]]")
    participants = []
    for i, row in enumerate(rows):
        name, kind, entry = row.get("name"), row.get("kind", "strategy"), row.get("entry")
        if not isinstance(name, str) or not name or not isinstance(entry, str) or kind not in KINDS:
            raise CompetitionError(f"{path}: participants[{i}] needs a name, an entry and a kind in {KINDS}")
        params = row.get("params", {})
        if not isinstance(params, dict):
            raise CompetitionError(f"{path}: participants[{i}].params must be a table")
        participants.append(ParticipantSpec(name, kind, entry, params))
    names = [p.name for p in participants]
    if len(set(names)) != len(names):
        raise CompetitionError(f"{path}: participant names must be unique; got {names}")
    return Competition(
        name=need("name", str, path.stem),
        base_dir=base,
        scenario=scenario,
        symbol=symbol,
        seed=need("seed", int, 1),
        steps=steps,
        step_s=step_s,
        capital=capital,
        maker_levels=int(maker.get("levels", 5)),
        maker_spread_bps=int(maker.get("spread_bps", 5)),
        maker_quantity=maker_quantity,
        limits=limits,
        participants=tuple(participants),
    )
