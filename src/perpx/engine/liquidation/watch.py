"""Which accounts a mark update must look at: safety bands in per-market heaps.

A full scan after every mark update costs O(accounts). The watch makes it cost O(accounts near
liquidation) instead, and is **exact**: it never misses an account at or over 100%.

Safety band
-----------
For a scope (cross account, or isolated position), on the current marks::

    slack = (10**8 - 1) x margin balance - sum over its positions of maintenance_bound_e8(notional)

While ``slack >= 0`` the ratio ``ceil(MM x 10**8 / margin balance)`` is below 100%
(:func:`formulas.safety_slack_e8`). The slack is shared among the scope's positions pro rata to
their notional; a position may then move ``band_ticks(share, qty)`` ticks *against* itself
(down for a long, up for a short) before its share is spent. Moves *in its favour* never spend
slack (the margin balance gains a whole notional per tick, the bound at most ``mmr`` of it). So
while every market's mark stays on the safe side of its band edge the scope is certainly safe,
whatever the other marks do inside theirs. A scope with ``slack < 0`` gets edges that are always
crossed: it is "near" and rechecked on every update of its markets.

Headroom: no exact check while a fill cannot have spent the slack
-----------------------------------------------------------------
Every fill dirties both owners, and :meth:`RiskWatch.check` used to sum the slack of each over its
positions again. ``engine.headroom_atoms`` spares that sum. For an account without an isolated
position it holds ``H`` with the invariant, on the current marks::

    (10**8 - 1) x H <= slack of the cross scope

The exact check sets ``H = floor(slack / (10**8 - 1))``; a cross fill moves it by the exact change
of the margin balance minus a bound of the rise of the position's maintenance bound
(``matching.headroom_change_atoms``), so the invariant still holds after it. Everything else that
moves the margin (a fill of an isolated position, transfers, funding, isolated margin, settlement,
the liquidation's own legs) drops ``H`` (``Core.margin_changed``), and a mark change drops all
of them. While ``H >= 0`` the slack is ``>= 0``, so :meth:`RiskWatch.check` answers False, the
answer the sum would give: the shortcut changes no event and no state.
``invariants.check`` verifies the invariant after every command.

Index
-----
One heap per ``(market, direction)`` of ``(key, account_id, version)``: a long's key is
``-low_edge`` (due while ``mark < low_edge``), a short's ``high_edge`` (due while
``mark > high_edge``), so the due entries are always the heap's smallest: popping them costs
``O(k log n)`` for ``k`` due entries. An account's entries are replaced whenever it changes
(fills, transfers, funding, isolated margin: ``engine.risk_dirty``) or is rechecked: a new
``version`` makes the old entries stale, and stale entries are skipped when popped and compacted
away when they outnumber the live ones.

The order in which due accounts are liquidated never depends on the heaps (they differ after a
restore, where bands are recomputed on the restored marks): the stage sorts the due scopes by a
key of the state alone.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, Final

from perpx.engine import formulas
from perpx.engine.accounts import Account
from perpx.engine.liquidation.insurance import INSURANCE_ACCOUNT
from perpx.engine.values import RATE_SCALE, AccountId, MarketId

if TYPE_CHECKING:
    from perpx.engine.core import Core

ALWAYS: Final = -(2**62)
"""The key of an entry that is due at any mark (a scope with no slack left)."""

Entry = tuple[int, AccountId, int]


class RiskWatch:
    """Safety bands of every account with a position, and who holds a position in each market."""

    def __init__(self, engine: Core) -> None:
        self.engine = engine
        self.shortcut = True
        """Answer :meth:`check` from a known headroom (False only to test that it changes nothing)."""
        self._reset()

    def _reset(self) -> None:
        engine = self.engine
        self.heaps: dict[tuple[MarketId, int], list[Entry]] = {}
        self.pending: dict[AccountId, None] = {}
        self.contracts: dict[MarketId, int] = {m: spec.contract_atoms for m, spec in engine.specs.items()}
        self.version: dict[AccountId, int] = {}
        self.markets_of: dict[AccountId, tuple[MarketId, ...]] = {}
        self.holders: dict[MarketId, dict[AccountId, None]] = {m: {} for m in engine.specs}
        self.bounds: dict[MarketId, tuple[tuple[int, int], ...]] = {
            m: tuple((b.mmr_e8, b.cum_atoms) for b in spec.brackets) for m, spec in engine.specs.items()
        }
        self.max_mmr: dict[MarketId, int] = {m: spec.brackets[-1].mmr_e8 for m, spec in engine.specs.items()}
        self._next_version = 1
        engine.headroom_atoms.clear()
        for market in engine.specs:
            self.heaps[(market, 1)] = []
            self.heaps[(market, -1)] = []

    def respec(self, market: MarketId) -> None:
        """Take ``market``'s maintenance bounds from its spec now (after an operator's change).

        The holders' old bands are dropped by the caller (``Core.margin_changed``) and re-banded
        on these bounds when the liquidation stage rechecks them.
        """
        spec = self.engine.specs[market]
        self.bounds[market] = tuple((b.mmr_e8, b.cum_atoms) for b in spec.brackets)
        self.max_mmr[market] = spec.brackets[-1].mmr_e8

    # ------------------------------------------------------------------ bands

    def check(self, account: Account) -> bool:
        """Has a scope of ``account`` no slack left on the current marks? (then it needs an exact check)

        Called for every account that changed (``engine.risk_dirty``). Its old band entries become
        stale at once; new ones are computed at the next mark update (:meth:`flush`), so an account
        that trades many times between two mark updates is banded once. A False answer means every
        scope is certainly below 100%.

        An account whose headroom (``engine.headroom_atoms``, see the module docstring) is known and
        not negative is answered from it, without a sum over its positions. Otherwise the slack is
        computed, and the headroom of an account without an isolated position is set from it.
        """
        account_id = account.account_id
        self.version[account_id] = 0  # no pushed entry carries version 0: the old ones are stale
        self.pending[account_id] = None
        engine = self.engine
        headroom = engine.headroom_atoms
        if self.shortcut:
            known = headroom.get(account_id)
            if known is not None and known >= 0:
                return False
        marks = engine.marks
        contracts = self.contracts
        bounds = self.bounds
        balance = account.balances.get(engine.asset, 0) + account.collateral_atoms
        cross_bound = 0
        isolated = False
        for market, position in account.positions.items():
            qty = position.qty_lots
            if qty == 0:
                continue
            contract = contracts[market]
            mark = marks[market]
            pnl = qty * mark * contract - position.cost_atoms
            bound = formulas.maintenance_bound_e8(
                mark * (qty if qty > 0 else -qty) * contract, bounds[market]
            )
            if position.is_isolated:
                isolated = True
                if formulas.safety_slack_e8(position.isolated_margin_atoms + pnl, bound) < 0:
                    headroom.pop(account_id, None)
                    return True
            else:
                balance += pnl
                cross_bound += bound
        slack = formulas.safety_slack_e8(balance, cross_bound)
        if slack < 0:
            headroom.pop(account_id, None)
            return cross_bound > 0
        if isolated:
            headroom.pop(account_id, None)
        else:
            headroom[account_id] = slack // (RATE_SCALE - 1)
        return False

    def band(self, account: Account) -> None:
        """Compute ``account``'s band edges on the current marks and push them (see the module docstring)."""
        account_id = account.account_id
        version = self._next_version
        self._next_version += 1
        self.version[account_id] = version
        engine = self.engine
        marks = engine.marks
        contracts = self.contracts
        heaps = self.heaps
        push = heapq.heappush
        cross_balance = account.balances.get(engine.asset, 0) + account.collateral_atoms
        cross_bound = 0
        cross: list[tuple[MarketId, int, int, int]] = []  # market, qty, notional, mark
        held: list[MarketId] = []
        for market, position in account.positions.items():
            qty = position.qty_lots
            if qty == 0:
                continue
            held.append(market)
            contract = contracts[market]
            mark = marks[market]
            notional = mark * (qty if qty > 0 else -qty) * contract
            pnl = qty * mark * contract - position.cost_atoms
            bound = formulas.maintenance_bound_e8(notional, self.bounds[market])
            if position.is_isolated:
                slack = formulas.safety_slack_e8(position.isolated_margin_atoms + pnl, bound)
                direction, key = self._edge(market, qty, mark, slack, contract)
                push(heaps[(market, direction)], (key, account_id, version))
            else:
                cross_balance += pnl
                cross_bound += bound
                cross.append((market, qty, notional, mark))
        if cross:
            slack = formulas.safety_slack_e8(cross_balance, cross_bound)
            total = sum(row[2] for row in cross)
            for market, qty, notional, mark in cross:
                share = slack * notional // total if slack >= 0 else -1
                direction, key = self._edge(market, qty, mark, share, contracts[market])
                push(heaps[(market, direction)], (key, account_id, version))
        self._hold(account_id, tuple(held))

    def _edge(self, market: MarketId, qty: int, mark: int, share: int, contract: int) -> tuple[int, int]:
        """``(direction, key)`` of a position's band edge given its share of the slack."""
        if qty > 0:
            if share < 0:
                return 1, ALWAYS
            return 1, formulas.band_ticks(share, qty, contract, 0) - mark  # -(mark - width)
        if share < 0:
            return -1, ALWAYS
        return -1, mark + formulas.band_ticks(share, -qty, contract, self.max_mmr[market])

    def flush(self) -> None:
        """Band every account changed since the last mark update (before a mark update is scanned)."""
        pending = self.pending
        if pending:
            accounts = self.engine.accounts
            for account_id in pending:
                account = accounts.get(account_id)
                if account is not None:
                    self.band(account)
            pending.clear()
        for (market, _direction), heap in self.heaps.items():
            if len(heap) > 4 * len(self.holders[market]) + 1024:
                self._compact(heap)

    def _compact(self, heap: list[Entry]) -> None:
        version = self.version
        heap[:] = [entry for entry in heap if version.get(entry[1]) == entry[2]]
        heapq.heapify(heap)

    def forget(self, account_id: AccountId) -> None:
        """Drop an account's bands (it holds nothing, or it is the insurance fund)."""
        self.version[account_id] = 0
        self.pending.pop(account_id, None)
        self._hold(account_id, ())

    def _hold(self, account_id: AccountId, markets: tuple[MarketId, ...]) -> None:
        old = self.markets_of.get(account_id, ())
        if old == markets:
            return
        for market in old:
            if market not in markets:
                del self.holders[market][account_id]
        for market in markets:
            self.holders[market][account_id] = None
        if markets:
            self.markets_of[account_id] = markets
        else:
            self.markets_of.pop(account_id, None)

    def note_holdings(self, account: Account) -> None:
        """Bring the holders of ``account``'s markets up to date (before an ADL ranking)."""
        if account.account_id == INSURANCE_ACCOUNT:
            return
        self._hold(account.account_id, tuple(m for m, p in account.positions.items() if p.qty_lots))

    # ------------------------------------------------------------------ due accounts

    def pop_due(self, market: MarketId, mark: int) -> list[AccountId]:
        """Accounts whose band edge in ``market`` the mark has crossed; their entries leave the heap.

        Call :meth:`flush` first. The caller must recheck and re-band every account returned.
        """
        due: list[AccountId] = []
        version = self.version
        for direction, threshold in ((1, -mark), (-1, mark)):
            heap = self.heaps[(market, direction)]
            while heap and heap[0][0] < threshold:
                _key, account_id, entry_version = heapq.heappop(heap)
                if version.get(account_id) == entry_version:
                    due.append(account_id)
        return due

    def rebuild(self) -> None:
        """Bands of every account from scratch (after a restore)."""
        engine = self.engine
        self._reset()
        for account_id in sorted(engine.accounts):
            if account_id != INSURANCE_ACCOUNT:
                self.band(engine.accounts[account_id])

    def live_entries(self) -> int:
        """Entries of the current versions (for benchmarks and tests)."""
        self.flush()
        version = self.version
        return sum(1 for heap in self.heaps.values() for entry in heap if version.get(entry[1]) == entry[2])
