"""Assertions: comparisons and named checks over a summary, without eval."""

from __future__ import annotations

from typing import Any

import pytest

from perpx.sim.assertions import AssertionSpecError, evaluate, parse_assertions


def _one(row: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    (result,) = evaluate(parse_assertions([row]), summary)
    return result


@pytest.mark.parametrize(
    ("op", "value", "passed"),
    [("==", 0, True), ("!=", 0, False), ("<", 1, True), ("<=", 0, True), (">", 0, False), (">=", "0", True)],
)
def test_comparisons_on_a_summary_field(op: str, value: object, passed: bool) -> None:
    result = _one({"metric": "bad_debt", "op": op, "value": value}, {"bad_debt": 0.0})
    assert result["passed"] is passed
    assert result["value"] == 0.0 and result["expr"] == f"bad_debt {op} {int(value)}"  # type: ignore[call-overload]


def test_a_dotted_metric_reads_into_nested_summary_tables() -> None:
    summary = {"markets": {"BTCUSDT": {"liquidations": 4}}}
    result = _one({"metric": "markets.BTCUSDT.liquidations", "op": ">=", "value": 5}, summary)
    assert result["passed"] is False and result["value"] == 4


def test_a_missing_metric_fails_with_a_message_instead_of_raising() -> None:
    result = _one({"metric": "nope", "op": "==", "value": 0}, {})
    assert result["passed"] is False and "no 'nope'" in result["detail"]


@pytest.mark.parametrize(
    ("check", "good", "bad"),
    [
        ("no_account_below_zero", {"accounts_below_zero": 0}, {"accounts_below_zero": 2}),
        (
            "adl_equals_shortfall",
            {"adl_events": 3, "adl_borne_atoms": 1000, "adl_shortfall_atoms": 1002},
            {"adl_events": 3, "adl_borne_atoms": 1000, "adl_shortfall_atoms": 1004},
        ),
        (
            "no_liquidation_from_faulty_source",
            {"liquidations_from_faulty_sources": 0},
            {"liquidations_from_faulty_sources": 1},
        ),
        (
            "withdrawable_excludes_unrealized",
            {"withdrawable_audits": 5, "withdrawable_excess_max_atoms": 0, "withdrawn_excess_max_atoms": -3},
            {"withdrawable_audits": 5, "withdrawable_excess_max_atoms": 7, "withdrawn_excess_max_atoms": -3},
        ),
        (
            "no_invariant_violations",
            {"invariant_checks": 3, "invariant_violations": 0},
            {"invariant_checks": 3, "invariant_violations": 1},
        ),
        (
            "every_liquidation_has_a_cause",
            {
                "liquidations": 3,
                "liquidations_by_cause": {"price_move": 1, "funding_payment": 2, "fee": 0},
                "liquidated_accounts": [
                    {"account_id": 4, "count": 1, "cause": "price_move"},
                    {"account_id": 5, "count": 2, "cause": "funding_payment"},
                ],
            },
            {
                "liquidations": 3,
                "liquidations_by_cause": {"price_move": 1, "funding_payment": 0, "fee": 0},
                "liquidated_accounts": [
                    {"account_id": 4, "count": 1, "cause": "price_move"},
                    {"account_id": 5, "count": 2, "cause": None},
                ],
            },
        ),
        (
            "liquidations_at_or_better_than_bankruptcy",
            {"liquidation_orders": 2, "liquidation_fills": 4, "liquidation_fills_worse_than_bankruptcy": 0},
            {"liquidation_orders": 2, "liquidation_fills": 4, "liquidation_fills_worse_than_bankruptcy": 1},
        ),
        ("no_adl", {"adl_events": 0, "adl_notional": 0.0}, {"adl_events": 2, "adl_notional": 10.5}),
    ],
)
def test_named_checks_pass_and_fail(check: str, good: dict[str, Any], bad: dict[str, Any]) -> None:
    assert _one({"check": check}, good)["passed"] is True
    assert _one({"check": check}, bad)["passed"] is False


def test_liquidation_orders_the_book_never_filled_hold_the_bankruptcy_rule() -> None:
    summary = {"liquidation_orders": 3, "liquidation_fills": 0, "liquidation_fills_worse_than_bankruptcy": 0}

    result = _one({"check": "liquidations_at_or_better_than_bankruptcy"}, summary)

    assert result["passed"] is True and "none filled" in result["detail"]


def test_the_bankruptcy_rule_with_no_liquidation_order_proves_nothing() -> None:
    summary = {"liquidation_orders": 0, "liquidation_fills": 0, "liquidation_fills_worse_than_bankruptcy": 0}

    assert _one({"check": "liquidations_at_or_better_than_bankruptcy"}, summary)["passed"] is False


def test_a_check_with_no_evidence_does_not_pass() -> None:
    # an audit or invariant check that never ran proves nothing
    assert _one({"check": "withdrawable_excludes_unrealized"}, {})["passed"] is False
    assert _one({"check": "no_invariant_violations"}, {})["passed"] is False


def test_each_result_has_name_expr_passed_value_detail() -> None:
    result = _one(
        {"name": "fund", "metric": "insurance_fund_min", "op": ">=", "value": 10}, {"insurance_fund_min": 3}
    )
    assert set(result) == {"name", "expr", "passed", "value", "detail"}
    assert result["name"] == "fund" and result["passed"] is False


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"check": "be_nice"}, "check was"),
        ({"metric": "x", "op": "~", "value": 1}, "op was"),
        ({"metric": "x", "op": "=="}, "needs a value"),
        ({"metric": "x", "op": "==", "value": "ten"}, "not a number"),
        ({"metric": "x", "op": "==", "value": True}, "not a number"),
        ({"op": "==", "value": 1}, "give a check"),
        ({"metric": "x", "op": "==", "value": 1, "extra": 2}, "unknown key"),
    ],
)
def test_bad_assertions_are_refused(row: dict[str, Any], message: str) -> None:
    with pytest.raises(AssertionSpecError, match=message):
        parse_assertions([row])
