"""The JSON Schema of a strategy document (draft 2020-12), shipped as ``strategy.schema.json``.

The parent-order part is generated from :class:`perpx.execution.model.ParentOrder`, so the document
and the model cannot drift apart; ``python -m perpx.execution.document.schema`` prints the schema
and a test checks that the shipped file equals it. Decimals (prices, quantities) are strings, as on
Binance's wire, so no document ever carries a float price.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import msgspec

from perpx.execution.model import ParentOrder

VERSION = 1
"""The document version this package reads; a document says ``version = 1``."""

SCHEMA_FILE = "strategy.schema.json"
ID_PATTERN = "^[A-Za-z0-9_-]{1,32}$"
DECIMAL = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$", "description": 'a decimal string, e.g. "0.5"'}
NODE_TYPES = ("algo", "order", "condition", "wait", "cancel")
TRIGGER_KINDS = ("filled", "partially_filled", "rejected", "done", "price_cross", "time", "tca")
PRICE_SOURCES = ("mark", "index", "last")
TCA_METRICS = ("arrival_slippage_bps", "fill_ratio_pct")


def _parent_schema() -> tuple[dict[str, Any], dict[str, Any]]:
    """ParentOrder's schema with an ``id`` added (the name flow nodes use), and its ``$defs``."""
    generated = msgspec.json.schema(ParentOrder)
    defs: dict[str, Any] = generated["$defs"]
    parent = dict(defs.pop("ParentOrder"))
    parent.pop("title", None)
    parent["description"] = "A parent order (perpx.execution.model.ParentOrder) with an id for the flow."
    parent["properties"] = {"id": {"type": "string", "pattern": ID_PATTERN}, **parent["properties"]}
    parent["required"] = ["id", *parent.get("required", [])]
    parent["additionalProperties"] = False
    return parent, defs


def _when(kind: str, required: list[str]) -> dict[str, Any]:
    return {"if": {"properties": {"on": {"const": kind}}, "required": ["on"]}, "then": {"required": required}}


def build_schema() -> dict[str, Any]:
    """The whole document schema as a JSON-ready dict."""
    parent, defs = _parent_schema()
    trigger = {
        "type": "object",
        "description": "When a node starts: another node's outcome, a price crossing, a time or a TCA metric.",
        "properties": {
            "on": {"enum": list(TRIGGER_KINDS)},
            "node": {"type": "string", "pattern": ID_PATTERN},
            "pct": {"type": "number", "exclusiveMinimum": 0, "maximum": 100},
            "market": {"type": "string", "minLength": 1},
            "source": {"enum": list(PRICE_SOURCES)},
            "op": {"enum": [">=", "<="]},
            "price": DECIMAL,
            "after_s": {"type": "integer", "minimum": 0},
            "metric": {"enum": list(TCA_METRICS)},
            "value": {"type": "number"},
        },
        "required": ["on"],
        "additionalProperties": False,
        "allOf": [
            _when("filled", ["node"]),
            _when("partially_filled", ["node", "pct"]),
            _when("rejected", ["node"]),
            _when("done", ["node"]),
            _when("price_cross", ["market", "source", "op", "price"]),
            _when("time", ["after_s"]),
            _when("tca", ["node", "metric", "op", "value"]),
        ],
    }
    order = {
        "type": "object",
        "description": "One order; a stop is held by the flow and sent as a market order when its price crosses.",
        "properties": {
            "market": {"type": "string", "minLength": 1},
            "side": {"enum": ["buy", "sell"]},
            "qty": DECIMAL,
            "type": {"enum": ["limit", "market", "stop_market"]},
            "price": DECIMAL,
            "stop_price": DECIMAL,
            "stop_source": {"enum": list(PRICE_SOURCES)},
            "reduce_only": {"type": "boolean"},
            "post_only": {"type": "boolean"},
        },
        "required": ["market", "side", "qty", "type"],
        "additionalProperties": False,
        "allOf": [
            {"if": {"properties": {"type": {"const": "limit"}}}, "then": {"required": ["price"]}},
            {"if": {"properties": {"type": {"const": "stop_market"}}}, "then": {"required": ["stop_price"]}},
        ],
    }
    node = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "pattern": ID_PATTERN},
            "type": {"enum": list(NODE_TYPES)},
            "trigger": {"$ref": "#/$defs/trigger"},
            "oco": {
                "type": "string",
                "pattern": ID_PATTERN,
                "description": "OCO group: the first fill cancels the rest.",
            },
            "parent": {"type": "string", "pattern": ID_PATTERN},
            "order": {"$ref": "#/$defs/order"},
            "when": {"$ref": "#/$defs/trigger"},
            "wait_s": {"type": "integer", "exclusiveMinimum": 0},
            "targets": {"type": "array", "items": {"type": "string", "pattern": ID_PATTERN}, "minItems": 1},
        },
        "required": ["id", "type"],
        "additionalProperties": False,
        "allOf": [
            {"if": {"properties": {"type": {"const": "algo"}}}, "then": {"required": ["parent"]}},
            {"if": {"properties": {"type": {"const": "order"}}}, "then": {"required": ["order"]}},
            {"if": {"properties": {"type": {"const": "condition"}}}, "then": {"required": ["when"]}},
            {"if": {"properties": {"type": {"const": "wait"}}}, "then": {"required": ["wait_s"]}},
            {"if": {"properties": {"type": {"const": "cancel"}}}, "then": {"required": ["targets"]}},
        ],
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://perpx.dev/schemas/strategy-1.json",
        "title": "perpx strategy document",
        "type": "object",
        "properties": {
            "version": {"const": VERSION},
            "name": {"type": "string", "minLength": 1},
            "description": {"type": "string"},
            "parents": {"type": "array", "items": {"$ref": "#/$defs/parent"}},
            "flow": {
                "type": "object",
                "properties": {"nodes": {"type": "array", "items": {"$ref": "#/$defs/node"}, "minItems": 1}},
                "required": ["nodes"],
                "additionalProperties": False,
            },
        },
        "required": ["version", "name", "flow"],
        "additionalProperties": False,
        "$defs": {"parent": parent, "trigger": trigger, "order": order, "node": node, **defs},
    }


def shipped_schema() -> dict[str, Any]:
    """The schema file shipped in the package."""
    text = resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


if __name__ == "__main__":
    print(json.dumps(build_schema(), indent=2, sort_keys=True))
