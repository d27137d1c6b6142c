"""The summary schema is a valid JSON Schema and refuses what the issue rules out."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest

from perpx.sim.result import SUMMARY_FIELDS, summary_schema


def test_the_schema_is_valid_and_lists_the_issue_fields() -> None:
    schema = summary_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    for field in (
        *SUMMARY_FIELDS,
        "liquidated_accounts",
        "adl_counterparties",
        "insurance_fund_cash",
        "insurance_fund_position_value",
        "insurance_takeover_loss",
    ):
        assert field in schema["required"], field
        assert schema["properties"][field].get("description"), field


def _account(**change: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "account_id": 3,
        "owner": "long-1",
        "count": 2,
        "notional": 10.0,
        "notional_atoms": 1000000000,
        "cause": "funding_payment",
    }
    row.update(change)
    return row


@pytest.mark.parametrize(
    "bad",
    [
        {"cause": "bad_luck"},
        {"count": 0},
        {"notional": -1.0},
    ],
)
def test_a_liquidated_account_needs_a_known_cause_and_a_count(bad: dict[str, Any]) -> None:
    schema = copy.deepcopy(summary_schema()["properties"]["liquidated_accounts"])
    jsonschema.validate([_account()], schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate([_account(**bad)], schema)


def test_a_takeover_loss_is_never_negative() -> None:
    schema = summary_schema()["properties"]["insurance_takeover_loss"]
    jsonschema.validate(10.5, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(-10_840.0, schema)
