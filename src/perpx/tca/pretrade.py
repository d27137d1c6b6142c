"""The pre-trade estimate beside the realised cost, for one parent order after it finished.

Every report that analyses a finished order (``perpx tca --data``, an execution backtest's
``backtest.json``, ``perpx tca calibrate``) puts the same block next to it, ``pre_trade``:

* ``predicted_cost_bps`` and ``predicted_std_bps``: :func:`perpx.tca.estimate.estimate` for the
  order's ``Q`` over its duration, from data stamped **before the order started** only;
* ``realized_cost_bps``: the arrival slippage without fees, ``s (p_bar - P_a) / P_a x 10^4``, the
  quantity the estimate predicts (half spread + impact + mean-zero timing), positive = cost;
* ``surprise_std = (realized - predicted) / std``: over many orders its mean is the bias in units
  of the estimate's own uncertainty, and its spread says whether that uncertainty is right (about
  68% of orders within one std if it is).

An order that filled nothing has no realised cost (``realized_cost_bps`` null); an estimate that
cannot be made (fewer than three one-minute candles before the order) is
``{"available": false, "why": ...}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, localcontext
from typing import Any

from perpx.execution.strategy import BoundParent
from perpx.execution.venue import Venue
from perpx.tca.estimate import PRIOR_IMPACT_Y, Calibration, Estimate, estimate
from perpx.tca.inputs import EXACT, Fill, InputError, Quote, Side
from perpx.tca.venue import Candle

NS_PER_MS = 1_000_000
DAY_NS = 86_400 * 1_000_000_000
MINUTE_S = 60


def realised_cost_bps(side: Side, arrival_price: Decimal, fills: Sequence[Fill]) -> float | None:
    """``s (p_bar - P_a) / P_a x 10^4`` over ``fills``, positive = cost; ``None`` without fills."""
    with localcontext(EXACT):
        filled = sum((f.qty for f in fills), Decimal(0))
        if filled == 0:
            return None
        p_bar = sum((f.qty * f.price for f in fills), Decimal(0)) / filled
        return float(side.sign * (p_bar - arrival_price) / arrival_price * 10_000)


def compare(predicted: Estimate, realised_bps: float | None) -> dict[str, Any]:
    """The ``pre_trade`` block: the estimate, its parts and calibration, and the realised cost."""
    calibration = predicted.calibration
    surprise = (
        round((realised_bps - predicted.expected_cost_bps) / predicted.std_bps, 4)
        if realised_bps is not None and predicted.std_bps > 0
        else None
    )
    return {
        "available": True,
        "duration_s": predicted.duration_s,
        "predicted_cost_bps": round(predicted.expected_cost_bps, 4),
        "predicted_std_bps": round(predicted.std_bps, 4),
        "half_spread_bps": round(predicted.half_spread_bps, 4),
        "impact_bps": round(predicted.impact_bps, 4),
        "sigma_daily": round(predicted.sigma_daily, 6),
        "expected_participation": None
        if predicted.participation is None
        else round(predicted.participation, 4),
        "impact_y": round(calibration.y, 6),
        "impact_fit_n": calibration.n,
        "impact_fit_r2": None if calibration.r2 is None else round(calibration.r2, 4),
        "impact_y_source": calibration.source,
        "realized_cost_bps": None if realised_bps is None else round(realised_bps, 4),
        "realized_minus_predicted_bps": None
        if realised_bps is None
        else round(realised_bps - predicted.expected_cost_bps, 4),
        "surprise_std": surprise,
    }


def unavailable(why: str) -> dict[str, Any]:
    """The ``pre_trade`` block when no estimate could be made, and why."""
    return {"available": False, "why": why}


def venue_candles(venue: Venue, market: str, until_ns: int) -> list[Candle]:
    """The complete one-minute candles of the last day before ``until_ns``, as TCA candles."""
    filters = venue.filters(market)
    return [
        Candle(c.open_ns // NS_PER_MS, c.close_ticks * filters.tick_size, c.volume_lots * filters.lot_size)
        for c in venue.candles(market, MINUTE_S, until_ns - DAY_NS, until_ns)
        if c.close_ns <= until_ns
    ]


def parent_pre_trade(
    venue: Venue,
    bound: BoundParent,
    quotes: Sequence[Quote],
    fills: Sequence[Fill],
    end_ns: int,
    calibration: Calibration | None = None,
) -> dict[str, Any]:
    """The ``pre_trade`` block of a parent worked on ``venue`` (the execution backtest's report).

    The duration is the parent's window (``end_ns - start_ns`` when it had none); the rest is
    :func:`pre_trade_on_venue`.
    """
    filters = bound.filters
    window_ns = (bound.end_ns if bound.end_ns is not None else end_ns) - bound.start_ns
    return pre_trade_on_venue(
        venue,
        bound.parent.market,
        Side.BUY if bound.parent.side.sign > 0 else Side.SELL,
        bound.qty_lots * filters.lot_size,
        bound.start_ns,
        window_ns / 1e9,
        bound.arrival_ticks * filters.tick_size,
        quotes,
        fills,
        calibration,
    )


def pre_trade_on_venue(
    venue: Venue,
    market: str,
    side: Side,
    qty: Decimal,
    start_ns: int,
    duration_s: float,
    arrival_price: Decimal,
    quotes: Sequence[Quote],
    fills: Sequence[Fill],
    calibration: Calibration | None = None,
) -> dict[str, Any]:
    """The ``pre_trade`` block of any order worked on ``venue`` from ``start_ns`` (a flow's node too).

    The estimate reads only what was known when the order started: the venue's one-minute candles
    before ``start_ns`` (volatility, volume) and the ``quotes`` at or before it (spread). ``Y`` is
    ``calibration`` or, without one, :data:`~perpx.tca.estimate.PRIOR_IMPACT_Y`: an in-process
    venue gives no per-order taker history to fit it on (``perpx tca calibrate`` measures the
    prior's bias over many orders).
    """
    start_ms = start_ns // NS_PER_MS
    given = calibration or Calibration(
        PRIOR_IMPACT_Y, 0, None, "the prior of perpx.tca.estimate (nothing fitted in a backtest)"
    )
    try:
        predicted = estimate(
            side,
            qty,
            max(duration_s, 1.0),
            venue_candles(venue, market, start_ns),
            [q for q in quotes if q.time_ms <= start_ms],
            [],
            given,
        )
    except InputError as exc:
        return unavailable(str(exc))
    return compare(predicted, realised_cost_bps(side, arrival_price, fills))
