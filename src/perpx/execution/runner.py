"""The scheduler: one runner works one parent order on one venue with one strategy.

Each :meth:`ParentRunner.step` is one wake-up:

1. read the venue (time, book, prices, the parent's children and fills, tape volume);
2. at or after the window's end, apply the parent's ``end_behavior``; otherwise ask the strategy;
3. send cancels first, then re-read the children, then :func:`~perpx.execution.rules.enforce` each
   place intent against what is left and send it, logging every intent before it is sent.

The runner holds no state the child log and the venue cannot rebuild: constructing a runner on an
existing log resumes the parent (crash-resume) without sending any child twice.

Quantity accounting (asserted at every step): ``filled + working + remaining == qty`` with
``remaining >= 0``; a child that ends unfilled gives its remainder back to ``remaining``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal

from perpx.execution.algos.build import build_strategy
from perpx.execution.childlog import (
    BoundRecord,
    CancelRecord,
    ChildLog,
    DoneRecord,
    LostRecord,
    PlaceRecord,
)
from perpx.execution.ids import child_id
from perpx.execution.model import EndBehavior, FieldError, ParentOrder, ParentOrderError, ParentSide
from perpx.execution.rules import Allowed, enforce
from perpx.execution.strategy import (
    BoundParent,
    CancelChild,
    Decision,
    Intent,
    PlaceChild,
    Snapshot,
    Strategy,
)
from perpx.execution.venue import ChildOrder, ChildState, ChildStatus, MarketFilters, TimeInForce, Venue

NS_PER_S = 1_000_000_000
DEFAULT_PERIOD_S = 5

StrategyFactory = Callable[[BoundParent], Strategy]
"""Builds the strategy once the parent is bound (default: :func:`~perpx.execution.algos.build.build_strategy`)."""


def _default_factory(venue: Venue, seed: int) -> StrategyFactory:
    return lambda bound: build_strategy(bound, venue, seed)


def _to_lots(qty: Decimal, filters: MarketFilters) -> int:
    return int((qty / filters.lot_size).to_integral_value(ROUND_DOWN))


def _to_ticks(price: Decimal, filters: MarketFilters, side: ParentSide) -> int:
    # a limit is rounded toward the passive side: a buy limit down, a sell limit up (never looser)
    rounding = ROUND_DOWN if side is ParentSide.BUY else ROUND_UP
    return int((price / filters.tick_size).to_integral_value(rounding))


def bind_parent(parent: ParentOrder, venue: Venue, now_ns: int) -> BoundParent:
    """Fix ``parent``'s quantity, window and prices in the market's units, at arrival.

    Raises
    ------
    ParentOrderError
        If the market is unknown, there is no price to arrive at, or the quantity is below the
        market's minimum; each error names its field.
    """
    try:
        filters = venue.filters(parent.market)
    except KeyError as exc:
        raise ParentOrderError([FieldError("market", f"unknown market {parent.market!r}")]) from exc
    book = venue.book(parent.market)
    mid = book.mid_ticks()
    if mid is None:
        prices = venue.prices(parent.market)
        fallback = prices.last_ticks or prices.mark_ticks
        if fallback is None:
            raise ParentOrderError(
                [FieldError("market", f"{parent.market} has no book, last or mark price yet")]
            )
        mid = Decimal(fallback)
    arrival = int(mid.to_integral_value(ROUND_HALF_UP))
    if parent.qty is not None:
        qty_lots = _to_lots(parent.qty, filters)
    else:
        assert parent.notional is not None
        qty_lots = _to_lots(parent.notional / (arrival * filters.tick_size), filters)
    if qty_lots < filters.min_qty_lots:
        field_name = "qty" if parent.qty is not None else "notional"
        raise ParentOrderError(
            [
                FieldError(
                    field_name,
                    f"is below the market's minimum quantity of {filters.min_qty_lots * filters.lot_size}",
                )
            ]
        )
    start = parent.start_ns if parent.start_ns is not None else now_ns
    end = parent.end_ns if parent.end_ns is not None else None
    if end is None and parent.duration_s is not None:
        end = start + parent.duration_s * NS_PER_S
    side = parent.side
    return BoundParent(
        parent=parent,
        filters=filters,
        qty_lots=qty_lots,
        start_ns=start,
        end_ns=end,
        arrival_ticks=arrival,
        limit_ticks=None if parent.limit_price is None else _to_ticks(parent.limit_price, filters, side),
        would_ticks=None if parent.would_price is None else _to_ticks(parent.would_price, filters, side),
        max_clip_lots=None if parent.max_clip is None else max(1, _to_lots(parent.max_clip, filters)),
        min_clip_lots=0
        if parent.min_clip is None
        else int((parent.min_clip / filters.lot_size).to_integral_value(ROUND_UP)),
    )


@dataclass(frozen=True, slots=True)
class StepRecord:
    """What one step saw and did, for progress displays, figures and the accounting property."""

    now_ns: int
    filled_lots: int
    working_lots: int
    remaining_lots: int
    market_volume_lots: int
    schedule_lots: int | None
    sent: int
    refused: tuple[str, ...]
    note: str


@dataclass
class ParentRunner:
    """Works one parent; see the module docstring. Build with :meth:`start` or :meth:`resume`."""

    venue: Venue
    strategy: Strategy
    log: ChildLog
    bound: BoundParent
    period_s: int = DEFAULT_PERIOD_S
    children: dict[str, ChildState | None] = field(default_factory=dict)
    """Every child sent, by client order id; ``None`` until the venue has answered for it."""
    done: bool = False
    wake_ns: int = 0
    history: list[StepRecord] = field(default_factory=list)

    @classmethod
    def start(
        cls,
        venue: Venue,
        parent: ParentOrder,
        log: ChildLog,
        *,
        seed: int = 0,
        make_strategy: StrategyFactory | None = None,
        period_s: int = DEFAULT_PERIOD_S,
    ) -> ParentRunner:
        """Bind ``parent`` now, write the log's first record, and return the runner.

        If the log already holds this parent (same ``client_algo_id``), resume it instead: a
        client that resends a parent after a timeout must not start a second one.

        Raises
        ------
        ParentOrderError
            If the parent cannot be bound, or the log belongs to another parent.
        """
        if log.records:
            return cls.resume(
                venue, log, seed=seed, make_strategy=make_strategy, period_s=period_s, expect=parent
            )
        bound = bind_parent(parent, venue, venue.now_ns())
        log.append(
            BoundRecord(
                parent=parent,
                qty_lots=bound.qty_lots,
                start_ns=bound.start_ns,
                end_ns=bound.end_ns,
                arrival_ticks=bound.arrival_ticks,
            )
        )
        strategy = (make_strategy or _default_factory(venue, seed))(bound)
        return cls(venue, strategy, log, bound, period_s, wake_ns=bound.start_ns)

    @classmethod
    def resume(
        cls,
        venue: Venue,
        log: ChildLog,
        *,
        seed: int = 0,
        make_strategy: StrategyFactory | None = None,
        period_s: int = DEFAULT_PERIOD_S,
        expect: ParentOrder | None = None,
    ) -> ParentRunner:
        """Rebuild a runner from its child log and the venue (after a restart).

        Each logged child is looked up on the venue by its client order id; one the venue never
        saw is recorded ``lost`` and its quantity returns to the remainder.
        """
        first = log.records[0] if log.records else None
        if not isinstance(first, BoundRecord):
            raise ParentOrderError([FieldError("client_algo_id", "the child log has no parent record")])
        if expect is not None and expect.client_algo_id != first.parent.client_algo_id:
            raise ParentOrderError([FieldError("client_algo_id", "the child log belongs to another parent")])
        if expect is not None and expect != first.parent:
            raise ParentOrderError(
                [FieldError("client_algo_id", "already used by a different parent order; choose a new id")]
            )
        parent = first.parent
        bound = bind_parent(parent, venue, first.start_ns)
        bound = BoundParent(
            parent=parent,
            filters=bound.filters,
            qty_lots=first.qty_lots,
            start_ns=first.start_ns,
            end_ns=first.end_ns,
            arrival_ticks=first.arrival_ticks,
            limit_ticks=bound.limit_ticks,
            would_ticks=bound.would_ticks,
            max_clip_lots=bound.max_clip_lots,
            min_clip_lots=bound.min_clip_lots,
        )
        strategy = (make_strategy or _default_factory(venue, seed))(bound)
        runner = cls(venue, strategy, log, bound, period_s, wake_ns=venue.now_ns())
        lost = {r.client_order_id for r in log.records if isinstance(r, LostRecord)}
        for record in log.records:
            if isinstance(record, PlaceRecord) and record.client_order_id not in lost:
                state = venue.order(parent.market, record.client_order_id)
                if state is None:
                    log.append(LostRecord(client_order_id=record.client_order_id, ts_ns=venue.now_ns()))
                else:
                    runner.children[record.client_order_id] = state
            elif isinstance(record, DoneRecord):
                runner.done = True
        return runner

    # ------------------------------------------------------------------ one wake-up

    @property
    def next_index(self) -> int:
        return sum(1 for r in self.log.records if isinstance(r, PlaceRecord))

    def _refresh(self) -> None:
        market = self.bound.parent.market
        now = self.venue.now_ns()
        for cid, state in list(self.children.items()):
            if state is None or state.status is ChildStatus.OPEN:
                self.children[cid] = self.venue.order(market, cid)
            if self.children[cid] is None and now - self._sent_ns(cid) >= self.period_s * NS_PER_S:
                # the send failed in transit and, a period later, the venue still does not know
                # the child: it never arrived. Its id is retired, never reused.
                self.log.append(LostRecord(client_order_id=cid, ts_ns=now))
                del self.children[cid]

    def _sent_ns(self, cid: str) -> int:
        for record in reversed(self.log.records):
            if isinstance(record, PlaceRecord) and record.client_order_id == cid:
                return record.ts_ns
        return 0

    def snapshot(self) -> Snapshot:
        """Read the venue and the parent's children (refreshing every open child)."""
        bound, venue = self.bound, self.venue
        market = bound.parent.market
        self._refresh()
        states = [s for s in self.children.values() if s is not None]
        ours = set(self.children)
        fills = tuple(f for f in venue.fills(market, bound.start_ns) if f.client_order_id in ours)
        tape = venue.public_trades(market, bound.start_ns)
        return Snapshot(
            now_ns=venue.now_ns(),
            bound=bound,
            book=venue.book(market),
            prices=venue.prices(market),
            filled_lots=sum(s.filled_lots for s in states),
            working=tuple(s for s in states if s.status is ChildStatus.OPEN),
            fills=fills,
            market_volume_lots=sum(t.qty_lots for t in tape),
            children_sent=self.next_index,
            last_sent_ns=max((r.ts_ns for r in self.log.records if isinstance(r, PlaceRecord)), default=None),
        )

    def step(self) -> StepRecord:
        """One wake-up (module docstring); returns what it saw and did."""
        snap = self.snapshot()
        self._check(snap)
        if self.done:
            return self._record(snap, Decision(done=True, note="done"), 0, ())
        if snap.remaining_lots == 0 and not snap.working:
            return self._finish(snap, "filled")
        end = self.bound.end_ns
        decision = (
            self._end_decision(snap) if end is not None and snap.now_ns >= end else self.strategy.decide(snap)
        )
        sent, refused = self._act(decision.intents, snap)
        after = self.snapshot()
        self._check(after)
        record = self._record(after, decision, sent, refused)
        if decision.done or (after.remaining_lots == 0 and not after.working):
            self._finish(
                after,
                "filled" if after.filled_lots == self.bound.qty_lots else decision.note or "strategy done",
            )
        default = snap.now_ns + self.period_s * NS_PER_S
        self.wake_ns = max(snap.now_ns + 1, min(decision.wake_ns or default, default))
        return record

    def cancel_all(self, reason: str) -> int:
        """Cancel every working child (Ctrl-C, a kill switch); the parent is then done."""
        snap = self.snapshot()
        intents = tuple(CancelChild(c.client_order_id, reason) for c in snap.working)
        self._act(intents, snap)
        self._finish(self.snapshot(), reason)
        return len(intents)

    def _finish(self, snap: Snapshot, reason: str) -> StepRecord:
        if not self.done:
            self.done = True
            self.log.append(DoneRecord(ts_ns=snap.now_ns, reason=reason))
        return self._record(snap, Decision(done=True, note=reason), 0, ())

    def _record(self, snap: Snapshot, decision: Decision, sent: int, refused: tuple[str, ...]) -> StepRecord:
        record = StepRecord(
            now_ns=snap.now_ns,
            filled_lots=snap.filled_lots,
            working_lots=snap.working_lots,
            remaining_lots=snap.remaining_lots,
            market_volume_lots=snap.market_volume_lots,
            schedule_lots=decision.schedule_lots,
            sent=sent,
            refused=refused,
            note=decision.note,
        )
        self.history.append(record)
        return record

    def _check(self, snap: Snapshot) -> None:
        # the accounting invariant; a breach is a bug in the runner or the venue adapter
        if snap.remaining_lots < 0:
            raise AssertionError(
                f"parent {self.bound.parent.client_algo_id}: filled {snap.filled_lots} + working "
                f"{snap.working_lots} exceeds qty {self.bound.qty_lots}"
            )
        if sum(f.qty_lots for f in snap.fills) != snap.filled_lots:
            raise AssertionError(
                f"parent {self.bound.parent.client_algo_id}: fills sum to "
                f"{sum(f.qty_lots for f in snap.fills)} lots but children report {snap.filled_lots}"
            )

    def _end_decision(self, snap: Snapshot) -> Decision:
        behavior = self.bound.parent.end_behavior
        cancels = tuple(
            CancelChild(c.client_order_id, f"window ended: {behavior.value}") for c in snap.working
        )
        rest = snap.remaining_lots + snap.working_lots
        if behavior is EndBehavior.CANCEL or rest == 0:
            return Decision(cancels, done=True, note="window ended: remainder canceled")
        if behavior is EndBehavior.COMPLETE_AGGRESSIVE:
            take = PlaceChild(rest, None, TimeInForce.IOC, f"window ended: take the remaining {rest} lots")
            return Decision((*cancels, take), note="window ended: completing aggressively")
        near = snap.book.touch(self.bound.parent.side)
        if any(c.price_ticks == near for c in snap.working) or near is None:
            return Decision(note="window ended: remainder resting passively")
        rest_child = PlaceChild(
            rest, near, TimeInForce.GTC, f"window ended: rest the remaining {rest} lots at the touch"
        )
        return Decision((*cancels, rest_child), note="window ended: remainder resting passively")

    def _act(self, intents: tuple[Intent, ...], snap: Snapshot) -> tuple[int, tuple[str, ...]]:
        market = self.bound.parent.market
        cancels = [i for i in intents if isinstance(i, CancelChild)]
        places = [i for i in intents if isinstance(i, PlaceChild)]
        for cancel in cancels:
            if cancel.client_order_id not in self.children:
                continue
            self.log.append(
                CancelRecord(client_order_id=cancel.client_order_id, ts_ns=snap.now_ns, reason=cancel.reason)
            )
            self.venue.cancel(market, cancel.client_order_id)
        if cancels:
            self._refresh()
        sent = 0
        refused: list[str] = []
        for intent in places:
            states = [s for s in self.children.values() if s is not None]
            committed = sum(s.filled_lots for s in states) + sum(s.working_lots for s in states)
            pending = sum(1 for s in self.children.values() if s is None)
            if pending:
                refused.append("a child's state is unknown; nothing new until the venue answers for it")
                break
            verdict = enforce(self.bound, self.bound.qty_lots - committed, intent, snap.book)
            if not isinstance(verdict, Allowed):
                refused.append(verdict.reason)
                continue
            self._send(intent, verdict, snap.now_ns)
            sent += 1
        return sent, tuple(refused)

    def _send(self, intent: PlaceChild, allowed: Allowed, now_ns: int) -> None:
        parent = self.bound.parent
        index = self.next_index
        cid = child_id(parent.client_algo_id, index)
        self.log.append(
            PlaceRecord(
                index=index,
                client_order_id=cid,
                ts_ns=now_ns,
                qty_lots=allowed.qty_lots,
                price_ticks=allowed.price_ticks,
                tif=allowed.tif.value,
                reason=intent.reason,
            )
        )
        self.children[cid] = None  # unknown until the venue answers (a transport failure leaves it so)
        ack = self.venue.place(
            ChildOrder(
                client_order_id=cid,
                parent_id=parent.client_algo_id,
                market=parent.market,
                side=parent.side,
                qty_lots=allowed.qty_lots,
                price_ticks=allowed.price_ticks,
                tif=allowed.tif,
                reduce_only=allowed.reduce_only,
            )
        )
        if ack.accepted:
            self.children[cid] = self.venue.order(parent.market, cid)
        else:
            self.children[cid] = ChildState(
                client_order_id=cid,
                order_id="",
                market=parent.market,
                side=parent.side,
                qty_lots=allowed.qty_lots,
                filled_lots=0,
                price_ticks=allowed.price_ticks,
                status=ChildStatus.REJECTED,
            )
