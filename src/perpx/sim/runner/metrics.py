"""What a run counts: the figures of its summary that come from events, audits and invariant checks.

:class:`RunMetrics` sees every event of every command the run applies (:meth:`RunMetrics.observe`)
and keeps running totals; the simulation also asks it to audit accounts and check the engine's
invariants at its samples. Nothing here sends a command or changes the venue.

==========================  ===================================================================
figures                     from
==========================  ===================================================================
trades, volume              taker fills (``OrderFilled``, ``is_maker`` false)
rejections                  ``OrderRejected``, ``CommandRejected``, ``TransferRejected`` by code
liquidations, takeovers,    ``LiquidationExplained``: its order, takeover and ADL steps; a
ADL legs, ADL shortfall     liquidation counts when it closed or reduced the position
funding                     ``FundingSettled`` (totals, the largest rate), ``FundingPaid``
mark-index, index-fair gap  ``MarkPriceUpdated``, ``IndexUpdated`` (fair: the driver's fair prices)
faulty quotes used          ``IndexUpdated`` that used a quote made under an outlier fault
account ledgers             deposits, withdrawals and everything realised, per account
withdrawable audits         the engine's withdrawable against the ledger's realised equity
invariants                  :func:`perpx.engine.invariants.violations` at the simulation's checks
==========================  ===================================================================

Markers (:class:`~perpx.sim.result.Marker`) record each liquidation, ADL leg, insurance takeover
and funding settlement at its simulated time, for the report's charts.

Money is counted in exact atoms of the settlement asset; :meth:`RunMetrics.units` turns atoms into
settlement units (floats) for markers and the summary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from perpx.engine import formulas, invariants
from perpx.engine.engine import Engine
from perpx.engine.events import (
    AdlStep,
    CollateralConverted,
    CommandRejected,
    DepositApplied,
    Event,
    FundingPaid,
    FundingSettled,
    IndexUpdated,
    InsuranceFundChanged,
    LiquidationExplained,
    MarkPriceUpdated,
    OrderFilled,
    OrderRejected,
    OrderStep,
    PositionSettled,
    PositionTransferred,
    SettlementLossShared,
    TakeoverStep,
    TransferRejected,
    WithdrawalApplied,
)
from perpx.engine.liquidation.insurance import INSURANCE_ACCOUNT
from perpx.engine.values import AccountId
from perpx.sim.assertions import CAUSES
from perpx.sim.result import Marker

MAX_INVARIANT_MESSAGES = 20
"""The summary keeps the first messages of invariant violations, not all of them."""

_NEVER_SEEN = -(2**62)


class Ledger:
    """One account's money from its own events: what it put in, took out, and could have realised."""

    __slots__ = ("deposits", "realized", "withdrawn")

    def __init__(self) -> None:
        self.deposits = 0
        self.withdrawn = 0
        self.realized = 0  # realised PnL + funding - fees - clearance fees + deficit cover

    @property
    def equity(self) -> int:
        return self.deposits - self.withdrawn + self.realized


class LiquidatedAccount:
    """One liquidated account: how often, how much, and what put it under the first time."""

    __slots__ = ("cause", "count", "notional_atoms")

    def __init__(self, cause: str) -> None:
        self.cause = cause
        self.count = 0
        self.notional_atoms = 0


class RunMetrics:
    """The running totals of one run (see the module docstring).

    Parameters
    ----------
    engine
        The venue, read for specs, prices and accounts.
    t_s
        The simulated seconds since the start, for markers and messages.
    fair_prices
        Each market's fair price as its sources last quoted it (read, never written).
    """

    def __init__(self, engine: Engine, t_s: Callable[[], float], fair_prices: Mapping[str, float]) -> None:
        self.engine = engine
        self.atom = engine.config.settlement.atom
        self.t_s = t_s
        self.fair_prices = fair_prices
        self.faulty_at_venue: dict[tuple[str, str], bool] = {}
        """``(market, source)`` -> whether the source's last quote at the venue was faulty."""
        self.owner: dict[AccountId, str] = {}
        """Account -> its agent's name (``attacker:<name>`` for an adversary)."""
        self.trades = 0
        self.volume_atoms = 0
        self.rejections: dict[str, int] = {}
        self.liquidations = 0
        self.liquidation_records = 0
        self.liquidated_notional_atoms = 0
        self.liquidated_accounts: dict[AccountId, LiquidatedAccount] = {}
        self.liquidation_orders = 0
        """Liquidation orders sent to the book (partial or full), filled or not."""
        self.liquidation_fills = 0
        self.liquidation_fills_worse = 0
        self.adl_counterparties: dict[AccountId, list[int]] = {}
        """ADL counterparty -> [legs, notional atoms]."""
        self._funding_paid: dict[AccountId, int] = {}
        """Account -> funding it paid, net of funding received, over the run (atoms)."""
        self._fees_paid: dict[AccountId, int] = {}
        """Account -> trading fees it paid over the run (atoms; rebates not counted)."""
        self.adl_legs = 0
        self.adl_notional_atoms = 0
        self.adl_borne_atoms = 0
        self.adl_shortfall_atoms = 0
        self.adl_loss_atoms = 0
        """Shortfalls ADL pushed onto counterparties, step by step, gains left out (the bad debt part)."""
        self.takeovers = 0
        self.takeover_loss_atoms = 0
        self.deficit_covered_atoms = 0
        self.funding_paid_atoms = 0
        self.funding_settlements = 0
        self.max_funding_rate_e8 = 0
        self.max_gap_bps = 0.0
        self.max_fair_gap_bps = 0.0
        self.faulty_quotes_used = 0
        self.liquidations_from_faulty = 0
        self.invariant_checks = 0
        self.invariant_violations = 0
        self.invariant_messages: list[str] = []
        self.accounts_below_zero = 0
        self.min_wallet_atoms = 0
        self.withdrawable_audits = 0
        self.withdrawable_excess_max = _NEVER_SEEN
        self.withdrawn_excess_max = _NEVER_SEEN
        self.attacker_upnl_max = 0
        self.attacker_refused = 0
        self.ledgers: dict[AccountId, Ledger] = {}
        self.fund_start = 0
        self.fund_min = 0
        self.draws: dict[str, float] = {}
        """What the seed drew where the scenario states a range (``prices.M.size``, ``events.N.factor``)."""
        self.fund_cash_min = 0
        """The fund's lowest cash (its ledger line and account 0's wallet) at a sample: no mark-to-market."""
        self.fund_position_notional_max = 0
        """The largest notional the fund held at a sample, on the marks (atoms)."""
        self.takeover_notional_atoms = 0
        """Notional the fund took over, on the mark at each takeover."""
        self.unwind_fills = 0
        self.unwound_notional_atoms = 0
        """What the fund's unwind orders sold (or bought back) into the book, at their fill prices."""
        self.per_market: dict[str, dict[str, int]] = {
            str(m): {"liquidations": 0, "adl_events": 0, "trades": 0} for m in engine.specs
        }
        self.markers: list[Marker] = []
        self._dispatch: dict[type, Callable[[Any], None]] = {
            OrderFilled: self._on_fill,
            OrderRejected: self._on_rejected,
            CommandRejected: self._on_rejected,
            TransferRejected: self._on_transfer_rejected,
            LiquidationExplained: self._on_liquidation,
            FundingSettled: self._on_funding_settled,
            FundingPaid: self._on_funding_paid,
            PositionTransferred: self._on_transfer,
            PositionSettled: self._on_settled,
            SettlementLossShared: self._on_loss_shared,
            InsuranceFundChanged: self._on_insurance,
            DepositApplied: self._on_deposit,
            WithdrawalApplied: self._on_withdrawal,
            MarkPriceUpdated: self._on_mark,
            IndexUpdated: self._on_index,
            CollateralConverted: self._on_conversion,
        }
        self.conversions = 0
        """Multi-Assets Mode: collateral sales to the insurance fund (``CollateralConverted``)."""
        self.conversion_proceeds_atoms = 0

    def units(self, atoms: int) -> float:
        """Atoms of the settlement asset as settlement units, for reading and plotting."""
        return float(Decimal(atoms) * self.atom)

    def ledger(self, account: AccountId) -> Ledger:
        """The account's ledger (an empty one the first time it is asked for)."""
        ledger = self.ledgers.get(account)
        if ledger is None:
            ledger = self.ledgers[account] = Ledger()
        return ledger

    @property
    def withdrawable_excess_max_atoms(self) -> int:
        """The largest withdrawable beyond realised equity seen by an audit (0 before any audit)."""
        return self.withdrawable_excess_max if self.withdrawable_audits else 0

    @property
    def withdrawn_excess_max_atoms(self) -> int:
        """The largest amount withdrawn beyond deposits and realised gains (0 before any withdrawal)."""
        return self.withdrawn_excess_max if self.withdrawn_excess_max > _NEVER_SEEN else 0

    # ------------------------------------------------------------------ events

    def observe(self, events: Iterable[Event]) -> None:
        """Count one command's events, in order."""
        dispatch = self._dispatch
        for event in events:
            handler = dispatch.get(type(event))
            if handler is not None:
                handler(event)

    def _on_fill(self, e: OrderFilled) -> None:
        ledger = self.ledger(e.account_id)
        if e.fee_atoms > 0:
            self._fees_paid[e.account_id] = self._fees_paid.get(e.account_id, 0) + e.fee_atoms
        ledger.realized += e.realized_pnl_atoms - e.fee_atoms
        if e.account_id == INSURANCE_ACCOUNT and not e.is_maker:  # the fund's own orders: its unwind
            self.unwind_fills += 1
            self.unwound_notional_atoms += formulas.notional_atoms(
                e.price_ticks, e.qty_lots, self.engine.specs[e.market].contract_atoms
            )
        if not e.is_maker:
            self.trades += 1
            self.per_market[e.market]["trades"] += 1
            self.volume_atoms += formulas.notional_atoms(
                e.price_ticks, e.qty_lots, self.engine.specs[e.market].contract_atoms
            )

    def _on_rejected(self, e: OrderRejected | CommandRejected) -> None:
        key = f"{e.code.name}"
        self.rejections[key] = self.rejections.get(key, 0) + 1

    def _on_transfer_rejected(self, e: TransferRejected) -> None:
        key = f"{e.code.name}"
        self.rejections[key] = self.rejections.get(key, 0) + 1
        owner = self.owner.get(e.account_id)
        if owner is not None and owner.startswith("attacker:"):
            self.attacker_refused += 1

    def _on_conversion(self, e: CollateralConverted) -> None:
        self.conversions += 1
        self.conversion_proceeds_atoms += e.proceeds_atoms

    def _on_deposit(self, e: DepositApplied) -> None:
        if e.asset != self.engine.asset:
            return  # collateral (Multi-Assets Mode): the ledgers are in the settlement asset
        self.ledger(e.account_id).deposits += e.amount_atoms

    def _on_withdrawal(self, e: WithdrawalApplied) -> None:
        ledger = self.ledger(e.account_id)
        ledger.withdrawn += e.amount_atoms
        # what it has taken out in all, against what it could have realised before this withdrawal
        self.withdrawn_excess_max = max(
            self.withdrawn_excess_max, ledger.withdrawn - (ledger.deposits + max(0, ledger.realized))
        )

    def _on_funding_paid(self, e: FundingPaid) -> None:
        self._funding_paid[e.account_id] = self._funding_paid.get(e.account_id, 0) - e.amount_atoms
        self.ledger(e.account_id).realized += e.amount_atoms

    def _on_transfer(self, e: PositionTransferred) -> None:
        self.ledger(e.account_id).realized += e.realized_pnl_atoms

    def _on_settled(self, e: PositionSettled) -> None:
        self.ledger(e.account_id).realized += e.realized_pnl_atoms

    def _on_loss_shared(self, e: SettlementLossShared) -> None:
        self.ledger(e.account_id).realized += e.amount_atoms

    def _on_insurance(self, e: InsuranceFundChanged) -> None:
        if e.account_id != INSURANCE_ACCOUNT:
            self.ledger(e.account_id).realized -= e.amount_atoms
        if e.reason == "DEFICIT_COVER":
            self.deficit_covered_atoms += -e.amount_atoms

    def _on_mark(self, e: MarkPriceUpdated) -> None:
        if e.index_ticks > 0:
            gap = abs(e.mark_ticks - e.index_ticks) * 10_000 / e.index_ticks
            self.max_gap_bps = max(self.max_gap_bps, gap)

    def _on_index(self, e: IndexUpdated) -> None:
        capped = {d.source for d in e.dropped if d.reason == "CAPPED"}
        if any(self.faulty_at_venue.get((e.market, u.source)) and u.source not in capped for u in e.used):
            self.faulty_quotes_used += 1
        fair = self.fair_prices.get(e.market)
        if fair:
            price = e.index_ticks * float(self.engine.specs[e.market].tick_size)
            self.max_fair_gap_bps = max(self.max_fair_gap_bps, abs(price - fair) * 10_000 / fair)

    def _on_funding_settled(self, e: FundingSettled) -> None:
        self.funding_paid_atoms += e.paid_atoms
        self.funding_settlements += 1
        self.max_funding_rate_e8 = max(self.max_funding_rate_e8, abs(e.rate_e8))
        spec = self.engine.specs[e.market]
        mark = 0.0 if e.mark_ticks is None else e.mark_ticks * float(spec.tick_size)
        self.markers.append(
            Marker(self.t_s(), e.market, "funding", mark, e.rate_e8 / 1e8, self.units(e.paid_atoms), 0)
        )

    def cause(self, e: LiquidationExplained) -> str:
        """What put ``e``'s account under: the funding it paid, the fees it paid, or the price.

        ``funding_payment`` when the funding the account paid over the run (net of funding received)
        is what it lacked, with room to spare: given back, its margin balance before the liquidation
        would be at least twice its maintenance margin (a margin ratio of 50% or less, well clear of
        liquidation). ``fee`` likewise for the trading fees it paid. Otherwise ``price_move``: the mark
        moved against it (a payment that merely tipped an account the price was already taking under
        does not count).
        """
        margin = e.before.margin_balance_atoms
        clear = 2 * e.before.maintenance_atoms
        funding = self._funding_paid.get(e.account_id, 0)
        fees = self._fees_paid.get(e.account_id, 0)
        if funding > 0 and funding >= fees and margin + funding >= clear:
            return "funding_payment"
        if fees > 0 and margin + fees >= clear:
            return "fee"
        return "price_move"

    def _on_liquidation(self, e: LiquidationExplained) -> None:
        self.liquidation_records += 1
        market = e.market
        if market is None:
            return
        spec = self.engine.specs[market]
        figures = next((p for p in e.before.positions if p.market == market), None)
        if figures is None or figures.qty_lots == 0:
            return
        sign = 1 if figures.qty_lots > 0 else -1
        mark = figures.mark_ticks
        lot_atoms = mark * spec.contract_atoms
        tick = float(spec.tick_size)
        lot_size = float(spec.lot_size)
        t_s = self.t_s()
        closed = taken_lots = adl_lots = taken_value = adl_value = covered = 0
        for step in e.steps:
            if isinstance(step, OrderStep):
                self.liquidation_orders += 1
                # the step's bankruptcy value is of the position as it stood when the order was sent:
                # the lots before the liquidation less what its earlier orders closed
                whole = abs(figures.qty_lots) - closed
                closed += step.filled_lots
                for fill in step.fills:
                    self.liquidation_fills += 1
                    # the fill against its lots' share of the position's bankruptcy value: a sell
                    # (closing a long) must get at least it, a buy (closing a short) pay at most it
                    value = formulas.notional_atoms(fill.price_ticks, fill.qty_lots, spec.contract_atoms)
                    bankrupt = step.bankruptcy_value_atoms * fill.qty_lots
                    got = value * whole
                    if (got < bankrupt) if step.side < 0 else (got > bankrupt):
                        self.liquidation_fills_worse += 1
            elif isinstance(step, TakeoverStep):
                if step.qty_lots == 0:  # the cap refused it all: recorded, nothing taken
                    continue
                taken_lots += step.qty_lots
                taken_value += step.value_atoms
                self.takeover_notional_atoms += step.qty_lots * lot_atoms
                covered += step.loss_atoms
                self.takeovers += 1
                self.takeover_loss_atoms += step.loss_atoms
                self.markers.append(
                    Marker(
                        t_s,
                        market,
                        "insurance_takeover",
                        step.value_atoms / max(1, step.qty_lots * spec.contract_atoms) * tick,
                        step.qty_lots * lot_size,
                        self.units(step.value_atoms),
                        int(e.account_id),
                    )
                )
            elif isinstance(step, AdlStep):
                adl_lots += step.qty_lots
                adl_value += step.value_atoms
                self.adl_shortfall_atoms += step.shortfall_atoms
                # only a loss counts as debt: a leg closed before bankruptcy (the fund's cap sent it to
                # ADL) hands the counterparty a gain against the mark, which pays no one else's loss
                self.adl_loss_atoms += max(0, step.shortfall_atoms)
                for leg in step.legs:
                    self.adl_legs += 1
                    hit = self.adl_counterparties.setdefault(leg.account_id, [0, 0])
                    hit[0] += 1
                    hit[1] += leg.value_atoms
                    self.per_market[market]["adl_events"] += 1
                    self.adl_notional_atoms += leg.value_atoms
                    self.adl_borne_atoms += sign * (leg.value_atoms - leg.qty_lots * lot_atoms)
                    self.markers.append(
                        Marker(
                            t_s,
                            market,
                            "adl",
                            leg.value_atoms / max(1, leg.qty_lots * spec.contract_atoms) * tick,
                            leg.qty_lots * lot_size,
                            self.units(leg.value_atoms),
                            int(leg.account_id),
                        )
                    )
        if e.outcome not in ("PARTIAL", "CLOSED"):
            return
        lots = closed + taken_lots + adl_lots
        notional = lots * lot_atoms
        self.liquidations += 1
        self.per_market[market]["liquidations"] += 1
        record = self.liquidated_accounts.get(e.account_id)
        if record is None:
            record = self.liquidated_accounts[e.account_id] = LiquidatedAccount(self.cause(e))
        record.count += 1
        record.notional_atoms += notional
        self.liquidated_notional_atoms += notional
        self.markers.append(
            Marker(
                t_s,
                market,
                "liquidation",
                mark * tick,
                lots * lot_size,
                self.units(notional),
                int(e.account_id),
            )
        )
        view = self.engine.pricing.view(market)
        capped = {s for s, reason in view.sources_dropped if reason == "CAPPED"}
        if any(self.faulty_at_venue.get((market, s)) and s not in capped for s, _ in view.sources_used):
            self.liquidations_from_faulty += 1

    # ------------------------------------------------------------------ audits

    def audit(self, accounts: Iterable[AccountId] | None, attacker: bool = False) -> None:
        """Withdrawable against realised equity (from events), and wallets below zero.

        ``accounts`` None audits every account but the insurance fund; ``attacker`` also records
        the accounts' largest unrealised PnL.
        """
        engine = self.engine
        ids = accounts if accounts is not None else [a for a in engine.accounts if a != INSURANCE_ACCOUNT]
        below = 0
        for account_id in ids:
            risk = engine.risk(account_id)
            ledger = self.ledger(account_id)
            self.withdrawable_audits += 1
            self.withdrawable_excess_max = max(
                self.withdrawable_excess_max, risk.withdrawable_atoms - ledger.equity
            )
            wallet = risk.wallet_atoms
            lowest = (
                min(wallet, *(p.isolated_margin_atoms for p in risk.positions)) if risk.positions else wallet
            )
            self.min_wallet_atoms = min(self.min_wallet_atoms, lowest)
            if lowest < 0:
                below += 1
            if attacker:
                self.attacker_upnl_max = max(self.attacker_upnl_max, risk.cross_unrealized_pnl_atoms)
        self.accounts_below_zero = max(self.accounts_below_zero, below)

    def check_invariants(self) -> None:
        """Run the engine's invariant checks; count the violations and keep the first messages."""
        problems = invariants.violations(self.engine)
        self.invariant_checks += 1
        self.invariant_violations += len(problems)
        for problem in problems:
            if len(self.invariant_messages) < MAX_INVARIANT_MESSAGES:
                self.invariant_messages.append(f"t={self.t_s():.0f}s: {problem}")


__all__ = ["CAUSES", "Ledger", "LiquidatedAccount", "RunMetrics"]
