"""Staged parameter changes: proposal, dry run, approval by a second operator, apply.

A :class:`Proposal` names a market and new values of its parameters with a reason: the live ones
(:data:`perpx.engine.config.MARKET_PARAMS`) and those the venue cannot change live on its own
(brackets, default leverage, funding settings, index sources, the tick and lot filters:
:data:`perpx.engine.params.CHANGEABLE`),
in the config file's names and units. Nothing changes until it is applied, and then only through
the engine's ``ChangeMarketParams`` command (checked by the config's rules and the venue's rules
of :mod:`perpx.engine.params`, journaled, audited):

``proposed`` --dry-run--> ``proposed`` (with a comparison) --approve--> ``approved`` --apply--> ``applied``

``reject`` ends a proposal that is not applied; one not applied within its lifetime is
``expired``. Rules (each refused with a code and a message that says what to do):

* an approval needs a stored dry run, and an operator other than the proposer (four eyes);
* only an approved, unexpired proposal is applied, once;
* a rejected or expired proposal changes nothing.

Every step is recorded on the proposal with who and when (:attr:`Proposal.trail`); the apply
itself is also in the venue's audit log (``GET /admin/v1/audit``, the ``ChangeMarketParams``
record with the applying operator).

The dry run (:func:`dry_run`) runs risk lab scenarios twice, with the market's current values
and with the proposed ones, and compares liquidations, ADL, bad debt, the insurance fund's
minimum and the largest mark-index gap. A scenario that has no market of that symbol is
reported as not applicable. On a running venue the dry run also checks the change against the
venue's state now (:func:`perpx.engine.params.preview`): orders the new filters would cancel,
accounts new brackets would put under maintenance, positions whose leverage would be clamped,
fresh index sources. A change the venue would refuse is reported there, and cannot be approved.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from perpx.engine.config import (
    MARKET_KEYS,
    ConfigError,
    MarketSpec,
)
from perpx.engine.params import (
    CHANGEABLE,
    STRUCTURED,
    FilterGridError,
    canonical,
    changed_spec,
    fixed_reason,
    table_value,
)
from perpx.engine.values import MarketId
from perpx.sim.runner.run import run_scenario
from perpx.sim.scenario import ScenarioError, load_scenario, scenario_from_document

PROPOSALS_FILE: Final = "proposals.json"
"""Where a venue keeps its proposals, in its data directory."""

LIFETIME_MS: Final = 24 * 3_600_000
"""A proposal not applied within a day expires."""

COMPARED: Final = (
    "liquidations",
    "adl_events",
    "bad_debt",
    "insurance_fund_min",
    "max_mark_index_gap_bps",
)
"""The summary figures a dry run compares (risk lab ``summary.json`` names)."""

SCENARIOS_DIR: Final = Path(__file__).resolve().parents[3] / "scenarios"
"""The shipped scenarios (the repository's ``scenarios/``)."""

NOT_LIVE_CODE: Final = -9404
"""A market parameter of the config file that cannot change while the venue runs."""

UNKNOWN_PARAM_CODE: Final = -9405
"""A name that is not a market parameter at all."""


def not_live_reason(name: str) -> str:
    """Why ``name`` (a config-file market key not in :data:`CHANGEABLE`) cannot change on a running venue."""
    return fixed_reason(name)


class ProposalError(ValueError):
    """A step the proposal's state or the four-eyes rule does not allow; ``code`` for the API."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass
class Step:
    """One thing that happened to a proposal: what, who, when (wall ms), and a detail."""

    action: str
    operator: str
    wall_ms: int
    detail: str = ""


@dataclass
class Proposal:
    """A staged change of one market's parameters."""

    id: int
    symbol: str
    params: dict[str, str]
    reason: str
    proposer: str
    created_ms: int
    expires_ms: int
    state: str = "proposed"
    approver: str | None = None
    dry_run: dict[str, Any] | None = None
    applied_seq: int | None = None
    apply_at_ms: int | None = None
    """Venue time (ms) at which an approved proposal is to be applied; ``None``: when asked."""
    cancel_off_grid: bool = False
    """Cancel the resting orders the new filters would refuse, instead of refusing the change."""
    trail: list[Step] = field(default_factory=list)

    def status(self, now_ms: int) -> str:
        """The state, with ``expired`` for a proposal past its lifetime that was never applied."""
        if self.state in ("proposed", "approved") and now_ms >= self.expires_ms:
            return "expired"
        return self.state

    def as_json(self, now_ms: int) -> dict[str, Any]:
        body = asdict(self)
        body["state"] = self.status(now_ms)
        return body


def check_params(spec: MarketSpec, atom: Decimal, params: Mapping[str, object]) -> dict[str, str]:
    """The params as change text (config-file text; tables as JSON), checked as the venue would now.

    Raises :class:`ProposalError` naming the parameter and the rule it breaks.
    """
    if not params:
        raise ProposalError(400, -1102, "params is empty; name at least one parameter to change")
    text: dict[str, str] = {}
    for name, value in params.items():
        if name in MARKET_KEYS and name not in CHANGEABLE:
            raise ProposalError(
                400,
                NOT_LIVE_CODE,
                f"{name!r} cannot be changed on a listed market ({not_live_reason(name)}); it is set in"
                f" the venue's config.toml when the market is listed. Changeable by a proposal:"
                f" {', '.join(CHANGEABLE)}",
            )
        if name not in CHANGEABLE:
            raise ProposalError(
                400,
                UNKNOWN_PARAM_CODE,
                f"{name!r} is not a market parameter; changeable by a proposal: {', '.join(CHANGEABLE)}",
            )
        text[name] = _param_text(name, value)
    try:
        changed_spec(spec, atom, text)
    except FilterGridError as exc:
        raise ProposalError(400, int(exc.code), f"the proposed values are not valid: {exc}") from exc
    except ConfigError as exc:
        raise ProposalError(400, -1102, f"the proposed values are not valid: {exc}") from exc
    return text


def _param_text(name: str, value: object) -> str:
    """One proposed value as change text: a table (or its JSON text) for brackets and index."""
    if name in STRUCTURED:
        if isinstance(value, str):
            written = value
            try:
                value = json.loads(written)
            except ValueError:
                raise ProposalError(
                    400, -1102, f"{name}: {written[:40]!r} is not JSON; give the config table as JSON"
                ) from None
        if name == "brackets" and not isinstance(value, list):
            raise ProposalError(
                400,
                -1102,
                f'{name} is a list of tiers: [{{"notional_cap": "50000", "max_leverage": 50, "mmr": "0.01"}}]',
            )
        if name == "index" and not isinstance(value, dict):
            raise ProposalError(
                400, -1102, f'{name} is a table: {{"sources": {{"binance": 3}}, "min_sources": 1, ...}}'
            )
        return canonical(value)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ProposalError(400, -1102, f'{name}: {value!r} is not a string or an integer; write "0.05"')
    return str(value)


@dataclass
class ProposalBook:
    """The proposals of one venue, kept in ``DATA/proposals.json`` (rewritten whole, atomically)."""

    path: Path | None
    proposals: dict[int, Proposal] = field(default_factory=dict)

    @classmethod
    def open(cls, path: Path | None) -> ProposalBook:
        book = cls(path)
        if path is not None and path.exists():
            for row in json.loads(path.read_text()):
                trail = [Step(**step) for step in row.pop("trail")]
                proposal = Proposal(**row, trail=trail)
                book.proposals[proposal.id] = proposal
        return book

    def save(self) -> None:
        if self.path is None:
            return
        rows = [asdict(p) for p in sorted(self.proposals.values(), key=lambda p: p.id)]
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(rows, indent=1))
        os.replace(temporary, self.path)

    def get(self, proposal_id: int) -> Proposal:
        proposal = self.proposals.get(proposal_id)
        if proposal is None:
            raise ProposalError(404, -9401, f"no proposal {proposal_id}; GET /admin/v1/proposals lists them")
        return proposal

    def propose(
        self,
        symbol: str,
        params: dict[str, str],
        reason: str,
        operator: str,
        now_ms: int,
        cancel_off_grid: bool = False,
    ) -> Proposal:
        if not reason.strip():
            raise ProposalError(400, -1102, "reason is empty; say why the parameters should change")
        proposal = Proposal(
            id=max(self.proposals, default=0) + 1,
            symbol=symbol,
            params=params,
            reason=reason,
            proposer=operator,
            created_ms=now_ms,
            expires_ms=now_ms + LIFETIME_MS,
            cancel_off_grid=cancel_off_grid,
        )
        proposal.trail.append(Step("proposed", operator, now_ms, reason))
        self.proposals[proposal.id] = proposal
        self.save()
        return proposal

    def _open(self, proposal: Proposal, now_ms: int, action: str) -> None:
        state = proposal.status(now_ms)
        if state not in ("proposed", "approved"):
            raise ProposalError(409, -9402, f"proposal {proposal.id} is {state}; it cannot be {action}")

    def record_dry_run(self, proposal: Proposal, result: dict[str, Any], operator: str, now_ms: int) -> None:
        self._open(proposal, now_ms, "dry-run")
        proposal.dry_run = result
        proposal.trail.append(Step("dry-run", operator, now_ms, ", ".join(result["scenarios"])))
        self.save()

    def approve(self, proposal: Proposal, operator: str, now_ms: int) -> None:
        self._open(proposal, now_ms, "approved")
        if proposal.state == "approved":
            raise ProposalError(
                409, -9402, f"proposal {proposal.id} is already approved by {proposal.approver}"
            )
        if proposal.dry_run is None:
            raise ProposalError(
                409,
                -9402,
                f"proposal {proposal.id} has no dry run; POST /admin/v1/proposals/{proposal.id}/dry-run first",
            )
        refused = (proposal.dry_run.get("venue") or {}).get("refused")
        if refused:
            raise ProposalError(
                409,
                int(refused["code"]),
                f"proposal {proposal.id}'s dry run found the venue would refuse it: {refused['message']}",
            )
        if operator == proposal.proposer:
            raise ProposalError(
                403, -9403, f"{operator} proposed it; another operator must approve (X-PERPX-OPERATOR)"
            )
        proposal.state, proposal.approver = "approved", operator
        proposal.trail.append(Step("approved", operator, now_ms))
        self.save()

    def check_apply(self, proposal: Proposal, now_ms: int) -> None:
        self._open(proposal, now_ms, "applied")
        if proposal.state != "approved":
            raise ProposalError(409, -9402, f"proposal {proposal.id} is not approved; it cannot be applied")

    def schedule(self, proposal: Proposal, at_ms: int, operator: str, now_ms: int) -> None:
        """Apply an approved proposal once venue time reaches ``at_ms`` (unless it expires first)."""
        self.check_apply(proposal, now_ms)
        proposal.apply_at_ms = at_ms
        proposal.trail.append(Step("scheduled", operator, now_ms, f"at venue time {at_ms} ms"))
        self.save()

    def due(self, venue_ms: int, now_ms: int) -> list[Proposal]:
        """Approved, unexpired proposals scheduled at or before ``venue_ms``, oldest first."""
        return [
            p
            for p in sorted(self.proposals.values(), key=lambda p: p.id)
            if p.status(now_ms) == "approved" and p.apply_at_ms is not None and p.apply_at_ms <= venue_ms
        ]

    def applied(self, proposal: Proposal, operator: str, seq: int, now_ms: int) -> None:
        proposal.state, proposal.applied_seq = "applied", seq
        proposal.trail.append(Step("applied", operator, now_ms, f"journal seq {seq}"))
        self.save()

    def apply_failed(self, proposal: Proposal, operator: str, why: str, now_ms: int) -> None:
        proposal.trail.append(Step("apply-refused", operator, now_ms, why))
        self.save()

    def reject(self, proposal: Proposal, operator: str, why: str, now_ms: int) -> None:
        self._open(proposal, now_ms, "rejected")
        proposal.state = "rejected"
        proposal.trail.append(Step("rejected", operator, now_ms, why))
        self.save()


def _set_params(market: dict[str, Any], symbol: str, values: Mapping[str, str]) -> None:
    """Write change text into a market table as the config file spells it.

    A new tick or lot size is a filter over the units the table had (as on a running venue).
    """
    for name, unit in (("tick_size", "price_unit"), ("lot_size", "qty_unit")):
        if name in values and name in market:
            market.setdefault(unit, market[name])
    for name, text in values.items():
        value = table_value(MarketId(symbol), name, text)
        if value is None:
            market.pop(name, None)
        else:
            market[name] = value


def shipped_scenarios(directory: Path = SCENARIOS_DIR) -> list[str]:
    """Names of the scenarios in ``directory`` (files with a ``name``; the shared config is left out)."""
    return [path.stem for path in sorted(directory.glob("*.toml")) if "\nname = " in path.read_text()]


def dry_run(
    symbol: str,
    current: Mapping[str, str],
    proposed: Mapping[str, str],
    scenarios: Iterable[str],
    directory: Path = SCENARIOS_DIR,
    seed: int = 1,
) -> dict[str, Any]:
    """Run each scenario with the ``current`` and the ``proposed`` values; compare :data:`COMPARED`.

    Raises :class:`ProposalError` for a scenario name that is not in ``directory``.
    """
    rows: dict[str, Any] = {}
    names = list(scenarios)
    for name in names:
        path = directory / f"{Path(name).name}.toml"
        if not path.is_file():
            raise ProposalError(
                400,
                -1102,
                f"no scenario {name!r} in {directory}; shipped: {', '.join(shipped_scenarios(directory))}",
            )
        try:
            base = load_scenario(path)
        except ScenarioError as exc:
            rows[name] = {"error": str(exc)}
            continue
        markets = base.doc.get("config", {}).get("markets", {})
        if symbol not in markets:
            rows[name] = {"applicable": False, "why": f"the scenario has no market {symbol}"}
            continue
        figures = {}
        for label, values in (("current", current), ("proposed", proposed)):
            doc = copy.deepcopy(base.doc)
            try:
                _set_params(doc["config"]["markets"][symbol], symbol, values)
                scenario = scenario_from_document(doc, base.base_dir, base.path)
                summary = run_scenario(scenario, seed, None, write_outputs=False).summary
            except (ScenarioError, ConfigError) as exc:
                figures[label] = {"error": str(exc)}
                continue
            figures[label] = {key: summary[key] for key in COMPARED}
        rows[name] = {"applicable": True, **figures}
    return {
        "symbol": symbol,
        "current": dict(current),
        "proposed": dict(proposed),
        "scenarios": names,
        "results": rows,
    }
