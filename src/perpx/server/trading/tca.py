"""``GET /perpx/v1/tca``: transaction cost analysis of the caller's own fills (a perpx extension).

The same analysis as ``perpx tca --data DIR --account ID`` (:mod:`perpx.tca`), answered as tca.json's
content for the signed caller's account. Parameters (all optional): ``symbol`` (needed when the
account traded several), ``side`` (BUY or SELL, needed when it did both), ``startTime`` and
``endTime`` (ms, the fills' window), ``quantity`` (the parent order's size; default what filled),
``decisionPrice`` and ``arrivalPrice`` (defaults: the inferred mid at the first fill). ``algoId``
(the server's algoId or the clientAlgoId) analyses one of the caller's execution algos instead:
its children's fills, with ``Q``, ``P_a`` and the life from its child log (``perpx tca --algo``).
Costs are positive when the trader lost money; the conventions travel in the answer
(``conventions``). The read models are read read-only, off the event loop, so the analysis never
delays order entry.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request

from perpx.server import wire
from perpx.server.errors import ApiError
from perpx.server.trading.params import auth
from perpx.tca.analysis import Sources, analyse
from perpx.tca.command import account_order, algo_order
from perpx.tca.inputs import InputError
from perpx.tca.venue import TAPE_MID

router = APIRouter(tags=["perpx extensions (signed)"])


def _analysis(
    data: Path, account: int, values: dict[str, str], start_ms: int | None, end_ms: int | None
) -> dict[str, Any]:
    side = values.get("side")
    algo = values.get("algoId")
    if algo:
        order, own, trades, quotes, extra = algo_order(
            data,
            account,
            algo,
            None,
            values.get("quantity"),
            values.get("decisionPrice"),
            values.get("arrivalPrice"),
            None,
            None,
            None,
        )
    else:
        order, own, trades, quotes, extra = account_order(
            data,
            account,
            values.get("symbol") or None,
            start_ms,
            end_ms,
            None if side is None else side.lower(),
            values.get("quantity"),
            values.get("decisionPrice"),
            values.get("arrivalPrice"),
            None,
            None,
            None,
        )
    summary = analyse(order, own, trades, quotes, Sources(mid=TAPE_MID, trades="venue tape")).summary()
    extra["source"] = {k: v for k, v in extra["source"].items() if k != "data"}
    if "algo" in extra:
        extra["algo"] = {k: v for k, v in extra["algo"].items() if k != "child_log"}
    return {**summary, **{k: v for k, v in extra.items() if k not in summary}}


@router.get("/perpx/v1/tca")
async def transaction_costs(request: Request) -> dict[str, Any]:
    """TCA of the caller's fills in one market and one side within the window (read scope, weight 20)."""
    ctx, account_id, params = await auth(request, "read", 20)
    values = dict(params.values)
    if values.get("algoId") and any(values.get(k) for k in ("symbol", "side", "startTime", "endTime")):
        raise ApiError(
            400, -1102, "Parameter 'algoId' fixes the order: drop symbol, side, startTime and endTime."
        )
    if values.get("side") not in (None, "BUY", "SELL"):
        raise ApiError(400, -1102, "Parameter 'side' was malformed: use BUY or SELL.")
    start_ms = wire.time_param(values, "startTime")
    end_ms = wire.time_param(values, "endTime")
    try:
        return await asyncio.to_thread(_analysis, ctx.data_dir, int(account_id), values, start_ms, end_ms)
    except (InputError, ValueError) as exc:
        text = str(exc).replace("--symbol", "symbol").replace("--side", "side").replace("--qty", "quantity")
        raise ApiError(400, -1102, f"No analysis: {text}.") from None
