"""The venue-side agent check every order of an agent's account passes, whatever the interface.

:meth:`AgentGuard.admit` runs in :func:`perpx.server.trading.orders.place_order` before the order is
sequenced. It reads the account from the engine (in the sequencer's pipeline, so it sees every
command committed before it), adds the reservations of orders already admitted but not yet
sequenced, and refuses with the limit's name, its value and the attempted value. Admission and
reservation happen under one lock per account, so two concurrent requests cannot both fit under
``maxOpenNotional`` when together they do not; the reservation is released once the command is
applied (its effect is then in the engine) or refused.

Definitions (all notionals in settlement-asset atoms, rounded up so a limit is never loosened):

- order notional: price x quantity; a MARKET order is priced at the worse of the mark and the
  book's price for its quantity (a walk of the opposite side).
- open notional: the account's positions at the mark plus its resting orders' remaining
  quantity at their prices, plus this order and every admitted, unsequenced one.
- daily notional: the notional of orders admitted this UTC day (persisted, survives a restart).
- slippage: how far the order's price is from the mark against the agent, in basis points.
- session loss: the fall in equity (wallet + unrealised PnL + isolated margin) since the key's UTC
  day began, less the money moved in or out meanwhile without trading P&L (the engine's net
  transfers: deposits, withdrawals, loan payouts and repayments, collateral), so a deposit does not
  hide a loss and a withdrawal is not one: ``session_loss_atoms``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from perpx.agents.audit import AUDIT_FILE, AuditLog
from perpx.agents.policy import AgentPolicy
from perpx.agents.store import STORE_FILE, Agent, AgentStore
from perpx.agents.tokens import PreviewTokens
from perpx.engine.accounts import Account
from perpx.engine.commands import OrderType
from perpx.engine.config import MarketSpec
from perpx.engine.engine import Engine
from perpx.engine.formulas import ceil_div, fee_atoms, notional_atoms
from perpx.engine.values import AccountId, Side
from perpx.server.context import ServerContext
from perpx.server.errors import ApiError

DAY_MS = 86_400_000
LIMIT_REFUSED = -9301
KILLED = -9302
PREVIEW_REFUSED = -9303
SCOPE_REFUSED = -9304
SYMBOL_REFUSED = -9305
APPROVAL_PENDING = -9306
TYPE_REFUSED = -9307
AUDIT_BROKEN = -9308
PREVIEW_FIELD = "previewToken"


def refused(code: int, msg: str) -> ApiError:
    return ApiError(400, code, msg)


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """The order an agent asks for, in engine units (``price_ticks`` ``None`` for MARKET)."""

    symbol: str
    side: Side
    order_type: OrderType
    qty_lots: int
    price_ticks: int | None
    reduce_only: bool

    def key(self) -> tuple[str, ...]:
        return (
            self.symbol,
            self.side.name,
            self.order_type.value,
            str(self.qty_lots),
            str(self.price_ticks),
            str(self.reduce_only),
        )


@dataclass(frozen=True, slots=True)
class Exposure:
    """What the engine says of the account and the market, read in the sequencer's pipeline."""

    mark_ticks: int
    position_lots: int
    open_notional_atoms: int
    equity_atoms: int
    fill_price_ticks: int | None
    leverage: int
    liquidation_ticks: int | None
    net_transfers_atoms: int = 0
    """The account's net transfers in the settlement asset (:attr:`perpx.engine.accounts.Account.net_transfers`)."""
    liquidation_after_ticks: int | None = None
    """The liquidation price with the order filled at the previewed price (``None``: no position after)."""


@dataclass(slots=True)
class Reservation:
    """An admitted order's share of the limits until its command is applied."""

    agent: Agent
    notional_atoms: int
    token: str | None
    released: bool = False


@dataclass(frozen=True, slots=True)
class Estimate:
    """A preview: the figures an agent decides on, and the limits the order would use."""

    notional_atoms: int
    fill_price_ticks: int
    slippage_bps: Decimal
    margin_atoms: int
    exposure: Exposure


class AgentGuard:
    """The venue's agents: store, audit log, preview tokens, and the order check. One per venue."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.store = AgentStore(ctx.data_dir / STORE_FILE)
        self._audit: AuditLog | None = None
        self.audit_problem: str | None = None
        try:
            self._audit = AuditLog(ctx.data_dir / AUDIT_FILE)
        except ValueError as exc:
            self.audit_problem = str(exc)
        self.tokens = PreviewTokens()
        self._locks: dict[int, asyncio.Lock] = {}
        self._reserved: dict[int, int] = {}
        self._recent: dict[str, deque[int]] = {}
        self.committed_elsewhere: dict[str, Callable[[AccountId], int]] = {}
        """Notional an account has committed off the book, by source (atoms): the algo service's running
        parents' unsent remainders. Counted in every open-notional check, so an agent cannot pass its
        limit by starting a parent and then placing orders beside it (or the other way round)."""

    def close(self) -> None:
        self.store.close()
        if self._audit is not None:
            self._audit.close()

    @property
    def audit(self) -> AuditLog:
        """The audit log; while it is broken every agent action is refused (other accounts trade on).

        Raises
        ------
        ApiError
            503 ``-9308`` naming the broken link.
        """
        if self._audit is None:
            raise ApiError(
                503,
                AUDIT_BROKEN,
                f"Agent actions are stopped: {self.audit_problem}. Move the log aside only after investigating.",
            )
        return self._audit

    def now_ms(self) -> int:
        """The venue's time: wall time, or the venue clock on a manual-clock venue (a simulation or a
        competition), so rates, days and token lifetimes follow the market the agent trades."""
        if self.ctx.config.clock == "manual" and self.ctx.sequencer is not None:
            return self.ctx.sequencer.stamp() // 1_000_000
        return time.time_ns() // 1_000_000

    def record(self, agent: Agent | None, action: str, decision: str, **detail: Any) -> None:
        self.audit.append(
            self.now_ms(), None if agent is None else agent.agent_id, action, decision, **detail
        )

    def agent_of(self, account_id: AccountId) -> Agent | None:
        return self.store.for_account(account_id)

    def is_killed(self, agent: Agent) -> bool:
        return agent.killed or self.store.kill_all

    # ------------------------------------------------------------------ admission

    async def admit(
        self, account_id: AccountId, spec: MarketSpec, intent: OrderIntent, values: Mapping[str, str]
    ) -> Reservation | None:
        """Check an order of ``account_id`` against its agent's policy and reserve its notional.

        Returns ``None`` for an account without an agent. The caller must :meth:`release` the
        reservation once the command is applied or refused.

        Raises
        ------
        ApiError
            400 with ``-9301`` (a limit: name, value, attempted), ``-9302`` (killed), ``-9303``
            (preview token), ``-9304`` (scope), ``-9305`` (symbol), ``-9306`` (approval pending).
        """
        agent = self.agent_of(account_id)
        if agent is None:
            return None
        request = {
            "symbol": intent.symbol,
            "side": intent.side.name,
            "type": intent.order_type.value,
            "quantity": str(intent.qty_lots * spec.lot_size),
            "price": None if intent.price_ticks is None else str(intent.price_ticks * spec.tick_size),
            "reduceOnly": intent.reduce_only,
        }
        try:
            reservation = await self._admit(agent, spec, intent, values.get(PREVIEW_FIELD) or None)
        except ApiError as exc:
            self.record(agent, "place_order", "refused", request=request, code=exc.code, reason=exc.msg)
            raise
        self.record(
            agent, "place_order", "allowed", request=request, notionalAtoms=reservation.notional_atoms
        )
        return reservation

    async def _admit(
        self, agent: Agent, spec: MarketSpec, intent: OrderIntent, token: str | None
    ) -> Reservation:
        policy = agent.policy
        if self.is_killed(agent):
            raise refused(
                KILLED, f"Agent {agent.agent_id} is killed: it may read and cancel, not place orders."
            )
        if not policy.allows("trade"):
            raise refused(SCOPE_REFUSED, f"Agent {agent.agent_id} lacks the 'trade' scope.")
        if not policy.allows_symbol(intent.symbol):
            raise refused(
                SYMBOL_REFUSED,
                f"Agent {agent.agent_id} may not trade {intent.symbol}; allowed: "
                f"{', '.join(policy.symbols)}.",
            )
        now_ms = self.now_ms()
        if token is None and policy.require_preview:
            raise refused(
                PREVIEW_REFUSED,
                "This agent must preview every order: send the previewToken from preview_order.",
            )
        if token is not None:
            problem = self.tokens.check(token, agent.agent_id, intent.key(), now_ms)
            if problem is not None:
                raise refused(PREVIEW_REFUSED, f"Preview token refused: {problem}.")
            preview = self.tokens.get(token)
            if preview is not None and preview.needs_approval and not preview.approved:
                raise refused(
                    APPROVAL_PENDING,
                    f"The order waits for a human approval of preview {token} "
                    "(POST /admin/v1/agents/approvals/{token}).",
                )
        self._rate(agent, policy, now_ms)
        lock = self._locks.setdefault(int(agent.account_id), asyncio.Lock())
        async with lock:
            exposure = await self.exposure(agent.account_id, spec, intent)
            estimate = self._estimate(spec, intent, exposure)
            self._check_limits(agent, spec, intent, estimate, now_ms)
            if token is not None and not self.tokens.use(token):
                raise refused(
                    PREVIEW_REFUSED,
                    "Preview token refused: the preview token was already used "
                    "(each token places one order).",
                )
            if (
                policy.approval_notional is not None
                and token is None
                and (estimate.notional_atoms > self._atoms(policy.approval_notional))
            ):
                raise refused(
                    APPROVAL_PENDING,
                    "Orders above approvalNotional "
                    f"{policy.approval_notional} need a preview and a human approval.",
                )
            self._reserved[int(agent.account_id)] = self._reserved.get(int(agent.account_id), 0) + (
                0 if intent.reduce_only else estimate.notional_atoms
            )
            self.store.add_daily_notional(agent.agent_id, now_ms // DAY_MS, estimate.notional_atoms)
            self._recent.setdefault(agent.agent_id, deque()).append(now_ms)
        return Reservation(agent, 0 if intent.reduce_only else estimate.notional_atoms, token)

    def refuse_if_killed(self, account_id: AccountId, action: str = "place_order") -> None:
        """The kill switch again, as an admitted order's (or amend's) command is built in the pipeline.

        An order admitted before a kill can reach the sequencer after it (it waited in the queue, or
        behind a batch being written). This runs in the command's builder, which the pipeline calls
        in sequence order on the event loop, the same loop the kill routes set the switch on: once a
        kill has taken effect (the routes answer its ``killSeq``), no order or amend of the key is
        sequenced after it, whichever interface admitted it. Accounts without an agent pass.

        Raises
        ------
        ApiError
            400 ``-9302``; the refusal is audited with ``stage: sequencing``.
        """
        agent = self.agent_of(account_id)
        if agent is None or not self.is_killed(agent):
            return
        error = refused(
            KILLED,
            f"Agent {agent.agent_id} was killed before this {'amend' if action == 'amend_order' else 'order'} "
            "was sequenced: it may read and cancel, nothing else.",
        )
        self.record(agent, action, "refused", stage="sequencing", code=error.code, reason=error.msg)
        raise error

    async def admit_amend(
        self, account_id: AccountId, spec: MarketSpec, side: str, qty_lots: int, price_ticks: int
    ) -> None:
        """Check an amend of an agent's order: killed and scope as for a new order, then its new
        notional against ``maxOrderNotional`` and its price against ``maxSlippageBps``."""
        agent = self.agent_of(account_id)
        if agent is None:
            return
        intent = OrderIntent(
            str(spec.market),
            Side.BUY if side == "BUY" else Side.SELL,
            OrderType.LIMIT,
            qty_lots,
            price_ticks,
            False,
        )
        try:
            if self.is_killed(agent):
                raise refused(KILLED, f"Agent {agent.agent_id} is killed: it may read and cancel, not amend.")
            if not agent.policy.allows("trade"):
                raise refused(SCOPE_REFUSED, f"Agent {agent.agent_id} lacks the 'trade' scope.")
            limits = agent.policy.limits
            estimate = self._estimate(spec, intent, await self.exposure(account_id, spec, intent))
            if limits.max_order_notional is not None and estimate.notional_atoms > self._atoms(
                limits.max_order_notional
            ):
                raise refused(
                    LIMIT_REFUSED,
                    f"Agent limit maxOrderNotional refused the amend: limit "
                    f"{limits.max_order_notional}, attempted "
                    f"{_text(estimate.notional_atoms * self.ctx.atom)}.",
                )
            if limits.max_slippage_bps is not None and estimate.slippage_bps > limits.max_slippage_bps:
                raise refused(
                    LIMIT_REFUSED,
                    f"Agent limit maxSlippageBps refused the amend: limit "
                    f"{limits.max_slippage_bps} bps, attempted {estimate.slippage_bps} bps.",
                )
        except ApiError as exc:
            self.record(agent, "amend_order", "refused", code=exc.code, reason=exc.msg)
            raise
        self.record(agent, "amend_order", "allowed", notionalAtoms=estimate.notional_atoms)

    def release(self, reservation: Reservation | None, *, sequenced: bool) -> None:
        """Drop the reservation once the order's command was applied or never sent.

        ``sequenced`` is true when the engine accepted the order; otherwise (never sent, or refused
        by the engine) the order gives back its daily notional and its preview token.
        """
        if reservation is None or reservation.released:
            return
        reservation.released = True
        account = int(reservation.agent.account_id)
        self._reserved[account] = self._reserved.get(account, 0) - reservation.notional_atoms
        if not sequenced:
            self.store.add_daily_notional(
                reservation.agent.agent_id, self.now_ms() // DAY_MS, -reservation.notional_atoms
            )
            if reservation.token is not None:
                self.tokens.unuse(reservation.token)

    def _rate(self, agent: Agent, policy: AgentPolicy, now_ms: int) -> None:
        most = policy.limits.max_orders_per_minute
        if most is None:
            return
        recent = self._recent.setdefault(agent.agent_id, deque())
        while recent and now_ms - recent[0] >= 60_000:
            recent.popleft()
        if len(recent) + 1 > most:
            raise refused(
                LIMIT_REFUSED,
                f"Agent limit maxOrdersPerMinute refused the order: limit {most}, "
                f"attempted {len(recent) + 1} orders within 60 s.",
            )

    def _check_limits(
        self, agent: Agent, spec: MarketSpec, intent: OrderIntent, estimate: Estimate, now_ms: int
    ) -> None:
        limits = agent.policy.limits
        atom = self.ctx.atom
        asset = str(self.ctx.config.settlement_asset)
        notional = estimate.notional_atoms

        def over(name: str, limit: Decimal, attempted_atoms: int) -> ApiError:
            return refused(
                LIMIT_REFUSED,
                f"Agent limit {name} refused the order: limit {limit} {asset}, "
                f"attempted {_text(attempted_atoms * atom)} {asset}.",
            )

        if limits.max_order_notional is not None and notional > self._atoms(limits.max_order_notional):
            raise over("maxOrderNotional", limits.max_order_notional, notional)
        if limits.max_open_notional is not None and not intent.reduce_only:
            open_after = (
                estimate.exposure.open_notional_atoms
                + self._reserved.get(int(agent.account_id), 0)
                + notional
            )
            if open_after > self._atoms(limits.max_open_notional):
                raise over("maxOpenNotional", limits.max_open_notional, open_after)
        if limits.max_daily_notional is not None:
            daily = self.store.daily_notional(agent.agent_id, now_ms // DAY_MS) + notional
            if daily > self._atoms(limits.max_daily_notional):
                raise over("maxDailyNotional", limits.max_daily_notional, daily)
        if limits.max_position is not None:
            sign = 1 if intent.side is Side.BUY else -1
            after = estimate.exposure.position_lots + sign * intent.qty_lots
            if (
                abs(after) > abs(estimate.exposure.position_lots)
                and abs(after) * spec.lot_size > limits.max_position
            ):
                raise refused(
                    LIMIT_REFUSED,
                    f"Agent limit maxPosition refused the order: limit "
                    f"{limits.max_position} {spec.base}, attempted "
                    f"{_text(abs(after) * spec.lot_size)} {spec.base} in {intent.symbol}.",
                )
        if limits.max_slippage_bps is not None and estimate.slippage_bps > limits.max_slippage_bps:
            raise refused(
                LIMIT_REFUSED,
                f"Agent limit maxSlippageBps refused the order: limit "
                f"{limits.max_slippage_bps} bps, attempted "
                f"{estimate.slippage_bps} bps against the mark.",
            )
        if limits.session_loss_limit is not None and not intent.reduce_only:
            day = now_ms // DAY_MS
            exposure = estimate.exposure
            start_equity, start_transfers = self.store.day_start(
                agent.agent_id, day, exposure.equity_atoms, exposure.net_transfers_atoms
            )
            loss = session_loss_atoms(
                start_equity, start_transfers, exposure.equity_atoms, exposure.net_transfers_atoms
            )
            if loss >= self._atoms(limits.session_loss_limit):
                raise over("sessionLossLimit", limits.session_loss_limit, loss)

    def _atoms(self, amount: Decimal) -> int:
        """A money limit in atoms, rounded down (a limit is never loosened by rounding)."""
        return int((amount / self.ctx.atom).to_integral_value(ROUND_FLOOR))

    # ------------------------------------------------------------------ estimates

    async def exposure(
        self, account_id: AccountId, spec: MarketSpec, intent: OrderIntent, *, after: bool = False
    ) -> Exposure:
        """The account's exposure and the market's prices, read in the sequencer's pipeline.

        ``after``: also the liquidation price once the order filled at its expected price (one fill,
        with the account's maker or taker fee), from the engine's own formula
        (:meth:`perpx.engine.liquidation.stage.LiquidationStage.liquidation_price_after`).
        """

        def read(engine: Engine) -> Exposure:
            account = engine.accounts.get(account_id)
            market = spec.market
            mark = engine.marks.get(market, 0)
            book = engine.books[market].opposite(intent.side)
            fill = _walk(book.depth(), intent.qty_lots)
            if account is None:
                return Exposure(mark, 0, 0, 0, fill, spec.default_leverage, None)
            open_atoms = 0
            for position in account.positions.values():
                pspec = engine.specs[position.market]
                pmark = engine.marks.get(position.market, 0)
                open_atoms += notional_atoms(pmark, abs(position.qty_lots), pspec.contract_atoms)
                for order in position.open_orders.values():
                    if order.price_ticks is not None:
                        open_atoms += notional_atoms(
                            order.price_ticks, order.qty_lots - order.filled_lots, pspec.contract_atoms
                        )
            risk = engine.risk(account_id)
            equity = risk.wallet_atoms + risk.cross_unrealized_pnl_atoms + risk.isolated_margin_atoms
            held = account.positions.get(market)
            qty = held.qty_lots if held is not None else 0
            leverage = held.leverage if held is not None else spec.default_leverage
            liquidation = engine.liquidation.liquidation_price(account_id, market) if qty else None
            open_atoms += sum(source(account_id) for source in self.committed_elsewhere.values())
            transfers = account.net_transfers.get(engine.asset, 0)
            now = Exposure(mark, qty, open_atoms, equity, fill, leverage, liquidation, transfers)
            if not after:
                return now
            estimate = self._estimate(spec, intent, now)
            rate = _fee_rate_e8(engine, account, taker=_takes(intent, now))
            value = notional_atoms(estimate.fill_price_ticks, intent.qty_lots, spec.contract_atoms)
            fee = max(0, fee_atoms(value, rate))  # as settlement charges it: a rebate is never credited here
            liquidation_after = engine.liquidation.liquidation_price_after(
                account_id, market, intent.side, intent.qty_lots, estimate.fill_price_ticks, fee
            )
            return replace(now, liquidation_after_ticks=liquidation_after)

        return await self.ctx.seq.query(read)

    def _estimate(self, spec: MarketSpec, intent: OrderIntent, exposure: Exposure) -> Estimate:
        mark = exposure.mark_ticks
        if intent.order_type is OrderType.MARKET:
            candidates = [p for p in (mark, exposure.fill_price_ticks) if p]
            price = (max(candidates) if intent.side is Side.BUY else min(candidates)) if candidates else 0
        else:
            price = intent.price_ticks or 0
        notional = notional_atoms(price, intent.qty_lots, spec.contract_atoms)
        expected = price
        if intent.order_type is not OrderType.MARKET and exposure.fill_price_ticks is not None:
            crossing = (
                (exposure.fill_price_ticks <= price)
                if intent.side is Side.BUY
                else (exposure.fill_price_ticks >= price)
            )
            expected = exposure.fill_price_ticks if crossing else price
        sign = 1 if intent.side is Side.BUY else -1
        slippage = (
            (Decimal(sign * (expected - mark)) * 10_000 / mark).quantize(Decimal("0.01"), ROUND_CEILING)
            if mark
            else Decimal(0)
        )
        margin = ceil_div(notional, max(1, exposure.leverage))
        return Estimate(notional, expected, max(slippage, Decimal(0)), margin, exposure)

    async def preview(self, agent: Agent, spec: MarketSpec, intent: OrderIntent) -> dict[str, Any]:
        """The pre-trade estimate and a token for exactly this order (see :mod:`perpx.agents.tokens`).

        The limits are checked as :meth:`admit` would (a preview that would be refused says so and
        issues no token), without reserving anything.
        """
        atom = self.ctx.atom
        if not (agent.policy.allows("preview") or agent.policy.allows("trade")):
            raise refused(SCOPE_REFUSED, f"Agent {agent.agent_id} lacks the 'preview' scope.")
        if not agent.policy.allows_symbol(intent.symbol):
            raise refused(SYMBOL_REFUSED, f"Agent {agent.agent_id} may not trade {intent.symbol}.")
        exposure = await self.exposure(agent.account_id, spec, intent, after=True)
        estimate = self._estimate(spec, intent, exposure)
        now_ms = self.now_ms()
        verdict: str | None = None
        if self.is_killed(agent):
            verdict = f"Agent {agent.agent_id} is killed: placing is refused."
        else:
            try:
                self._check_limits(agent, spec, intent, estimate, now_ms)
            except ApiError as exc:
                verdict = exc.msg
        approval = agent.policy.approval_notional
        needs_approval = approval is not None and estimate.notional_atoms > self._atoms(approval)
        answer: dict[str, Any] = {
            "symbol": intent.symbol,
            "side": intent.side.name,
            "type": intent.order_type.value,
            "quantity": _text(intent.qty_lots * spec.lot_size),
            "price": None if intent.price_ticks is None else _text(intent.price_ticks * spec.tick_size),
            "markPrice": _text(exposure.mark_ticks * spec.tick_size),
            "expectedPrice": _text(estimate.fill_price_ticks * spec.tick_size),
            "notional": _text(estimate.notional_atoms * atom),
            "slippageBps": str(estimate.slippage_bps),
            "marginImpact": _text(estimate.margin_atoms * atom),
            "positionAfter": _text(
                (exposure.position_lots + (1 if intent.side is Side.BUY else -1) * intent.qty_lots)
                * spec.lot_size
            ),
            "liquidationPriceNow": None
            if exposure.liquidation_ticks is None
            else _text(exposure.liquidation_ticks * spec.tick_size),
            "liquidationPriceAfter": None
            if exposure.liquidation_after_ticks is None
            else _text(exposure.liquidation_after_ticks * spec.tick_size),
            "limits": self._usage(agent, estimate, now_ms),
            "wouldBeRefused": verdict,
            "needsApproval": needs_approval,
            "approvalBy": ("admin or client" if agent.policy.client_approval else "admin")
            if needs_approval
            else None,
            "previewToken": None,
            "expiresMs": None,
        }
        if verdict is None:
            preview = self.tokens.issue(
                agent.agent_id, intent.key(), now_ms, answer["notional"], needs_approval
            )
            answer["previewToken"] = preview.token
            answer["expiresMs"] = preview.expires_ms
        self.record(
            agent,
            "preview_order",
            "refused" if verdict else "allowed",
            request={k: answer[k] for k in ("symbol", "side", "type", "quantity", "price")},
            reason=verdict,
            token=answer["previewToken"],
        )
        return answer

    def approve_by_client(self, agent: Agent, token: str) -> None:
        """The human at the agent's own client approved ``token`` (MCP elicitation).

        Raises
        ------
        ApiError
            ``-9306`` when the policy wants an admin's approval, ``-9303`` for a token that is not
            this agent's or needs no approval.
        """
        if not agent.policy.client_approval:
            self.record(
                agent, "approve", "refused", token=token, reason="the policy needs an admin's approval"
            )
            raise refused(
                APPROVAL_PENDING, "This agent's orders above approvalNotional need an admin's approval."
            )
        preview = self.tokens.get(token)
        if preview is None or preview.agent_id != agent.agent_id or self.tokens.approve(token) is None:
            raise refused(
                PREVIEW_REFUSED, "Preview token refused: it is unknown, used, or needs no approval."
            )
        self.record(agent, "approve", "approved", token=token, by="client")

    def _usage(self, agent: Agent, estimate: Estimate, now_ms: int) -> dict[str, dict[str, str]]:
        limits = agent.policy.limits
        atom = self.ctx.atom
        used: dict[str, dict[str, str]] = {}
        if limits.max_order_notional is not None:
            used["maxOrderNotional"] = {
                "limit": str(limits.max_order_notional),
                "after": _text(estimate.notional_atoms * atom),
            }
        if limits.max_open_notional is not None:
            after = (
                estimate.exposure.open_notional_atoms
                + self._reserved.get(int(agent.account_id), 0)
                + estimate.notional_atoms
            )
            used["maxOpenNotional"] = {"limit": str(limits.max_open_notional), "after": _text(after * atom)}
        if limits.max_daily_notional is not None:
            daily = self.store.daily_notional(agent.agent_id, now_ms // DAY_MS) + estimate.notional_atoms
            used["maxDailyNotional"] = {"limit": str(limits.max_daily_notional), "after": _text(daily * atom)}
        if limits.max_slippage_bps is not None:
            used["maxSlippageBps"] = {
                "limit": str(limits.max_slippage_bps),
                "after": str(estimate.slippage_bps),
            }
        return used


def session_loss_atoms(
    start_equity_atoms: int, start_transfers_atoms: int, equity_atoms: int, transfers_atoms: int
) -> int:
    """The trading loss since the day began: ``(equity_start - transfers_start) - (equity_now -
    transfers_now)``; negative for a gain. Money moved in or out (a deposit, a withdrawal, a loan's
    payout) changes equity and the transfer total alike, so it cancels out."""
    return (start_equity_atoms - start_transfers_atoms) - (equity_atoms - transfers_atoms)


def _fee_rate_e8(engine: Engine, account: Account, *, taker: bool) -> int:
    """The account's fee rate now: :meth:`perpx.engine.core.Core.fee_rates` without expiring old
    volume (a query must change nothing), so a day boundary may leave it one tier behind."""
    tier = engine.fee_tiers[0]
    for candidate in engine.fee_tiers:
        if account.volume_30d_atoms >= candidate.min_30d_volume_atoms:
            tier = candidate
    return tier.taker_e8 if taker else tier.maker_e8


def _takes(intent: OrderIntent, exposure: Exposure) -> bool:
    """Whether the order would trade against the book on arrival (taker) rather than rest (maker)."""
    if intent.order_type is OrderType.MARKET:
        return True
    fill, price = exposure.fill_price_ticks, intent.price_ticks
    if fill is None or price is None:
        return False
    return fill <= price if intent.side is Side.BUY else fill >= price


def _walk(levels: list[tuple[int, int]], qty_lots: int) -> int | None:
    """The worst price a taker of ``qty_lots`` reaches on ``levels`` (``None``: the book is empty)."""
    left = qty_lots
    last = None
    for price, lots in levels:
        last = price
        left -= lots
        if left <= 0:
            break
    return last


def _text(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


_GUARDS: dict[int, tuple[ServerContext, AgentGuard]] = {}


def agent_guard(ctx: ServerContext) -> AgentGuard:
    """The venue's guard, opened on first use and closed with the venue's key store."""
    held = _GUARDS.get(id(ctx))
    if held is not None and held[0] is ctx:
        return held[1]
    guard = AgentGuard(ctx)
    _GUARDS[id(ctx)] = (ctx, guard)

    def close() -> None:
        guard.close()
        _GUARDS.pop(id(ctx), None)

    ctx.keys.on_close.append(close)
    return guard
