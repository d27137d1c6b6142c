"""A run's summary: the figures ``summary.json`` holds, and the scenario's assertions evaluated on them.

Money comes twice: fields named ``*_atoms`` are exact integers of the settlement asset; the issue's
named fields (``bad_debt``, ``insurance_fund_min``, ...) are the same amounts in settlement units as
floats, for reading and plotting. :data:`~perpx.sim.result.SUMMARY_FIELDS` lists the fields every
summary has; this module writes them and more.

Bad debt is the loss no one covered in time: the shortfall ADL had to push onto profitable
traders (each ADL step's loss past the mark; a step that handed its counterparties a gain offsets
nothing), plus the insurance fund's negative equity and every negative balance left at the end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from perpx.engine import formulas
from perpx.engine.engine import Engine
from perpx.engine.liquidation.insurance import INSURANCE_ACCOUNT, fund_cash, fund_equity
from perpx.engine.state import state_hash
from perpx.engine.values import RATE_SCALE
from perpx.sim.agents import Adversary, Agent, MarketMaker
from perpx.sim.assertions import evaluate
from perpx.sim.runner.metrics import CAUSES, RunMetrics
from perpx.sim.scenario import Scenario


def summarise(
    scenario: Scenario,
    seed: int,
    engine: Engine,
    metrics: RunMetrics,
    agents: Sequence[Agent],
    *,
    commands: int,
    events: int,
    sim_seconds: float,
    faulty_quotes_sent: int,
    wall_seconds: float,
) -> dict[str, Any]:
    """The run's summary, ending with ``assertions``: each of the scenario's, evaluated on it."""
    m = metrics
    units = m.units
    end_equity = fund_equity(engine)
    negative_end = 0
    for account_id, account in engine.accounts.items():
        if account_id != INSURANCE_ACCOUNT:
            negative_end += max(0, -account.balance(engine.asset))
    bad_debt = m.adl_loss_atoms + max(0, -end_equity) + negative_end
    attacker_accounts = [account for a in agents if isinstance(a, Adversary) for account in a.accounts]
    attacker_deposits = sum(m.ledger(a).deposits for a in attacker_accounts)
    attacker_withdrawn = sum(m.ledger(a).withdrawn for a in attacker_accounts)
    attacker_realized = sum(m.ledger(a).realized for a in attacker_accounts)
    makers = [a for a in agents if isinstance(a, MarketMaker)]
    fund_cash_atoms = fund_position_pnl = fund_position_notional = 0
    fund = engine.accounts.get(INSURANCE_ACCOUNT)
    if fund is not None:
        fund_cash_atoms = fund_cash(engine) + fund.balance(engine.asset)
        for market, position in fund.positions.items():
            if position.qty_lots:
                contract = engine.specs[market].contract_atoms
                mark = engine.marks[market]
                fund_position_pnl += formulas.unrealized_pnl_atoms(
                    position.qty_lots, position.cost_atoms, mark, contract
                )
                fund_position_notional += formulas.notional_atoms(mark, abs(position.qty_lots), contract)
    # what the positions the fund took over made or lost by the end: realised on them (closes, ADL of
    # the fund, funding) and unrealised on the final marks; a loss is positive
    fund_takeover_pnl = m.ledger(INSURANCE_ACCOUNT).realized + fund_position_pnl if m.takeovers else 0
    takeover_loss = max(0, -fund_takeover_pnl)
    liquidated = [
        {
            "account_id": int(account_id),
            "owner": m.owner.get(account_id, ""),
            "count": record.count,
            "notional": units(record.notional_atoms),
            "notional_atoms": record.notional_atoms,
            "cause": record.cause,
        }
        for account_id, record in sorted(m.liquidated_accounts.items(), key=lambda kv: int(kv[0]))
    ]
    causes = {cause: 0 for cause in CAUSES}
    for record in m.liquidated_accounts.values():
        causes[record.cause] += record.count
    counterparties = [
        {
            "account_id": int(account_id),
            "owner": m.owner.get(account_id, "insurance_fund" if account_id == INSURANCE_ACCOUNT else ""),
            "legs": legs,
            "notional": units(notional),
            "notional_atoms": notional,
        }
        for account_id, (legs, notional) in sorted(
            m.adl_counterparties.items(), key=lambda kv: (-kv[1][1], int(kv[0]))
        )
    ]
    summary: dict[str, Any] = {
        "scenario": scenario.name,
        "seed": seed,
        "draws": dict(sorted(m.draws.items())),
        "state_hash": state_hash(engine),
        "commands": commands,
        "events": events,
        "sim_seconds": sim_seconds,
        "wall_seconds": round(wall_seconds, 3),
        "commands_per_second": round(commands / wall_seconds, 1) if wall_seconds > 0 else 0.0,
        "settlement_asset": str(engine.asset),
        "accounts": len(engine.accounts) - (1 if INSURANCE_ACCOUNT in engine.accounts else 0),
        "agents": len(agents),
        "trades": m.trades,
        "volume": units(m.volume_atoms),
        "volume_atoms": m.volume_atoms,
        "rejections": dict(sorted(m.rejections.items())),
        "liquidations": m.liquidations,
        "liquidation_records": m.liquidation_records,
        "liquidated_accounts": liquidated,
        "liquidations_by_cause": causes,
        "liquidation_orders": m.liquidation_orders,
        "liquidation_fills": m.liquidation_fills,
        "liquidation_fills_worse_than_bankruptcy": m.liquidation_fills_worse,
        "liquidated_notional": units(m.liquidated_notional_atoms),
        "liquidated_notional_atoms": m.liquidated_notional_atoms,
        "insurance_fund_start": units(m.fund_start),
        "insurance_fund_min": units(m.fund_min),
        "insurance_fund_end": units(end_equity),
        "insurance_fund_start_atoms": m.fund_start,
        "insurance_fund_min_atoms": m.fund_min,
        "insurance_fund_end_atoms": end_equity,
        "insurance_fund_cash": units(fund_cash_atoms),
        "insurance_fund_cash_atoms": fund_cash_atoms,
        "insurance_fund_position_value": units(fund_position_pnl),
        "insurance_fund_position_value_atoms": fund_position_pnl,
        "insurance_fund_position_notional": units(fund_position_notional),
        "insurance_fund_cash_min": units(m.fund_cash_min),
        "insurance_fund_cash_min_atoms": m.fund_cash_min,
        "insurance_fund_max_position_notional": units(m.fund_position_notional_max),
        "insurance_takeover_notional": units(m.takeover_notional_atoms),
        "insurance_unwind_fills": m.unwind_fills,
        "insurance_unwound_notional": units(m.unwound_notional_atoms),
        "insurance_takeovers": m.takeovers,
        "insurance_takeover_loss": units(takeover_loss),
        "insurance_takeover_loss_atoms": takeover_loss,
        "insurance_takeover_loss_on_mark": units(m.takeover_loss_atoms),
        "deficit_covered": units(m.deficit_covered_atoms),
        "collateral_conversions": m.conversions,
        "collateral_conversion_proceeds": units(m.conversion_proceeds_atoms),
        "adl_events": m.adl_legs,
        "adl_notional": units(m.adl_notional_atoms),
        "adl_notional_atoms": m.adl_notional_atoms,
        "adl_counterparties": counterparties,
        "adl_accounts": len(counterparties),
        "adl_shortfall": units(m.adl_shortfall_atoms),
        "adl_shortfall_atoms": m.adl_shortfall_atoms,
        "adl_borne_atoms": m.adl_borne_atoms,
        "bad_debt": units(bad_debt),
        "bad_debt_atoms": bad_debt,
        "max_mark_index_gap_bps": round(m.max_gap_bps, 4),
        "max_index_fair_gap_bps": round(m.max_fair_gap_bps, 4),
        "funding_paid": units(m.funding_paid_atoms),
        "funding_paid_atoms": m.funding_paid_atoms,
        "funding_settlements": m.funding_settlements,
        "max_funding_rate": m.max_funding_rate_e8 / 1e8,
        "faulty_quotes_sent": faulty_quotes_sent,
        "faulty_quotes_used": m.faulty_quotes_used,
        "liquidations_from_faulty_sources": m.liquidations_from_faulty,
        "accounts_below_zero": m.accounts_below_zero,
        "min_wallet": units(m.min_wallet_atoms),
        "withdrawable_audits": m.withdrawable_audits,
        "withdrawable_excess_max_atoms": m.withdrawable_excess_max_atoms,
        "withdrawn_excess_max_atoms": m.withdrawn_excess_max_atoms,
        "attacker_deposits": units(attacker_deposits),
        "attacker_withdrawn": units(attacker_withdrawn),
        "attacker_realized_pnl": units(attacker_realized),
        "attacker_unrealized_pnl_max": units(m.attacker_upnl_max),
        "attacker_withdrawals_refused": m.attacker_refused,
        "maker_withdrawals": sum(maker.withdrawals for maker in makers),
        "invariant_checks": m.invariant_checks,
        "invariant_violations": m.invariant_violations,
        "invariant_messages": list(m.invariant_messages),
        "markets": m.per_market,
    }
    summary["incident"] = incident(scenario, engine, m.draws)
    summary["assertions"] = evaluate(scenario.assertions, summary)
    return summary


def scenario_notes(path: Path | None) -> str:
    """The comment block at the top of a scenario file (what it models and expects), as plain text."""
    if path is None:
        return ""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return ""
    notes = []
    for line in lines:
        if not line.startswith("#"):
            break
        notes.append(line.removeprefix("#").removeprefix(" "))
    return "\n".join(notes).strip()


def incident(scenario: Scenario, engine: Engine, draws: Mapping[str, float] | None = None) -> dict[str, Any]:
    """What the report draws the run's incident from: the scenario's words, its faults, its events, caps.

    ``fault_windows`` are the sources' stale and outlier faults; ``scripted_events`` the scenario's
    ``[[events]]`` (a depth factor drawn from a range is shown as drawn); ``funding_caps`` each market's funding cap
    and floor per interval (fractions), so a chart can show how close funding came.
    """
    windows = [
        {
            "market": str(row["market"]),
            "source": str(row["name"]),
            "kind": str(fault.get("kind", "")),
            "start_s": float(fault.get("start_s", 0)),
            "end_s": float(fault.get("end_s", 0)),
            "factor": float(fault.get("factor", 1)),
        }
        for row in scenario.sources
        for fault in row.get("faults", [])
    ]
    drawn = draws or {}
    events = []
    for number, event in enumerate(scenario.events):
        params = dict(event.params)
        if f"events.{number}.factor" in drawn:
            low, high = params.pop("factor_range")
            params["factor"] = f"{drawn[f'events.{number}.factor']:.4g} (drawn from {low}-{high})"
        detail = ", ".join(f"{k}={v}" for k, v in sorted(params.items()))
        events.append({"at_s": event.at_s, "action": event.action, "detail": detail})
    caps = {
        str(market): {
            "cap": spec.risk.funding_cap_e8 / RATE_SCALE,
            "floor": spec.risk.funding_floor_e8 / RATE_SCALE,
        }
        for market, spec in sorted(engine.specs.items())
    }
    return {
        "description": scenario.description,
        "notes": scenario_notes(scenario.path),
        "fault_windows": windows,
        "scripted_events": events,
        "funding_caps": caps,
    }


__all__ = ["incident", "summarise"]
