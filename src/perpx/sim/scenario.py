"""Scenario files: what to simulate, on which venue, and what must hold afterwards.

A scenario is one TOML file. Its header comment says what real event it models and what the
mechanism is expected to do. Tables (every one but ``config`` is optional):

=================  =================================================================================
key                meaning
=================  =================================================================================
``name``           short name (default: the file name)
``config``         a whole venue config, as in ``examples/venue.toml`` (inline) -- or
``config_file``    a venue TOML path relative to the scenario file; loaded into ``config``
``config_overrides`` a table of dotted paths into ``config`` and their values, applied to it on
                   load (e.g. ``"markets.BTCUSDT.funding_cap" = "0.003"``): the scenario's venue
                   differs from the shared file only there, and says so
``[run]``          ``duration_s`` (3600), ``sample_s`` (10: series and markers), ``check_every_s``
                   (60: invariant checks), ``scale`` (1.0: multiplies every given agent ``count``), ``seed``
``[insurance]``    ``fund``: settlement units deposited into the insurance fund (account 0) at start
``[prices.M]``     market ``M``'s fair spot price process (see :mod:`perpx.sim.sources`)
``[[sources]]``    ``name``, ``market``, ``every_s`` (1), ``latency_s`` (0), ``noise_bps`` (0),
                   ``controlled`` (false: quoted by an agent), ``faults = [{kind, start_s, end_s, factor}]``
``[[agents]]``     ``kind``, ``name``, ``count`` and the kind's parameters (:mod:`perpx.sim.agents`)
``[[events]]``     scripted events at ``at_s``: ``action = "depth"`` (``factor``, ``agents`` = a name
                   prefix, default every market maker: sets their ``depth_factor``), ``"agent_param"``
                   (``agents``, ``key``, ``value``), ``"market_mode"`` (``market``, ``mode``,
                   ``settle_price``), ``"insurance_deposit"`` (``amount``)
``[[assertions]]`` what must hold (:mod:`perpx.sim.assertions`)
``[collateral]``   asset = market: each quote of the market's sources also quotes the asset's index
                   (the venue's ``[assets.X.index]`` sources of the same names), so collateral held in
                   Multi-Assets Mode moves with the market (``leveraged_taker`` ``collateral``)
=================  =================================================================================

Overrides
---------
:func:`apply_overrides` sets values by dotted path (``config.markets.BTCUSDT.brackets.0.mmr``,
``insurance.fund``, ``run.duration_s``): integers index lists, every step must exist. A number that
replaces a string (the venue config writes decimals as strings) becomes its decimal text.
"""

from __future__ import annotations

import copy
import json
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from perpx.engine.commands import MarketMode
from perpx.engine.config import ConfigError, VenueConfig, parse_config
from perpx.engine.values import AssetId
from perpx.sim.agents import AgentError, build_agents
from perpx.sim.assertions import Assertion, AssertionSpecError, parse_assertions
from perpx.sim.cast import Cast
from perpx.sim.sources import SourceError, parse_faults

RUN_DEFAULTS: dict[str, Any] = {
    "duration_s": 3600,
    "sample_s": 10,
    "check_every_s": 60,
    "scale": 1.0,
    "seed": 1,
}
EVENT_ACTIONS = ("depth", "agent_param", "market_mode", "insurance_deposit")


class ScenarioError(ValueError):
    """A scenario that cannot be run; the message names the file and the key."""


@dataclass(frozen=True)
class ScriptedEvent:
    """One scripted event: ``action`` at ``at_s`` with its parameters."""

    at_s: float
    action: str
    params: Mapping[str, Any]


@dataclass(frozen=True)
class Scenario:
    """A validated scenario: the document it came from and the parts the runner uses.

    ``doc`` is the whole document (``config`` always inline, overrides applied);
    ``config_text`` is the venue config as TOML, as the journal stores it.
    """

    name: str
    doc: dict[str, Any]
    config: VenueConfig
    config_text: str
    base_dir: Path
    duration_s: float
    sample_s: float
    check_every_s: float
    scale: float
    default_seed: int
    insurance_fund: str
    prices: dict[str, dict[str, Any]]
    sources: list[dict[str, Any]]
    agents: list[dict[str, Any]]
    events: list[ScriptedEvent]
    assertions: list[Assertion]
    path: Path | None = None
    description: str = field(default="")
    collateral: dict[str, str] = field(default_factory=dict)
    """Asset -> the market whose source quotes also feed the asset's index (``[collateral]``)."""

    @property
    def cast(self) -> Cast:
        """The price processes, sources and agents, for a :class:`~perpx.sim.driver.SimDriver`."""
        return Cast(self.prices, self.sources, self.agents, self.scale, self.base_dir)


# ---------------------------------------------------------------------------------------------- loading


def read_document(path: str | Path) -> dict[str, Any]:
    """A scenario file as a document with its venue config inline (``config_file`` resolved).

    Raises
    ------
    ScenarioError
        If a file is missing or not valid TOML, or neither ``config`` nor ``config_file`` is given.
    """
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ScenarioError(f"{path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from exc
    if "config_file" in doc:
        if "config" in doc:
            raise ScenarioError(f"{path}: give either [config] or config_file, not both")
        config_path = path.parent / str(doc["config_file"])
        try:
            doc["config"] = tomllib.loads(config_path.read_text())
        except OSError as exc:
            raise ScenarioError(f"{path}: config_file {config_path}: {exc.strerror or exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ScenarioError(f"{path}: config_file {config_path}: not valid TOML: {exc}") from exc
    doc.setdefault("name", path.stem)
    changes = doc.get("config_overrides")
    if changes is not None:
        if not isinstance(changes, dict):
            raise ScenarioError(f"{path}: config_overrides must be a table of dotted paths and values")
        doc = apply_overrides(doc, {f"config.{key}": value for key, value in changes.items()})
    return doc


def load_scenario(path: str | Path, overrides: Mapping[str, object] | None = None) -> Scenario:
    """Read, override and validate a scenario file.

    Raises
    ------
    ScenarioError
        If the file, an override or any part of the scenario is unusable; the message says which.
    """
    path = Path(path)
    doc = read_document(path)
    if overrides:
        doc = apply_overrides(doc, overrides)
    return scenario_from_document(doc, path.resolve().parent, path)


def scenario_from_document(doc: Mapping[str, Any], base_dir: Path, path: Path | None = None) -> Scenario:
    """Validate a scenario document (``config`` inline) into a :class:`Scenario`.

    Raises
    ------
    ScenarioError
        If any part is unusable; the message names the key.
    """
    where = str(path) if path is not None else "scenario"
    doc = _normalised(doc)
    if not isinstance(doc.get("config"), dict):
        raise ScenarioError(f"{where}: needs a venue config: a [config] table or config_file = '...'")
    try:
        config = parse_config(doc["config"])
    except ConfigError as exc:
        raise ScenarioError(f"{where}: config: {exc}") from exc
    run = doc["run"]
    for key in ("duration_s", "sample_s", "check_every_s", "scale"):
        value = run[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ScenarioError(f"{where}: run.{key} was {value!r}; use a number greater than zero")
    if isinstance(run["seed"], bool) or not isinstance(run["seed"], int):
        raise ScenarioError(f"{where}: run.seed was {run['seed']!r}; use a whole number")
    fund = doc["insurance"].get("fund", "0")
    try:
        if Decimal(str(fund)) < 0:
            raise ScenarioError(f"{where}: insurance.fund must not be negative")
    except ArithmeticError as exc:
        raise ScenarioError(f"{where}: insurance.fund was {fund!r}, which is not a number") from exc
    prices = doc["prices"]
    markets = {str(m): spec for m, spec in config.markets.items()}
    for market, spec in prices.items():
        if market not in markets:
            raise ScenarioError(f"{where}: prices.{market}: no such market in the config")
        if not isinstance(spec, dict):
            raise ScenarioError(f"{where}: prices.{market} must be a table")
    sources = doc["sources"]
    for number, source in enumerate(sources):
        label = f"{where}: sources[{number}]"
        market = source.get("market")
        name = source.get("name")
        if market not in markets:
            raise ScenarioError(f"{label}: market was {market!r}; the markets are {', '.join(markets)}")
        index = markets[market].index
        if index is None or name not in index.weights:
            listed = "none" if index is None else ", ".join(index.weights)
            raise ScenarioError(
                f"{label}: {name!r} is not in [markets.{market}.index] sources (those are: {listed})"
            )
        if market not in prices:
            raise ScenarioError(f"{label}: market {market} has no [prices.{market}] process")
        try:
            parse_faults(source.get("faults", []), f"sources[{number}]")
        except SourceError as exc:
            raise ScenarioError(f"{where}: {exc}") from exc
    for market, spec in markets.items():
        if spec.index is None and market in prices:
            raise ScenarioError(
                f"{where}: prices.{market}: the market has no [markets.{market}.index] table; a priced"
                " market needs index sources"
            )
    try:
        build_agents(doc["agents"], float(run["scale"]))
    except AgentError as exc:
        raise ScenarioError(f"{where}: {exc}") from exc
    collateral = doc.get("collateral", {})
    if not isinstance(collateral, dict):
        raise ScenarioError(f"{where}: collateral must be a table of asset = market")
    for asset, market in collateral.items():
        spec = config.assets.get(AssetId(asset))
        if spec is None or spec.index is None:
            raise ScenarioError(f"{where}: collateral.{asset}: the config has no [assets.{asset}.index]")
        if market not in prices:
            raise ScenarioError(f"{where}: collateral.{asset}: market {market!r} has no [prices] process")
    events = _events(doc["events"], markets, where)
    try:
        assertions = parse_assertions(doc["assertions"])
    except AssertionSpecError as exc:
        raise ScenarioError(f"{where}: {exc}") from exc
    return Scenario(
        name=str(doc["name"]),
        doc=doc,
        config=config,
        config_text=dump_toml(doc["config"]),
        base_dir=base_dir,
        duration_s=float(run["duration_s"]),
        sample_s=float(run["sample_s"]),
        check_every_s=float(run["check_every_s"]),
        scale=float(run["scale"]),
        default_seed=int(run["seed"]),
        insurance_fund=str(fund),
        prices={str(k): dict(v) for k, v in prices.items()},
        sources=[dict(s) for s in sources],
        agents=[dict(a) for a in doc["agents"]],
        events=events,
        assertions=assertions,
        path=path,
        description=str(doc.get("description", "")),
        collateral={str(a): str(m) for a, m in collateral.items()},
    )


def _normalised(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A copy with every optional table present and ``run`` filled with its defaults."""
    out = copy.deepcopy(dict(doc))
    out.setdefault("name", "scenario")
    out["run"] = {**RUN_DEFAULTS, **out.get("run", {})}
    out.setdefault("insurance", {"fund": "0"})
    for key in ("prices",):
        out.setdefault(key, {})
    for key in ("sources", "agents", "events", "assertions"):
        out.setdefault(key, [])
        if not isinstance(out[key], list):
            raise ScenarioError(f"{key} must be an array of tables ([[{key}]])")
    unknown = sorted(
        set(out)
        - {"name", "description", "config", "config_file", "config_overrides", "run", "insurance", "prices"}
        - {"sources", "agents", "events", "assertions", "collateral"}
    )
    if unknown:
        raise ScenarioError(f"unknown top-level key(s) {', '.join(unknown)}")
    unknown_run = sorted(set(out["run"]) - set(RUN_DEFAULTS))
    if unknown_run:
        raise ScenarioError(
            f"unknown run key(s) {', '.join(unknown_run)}; they are {', '.join(RUN_DEFAULTS)}"
        )
    return out


def _depth_factor_ok(params: Mapping[str, Any]) -> bool:
    """A depth event has a numeric ``factor`` or a ``factor_range = [low, high]``, not both."""
    factor, bounds = params.get("factor"), params.get("factor_range")
    if bounds is None:
        return isinstance(factor, int | float) and not isinstance(factor, bool)
    return (
        factor is None
        and isinstance(bounds, list)
        and len(bounds) == 2
        and all(isinstance(b, int | float) and not isinstance(b, bool) for b in bounds)
        and 0 < bounds[0] <= bounds[1]
    )


def _events(rows: list[dict[str, Any]], markets: Mapping[str, Any], where: str) -> list[ScriptedEvent]:
    out: list[ScriptedEvent] = []
    for number, row in enumerate(rows):
        label = f"{where}: events[{number}]"
        action = row.get("action")
        if action not in EVENT_ACTIONS:
            raise ScenarioError(f"{label}: action was {action!r}; use one of {', '.join(EVENT_ACTIONS)}")
        at_s = row.get("at_s")
        if isinstance(at_s, bool) or not isinstance(at_s, int | float) or at_s < 0:
            raise ScenarioError(f"{label}: at_s was {at_s!r}; use a number of seconds >= 0")
        params = {k: v for k, v in row.items() if k not in ("at_s", "action")}
        if action == "depth" and not _depth_factor_ok(params):
            raise ScenarioError(
                f"{label}: a depth event needs a numeric factor (0.02 keeps 2% of depth) or a factor_range"
                " [low, high] with 0 < low <= high (each seed draws the factor uniformly from it)"
            )
        if action == "agent_param" and ("key" not in params or "value" not in params):
            raise ScenarioError(f"{label}: an agent_param event needs key and value")
        if action == "market_mode":
            if params.get("market") not in markets:
                raise ScenarioError(f"{label}: market was {params.get('market')!r}")
            if params.get("mode") not in MarketMode.__members__:
                raise ScenarioError(f"{label}: mode was {params.get('mode')!r}; use {', '.join(MarketMode)}")
        if action == "insurance_deposit" and "amount" not in params:
            raise ScenarioError(f"{label}: an insurance_deposit event needs an amount")
        out.append(ScriptedEvent(float(at_s), str(action), params))
    out.sort(key=lambda e: e.at_s)
    return out


# ---------------------------------------------------------------------------------------------- overrides


def apply_overrides(doc: Mapping[str, Any], overrides: Mapping[str, object]) -> dict[str, Any]:
    """A copy of ``doc`` with each dotted path in ``overrides`` set to its value.

    Every step of a path must exist (integers index lists), so a typo is an error rather than a
    new key nobody reads. The ``run`` keys may be set even when the file leaves them to their
    defaults. A number replacing a string becomes its decimal text (``0.005`` -> ``"0.005"``).

    Raises
    ------
    ScenarioError
        If a path does not exist, indexes a list out of range, or goes through a value that is
        neither a table nor a list.
    """
    out = copy.deepcopy(dict(doc))
    out["run"] = {**RUN_DEFAULTS, **out.get("run", {})}
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        node: Any = out
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            here = ".".join(parts[: depth + 1])
            if isinstance(node, dict):
                if part not in node:
                    keys = ", ".join(sorted(map(str, node))) or "none"
                    raise ScenarioError(f"override {dotted!r}: {here!r} does not exist (keys there: {keys})")
                if last:
                    node[part] = _coerce(node[part], value)
                else:
                    node = node[part]
            elif isinstance(node, list):
                if not re.fullmatch(r"-?\d+", part) or not -len(node) <= int(part) < len(node):
                    raise ScenarioError(
                        f"override {dotted!r}: {here!r} is not an index of a list of {len(node)} items"
                    )
                if last:
                    node[int(part)] = _coerce(node[int(part)], value)
                else:
                    node = node[int(part)]
            else:
                raise ScenarioError(
                    f"override {dotted!r}: {'.'.join(parts[:depth])!r} is a value, not a table"
                )
    return out


def _coerce(old: object, new: object) -> object:
    if isinstance(old, str) and isinstance(new, int | float) and not isinstance(new, bool):
        if isinstance(new, float) and not math.isfinite(new):
            raise ScenarioError(f"override value {new!r} is not finite")
        return repr(new) if isinstance(new, float) else str(new)
    if isinstance(new, Decimal):
        return f"{new:f}"
    return new


# ---------------------------------------------------------------------------------------------- TOML out


_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(key: str) -> str:
    return key if _BARE.match(key) else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ScenarioError(f"cannot write {value!r} to TOML")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(str(k))} = {_value(v)}" for k, v in value.items()) + " }"
    raise ScenarioError(f"cannot write a {type(value).__name__} to TOML")


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def dump_toml(doc: Mapping[str, Any]) -> str:
    """Write a TOML document (tables, arrays of tables, scalars, arrays): ``tomllib.loads`` gives it back."""
    lines: list[str] = []

    def table(node: Mapping[str, Any], prefix: list[str]) -> None:
        for key, value in node.items():
            if not isinstance(value, dict) and not _is_table_array(value):
                lines.append(f"{_key(str(key))} = {_value(value)}")
        for key, value in node.items():
            path = [*prefix, _key(str(key))]
            if isinstance(value, dict):
                lines.extend(["", f"[{'.'.join(path)}]"])
                table(value, path)
            elif _is_table_array(value):
                for item in value:
                    lines.extend(["", f"[[{'.'.join(path)}]]"])
                    table(item, path)

    table(doc, [])
    return "\n".join(lines).lstrip("\n") + "\n"
