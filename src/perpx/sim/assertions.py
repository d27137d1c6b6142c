"""Scenario assertions: what must hold over a run's results, evaluated without ``eval``.

An assertion is a table in the scenario's ``[[assertions]]``, one of two forms:

* a **named check**, ``{ check = "...", name = "..." }``, over evidence the runner collects:

  ====================================  =====================================================================
  check                                 passes when
  ====================================  =====================================================================
  ``no_account_below_zero``             no account's wallet (or isolated margin) was below zero at any check
  ``adl_equals_shortfall``              in every liquidation that reached ADL, what the ADL counterparties
                                        gave up against the mark equals the shortfall: the loss past the
                                        bankruptcy price less what the insurance fund took on (``value``:
                                        tolerance in atoms per ADL leg, default 1)
  ``no_liquidation_from_faulty_source``  no liquidation happened while its market's index used a quote from
                                        a source inside an outlier fault window (dropped or capped quotes do
                                        not count)
  ``withdrawable_excludes_unrealized``  at every audit, every account's withdrawable balance was at most its
                                        realised equity (deposits - withdrawals + realised PnL + funding -
                                        fees, from its own events), and no account withdrew more than that
  ``no_invariant_violations``           every periodic invariant check passed
  ``every_liquidation_has_a_cause``     every liquidated account in ``liquidated_accounts`` carries one of
                                        the causes (price_move, funding_payment, fee) and the liquidations
                                        counted by cause add up to ``liquidations``
  ``liquidations_at_or_better_than_bankruptcy``
                                        every fill of a liquidation order was at or better than the
                                        position's bankruptcy price (a sell at or above it, a buy at or
                                        below it), and there was at least one such fill
  ``no_adl``                            no position was auto-deleveraged (no ADL leg, no ADL notional)
  ====================================  =====================================================================

* a **comparison** on a summary field, ``{ metric = "bad_debt", op = "==", value = 0 }``; ``metric`` may
  be a dotted path into the summary (``markets.BTCUSDT.liquidations``); ``op`` is one of
  ``== != < <= > >=``; ``value`` a number (or numeric string).

Each result is ``{"name", "expr", "passed", "value", "detail"}`` (``value`` the measured figure).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class AssertionSpecError(ValueError):
    """An assertion table that cannot be evaluated; the message names it."""


@dataclass(frozen=True)
class Assertion:
    """One declared assertion: a named ``check``, or ``metric op value``."""

    name: str
    check: str | None = None
    metric: str | None = None
    op: str | None = None
    value: Any = None

    @property
    def expr(self) -> str:
        if self.check is not None:
            return self.check if self.value is None else f"{self.check}({self.value})"
        return f"{self.metric} {self.op} {self.value}"


def _number(value: Any, what: str) -> float | int:
    if isinstance(value, bool):
        raise AssertionSpecError(f"{what} was {value!r}, which is not a number")
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            parsed = Decimal(value)
        except InvalidOperation as exc:
            raise AssertionSpecError(f"{what} was {value!r}, which is not a number") from exc
        return int(parsed) if parsed == parsed.to_integral_value() else float(parsed)
    raise AssertionSpecError(f"{what} was {value!r}, which is not a number")


def parse_assertions(rows: Sequence[Mapping[str, Any]]) -> list[Assertion]:
    """Assertions from their scenario tables.

    Raises
    ------
    AssertionSpecError
        If a table is neither a known check nor a full ``metric``/``op``/``value`` comparison.
    """
    out: list[Assertion] = []
    for number, row in enumerate(rows):
        where = f"assertions[{number}]"
        unknown = sorted(set(row) - {"name", "check", "metric", "op", "value"})
        if unknown:
            raise AssertionSpecError(f"{where}: unknown key(s) {', '.join(unknown)}")
        check = row.get("check")
        if check is not None:
            if check not in CHECKS:
                raise AssertionSpecError(f"{where}: check was {check!r}; the checks are {', '.join(CHECKS)}")
            value = row.get("value")
            if value is not None:
                value = _number(value, f"{where}.value")
            out.append(Assertion(str(row.get("name", check)), check=str(check), value=value))
            continue
        metric, op = row.get("metric"), row.get("op")
        if not isinstance(metric, str) or not metric:
            raise AssertionSpecError(f"{where}: give a check, or a metric with op and value")
        if op not in OPS:
            raise AssertionSpecError(f"{where}: op was {op!r}; use one of {' '.join(OPS)}")
        if "value" not in row:
            raise AssertionSpecError(f"{where}: a comparison needs a value")
        value = _number(row["value"], f"{where}.value")
        out.append(
            Assertion(str(row.get("name", f"{metric} {op} {value}")), metric=metric, op=str(op), value=value)
        )
    return out


def lookup(summary: Mapping[str, Any], path: str) -> Any:
    """The summary value at a dotted ``path``.

    Raises
    ------
    KeyError
        If the path does not exist.
    """
    node: Any = summary
    for part in path.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            raise KeyError(path)
    return node


def _result(a: Assertion, passed: bool, value: Any, detail: str) -> dict[str, Any]:
    return {"name": a.name, "expr": a.expr, "passed": bool(passed), "value": value, "detail": detail}


def _no_account_below_zero(a: Assertion, s: Mapping[str, Any]) -> dict[str, Any]:
    count = s.get("accounts_below_zero", 0)
    lowest = s.get("min_wallet", 0.0)
    return _result(a, count == 0, count, f"{count} account(s) below zero at a check; lowest wallet {lowest}")


def _adl_equals_shortfall(a: Assertion, s: Mapping[str, Any]) -> dict[str, Any]:
    tolerance = int(a.value) if a.value is not None else 1
    legs = int(s.get("adl_events", 0))
    borne = int(s.get("adl_borne_atoms", 0))
    shortfall = int(s.get("adl_shortfall_atoms", 0))
    gap = abs(borne - shortfall)
    passed = gap <= tolerance * max(1, legs)
    return _result(
        a,
        passed,
        gap,
        f"ADL counterparties bore {borne} atoms over {legs} leg(s); the uncovered shortfall was {shortfall}"
        f" atoms (difference {gap}, tolerance {tolerance} per leg)",
    )


def _no_liquidation_from_faulty_source(a: Assertion, s: Mapping[str, Any]) -> dict[str, Any]:
    count = int(s.get("liquidations_from_faulty_sources", 0))
    used = int(s.get("faulty_quotes_used", 0))
    return _result(
        a,
        count == 0,
        count,
        f"{count} liquidation(s) while an outlier quote was in the index; outlier quotes used by the"
        f" index at all: {used}",
    )


def _withdrawable_excludes_unrealized(a: Assertion, s: Mapping[str, Any]) -> dict[str, Any]:
    excess = int(s.get("withdrawable_excess_max_atoms", 0))
    withdrawn = int(s.get("withdrawn_excess_max_atoms", 0))
    audits = int(s.get("withdrawable_audits", 0))
    worst = max(excess, withdrawn)
    return _result(
        a,
        worst <= 0 and audits > 0,
        worst,
        f"{audits} audits; largest withdrawable above realised equity {excess} atoms; largest withdrawn"
        f" above realised equity {withdrawn} atoms; largest unrealised profit seen"
        f" {s.get('attacker_unrealized_pnl_max', 0.0)}",
    )


def _no_invariant_violations(a: Assertion, s: Mapping[str, Any]) -> dict[str, Any]:
    count = int(s.get("invariant_violations", 0))
    checks = int(s.get("invariant_checks", 0))
    return _result(a, count == 0 and checks > 0, count, f"{count} violation(s) in {checks} checks")


CAUSES = ("price_move", "funding_payment", "fee")
"""What put a liquidated account under: its last margin-changing event before the liquidation."""


def _every_liquidation_has_a_cause(a: Assertion, s: Mapping[str, Any]) -> dict[str, Any]:
    rows = s.get("liquidated_accounts", [])
    rows = rows if isinstance(rows, list) else []
    by_cause = s.get("liquidations_by_cause", {})
    by_cause = by_cause if isinstance(by_cause, Mapping) else {}
    liquidations = int(s.get("liquidations", 0))
    missing = [row.get("account_id") for row in rows if row.get("cause") not in CAUSES]
    counted = sum(int(by_cause.get(cause, 0)) for cause in CAUSES)
    in_rows = sum(int(row.get("count", 0)) for row in rows)
    passed = not missing and counted == liquidations == in_rows
    causes = ", ".join(f"{cause} {int(by_cause.get(cause, 0))}" for cause in CAUSES)
    return _result(
        a,
        passed,
        len(missing),
        f"{liquidations} liquidation(s) of {len(rows)} account(s); by cause: {causes}"
        + (f"; no cause for account(s) {missing}" if missing else ""),
    )


def _liquidations_at_or_better_than_bankruptcy(a: Assertion, s: Mapping[str, Any]) -> dict[str, Any]:
    # the evidence is the liquidation orders sent: an order the book did not fill at all (a void, a
    # squeeze) was still limited at bankruptcy, and holds the rule; a run with no liquidation order
    # proves nothing and does not pass
    orders = int(s.get("liquidation_orders", 0))
    fills = int(s.get("liquidation_fills", 0))
    worse = int(s.get("liquidation_fills_worse_than_bankruptcy", 0))
    unfilled = "" if fills else " (none filled: the book had nothing at or better than bankruptcy)"
    return _result(
        a,
        worse == 0 and orders > 0,
        worse,
        f"{worse} of {fills} liquidation fill(s) of {orders} order(s) worse than the position's"
        f" bankruptcy price{unfilled}",
    )


def _no_adl(a: Assertion, s: Mapping[str, Any]) -> dict[str, Any]:
    legs = int(s.get("adl_events", 0))
    notional = s.get("adl_notional", 0.0)
    return _result(a, legs == 0 and not notional, legs, f"{legs} ADL leg(s), ADL notional {notional}")


CHECKS: dict[str, Callable[[Assertion, Mapping[str, Any]], dict[str, Any]]] = {
    "no_account_below_zero": _no_account_below_zero,
    "adl_equals_shortfall": _adl_equals_shortfall,
    "no_liquidation_from_faulty_source": _no_liquidation_from_faulty_source,
    "withdrawable_excludes_unrealized": _withdrawable_excludes_unrealized,
    "no_invariant_violations": _no_invariant_violations,
    "every_liquidation_has_a_cause": _every_liquidation_has_a_cause,
    "liquidations_at_or_better_than_bankruptcy": _liquidations_at_or_better_than_bankruptcy,
    "no_adl": _no_adl,
}


def evaluate(assertions: Sequence[Assertion], summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Evaluate every assertion over ``summary``; a missing metric fails with a message, never raises."""
    results: list[dict[str, Any]] = []
    for a in assertions:
        if a.check is not None:
            results.append(CHECKS[a.check](a, summary))
            continue
        assert a.metric is not None and a.op is not None
        try:
            measured = lookup(summary, a.metric)
        except KeyError:
            results.append(_result(a, False, None, f"the summary has no {a.metric!r}"))
            continue
        if isinstance(measured, bool) or not isinstance(measured, int | float):
            results.append(_result(a, False, measured, f"{a.metric} is {measured!r}, not a number"))
            continue
        passed = OPS[a.op](measured, a.value)
        results.append(_result(a, passed, measured, f"{a.metric} was {measured}"))
    return results
