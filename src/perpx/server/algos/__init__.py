"""The server-side algo service: Binance's ``/sapi/v1/algo/futures`` API on parent orders the venue runs.

* :mod:`.routes`: the REST routes (Binance's TWAP and VP, cancel, open/historical/sub orders) and
  ``POST /perpx/v1/algo`` for every other perpx algorithm;
* :mod:`.service`: the sequencer driver that works each parent with the execution engine's
  :class:`~perpx.execution.runner.ParentRunner`, crash-safe (child logs and a registry under
  ``DATA/algos``);
* :mod:`.venue`: the running server as an execution :class:`~perpx.execution.venue.Venue`;
* :mod:`.guard`: the agent policy applied to a whole parent;
* :mod:`.wire`: Binance's algo and sub-order objects;
* :mod:`.flows` and :mod:`.flow_routes`: ``/perpx/v1/flow``, a strategy document's flow (OCO, OTO,
  bracket, if-then across markets) run by the venue, its algo nodes as parents of this service.

``on_start`` opens the service, resumes every open parent (in the sequencer's pipeline) and registers
it as a driver; ``on_stop`` stops its turns and closes its logs before the sequencer drains.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter

from perpx.agents.guard import agent_guard
from perpx.engine.values import NS_PER_MS
from perpx.server.algos import flow_routes
from perpx.server.algos.flows import Flow, FlowService, flow_service
from perpx.server.algos.flows import register as register_flows
from perpx.server.algos.flows import unregister as unregister_flows
from perpx.server.algos.guard import running_notional_atoms
from perpx.server.algos.routes import router as algo_router
from perpx.server.algos.service import Algo, AlgoService, algo_service, register, unregister
from perpx.server.algos.wire import algo_json
from perpx.server.context import ServerContext

__all__ = ["on_start", "on_stop", "router"]

log = logging.getLogger("perpx.algos")

UPDATE_EVENT = "PERPX_ALGO_UPDATE"
FLOW_UPDATE_EVENT = "PERPX_FLOW_UPDATE"

router = APIRouter()
router.include_router(algo_router)
router.include_router(flow_routes.router)


async def on_start(ctx: ServerContext) -> None:
    service = AlgoService.open(ctx)
    lines = await ctx.seq.query(lambda _engine: service.resume())
    for line in lines:
        log.info(line)
    service.on_change.append(lambda algo: _publish(ctx, service, algo))
    register(ctx, service)
    agent_guard(ctx).committed_elsewhere["algos"] = lambda account_id: running_notional_atoms(
        ctx, service, account_id
    )
    ctx.seq.add_driver(service)
    flows = FlowService.open(ctx, service)
    for line in await ctx.seq.query(lambda _engine: flows.resume()):
        log.info(line)
    flows.on_change.append(lambda flow: _publish_flow(ctx, flows, flow))
    register_flows(ctx, flows)
    ctx.seq.add_driver(flows)


async def on_stop(ctx: ServerContext) -> None:
    flows = flow_service(ctx)
    if flows is not None:
        unregister_flows(ctx)
        await asyncio.to_thread(flows.stop)
    service = algo_service(ctx)
    if service is None:
        return
    unregister(ctx)
    agent_guard(ctx).committed_elsewhere.pop("algos", None)
    await asyncio.to_thread(service.stop)


def _publish(ctx: ServerContext, service: AlgoService, algo: Algo) -> None:
    payload: dict[str, Any] = {
        "e": UPDATE_EVENT,
        "E": ctx.seq.engine.now_ns // NS_PER_MS,
        "a": algo_json(service, algo, ctx.specs[algo.created.parent.market], ctx.atom),
    }
    ctx.components.userstream.publish(algo.created.account_id, payload)


def _publish_flow(ctx: ServerContext, service: FlowService, flow: Flow) -> None:
    payload: dict[str, Any] = {
        "e": FLOW_UPDATE_EVENT,
        "E": ctx.seq.engine.now_ns // NS_PER_MS,
        "f": flow_routes.flow_json(service, flow),
    }
    ctx.components.userstream.publish(flow.account_id, payload)
