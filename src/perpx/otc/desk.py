"""The RFQ lifecycle: a request becomes a quote; an accept, within expiry and last look, a block trade.

:class:`Desk` holds no engine: each step takes the engine as it stands between commands (the
server's query step, the simulation's loop) and returns a value, so the server and the simulated
day run the same code. Booking is an engine command (:class:`~perpx.engine.commands.BookBlockTrade`)
built by :meth:`Desk.command` at the time the sequencer stamps it, so a quote that expired while the
accept waited in the queue is refused then, not booked.

The steps of an accept, first refusal wins (codes in :mod:`perpx.otc.errors`):

1. the quote exists and is the caller's (``-9562``), and is still open (``-9563``);
2. the side is one the quote priced (``-9567``);
3. venue time is within the quote's validity (``-9564``, recorded ``EXPIRED``);
4. last look: the index moved no more than ``last_look_bps`` since the quote (``-9565``, recorded
   ``LAST_LOOK_REJECTED`` with the move);
5. the desk's inventory limit still holds with this trade (``-9566``, recorded ``REJECTED``); the
   quote is then recorded ``BOOKING`` (it can no longer be accepted);
6. the engine books the block trade with the margin checks of any fill; its refusal is recorded
   ``REJECTED`` with the engine's code.

A symbol of ``[otc.spot]`` (``"BTC/USDT"``) goes the same way with the inputs of
:mod:`perpx.otc.spot` (the asset's index, the desk's holding) and books a
:class:`~perpx.engine.commands.BookSpotBlockTrade` (wallet transfers, no position); the net-delta
limit across symbols does not apply to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_DOWN, Decimal

from perpx.engine.commands import BookBlockTrade, BookSpotBlockTrade
from perpx.engine.engine import Engine
from perpx.engine.events import BlockTradeBooked, CommandRejected, Event, SpotBlockTradeBooked
from perpx.engine.values import AccountId, AssetId, MarketId, Side
from perpx.otc import errors, spot
from perpx.otc.config import OtcConfig
from perpx.otc.errors import OtcError
from perpx.otc.lastlook import last_look
from perpx.otc.market import IndexHistory, desk_position_lots, market_inputs, net_delta, to_units_down
from perpx.otc.pricing import PricedQuote, QuoteSide, price_quote
from perpx.otc.store import (
    BOOKING,
    EXPIRED,
    FILLED,
    LAST_LOOK_REJECTED,
    QUOTED,
    REJECTED,
    OtcStore,
    QuoteRecord,
    RefusedRequest,
)

NS_PER_MS = 1_000_000
AnyBlockTrade = BookBlockTrade | BookSpotBlockTrade
"""The engine command an accept books: a perpetual's block trade, or a spot pair's transfers."""


@dataclass(frozen=True, slots=True)
class AcceptPlan:
    """An accept that passed every check of the desk: what to book."""

    quote: QuoteRecord
    side: Side
    """The client's side: BUY takes the desk's ask, SELL hits its bid."""
    price_ticks: int
    index_ticks: int
    move_bps: Decimal
    base_atoms: int = 0
    """A spot pair's base asset to move (atoms); 0 for a perpetual."""
    quote_atoms: int = 0
    """A spot pair's settlement asset to move (atoms); 0 for a perpetual."""


class Desk:
    """The desk's RFQ state machine on one venue (module docstring)."""

    def __init__(self, config: OtcConfig, store: OtcStore) -> None:
        self.config = config
        self.store = store
        self.desk_id = AccountId(config.desk_account)
        self.history = IndexHistory(config.pricing.vol_window_s)
        self.elsewhere: dict[str, int] = {}
        """The desk's position on outside hedging venues by market, in this venue's lots, as last read
        (:meth:`perpx.otc.hedging.Hedger.refresh_outside`): it counts in the inventory and net delta."""

    # ------------------------------------------------------------------ request

    def request(
        self,
        engine: Engine,
        account_id: int,
        market: MarketId,
        side: QuoteSide,
        qty_lots: int | None = None,
        notional: Decimal | None = None,
    ) -> QuoteRecord:
        """Price and record a quote for ``qty_lots`` (or ``notional`` at the index) of ``market``.

        Raises
        ------
        OtcError
            ``-9568`` without a desk account; ``-9566`` when the model gives no price (the refusal
            is recorded with its reason).
        """
        if self.desk_id not in engine.accounts:
            raise OtcError(errors.DESK_UNAVAILABLE, f"the desk's account {self.desk_id} does not exist")
        tier = self.config.tier_of(account_id)
        pair = self.config.spot.get(str(market))
        if pair is not None:
            samples = self.history.recent(spot.ASSET_KEY_PREFIX + pair.base, engine.now_ns)
            inputs = spot.spot_inputs(engine, pair, self.desk_id, self.config.pricing, samples)
        else:
            inputs = market_inputs(
                engine,
                market,
                self.desk_id,
                self.config.pricing,
                self.config.policy(str(market)),
                self.history,
                self.config.betas,
                self.config.max_net_delta,
                self.elsewhere,
            )
        if account_id == self.desk_id:
            reason = "the desk does not quote itself"
        elif inputs is None:
            reason = f"{market} has no index and mark yet"
        else:
            reason = None
        lots = qty_lots
        if lots is None and notional is not None and inputs is not None:
            price = Decimal(inputs.index_ticks) * inputs.tick_size
            lots = int((notional / price / inputs.lot_size).to_integral_value(rounding=ROUND_DOWN))
        lots = lots or 0
        if reason is not None or inputs is None:
            raise self._refused(account_id, tier, market, side, lots, engine.now_ns, reason or "")
        priced = price_quote(side, lots, inputs, self.config.tiers[tier], self.config.pricing)
        if not priced.priced:
            raise self._refused(
                account_id, tier, market, side, lots, engine.now_ns, _refusal_text(priced, side)
            )
        record = QuoteRecord(
            quote_id=self.store.next_quote_id(),
            account_id=account_id,
            tier=tier,
            symbol=str(market),
            requested=side.value,
            qty_lots=lots,
            bid_ticks=priced.bid.price_ticks if priced.bid is not None else None,
            ask_ticks=priced.ask.price_ticks if priced.ask is not None else None,
            index_ticks=inputs.index_ticks,
            mark_ticks=inputs.index_ticks if pair is not None else engine.marks[market],
            bid_half_bps=_bps_text(priced.bid.half_spread_bps if priced.bid is not None else None),
            ask_half_bps=_bps_text(priced.ask.half_spread_bps if priced.ask is not None else None),
            skew_bps=_bps_text(priced.skew_bps),
            volatility_bps=_bps_text(priced.volatility_bps),
            inventory_lots=inputs.inventory_lots,
            created_ns=engine.now_ns,
            expires_ns=engine.now_ns + self.config.quote_ttl_ms * NS_PER_MS,
        )
        self.store.add_quote(record)
        return record

    def _refused(
        self,
        account_id: int,
        tier: str,
        market: MarketId,
        side: QuoteSide,
        lots: int,
        ts_ns: int,
        reason: str,
    ) -> OtcError:
        """Record a request the desk gives no price for; the error to raise."""
        self.store.add_refused(
            RefusedRequest(account_id, tier, str(market), side.value, lots, ts_ns, errors.NOT_QUOTED, reason)
        )
        return OtcError(errors.NOT_QUOTED, f"No quote: {reason}.")

    # ------------------------------------------------------------------ accept

    def prepare_accept(self, engine: Engine, account_id: int, quote_id: str, side: Side | None) -> AcceptPlan:
        """Check an accept (steps 1 to 5 of the module docstring) against the engine as it stands.

        Raises
        ------
        OtcError
            With the step's code; steps 3 to 5 record the quote's new state first.
        """
        quote = self.store.quote(quote_id)
        if quote is None or quote.account_id != account_id:
            raise OtcError(errors.UNKNOWN_QUOTE, f"Quote {quote_id[:64]!r} is not one of yours.")
        if quote.state != QUOTED:
            raise OtcError(errors.QUOTE_NOT_OPEN, f"Quote {quote_id} is {quote.state}; request a new one.")
        chosen = _side(quote, side)
        price = quote.ask_ticks if chosen is Side.BUY else quote.bid_ticks
        assert price is not None  # _side checked it
        now = engine.now_ns
        if now > quote.expires_ns:
            self._expire(quote, chosen, now)
        market = MarketId(quote.symbol)
        pair = self.config.spot.get(quote.symbol)
        if pair is not None:
            atoms = spot.index_atoms(engine, pair)
            index = quote.index_ticks if atoms is None else spot.index_ticks(engine, pair, atoms)
        else:
            index = engine.indexes.get(market, quote.index_ticks)
        look = last_look(quote.index_ticks, index, self.config.last_look_bps)
        if look.rejected:
            self._end(
                quote, LAST_LOOK_REJECTED, chosen, now, index, look.move_bps, None, errors.LAST_LOOK, ""
            )
            raise OtcError(
                errors.LAST_LOOK,
                f"Last look: the index moved {look.move_bps:.2f} bps since the quote, more than the desk's"
                f" {self.config.last_look_bps} bps; request a new quote.",
            )
        if pair is not None:
            limit = int(pair.max_inventory / pair.lot_size)
            held = spot.holding_lots(engine, pair, self.desk_id)
        else:
            policy = self.config.policy(quote.symbol)
            limit = to_units_down(policy.max_inventory, engine.specs[market].lot_size)
            held = desk_position_lots(engine, self.desk_id, market) + self.elsewhere.get(quote.symbol, 0)
        after = held - int(chosen) * quote.qty_lots
        if abs(after) > limit and abs(after) > abs(held):
            text = "the trade would take the desk's inventory beyond its limit now"
            self._end(quote, REJECTED, chosen, now, index, look.move_bps, None, errors.NOT_QUOTED, text)
            raise OtcError(errors.NOT_QUOTED, f"No trade: {text}; request a new quote.")
        limit_net = self.config.max_net_delta
        if limit_net is not None and pair is None:
            spec = engine.specs[market]
            beta = self.config.beta(quote.symbol)
            net = net_delta(engine, self.desk_id, self.config.betas, self.elsewhere)
            notional = Decimal(quote.qty_lots) * spec.lot_size * Decimal(index) * spec.tick_size
            net_after = net - int(chosen) * notional * beta
            if abs(net_after) > limit_net and abs(net_after) > abs(net):
                text = "the trade would take the desk's net delta across symbols beyond its limit now"
                self._end(quote, REJECTED, chosen, now, index, look.move_bps, None, errors.NOT_QUOTED, text)
                raise OtcError(errors.NOT_QUOTED, f"No trade: {text}; request a new quote.")
        booking = self._end(quote, BOOKING, chosen, now, index, look.move_bps, None, None, "")
        if pair is not None:
            return AcceptPlan(
                booking,
                chosen,
                price,
                index,
                look.move_bps,
                spot.base_atoms(engine, pair, quote.qty_lots),
                spot.quote_atoms(engine, pair, quote.qty_lots, price),
            )
        return AcceptPlan(booking, chosen, price, index, look.move_bps)

    def command(self, plan: AcceptPlan, ts_ns: int) -> AnyBlockTrade:
        """The block trade of ``plan`` stamped at ``ts_ns``; refused if the quote expired by then.

        Raises
        ------
        OtcError
            ``-9564`` when ``ts_ns`` is past the quote's expiry (recorded ``EXPIRED``).
        """
        if ts_ns > plan.quote.expires_ns:
            self._expire(plan.quote, plan.side, ts_ns)
        pair = self.config.spot.get(plan.quote.symbol)
        if pair is not None:
            return BookSpotBlockTrade(
                ts_ns=ts_ns,
                client_id=AccountId(plan.quote.account_id),
                desk_id=self.desk_id,
                base_asset=AssetId(pair.base),
                side=plan.side,
                base_atoms=plan.base_atoms,
                quote_atoms=plan.quote_atoms,
                quote_id=plan.quote.quote_id,
            )
        return BookBlockTrade(
            ts_ns=ts_ns,
            client_id=AccountId(plan.quote.account_id),
            desk_id=self.desk_id,
            market=MarketId(plan.quote.symbol),
            side=plan.side,
            qty_lots=plan.quote.qty_lots,
            price_ticks=plan.price_ticks,
            quote_id=plan.quote.quote_id,
        )

    def settle(self, plan: AcceptPlan, command: AnyBlockTrade, own: Sequence[Event]) -> QuoteRecord:
        """Record the engine's answer to the block trade: ``FILLED`` with its trade id, or ``REJECTED``."""
        booked = next((e for e in own if isinstance(e, BlockTradeBooked | SpotBlockTradeBooked)), None)
        if booked is not None:
            return self._end(
                plan.quote,
                FILLED,
                plan.side,
                command.ts_ns,
                plan.index_ticks,
                plan.move_bps,
                booked.trade_id,
                None,
                "",
            )
        refused = next((e for e in own if isinstance(e, CommandRejected)), None)
        code = int(refused.code) if refused is not None else errors.NOT_QUOTED
        text = refused.message if refused is not None else "the engine did not book the trade"
        return self._end(
            plan.quote, REJECTED, plan.side, command.ts_ns, plan.index_ticks, plan.move_bps, None, code, text
        )

    def abandon(self, plan: AcceptPlan, code: int, message: str) -> None:
        """The block trade of ``plan`` was certainly not applied: record the accept ``REJECTED``."""
        stored = self.store.quote(plan.quote.quote_id)
        if stored is not None and stored.state == BOOKING:
            self._end(stored, REJECTED, plan.side, stored.accept_ns or 0, None, None, None, code, message)

    def resolve_booking(
        self, quote: QuoteRecord, command: AnyBlockTrade | None, trade_id: int | None
    ) -> QuoteRecord:
        """Settle a quote left ``BOOKING`` by a crash (``perpx.otc.reconcile``): booked, or released.

        ``command`` is its block trade found in the journal (``None``: never journaled);
        ``trade_id`` the trade it booked (``None``: the engine refused it, or there was none).
        """
        side = Side[quote.accept_side] if quote.accept_side else Side.BUY
        ts_ns = command.ts_ns if command is not None else quote.accept_ns or quote.created_ns
        index = quote.accept_index_ticks
        move = Decimal(quote.move_bps) if quote.move_bps else None
        if command is not None and trade_id is not None:
            return self._end(quote, FILLED, side, ts_ns, index, move, trade_id, None, "")
        why = (
            "the block trade is in the journal but the engine did not book it"
            if command is not None
            else "the block trade never reached the journal"
        )
        text = f"the venue stopped before answering this accept; {why}: released at restart"
        return self._end(quote, REJECTED, side, ts_ns, index, move, None, errors.RELEASED_AT_RESTART, text)

    def _expire(self, quote: QuoteRecord, side: Side, now_ns: int) -> None:
        self._end(quote, EXPIRED, side, now_ns, None, None, None, errors.QUOTE_EXPIRED, "")
        raise OtcError(
            errors.QUOTE_EXPIRED,
            f"Quote {quote.quote_id} expired {(now_ns - quote.expires_ns) / NS_PER_MS:.0f} ms ago"
            " (venue time); request a new one.",
        )

    def _end(
        self,
        quote: QuoteRecord,
        state: str,
        side: Side,
        ts_ns: int,
        index_ticks: int | None,
        move_bps: Decimal | None,
        trade_id: int | None,
        code: int | None,
        reason: str,
    ) -> QuoteRecord:
        record = replace(
            quote,
            state=state,
            accept_side=side.name,
            accept_ns=ts_ns,
            accept_index_ticks=index_ticks,
            move_bps=None if move_bps is None else _bps_text(move_bps),
            trade_id=trade_id,
            code=code,
            reason=reason or None,
        )
        self.store.update_quote(record)
        return record


def _side(quote: QuoteRecord, side: Side | None) -> Side:
    if side is None:
        if quote.requested == QuoteSide.TWO_WAY.value:
            raise OtcError(errors.SIDE_NOT_QUOTED, "This quote is two-way: say side=BUY or side=SELL.")
        side = Side.BUY if quote.requested == QuoteSide.BUY.value else Side.SELL
    price = quote.ask_ticks if side is Side.BUY else quote.bid_ticks
    if price is None:
        raise OtcError(errors.SIDE_NOT_QUOTED, f"Quote {quote.quote_id} has no price to {side.name}.")
    return side


def _refusal_text(priced: PricedQuote, side: QuoteSide) -> str:
    if priced.refusal is not None:
        return priced.refusal
    reasons = [s.refusal for s in (priced.bid, priced.ask) if s is not None and s.refusal is not None]
    return "; ".join(dict.fromkeys(reasons)) or f"no price for {side.value}"


def _bps_text(value: Decimal | None) -> str:
    return "" if value is None else f"{value.quantize(Decimal('0.0001'))}"
