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

        return {
            "order": {
                "side": o.side.value,
                "qty": _money(o.qty),
                "decision_price": _money(o.decision_price),
                "arrival_price": _money(o.arrival_price),
                "end_price": _price(self.end_price),
                "end_price_source": self.sources.end_price,
                "start_ms": self.start_ms,
                "end_ms": self.end_ms,
            },
            "fills": {
                "count": len(self.fills),
                "filled_qty": _money(self.filled),
                "fill_rate": _rounded(self.filled / o.qty),
                "avg_price": _price(p_bar),
                "notional": _money(notional),
                "fees": _money(fees),
                "fee_bps": _rounded(fees / notional * BPS) if notional else None,
                "maker_share": _rounded(maker_qty / self.filled)
                if maker_known and len(maker_known) == len(self.fills)
                else None,
            },
            "arrival": {
                "benchmark": "arrival price P_a",
                "slippage_bps": _rounded(arrival),
                "slippage_with_fees_bps": _rounded(with_fees),
            },
            "shortfall": {
                "benchmark": "decision price P_d (paper portfolio Q x P_d)",
                "opportunity_priced_from": "P_d",
                "paper_notional": _money(sf.paper_notional),
                **{name: _money(value) for name, value in sf.terms().items()},
                **{f"{name}_bps": _rounded(sf.bps(value)) for name, value in sf.terms().items()},
                "identity_holds": sf.identity_holds,
            },
            "vwap": {
                "benchmark": "market VWAP over [start_ms, end_ms]",
                "trades_source": self.sources.trades,
                "vwap": _price(None if vwap is None else vwap.vwap),
                "vwap_ex_own": _price(None if vwap is None else vwap.vwap_ex_own),
                "slippage_bps": vs(None if vwap is None else vwap.vwap),
                "slippage_ex_own_bps": vs(None if vwap is None else vwap.vwap_ex_own),
                "market_qty": _money(None if vwap is None else vwap.market_qty),
                "participation": _rounded(None if vwap is None else vwap.participation),
            },
            "spread": {
                "mid_source": self.sources.mid,
                "spread_capture": _rounded(weighted(self.fills, [x.capture for x in self.spreads])),
                "effective_spread_bps": _rounded(
                    weighted(self.fills, [x.effective_bps for x in self.spreads])
                ),
                "realized_spread_bps": {
                    _horizon(h): _rounded(weighted(self.fills, [x.realized_bps[h] for x in self.spreads]))
                    for h in SPREAD_HORIZONS_MS
                },
                "price_impact_bps": {
                    _horizon(h): _rounded(weighted(self.fills, [x.impact_bps[h] for x in self.spreads]))
                    for h in SPREAD_HORIZONS_MS
                },
            },
            "markouts_bps": {
                _horizon(p.horizon_ms): {
                    "all": _rounded(p.all_bps),
                    "maker": _rounded(p.maker_bps),
                    "taker": _rounded(p.taker_bps),
                    "qty": _money(p.qty),
                }
                for p in self.markouts
            },
            "reversion_bps": {_horizon(h): _rounded(v) for h, v in self.reversions.items()},
            "conventions": (
                "s=+1 buy, -1 sell; costs positive = the trader lost money (quote currency, bps of"
                " the benchmark named); markouts, spread capture and reversion positive = favourable"
            ),
        }

    def fill_rows(self) -> list[dict[str, Any]]:
        """One row per fill for fills.parquet (floats: the exact values are in tca.json)."""
        with localcontext(EXACT):
            rows = []
            for fill, mid, spread in zip(self.fills, self.mids, self.spreads, strict=True):
                row: dict[str, Any] = {
                    "time_ms": fill.time_ms,
                    "price": float(fill.price),
                    "qty": float(fill.qty),
                    "fee": float(fill.fee),
                    "maker": fill.maker,
                    "trade_id": fill.trade_id,
                    "mid": _float(mid),
                    "arrival_slippage_bps": float(
                        self.sign * (fill.price - self.order.arrival_price) / self.order.arrival_price * BPS
                    ),
                    "execution_cost": float(self.sign * fill.qty * (fill.price - self.order.arrival_price)),
                    "spread_impact_cost": _float(
                        None if mid is None else self.sign * fill.qty * (fill.price - mid)
                    ),
                    "timing_cost": _float(
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
    if ms % 60_000 == 0:
        return f"{ms // 60_000}m"
    if ms % 1_000 == 0:
        return f"{ms // 1_000}s"
    return f"{ms}ms"


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
