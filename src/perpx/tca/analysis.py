"""One order's post-trade TCA: every metric of docs/tca.md from an order, its fills, trades and quotes.

:func:`analyse` is pure (no I/O): the command line and the venue reader build its inputs, the
report writer turns its result into files. Decimal arithmetic runs in a 60-digit context, so sums
of products of prices and quantities are exact and the Perold identity is checked with ``==``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from typing import Any

from perpx.tca.benchmarks import IntervalVwap, QuoteBook, interval_vwap
from perpx.tca.inputs import EXACT, Fill, ParentOrder, Quote, Trade
from perpx.tca.markouts import HORIZONS_MS, MarkoutPoint, fill_markout, markout_curve, reversion
from perpx.tca.shortfall import BPS, Shortfall, decompose
from perpx.tca.spread import SPREAD_HORIZONS_MS, FillSpread, fill_spread, weighted

REVERSION_HORIZONS_MS = (1_000, 5_000, 60_000, 300_000)

IS_NAMES = {
    "implementation_shortfall": "is_total",
    "delay": "is_delay",
    "execution": "is_execution",
    "spread_impact": "is_spread_impact",
    "timing": "is_timing",
    "opportunity": "is_opportunity",
    "fees": "is_fees",
}
"""The Perold terms (:meth:`Shortfall.terms`) by their fixed tca.json names."""


@dataclass(frozen=True, slots=True)
class Sources:
    """Where the benchmarks came from, stated in every report (docs/tca.md, "benchmarks")."""

    mid: str = "quotes"
    end_price: str = "given (--end-price)"
    trades: str = "trades file"


@dataclass(frozen=True, slots=True)
class Analysis:
    """Everything :func:`analyse` computed; :meth:`summary` is tca.json."""

    order: ParentOrder
    fills: list[Fill]
    trades: list[Trade]
    book: QuoteBook
    sources: Sources
    start_ms: int
    end_ms: int
    end_price: Decimal | None
    filled: Decimal
    avg_price: Decimal | None
    shortfall: Shortfall
    vwap: IntervalVwap | None
    mids: list[Decimal | None]
    spreads: list[FillSpread]
    markouts: list[MarkoutPoint]
    reversions: dict[int, Decimal | None] = field(default_factory=dict)

    @property
    def sign(self) -> int:
        return self.order.side.sign

    def summary(self) -> dict[str, Any]:
        """tca.json: money in exact decimal strings, bps and ratios rounded to 4 decimals."""
        with localcontext(EXACT):
            return self._summary()

    def _summary(self) -> dict[str, Any]:
        o, sf, s = self.order, self.shortfall, self.sign
        fees = sf.fees
        notional = sum((f.qty * f.price for f in self.fills), Decimal(0))
        maker_known = [f for f in self.fills if f.maker is not None]
        maker_qty = sum((f.qty for f in maker_known if f.maker), Decimal(0))
        p_bar = self.avg_price
        arrival = None if p_bar is None else s * (p_bar - o.arrival_price) / o.arrival_price * BPS
        with_fees = None if arrival is None else arrival + fees / (self.filled * o.arrival_price) * BPS
        vwap = self.vwap

        def vs(benchmark: Decimal | None) -> str | None:
            if p_bar is None or benchmark is None:
                return None
            return _rounded(s * (p_bar - benchmark) / benchmark * BPS)

        def spread_mean(values: Sequence[Decimal | None]) -> str | None:
            return _rounded(weighted(self.fills, values))

        split_known = sf.spread_impact is not None and sf.timing is not None
        return {
            # the fixed fields of issue 15, in docs/tca.md's order
            "filled_qty": _money(self.filled),
            "fill_rate": _rounded(self.filled / o.qty),
            "avg_price": _price(p_bar),
            "arrival_slippage_bps": _rounded(arrival),
            "arrival_slippage_with_fees_bps": _rounded(with_fees),
            **{IS_NAMES[name]: _money(value) for name, value in sf.terms().items()},
            "is_bps": _rounded(sf.bps(sf.shortfall)),
            "interval_vwap": _price(None if vwap is None else vwap.vwap),
            "interval_vwap_ex_own": _price(None if vwap is None else vwap.vwap_ex_own),
            "vwap_slippage_bps": vs(None if vwap is None else vwap.vwap),
            "vwap_ex_own_slippage_bps": vs(None if vwap is None else vwap.vwap_ex_own),
            "participation": _rounded(None if vwap is None else vwap.participation),
            "maker_share": _rounded(maker_qty / self.filled)
            if self.filled and len(maker_known) == len(self.fills)
            else None,
            "fee_bps": _rounded(fees / notional * BPS) if notional else None,
            "markout_bps": {_horizon(p.horizon_ms): _rounded(p.all_bps) for p in self.markouts},
            "spread_capture": spread_mean([x.capture for x in self.spreads]),
            "effective_spread_bps": spread_mean([x.effective_bps for x in self.spreads]),
            # extras: the order, the decomposition in bps, the identity check, benchmarks' sources
            "side": o.side.value,
            "qty": _money(o.qty),
            "decision_price": _money(o.decision_price),
            "arrival_price": _money(o.arrival_price),
            "end_price": _price(self.end_price),
            "end_price_source": self.sources.end_price,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "fill_count": len(self.fills),
            "notional": _money(notional),
            "market_qty": _money(None if vwap is None else vwap.market_qty),
            **{
                f"{IS_NAMES[name]}_bps": _rounded(sf.bps(value))
                for name, value in sf.terms().items()
                if name != "implementation_shortfall"
            },
            "identity_check": {
                "is_delay + is_execution + is_opportunity + is_fees == is_total": sf.identity_holds,
                "is_spread_impact + is_timing == is_execution": (
                    sf.spread_impact + sf.timing == sf.execution
                    if sf.spread_impact is not None and sf.timing is not None
                    else None
                ),
            },
            "markout_bps_maker": {_horizon(p.horizon_ms): _rounded(p.maker_bps) for p in self.markouts},
            "markout_bps_taker": {_horizon(p.horizon_ms): _rounded(p.taker_bps) for p in self.markouts},
            "markout_qty": {_horizon(p.horizon_ms): _money(p.qty) for p in self.markouts},
            "realized_spread_bps": {
                _horizon(h): spread_mean([x.realized_bps[h] for x in self.spreads])
                for h in SPREAD_HORIZONS_MS
            },
            "price_impact_bps": {
                _horizon(h): spread_mean([x.impact_bps[h] for x in self.spreads]) for h in SPREAD_HORIZONS_MS
            },
            "reversion_bps": {_horizon(h): _rounded(v) for h, v in self.reversions.items()},
            "mid_source": self.sources.mid,
            "trades_source": self.sources.trades,
            "benchmarks": {
                "arrival_slippage_bps": "arrival price P_a (--arrival-price)",
                "is_total": "decision price P_d: paper portfolio Q x P_d; is_bps in bps of Q x P_d",
                "is_opportunity": "the unfilled Q - F valued at P_c against P_d (not P_a)",
                "is_spread_impact": "the mid at each fill"
                if split_known
                else "null: no mid at every fill (no quotes)",
                "interval_vwap": "market trades with start_ms <= ts_ms <= end_ms, own fills included",
                "interval_vwap_ex_own": "the same trades without the order's own (own = 1)",
                "participation": "F inside [start_ms, end_ms] / market volume there, own included",
                "markout_bps": "the fill price, mid at ts_ms + h",
                "spread_capture": "the quote in force at each fill",
                "effective_spread_bps": "the mid in force at each fill",
            },
            "conventions": (
                "s=+1 buy, -1 sell; costs positive = the trader lost money, also for a sell"
                " (quote currency, bps of the benchmark named); markout_bps, spread_capture and"
                " reversion_bps positive = favourable; money exact decimal strings, bps and ratios"
                " to 4 decimals"
            ),
        }

    def fill_rows(self) -> list[dict[str, Any]]:
        """One row per fill for fills.parquet (floats: the exact values are in tca.json)."""
        with localcontext(EXACT):
            rows = []
            for fill, mid, spread in zip(self.fills, self.mids, self.spreads, strict=True):
                row: dict[str, Any] = {
                    "ts_ms": fill.time_ms,
                    "price": float(fill.price),
                    "qty": float(fill.qty),
                    "fee": float(fill.fee),
                    "liquidity": None if fill.maker is None else ("MAKER" if fill.maker else "TAKER"),
                    "trade_id": fill.trade_id,
                    "mid": _float(mid),
                    "arrival_slippage_bps": float(
                        self.sign * (fill.price - self.order.arrival_price) / self.order.arrival_price * BPS
                    ),
                    "is_delay": float(
                        self.sign * fill.qty * (self.order.arrival_price - self.order.decision_price)
                    ),
                    "is_execution": float(self.sign * fill.qty * (fill.price - self.order.arrival_price)),
                    "is_spread_impact": _float(
                        None if mid is None else self.sign * fill.qty * (fill.price - mid)
                    ),
                    "is_timing": _float(
                        None if mid is None else self.sign * fill.qty * (mid - self.order.arrival_price)
                    ),
                    "spread_capture": _float(spread.capture),
                    "effective_spread_bps": _float(spread.effective_bps),
                }
                for h in SPREAD_HORIZONS_MS:
                    row[f"realized_spread_{_horizon(h)}_bps"] = _float(spread.realized_bps[h])
                    row[f"price_impact_{_horizon(h)}_bps"] = _float(spread.impact_bps[h])
                for h in HORIZONS_MS:
                    row[f"markout_{_horizon(h)}_bps"] = _float(fill_markout(self.sign, fill, self.book, h))
                rows.append(row)
            return rows


def analyse(
    order: ParentOrder,
    fills: Sequence[Fill],
    trades: Sequence[Trade] = (),
    quotes: Sequence[Quote] = (),
    sources: Sources | None = None,
) -> Analysis:
    """The post-trade TCA of ``order``.

    ``P_c`` is ``order.end_price`` when given, else the mid at ``end_ms``, else the last trade at
    or before ``end_ms``; it is needed only when the order is not fully filled.

    Raises
    ------
    ValueError
        If the order is partly filled and no ``P_c`` can be found, or the tape is not whole.
    """
    with localcontext(EXACT):
        sources = sources or Sources(
            mid="quotes file" if quotes else "none (no quotes: mid-based metrics are null)",
            trades="trades file" if trades else "none",
        )
        fills = sorted(fills, key=lambda f: f.time_ms)
        book = QuoteBook(quotes)
        start_ms = order.start_ms if order.start_ms is not None else (fills[0].time_ms if fills else 0)
        end_ms = order.end_ms if order.end_ms is not None else (fills[-1].time_ms if fills else start_ms)
        filled = sum((f.qty for f in fills), Decimal(0))
        end_price, end_source = _end_price(order, filled, book, trades, end_ms)
        if order.end_price is None:
            sources = Sources(sources.mid, end_source, sources.trades)
        mids = [book.mid_at(f.time_ms) for f in fills]
        return Analysis(
            order=order,
            fills=list(fills),
            trades=list(trades),
            book=book,
            sources=sources,
            start_ms=start_ms,
            end_ms=end_ms,
            end_price=end_price,
            filled=filled,
            avg_price=sum((f.qty * f.price for f in fills), Decimal(0)) / filled if filled else None,
            shortfall=decompose(order, fills, end_price, mids),
            vwap=interval_vwap(trades, fills, start_ms, end_ms) if trades else None,
            mids=mids,
            spreads=[fill_spread(order.side.sign, f, book) for f in fills],
            markouts=markout_curve(order, fills, book),
            reversions={h: reversion(order, book, end_ms, h) for h in REVERSION_HORIZONS_MS},
        )


def _end_price(
    order: ParentOrder, filled: Decimal, book: QuoteBook, trades: Sequence[Trade], end_ms: int
) -> tuple[Decimal | None, str]:
    if order.end_price is not None:
        return order.end_price, "given (--end-price)"
    mid = book.mid_at(end_ms)
    if mid is not None:
        return mid, "mid at end_ms"
    before = [t for t in trades if t.time_ms <= end_ms]
    if before:
        return before[-1].price, "last trade at or before end_ms"
    if filled >= order.qty:
        return None, "not needed (fully filled)"
    raise ValueError(
        f"{order.qty - filled} of {order.qty} is unfilled: give --end-price (P_c) or quotes/trades reaching end_ms"
    )


def _horizon(ms: int) -> str:
    """A horizon as tca.json keys it: whole seconds ("1s", "60s", "300s")."""
    return f"{ms // 1_000}s" if ms % 1_000 == 0 else f"{ms}ms"


QUANTUM = Decimal("0.0001")


def _rounded(value: Decimal | None) -> str | None:
    """bps and ratios to four decimals; a zero prints "0.0000" whatever its sign (s x 0 is -0 for a sell)."""
    if value is None:
        return None
    rounded = value.quantize(QUANTUM)
    return str(rounded.copy_abs() if rounded == 0 else rounded)


PRICE_QUANTUM = Decimal("1e-12")


def _price(value: Decimal | None) -> str | None:
    """A derived price (a VWAP, an average, a mid): a quotient, shown to 12 decimals."""
    return None if value is None else _money(value.quantize(PRICE_QUANTUM))


def _money(value: Decimal | None) -> str | None:
    """Plain decimal notation without trailing zeros: ``Decimal("20.50")`` is ``"20.5"``."""
    if value is None:
        return None
    text = format(value.copy_abs() if value == 0 else value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)
