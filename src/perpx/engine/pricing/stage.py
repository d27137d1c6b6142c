"""The pricing stage: index from spot quotes, mark price, premium samples and funding settlement.

It drives the pure functions of :mod:`.index`, :mod:`.mark` and :mod:`.funding`
for every market with a ``[markets.X.index]`` table; a market without one keeps
its manually set mark (``SetMarkPrice``) and has no funding.

Time
----
Pricing work is due at fixed times, all aligned to the Unix epoch:

=================================  ==============================================================
when                               what
=================================  ==============================================================
every whole second                 a basis sample ``2 x (book mid - index)`` (both book sides
                                   needed); the mark is recomputed at the end of each catch-up
every ``premium_sample_s``         a premium sample from the impact bid and ask
``quote ts + stale_after_s``       that quote turns stale (from the next nanosecond): the index
                                   is recomputed; below ``min_sources`` it freezes
each funding boundary              (a multiple of ``funding_interval_hours`` since the epoch, UTC)
                                   the mark at that instant, then settlement
=================================  ==============================================================

Before each command the engine calls :meth:`PricingStage.catch_up` if anything
is due at or before the command's time, so work due at ``t`` happens on the
state as it stood at ``t`` (nothing changes between commands), and before the
command itself: a position opened after a boundary never pays for it. Between
two commands the state is constant, so a long clock jump is cut only at the
points where the index can change (a quote turning stale) and at funding
boundaries; the samples in each piece are all equal and are added at once
(``twa_add``; at most ``mark_basis_window_s`` basis samples are kept). The
work per catch-up is independent of the number of accounts, except at a funding
boundary, which touches every position of the market (through
``Engine.market_positions``, in account id order). Markets catch up one after
the other, in name order, so a jump's events come market by market, each in
time order.

Freezing
--------
While a market's index is below quorum (``Engine.index_stale``) its index and
mark stay at their last values, no basis or premium sample is taken (a stale
index must not feed the mark or funding), the market accepts only reduce-only
orders and liquidations in it pause. Funding still settles at the frozen mark.

Funding rounding
----------------
``formulas.funding_payment_atoms``: a payer's payment rounds up, a receiver's
receipt toward zero. The payers' total minus the receivers' total, the
residue (0 <= residue < number of positions), goes to the insurance fund
(``Engine.insurance_atoms``, already in the conservation invariant), and each
``FundingSettled`` reports it. Every account that paid or received goes into
``Engine.risk_dirty``, so the liquidation stage rechecks it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from perpx.engine import formulas
from perpx.engine.book import BookSide
from perpx.engine.codes import RejectCode
from perpx.engine.commands import MarketMode, SubmitSpotQuote
from perpx.engine.config import MarketSpec
from perpx.engine.events import (
    CommandRejected,
    DroppedSource,
    FundingPaid,
    FundingSettled,
    IndexSource,
    IndexStaleChanged,
    IndexUpdated,
    MarkClamped,
    MarkPriceUpdated,
)
from perpx.engine.pricing import funding, mark
from perpx.engine.pricing.index import IndexPolicy, SourceQuote, compute_index
from perpx.engine.values import MarketId

if TYPE_CHECKING:
    from perpx.engine.core import Core

NS_PER_S: Final = 1_000_000_000
NEVER_NS: Final = 2**62 - 1
"""A time no command reaches (the year 2116): "nothing due". The largest integer compiled code
compares as a machine word (``Engine.apply`` compares it with every command's time)."""


class MarketPricing:
    """Pricing state of one market with index sources. Everything here is snapshotted."""

    __slots__ = (
        "basis",
        "clamped",
        "dropped",
        "ema_den",
        "ema_num",
        "funding_basis_ticks",
        "index_ticks",
        "last_premium_e8",
        "last_rate_e8",
        "moving_basis_ticks",
        "next_funding_ns",
        "paid_atoms",
        "payments",
        "premium_count",
        "premium_num",
        "processed_ns",
        "quotes",
        "received_atoms",
        "residue_atoms",
        "spec",
        "used",
    )

    def __init__(self, spec: MarketSpec) -> None:
        self.spec = spec
        self.quotes: dict[str, SourceQuote] = {}
        """The latest quote of each source (only configured sources)."""
        self.index_ticks: int | None = None
        """The last index computed with quorum; frozen while below quorum."""
        self.used: tuple[tuple[str, int], ...] = ()
        self.dropped: tuple[tuple[str, str], ...] = ()
        self.basis: list[tuple[int, int]] = []
        """Basis samples ``(sample_ns, 2 x (mid - index))`` in the window, oldest first (binance policy)."""
        self.ema_num = 0
        self.ema_den = 0
        self.premium_num = 0
        self.premium_count = 0
        """Running time-weighted average of this interval's premium samples (``funding.twa_add``)."""
        self.last_premium_e8: int | None = None
        self.last_rate_e8 = 0
        """The rate of the last settlement (0 before the first): price1 of the mark uses it."""
        self.next_funding_ns = 0
        self.processed_ns: int | None = None
        """Every sample due at or before this time has been taken; ``None`` before the first command."""
        self.funding_basis_ticks: int | None = None
        self.moving_basis_ticks: int | None = None
        self.paid_atoms = 0
        self.received_atoms = 0
        self.residue_atoms = 0
        self.payments = 0
        """Totals over every settlement so far (checked by the invariants)."""
        self.clamped = False
        """The last mark update was held at the edge of ``index x (1 +/- mark_index_band)``."""

    # -------------------------------------------------------------- snapshot rows

    def to_row(self) -> list[Any]:
        """The state as canonical plain data (maps sorted by key)."""
        return [
            [[source, q.price_ticks, q.ts_ns] for source, q in sorted(self.quotes.items())],
            self.index_ticks,
            [list(row) for row in self.used],
            [list(row) for row in self.dropped],
            [list(row) for row in self.basis],
            self.ema_num,
            self.ema_den,
            self.premium_num,
            self.premium_count,
            self.last_premium_e8,
            self.last_rate_e8,
            self.next_funding_ns,
            self.processed_ns,
            self.funding_basis_ticks,
            self.moving_basis_ticks,
            [self.paid_atoms, self.received_atoms, self.residue_atoms, self.payments],
            self.clamped,
        ]

    def load_row(self, row: list[Any]) -> None:
        """Inverse of :meth:`to_row`."""
        (
            quotes,
            self.index_ticks,
            used,
            dropped,
            basis,
            self.ema_num,
            self.ema_den,
            self.premium_num,
            self.premium_count,
            self.last_premium_e8,
            self.last_rate_e8,
            self.next_funding_ns,
            self.processed_ns,
            self.funding_basis_ticks,
            self.moving_basis_ticks,
            totals,
            self.clamped,
        ) = row
        self.quotes = {source: SourceQuote(price, ts) for source, price, ts in quotes}
        self.used = tuple((source, price) for source, price in used)
        self.dropped = tuple((source, reason) for source, reason in dropped)
        self.basis = [(ts, sample) for ts, sample in basis]
        self.paid_atoms, self.received_atoms, self.residue_atoms, self.payments = totals


@dataclass(frozen=True, slots=True)
class PricingView:
    """A market's prices and funding figures now (for premiumIndex / fundingRate / fundingInfo).

    Funding fields are ``None`` for a market without index sources (manual mark, no funding).
    """

    market: MarketId
    index_ticks: int | None
    mark_ticks: int | None
    funding_basis_ticks: int | None
    moving_basis_ticks: int | None
    last_trade_ticks: int | None
    index_stale: bool
    mark_policy: str | None
    last_funding_rate_e8: int | None
    predicted_funding_rate_e8: int | None
    next_funding_ns: int | None
    average_premium_e8: int | None
    premium_samples: int | None
    last_premium_e8: int | None
    interest_rate_e8: int | None
    funding_cap_e8: int | None
    funding_floor_e8: int | None
    funding_interval_hours: int | None
    sources_used: tuple[tuple[str, int], ...] = ()
    """``(source, price_ticks)`` behind the current index (for explanation records)."""
    sources_dropped: tuple[tuple[str, str], ...] = ()
    """``(source, reason)`` left out of (or clipped in) the current index."""


def _orders_as_levels(side: BookSide) -> Iterator[tuple[int, int]]:
    """``(price, leaves)`` per resting order, best first: levels for ``impact_price_ticks``, lazily."""
    for order in side.orders():
        yield order.price_ticks, order.leaves_lots


class PricingStage:
    """Index, mark and funding of every market that has index sources."""

    def __init__(self, engine: Core) -> None:
        self.engine = engine
        self.markets: dict[MarketId, MarketPricing] = {
            market: MarketPricing(spec) for market, spec in sorted(engine.specs.items()) if spec.index
        }
        self.due_ns = 0 if self.markets else NEVER_NS
        """The earliest time pricing work is due; the engine calls :meth:`catch_up` from then on."""

    def handlers(self) -> dict[type, Callable[[Any], None]]:
        """The engine commands this module handles."""
        return {SubmitSpotQuote: self._submit_quote}

    # ------------------------------------------------------------------ queries

    def priced(self, market: MarketId) -> bool:
        """True when ``market`` takes its mark from index sources (and settles funding)."""
        return market in self.markets

    def predicted_funding_rate_e8(self, market: MarketId) -> int | None:
        """The rate the running interval would settle at if it ended now (``None``: no funding)."""
        state = self.markets.get(market)
        if state is None:
            return None
        return self._rate(state)

    def view(self, market: MarketId) -> PricingView:
        """Index, mark, its components and funding figures of ``market`` now."""
        engine = self.engine
        state = self.markets.get(market)
        risk = None if state is None else state.spec.risk
        return PricingView(
            market=market,
            index_ticks=engine.indexes.get(market),
            mark_ticks=engine.marks.get(market),
            funding_basis_ticks=None if state is None else state.funding_basis_ticks,
            moving_basis_ticks=None if state is None else state.moving_basis_ticks,
            last_trade_ticks=engine.last_trade_ticks.get(market),
            index_stale=market in engine.index_stale,
            mark_policy=None if risk is None else risk.mark_policy,
            last_funding_rate_e8=None if state is None else state.last_rate_e8,
            predicted_funding_rate_e8=None if state is None else self._rate(state),
            next_funding_ns=None if state is None or state.processed_ns is None else state.next_funding_ns,
            average_premium_e8=None
            if state is None
            else funding.twa_e8(state.premium_num, state.premium_count),
            premium_samples=None if state is None else state.premium_count,
            last_premium_e8=None if state is None else state.last_premium_e8,
            interest_rate_e8=None if risk is None else risk.interest_rate_e8,
            funding_cap_e8=None if risk is None else risk.funding_cap_e8,
            funding_floor_e8=None if risk is None else risk.funding_floor_e8,
            funding_interval_hours=None if risk is None else risk.funding_interval_hours,
            sources_used=() if state is None else state.used,
            sources_dropped=() if state is None else state.dropped,
        )

    def impact_notional_atoms(self, market: MarketId) -> int:
        """Notional whose average fill price is the impact bid/ask of ``market``."""
        spec = self.engine.specs[market]
        return funding.impact_notional_atoms(spec.risk.impact_margin_notional_atoms, spec.max_leverage)

    def respec(self, market: MarketId, spec: MarketSpec) -> None:
        """Adopt an operator's new ``spec`` of ``market`` (``perpx.engine.params``).

        Quotes of sources no longer listed are dropped and the index is recomputed from the rest
        with the new weights and quorum, then the mark. The scheduled settlement stays: a new
        funding interval starts after it.
        """
        state = self.markets.get(market)
        if state is None:
            return
        index_changed = spec.index != state.spec.index
        state.spec = spec
        if index_changed and spec.index is not None:
            weights = spec.index.weights
            state.quotes = {s: q for s, q in state.quotes.items() if s in weights}
            if state.processed_ns is not None:
                self._recompute_index(market, state, self.engine.now_ns)
                self._update_mark(market, state, self.engine.now_ns)
        self.reschedule()

    # ------------------------------------------------------------------ time

    def catch_up(self, now_ns: int) -> None:
        """Do every sample, index change and settlement due up to ``now_ns``; refresh the marks."""
        for market, state in self.markets.items():
            if state.processed_ns is None:
                # first command the venue sees: pricing time starts here (no samples before it)
                interval = state.spec.risk.funding_interval_ns
                state.processed_ns = now_ns
                state.next_funding_ns = (now_ns // interval + 1) * interval
            else:
                self._advance(market, state, now_ns)
            self._update_mark(market, state, now_ns)
        self.reschedule()

    def reschedule(self) -> None:
        """Recompute :attr:`due_ns` (after any change, and after a restore)."""
        due = NEVER_NS
        for state in self.markets.values():
            if state.processed_ns is None:
                due = 0
                break
            due = min(
                due,
                (state.processed_ns // NS_PER_S + 1) * NS_PER_S,
                state.next_funding_ns,
                self._staleness_change_ns(state, state.processed_ns),
            )
        self.due_ns = due

    def _advance(self, market: MarketId, state: MarketPricing, to_ns: int) -> None:
        interval = state.spec.risk.funding_interval_ns
        processed = state.processed_ns
        assert processed is not None
        while processed < to_ns:
            change = self._staleness_change_ns(state, processed)
            stop = min(to_ns, state.next_funding_ns, change)
            if change == stop:
                self._sample(market, state, processed, stop - 1)
                self._recompute_index(market, state, stop)
                self._update_mark(market, state, stop)
                self._sample(market, state, stop - 1, stop)
            else:
                self._sample(market, state, processed, stop)
            processed = state.processed_ns = stop
            if stop == state.next_funding_ns:
                self._update_mark(market, state, stop)
                self._settle(market, state, stop)
                state.next_funding_ns = stop + interval

    def _staleness_change_ns(self, state: MarketPricing, after_ns: int) -> int:
        """The first time after ``after_ns`` at which a quote that is fresh then turns stale."""
        index = state.spec.index
        assert index is not None
        first = NEVER_NS
        for quote in state.quotes.values():
            stale_at = quote.ts_ns + index.stale_after_ns + 1
            if after_ns < stale_at < first:
                first = stale_at
        return first

    # ------------------------------------------------------------------ index

    def _submit_quote(self, cmd: SubmitSpotQuote) -> None:
        engine = self.engine
        refusal = self._quote_refusal(cmd)
        if refusal is not None:
            engine.emit(
                CommandRejected(
                    ts_ns=engine.now_ns,
                    account_id=None,
                    command="SubmitSpotQuote",
                    code=refusal[0],
                    message=refusal[1],
                )
            )
            return
        state = self.markets[cmd.market]
        state.quotes[cmd.source] = SourceQuote(cmd.price_ticks, cmd.ts_ns)
        self._recompute_index(cmd.market, state, engine.now_ns)
        self._update_mark(cmd.market, state, engine.now_ns)
        self.reschedule()

    def _quote_refusal(self, cmd: SubmitSpotQuote) -> tuple[RejectCode, str] | None:
        spec = self.engine.specs.get(cmd.market)
        if spec is None:
            return RejectCode.BAD_SYMBOL, f"market {cmd.market} is not listed on this venue"
        if spec.index is None:
            return (
                RejectCode.UNKNOWN_SOURCE,
                f"market {cmd.market} has no [markets.{cmd.market}.index] table, so it takes no spot"
                " quotes; its mark is set with SetMarkPrice",
            )
        if cmd.source not in spec.index.weights:
            return (
                RejectCode.UNKNOWN_SOURCE,
                f"{cmd.source!r} is not an index source of {cmd.market}; its sources are"
                f" {', '.join(spec.index.weights)}",
            )
        if cmd.price_ticks <= 0:
            return RejectCode.PRICE_NOT_POSITIVE, "a spot quote's price must be greater than zero"
        previous = self.markets[cmd.market].quotes.get(cmd.source)
        if previous is not None and previous.ts_ns > cmd.ts_ns:
            return (
                RejectCode.QUOTE_OUT_OF_ORDER,
                f"{cmd.source} already quoted {cmd.market} at a later time ({previous.ts_ns} ns);"
                " send a source's quotes in time order",
            )
        return None

    def _recompute_index(self, market: MarketId, state: MarketPricing, now_ns: int) -> None:
        engine = self.engine
        spec = state.spec.index
        assert spec is not None
        result = compute_index(
            IndexPolicy(spec.policy),
            spec.weights,
            state.quotes,
            now_ns,
            spec.stale_after_ns,
            spec.min_sources,
            spec.outlier_e8,
        )
        dropped = tuple((source, str(reason)) for source, reason in result.dropped)
        was_stale = market in engine.index_stale
        if result.price_ticks is None:
            if not was_stale:
                engine.index_stale[market] = None
                engine.emit(
                    IndexStaleChanged(
                        ts_ns=engine.now_ns,
                        market=market,
                        as_of_ns=now_ns,
                        stale=True,
                        index_ticks=state.index_ticks,
                        fresh_sources=len(spec.weights) - len(dropped),
                        min_sources=spec.min_sources,
                        dropped=_dropped(dropped),
                    )
                )
            return
        if was_stale:
            del engine.index_stale[market]
            engine.price_moved(market)  # quorum is back: paused liquidations there are due again
            engine.emit(
                IndexStaleChanged(
                    ts_ns=engine.now_ns,
                    market=market,
                    as_of_ns=now_ns,
                    stale=False,
                    index_ticks=result.price_ticks,
                    fresh_sources=len(result.used),
                    min_sources=spec.min_sources,
                    dropped=_dropped(dropped),
                )
            )
        if was_stale or (result.price_ticks, result.used, dropped) != (
            state.index_ticks,
            state.used,
            state.dropped,
        ):
            state.index_ticks = result.price_ticks
            state.used = result.used
            state.dropped = dropped
            engine.emit(
                IndexUpdated(
                    ts_ns=engine.now_ns,
                    market=market,
                    as_of_ns=now_ns,
                    index_ticks=result.price_ticks,
                    used=tuple(IndexSource(source=s, price_ticks=p) for s, p in result.used),
                    dropped=_dropped(dropped),
                )
            )

    # ------------------------------------------------------------------ samples and mark

    def _sample(self, market: MarketId, state: MarketPricing, after_ns: int, until_ns: int) -> None:
        """Take the samples due in ``(after_ns, until_ns]``; the state is the same at each of them."""
        if until_ns <= after_ns:
            return
        engine = self.engine
        risk = state.spec.risk
        index = state.index_ticks
        usable = index is not None and market not in engine.index_stale
        seconds = until_ns // NS_PER_S - after_ns // NS_PER_S
        if seconds > 0:
            book = engine.books[market]
            bid, ask = book.bids.best_price(), book.asks.best_price()
            sample = None
            if usable:
                assert index is not None
                # a one-sided or empty book has no mid: the second counts as no basis at all
                sample = 0 if bid is None or ask is None else mark.basis_half_ticks(bid, ask, index)
            if risk.mark_policy == "ema":
                state.ema_num, state.ema_den = mark.ema_seconds(state.ema_num, state.ema_den, sample, seconds)
            elif sample is not None:
                last = until_ns // NS_PER_S
                first = max(after_ns // NS_PER_S + 1, last - risk.mark_basis_window_s + 1)
                state.basis.extend((second * NS_PER_S, sample) for second in range(first, last + 1))
            self._prune_basis(state, until_ns)
        step = risk.premium_sample_s * NS_PER_S
        count = until_ns // step - after_ns // step
        if count > 0 and usable:
            assert index is not None
            premium = self._premium_e8(market, state.spec, index)
            state.last_premium_e8 = premium
            state.premium_num, state.premium_count = funding.twa_add(
                state.premium_num, state.premium_count, premium, count
            )

    def _premium_e8(self, market: MarketId, spec: MarketSpec, index_ticks: int) -> int:
        """A premium sample; a book side that cannot absorb the impact notional counts as no premium."""
        book = self.engine.books[market]
        notional = self.impact_notional_atoms(market)
        contract = spec.contract_atoms
        impact_bid = funding.impact_price_ticks(_orders_as_levels(book.bids), notional, contract)
        impact_ask = funding.impact_price_ticks(_orders_as_levels(book.asks), notional, contract)
        return funding.premium_e8(
            index_ticks if impact_bid is None else impact_bid,
            index_ticks if impact_ask is None else impact_ask,
            index_ticks,
        )

    @staticmethod
    def _prune_basis(state: MarketPricing, now_ns: int) -> None:
        """Drop basis samples outside the window ``(now - mark_basis_window_s, now]``."""
        cutoff = now_ns - state.spec.risk.mark_basis_window_s * NS_PER_S
        basis = state.basis
        keep = 0
        while keep < len(basis) and basis[keep][0] <= cutoff:
            keep += 1
        if keep:
            del basis[:keep]

    def _update_mark(self, market: MarketId, state: MarketPricing, now_ns: int) -> None:
        """Recompute the mark from the index, the basis and the last trade; frozen while stale."""
        engine = self.engine
        self._prune_basis(state, now_ns)
        index = state.index_ticks
        if index is None or market in engine.index_stale:
            return
        risk = state.spec.risk
        # a shorter interval set by an operator starts after the scheduled settlement: until then
        # the time to it is capped at one interval (unchanged settings never reach the cap)
        price1 = mark.funding_basis_price_ticks(
            index,
            state.last_rate_e8,
            min(state.next_funding_ns - now_ns, risk.funding_interval_ns),
            risk.funding_interval_ns,
        )
        if risk.mark_policy == "ema":
            price2 = mark.ema_basis_price_ticks(index, state.ema_num, state.ema_den)
        else:
            price2 = mark.moving_basis_half_price_ticks(index, [sample for _, sample in state.basis])
        last = engine.last_trade_ticks.get(market)
        raw_mark = max(1, mark.binance_mark_ticks(price1, price2, last))
        new_mark = mark.clamp_to_index_band(raw_mark, index, risk.mark_index_band_e8)
        state.funding_basis_ticks = price1
        state.moving_basis_ticks = price2
        previous = engine.marks.get(market)
        engine.set_mark(market, index, new_mark)
        clamped = new_mark != raw_mark
        if clamped and (new_mark != previous or not state.clamped):
            engine.emit(
                MarkClamped(
                    ts_ns=engine.now_ns,
                    market=market,
                    as_of_ns=now_ns,
                    index_ticks=index,
                    raw_mark_ticks=raw_mark,
                    mark_ticks=new_mark,
                    band_e8=risk.mark_index_band_e8,
                )
            )
        state.clamped = clamped
        if new_mark != previous:
            engine.emit(
                MarkPriceUpdated(
                    ts_ns=engine.now_ns,
                    market=market,
                    as_of_ns=now_ns,
                    index_ticks=index,
                    mark_ticks=new_mark,
                    funding_basis_ticks=price1,
                    moving_basis_ticks=price2,
                    last_trade_ticks=last,
                )
            )

    # ------------------------------------------------------------------ funding

    @staticmethod
    def _rate(state: MarketPricing) -> int:
        risk = state.spec.risk
        return funding.funding_rate_e8(
            funding.twa_e8(state.premium_num, state.premium_count),
            risk.interest_rate_e8,
            risk.funding_interval_hours,
            risk.funding_cap_e8,
            risk.funding_floor_e8,
        )

    def _settle(self, market: MarketId, state: MarketPricing, funding_time_ns: int) -> None:
        """Settle the interval ending at ``funding_time_ns``: every open position pays or receives."""
        engine = self.engine
        average = funding.twa_e8(state.premium_num, state.premium_count)
        samples = state.premium_count
        rate = self._rate(state)
        state.premium_num = state.premium_count = 0
        state.last_rate_e8 = rate
        if engine.modes[market] is MarketMode.SETTLED:
            return  # delisted: no positions, nothing to settle
        mark_ticks = engine.marks.get(market)
        asset = engine.asset
        contract = state.spec.contract_atoms
        events = engine.events
        paid = received = positions = 0
        if mark_ticks is not None:
            records = engine.market_positions[market]
            for account_id in sorted(records):
                position = records[account_id]
                qty = position.qty_lots
                if qty == 0:
                    continue
                payment = formulas.funding_payment_atoms(qty, mark_ticks, contract, rate)
                if payment > 0:
                    paid += payment
                else:
                    received -= payment
                positions += 1
                isolated = position.is_isolated
                if isolated:
                    position.isolated_margin_atoms -= payment
                else:
                    engine.accounts[account_id].credit(asset, -payment)
                engine.margin_changed(account_id)  # the liquidation stage rechecks and re-bands it
                events.append(
                    FundingPaid(
                        ts_ns=engine.now_ns,
                        account_id=account_id,
                        market=market,
                        funding_time_ns=funding_time_ns,
                        qty_lots=qty,
                        mark_ticks=mark_ticks,
                        rate_e8=rate,
                        amount_atoms=-payment,
                        isolated=isolated,
                    )
                )
        residue = paid - received
        if residue:
            engine.insurance_atoms[asset] = engine.insurance_atoms.get(asset, 0) + residue
        state.paid_atoms += paid
        state.received_atoms += received
        state.residue_atoms += residue
        state.payments += positions
        events.append(
            FundingSettled(
                ts_ns=engine.now_ns,
                market=market,
                funding_time_ns=funding_time_ns,
                rate_e8=rate,
                average_premium_e8=average,
                premium_samples=samples,
                mark_ticks=mark_ticks,
                positions=positions,
                paid_atoms=paid,
                received_atoms=received,
                residue_atoms=residue,
                next_funding_ns=funding_time_ns + state.spec.risk.funding_interval_ns,
            )
        )


def _dropped(rows: tuple[tuple[str, str], ...]) -> tuple[DroppedSource, ...]:
    return tuple(DroppedSource(source=source, reason=reason) for source, reason in rows)
