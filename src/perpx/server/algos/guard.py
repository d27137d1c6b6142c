"""The agent policy on a whole parent order: an agent's algo is checked once, for all its children.

An agent key (:mod:`perpx.agents`) may start an algo only with the ``algo`` scope, on a symbol its
policy allows, while it is not killed; and the *whole* parent must fit its notional and position
limits, as if it were one order of the parent's full quantity (priced at ``limitPrice`` when given,
else at the worse of the mark and a walk of the book). The open notional it is checked against
includes the unexecuted remainder of the account's other running parents, so two parents cannot
together pass ``maxOpenNotional`` when each alone would fit. Children are then sent by the venue
itself and are not checked one by one; a kill switch cancels the agent's running parents on the
algo driver's next turn (:mod:`.service`).

Refusals use the agent codes (``-9301`` limit, ``-9302`` killed, ``-9304`` scope, ``-9305`` symbol)
and are written to the agent's audit log, as every agent decision is.
"""

from __future__ import annotations

import asyncio

from perpx.agents.guard import (
    DAY_MS,
    KILLED,
    SCOPE_REFUSED,
    SYMBOL_REFUSED,
    OrderIntent,
    agent_guard,
    refused,
)
from perpx.engine.config import MarketSpec
from perpx.engine.formulas import notional_atoms
from perpx.engine.values import AccountId
from perpx.server.algos.service import AlgoService
from perpx.server.context import ServerContext
from perpx.server.errors import ApiError


async def admit_parent(
    ctx: ServerContext, service: AlgoService, account_id: AccountId, spec: MarketSpec, intent: OrderIntent
) -> asyncio.Lock | None:
    """Check the parent ``intent`` (its full quantity) against the account's agent, if it has one.

    Returns the account's admission lock, held, for the caller to release once the parent is
    registered (so a second parent is checked against the first); ``None`` for a non-agent account.

    Raises
    ------
    ApiError
        400 with the agent codes (module docstring); the refusal is audited.
    """
    guard = agent_guard(ctx)
    agent = guard.agent_of(account_id)
    if agent is None:
        return None
    request = {
        "symbol": intent.symbol,
        "side": intent.side.name,
        "quantity": str(intent.qty_lots * spec.lot_size),
        "limitPrice": None if intent.price_ticks is None else str(intent.price_ticks * spec.tick_size),
        "reduceOnly": intent.reduce_only,
    }
    lock = service.admission_locks.setdefault(int(account_id), asyncio.Lock())
    await lock.acquire()
    try:
        if guard.is_killed(agent):
            raise refused(
                KILLED, f"Agent {agent.agent_id} is killed: it may read and cancel, not start algos."
            )
        if not agent.policy.allows("algo"):
            raise refused(SCOPE_REFUSED, f"Agent {agent.agent_id} lacks the 'algo' scope.")
        if not agent.policy.allows_symbol(intent.symbol):
            raise refused(
                SYMBOL_REFUSED,
                f"Agent {agent.agent_id} may not trade {intent.symbol}; allowed: {', '.join(agent.policy.symbols)}.",
            )
        exposure = await guard.exposure(account_id, spec, intent)  # running parents included
        estimate = guard._estimate(spec, intent, exposure)
        now_ms = guard.now_ms()
        guard._check_limits(agent, spec, intent, estimate, now_ms)
        guard.store.add_daily_notional(agent.agent_id, now_ms // DAY_MS, estimate.notional_atoms)
    except ApiError as exc:
        lock.release()
        guard.record(agent, "start_algo", "refused", request=request, code=exc.code, reason=exc.msg)
        raise
    except BaseException:
        lock.release()
        raise
    guard.record(agent, "start_algo", "allowed", request=request, notionalAtoms=estimate.notional_atoms)
    return lock


def running_notional_atoms(ctx: ServerContext, service: AlgoService, account_id: AccountId) -> int:
    """The unexecuted remainder of the account's running parents, at their arrival prices (atoms).

    Resting children are already in the engine's open notional; this counts what is still to be
    sent, so it is the remainder minus the working quantity, never below zero.
    """
    total = 0
    for algo in service.of_account(int(account_id)):
        runner = algo.runner
        if runner is None or algo.ended is not None:
            continue
        rows = [row for row in service.child_rows(algo) if row is not None]
        committed = sum(row.record.executed_lots for row in rows) + sum(
            row.record.orig_qty_lots - row.record.executed_lots for row in rows if row.record.is_open
        )
        left = max(0, runner.bound.qty_lots - committed)
        spec = ctx.specs[algo.created.parent.market]
        total += notional_atoms(runner.bound.arrival_ticks, left, spec.contract_atoms)
    return total
