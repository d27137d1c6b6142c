"""Load a strategy document and report every problem, each with its path in the document.

Three passes, each complete: the file must parse (TOML or JSON, by suffix); the document must match
the JSON Schema (every violation, via ``jsonschema``, phrased for a person:
``flow.nodes[2].trigger.pct: must be in (0, 100]``); then the references must hold (ids unique, every
node, parent and target named exists, parents pass :func:`perpx.execution.model.validate_parent`, OCO
groups have two members, and triggers form no cycle). The reference pass runs once the structure is
sound, since a reference check on a malformed node would only repeat the schema's complaint.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from jsonschema import Draft202012Validator, ValidationError

from perpx.execution.model import ParentOrderError, decode_parent

from .model import NodeType, StrategyDocument, TriggerKind
from .schema import DECIMAL, ID_PATTERN, shipped_schema


@dataclass(frozen=True, slots=True, order=True)
class DocumentError:
    """One problem: where in the document (``flow.nodes[2].trigger.pct``) and what to do about it."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class DocumentInvalid(ValueError):
    """A document that cannot run; ``errors`` lists every problem found."""

    def __init__(self, errors: Sequence[DocumentError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(error) for error in self.errors))


def parse_file(path: Path) -> Any:
    """The document's data, from ``.toml`` or ``.json``. Raises :class:`DocumentInvalid` when unreadable."""
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise DocumentInvalid(
            [DocumentError("(file)", f"{path.name}: a strategy document is .toml or .json")]
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DocumentInvalid([DocumentError("(file)", f"cannot read {path}: {exc}")]) from exc
    try:
        return tomllib.loads(text) if suffix == ".toml" else json.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DocumentInvalid([DocumentError("(file)", f"not valid TOML: {exc}")]) from exc
    except json.JSONDecodeError as exc:
        raise DocumentInvalid([DocumentError("(file)", f"not valid JSON: {exc}")]) from exc


def check(data: Any) -> list[DocumentError]:
    """Every problem with already-parsed document data, sorted by path; empty when it can run."""
    validator = Draft202012Validator(shipped_schema())
    phrased = {e for error in validator.iter_errors(data) for e in _phrase(error)}
    errors = sorted(phrased | set(_non_finite(data, [])))
    if errors:
        return errors
    return sorted(set(_references(data)))


def load_document(path: Path) -> StrategyDocument:
    """Parse, check and decode ``path``. Raises :class:`DocumentInvalid` with every problem."""
    return decode_document(parse_file(path))


def decode_document(data: Any) -> StrategyDocument:
    """Check and decode parsed document data. Raises :class:`DocumentInvalid` with every problem."""
    errors = check(data)
    if errors:
        raise DocumentInvalid(errors)
    parents = {
        p["id"]: decode_parent({k: v for k, v in p.items() if k != "id"}) for p in data.get("parents", [])
    }
    body = {k: v for k, v in data.items() if k != "parents"}
    document = msgspec.convert(body, StrategyDocument, strict=False)
    return msgspec.structs.replace(document, parents=parents)


# ---------------------------------------------------------------- schema errors, phrased


def format_path(parts: Iterable[str | int]) -> str:
    """``["flow", "nodes", 2, "trigger"]`` as ``flow.nodes[2].trigger``; the root is ``(document)``."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(document)"


def _join(path: str, name: str) -> str:
    return name if path == "(document)" else f"{path}.{name}"


def _interval(schema: dict[str, Any]) -> str:
    low = ("(", schema["exclusiveMinimum"]) if "exclusiveMinimum" in schema else ("[", schema.get("minimum"))
    high = (")", schema["exclusiveMaximum"]) if "exclusiveMaximum" in schema else ("]", schema.get("maximum"))
    if high[1] is None:
        return f"must be {'>' if low[0] == '(' else '>='} {low[1]}"
    if low[1] is None:
        return f"must be {'<' if high[0] == ')' else '<='} {high[1]}"
    return f"must be in {low[0]}{low[1]}, {high[1]}{high[0]}"


def _phrase(error: ValidationError) -> list[DocumentError]:
    path = format_path(error.absolute_path)
    kind, schema, instance = error.validator, error.schema, error.instance
    if not isinstance(schema, dict):
        return [DocumentError(path, error.message)]
    if kind == "required" and isinstance(instance, dict):
        return [
            DocumentError(_join(path, name), "is required")
            for name in schema["required"]
            if name not in instance
        ]
    if kind == "additionalProperties" and isinstance(instance, dict):
        known = schema.get("properties", {})
        return [
            DocumentError(
                _join(path, str(name)), "unknown field (check the spelling; see docs/execution-flows.md)"
            )
            for name in instance
            if name not in known
        ]
    if kind == "enum":
        return [DocumentError(path, "must be one of " + ", ".join(str(v) for v in schema["enum"]))]
    if kind == "const":
        return [DocumentError(path, f"must be {schema['const']!r}")]
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return [DocumentError(path, _interval(schema))]
    if kind == "pattern":
        if schema["pattern"] == ID_PATTERN:
            return [DocumentError(path, "must be 1 to 32 letters, digits, '-' or '_'")]
        if schema["pattern"] == DECIMAL["pattern"]:
            return [DocumentError(path, 'must be a plain positive decimal such as "0.5"')]
    if kind == "type":
        wanted = schema["type"]
        hint = (
            ' (write decimals as strings, e.g. "0.5")'
            if wanted == "string" and isinstance(instance, float)
            else ""
        )
        return [DocumentError(path, f"must be of type {wanted}{hint}")]
    if kind == "anyOf" and any(option.get("format") == "decimal" for option in schema["anyOf"]):
        return [DocumentError(path, 'must be a decimal string such as "0.5"')]
    if kind == "minItems":
        return [DocumentError(path, f"must have at least {schema['minItems']} item(s)")]
    if kind == "minLength":
        return [DocumentError(path, "must not be empty")]
    return [DocumentError(path, error.message)]


def _non_finite(value: Any, path: list[str | int]) -> Iterable[DocumentError]:
    """NaN and infinities (JSON and TOML both allow them) compare false with every bound: refuse them."""
    if isinstance(value, float) and not math.isfinite(value):
        yield DocumentError(format_path(path), f"must be a finite number, was {value}")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _non_finite(item, [*path, str(key)])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _non_finite(item, [*path, index])


# ---------------------------------------------------------------- references


_OUTCOME_KINDS = {TriggerKind.FILLED, TriggerKind.PARTIALLY_FILLED, TriggerKind.REJECTED, TriggerKind.TCA}
_TRADING_NODES = {NodeType.ALGO, NodeType.ORDER}
_CONDITIONS = {TriggerKind.PRICE_CROSS, TriggerKind.TIME, TriggerKind.TCA}


def _duplicates(items: list[dict[str, Any]], key: str, where: str) -> Iterable[DocumentError]:
    first: dict[Any, int] = {}
    for i, item in enumerate(items):
        value = item.get(key)
        if value in first:
            yield DocumentError(
                f"{where}[{i}].{key}", f"duplicate {key} {value!r} (also {where}[{first[value]}])"
            )
        else:
            first[value] = i


def _references(data: dict[str, Any]) -> Iterable[DocumentError]:
    parents: list[dict[str, Any]] = data.get("parents", [])
    nodes: list[dict[str, Any]] = data["flow"]["nodes"]
    yield from _duplicates(parents, "id", "parents")
    yield from _duplicates(parents, "client_algo_id", "parents")
    yield from _duplicates(nodes, "id", "flow.nodes")
    for i, parent in enumerate(parents):
        try:
            decode_parent({k: v for k, v in parent.items() if k != "id"})
        except ParentOrderError as exc:
            yield from (DocumentError(f"parents[{i}].{e.field}", e.message) for e in exc.errors)
    parent_ids = [p["id"] for p in parents]
    node_types = {n["id"]: NodeType(n["type"]) for n in nodes}
    used_parents: dict[str, int] = {}
    groups: dict[str, list[int]] = {}
    for i, node in enumerate(nodes):
        where = f"flow.nodes[{i}]"
        kind = NodeType(node["type"])
        if "parent" in node:
            if node["parent"] not in parent_ids:
                yield DocumentError(
                    f"{where}.parent",
                    f"no parent with id {node['parent']!r} (parents: {', '.join(parent_ids) or 'none'})",
                )
            elif node["parent"] in used_parents:
                yield DocumentError(
                    f"{where}.parent",
                    f"parent {node['parent']!r} is already run by flow.nodes[{used_parents[node['parent']]}]",
                )
            else:
                used_parents[node["parent"]] = i
        for field, value in (("trigger", node.get("trigger")), ("when", node.get("when"))):
            if value is not None:
                yield from _trigger_refs(f"{where}.{field}", value, node["id"], node_types)
        if kind is NodeType.CONDITION and TriggerKind(node["when"]["on"]) not in _CONDITIONS:
            yield DocumentError(f"{where}.when.on", "a condition waits on price_cross, time or tca")
        for j, target in enumerate(node.get("targets", [])):
            if target not in node_types:
                yield DocumentError(f"{where}.targets[{j}]", f"no node with id {target!r}")
            elif target == node["id"]:
                yield DocumentError(f"{where}.targets[{j}]", "a cancel node cannot cancel itself")
        for field in ("parent", "order", "when", "wait_s", "targets"):
            if field in node and field not in _FIELDS_OF[kind]:
                yield DocumentError(f"{where}.{field}", f"not used by a {kind.value} node")
        if "order" in node:
            yield from _order_rules(f"{where}.order", node["order"])
        if "oco" in node:
            groups.setdefault(node["oco"], []).append(i)
            if kind not in _TRADING_NODES:
                yield DocumentError(f"{where}.oco", "only order and algo nodes can be in an OCO group")
    for name, members in groups.items():
        if len(members) < 2:
            yield DocumentError(
                f"flow.nodes[{members[0]}].oco", f"OCO group {name!r} needs at least two nodes"
            )
    yield from _cycles(nodes)


_FIELDS_OF = {
    NodeType.ALGO: {"parent"},
    NodeType.ORDER: {"order"},
    NodeType.CONDITION: {"when"},
    NodeType.WAIT: {"wait_s"},
    NodeType.CANCEL: {"targets"},
}


def _trigger_refs(
    where: str, trigger: dict[str, Any], own_id: str, node_types: dict[str, NodeType]
) -> Iterable[DocumentError]:
    kind = TriggerKind(trigger["on"])
    if "node" in trigger:
        target = trigger["node"]
        if target not in node_types:
            yield DocumentError(f"{where}.node", f"no node with id {target!r}")
        elif target == own_id:
            yield DocumentError(f"{where}.node", "a node cannot wait on itself")
        elif kind in _OUTCOME_KINDS and node_types[target] not in _TRADING_NODES:
            yield DocumentError(
                f"{where}.node",
                f"{kind.value} needs an order or algo node; {target!r} is a {node_types[target].value} node",
            )
    wanted = {
        TriggerKind.FILLED: {"node"},
        TriggerKind.PARTIALLY_FILLED: {"node", "pct"},
        TriggerKind.REJECTED: {"node"},
        TriggerKind.DONE: {"node"},
        TriggerKind.PRICE_CROSS: {"market", "source", "op", "price"},
        TriggerKind.TIME: {"after_s"},
        TriggerKind.TCA: {"node", "metric", "op", "value"},
    }[kind]
    for field in sorted(set(trigger) - wanted - {"on"}):
        yield DocumentError(f"{where}.{field}", f"not used by a {kind.value} trigger")


def _order_rules(where: str, order: dict[str, Any]) -> Iterable[DocumentError]:
    kind = order["type"]
    if "price" in order and kind != "limit":
        yield DocumentError(f"{where}.price", "only a limit order has a price")
    for field in ("stop_price", "stop_source"):
        if field in order and kind != "stop_market":
            yield DocumentError(f"{where}.{field}", "only a stop_market order has it")
    if order.get("post_only") and kind != "limit":
        yield DocumentError(f"{where}.post_only", "only a limit order can be post-only")
    for field in ("qty", "price", "stop_price"):
        if field in order and float(order[field]) == 0:
            yield DocumentError(f"{where}.{field}", "must be positive")


def _cycles(nodes: list[dict[str, Any]]) -> Iterable[DocumentError]:
    """A node waiting (through triggers) on itself would never start: report each cycle once."""
    index = {n["id"]: i for i, n in enumerate(nodes)}
    waits_on: dict[str, list[str]] = {}
    for node in nodes:
        refs = [t["node"] for t in (node.get("trigger"), node.get("when")) if t is not None and "node" in t]
        waits_on[node["id"]] = [r for r in refs if r in index and r != node["id"]]
    done: set[str] = set()
    for start in waits_on:
        stack: list[tuple[str, int]] = [(start, 0)]
        on_path: list[str] = []
        while stack:
            name, edge = stack.pop()
            if edge == 0:
                if name in done:
                    continue
                if name in on_path:
                    loop = on_path[on_path.index(name) :]
                    first = min(loop, key=lambda n: index[n])
                    turned = [*loop[loop.index(first) :], *loop[: loop.index(first)], first]
                    yield DocumentError(
                        f"flow.nodes[{index[first]}].trigger.node",
                        "triggers form a cycle: " + " -> ".join(turned),
                    )
                    continue
                on_path.append(name)
            if edge < len(waits_on[name]):
                stack.append((name, edge + 1))
                stack.append((waits_on[name][edge], 0))
            else:
                on_path.pop()
                done.add(name)
