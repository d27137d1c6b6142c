"""Signed trading and account routes: Binance USDS-M ``/fapi`` paths, fields and codes.

Every handler authenticates with :func:`perpx.server.rest.signed`, parses the
wire's decimals exactly (:mod:`perpx.server.wire`), and then either submits
one engine command through the sequencer (and answers from its events and the
read model, which the sequencer updated before answering: read-your-writes) or
runs one query in the sequencer's pipeline. Handlers never touch the engine
directly.

What perpx does not support, and says so
----------------------------------------
* Hedge mode: ``positionSide`` LONG/SHORT is ``-4061``; ``dualSidePosition=true``
  is refused. Every position is one-way (``BOTH``).
* ``priceMatch`` other than NONE, ``timeInForce=GTD`` and ``goodTillDate``: ``-1116`` / ``-1102``
  with a message saying so.
* Multi-Assets Mode: ``multiAssetsMargin`` switches it (``engine/collateral.py``; mechanics.md 30).

Client ids: an order placed without ``newClientOrderId`` shows ``perpx-<orderId>``;
a conditional order without ``clientAlgoId`` shows ``perpx-algo-<algoId>``. Both
prefixes and ``autoclose-`` (liquidation orders) are reserved (``-4015``).
"""

from __future__ import annotations

from fastapi import APIRouter

from perpx.server.context import ServerContext
from perpx.server.trading import (
    account,
    algo_orders,
    countdown,
    dry_run,
    fund_policy,
    orders,
    settings,
    status,
    tca,
)

router = APIRouter()
for _module in (orders, dry_run, algo_orders, account, settings, status, countdown, tca, fund_policy):
    router.include_router(_module.router)


async def on_start(ctx: ServerContext) -> None:
    await countdown.on_start(ctx)
