"""The time series of a run: one row per market and one venue row at every sample.

:class:`SeriesRecorder` reads the venue at each of the simulation's samples and appends a row to
every column of :data:`~perpx.sim.result.MARKET_SERIES` (plus ``fair``, the price processes' fair
price, and ``quote:<source>``, the last price each of the market's index sources delivered, faulty
or not) for each market, and of :data:`~perpx.sim.result.VENUE_SERIES` (plus
``insurance_fund_position``, the notional of the positions the fund holds on the marks). Every
column of a market has the same length as ``t_s``; a price not set yet is ``nan``.

Book depth is the resting quantity within :data:`DEPTH_BAND_E8` of the mark on each side, in base
units (``0`` before the market has a mark). Prices, quantities and rates are floats for plotting;
the exact figures are in the journal.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from perpx.engine.engine import Engine
from perpx.engine.values import MarketId

DEPTH_BAND_E8 = 2_000_000
"""Book depth is counted within 2% of the mark (a fraction, times 1e8)."""

SERIES_COLUMNS = (
    "t_s",
    "index",
    "mark",
    "last",
    "open_interest",
    "funding_rate",
    "bid_depth",
    "ask_depth",
    "fair",
)


class SeriesRecorder:
    """Each market's series and the venue series of one run, one row per :meth:`record`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.series: dict[str, dict[str, list[float]]] = {
            str(m): {column: [] for column in SERIES_COLUMNS} for m in engine.specs
        }
        self.sources: dict[str, list[str]] = {
            str(m): sorted(spec.index.weights) if spec.index is not None else []
            for m, spec in engine.specs.items()
        }
        for market, names in self.sources.items():
            for name in names:
                self.series[market][f"quote:{name}"] = []
        self.venue_series: dict[str, list[float]] = {
            "t_s": [],
            "insurance_fund": [],
            "insurance_fund_position": [],
        }

    def record(
        self,
        t_s: float,
        fair_prices: Mapping[str, float],
        insurance_fund: float,
        quotes: Mapping[tuple[str, str], float] | None = None,
        fund_position: float = 0.0,
    ) -> None:
        """Append one row per market at ``t_s`` and one venue row (money in settlement units).

        ``quotes`` maps ``(market, source)`` to the last price the source delivered.
        """
        engine = self.engine
        delivered = quotes or {}
        for market, names in self.sources.items():
            for name in names:
                self.series[market][f"quote:{name}"].append(delivered.get((market, name), math.nan))
        for market, spec in engine.specs.items():
            row = self.series[market]
            tick = float(spec.tick_size)
            lot = float(spec.lot_size)
            index = engine.indexes.get(market)
            mark = engine.marks.get(market)
            last = engine.last_trade_ticks.get(market)
            rate = engine.pricing.predicted_funding_rate_e8(market)
            row["t_s"].append(t_s)
            row["index"].append(math.nan if index is None else index * tick)
            row["mark"].append(math.nan if mark is None else mark * tick)
            row["last"].append(math.nan if last is None else last * tick)
            row["open_interest"].append(engine.open_interest_lots[market] * lot)
            row["funding_rate"].append(math.nan if rate is None else rate / 1e8)
            bid, ask = self.depth_lots(market, mark)
            row["bid_depth"].append(bid * lot)
            row["ask_depth"].append(ask * lot)
            row["fair"].append(fair_prices.get(market, math.nan))
        self.venue_series["t_s"].append(t_s)
        self.venue_series["insurance_fund"].append(insurance_fund)
        self.venue_series["insurance_fund_position"].append(fund_position)

    def depth_lots(self, market: MarketId, mark: int | None) -> tuple[int, int]:
        """Resting lots within the depth band of ``mark``: ``(bids, asks)``; ``(0, 0)`` without a mark."""
        if mark is None:
            return 0, 0
        book = self.engine.books[market]
        low = mark - mark * DEPTH_BAND_E8 // 10**8
        high = mark + mark * DEPTH_BAND_E8 // 10**8
        out = []
        for side in (book.bids, book.asks):
            total = 0
            for key in reversed(side.keys):
                price = key * side.sign
                if not low <= price <= high:
                    break
                total += sum(o.leaves_lots for o in side.levels[price].values())
            out.append(total)
        return out[0], out[1]


__all__ = ["DEPTH_BAND_E8", "SERIES_COLUMNS", "SeriesRecorder"]
