"""Strategy documents: the shipped schema and examples, and every error reported at its path."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from typer.testing import CliRunner

from perpx.cli import app
from perpx.execution.document.model import NodeType, TriggerKind
from perpx.execution.document.schema import build_schema, shipped_schema
from perpx.execution.document.validate import (
    DocumentInvalid,
    check,
    decode_document,
    load_document,
    parse_file,
)

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "strategies"

BASE: dict[str, Any] = {
    "version": 1,
    "name": "t",
    "parents": [
        {
            "id": "p",
            "client_algo_id": "t-1",
            "algo": "twap",
            "market": "BTCUSDT",
            "side": "buy",
            "qty": "1",
            "duration_s": 600,
        }
    ],
    "flow": {
        "nodes": [
            {"id": "a", "type": "algo", "parent": "p"},
            {
                "id": "b",
                "type": "order",
                "trigger": {"on": "filled", "node": "a"},
                "order": {"market": "BTCUSDT", "side": "sell", "qty": "1", "type": "limit", "price": "70000"},
            },
        ]
    },
}


def edited(path: str, value: Any) -> dict[str, Any]:
    """BASE with the value at ``path`` (dots and [i]) replaced; ``...`` deletes it."""
    document = copy.deepcopy(BASE)
    keys: list[str | int] = [
        int(k) if k.isdigit() else k for k in path.replace("[", ".").replace("]", "").split(".")
    ]
    target: Any = document
    for key in keys[:-1]:
        target = target[key]
    if value is ...:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value
    return document


def messages(document: dict[str, Any]) -> list[str]:
    return [str(error) for error in check(document)]


def test_the_shipped_schema_is_the_generated_one_and_a_valid_schema() -> None:
    Draft202012Validator.check_schema(shipped_schema())
    assert shipped_schema() == json.loads(json.dumps(build_schema()))


@pytest.mark.parametrize("name", ["twap.toml", "bracket.toml", "if-then.json"])
def test_each_shipped_example_validates(name: str) -> None:
    document = load_document(EXAMPLES / name)
    assert document.version == 1 and document.flow.nodes


def test_the_base_document_is_valid_and_decodes() -> None:
    document = decode_document(BASE)
    assert messages(BASE) == []
    assert document.parents["p"].client_algo_id == "t-1"
    assert [n.type for n in document.flow.nodes] == [NodeType.ALGO, NodeType.ORDER]
    trigger = document.flow.nodes[1].trigger
    assert trigger is not None and trigger.on is TriggerKind.FILLED


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("version", 2, "version: must be 1"),
        (
            "flow.nodes[1].trigger",
            {"on": "partially_filled", "node": "a", "pct": 150},
            "flow.nodes[1].trigger.pct: must be in (0, 100]",
        ),
        (
            "flow.nodes[1].trigger",
            {"on": "partially_filled", "node": "a", "pct": 0},
            "flow.nodes[1].trigger.pct: must be in (0, 100]",
        ),
        (
            "flow.nodes[1].trigger",
            {"on": "partially_filled", "node": "a"},
            "flow.nodes[1].trigger.pct: is required",
        ),
        (
            "flow.nodes[1].trigger",
            {"on": "soon"},
            "flow.nodes[1].trigger.on: must be one of filled, partially_filled, rejected, done, price_cross, time, tca",
        ),
        (
            "flow.nodes[1].colour",
            "red",
            "flow.nodes[1].colour: unknown field (check the spelling; see docs/execution-flows.md)",
        ),
        (
            "flow.nodes[1].order.price",
            70000.5,
            'flow.nodes[1].order.price: must be of type string (write decimals as strings, e.g. "0.5")',
        ),
        (
            "flow.nodes[1].order.price",
            "-1",
            'flow.nodes[1].order.price: must be a plain positive decimal such as "0.5"',
        ),
        ("flow.nodes[1].order.price", ..., "flow.nodes[1].order.price: is required"),
        ("flow.nodes[0].id", "has space", "flow.nodes[0].id: must be 1 to 32 letters, digits, '-' or '_'"),
        ("flow.nodes", [], "flow.nodes: must have at least 1 item(s)"),
        ("parents[0].qty", 1.5, 'parents[0].qty: must be a decimal string such as "0.5"'),
        (
            "parents[0].limit_prce",
            "1",
            "parents[0].limit_prce: unknown field (check the spelling; see docs/execution-flows.md)",
        ),
        ("name", ..., "name: is required"),
    ],
)
def test_a_structural_error_is_reported_at_its_path(path: str, value: Any, expected: str) -> None:
    assert expected in messages(edited(path, value))


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("flow.nodes[0].parent", "nope", "flow.nodes[0].parent: no parent with id 'nope' (parents: p)"),
        ("flow.nodes[1].id", "a", "flow.nodes[1].id: duplicate id 'a' (also flow.nodes[0])"),
        (
            "flow.nodes[1].trigger",
            {"on": "filled", "node": "zz"},
            "flow.nodes[1].trigger.node: no node with id 'zz'",
        ),
        (
            "flow.nodes[1].trigger",
            {"on": "filled", "node": "b"},
            "flow.nodes[1].trigger.node: a node cannot wait on itself",
        ),
        (
            "flow.nodes[1].trigger",
            {"on": "time", "after_s": 5, "node": "a"},
            "flow.nodes[1].trigger.node: not used by a time trigger",
        ),
        (
            "flow.nodes[0].trigger",
            {"on": "filled", "node": "b"},
            "flow.nodes[0].trigger.node: triggers form a cycle: a -> b -> a",
        ),
        ("flow.nodes[1].oco", "exit", "flow.nodes[1].oco: OCO group 'exit' needs at least two nodes"),
        ("flow.nodes[1].wait_s", 5, "flow.nodes[1].wait_s: not used by a order node"),
        (
            "flow.nodes[1].order.stop_price",
            "1",
            "flow.nodes[1].order.stop_price: only a stop_market order has it",
        ),
        ("parents[0].duration_s", ..., "parents[0].duration_s: twap needs end_ns or duration_s"),
        (
            "parents[0].client_algo_id",
            "has space",
            "parents[0].client_algo_id: may hold only letters, digits, '-' and '_'",
        ),
    ],
)
def test_a_reference_error_is_reported_at_its_path(path: str, value: Any, expected: str) -> None:
    assert expected in messages(edited(path, value))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_number_is_rejected_where_it_stands(value: float) -> None:
    document = edited("flow.nodes[1].trigger", {"on": "partially_filled", "node": "a", "pct": value})
    assert f"flow.nodes[1].trigger.pct: must be a finite number, was {value}" in messages(document)


def test_nan_in_a_toml_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "nan.toml"
    path.write_text(
        'version = 1\nname = "n"\n[[flow.nodes]]\nid = "a"\ntype = "wait"\nwait_s = 1\n'
        '[[flow.nodes]]\nid = "b"\ntype = "cancel"\ntargets = ["a"]\n'
        'trigger = { on = "tca", node = "a", metric = "fill_ratio_pct", op = ">=", value = nan }\n'
    )
    assert "flow.nodes[1].trigger.value: must be a finite number, was nan" in [
        str(e) for e in check(parse_file(path))
    ]


def test_every_structural_error_is_reported_not_just_the_first() -> None:
    document = edited("version", 3)
    document["flow"]["nodes"][1]["trigger"] = {"on": "partially_filled", "node": "a", "pct": 101}
    document["flow"]["nodes"][0]["colour"] = "red"
    assert len(messages(document)) == 3


def test_a_condition_on_another_nodes_fill_is_rejected() -> None:
    document = copy.deepcopy(BASE)
    document["flow"]["nodes"].append({"id": "c", "type": "condition", "when": {"on": "filled", "node": "a"}})
    assert "flow.nodes[2].when.on: a condition waits on price_cross, time or tca" in messages(document)


def test_decoding_an_invalid_document_raises_with_every_error() -> None:
    with pytest.raises(DocumentInvalid) as raised:
        decode_document(edited("version", 9))
    assert [str(e) for e in raised.value.errors] == ["version: must be 1"]


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("s.yaml", "a: 1", "(file): s.yaml: a strategy document is .toml or .json"),
        ("s.toml", "version = ", "(file): not valid TOML"),
        ("s.json", "{", "(file): not valid JSON"),
    ],
)
def test_an_unreadable_file_is_a_clear_error(tmp_path: Path, name: str, text: str, expected: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(DocumentInvalid) as raised:
        parse_file(path)
    assert str(raised.value).startswith(expected)


def test_the_validate_command_lists_every_problem_and_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(edited("version", 5) | {"extra": 1}))
    result = CliRunner().invoke(app, ["algo", "validate", str(path)])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "extra: unknown field (check the spelling; see docs/execution-flows.md)",
        "version: must be 1",
    ]


def test_the_validate_command_accepts_an_example_and_speaks_json() -> None:
    result = CliRunner().invoke(app, ["algo", "validate", str(EXAMPLES / "bracket.toml"), "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"file": str(EXAMPLES / "bracket.toml"), "valid": True, "errors": []}
